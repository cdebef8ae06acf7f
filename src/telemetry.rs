//! Logging: tracing to stderr, as text or JSON, written by a background thread so a burst of
//! request lines never blocks a phone's response. When the thread falls behind, lines are
//! dropped rather than waited for, and counted ([`dropped_lines`], exported by `app` as
//! `zerotouch_log_lines_dropped_total`). Knows nothing of metrics.

use std::io::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Lines the background writer holds before it drops new ones.
const BUFFERED_LINES: usize = 64 * 1024;

/// The drop count of the process's one log writer, once `init` installed it.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Replaces the installed subscriber's filter (text and JSON subscribers differ in type, so
/// the handle is kept behind a function).
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// How to change the level of the subscriber `init` installed.
static FILTER: OnceLock<SetFilter> = OnceLock::new();

/// Keeps the background log writer alive; logs are flushed when it is dropped.
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Logging that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log level or filter does not parse.
    #[error("log filter {filter:?}: {reason}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A global subscriber is installed already (only once per process).
    #[error("logging is set up already: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `filter`.
pub fn init(format: LogFormat, filter: &str) -> Result<LogGuard, Error> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .map_err(|e| Error::Filter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })?;
    let (writer, guard) = background_writer(std::io::stderr(), BUFFERED_LINES);
    let dropped = writer.error_counter();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_writer(writer).with_ansi(ansi);
    let (result, set_filter): (_, SetFilter) = match format {
        LogFormat::Text => {
            let builder = builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            (
                builder.try_init(),
                Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())),
            )
        }
        LogFormat::Json => {
            let builder = builder
                .json()
                .flatten_event(true)
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            (
                builder.try_init(),
                Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())),
            )
        }
    };
    result.map_err(|e| Error::AlreadyInstalled(e.to_string()))?;
    let _ = FILTER.set(set_filter);
    // `try_init` succeeds once per process, so this is the first and only counter.
    let _ = DROPPED.set(dropped);
    Ok(LogGuard(guard))
}

/// Checks a log filter (`info`, `zerotouch=debug,warn`, …) without applying it.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, Error> {
    EnvFilter::try_new(filter).map_err(|e| Error::Filter {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })
}

/// Puts `filter` in use for every line from now on (a reload). `Ok(false)` when no subscriber
/// was installed by `init` (tests, one-off commands): nothing to change.
pub fn set_filter(filter: EnvFilter) -> Result<bool, Error> {
    match FILTER.get() {
        Some(set) => set(filter).map(|()| true).map_err(|reason| Error::Filter {
            filter: "(reload)".to_owned(),
            reason,
        }),
        None => Ok(false),
    }
}

/// Log lines the background writer dropped since `init` because it had `BUFFERED_LINES`
/// waiting already (0 before `init`, and in tests that install no logging).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// The lossy background writer over `sink`: a full buffer drops the line and counts it in the
/// writer's `error_counter` instead of blocking the thread that logs.
fn background_writer<W: Write + Send + 'static>(
    sink: W,
    buffered_lines: usize,
) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(buffered_lines)
        .finish(sink)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A sink whose first write waits until the test lets it go: the writer thread is stuck
    /// and the buffer fills.
    struct Stuck(Option<mpsc::Receiver<()>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = self.0.take() {
                let _ = gate.recv();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_past_a_full_buffer_are_dropped_and_counted() {
        let (release, gate) = mpsc::channel();
        let (mut writer, guard) = background_writer(Stuck(Some(gate)), 4);
        let counter = writer.error_counter();
        for i in 0..20 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        // The buffer holds 4 lines and the stuck thread took at most one more: the other 15 or
        // 16 were dropped, each counted, and the writer never blocked.
        let dropped = counter.dropped_lines();
        assert!((15..=16).contains(&dropped), "{dropped} dropped");
        release.send(()).unwrap();
        drop(guard);
        assert_eq!(counter.dropped_lines(), dropped);
    }

    #[test]
    fn a_writer_that_keeps_up_drops_nothing() {
        let (mut writer, guard) = background_writer(std::io::sink(), 1024);
        for i in 0..100 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        assert_eq!(writer.error_counter().dropped_lines(), 0);
    }
}
