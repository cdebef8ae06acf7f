//! The Debian package: `deploy/build-deb` packages the binary these tests run (cargo-deb
//! `--no-build`, so no second build), dpkg installs (unpacks) the package into a clean root
//! and its files are checked, its unit passes `systemd-analyze verify` and keeps `systemd-analyze security` at
//! 2.0 or below (with and without the privileged-ports drop-in), and the shipped default
//! configuration parses and documents every knob.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use zerotouch::config::Knobs;

const DEFAULT_CONFIG: &str = include_str!("../../deploy/zerotouch.toml");

/// Runs `program`, failing the test (never skipping it) when it is missing or fails.
fn run(program: &str, args: &[&str], package: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} ({package}) must be installed, as .ci/test does: {e}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?}:\n{stderr}");
    String::from_utf8(out.stdout).unwrap() + &stderr
}

/// The profile that built the binary under test, as cargo-deb names it.
fn profile() -> &'static str {
    let bin = Path::new(env!("CARGO_BIN_EXE_zerotouch"));
    match bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        Some("debug") => "dev",
        Some("release") => "release",
        other => panic!("cannot tell the profile of {bin:?} ({other:?})"),
    }
}

/// The exposure `systemd-analyze security` gives a unit file (0.0 best, 10.0 worst).
fn exposure(unit: &Path) -> f64 {
    let out = run(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "--no-pager",
            unit.to_str().unwrap(),
        ],
        "systemd",
    );
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    let value = line
        .rsplit(':')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    value.parse().unwrap()
}

