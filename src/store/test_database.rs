//! A throwaway database on the PostgreSQL server that tests and benchmarks are given
//! (`ZEROTOUCH_TEST_DATABASE_URL`, a superuser URL; `.ci/postgres` starts such a server):
//! created under a name of the caller's choosing and dropped when done, explicitly or, at the
//! latest, when the value is dropped (a failed test leaves nothing behind).
//!
//! One file compiled into three crates: the library's tests (`store::contract` and the
//! PostgreSQL backend's own tests) declare it as a `#[cfg(test)]` module; the integration tests
//! (`tests/it/main.rs`) and the benchmarks (`benches/harness/`) include it with `#[path]`.
//! Those are separate crates that see only the library's public API, and test scaffolding
//! belongs neither in that API nor in the shipped binary: a shared file keeps it out of both
//! without a cargo feature or a hidden public module. So it uses nothing of the crate it is
//! compiled into, only std, tokio-postgres and rustls (the server `.ci/postgres` starts takes
//! only TLS connections, checked against the URL's `sslrootcert`), and returns errors instead of panicking (a bench
//! reports them; a test unwraps them with its own message).
//!
//! Must not know the store, its schema or its migrations.

// Each crate that includes this file uses a different part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that names the test server's superuser URL.
pub const SERVER_VARIABLE: &str = "ZEROTOUCH_TEST_DATABASE_URL";

/// Why a test database could not be made, reached or dropped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server URL is not `scheme://authority/…`.
    #[error("the PostgreSQL URL must be postgres://…, not {0:?}")]
    Url(String),
    /// The server refused or could not be reached.
    #[error("PostgreSQL server: {0}")]
    Server(#[from] tokio_postgres::Error),
    /// The URL's `sslrootcert` could not be read.
    #[error("root certificate {path}: {reason}")]
    Root {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The test server's URL from [`SERVER_VARIABLE`], if it is set and not empty.
pub fn server_from_env() -> Option<String> {
    std::env::var(SERVER_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

/// The test server's URL, or a failure that says how to get one: `needs` says who needs it
/// (`the cluster tests need a PostgreSQL server`), `example` a command that runs them.
pub fn required_server(needs: &str, example: &str) -> String {
    match server_from_env() {
        Some(url) => url,
        None => panic!(
            "{SERVER_VARIABLE} is not set: {needs}. Run them through .ci/postgres, which starts \
             a throwaway cluster, e.g. `{example}`"
        ),
    }
}

/// `url` with its database replaced by `name` and `params` (e.g. `application_name=b`, or
/// empty) added to its query.
pub fn with_database(url: &str, name: &str, params: &str) -> Result<String, Error> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| Error::Url(url.to_owned()))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let query: Vec<&str> = [query, params]
        .into_iter()
        .filter(|q| !q.is_empty())
        .collect();
    Ok(if query.is_empty() {
        format!("{scheme}://{authority}/{name}")
    } else {
        format!("{scheme}://{authority}/{name}?{}", query.join("&"))
    })
}

/// A database name no other test uses, now or in another process: `prefix`, this process, a
/// counter and the clock.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A superuser connection to `url`, driven by a task of the current runtime. When the URL
/// names an `sslrootcert`, over TLS whose certificate must chain to it and name the host (the
/// driver itself knows neither `sslrootcert` nor `verify-full`); else as the driver defaults.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, Error> {
    let (rest, root) = without_ssl_params(url);
    let Some(root) = root else {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        return Ok(client);
    };
    let unreadable = |reason: String| Error::Root {
        path: root.clone(),
        reason,
    };
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&root).map_err(|e| unreadable(e.to_string()))? {
        roots
            .add(cert.map_err(|e| unreadable(e.to_string()))?)
            .map_err(|e| unreadable(e.to_string()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let separator = if rest.contains('?') { '&' } else { '?' };
    let (client, connection) = tokio_postgres::connect(
        &format!("{rest}{separator}sslmode=require"),
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
    )
    .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` without `sslmode` and `sslrootcert`, and the root file it named.
fn without_ssl_params(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some(("sslrootcert", value)) => {
                root = Some(value.to_owned());
                false
            }
            Some(("sslmode", _)) => false,
            _ => !pair.is_empty(),
        })
        .collect();
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, root)
}

/// A database of its own on the test server.
pub struct TestDatabase {
    server: String,
    /// Its name.
    pub name: String,
    /// Its URL (the server's, with this database).
    pub url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates database `name` on `server` (a superuser URL). A leftover of that name, from a
    /// run that crashed before it could drop it, is dropped first.
    pub async fn create(server: &str, name: String) -> Result<Self, Error> {
        let url = with_database(server, &name, "")?;
        let client = connect(server).await?;
        // One statement per call: several in one batch would run in a transaction, which
        // DROP DATABASE and CREATE DATABASE refuse.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(Self {
            server: server.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    /// Its URL with `params` added to the query (e.g. `application_name=b`).
    pub fn url_with(&self, params: &str) -> String {
        // The server's URL parsed when the database was created: it parses again.
        with_database(&self.server, &self.name, params).unwrap_or_else(|_| self.url.clone())
    }

    /// A superuser connection to the server (not to this database).
    pub async fn admin(&self) -> Result<tokio_postgres::Client, Error> {
        connect(&self.server).await
    }

    /// Drops it, closing whatever is still connected to it.
    pub async fn drop(mut self) -> Result<(), Error> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        connect(&self.server).await?.batch_execute(&sql).await?;
        self.dropped = true;
        Ok(())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Reached when a test failed before dropping it. Drop runs inside the test's runtime,
        // which cannot be blocked on: use another, on another thread.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(client) = connect(&server).await {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}
