//! The store contract, part: Tenants: creating (names unique across partners), updating and deleting them.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Creating (names are unique across partners), updating and deleting tenants.
pub(crate) async fn tenant_lifecycle(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    let c1 = store
        .create_customer(
            p1.id,
            CustomerFields {
                company: "Initech".into(),
                ..CustomerFields::default()
            },
            &a1,
        )
        .await
        .unwrap();

    let created = match store
        .create_tenant(name("sales"), None, settings("sales.example"), &a1)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.name, name("sales"));
    assert_eq!(created.partner, Some(p1.id));
    assert_eq!(created.customer, None);
    assert_eq!(created.settings, settings("sales.example"));
    assert_eq!(
        store.tenant(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        nodes.two.tenant(created.id).await.unwrap(),
        Some(created.clone())
    );
    for actor in [&a1, &a2, &Actor::cli()] {
        assert_eq!(
            store
                .create_tenant(name("sales"), None, settings("x.example"), actor)
                .await
                .unwrap(),
            TenantCreated::NameTaken
        );
    }
    assert_eq!(
        store
            .create_tenant(name("support"), Some(999_999), settings("x.example"), &a1)
            .await
            .unwrap(),
        TenantCreated::UnknownCustomer
    );
    match store
        .create_tenant(name("support"), Some(c1.id), settings("x.example"), &a1)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => assert_eq!(t.customer, Some(c1.id)),
        other => panic!("{other:?}"),
    }

    let mut new_settings = settings("sales2.example");
    new_settings.keepalive_seconds = 45;
    let updated = store
        .update_tenant(&name("sales"), Some(c1.id), new_settings.clone(), &a1)
        .await
        .unwrap();
    let expected = TenantRecord {
        customer: Some(c1.id),
        settings: new_settings.clone(),
        ..created.clone()
    };
    assert_eq!(updated, TenantChanged::Done(Some(expected.clone())));
    assert_eq!(store.tenant(created.id).await.unwrap(), Some(expected));
    assert_eq!(
        store
            .update_tenant(&name("nowhere"), None, new_settings.clone(), &a1)
            .await
            .unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store
            .update_tenant(&name("sales"), Some(999_999), new_settings, &a1)
            .await
            .unwrap(),
        TenantChanged::UnknownCustomer
    );

    // Refused while devices are claimed by it.
    let d = claimed(store, request("805ec017de13", "sales"), &a1).await;
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::HasDevices
    );
    assert!(store.release(d.mac, &a1).await.unwrap());
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::Done(None)
    );
    assert_eq!(store.tenant(created.id).await.unwrap(), None);
    assert_eq!(
        store.tenant_by_name(None, &name("sales")).await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::NotFound
    );
    // The name is free again, for anyone.
    assert!(matches!(
        store
            .create_tenant(name("sales"), None, settings("x.example"), &a2)
            .await
            .unwrap(),
        TenantCreated::Created(_)
    ));
}

/// Per-tenant counts: devices, never served, bound to their credentials, and failing to
/// authenticate since they were last served; a failed authentication never touches the
/// last-seen status.
pub(crate) async fn tenant_counts(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    let t1 = tenant(store, "t1", &actor).await;
    let t2 = tenant(store, "t2", &actor).await;
    let empty = tenant(store, "t3", &actor).await;
    let window = now_millis() + 3_600_000;
    for m in [
        "805ec0000001",
        "805ec0000002",
        "805ec0000003",
        "805ec0000004",
    ] {
        let mut req = request(m, "t1");
        req.enrol_until = Some(window);
        claimed(store, req, &actor).await;
    }
    claimed(store, request("805ec0000005", "t2"), &actor).await;
    let from: Option<IpAddr> = Some("198.51.100.9".parse().expect("ip"));
    let enrol = CredentialChange::Enrol {
        ha1: Ha1::new("u", "password"),
        user_agent: "Yealink SIP-T46S".into(),
    };
    // 0001: enrolled and bound. 0002: issued, not yet used (not enrolled).
    for (m, bind) in [("805ec0000001", true), ("805ec0000002", false)] {
        store
            .change_credentials(mac(m), enrol.clone(), from)
            .await
            .unwrap()
            .expect("enrolled");
        if bind {
            store
                .change_credentials(mac(m), CredentialChange::Confirm, from)
                .await
                .unwrap()
                .expect("bound");
        }
    }
    let t0 = now_millis();
    let failed = |m: &str, at| Sighting {
        outcome: crate::domain::sighting::FAILED_AUTHENTICATION,
        ..sighting(m, at, "device")
    };
    store
        .record_sightings(vec![
            sighting("805ec0000001", t0, "device"),
            // Served, then failing: counts.
            sighting("805ec0000003", t0, "device"),
            failed("805ec0000003", t0 + 10),
            // Failed, then served again: does not.
            failed("805ec0000001", t0 - 10),
            // Never served, failing: counts, and stays never seen.
            failed("805ec0000004", t0),
        ])
        .await
        .unwrap();
    let mut counts = store
        .tenant_counts(vec![t1.id, t2.id, empty.id])
        .await
        .unwrap();
    counts.sort_by_key(|(id, _)| *id);
    assert_eq!(
        counts,
        vec![
            (
                t1.id,
                TenantCounts {
                    devices: 4,
                    never_seen: 2,
                    enrolled: 1,
                    failing_authentication: 2,
                }
            ),
            (
                t2.id,
                TenantCounts {
                    devices: 1,
                    never_seen: 1,
                    enrolled: 0,
                    failing_authentication: 0,
                }
            ),
        ]
    );
    let view = store
        .device_view(None, mac("805ec0000004"))
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(
        view.status, None,
        "a failed authentication is not a sighting of the phone"
    );
    let failure = view.auth_failure.expect("kept apart");
    assert_eq!((failure.at, failure.source.as_str()), (t0, "192.0.2.7"));
    let served = store
        .device_view(None, mac("805ec0000003"))
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(served.auth_failure.map(|f| f.at), Some(t0 + 10));
    assert_eq!(served.status.map(|s| s.last_seen), Some(t0));
    assert!(store.tenant_counts(Vec::new()).await.unwrap().is_empty());
}
