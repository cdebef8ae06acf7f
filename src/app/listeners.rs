//! The listeners: binding them (before anything else, so tests and `main` know the addresses
//! and hold the reload handle), their TLS certificates, their limits, and serving phones and
//! partners on them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::acme::{Challenges, Http01};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::partner_api;
use crate::provisioning::routes::{Body as PhoneBody, PhoneService};
use crate::provisioning::Provisioner;
use crate::reload::{self, Reload};
use crate::server::certificates::Certificates;
use crate::server::tls::{self, HandshakeFailure};
use crate::server::{self, ConnInfo, ConnectionEvents, Limits, Refusal};

/// The bound listeners, before anything is served, and the handle that asks the server they
/// will serve to reload.
pub struct Listeners {
    pub(super) phones: Option<TcpListener>,
    pub(super) http: Option<TcpListener>,
    pub(super) api: Option<TcpListener>,
    pub(super) metrics: Option<TcpListener>,
    pub(super) reload: Reload,
    pub(super) reload_requests: reload::Requests,
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
        let (reload, reload_requests) = reload::channel();
        Ok(Self {
            phones: bind_one("phones (HTTPS)", config.phones_addr).await?,
            http: bind_one("phones (HTTP)", config.http_addr).await?,
            api: bind_one("partner API", config.api_addr).await?,
            metrics: bind_one("metrics", config.metrics_addr).await?,
            reload,
            reload_requests,
        })
    }

    /// Asks the server these listeners serve to reload what can change while it runs (what
    /// SIGHUP does); requests made before it runs wait for it.
    pub fn reload(&self) -> Reload {
        self.reload.clone()
    }

    /// What a phone's Host header would name, for rendering a config without a phone's
    /// request (the partner API's preview) when no `public_url` is configured: the HTTPS
    /// listener if there is one, else the plain one; `None` when this node serves no phones.
    pub fn phones_origin(&self) -> Option<String> {
        let addresses = self.addresses();
        match (addresses.phones, addresses.http) {
            (Some(a), _) => Some(format!("https://{a}")),
            (None, Some(a)) => Some(format!("http://{a}")),
            (None, None) => None,
        }
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
    fn handshake_failed(&self, remote: SocketAddr, reason: HandshakeFailure, detail: &str) {
        self.metrics
            .tls_handshake_failures
            .with_label_values(&[self.listener, reason.label()])
            .inc();
        tracing::debug!(listener = self.listener, %remote, reason = reason.label(), detail, "TLS handshake failed");
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
    fn refused(&self, remote: SocketAddr, reason: Refusal) {
        self.metrics
            .connections_refused
            .with_label_values(&[self.listener, reason.label()])
            .inc();
        tracing::debug!(listener = self.listener, %remote, reason = reason.label(), "connection refused or closed by the server");
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
        max_connections_per_ipv4_network: config.max_connections_per_ipv4_network,
        max_connections_per_ipv6_network: config.max_connections_per_ipv6_network,
        proxy_protocol_from: config.proxy_protocol_from.clone().into(),
    }
}

/// The certificates of the phones and API listeners: the configured files, or a self-signed
/// pair generated into the data directory (fails fast on a bad file).
pub(super) fn certificates(config: &Config) -> anyhow::Result<Arc<Certificates>> {
    Ok(Arc::new(Certificates::load(identities(config)?)?))
}

/// The TLS acceptor presenting `certificates`.
pub(super) fn acceptor(
    certificates: Arc<Certificates>,
    config: &Config,
) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(tls::server_config(
        certificates,
        &[b"http/1.1"],
        &tls::TlsTuning {
            tls13_tickets: config.tls_tickets,
            ..tls::TlsTuning::default()
        },
    )?))
}

/// TLS identities from the configuration, the ACME certificate's files, or the self-signed
/// default.
fn identities(config: &Config) -> anyhow::Result<Vec<tls::Identity>> {
    let mut ids = Vec::new();
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => ids.push(tls::Identity {
            cert: cert.clone(),
            key: key.clone(),
        }),
        // Written by `acme::prepare` before TLS is built.
        _ if config.acme_directory.is_some() => ids.push(super::acme::identity(&config.data_dir)),
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
    fn events(&self, listener: &'static str, tls: bool) -> Arc<ListenerEvents> {
        // Series exist from the start, so dashboards and alerts see zeros, not gaps.
        if tls {
            for reason in HandshakeFailure::ALL {
                self.metrics
                    .tls_handshake_failures
                    .with_label_values(&[listener, reason.label()]);
            }
        }
        for reason in Refusal::ALL {
            self.metrics
                .connections_refused
                .with_label_values(&[listener, reason.label()]);
        }
        self.metrics.connections_open.with_label_values(&[listener]);
        Arc::new(ListenerEvents {
            listener,
            metrics: self.metrics.clone(),
        })
    }

    /// Serves phones on the HTTPS listener and, if configured, the plain-HTTP one (with ACME's
    /// HTTP-01 answers in front when `challenges` is given).
    pub(super) fn phones(
        &self,
        https: Option<TcpListener>,
        http: Option<TcpListener>,
        provisioner: &Arc<Provisioner>,
        challenges: Option<Arc<Challenges>>,
    ) -> Vec<JoinHandle<()>> {
        let max_unserved = self.config.max_unserved_per_connection;
        let mut servers = Vec::new();
        if let Some(listener) = https {
            let provisioner = provisioner.clone();
            servers.push(
                self.spawn(listener, self.tls.clone(), "phones", move |conn| {
                    PhoneService::new(provisioner.clone(), conn, max_unserved)
                }),
            );
        }
        if let Some(listener) = http {
            let provisioner = provisioner.clone();
            servers.push(match challenges {
                Some(challenges) => self.spawn(listener, None, "phones_http", move |conn| {
                    Http01::new(
                        challenges.clone(),
                        PhoneService::new(provisioner.clone(), conn, max_unserved),
                    )
                }),
                None => self.spawn(listener, None, "phones_http", move |conn| {
                    PhoneService::new(provisioner.clone(), conn, max_unserved)
                }),
            });
        }
        servers
    }

    fn spawn<F, S>(
        &self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        name: &'static str,
        make_service: F,
    ) -> JoinHandle<()>
    where
        F: Fn(ConnInfo) -> S + Send + Sync + 'static,
        S: hyper::service::Service<
                http::Request<hyper::body::Incoming>,
                Response = http::Response<PhoneBody>,
                Error = std::convert::Infallible,
            > + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let events = self.events(name, tls.is_some());
        tokio::spawn(server::serve(
            listener,
            tls,
            make_service,
            self.limits.clone(),
            events,
            self.stop.clone(),
            self.config.shutdown_grace,
        ))
    }

    /// Serves the partner API and the portal (`portal::router`) on their listener.
    pub(super) fn api(&self, listener: TcpListener, router: axum::Router) -> JoinHandle<()> {
        tokio::spawn(server::serve(
            listener,
            self.tls.clone(),
            partner_api::service(router),
            self.limits.clone(),
            self.events("api", self.tls.is_some()),
            self.stop.clone(),
            self.config.shutdown_grace,
        ))
    }
}
