//! The store contract, part: Reading devices: search filters and paging, last-seen sightings, hydration pages;
//! and changing many at once (bulk release and move).
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Searching by MAC prefix, tenant, vendor, last-seen window, never seen; paging with `after`.
pub(crate) async fn search_filters(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    tenant(store, "t3", &a2).await;
    for (m, t, actor) in [
        ("805ec0000003", "t1", &a1),
        ("805ec0000001", "t1", &a1),
        ("805ec0000002", "t1", &a1),
        ("000413000001", "t2", &a1),
        ("7c2f80000001", "t1", &a1),
        ("805ec0100001", "t3", &a2),
    ] {
        let req = if m.starts_with("7c2f80") {
            gigaset(m, t, Some("AB12"))
        } else {
            request(m, t)
        };
        claimed(store, req, actor).await;
    }
    store
        .record_sightings(vec![
            sighting("805ec0000001", 1_000, "device"),
            sighting("805ec0000002", 2_000, "common"),
            sighting("805ec0100001", 1_000, "device"),
        ])
        .await
        .unwrap();
    let q = |f: fn(&mut DeviceQuery)| {
        let mut q = all_devices();
        f(&mut q);
        q
    };
    let search = |partner: Option<PartnerId>, query: DeviceQuery| async move {
        macs(&store.search_devices(partner, query).await.unwrap())
    };

    assert_eq!(
        search(Some(p1.id), all_devices()).await,
        [
            "000413000001",
            "7c2f80000001",
            "805ec0000001",
            "805ec0000002",
            "805ec0000003"
        ]
    );
    assert_eq!(search(None, all_devices()).await.len(), 6);
    assert_eq!(
        search(Some(p1.id), q(|q| q.mac_prefix = Some("805ec000".into()))).await,
        ["805ec0000001", "805ec0000002", "805ec0000003"]
    );
    assert_eq!(
        search(None, q(|q| q.mac_prefix = Some("805ec0".into()))).await,
        [
            "805ec0000001",
            "805ec0000002",
            "805ec0000003",
            "805ec0100001"
        ]
    );
    assert_eq!(
        search(None, q(|q| q.mac_prefix = Some("805ec0000002".into()))).await,
        ["805ec0000002"]
    );
    assert_eq!(
        search(None, q(|q| q.mac_contains = Some("000002".into()))).await,
        search(None, q(|q| q.mac_prefix = Some("805ec0000002".into()))).await,
        "a fragment found anywhere in the MAC"
    );
    assert_eq!(
        search(None, q(|q| q.mac_contains = Some("c01000".into()))).await,
        ["805ec0100001"]
    );
    assert!(search(None, q(|q| q.mac_contains = Some("abcdef".into())))
        .await
        .is_empty());
    // A partner's search by a long fragment reads the partner's own MACs first: the other
    // partner's match stays out, filters and paging still apply.
    assert_eq!(
        search(Some(p1.id), q(|q| q.mac_contains = Some("0001".into()))).await,
        ["000413000001", "7c2f80000001", "805ec0000001"]
    );
    assert_eq!(
        search(
            Some(p1.id),
            q(|q| {
                q.mac_contains = Some("0001".into());
                q.vendor = Some(Vendor::Yealink);
            })
        )
        .await,
        ["805ec0000001"]
    );
    assert_eq!(
        search(
            Some(p1.id),
            q(|q| {
                q.mac_contains = Some("0001".into());
                q.after = Some(Mac::parse("7c2f80000001").unwrap());
            })
        )
        .await,
        ["805ec0000001"]
    );
    assert_eq!(
        search(Some(p2.id), q(|q| q.mac_contains = Some("c0100".into()))).await,
        ["805ec0100001"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.mac_contains = Some("13".into()))).await,
        ["000413000001"],
        "a short fragment, read in MAC order"
    );
    // Who holds which MACs, in one read: unclaimed ones are left out.
    let mut held = store
        .claim_holders(
            ["805ec0000001", "805ec0100001", "805ec0999999"]
                .map(|m| Mac::parse(m).unwrap())
                .to_vec(),
        )
        .await
        .unwrap();
    held.sort();
    assert_eq!(
        held,
        [
            (Mac::parse("805ec0000001").unwrap(), Some(p1.id)),
            (Mac::parse("805ec0100001").unwrap(), Some(p2.id)),
        ]
    );
    assert!(store.claim_holders(Vec::new()).await.unwrap().is_empty());
    assert!(search(None, q(|q| q.mac_prefix = Some("ff".into())))
        .await
        .is_empty());
    assert_eq!(
        search(Some(p1.id), q(|q| q.tenant = Some(name("t2")))).await,
        ["000413000001"]
    );
    assert!(search(Some(p1.id), q(|q| q.tenant = Some(name("t3"))))
        .await
        .is_empty());
    assert_eq!(
        search(None, q(|q| q.vendor = Some(Vendor::Gigaset))).await,
        ["7c2f80000001"]
    );
    assert_eq!(
        search(None, q(|q| q.vendor = Some(Vendor::Snom))).await,
        ["000413000001"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_since = Some(1_500))).await,
        ["805ec0000002"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_since = Some(1_000))).await,
        ["805ec0000001", "805ec0000002"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_before = Some(1_500))).await,
        ["805ec0000001"]
    );
    assert_eq!(
        search(
            None,
            q(|q| {
                q.seen_since = Some(500);
                q.seen_before = Some(1_500);
            })
        )
        .await,
        ["805ec0000001", "805ec0100001"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.never_seen = true)).await,
        ["000413000001", "7c2f80000001", "805ec0000003"]
    );
    assert_eq!(
        search(
            Some(p1.id),
            q(|q| {
                q.never_seen = true;
                q.mac_prefix = Some("805e".into());
            })
        )
        .await,
        ["805ec0000003"]
    );

    // Keyset paging.
    let page1 = search(
        None,
        DeviceQuery {
            limit: 4,
            ..DeviceQuery::default()
        },
    )
    .await;
    assert_eq!(
        page1,
        [
            "000413000001",
            "7c2f80000001",
            "805ec0000001",
            "805ec0000002"
        ]
    );
    let page2 = search(
        None,
        DeviceQuery {
            limit: 4,
            after: Some(mac(&page1[3])),
            ..DeviceQuery::default()
        },
    )
    .await;
    assert_eq!(page2, ["805ec0000003", "805ec0100001"]);
    let page3 = search(
        None,
        DeviceQuery {
            limit: 4,
            after: Some(mac("805ec0100001")),
            ..DeviceQuery::default()
        },
    )
    .await;
    assert!(page3.is_empty());
    assert_eq!(
        search(
            Some(p1.id),
            DeviceQuery {
                limit: 2,
                after: Some(mac("7c2f80000001")),
                mac_prefix: Some("805ec0".into()),
                ..DeviceQuery::default()
            }
        )
        .await,
        ["805ec0000001", "805ec0000002"]
    );

    // What a view carries.
    let views = store
        .search_devices(
            Some(p1.id),
            q(|q| q.mac_prefix = Some("805ec0000001".into())),
        )
        .await
        .unwrap();
    let v = &views[0];
    assert_eq!(v.tenant_name, name("t1"));
    assert!(v.claimed_at > 0 && v.updated_at >= v.claimed_at);
    assert_eq!(
        v.status,
        Some(DeviceStatus {
            last_seen: 1_000,
            source: "192.0.2.7".into(),
            user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
            model: Some("T46S".into()),
            firmware: Some("66.86.0.15".into()),
            last_file: "device".into(),
            last_outcome: "served".into(),
        })
    );
    assert_eq!(
        store
            .device_view(Some(p1.id), v.record.mac)
            .await
            .unwrap()
            .as_ref(),
        Some(v)
    );
}