#[test]
fn the_debian_package_unpacks_into_a_clean_root_with_a_hardened_unit() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let build_deb = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/build-deb");
    let log = run(
        build_deb.to_str().unwrap(),
        &[
            "--profile",
            profile(),
            "--no-build",
            "--fast",
            "-o",
            out.to_str().unwrap(),
        ],
        "cargo-deb: cargo install cargo-deb --locked",
    );
    let deb: PathBuf = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| panic!("no .deb in {out:?}:\n{log}"));
    let deb = deb.to_str().unwrap();

    let fields = run("dpkg-deb", &["-f", deb, "Package", "Depends"], "dpkg");
    assert!(fields.contains("Package: zerotouch"), "{fields}");
    assert!(fields.contains("adduser"), "{fields}");
    let conffiles = run("dpkg-deb", &["-I", deb, "conffiles"], "dpkg");
    assert_eq!(conffiles.trim(), "/etc/zerotouch/zerotouch.toml");
    let control = work.path().join("control");
    run("dpkg-deb", &["-e", deb, control.to_str().unwrap()], "dpkg");
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper enable zerotouch.service"),
        "{postinst}"
    );
    for script in ["postinst", "postrm", "prerm"] {
        run(
            "sh",
            &["-n", control.join(script).to_str().unwrap()],
            "dash",
        );
    }

    // Installed by dpkg itself into a clean root with an empty package database: it unpacks
    // the files, registers the configuration as a conffile and records the package. The
    // maintainer scripts would run chrooted in that root, which has no shell or adduser, so
    // the package is unpacked and not configured; the scripts are syntax-checked above.
    let root = work.path().join("root");
    let database = root.join("var/lib/dpkg");
    for dir in ["updates", "info", "triggers"] {
        std::fs::create_dir_all(database.join(dir)).unwrap();
    }
    std::fs::write(database.join("status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut all = vec!["--root", root.to_str().unwrap(), "--force-not-root"];
        all.extend_from_slice(args);
        run("dpkg", &all, "dpkg")
    };
    dpkg(&["--unpack", deb]);
    let status = dpkg(&["--status", "zerotouch"]);
    assert!(status.contains("Status: install ok unpacked"), "{status}");
    assert!(
        status.contains("Conffiles:\n /etc/zerotouch/zerotouch.toml "),
        "{status}"
    );
    let listed = dpkg(&["--listfiles", "zerotouch"]);
    assert!(
        listed.lines().any(|l| l == "/usr/bin/zerotouch"),
        "{listed}"
    );
    // Until it is configured, dpkg keeps a new conffile beside its final name; configuring
    // moves it there when no administrator's copy exists, as here.
    let conffile = root.join("etc/zerotouch/zerotouch.toml");
    std::fs::rename(conffile.with_extension("toml.dpkg-new"), &conffile)
        .expect("dpkg unpacked the configuration as a new conffile");
    for file in [
        "usr/bin/zerotouch",
        "usr/lib/systemd/system/zerotouch.service",
        "etc/zerotouch/zerotouch.toml",
        "usr/share/man/man1/zerotouch.1.gz",
        "usr/share/man/man1/zerotouch-serve.1.gz",
        "usr/share/man/man1/zerotouch-import.1.gz",
        "usr/share/bash-completion/completions/zerotouch",
        "usr/share/zsh/vendor-completions/_zerotouch",
        "usr/share/fish/vendor_completions.d/zerotouch.fish",
        "usr/share/doc/zerotouch/examples/privileged-ports.conf",
        "usr/share/doc/zerotouch/examples/grafana/zerotouch.json",
        "usr/share/doc/zerotouch/examples/prometheus/zerotouch.rules.yml",
        "usr/share/doc/zerotouch/copyright",
    ] {
        assert!(root.join(file).is_file(), "{file} is not in the package");
    }
    let bin = root.join("usr/bin/zerotouch");
    let version = run(bin.to_str().unwrap(), &["--version"], "the package");
    assert!(
        version.starts_with(&format!(
            "zerotouch {}\ncommit: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/zerotouch"))
            .unwrap();
    assert!(
        bash.contains("check-config") && bash.contains("--phones-addr"),
        "{bash}"
    );

    // The packaged binary accepts the packaged configuration, with the state directory.
    let config = root.join("etc/zerotouch/zerotouch.toml");
    let effective = run(
        bin.to_str().unwrap(),
        &["check-config", "--config", config.to_str().unwrap()],
        "the package",
    );
    assert!(
        effective.contains("data_dir = \"/var/lib/zerotouch\""),
        "{effective}"
    );

    // The unit as installed, its command pointed at the unpacked binary and its
    // Documentation= at the unpacked manual pages.
    let unit_dir = work.path().join("units");
    std::fs::create_dir_all(unit_dir.join("zerotouch.service.d")).unwrap();
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/zerotouch.service")).unwrap();
    for line in [
        "User=zerotouch",
        "StateDirectory=zerotouch",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ExecStart=/usr/bin/zerotouch serve --config /etc/zerotouch/zerotouch.toml",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    assert!(
        !unit.contains("CAP_NET_BIND_SERVICE\n"),
        "the unit itself holds a capability"
    );
    let unit_file = unit_dir.join("zerotouch.service");
    std::fs::write(
        &unit_file,
        unit.replace("/usr/bin/zerotouch", bin.to_str().unwrap()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", unit_file.to_str().unwrap()])
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed, as .ci/test does");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );

    let plain = exposure(&unit_file);
    assert!(plain <= 2.0, "exposure {plain} without the drop-in");
    std::fs::copy(
        root.join("usr/share/doc/zerotouch/examples/privileged-ports.conf"),
        unit_dir.join("zerotouch.service.d/privileged-ports.conf"),
    )
    .unwrap();
    let with_ports = exposure(&unit_file);
    assert!(
        with_ports <= 2.0,
        "exposure {with_ports} with the privileged-ports drop-in"
    );
    assert!(
        with_ports > plain,
        "the drop-in was not read ({with_ports})"
    );
}

#[test]
fn the_default_configuration_documents_every_knob_with_a_valid_example() {
    let knobs = Knobs::augment_args(clap::Command::new("knobs"));
    let documented: Vec<&str> = DEFAULT_CONFIG
        .lines()
        .filter_map(|l| l.trim_start_matches("# ").split_once(" = "))
        .map(|(key, _)| key)
        .collect();
    for arg in knobs.get_arguments() {
        let key = arg.get_id().as_str();
        if key == "config" {
            continue;
        }
        assert!(
            documented.contains(&key),
            "deploy/zerotouch.toml does not mention {key}"
        );
    }
    // Every commented example, uncommented, is a value zerotouch accepts.
    let is_key = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    let uncommented: String = DEFAULT_CONFIG
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(example) if example.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => example,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    toml::from_str::<Knobs>(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
}
