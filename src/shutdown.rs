//! Turning signals into requests: SIGTERM and SIGINT into the shutdown token, SIGHUP into a
//! reload. Only `main` installs signal handlers; tests trigger shutdown through the token and
//! reloads through a `reload::Reload` handle.

use tokio_util::sync::CancellationToken;

use crate::reload::Reload;

/// Cancels `token` on the first SIGTERM or SIGINT.
pub fn on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        token.cancel();
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Asks `reload` for a reload at every SIGHUP (which would otherwise end the process).
#[cfg(unix)]
pub fn on_reload_signal(reload: Reload) {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before this returns, so a SIGHUP right after start is a reload, not a kill.
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload by changing the files");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("reload requested (SIGHUP)");
            reload.request();
        }
    });
}

/// No SIGHUP here: reloads come from changed files only.
#[cfg(not(unix))]
pub fn on_reload_signal(_reload: Reload) {}
