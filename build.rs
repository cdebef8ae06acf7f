//! Build details for `zerotouch --version` (`src/build_info.rs`): the git commit, the build date,
//! the profile and the compiler, read once when this script runs and handed to the crate as
//! environment variables. Nothing here reaches the network.
//!
//! The script reruns when the checked-out commit changes, so a rebuild after `git commit` shows
//! the new commit; the date is that of the run. `SOURCE_DATE_EPOCH` fixes the date and
//! `ZEROTOUCH_BUILD_COMMIT` names the commit for builds outside a git checkout (reproducible
//! and distribution builds).

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=ZEROTOUCH_BUILD_COMMIT");

    let commit = std::env::var("ZEROTOUCH_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc = output(Command::new(rustc).arg("--version")).unwrap_or_else(|| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());

    println!("cargo:rustc-env=ZEROTOUCH_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=ZEROTOUCH_BUILD_DATE={}", utc(seconds));
    println!("cargo:rustc-env=ZEROTOUCH_BUILD_PROFILE={profile}");
    println!("cargo:rustc-env=ZEROTOUCH_BUILD_RUSTC={rustc}");
    println!("cargo:rustc-env=ZEROTOUCH_BUILD_TARGET={target}");
}

/// The checked-out commit, and the files whose change means another one is checked out.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| output(Command::new("git").args(args));
    let commit = git(&["rev-parse", "HEAD"])?;
    // HEAD names the branch; the branch's ref (loose or packed) names the commit. A path that
    // does not exist would make cargo rerun this script on every build, so only existing ones.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

/// A command's trimmed standard output, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the civil-from-days algorithm of Howard
/// Hinnant's date library; no calendar crate is worth a build dependency).
fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}
