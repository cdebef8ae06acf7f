//! The composition root: builds every component from the configuration, binds the listeners,
//! runs them, and owns the order of startup and shutdown.
//!
//! Start: metrics → admin listener (liveness answers early) → store (+ migrations) → registry
//! hydration → templates (fail fast) → TLS (fail fast) → phone and API listeners → ready.
//! Stop: not ready → stop accepting and drain within the grace period → stop background tasks
//! → flush status writes → close the store → admin listener.
//! With ACME (`acme`), the stored certificate is written for TLS before it is built, the
//! renewal task runs among the background tasks, and the plain listener answers HTTP-01.
//! While running, a reload request (SIGHUP in `main`, `Listeners::reload` in tests) runs the
//! reload hooks (`reloads`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::admin::{AdminService, Readiness};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::provisioning;
use crate::server::{self, Limits};

mod acme;
mod commands;
mod components;
mod ledger;
mod listeners;
mod manual;
mod progress;
mod redirect;
mod reloads;
mod store;

use components::Components;
use listeners::Serving;

pub use commands::{
    backup, create_token, create_user, import_file, print_import, redirect_sync, render_once,
    reset_user, restore, set_user_disabled, IssuedToken, Output,
};
pub use listeners::{Addresses, Listeners};
pub use manual::{completions, man_pages, Shell};
pub use progress::ImportProgress;
pub use store::{migrate, open, open_store, OpenedStore};

/// Runs the server until `shutdown` is cancelled, then drains and stops in order.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(
        provisioning::METRIC_SLOTS,
        provisioning::VENDOR_METRIC_SLOTS,
    ));
    for vendor in crate::domain::Vendor::ALL {
        metrics
            .render_errors
            .touch(vendor.index(), &[vendor.as_str()]);
    }
    metrics
        .log_lines_dropped
        .read_from(crate::telemetry::dropped_lines);
    let readiness = Arc::new(Readiness::default());
    let limits = listeners::limits(&config);

    // The admin listener outlives everything else, so /metrics and /healthz answer while
    // starting and draining.
    let admin_stop = CancellationToken::new();
    let mut listeners = listeners;
    let admin = listeners.metrics.take().map(|listener| {
        let service = AdminService::new(metrics.clone(), readiness.clone());
        tokio::spawn(server::serve(
            listener,
            None,
            move |_| service.clone(),
            Limits {
                max_connections: 64,
                // Internal: scraped and probed directly, never through a balancer.
                proxy_protocol_from: Arc::from([]),
                ..limits.clone()
            },
            Arc::new(server::NoEvents),
            admin_stop.clone(),
            config.shutdown_grace,
        ))
    });

    let result = serve(&config, listeners, &metrics, &readiness, &limits, shutdown).await;

    admin_stop.cancel();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    result
}

/// Build → spawn → serve → wait → drain.
async fn serve(
    config: &Config,
    listeners: Listeners,
    metrics: &Arc<Metrics>,
    readiness: &Arc<Readiness>,
    limits: &Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let with_tls = listeners.phones.is_some() || listeners.api.is_some();
    let components = Components::build(config, metrics, readiness, with_tls).await?;

    let background = CancellationToken::new();
    let tasks = components.spawn_background(config, metrics, readiness, &background);

    let listener_stop = CancellationToken::new();
    let serving = Serving {
        config,
        metrics,
        limits,
        tls: components.tls.clone(),
        stop: &listener_stop,
    };
    let certificate_files = components.certificates.clone().map(|certificates| {
        let presented_on = [
            listeners.phones.as_ref().map(|_| "phones"),
            listeners.api.as_ref().map(|_| "api"),
        ];
        Arc::new(reloads::CertificateFiles::new(
            certificates,
            metrics.clone(),
            presented_on.into_iter().flatten().collect(),
        ))
    });
    let phones_origin = listeners.phones_origin();
    let reloader = reloads::spawn(
        reloads::hooks(
            Arc::new(reloads::Settings::new(
                config,
                components.provisioner.clone(),
            )),
            certificate_files.as_ref(),
        ),
        certificate_files.clone(),
        config.tls_reload_poll,
        listeners.reload_requests,
        metrics.clone(),
        background.clone(),
    );
    let mut tasks = tasks;
    if let (Some(settings), Some((challenges, installed)), Some(files)) = (
        acme::settings(config),
        components.acme.clone(),
        certificate_files.clone(),
    ) {
        tasks.push(crate::acme::spawn(
            settings,
            components.registry.secret_changes(),
            components.store.clone(),
            challenges,
            Arc::new(acme::Installer {
                identity: acme::identity(&config.data_dir),
                files,
                metrics: metrics.clone(),
            }),
            installed,
            metrics.clone(),
            background.clone(),
        ));
    }
    if !components.redirect.is_empty() {
        tasks.push(redirect::spawn(
            components.store.clone(),
            components.redirect.clone(),
            redirect::Pacing::from_config(&config.redirect),
            metrics.clone(),
            background.clone(),
        ));
    }
    let challenges = components.acme.as_ref().map(|(c, _)| c.clone());
    let mut servers = serving.phones(
        listeners.phones,
        listeners.http,
        &components.provisioner,
        challenges,
    );
    if let Some(listener) = listeners.api {
        let router = crate::portal::router(
            components.api_state(config, metrics, phones_origin),
            crate::portal::Expiry {
                idle: config.portal_idle_timeout,
                lifetime: config.portal_session_lifetime,
            },
        )?;
        servers.push(serving.api(listener, router));
    }

    readiness.set_ready();
    metrics.ready.set(1);
    tracing::info!("ready");
    shutdown.cancelled().await;

    readiness.set_draining();
    metrics.ready.set(0);
    tracing::info!(grace = ?config.shutdown_grace, "draining");
    listener_stop.cancel();
    for s in servers {
        let _ = s.await;
    }
    background.cancel();
    let _ = reloader.await;
    for task in tasks {
        let _ = task.await;
    }
    components.stop().await;
    tracing::info!("stopped");
    Ok(())
}
