//! Backups of the embedded store with the real binary: `zerotouch backup` while a server
//! serves and writes, `zerotouch restore` into a fresh data directory that a server then
//! serves, and the refusals (a store in use, a newer schema).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{TestServer, YEALINK_MAC, YEALINK_UA};

fn zerotouch(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `n`th MAC of a Yealink range no fixture uses.
fn mac(n: u32) -> String {
    format!("805ec0a{n:05x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serving_restores_into_a_fresh_server() {
    let server = TestServer::demo().await;
    let acme = server.partner("acme", &["branch"]).await;
    for n in 0..20 {
        assert_eq!(acme.claim(&mac(n), "branch").await.0, 201);
    }
    let token = acme.token().unwrap().to_owned();

    // A writer claims device after device while the backups are taken.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut n = 1000;
            while writing.load(Ordering::Relaxed) {
                assert_eq!(acme.claim(&mac(n), "branch").await.0, 201);
                n += 1;
            }
            n - 1000
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("backup.db");
    let data_dir = server.data_dir.clone();
    let copy_arg = copy.to_str().unwrap().to_owned();
    let outs = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| zerotouch(&["backup", &copy_arg], &data_dir))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    writing.store(false, Ordering::Relaxed);
    let written = writer.await.unwrap();
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    assert!(written > 0, "the server was written to during the backups");
    let said = String::from_utf8_lossy(&outs[2].stdout).into_owned();
    assert!(
        said.contains("backed up") && said.contains("schema version"),
        "{said}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds secrets too");
    }

    // The store is in use: restoring over it is refused, and it keeps serving.
    let out = zerotouch(&["restore", copy.to_str().unwrap()], &server.data_dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is in use"), "{}", stderr(&out));
    let phone = server.phone(Some(YEALINK_UA));
    assert_eq!(phone.get(&format!("/{YEALINK_MAC}.cfg")).await.status, 200);
    server.stop().await.unwrap();

    // Into a fresh data directory, then served.
    let fresh = tmp.path().join("restored");
    let out = zerotouch(&["restore", copy.to_str().unwrap()], &fresh);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = TestServer::start_in(&fresh, |_| {}).await;
    // The partner's token was restored with the rest.
    let acme = restored.api(Some(&token));
    for n in 0..20 {
        let (status, device) = acme.get(&format!("/api/v1/devices/{}", mac(n))).await;
        assert_eq!(
            status,
            200,
            "{} claimed before the backup: {device}",
            mac(n)
        );
    }
    let phone = restored.phone(Some(YEALINK_UA));
    let served = phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_eq!(served.status, 200);
    assert!(served
        .text()
        .contains("account.1.sip_server.1.address = sales.cloud.example"));
    restored.stop().await.unwrap();
}

#[test]
fn a_backup_of_a_newer_schema_or_a_damaged_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = zerotouch(&["migrate"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = tmp.path().join("backup.db");
    let out = zerotouch(&["backup", copy.to_str().unwrap()], &data);
    assert!(out.status.success(), "{}", stderr(&out));

    let newer = tmp.path().join("newer.db");
    std::fs::copy(&copy, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let fresh = tmp.path().join("fresh");
    let out = zerotouch(&["restore", newer.to_str().unwrap()], &fresh);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("schema version 99, newer than this build supports"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.join("zerotouch.db").exists(), "nothing was restored");

    let junk = tmp.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just bytes").unwrap();
    let out = zerotouch(&["restore", junk.to_str().unwrap()], &fresh);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a usable backup"),
        "{}",
        stderr(&out)
    );

    // A PostgreSQL node is told what to use instead.
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args([
            "backup",
            "x.db",
            "--database-url",
            "postgres://db.invalid/zt",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
}
