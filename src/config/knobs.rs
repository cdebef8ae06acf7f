//! The knobs as each layer gives them (defaults, the TOML file, the environment, flags): every
//! value optional, merged layer over layer before [`super::Config`] decides each.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{DatabaseUrl, ExtraOui, Listen, LogFormat, Names, Networks, WrittenDuration};
use super::Error;

/// Every knob, each optional: one layer of configuration. The same struct is read from the
/// TOML file and from flags/environment; layers are merged field by field.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Knobs {
    /// TOML configuration file (its keys are these flags' names with `_`).
    #[arg(long, env = "ZEROTOUCH_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Directory for the database and the generated certificate [default: ./data]
    #[arg(long, env = "ZEROTOUCH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL shared by several nodes, postgres://USER:PASS@HOST:PORT/DB; its password is
    /// never printed or logged [default: none: SQLite in DATA_DIR]
    #[arg(long, env = "ZEROTOUCH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<DatabaseUrl>,

    /// Pooled connections to PostgreSQL per node (with --database-url) [default: 16]
    #[arg(long, env = "ZEROTOUCH_DATABASE_POOL_SIZE", value_name = "N")]
    pub database_pool_size: Option<usize>,

    /// HTTPS listener for phones, or `off` [default: 0.0.0.0:8443]
    #[arg(long, env = "ZEROTOUCH_PHONES_ADDR", value_name = "ADDR")]
    pub phones_addr: Option<Listen>,

    /// Plain-HTTP listener for phones that cannot do TLS, or `off` [default: off]
    #[arg(long, env = "ZEROTOUCH_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<Listen>,

    /// HTTPS listener for the partner API, or `off` [default: 0.0.0.0:9443]
    #[arg(long, env = "ZEROTOUCH_API_ADDR", value_name = "ADDR")]
    pub api_addr: Option<Listen>,

    /// File holding the administrator's API token (ZEROTOUCH_ADMIN_TOKEN also works) [default: none: admin routes refused]
    #[arg(long, env = "ZEROTOUCH_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The administrator's token itself: only from the environment (ZEROTOUCH_ADMIN_TOKEN),
    /// never a flag or the config file, so it stays out of `ps` and config repositories.
    #[arg(skip)]
    #[serde(skip)]
    pub admin_token: Option<String>,

    /// Internal HTTP listener for /metrics, /healthz, /readyz, or `off` [default: 127.0.0.1:9898]
    #[arg(long, env = "ZEROTOUCH_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<Listen>,

    /// PEM certificate chain for the TLS listeners [default: self-signed ECDSA in DATA_DIR/tls]
    #[arg(
        long,
        env = "ZEROTOUCH_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(
        long,
        env = "ZEROTOUCH_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// A second certificate (RSA) for phones that cannot verify ECDSA; chosen per ClientHello
    #[arg(
        long,
        env = "ZEROTOUCH_TLS_RSA_CERT",
        value_name = "FILE",
        requires = "tls_rsa_key"
    )]
    pub tls_rsa_cert: Option<PathBuf>,

    /// PEM private key of --tls-rsa-cert
    #[arg(
        long,
        env = "ZEROTOUCH_TLS_RSA_KEY",
        value_name = "FILE",
        requires = "tls_rsa_cert"
    )]
    pub tls_rsa_key: Option<PathBuf>,

    /// TLS 1.3 session tickets sent per handshake (0: no ticket resumption) [default: 1]
    #[arg(long, env = "ZEROTOUCH_TLS_TICKETS", value_name = "N")]
    pub tls_tickets: Option<usize>,

    /// Directory whose <vendor>/<file>.tera files override the shipped templates [default: none]
    #[arg(long, env = "ZEROTOUCH_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// scheme://host[:port] phones reach this server at, written into configs as the
    /// provisioning URL [default: taken from each request's Host header]
    #[arg(long, env = "ZEROTOUCH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Memory for rendered configs, bytes [default: 67108864]
    #[arg(long, env = "ZEROTOUCH_RENDER_CACHE_BYTES", value_name = "BYTES")]
    pub render_cache_bytes: Option<u64>,

    /// Open connections per listener at most [default: 10000]
    #[arg(long, env = "ZEROTOUCH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Time allowed for a TLS handshake [default: 10s]
    #[arg(long, env = "ZEROTOUCH_HANDSHAKE_TIMEOUT", value_name = "DURATION")]
    pub handshake_timeout: Option<WrittenDuration>,

    /// Time allowed for a request header, and for an idle keep-alive connection [default: 15s]
    #[arg(long, env = "ZEROTOUCH_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    pub header_read_timeout: Option<WrittenDuration>,

    /// Bytes of request line plus headers at most [default: 16384]
    #[arg(long, env = "ZEROTOUCH_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// Time in-flight requests get to finish on shutdown [default: 10s]
    #[arg(long, env = "ZEROTOUCH_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<WrittenDuration>,

    /// How often the registry reads changes made by other processes or nodes [default: 1s]
    #[arg(long, env = "ZEROTOUCH_CHANGE_POLL", value_name = "DURATION")]
    pub change_poll: Option<WrittenDuration>,

    /// A portal session ends after this long without a request [default: 30m]
    #[arg(long, env = "ZEROTOUCH_PORTAL_IDLE_TIMEOUT", value_name = "DURATION")]
    pub portal_idle_timeout: Option<WrittenDuration>,

    /// A portal session ends this long after its login, however busy [default: 12h]
    #[arg(
        long,
        env = "ZEROTOUCH_PORTAL_SESSION_LIFETIME",
        value_name = "DURATION"
    )]
    pub portal_session_lifetime: Option<WrittenDuration>,

    /// scheme://host[:port] partners reach the portal (the API listener) at, for the
    /// set-password links that `user create` prints [default: https://localhost:<api port>]
    #[arg(long, env = "ZEROTOUCH_PORTAL_URL", value_name = "URL")]
    pub portal_url: Option<String>,

    /// How often device last-seen status is written [default: 1s]
    #[arg(long, env = "ZEROTOUCH_STATUS_FLUSH", value_name = "DURATION")]
    pub status_flush: Option<WrittenDuration>,

    /// Misses (unknown MACs, failed authentication, unrecognised paths) a source network
    /// (/24, /64) may make before it is blocked [default: 100]
    #[arg(long, env = "ZEROTOUCH_THROTTLE_BUDGET", value_name = "N")]
    pub throttle_budget: Option<u32>,

    /// Misses forgiven per minute per source network [default: 30]
    #[arg(long, env = "ZEROTOUCH_THROTTLE_REFILL_PER_MINUTE", value_name = "N")]
    pub throttle_refill_per_minute: Option<u32>,

    /// How long a blocked source network gets 429 [default: 10m]
    #[arg(long, env = "ZEROTOUCH_THROTTLE_COOLDOWN", value_name = "DURATION")]
    pub throttle_cooldown: Option<WrittenDuration>,

    /// Source networks the throttle tracks at most (bounds its memory) [default: 100000]
    #[arg(long, env = "ZEROTOUCH_THROTTLE_MAX_SOURCES", value_name = "N")]
    pub throttle_max_sources: Option<usize>,

    /// How long a Digest nonce may be used [default: 5m]
    #[arg(long, env = "ZEROTOUCH_NONCE_LIFETIME", value_name = "DURATION")]
    pub nonce_lifetime: Option<WrittenDuration>,

    /// Digest nonces whose used counts are remembered at most (replay protection; a sixteenth
    /// of them per client network) [default: 1000000]
    #[arg(long, env = "ZEROTOUCH_NONCE_MEMORY", value_name = "N")]
    pub nonce_memory: Option<usize>,

    /// Open connections from one client address at most [default: 1024]
    #[arg(long, env = "ZEROTOUCH_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,

    /// Open connections from one IPv4 /24 at most [default: 2048]
    #[arg(
        long,
        env = "ZEROTOUCH_MAX_CONNECTIONS_PER_IPV4_NETWORK",
        value_name = "N"
    )]
    pub max_connections_per_ipv4_network: Option<usize>,

    /// Open connections from one IPv6 /64 at most [default: 1024]
    #[arg(
        long,
        env = "ZEROTOUCH_MAX_CONNECTIONS_PER_IPV6_NETWORK",
        value_name = "N"
    )]
    pub max_connections_per_ipv6_network: Option<usize>,

    /// Answers in a row that serve a phone nothing (optional files, refusals, challenges)
    /// after which its connection is closed [default: 8]
    #[arg(long, env = "ZEROTOUCH_MAX_UNSERVED_PER_CONNECTION", value_name = "N")]
    pub max_unserved_per_connection: Option<u32>,

    /// Networks of load balancers whose connections start with a PROXY protocol header
    /// (v1 or v2) naming the client, comma-separated CIDRs; their connections must send one,
    /// anyone else's is closed for sending one [default: none]
    #[arg(long, env = "ZEROTOUCH_PROXY_PROTOCOL_FROM", value_name = "CIDR,...")]
    pub proxy_protocol_from: Option<Networks>,

    /// How often the TLS certificate and key files are checked for changes, `0s` for never
    /// (SIGHUP reloads them too) [default: 5s]
    #[arg(long, env = "ZEROTOUCH_TLS_RELOAD_POLL", value_name = "DURATION")]
    pub tls_reload_poll: Option<WrittenDuration>,

    /// ACME directory URL to get the TLS certificate from, e.g.
    /// https://acme-v02.api.letsencrypt.org/directory (with --acme-domains; replaces
    /// --tls-cert; needs --http-addr reachable on port 80 for HTTP-01) [default: none]
    #[arg(long, env = "ZEROTOUCH_ACME_DIRECTORY", value_name = "URL")]
    pub acme_directory: Option<String>,

    /// Contacts for the ACME account, e-mail addresses (comma-separated; an array in the
    /// file) [default: none]
    #[arg(long, env = "ZEROTOUCH_ACME_CONTACT", value_name = "EMAIL,...")]
    pub acme_contact: Option<Names>,

    /// Names the ACME certificate is for (comma-separated; an array in the file)
    /// [default: none]
    #[arg(long, env = "ZEROTOUCH_ACME_DOMAINS", value_name = "NAME,...")]
    pub acme_domains: Option<Names>,

    /// PEM file of the root certificate that the ACME directory's HTTPS is checked against,
    /// for a private or test CA [default: the system's trusted roots]
    #[arg(long, env = "ZEROTOUCH_ACME_CA_ROOT", value_name = "FILE")]
    pub acme_ca_root: Option<PathBuf>,

    /// Renew the ACME certificate this long before it expires (or with a third of its
    /// lifetime left, if that is sooner) [default: 30d]
    #[arg(long, env = "ZEROTOUCH_ACME_RENEW_BEFORE", value_name = "DURATION")]
    pub acme_renew_before: Option<WrittenDuration>,

    /// How often each node reads the stored ACME certificate and checks whether it is due
    /// for renewal; the first retry after a failed order waits as long, doubling up to 6h
    /// [default: 1m]
    #[arg(long, env = "ZEROTOUCH_ACME_CHECK_EVERY", value_name = "DURATION")]
    pub acme_check_every: Option<WrittenDuration>,

    /// Yealink RPS API base URL [default: https://api-dm.yealink.com:8443]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_YEALINK_URL", value_name = "URL")]
    pub redirect_yealink_url: Option<String>,

    /// Yealink RPS access key id; with the secret, registers claimed Yealink phones with RPS [default: none: not registered]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_YEALINK_KEY_ID", value_name = "ID")]
    pub redirect_yealink_key_id: Option<String>,

    /// Yealink RPS access key secret: from the file or ZEROTOUCH_REDIRECT_YEALINK_SECRET only, never a flag
    #[arg(skip)]
    pub redirect_yealink_secret: Option<String>,

    /// File holding the Yealink RPS access key secret [default: none]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_YEALINK_SECRET_FILE",
        value_name = "FILE"
    )]
    pub redirect_yealink_secret_file: Option<PathBuf>,

    /// Snom SRAPS API base URL [default: https://secure-provisioning.snom.com/api/v1]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_SNOM_URL", value_name = "URL")]
    pub redirect_snom_url: Option<String>,

    /// Snom SRAPS access key id (Hawk); with the key, registers claimed Snom phones with SRAPS [default: none: not registered]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_SNOM_HAWK_ID", value_name = "ID")]
    pub redirect_snom_hawk_id: Option<String>,

    /// Snom SRAPS secret key (Hawk): from the file or ZEROTOUCH_REDIRECT_SNOM_HAWK_KEY only, never a flag
    #[arg(skip)]
    pub redirect_snom_hawk_key: Option<String>,

    /// File holding the Snom SRAPS secret key [default: none]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_SNOM_HAWK_KEY_FILE",
        value_name = "FILE"
    )]
    pub redirect_snom_hawk_key_file: Option<PathBuf>,

    /// Gigaset redirect server's XML-RPC URL [default: https://prov.gigaset.net/apxml/rpc.do]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_GIGASET_URL", value_name = "URL")]
    pub redirect_gigaset_url: Option<String>,

    /// Gigaset redirect server provider account; with the password, registers claimed Gigaset phones [default: none: not registered]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_GIGASET_USER", value_name = "USER")]
    pub redirect_gigaset_user: Option<String>,

    /// Gigaset redirect server password: from the file or ZEROTOUCH_REDIRECT_GIGASET_PASSWORD only, never a flag
    #[arg(skip)]
    pub redirect_gigaset_password: Option<String>,

    /// File holding the Gigaset redirect server password [default: none]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_GIGASET_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub redirect_gigaset_password_file: Option<PathBuf>,

    /// Ask the vendor's redirect service before a claim and refuse a MAC it holds for another provider (409 registered_elsewhere) [default: false]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_CHECK_BEFORE_CLAIM",
        value_name = "BOOL"
    )]
    pub redirect_check_before_claim: Option<bool>,

    /// How long a claim waits for that answer before it is accepted and the registration queued [default: 3s]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_CHECK_TIMEOUT",
        value_name = "DURATION"
    )]
    pub redirect_check_timeout: Option<WrittenDuration>,

    /// Time-out of one call to a redirect service [default: 10s]
    #[arg(
        long,
        env = "ZEROTOUCH_REDIRECT_REQUEST_TIMEOUT",
        value_name = "DURATION"
    )]
    pub redirect_request_timeout: Option<WrittenDuration>,

    /// Wait before the first retry of a failed delivery; doubles per try [default: 10s]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_RETRY_FIRST", value_name = "DURATION")]
    pub redirect_retry_first: Option<WrittenDuration>,

    /// Longest wait between retries [default: 1h]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_RETRY_MAX", value_name = "DURATION")]
    pub redirect_retry_max: Option<WrittenDuration>,

    /// How long a node holds outbox rows it is delivering before another node (or itself after a restart) may take them [default: 60s]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_LEASE", value_name = "DURATION")]
    pub redirect_lease: Option<WrittenDuration>,

    /// How often the outbox is read when it was empty [default: 1s]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_POLL", value_name = "DURATION")]
    pub redirect_poll: Option<WrittenDuration>,

    /// Calls to redirect services in flight at once per node [default: 64]
    #[arg(long, env = "ZEROTOUCH_REDIRECT_CONCURRENCY", value_name = "N")]
    pub redirect_concurrency: Option<usize>,

    /// Log format [default: text]
    #[arg(long, env = "ZEROTOUCH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `zerotouch=debug` (RUST_LOG overrides) [default: info]
    #[arg(long, env = "ZEROTOUCH_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Extra OUI prefix for a vendor, `vendor=AA:BB:CC`; repeat for more
    #[arg(
        long = "extra-oui",
        env = "ZEROTOUCH_EXTRA_OUIS",
        value_name = "VENDOR=OUI",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub extra_ouis: Vec<ExtraOui>,
}

