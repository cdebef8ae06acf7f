//! The one-shot commands besides `serve`: importing a document, issuing a partner's token,
//! creating a portal user or resetting its password (a one-time set-password link),
//! rendering what one phone would receive, and backing up and restoring the embedded store.
//! Each opens the configured store, does its work and returns what `main` prints; [`Output`]
//! decides whether a person or a script reads it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::domain::{partner::check_partner_name, Mac};
use crate::import;
use crate::metrics::Metrics;
use crate::partner_api;
use crate::provisioning::{self, Provisioner, Renderer};
use crate::registry::Registry;
use crate::store::sqlite::SqliteStore;
use crate::store::Actor;

use super::components::throttle_settings;
use super::progress::{Activity, ImportProgress};
use super::store::open_store;

/// Who reads a command's standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A person: short lines.
    #[default]
    Text,
    /// A script: one JSON document.
    Json,
}

/// `zerotouch import FILE [--partner NAME]`: applies an import document, as the operator or
/// on behalf of a partner (whose own tenants only it may change or fill). Shows its progress on
/// stderr when stderr is a terminal.
pub async fn import_file(
    config: &Config,
    file: &Path,
    partner: Option<&str>,
) -> anyhow::Result<import::Report> {
    let document = tokio::fs::read(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    let store = open_store(config).await?;
    let mut actor = Actor::cli();
    if let Some(name) = partner {
        let p = store.partner_by_name(name).await?.with_context(|| {
            format!("no partner named {name:?} (zerotouch token create --partner creates one)")
        })?;
        actor.partner = Some(p.id);
        actor.name = format!("cli:partner:{}:{}", p.id, p.name);
    }
    let progress = ImportProgress::on_stderr();
    let report = import::import_json_reporting(
        store.as_ref(),
        &config.oui_table(),
        config.redirect.vendors(),
        &document,
        &actor,
        &progress,
    )
    .await;
    progress.finish();
    Ok(report?)
}

/// An import's report as `output` asks: every row's result as JSON, or for a person the refused
/// rows (one line each) and a count per result.
pub fn print_import(report: &import::Report, output: Output) -> anyhow::Result<String> {
    if output == Output::Json {
        return Ok(serde_json::to_string_pretty(report)? + "\n");
    }
    let mut text = String::new();
    for (kind, rows) in [("tenant", &report.tenants), ("device", &report.devices)] {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for r in rows {
            match counts.iter_mut().find(|(status, _)| *status == r.status) {
                Some((_, n)) => *n += 1,
                None => counts.push((r.status, 1)),
            }
            if r.status == "refused" {
                text += &format!(
                    "{kind} row {} {:?}: refused ({}): {}\n",
                    r.row,
                    r.key,
                    r.code.unwrap_or("-"),
                    r.reason.as_deref().unwrap_or("")
                );
            }
        }
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let counts = if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        };
        text += &format!("{kind}s: {counts}\n");
    }
    text += &format!(
        "{} rows applied, {} refused\n",
        report.applied, report.refused
    );
    Ok(text)
}

/// A partner's new API token, as `token create` prints it.
#[derive(Debug, serde::Serialize)]
pub struct IssuedToken {
    /// The partner's name.
    pub partner: String,
    /// The partner's id.
    pub partner_id: crate::domain::PartnerId,
    /// Whether the partner was created by this command.
    pub partner_created: bool,
    /// The token's public identifier (listed by the API; the token itself never is again).
    pub key_id: String,
    /// The token, shown once: only its hash is stored.
    pub token: String,
}

impl IssuedToken {
    /// The token alone for a person (the partner's creation went to stderr), or every field
    /// as JSON.
    pub fn print(&self, output: Output) -> anyhow::Result<String> {
        Ok(match output {
            Output::Text => format!("{}\n", self.token),
            Output::Json => serde_json::to_string_pretty(self)? + "\n",
        })
    }
}

