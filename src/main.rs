//! The `zerotouch` command: parse the command line, load the configuration, start logging,
//! run the chosen command, and turn its result into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use zerotouch::app::Output;
use zerotouch::config::{Config, Knobs};
use zerotouch::domain::Mac;
use zerotouch::{app, build_info, shutdown, telemetry};

#[derive(Parser)]
#[command(
    name = "zerotouch",
    version,
    long_version = build_info::LONG_VERSION,
    about = "Zero-touch provisioning server for Yealink, Snom and Gigaset phones"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Issue a token for a partner (created if it does not exist) and print it. It is shown
    /// once: only its hash is stored.
    Create {
        /// Partner name.
        #[arg(long)]
        partner: String,
        /// `text`: the token alone; `json`: the token with its partner and key id.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        knobs: Knobs,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a portal user for a partner, or an administrator (`--admin`), and print a
    /// one-time link (`<portal_url>/set-password?token=…`, valid 3 days) with which the person
    /// sets a password. Hand the link over yourself: zerotouch sends no e-mail.
    Create {
        /// The partner's name (it must exist: `token create` or the API creates partners).
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        partner: Option<String>,
        /// One of the operator's administrators: the portal's audit log across partners and
        /// every partner's users, with the administrator's rights.
        #[arg(long)]
        admin: bool,
        /// The person's e-mail, the login name.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Reset a portal user's password: print a new one-time set-password link (earlier links
    /// stop working; the user's sessions end when the new password is set).
    Reset {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Disable a portal user: it can no longer log in, and its sessions end at once.
    Disable {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Enable a disabled portal user again.
    Enable {
        /// The user's e-mail.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        knobs: Knobs,
    },
}

#[derive(Subcommand)]
enum RedirectAction {
    /// Compare the devices claimed here with what the vendors' redirect services hold (where
    /// their API can list) and print the differences; with --apply, queue the registrations
    /// and deregistrations that repair them, for the servers' outbox workers to deliver.
    Sync {
        /// Only this vendor (yealink, snom, gigaset) [default: every vendor configured]
        #[arg(long)]
        vendor: Option<zerotouch::domain::Vendor>,
        /// Queue the repairs instead of only printing them.
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        knobs: Knobs,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Serve phones (HTTPS, optional HTTP) and metrics until SIGTERM or SIGINT; SIGHUP reloads
    /// the TLS certificate files.
    Serve {
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Load tenants and devices from a JSON file into the store and print the result: the
    /// refused rows and a count per result, or with `--output json` one result per row. Exit
    /// code 0 when every row was applied, 3 when some rows were refused (the others are
    /// applied), 1 when nothing could be applied. Shows progress when stderr is a terminal.
    Import {
        /// The import document.
        file: PathBuf,
        /// `text` for a person, `json` (every row's result) for a script.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        /// Import on behalf of this partner: new tenants become its own, and only its tenants
        /// may be changed or receive devices. Without it the operator imports unscoped.
        #[arg(long)]
        partner: Option<String>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Manage partners' API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage the partner portal's users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Registrations with the vendors' redirect services (Yealink RPS, Snom SRAPS, Gigaset).
    Redirect {
        #[command(subcommand)]
        action: RedirectAction,
    },
    /// Print exactly what a phone would receive for a request, for debugging a phone.
    Render {
        /// The phone's MAC (any notation).
        #[arg(long)]
        mac: String,
        /// Request path, e.g. /y000000000066.cfg [default: the vendor's per-device file]
        #[arg(long)]
        path: Option<String>,
        /// The phone's User-Agent.
        #[arg(long)]
        user_agent: Option<String>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Apply pending schema migrations to the configured store (PostgreSQL with
    /// --database-url, else SQLite in the data directory) and print what was done. `serve`
    /// does the same at start; this runs it explicitly, e.g. before rolling out new nodes.
    /// Refuses a database migrated by a newer zerotouch.
    Migrate {
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Copy the embedded SQLite store to FILE while the server may run and write: one
    /// consistent snapshot (SQLite's online backup), written privately (0600) and renamed into
    /// place. With --database-url use pg_dump instead.
    Backup {
        /// Where to write the copy (replaced if it exists).
        file: PathBuf,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Replace the embedded SQLite store with a backup, after checking that this zerotouch
    /// knows its schema and that it passes SQLite's integrity check. Refused while a server or
    /// another command has the store open: stop the server first.
    Restore {
        /// The backup to restore.
        file: PathBuf,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Check the configuration and templates, and print the effective configuration.
    CheckConfig {
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Print the manual page, or write one page per command into a directory.
    Man {
        /// Write zerotouch.1 and zerotouch-COMMAND.1 here instead of printing zerotouch.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the completion script for a shell.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: app::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let knobs = match &cli.command {
        Command::Man { dir } => {
            return offline(app::man_pages(
                Cli::command(),
                dir.as_deref(),
                &mut std::io::stdout(),
            ))
        }
        Command::Completions { shell } => {
            app::completions(Cli::command(), *shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Serve { knobs }
        | Command::Import { knobs, .. }
        | Command::Render { knobs, .. }
        | Command::Token {
            action: TokenAction::Create { knobs, .. },
        }
        | Command::Redirect {
            action: RedirectAction::Sync { knobs, .. },
        }
        | Command::User {
            action:
                UserAction::Create { knobs, .. }
                | UserAction::Reset { knobs, .. }
                | UserAction::Disable { knobs, .. }
                | UserAction::Enable { knobs, .. },
        }
        | Command::Migrate { knobs }
        | Command::Backup { knobs, .. }
        | Command::Restore { knobs, .. }
        | Command::CheckConfig { knobs } => knobs.clone(),
    };
    let config = match Config::load(knobs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zerotouch: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = match telemetry::init(config.log_format, &config.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("zerotouch: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zerotouch: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("zerotouch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { .. } => {
            let listeners = app::Listeners::bind(&config).await?;
            let addrs = listeners.addresses();
            tracing::info!(phones = ?addrs.phones, http = ?addrs.http, metrics = ?addrs.metrics, "listening");
            let stop = CancellationToken::new();
            shutdown::on_signal(stop.clone());
            shutdown::on_reload_signal(listeners.reload());
            app::run(config, listeners, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            file,
            partner,
            output,
            ..
        } => {
            let report = app::import_file(&config, &file, partner.as_deref()).await?;
            print!("{}", app::print_import(&report, output)?);
            Ok(if report.refused == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Render {
            mac,
            path,
            user_agent,
            ..
        } => {
            let mac = Mac::parse(&mac).with_context(|| format!("--mac {mac:?}"))?;
            let answer =
                app::render_once(&config, mac, path.as_deref(), user_agent.as_deref()).await?;
            eprintln!(
                "{} {} ({})",
                answer.outcome.status(),
                answer.outcome.label(),
                answer.content_type
            );
            use std::io::Write;
            std::io::stdout().write_all(&answer.body)?;
            Ok(if answer.outcome.status() == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(4)
            })
        }
        Command::Token {
            action: TokenAction::Create {
                partner, output, ..
            },
        } => {
            print!(
                "{}",
                app::create_token(&config, &partner).await?.print(output)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            action: UserAction::Create { partner, email, .. },
        } => {
            // clap requires --partner unless --admin, and refuses both together.
            println!(
                "{}",
                app::create_user(&config, partner.as_deref(), &email).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            action: UserAction::Disable { email, .. },
        } => {
            println!("{}", app::set_user_disabled(&config, &email, true).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            action: UserAction::Enable { email, .. },
        } => {
            println!("{}", app::set_user_disabled(&config, &email, false).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            action: UserAction::Reset { email, .. },
        } => {
            println!("{}", app::reset_user(&config, &email).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { .. } => {
            print!("{}", app::migrate(&config).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Redirect {
            action: RedirectAction::Sync { vendor, apply, .. },
        } => {
            print!("{}", app::redirect_sync(&config, vendor, apply).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { file, .. } => {
            print!("{}", app::backup(&config, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { file, .. } => {
            print!("{}", app::restore(&config, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { .. } => {
            zerotouch::provisioning::Renderer::load(config.templates.as_deref())
                .context("templates")?;
            print!("{}", config.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { .. } | Command::Completions { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// The exit code of a command that needs no configuration.
fn offline(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerotouch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
