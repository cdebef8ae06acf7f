//! The store contract, part: Phone credentials (enrolment, rotation, reissue, retirement) and server-wide secrets.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Enrolment, rotation, reissue and retirement of phone credentials.
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
    let from: Option<IpAddr> = Some("198.51.100.9".parse().expect("ip"));

    // Nothing to rotate, reissue or retire before enrolment; unknown devices are refused.
    for change in [
        CredentialChange::Rotate(ha1("r")),
        CredentialChange::Reissue(ha1("r")),
        CredentialChange::RetirePrevious,
    ] {
        assert_eq!(
            store.change_credentials(m, change, from).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .change_credentials(mac("805ec0000099"), CredentialChange::Enrol(ha1("x")), from)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.request_rotation(m, &actor).await.unwrap(),
        RotationOutcome::NotEnrolled
    );

    let enrolled = store
        .change_credentials(m, CredentialChange::Enrol(ha1("first")), from)
        .await
        .unwrap()
        .expect("enrolled");
    let creds = PhoneCredentials {
        current: ha1("first"),
        previous: None,
        rotate: false,
    };
    assert_eq!(enrolled.credentials, Some(creds.clone()));
    assert_eq!(enrolled.enrol_until, None);
    assert_eq!(store.device(m).await.unwrap(), Some(enrolled.clone()));
    // Bound: a second enrolment is refused.
    assert_eq!(
        nodes
            .two
            .change_credentials(m, CredentialChange::Enrol(ha1("second")), from)
            .await
            .unwrap(),
        None
    );

    let requested = match store.request_rotation(m, &actor).await.unwrap() {
        RotationOutcome::Requested(d) => d,
        other => panic!("{other:?}"),
    };
    assert!(requested.credentials.as_ref().is_some_and(|c| c.rotate));
    let rotated = store
        .change_credentials(m, CredentialChange::Rotate(ha1("second")), from)
        .await
        .unwrap()
        .expect("rotated");
    assert_eq!(
        rotated.credentials,
        Some(PhoneCredentials {
            current: ha1("second"),
            previous: Some(ha1("first")),
            rotate: false,
        })
    );
    // No rotation pending any more.
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::Rotate(ha1("third")), from)
            .await
            .unwrap(),
        None
    );
    let reissued = store
        .change_credentials(m, CredentialChange::Reissue(ha1("third")), from)
        .await
        .unwrap()
        .expect("reissued");
    assert_eq!(
        reissued.credentials,
        Some(PhoneCredentials {
            current: ha1("third"),
            previous: Some(ha1("first")),
            rotate: false,
        })
    );
    let retired = store
        .change_credentials(m, CredentialChange::RetirePrevious, from)
        .await
        .unwrap()
        .expect("retired");
    assert_eq!(
        retired.credentials,
        Some(PhoneCredentials {
            current: ha1("third"),
            previous: None,
            rotate: false,
        })
    );
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::RetirePrevious, from)
            .await
            .unwrap(),
        None
    );

    // Reopening enrolment forgets the credentials.
    let reopened = store
        .open_enrolment(m, future, &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(reopened.credentials, None);
    assert_eq!(reopened.enrol_until, Some(future));
    assert_eq!(store.device(m).await.unwrap(), Some(reopened));
    // A window in the past admits nobody.
    store
        .open_enrolment(m, now_millis() - 1, &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::Enrol(ha1("late")), from)
            .await
            .unwrap(),
        None
    );

    let log = store
        .audit_log(AuditQuery {
            mac: Some(m),
            ..all_audit()
        })
        .await
        .unwrap();
    let summary: Vec<(&str, &str, Option<&str>, Option<&str>)> = log
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.source.as_deref(),
                e.tenant.as_deref(),
            )
        })
        .collect();
    let who = format!("partner:{}:acme", p.id);
    let phone = Some("198.51.100.9");
    let partner_from = Some("192.0.2.7");
    assert_eq!(
        summary,
        vec![
            ("device.claim", who.as_str(), partner_from, Some("t1")),
            ("device.enrol", "phone", phone, Some("t1")),
            (
                "device.credentials.rotate",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
            ("device.credentials.rotated", "phone", phone, Some("t1")),
            ("device.credentials.reissued", "phone", phone, Some("t1")),
            (
                "device.enrolment.open",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
            (
                "device.enrolment.open",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
        ]
    );
    assert_eq!(
        log[5].detail.as_deref(),
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
