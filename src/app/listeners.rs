//! The listeners: binding them (before anything else, so tests and `main` know the addresses),
//! their TLS identities, their limits, and serving phones and partners on them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::partner_api;
use crate::provisioning::{routes::PhoneService, Provisioner};
use crate::server::{self, tls, ConnectionEvents, Limits};

/// The bound listeners, before anything is served.
pub struct Listeners {
    pub(super) phones: Option<TcpListener>,
    pub(super) http: Option<TcpListener>,
    pub(super) api: Option<TcpListener>,
    pub(super) metrics: Option<TcpListener>,
}

/// Where each listener is bound (port 0 resolved).
#[derive(Clone, Copy, Debug, Default)]
pub struct Addresses {
    /// Phones over HTTPS.
    pub phones: Option<SocketAddr>,
    /// Phones over plain HTTP.
    pub http: Option<SocketAddr>,
    /// Partner API over HTTPS.
    pub api: Option<SocketAddr>,
    /// Metrics and health.
    pub metrics: Option<SocketAddr>,
}

async fn bind_one(what: &str, addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => server::bind(a)
            .await
            .map(Some)
            .with_context(|| format!("cannot bind the {what} listener to {a}")),
        None => Ok(None),
    }
}

impl Listeners {
    /// Binds every configured listener.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            phones: bind_one("phones (HTTPS)", config.phones_addr).await?,
            http: bind_one("phones (HTTP)", config.http_addr).await?,
            api: bind_one("partner API", config.api_addr).await?,
            metrics: bind_one("metrics", config.metrics_addr).await?,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        Addresses {
            phones: addr(&self.phones),
            http: addr(&self.http),
            api: addr(&self.api),
            metrics: addr(&self.metrics),
        }
    }
}

/// Connection events of one listener, as metrics and debug lines.
pub(super) struct ListenerEvents {
    pub(super) listener: &'static str,
    pub(super) metrics: Arc<Metrics>,
}

impl ConnectionEvents for ListenerEvents {
    fn handshake_failed(&self, remote: SocketAddr, reason: &str) {
        self.metrics
            .tls_handshake_failures
            .with_label_values(&[self.listener])
            .inc();
        tracing::debug!(listener = self.listener, %remote, reason, "TLS handshake failed");
    }
    fn opened(&self) {
        self.metrics
            .connections_open
            .with_label_values(&[self.listener])
            .inc();
    }
    fn closed(&self) {
        self.metrics
            .connections_open
            .with_label_values(&[self.listener])
            .dec();
    }
    fn refused_over_address_cap(&self, remote: SocketAddr) {
        self.metrics
            .connections_refused
            .with_label_values(&[self.listener])
            .inc();
        tracing::debug!(listener = self.listener, %remote, "connection closed: too many from this address");
    }
}

/// The connection limits of the phones and API listeners.
pub(super) fn limits(config: &Config) -> Limits {
    Limits {
        max_connections: config.max_connections,
        handshake_timeout: config.handshake_timeout,
        header_read_timeout: config.header_read_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections_per_address: config.max_connections_per_address,
    }
}

/// The TLS acceptor of the phones and API listeners: the configured identities, or a
/// self-signed one generated into the data directory (fails fast on a bad file).
pub(super) fn acceptor(config: &Config) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(tls::server_config(
        &identities(config)?,
        &[b"http/1.1"],
        &tls::TlsTuning {
            tls13_tickets: config.tls_tickets,
            ..tls::TlsTuning::default()
        },
    )?))
}

/// TLS identities from the configuration, or the self-signed default.
fn identities(config: &Config) -> anyhow::Result<Vec<tls::Identity>> {
    let mut ids = Vec::new();
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => ids.push(tls::Identity {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => {
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            if let Some(host) = config
                .public_url
                .as_deref()
                .and_then(|u| u.split_once("://"))
                .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(rest))
            {
                names.push(host.to_owned());
            }
            ids.push(tls::self_signed(&config.data_dir, &names)?);
        }
    }
    if let (Some(cert), Some(key)) = (&config.tls_rsa_cert, &config.tls_rsa_key) {
        ids.push(tls::Identity {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    Ok(ids)
}

/// What serving the listeners needs.
pub(super) struct Serving<'a> {
    pub(super) config: &'a Config,
    pub(super) metrics: &'a Arc<Metrics>,
    pub(super) limits: &'a Limits,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) stop: &'a CancellationToken,
}

impl Serving<'_> {
    fn events(&self, listener: &'static str) -> Arc<ListenerEvents> {
        // Series exist from the start, so dashboards and alerts see zeros, not gaps.
        self.metrics
            .tls_handshake_failures
            .with_label_values(&[listener]);
        self.metrics.connections_open.with_label_values(&[listener]);
        Arc::new(ListenerEvents {
            listener,
            metrics: self.metrics.clone(),
        })
    }

    /// Serves phones on the HTTPS listener and, if configured, the plain-HTTP one.
    pub(super) fn phones(
        &self,
        https: Option<TcpListener>,
        http: Option<TcpListener>,
        provisioner: &Arc<Provisioner>,
    ) -> Vec<JoinHandle<()>> {
        [
            (https, self.tls.clone(), "phones"),
            (http, None, "phones_http"),
        ]
        .into_iter()
        .filter_map(|(listener, tls, name)| {
            let listener = listener?;
            let provisioner = provisioner.clone();
            Some(tokio::spawn(server::serve(
                listener,
                tls,
                move |conn| PhoneService::new(provisioner.clone(), conn),
                self.limits.clone(),
                self.events(name),
                self.stop.clone(),
                self.config.shutdown_grace,
            )))
        })
        .collect()
    }

    /// Serves the partner API on its listener.
    pub(super) fn api(
        &self,
        listener: TcpListener,
        state: partner_api::ApiState,
    ) -> JoinHandle<()> {
        tokio::spawn(server::serve(
            listener,
            self.tls.clone(),
            partner_api::service(partner_api::router(state)),
            self.limits.clone(),
            self.events("api"),
            self.stop.clone(),
            self.config.shutdown_grace,
        ))
    }
}