macro_rules! merge_fields {
    ($base:ident, $over:ident; $($f:ident),*) => {
        Knobs { config: $over.config.or($base.config), admin_token: $over.admin_token.or($base.admin_token), extra_ouis: if $over.extra_ouis.is_empty() { $base.extra_ouis } else { $over.extra_ouis }, $($f: $over.$f.or($base.$f)),* }
    };
}

impl Knobs {
    /// `over`'s values where set, else `self`'s.
    pub fn merged_with(self, over: Knobs) -> Knobs {
        let base = self;
        merge_fields!(base, over; data_dir, database_url, database_pool_size, phones_addr, http_addr, api_addr, admin_token_file, metrics_addr, tls_cert, tls_key,
            tls_rsa_cert, tls_rsa_key, tls_tickets, templates, public_url, render_cache_bytes,
            max_connections, handshake_timeout, header_read_timeout, max_header_bytes,
            shutdown_grace, change_poll, status_flush, portal_idle_timeout, portal_session_lifetime, portal_url, log_format, log_level, throttle_budget,
            throttle_refill_per_minute, throttle_cooldown, throttle_max_sources, nonce_lifetime, nonce_memory,
            max_connections_per_address, max_connections_per_ipv4_network,
            max_connections_per_ipv6_network, max_unserved_per_connection, proxy_protocol_from,
            tls_reload_poll, acme_directory, acme_contact, acme_domains, acme_ca_root,
            acme_renew_before, acme_check_every, redirect_yealink_url, redirect_yealink_key_id, redirect_yealink_secret, redirect_yealink_secret_file, redirect_snom_url, redirect_snom_hawk_id, redirect_snom_hawk_key, redirect_snom_hawk_key_file, redirect_gigaset_url, redirect_gigaset_user, redirect_gigaset_password, redirect_gigaset_password_file, redirect_check_before_claim, redirect_check_timeout, redirect_request_timeout, redirect_retry_first, redirect_retry_max, redirect_lease, redirect_poll, redirect_concurrency)
    }

    /// Reads a TOML file as a layer.
    pub fn from_file(path: &Path) -> Result<Knobs, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
