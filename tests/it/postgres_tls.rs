//! PostgreSQL over TLS, against the real server: `sslmode` and `sslrootcert` in the database
//! URL mean what they mean to libpq. The cluster `.ci/postgres` starts takes only TLS
//! connections, with a certificate for 127.0.0.1 signed by a CA of its own.

use std::process::Command;

use crate::support::{TestServer, YEALINK_MAC, YEALINK_UA};
use crate::test_database::{required_server, unique_name, TestDatabase};

async fn test_database() -> TestDatabase {
    let server = required_server(
        "the PostgreSQL TLS tests need a PostgreSQL server",
        ".ci/postgres cargo nextest run --test it -E 'test(/postgres_tls::/)'",
    );
    TestDatabase::create(&server, unique_name("zt_tls"))
        .await
        .unwrap()
}

/// `url` without its `sslrootcert`: nothing to verify the server with.
fn without_root(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslrootcert=") && !p.starts_with("sslmode="))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgresql_with_sslmode_require_serves_partners() {
    let db = test_database().await;
    // require without a root certificate: encrypted, the server's identity not checked.
    let url = format!("{}?sslmode=require", without_root(&db.url));
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |k| {
        k.database_url = Some(url.parse().unwrap());
        k.database_pool_size = Some(4);
    })
    .await;
    let acme = server.partner("acme", &["sales"]).await;
    let (status, device) = acme.claim(YEALINK_MAC, "sales").await;
    assert_eq!(status, 201, "{device}");
    let served = server
        .phone(Some(YEALINK_UA))
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    assert_eq!(
        served.status, 200,
        "the claim went through PostgreSQL over TLS"
    );
    server.stop().await.unwrap();
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_against_another_ca_refuses_to_start() {
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    // A CA that never signed the cluster's certificate.
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger.example".into()]).unwrap();
    let root = dir.path().join("stranger.pem");
    std::fs::write(&root, stranger.cert.pem()).unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        without_root(&db.url),
        root.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args([
            "serve",
            "--phones-addr",
            "127.0.0.1:0",
            "--api-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "off",
            "--database-url",
            &url,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot connect to PostgreSQL") && err.contains("invalid peer certificate"),
        "{err}"
    );

    // The cluster's own CA, given the same way, is accepted.
    let ca = std::env::var("ZEROTOUCH_TEST_DATABASE_CA").unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        without_root(&db.url)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args(["migrate", "--database-url", &url, "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.drop().await.unwrap();
}
