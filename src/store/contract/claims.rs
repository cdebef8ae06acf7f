//! The store contract, part: Claims: the claim rules, moving a device between tenants, changing its settings, releasing it.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Created, unchanged for the same tenant, already in use for another, unknown or foreign
/// tenant, Gigaset label codes.
pub(crate) async fn claim_rules(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    let t1 = tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;

    let mut req = request("805ec017de13", "t1");
    req.settings = line_settings("1001");
    req.enrol_until = Some(4_102_444_800_000);
    let created = claimed(store, req.clone(), &a1).await;
    assert_eq!(created.mac, mac("805ec017de13"));
    assert_eq!(created.vendor, Vendor::Yealink);
    assert_eq!(created.tenant, t1.id);
    assert_eq!(created.settings, line_settings("1001"));
    assert_eq!(created.claim_secret, None);
    assert_eq!(created.credentials, None);
    assert_eq!(created.enrol_until, Some(4_102_444_800_000));
    assert_eq!(
        store.device(created.mac).await.unwrap().as_ref(),
        Some(&created)
    );
    // Nodes share one truth.
    assert_eq!(
        nodes.two.device(created.mac).await.unwrap().as_ref(),
        Some(&created)
    );

    // The same tenant again: unchanged, whatever settings the repeat carries.
    let mut again = req.clone();
    again.settings = DeviceSettings::default();
    assert_eq!(
        store.claim(again, &a1).await.unwrap(),
        ClaimOutcome::Unchanged(created.clone())
    );
    // Another tenant, of the same partner or another: already in use.
    assert_eq!(
        store
            .claim(request("805ec017de13", "t2"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert_eq!(
        nodes
            .two
            .claim(request("805ec017de13", "t3"), &a2)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert_eq!(
        store
            .claim(request("805ec017de13", "t3"), &Actor::cli())
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    // Unknown tenant, and another partner's tenant, look the same.
    assert_eq!(
        store
            .claim(request("805ec017de14", "nowhere"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .claim(request("805ec017de14", "t3"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::UnknownTenant
    );
    assert_eq!(store.device(mac("805ec017de14")).await.unwrap(), None);
    // The operator may claim for any tenant.
    let by_operator = claimed(store, request("805ec017de14", "t3"), &Actor::cli()).await;
    assert_eq!(by_operator.tenant, t3.id);

    // Gigaset: the label code, case-insensitive; another code or none is a mismatch; the
    // tenant check comes first.
    let g = claimed(store, gigaset("7c2f80e0d605", "t1", Some("AB12")), &a1).await;
    assert_eq!(g.vendor, Vendor::Gigaset);
    let secret = g.claim_secret.clone().expect("claim secret");
    assert!(secret.matches(g.mac, &code("ab12")));
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", Some("ab12")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::Unchanged(g.clone())
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", Some("ZZ99")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", None), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t2", Some("ZZ99")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    // A device claimed without a code cannot be re-claimed with one.
    assert_eq!(
        store
            .claim(gigaset("805ec017de13", "t1", Some("AB12")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 3);
}

/// Moving a device to another tenant, changing its settings, releasing it.
pub(crate) async fn move_and_release(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    tenant(store, "t1", &a1).await;
    let t2 = tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;
    let d = claimed(store, request("805ec017de13", "t1"), &a1).await;

    let moved = store
        .update_device(
            d.mac,
            DeviceUpdate {
                tenant: Some(name("t2")),
                settings: None,
            },
            &a1,
        )
        .await
        .unwrap();
    let expected = DeviceRecord {
        tenant: t2.id,
        ..d.clone()
    };
    assert_eq!(moved, UpdateOutcome::Updated(expected.clone()));
    assert_eq!(store.device(d.mac).await.unwrap(), Some(expected.clone()));
    let view = store
        .device_view(Some(p1.id), d.mac)
        .await
        .unwrap()
        .expect("view");
    assert_eq!(view.tenant_name, name("t2"));

    let changed = store
        .update_device(
            d.mac,
            DeviceUpdate {
                tenant: None,
                settings: Some(line_settings("1002")),
            },
            &a1,
        )
        .await
        .unwrap();
    let expected = DeviceRecord {
        settings: line_settings("1002"),
        ..expected
    };
    assert_eq!(changed, UpdateOutcome::Updated(expected.clone()));
    assert_eq!(store.device(d.mac).await.unwrap(), Some(expected.clone()));
    // Moving to where it is changes nothing but is fine.
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: Some(name("t2")),
                    settings: None,
                },
                &a1,
            )
            .await
            .unwrap(),
        UpdateOutcome::Updated(expected.clone())
    );
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: Some(name("nowhere")),
                    settings: None,
                },
                &a1,
            )
            .await
            .unwrap(),
        UpdateOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .update_device(mac("805ec0000099"), DeviceUpdate::default(), &a1)
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );

    // Release frees the MAC for anyone, and forgets its last-seen status.
    store
        .record_sightings(vec![sighting("805ec017de13", 1_000, "device")])
        .await
        .unwrap();
    assert!(store
        .device_view(None, d.mac)
        .await
        .unwrap()
        .expect("view")
        .status
        .is_some());
    assert!(store.release(d.mac, &a1).await.unwrap());
    assert_eq!(store.device(d.mac).await.unwrap(), None);
    assert_eq!(store.device_view(None, d.mac).await.unwrap(), None);
    assert!(!store.release(d.mac, &a1).await.unwrap());
    assert!(!nodes.two.release(d.mac, &Actor::cli()).await.unwrap());
    let again = claimed(nodes.two.as_ref(), request("805ec017de13", "t3"), &a2).await;
    assert_eq!(again.tenant, t3.id);
    let view = store
        .device_view(Some(p2.id), d.mac)
        .await
        .unwrap()
        .expect("view");
    assert_eq!(view.status, None);
}
