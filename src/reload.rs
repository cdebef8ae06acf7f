//! Reloading what can change while the server runs, without a restart: a short list of typed
//! hooks, run one after another whenever a reload is asked for (SIGHUP, turned into a request
//! by `shutdown`; a test's [`Reload`] handle; a changed certificate file), each saying in one
//! log line what it changed, or why it kept what runs.
//!
//! Owns the request channel and the hook interface. Knows nothing of what a hook re-reads
//! (`app` registers them: the configuration's reloadable knobs and the TLS certificates) or of signals.
//!
//! Adding a hook: implement [`Hook`] (a constant `name`, which is also the `hook` label of
//! `zerotouch_reloads_total`; `reload` re-reads and either swaps the new value in or returns
//! [`Error::Kept`] leaving the running one untouched), and add it to the list `app` builds.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

/// Asks the running server to reload. Cheap to clone: the SIGHUP handler and tests hold one.
#[derive(Clone)]
pub struct Reload {
    tx: mpsc::Sender<Option<oneshot::Sender<Report>>>,
}

/// The running server's end, where requests arrive.
pub struct Requests {
    rx: mpsc::Receiver<Option<oneshot::Sender<Report>>>,
}

/// A connected pair: the handle and the server's end.
pub fn channel() -> (Reload, Requests) {
    // A few pending requests are plenty: requests waiting together are served by one run.
    let (tx, rx) = mpsc::channel(8);
    (Reload { tx }, Requests { rx })
}

impl Reload {
    /// Asks for a reload without waiting for it (for a signal handler). Requests made while
    /// others wait are served by the same run.
    pub fn request(&self) {
        // Full means runs are pending already, and they read everything afresh.
        let _ = self.tx.try_send(None);
    }

    /// Asks for a reload and waits for its report; `None` once the server has stopped.
    pub async fn run(&self) -> Option<Report> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Some(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Requests that arrived together: one run serves them all.
pub struct Batch {
    waiting: Vec<oneshot::Sender<Report>>,
}

impl Requests {
    /// Waits for the next request and takes any that arrived with it; `None` when every
    /// handle is gone.
    pub async fn next(&mut self) -> Option<Batch> {
        let first = self.rx.recv().await?;
        let mut waiting: Vec<_> = first.into_iter().collect();
        while let Ok(more) = self.rx.try_recv() {
            waiting.extend(more);
        }
        Some(Batch { waiting })
    }
}

impl Batch {
    /// Hands `report` to everyone who waits for it.
    pub fn answer(self, report: &Report) {
        for tx in self.waiting {
            let _ = tx.send(report.clone());
        }
    }
}

/// What a hook changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// What it reads is what runs.
    Unchanged,
    /// It swapped in a new value; the text says what, for the log line.
    Changed(String),
}

/// Why a hook could not reload. Whatever the reason, the running value stays in use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// What was read is unusable (a broken file, a value out of range).
    #[error("{0}; kept the one in use")]
    Kept(String),
}

/// Something the server can re-read while it runs.
#[async_trait::async_trait]
pub trait Hook: Send + Sync + 'static {
    /// Its name in log lines and in the `hook` metric label: a constant.
    fn name(&self) -> &'static str;

    /// Re-reads and swaps the new value in; on failure leaves the running value untouched.
    async fn reload(&self) -> Result<Change, Error>;
}

/// One hook's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The hook's name.
    pub hook: &'static str,
    /// What it did.
    pub result: Result<Change, Error>,
}

impl Outcome {
    /// The `result` metric label: `changed`, `unchanged` or `failed`.
    pub fn label(&self) -> &'static str {
        match &self.result {
            Ok(Change::Changed(_)) => "changed",
            Ok(Change::Unchanged) => "unchanged",
            Err(_) => "failed",
        }
    }

    /// The one log line saying what changed (info), or why nothing did (warn).
    pub fn log(&self) {
        match &self.result {
            Ok(Change::Changed(what)) => tracing::info!(hook = self.hook, "reloaded: {what}"),
            Ok(Change::Unchanged) => tracing::debug!(hook = self.hook, "reload: unchanged"),
            Err(e) => tracing::warn!(hook = self.hook, "reload failed: {e}"),
        }
    }
}

/// What one reload did, hook by hook, in the order they ran.
#[derive(Clone, Debug, Default)]
pub struct Report(pub Vec<Outcome>);

impl Report {
    /// The result of the hook named `hook`, if it ran.
    pub fn of(&self, hook: &str) -> Option<&Result<Change, Error>> {
        self.0.iter().find(|o| o.hook == hook).map(|o| &o.result)
    }
}

/// The hooks, in the order they run.
#[derive(Clone, Default)]
pub struct Hooks(Vec<Arc<dyn Hook>>);

impl Hooks {
    /// Adds `hook` after the others.
    pub fn add(&mut self, hook: Arc<dyn Hook>) {
        self.0.push(hook);
    }

    /// Runs every hook, one after another (each logs its line); `observe` sees each outcome.
    pub async fn run(&self, observe: &(dyn Fn(&Outcome) + Sync)) -> Report {
        let mut report = Report::default();
        for hook in &self.0 {
            let outcome = run_one(hook.as_ref()).await;
            observe(&outcome);
            report.0.push(outcome);
        }
        report
    }
}

/// Runs one hook and logs its line.
pub async fn run_one(hook: &dyn Hook) -> Outcome {
    let outcome = Outcome {
        hook: hook.name(),
        result: hook.reload().await,
    };
    outcome.log();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting(AtomicU32);

    #[async_trait::async_trait]
    impl Hook for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn reload(&self) -> Result<Change, Error> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(Change::Changed("first".into())),
                1 => Err(Error::Kept("broken".into())),
                _ => Ok(Change::Unchanged),
            }
        }
    }

    #[tokio::test]
    async fn requests_that_wait_together_are_served_by_one_run() {
        let (reload, mut requests) = channel();
        let hook = Arc::new(Counting(AtomicU32::new(0)));
        let mut hooks = Hooks::default();
        hooks.add(hook.clone());
        reload.request();
        reload.request();
        let waiter = tokio::spawn({
            let reload = reload.clone();
            async move { reload.run().await }
        });
        // The test runtime has one thread: yielding lets the waiter queue its request.
        tokio::task::yield_now().await;
        let batch = requests.next().await.unwrap();
        let report = hooks.run(&|_| {}).await;
        batch.answer(&report);
        let answered = waiter.await.unwrap().unwrap();
        assert_eq!(
            hook.0.load(Ordering::SeqCst),
            1,
            "one run for three requests"
        );
        assert_eq!(
            answered.of("counting"),
            Some(&Ok(Change::Changed("first".into())))
        );
        let second = hooks.run(&|_| {}).await;
        assert_eq!(
            second.of("counting"),
            Some(&Err(Error::Kept("broken".into())))
        );
        drop(requests);
        assert!(reload.run().await.is_none(), "no server, no report");
    }

    #[test]
    fn outcomes_have_closed_labels() {
        let o = |result| Outcome { hook: "h", result };
        assert_eq!(o(Ok(Change::Unchanged)).label(), "unchanged");
        assert_eq!(o(Ok(Change::Changed("x".into()))).label(), "changed");
        assert_eq!(o(Err(Error::Kept("x".into()))).label(), "failed");
    }
}