/// Sightings are recorded for claimed devices only; the latest one wins.
pub(crate) async fn sightings(nodes: Nodes) {
    let store = nodes.one.as_ref();
    tenant(store, "t1", &Actor::cli()).await;
    claimed(store, request("805ec017de13", "t1"), &Actor::cli()).await;
    store.record_sightings(vec![]).await.unwrap();
    store
        .record_sightings(vec![
            sighting("805ec017de13", 1_000, "device"),
            sighting("805ec017de14", 1_000, "device"),
        ])
        .await
        .unwrap();
    let status = |m: &'static str| async move {
        store
            .device_view(None, mac(m))
            .await
            .unwrap()
            .expect("claimed")
            .status
    };
    assert_eq!(
        status("805ec017de13").await.map(|s| s.last_seen),
        Some(1_000)
    );
    // Not recorded for an unclaimed device: claiming it later shows no status.
    claimed(store, request("805ec017de14", "t1"), &Actor::cli()).await;
    assert_eq!(status("805ec017de14").await, None);

    // Within a batch and across batches, the latest write wins.
    store
        .record_sightings(vec![
            sighting("805ec017de13", 2_000, "common"),
            sighting("805ec017de14", 2_500, "device"),
            sighting("805ec017de13", 3_000, "boot"),
        ])
        .await
        .unwrap();
    let s = status("805ec017de13").await.expect("seen");
    assert_eq!((s.last_seen, s.last_file.as_str()), (3_000, "boot"));
    assert_eq!(
        status("805ec017de14").await.map(|s| s.last_seen),
        Some(2_500)
    );
    let mut other = sighting("805ec017de13", 4_000, "device");
    other.source = "2001:db8::1".parse().expect("ip");
    other.model = None;
    other.firmware = None;
    other.outcome = "vendor_mismatch";
    nodes.two.record_sightings(vec![other]).await.unwrap();
    assert_eq!(
        status("805ec017de13").await,
        Some(DeviceStatus {
            last_seen: 4_000,
            source: "2001:db8::1".into(),
            user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
            model: None,
            firmware: None,
            last_file: "device".into(),
            last_outcome: "vendor_mismatch".into(),
        })
    );
}