/// `zerotouch token create --partner NAME`: issues a token for the partner, creating the
/// partner if it does not exist. The token is shown once (only its hash is stored).
pub async fn create_token(config: &Config, partner: &str) -> anyhow::Result<IssuedToken> {
    check_partner_name(partner)?;
    let store = open_store(config).await?;
    let actor = Actor::cli();
    let mut partner_created = false;
    let record = match store.partner_by_name(partner).await? {
        Some(p) => p,
        None => {
            partner_created = true;
            let p = store
                .create_partner(partner, &actor)
                .await?
                .context("the partner was created concurrently; run again")?;
            tracing::info!(partner = %p.name, id = p.id, "partner created");
            eprintln!("created partner {:?} (id {})", p.name, p.id);
            p
        }
    };
    let issued = partner_api::auth::issue()?;
    store
        .create_token(
            record.id,
            crate::store::NewToken {
                key_id: issued.key_id.clone(),
                secret_hash: issued.secret_hash.to_vec(),
                name: Some("created on the command line".into()),
                ..crate::store::NewToken::default()
            },
            &actor,
        )
        .await?
        .context("the partner disappeared")?;
    Ok(IssuedToken {
        partner: record.name,
        partner_id: record.id,
        partner_created,
        key_id: issued.key_id,
        token: issued.token,
    })
}

/// Where set-password links point: `portal_url`, else the API listener on this host.
fn portal_origin(config: &Config) -> String {
    config.portal_url.clone().unwrap_or_else(|| {
        let port = config.api_addr.map_or(9443, |a| a.port());
        format!("https://localhost:{port}")
    })
}

/// `zerotouch user create --partner NAME --email E`: creates a portal user of an existing
/// partner (with `--admin` instead of a partner, an administrator); the one-time set-password
/// link to hand over.
pub async fn create_user(
    config: &Config,
    partner: Option<&str>,
    email: &str,
) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let record = match partner {
        Some(name) => Some(
            store
                .partner_by_name(name)
                .await?
                .with_context(|| format!("no partner named {name:?}"))?,
        ),
        None => None,
    };
    let (user, link) = partner_api::users::create_with_link(
        store.as_ref(),
        record.as_ref().map(|p| p.id),
        email,
        &Actor::cli(),
        &portal_origin(config),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let whose = match &record {
        Some(p) => format!("of partner {:?}", p.name),
        None => "(an administrator)".to_owned(),
    };
    eprintln!(
        "created portal user {} (id {}) {whose}; this link sets its password and works once, for 3 days:",
        user.email, user.id
    );
    Ok(link)
}

/// `zerotouch user disable|enable --email E`: disables (ending its sessions) or enables a
/// portal user; what was done.
pub async fn set_user_disabled(
    config: &Config,
    email: &str,
    disabled: bool,
) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let email = partner_api::users::normalise_email(email)
        .with_context(|| format!("{email:?} is not an e-mail address"))?;
    let user = store
        .user_by_email(&email)
        .await?
        .with_context(|| format!("no portal user {email:?}"))?;
    partner_api::users::set_disabled(store.as_ref(), user.id, disabled, &Actor::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "{} portal user {} (id {})",
        if disabled { "disabled" } else { "enabled" },
        user.email,
        user.id
    ))
}

/// `zerotouch user reset --email E`: a new one-time set-password link for a portal user.
pub async fn reset_user(config: &Config, email: &str) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let email = partner_api::users::normalise_email(email)
        .with_context(|| format!("{email:?} is not an e-mail address"))?;
    let user = store
        .user_by_email(&email)
        .await?
        .with_context(|| format!("no portal user {email:?}"))?;
    partner_api::users::reset_with_link(
        store.as_ref(),
        user.id,
        &Actor::cli(),
        &portal_origin(config),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What a phone would receive, for `zerotouch render`: the same pipeline as a real fetch,
/// against the store's current data for that one device, answered as to a phone that
/// authenticated (placeholder credentials, nothing bound).
pub async fn render_once(
    config: &Config,
    mac: Mac,
    path: Option<&str>,
    user_agent: Option<&str>,
) -> anyhow::Result<provisioning::Answer> {
    let store = open_store(config).await?;
    let registry = Arc::new(Registry::new());
    let device = store.device(mac).await?;
    if let Some(d) = &device {
        if let Some(t) = store.tenant(d.tenant).await? {
            registry.put_tenant(t);
        }
    }
    let vendor = device
        .as_ref()
        .map(|d| d.vendor)
        .or_else(|| config.oui_table().vendor_of(mac));
    if let Some(d) = device {
        registry.put_device(d);
    }
    // A MAC of no known vendor is answered 404 whatever its file; any name shows that.
    let default_path = vendor.map_or_else(
        || format!("/{}.xml", mac.to_upper_hex()),
        |v| provisioning::device_file(v, mac),
    );
    let path = path.map_or(default_path, |p| {
        if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        }
    });
    let renderer = Renderer::load(config.templates.as_deref()).context("cannot load templates")?;
    let provisioner = Provisioner::new(
        registry,
        renderer,
        Arc::new(config.oui_table()),
        provisioning::Settings {
            public_url: config.public_url.clone(),
            render_cache_bytes: 1 << 20,
            // The operator sees what the phone gets once authenticated; nothing is bound.
            dry_run: true,
        },
        Arc::new(Metrics::new(
            provisioning::METRIC_SLOTS,
            provisioning::VENDOR_METRIC_SLOTS,
        )),
        None,
        provisioning::Admission {
            throttle: provisioning::throttle::Throttle::new(throttle_settings(config)),
            nonces: provisioning::auth::Nonces::new(b"dry run", config.nonce_lifetime, 16),
            backoff: provisioning::backoff::Backoff::new(),
            unanswered: provisioning::unanswered::Unanswered::new(),
        },
        None,
    );
    let local = config
        .phones_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
    let fetch = provisioning::Fetch {
        method: "GET",
        path_and_query: &path,
        user_agent,
        host: None,
        authorization: None,
        source: std::net::IpAddr::from([127, 0, 0, 1]),
        local,
        tls: config.phones_addr.is_some(),
    };
    Ok(match provisioner.handle(&fetch) {
        provisioning::Handled::Done(answer) => answer,
        provisioning::Handled::Issue(ticket) => provisioner.issue(*ticket).await,
    })
}

