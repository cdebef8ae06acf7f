//! The embedded store's files are private (they hold SIP passwords, HA1s and the Digest nonce
//! key): created 0700 and 0600 whatever the umask, and tightened (with a warning naming them)
//! when an older build or an operator left them readable.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::TestServer;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_fresh_data_directory_and_its_store_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start_in(&data, |_| {}).await;
    assert_eq!(mode(&data), 0o700, "data directory");
    // While the server runs, SQLite keeps its WAL and index beside the database.
    for file in ["zerotouch.db", "zerotouch.db-wal", "zerotouch.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data.join("tls/key.pem")), 0o600);
    server.stop().await.unwrap();
}

#[test]
fn a_readable_store_is_tightened_and_a_readable_directory_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let zerotouch = || {
        Command::new(env!("CARGO_BIN_EXE_zerotouch"))
            .arg("migrate")
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap()
    };
    assert!(zerotouch().status.success());
    let db = data.join("zerotouch.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = zerotouch();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("the store file {} was mode 0644", db.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "the data directory {} is mode 0755",
            data.display()
        )),
        "{log}"
    );
    assert_eq!(mode(&db), 0o600, "tightened");
    assert_eq!(
        mode(&data),
        0o755,
        "the directory is the operator's: named, not changed"
    );
}