/// Hydration pages: every device exactly once, in MAC order.
pub(crate) async fn devices_page_walks_in_mac_order(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    tenant(store, "t1", &Actor::cli()).await;
    tenant(store, "t2", &partner_actor(&p)).await;
    let mut expected = BTreeSet::new();
    // Claimed out of order, across tenants and vendors.
    for i in 0..25u32 {
        let n = (i * 7919) % 25;
        let m = match n % 3 {
            0 => format!("805ec0{n:06x}"),
            1 => format!("000413{n:06x}"),
            _ => format!("805ec1{n:06x}"),
        };
        let t = if n % 2 == 0 { "t1" } else { "t2" };
        claimed(store, request(&m, t), &Actor::cli()).await;
        expected.insert(mac(&m));
    }
    assert!(store.devices_page(None, 0).await.unwrap().is_empty());
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.devices_page(after, 10).await.unwrap();
        assert!(page.len() <= 10);
        for d in &page {
            assert_eq!(store.device(d.mac).await.unwrap().as_ref(), Some(d));
        }
        seen.extend(page.iter().map(|d| d.mac));
        match page.last() {
            Some(d) if page.len() == 10 => after = Some(d.mac),
            _ => break,
        }
    }
    assert_eq!(seen, expected.iter().copied().collect::<Vec<_>>());
    let last = *expected.iter().last().expect("devices");
    assert!(store.devices_page(Some(last), 10).await.unwrap().is_empty());
    let first_two: Vec<Mac> = expected.iter().copied().take(3).collect();
    assert_eq!(
        nodes
            .two
            .devices_page(Some(first_two[0]), 2)
            .await
            .unwrap()
            .iter()
            .map(|d| d.mac)
            .collect::<Vec<_>>(),
        first_two[1..]
    );
}