/// The SQLite file of the configured store, or why `what` does not apply: a node on
/// PostgreSQL backs up with PostgreSQL's own tools.
fn sqlite_store_of(config: &Config, what: &str) -> anyhow::Result<std::path::PathBuf> {
    if config.database_url.is_some() {
        anyhow::bail!(
            "{what} works on the embedded SQLite store, and this configuration uses PostgreSQL \
             (database_url): use pg_dump / pg_restore or pg_basebackup (README, \"Backups\")"
        );
    }
    Ok(config.database_path())
}

/// `zerotouch redirect sync`: compares our claims with what the vendors' redirect services
/// hold and prints the differences; with `apply`, queues the repairs (the running servers'
/// workers deliver them).
pub async fn redirect_sync(
    config: &Config,
    vendor: Option<crate::domain::Vendor>,
    apply: bool,
) -> anyhow::Result<String> {
    let services = super::redirect::services(config)?;
    let vendors: Vec<_> = match vendor {
        Some(v) => vec![v],
        None => config.redirect.vendors().iter().collect(),
    };
    if vendors.is_empty() {
        anyhow::bail!("no redirect service is configured (redirect_yealink_key_id, redirect_snom_hawk_id, redirect_gigaset_user and their secrets)");
    }
    let store = open_store(config).await?;
    let report = super::redirect::sync(store.as_ref(), &services, &vendors, apply).await?;
    Ok(report.print())
}

/// `zerotouch backup FILE`: a consistent copy of the SQLite store, taken while a server may
/// be running and writing. Returns the line `main` prints.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<String> {
    let db = sqlite_store_of(config, "backup")?;
    let (from, to) = (db.clone(), file.to_owned());
    let _shown = Activity::on_stderr(format!(
        "backing up {} (one snapshot, then checked)",
        db.display()
    ));
    let report = tokio::task::spawn_blocking(move || SqliteStore::backup(&from, &to))
        .await
        .context("backup task failed")?
        .with_context(|| format!("cannot back up {} to {}", db.display(), file.display()))?;
    Ok(format!(
        "backed up {} to {}: schema version {}, {} device(s), {} bytes\n",
        db.display(),
        file.display(),
        report.schema_version,
        report.devices,
        report.bytes
    ))
}

/// `zerotouch restore FILE`: replaces the SQLite store with a backup once it is checked
/// (schema this build knows, SQLite's integrity check); refused while a server or another
/// command has the store open. Returns the line `main` prints.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<String> {
    let db = sqlite_store_of(config, "restore")?;
    let (from, to) = (file.to_owned(), db.clone());
    let _shown = Activity::on_stderr(format!("checking and restoring {}", file.display()));
    let report = tokio::task::spawn_blocking(move || SqliteStore::restore(&from, &to))
        .await
        .context("restore task failed")?
        .with_context(|| format!("cannot restore {} into {}", file.display(), db.display()))?;
    Ok(format!(
        "restored {} into {}{}: schema version {}, {} device(s); `zerotouch serve` migrates it if older\n",
        file.display(),
        db.display(),
        if report.replaced {
            " (the store that was there is replaced)"
        } else {
            ""
        },
        report.schema_version,
        report.devices
    ))
}
