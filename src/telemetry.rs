//! Logging: tracing to stderr, as text or JSON, written by a background thread so a burst of
//! request lines never blocks a phone's response.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Keeps the background log writer alive; logs are flushed when it is dropped.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

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
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stderr());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| Error::AlreadyInstalled(e.to_string()))?;
    Ok(LogGuard(guard))
}
