//! What this binary is: its version and how it was built (git commit, date, profile, target,
//! compiler), as `build.rs` found them at build time. Owns the `--version` text; knows nothing
//! of the command line that prints it.

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built, or `unknown` outside a checkout (`ZEROTOUCH_BUILD_COMMIT` overrides).
pub const COMMIT: &str = env!("ZEROTOUCH_BUILD_COMMIT");
/// When `build.rs` last ran, UTC, RFC 3339 (`SOURCE_DATE_EPOCH` fixes it).
pub const DATE: &str = env!("ZEROTOUCH_BUILD_DATE");
/// Cargo's profile directory: `debug` or `release`.
pub const PROFILE: &str = env!("ZEROTOUCH_BUILD_PROFILE");
/// The target triple, e.g. `x86_64-unknown-linux-gnu`.
pub const TARGET: &str = env!("ZEROTOUCH_BUILD_TARGET");
/// `rustc --version` of the compiler that built this binary.
pub const RUSTC: &str = env!("ZEROTOUCH_BUILD_RUSTC");

/// The text after the program name in `zerotouch --version`: the version, then one
/// `name: value` line per build detail.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("ZEROTOUCH_BUILD_COMMIT"),
    "\nbuilt: ",
    env!("ZEROTOUCH_BUILD_DATE"),
    "\nprofile: ",
    env!("ZEROTOUCH_BUILD_PROFILE"),
    "\ntarget: ",
    env!("ZEROTOUCH_BUILD_TARGET"),
    "\nrustc: ",
    env!("ZEROTOUCH_BUILD_RUSTC"),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_every_build_detail() {
        let lines: Vec<&str> = LONG_VERSION.lines().collect();
        assert_eq!(lines[0], VERSION);
        assert_eq!(lines[1], format!("commit: {COMMIT}"));
        assert!(DATE.len() == 20 && DATE.ends_with('Z'), "{DATE}");
        assert!(["debug", "release"].contains(&PROFILE), "{PROFILE}");
        assert!(RUSTC.starts_with("rustc "), "{RUSTC}");
        assert_eq!(lines.len(), 6, "{LONG_VERSION}");
    }
}