/// A bulk release or move: one outcome per MAC in the order given, another partner's device
/// and an unclaimed MAC alike `NotFound` and untouched, a MAC named twice changed once, each
/// change audited and announced as the single-device operation does, and a move to a tenant
/// the actor may not use changing nothing at all.
pub(crate) async fn bulk_release_and_move(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    tenant(store, "t1", &a1).await;
    let t2 = tenant(store, "t2", &a1).await;
    tenant(store, "t3", &a2).await;
    let mine = [
        "805ec0000001",
        "805ec0000002",
        "805ec0000003",
        "805ec0000004",
    ];
    let mut devices = BTreeMap::new();
    for m in mine {
        devices.insert(m, claimed(store, request(m, "t1"), &a1).await);
    }
    claimed(store, request("805ec0000005", "t2"), &a1).await;
    let theirs = claimed(store, request("805ec0000009", "t3"), &a2).await;
    let outcome = |r: BulkResult| match r {
        BulkResult::Applied(outcomes) => outcomes,
        BulkResult::UnknownTenant => panic!("the tenant is the actor's"),
    };
    let changes_before = store.latest_change().await.unwrap();

    // A move to another partner's tenant, or to none, changes nothing whatever the MACs.
    for to in ["t3", "nowhere"] {
        assert_eq!(
            store
                .bulk_devices(
                    BulkAction::Move(name(to)),
                    vec![mac(mine[0]), mac(mine[1])],
                    &a1
                )
                .await
                .unwrap(),
            BulkResult::UnknownTenant
        );
    }
    assert_eq!(store.latest_change().await.unwrap(), changes_before);

    // Move: the first two (the first named twice), one already there, one of another
    // partner's and one never claimed.
    let moved = outcome(
        nodes
            .two
            .bulk_devices(
                BulkAction::Move(name("t2")),
                [
                    mine[1],
                    mine[0],
                    "805ec0000005",
                    mine[1],
                    "805ec0000009",
                    "805ec00000ff",
                ]
                .map(mac)
                .to_vec(),
                &a1,
            )
            .await
            .unwrap(),
    );
    let moved_record = |m: &str| {
        BulkOutcome::Moved(DeviceRecord {
            tenant: t2.id,
            ..devices[m].clone()
        })
    };
    assert_eq!(
        moved,
        [
            moved_record(mine[1]),
            moved_record(mine[0]),
            BulkOutcome::Unchanged,
            BulkOutcome::Unchanged,
            BulkOutcome::NotFound,
            BulkOutcome::NotFound,
        ]
    );
    for m in [mine[0], mine[1]] {
        assert_eq!(
            store.device(mac(m)).await.unwrap().map(|d| d.tenant),
            Some(t2.id)
        );
    }
    assert_eq!(
        store.device(theirs.mac).await.unwrap(),
        Some(theirs.clone())
    );
    // Only the two moves were announced (in MAC order), nothing for what was left alone.
    assert_eq!(
        changes_after(store, changes_before).await,
        [Change::Device(mac(mine[0])), Change::Device(mac(mine[1]))]
    );

    // Release: three of mine (one named twice, in two notations), another partner's, one
    // never claimed.
    let changes_before = store.latest_change().await.unwrap();
    let released = outcome(
        store
            .bulk_devices(
                BulkAction::Release,
                vec![
                    mac(mine[2]),
                    mac("805ec0000009"),
                    mac(mine[0]),
                    mac("80:5e:c0:00:00:03"),
                    mac("805ec00000ff"),
                    mac(mine[1]),
                ],
                &a1,
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        released,
        [
            BulkOutcome::Released,
            BulkOutcome::NotFound,
            BulkOutcome::Released,
            BulkOutcome::Unchanged,
            BulkOutcome::NotFound,
            BulkOutcome::Released,
        ]
    );
    for m in [mine[0], mine[1], mine[2]] {
        assert_eq!(nodes.two.device(mac(m)).await.unwrap(), None);
    }
    assert!(store.device(mac(mine[3])).await.unwrap().is_some());
    assert_eq!(store.device(theirs.mac).await.unwrap(), Some(theirs));
    assert_eq!(
        changes_after(store, changes_before).await,
        [mine[0], mine[1], mine[2]].map(|m| Change::Device(mac(m)))
    );

    // Audited as the single-device operations are: one entry per change, nothing else.
    let log = store.audit_log(all_audit()).await.unwrap();
    let bulk: Vec<(&str, Option<&str>, Option<&str>)> = log
        .iter()
        .filter(|e| e.action == "device.move" || e.action == "device.release")
        .map(|e| (e.action.as_str(), e.mac.as_deref(), e.tenant.as_deref()))
        .collect();
    let one = mac(mine[0]).to_string();
    let two = mac(mine[1]).to_string();
    let three = mac(mine[2]).to_string();
    assert_eq!(
        bulk,
        [
            ("device.move", Some(one.as_str()), Some("t2")),
            ("device.move", Some(two.as_str()), Some("t2")),
            ("device.release", Some(one.as_str()), Some("t2")),
            ("device.release", Some(two.as_str()), Some("t2")),
            ("device.release", Some(three.as_str()), Some("t1")),
        ]
    );
    assert!(log
        .iter()
        .filter(|e| e.action == "device.move" || e.action == "device.release")
        .all(|e| e.actor == a1.name));

    // Nothing named, nothing done; the operator may release any partner's device.
    assert_eq!(
        store
            .bulk_devices(BulkAction::Release, Vec::new(), &a1)
            .await
            .unwrap(),
        BulkResult::Applied(Vec::new())
    );
    assert_eq!(
        outcome(
            store
                .bulk_devices(
                    BulkAction::Release,
                    vec![mac("805ec0000009")],
                    &Actor::cli()
                )
                .await
                .unwrap()
        ),
        [BulkOutcome::Released]
    );
}
