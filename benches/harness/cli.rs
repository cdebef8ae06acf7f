//! A bench's command line: what it does when a test runner or plain `cargo bench` runs it,
//! its flags (`--flag value` or `--flag=value`), numbers and durations in them, the backend
//! selection (`--only`, `--postgres`), and how its outcome becomes an exit code.
//!
//! Must not know any bench's options or what it measures.

use std::future::Future;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context};

use super::test_database;

/// What the command line needs to know about a bench.
pub struct Bench {
    /// Its name, as in `cargo bench --bench NAME`.
    pub name: &'static str,
    /// What follows `cargo bench --bench NAME --` in the hint for a run without arguments.
    pub invocation: &'static str,
    /// Its usage text, in parts printed one after the other.
    pub usage: &'static [&'static str],
    /// True when `cargo bench` alone (which passes only `--bench`) must do nothing: the bench
    /// has to be told what to measure.
    pub needs_arguments: bool,
}

impl Bench {
    fn usage(&self) -> String {
        self.usage.concat()
    }
}

/// A bench binary's `main`: parses its arguments with `parse` (`Ok(None)`: help was asked
/// for) and runs it with `run` (`Ok(false)`: it ran and failed, having said why).
pub fn main<O>(
    bench: &Bench,
    parse: impl FnOnce(&[String]) -> anyhow::Result<Option<O>>,
    run: impl FnOnce(O) -> anyhow::Result<bool>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Test runners (cargo test --benches, cargo nextest --all-targets) run bench binaries to
    // list and run tests: a benchmark is not a test, so list none and do nothing.
    if args.iter().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if args.is_empty() || (bench.needs_arguments && args.iter().all(|a| a == "--bench")) {
        if args.is_empty() {
            eprintln!(
                "{} is a benchmark: run it with `cargo bench --bench {} -- {}`",
                bench.name, bench.name, bench.invocation
            );
        }
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", bench.usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}: {e:#}\n{}", bench.name, bench.usage());
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{}: {e:#}", bench.name);
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a multi-threaded runtime: the `run` of a bench that has nothing to say
/// beyond its error.
pub fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<bool> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(work)?;
    Ok(true)
}

/// A bench's arguments, flag by flag.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    /// The value given as `--flag=value` with the flag last returned.
    inline: Option<String>,
}

impl<'a> Flags<'a> {
    /// Reads `args`.
    pub fn new(args: &'a [String]) -> Self {
        Self {
            args: args.iter(),
            inline: None,
        }
    }

    /// The next flag, or word. `--bench`, which `cargo bench` passes to every bench, is
    /// skipped.
    pub fn next_flag(&mut self) -> Option<String> {
        loop {
            let arg = self.args.next()?;
            if arg == "--bench" {
                continue;
            }
            self.inline = None;
            return Some(match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    self.inline = Some(value.to_owned());
                    flag.to_owned()
                }
                _ => arg.clone(),
            });
        }
    }

    /// The value of `flag`: what followed its `=`, or else the next argument.
    pub fn value(&mut self, flag: &str) -> anyhow::Result<String> {
        match self.inline.take() {
            Some(v) => Ok(v),
            None => self
                .args
                .next()
                .cloned()
                .with_context(|| format!("{flag} needs a value")),
        }
    }

    /// The value of `flag` as a number (`_` may group digits).
    pub fn number<T: FromStr>(&mut self, flag: &str) -> anyhow::Result<T> {
        let v = self.value(flag)?;
        number(flag, &v)
    }

    /// The value of `flag` as a positive number of seconds (`30` or `30s`).
    pub fn seconds(&mut self, flag: &str) -> anyhow::Result<f64> {
        let v = self.value(flag)?;
        let s: f64 = number(flag, v.trim_end_matches('s'))?;
        if !(s > 0.0 && s.is_finite()) {
            bail!("{flag} {v}: expected a positive number of seconds");
        }
        Ok(s)
    }
}

fn number<T: FromStr>(flag: &str, v: &str) -> anyhow::Result<T> {
    v.replace('_', "")
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} {v}: not a number"))
}

/// The usage lines of [`Backends`]' flags.
pub const BACKENDS_USAGE: &str = concat!(
    "  --only sqlite|postgres one backend only\n",
    "  --postgres URL         superuser URL of a PostgreSQL server (default: $ZEROTOUCH_TEST_DATABASE_URL)\n",
);

/// Which store backends a bench measures: SQLite, and PostgreSQL when it has a server.
#[derive(Clone, Debug)]
pub struct Backends {
    /// Measure SQLite.
    pub sqlite: bool,
    /// Measure PostgreSQL on this server (a superuser URL).
    pub postgres: Option<String>,
    only: Option<String>,
}

impl Backends {
    /// Both, PostgreSQL on the server in `ZEROTOUCH_TEST_DATABASE_URL` if it is set.
    pub fn from_env() -> Self {
        Self {
            sqlite: true,
            postgres: test_database::server_from_env(),
            only: None,
        }
    }

    /// Takes `--only` and `--postgres` (and their values); false for any other flag.
    pub fn take(&mut self, flag: &str, flags: &mut Flags<'_>) -> anyhow::Result<bool> {
        match flag {
            "--only" => self.only = Some(flags.value(flag)?),
            "--postgres" => self.postgres = Some(flags.value(flag)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies `--only`, once every flag has been read.
    pub fn resolve(&mut self) -> anyhow::Result<()> {
        match self.only.as_deref() {
            None => {}
            Some("sqlite") => self.postgres = None,
            Some("postgres") => {
                self.sqlite = false;
                if self.postgres.is_none() {
                    bail!(
                        "--only postgres needs --postgres URL or {}",
                        test_database::SERVER_VARIABLE
                    );
                }
            }
            Some(other) => bail!("--only {other}: expected sqlite or postgres"),
        }
        Ok(())
    }
}
