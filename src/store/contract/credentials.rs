//! The store contract, part: phone credentials (enrolment, rotation, re-issue, confirmation,
//! compromise, revocation) and server-wide secrets.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Enrolment (pending until used, re-issued while pending), rotation, re-issue, confirmation,
/// retirement and compromise of phone credentials; reopening and revoking.
pub(crate) async fn credentials(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    tenant(store, "t1", &actor).await;
    let future = now_millis() + 3_600_000;
    let m = mac("805ec017de13");
    let mut req = request("805ec017de13", "t1");
    req.enrol_until = Some(future);
    claimed(store, req, &actor).await;
    let ha1 = |u: &str| Ha1::new(u, "password");
    let enrol = |u: &str| CredentialChange::Enrol {
        ha1: ha1(u),
        user_agent: format!("Yealink SIP-T46S {u}"),
    };
    let from: Option<IpAddr> = Some("198.51.100.9".parse().expect("ip"));
    let change = |change: CredentialChange, node: &'static str| {
        let store = if node == "two" {
            nodes.two.clone()
        } else {
            nodes.one.clone()
        };
        async move { store.change_credentials(m, change, from).await.unwrap() }
    };

    // Nothing to rotate, reissue, confirm or compromise before enrolment; unknown devices
    // are refused.
    for c in [
        CredentialChange::Rotate(ha1("r")),
        CredentialChange::Reissue(ha1("r")),
        CredentialChange::Confirm,
        CredentialChange::Compromise,
    ] {
        assert_eq!(change(c, "one").await, None);
    }
    assert_eq!(
        store
            .change_credentials(mac("805ec0000099"), enrol("x"), from)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.request_rotation(m, &actor).await.unwrap(),
        RotationOutcome::NotEnrolled
    );

    // Enrolled: pending, the window still open, and how it happened kept for the partner.
    let enrolled = change(enrol("first"), "one").await.expect("enrolled");
    assert_eq!(
        enrolled.credentials,
        Some(PhoneCredentials::issued(ha1("first")))
    );
    assert_eq!(enrolled.enrol_until, Some(future));
    assert_eq!(store.device(m).await.unwrap(), Some(enrolled.clone()));
    let view = store.device_view(None, m).await.unwrap().expect("visible");
    let witness = view.enrolment.expect("enrolment kept");
    assert_eq!(witness.source, from);
    assert_eq!(witness.user_agent, "Yealink SIP-T46S first");
    // The first answer was lost: while pending, another enrolment replaces the credentials.
    let again = change(enrol("second"), "two").await.expect("re-issued");
    assert_eq!(
        again.credentials,
        Some(PhoneCredentials::issued(ha1("second")))
    );
    // The phone used them: bound, the window closed; no further enrolment.
    let bound = change(CredentialChange::Confirm, "one")
        .await
        .expect("confirmed");
    assert_eq!(bound.enrol_until, None);
    assert!(bound.credentials.as_ref().is_some_and(|c| !c.pending));
    assert_eq!(change(CredentialChange::Confirm, "one").await, None);
    assert_eq!(change(enrol("third"), "two").await, None);

    let requested = match store.request_rotation(m, &actor).await.unwrap() {
        RotationOutcome::Requested(d) => d,
        other => panic!("{other:?}"),
    };
    assert!(requested.credentials.as_ref().is_some_and(|c| c.rotate));
    let rotated = change(CredentialChange::Rotate(ha1("r1")), "one")
        .await
        .expect("rotated")
        .credentials
        .expect("credentials");
    assert_eq!(rotated.current, ha1("r1"));
    assert_eq!(rotated.previous, Some(ha1("second")));
    assert!(rotated.pending && !rotated.rotate);
    // No rotation pending any more.
    assert_eq!(
        change(CredentialChange::Rotate(ha1("x")), "one").await,
        None
    );
    let reissued = change(CredentialChange::Reissue(ha1("r2")), "two")
        .await
        .expect("reissued")
        .credentials
        .expect("credentials");
    assert_eq!(reissued.current, ha1("r2"));
    assert_eq!(reissued.previous, Some(ha1("second")));
    let confirmed = change(CredentialChange::Confirm, "one")
        .await
        .expect("confirmed")
        .credentials
        .expect("credentials");
    assert_eq!(confirmed.previous, None);
    assert_eq!(confirmed.retired, Some(ha1("second")));
    // The retired credentials were presented: compromised, once.
    let stolen = change(CredentialChange::Compromise, "two")
        .await
        .expect("compromised");
    assert!(stolen.credentials.as_ref().is_some_and(|c| c.compromised));
    assert_eq!(change(CredentialChange::Compromise, "one").await, None);

    // Reopening enrolment forgets the credentials, compromise included.
    let reopened = store
        .open_enrolment(m, Some(future), &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(reopened.credentials, None);
    assert_eq!(reopened.enrol_until, Some(future));
    assert_eq!(store.device(m).await.unwrap(), Some(reopened));
    // Revoking leaves neither credentials nor a window: nobody enrols.
    let revoked = store
        .open_enrolment(m, None, &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!((revoked.credentials, revoked.enrol_until), (None, None));
    assert_eq!(change(enrol("late"), "one").await, None);
    // A window in the past admits nobody either.
    store
        .open_enrolment(m, Some(now_millis() - 1), &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(change(enrol("late"), "one").await, None);

    let log = store
        .audit_log(AuditQuery {
            partner: None,
            mac: Some(m),
            ..all_audit()
        })
        .await
        .unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.source.as_deref()))
        .collect();
    let who = format!("partner:{}:acme", p.id);
    let partner_from = Some("192.0.2.7");
    let phone = |action| (action, "phone", Some("198.51.100.9"));
    let by_partner = |action| (action, who.as_str(), partner_from);
    assert_eq!(
        summary,
        vec![
            by_partner("device.claim"),
            phone("device.enrol"),
            phone("device.enrol.reissued"),
            phone("device.enrol.confirmed"),
            by_partner("device.credentials.rotate"),
            phone("device.credentials.rotated"),
            phone("device.credentials.reissued"),
            phone("device.credentials.confirmed"),
            phone("device.compromised"),
            by_partner("device.enrolment.open"),
            by_partner("device.credentials.revoke"),
            by_partner("device.enrolment.open"),
        ]
    );
    assert_eq!(
        log[9].detail.as_deref(),
        Some(serde_json::json!({"until": future}).to_string().as_str())
    );
}

/// The first writer of a server-wide secret wins, on every node.
pub(crate) async fn server_secret(nodes: Nodes) {
    let first = nodes.one.secret("nonce-key", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(
        nodes.one.secret("nonce-key", b"other").await.unwrap(),
        b"first"
    );
    assert_eq!(
        nodes.two.secret("nonce-key", b"other").await.unwrap(),
        b"first"
    );
    assert_eq!(nodes.two.secret("other-key", b"x").await.unwrap(), b"x");

    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let store = if i % 2 == 0 {
            nodes.one.clone()
        } else {
            nodes.two.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.secret("raced", &[i]).await.unwrap()
        }));
    }
    let mut values = BTreeSet::new();
    for t in tasks {
        values.insert(t.await.unwrap());
    }
    assert_eq!(values.len(), 1, "every caller gets the one stored value");
}
