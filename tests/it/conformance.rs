//! The partner API against its own OpenAPI document: schemathesis (from PyPI; `.ci/test`
//! installs it into `target/schemathesis` and names it in `SCHEMATHESIS`) runs every one of its
//! checks — server errors, undocumented statuses and content types, response schemas,
//! schema-valid requests refused and schema-violating ones accepted, stateful sequences —
//! against a live server, first with a partner's token (the route that revokes the partner's
//! own tokens last, as it may revoke the one in use), then with the administrator's (whose
//! stateful phase revokes tokens, the partner's among them). A single finding fails the test.
//!
//! `schemathesis.toml` beside this file says which statuses a schema-valid request may get:
//! 422 too, for the rules a JSON Schema cannot state (a time zone the tz database lacks, a
//! setting a vendor's format cannot carry, control characters in a name).

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Runs schemathesis against `api` with `token` on the operations `only` selects (schemathesis
/// filter arguments); its report, failing the test on a finding.
fn schemathesis(api: &str, token: &str, who: &str, only: &[&str]) {
    let program = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/schemathesis.toml");
    // It keeps a cache of its own in the working directory.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(&program)
        .current_dir(scratch.path())
        .args([
            "--config-file",
            config.to_str().unwrap(),
            "--no-color",
            "run",
        ])
        .args(["--url", api])
        .arg(format!("{api}/api/v1/openapi.json"))
        .args(["--tls-verify", "false", "--checks", "all"])
        .args(["--max-examples", "25", "--seed", "20261128"])
        // A request sent on a kept-alive connection just as the server closes it for idleness
        // (15 s, longer on a busy CI machine between schemathesis's phases) is lost in the
        // race, as HTTP allows; clients retry it. A server that resets a request every time
        // still fails.
        .args(["--request-retries", "2"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(only)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} (PyPI schemathesis) must be installed, as .ci/test does: {e}")
        });
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found something with the {who}'s token:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_api_keeps_to_its_openapi_document() {
    let server = TestServer::start().await;
    let partner = server.partner("conformance", &["conformance"]).await;
    let (api, token) = (
        partner.base().to_owned(),
        partner.token().unwrap().to_owned(),
    );
    // A partner may revoke its own token, and schemathesis finds that route's ids: it runs
    // last, once everything else has been tried with the token.
    let own_token = ["--include-path", "/api/v1/tokens/{token_id}"];
    tokio::task::spawn_blocking(move || {
        let except_own_token = ["--exclude-path", own_token[1]];
        schemathesis(&api, &token, "partner", &except_own_token);
        schemathesis(&api, &token, "partner", &own_token);
        schemathesis(&api, ADMIN_TOKEN, "administrator", &[]);
    })
    .await
    .unwrap();
    server.stop().await.unwrap();
}
