//! The command line for people and scripts: `--version` with build details, `--output json`
//! where a script reads the output, no progress drawing off a terminal, and the manual pages
//! and completions generated from the same definition, without any configuration.

use std::process::{Command, Output};

fn zerotouch(args: &[&str]) -> Output {
    zerotouch_with(args, "ZEROTOUCH_LOG_FORMAT", "text")
}

/// `zerotouch args` with one environment variable set for it.
fn zerotouch_with(args: &[&str], name: &str, value: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args(args)
        .env(name, value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zerotouch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_commit_build_date_profile_and_compiler() {
    let long = stdout(&zerotouch(&["--version"]));
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines[0], format!("zerotouch {}", env!("CARGO_PKG_VERSION")));
    for (line, name) in lines[1..]
        .iter()
        .zip(["commit", "built", "profile", "target", "rustc"])
    {
        let value = line
            .strip_prefix(&format!("{name}: "))
            .unwrap_or_else(|| panic!("{long}"));
        assert!(!value.is_empty() && value != "unknown", "{long}");
    }
    assert_eq!(
        stdout(&zerotouch(&["-V"])).trim(),
        format!("zerotouch {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn import_prints_a_summary_or_json_and_draws_no_progress_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    // A data directory the store creates (0700): one others may read is named in a warning.
    let data = tmp.path().join("data");
    let dir = data.to_str().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo.json");
    let quiet = ["--data-dir", dir, "--log-level", "warn"];

    let out = zerotouch(&[&["import", fixture][..], &quiet].concat());
    let text = stdout(&out);
    assert!(text.contains("tenants: 2 created\n"), "{text}");
    assert!(text.ends_with("rows applied, 0 refused\n"), "{text}");
    // stderr is a pipe here: no bar, no cursor movement, nothing at all.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = zerotouch(&[&["import", fixture, "--output", "json"][..], &quiet].concat());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refused"], 0);
    assert_eq!(report["tenants"][0]["status"], "updated");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_create_prints_json_for_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = zerotouch(&[
        "token",
        "create",
        "--partner",
        "acme",
        "--output",
        "json",
        "--data-dir",
        dir,
    ]);
    let issued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["partner"], "acme");
    assert_eq!(issued["partner_created"], true);
    let token = issued["token"].as_str().unwrap();
    assert!(token.starts_with("zt_"), "{issued}");
    assert!(
        token.contains(issued["key_id"].as_str().unwrap()),
        "{issued}"
    );
}

#[test]
fn man_pages_and_completions_come_from_the_command_line_definition() {
    // A configuration that would not load: these commands never read it.
    let page = stdout(&zerotouch_with(
        &["man"],
        "ZEROTOUCH_CONFIG",
        "/nonexistent.toml",
    ));
    assert!(page.contains(".TH zerotouch 1"), "{page}");
    assert!(page.contains("check\\-config"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    zerotouch(&["man", "--dir", dir.path().to_str().unwrap()]);
    let serve = std::fs::read_to_string(dir.path().join("zerotouch-serve.1")).unwrap();
    assert!(serve.contains("phones\\-addr"), "{serve}");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef zerotouch"),
        ("fish", "complete -c zerotouch"),
    ] {
        let script = stdout(&zerotouch_with(
            &["completions", shell],
            "ZEROTOUCH_CONFIG",
            "/nonexistent.toml",
        ));
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("token"), "{shell}");
    }
}
