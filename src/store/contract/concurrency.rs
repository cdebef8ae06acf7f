//! The store contract, part: Two nodes writing at once: one winner per MAC, a change feed that misses nothing,
//! deletes racing claims, enrolments racing each other.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// 50 claims of one MAC for two tenants at once, through two nodes: exactly one is created.
pub(crate) async fn concurrent_claims_have_one_winner(nodes: Nodes) {
    let a = tenant(nodes.one.as_ref(), "a", &Actor::cli()).await;
    let b = tenant(nodes.one.as_ref(), "b", &Actor::cli()).await;
    for round in 0..3u32 {
        let m = format!("805ec01700{round:02x}");
        let before = nodes.one.latest_change().await.unwrap();
        let barrier = Arc::new(Barrier::new(50));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = if i % 2 == 0 {
                nodes.one.clone()
            } else {
                nodes.two.clone()
            };
            let tenant = if i % 4 < 2 { "a" } else { "b" };
            let req = request(&m, tenant);
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (tenant, store.claim(req, &Actor::cli()).await.unwrap())
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let winners: Vec<&(&str, ClaimOutcome)> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ClaimOutcome::Created(_)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one claim is created: {outcomes:?}"
        );
        let (winner, created) = winners[0];
        let ClaimOutcome::Created(record) = created else {
            unreachable!()
        };
        assert_eq!(record.tenant, if *winner == "a" { a.id } else { b.id });
        for (tenant, outcome) in &outcomes {
            match outcome {
                ClaimOutcome::Created(_) => {}
                ClaimOutcome::Unchanged(d) => {
                    assert_eq!(tenant, winner);
                    assert_eq!(d, record);
                }
                ClaimOutcome::AlreadyInUse => assert_ne!(tenant, winner),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            nodes.two.device(mac(&m)).await.unwrap().as_ref(),
            Some(record)
        );
        assert_eq!(
            changes_after(nodes.one.as_ref(), before).await,
            [Change::Device(mac(&m))]
        );
        let claims = nodes
            .one
            .audit_log(AuditQuery {
                partner: None,
                mac: Some(mac(&m)),
                ..all_audit()
            })
            .await
            .unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].action, "device.claim");
        assert_eq!(claims[0].tenant.as_deref(), Some(*winner));
    }
}

/// A reader following the change feed while several nodes commit misses nothing.
pub(crate) async fn change_feed_misses_nothing_under_concurrent_writers(nodes: Nodes) {
    tenant(nodes.one.as_ref(), "t1", &Actor::cli()).await;
    let start = nodes.one.latest_change().await.unwrap();
    let writers_done = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = nodes.two.clone();
        let done = done.clone();
        let writers_done = writers_done.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = BTreeMap::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                loop {
                    let page = store.changes_since(cursor, 7).await.unwrap();
                    for e in &page {
                        assert!(e.seq > cursor, "the feed goes forward");
                        cursor = e.seq;
                        if let Change::Device(m) = &e.change {
                            *seen.entry(*m).or_insert(0) += 1;
                        }
                    }
                    if page.len() < 7 {
                        break;
                    }
                }
                if finished {
                    return seen;
                }
                tokio::select! {
                    () = writers_done.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let store = if w % 2 == 0 {
            nodes.one.clone()
        } else {
            nodes.two.clone()
        };
        writers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25u32 {
                let m = format!("805ec0{w:02x}{i:04x}");
                claimed(store.as_ref(), request(&m, "t1"), &Actor::cli()).await;
                if i % 5 == 0 {
                    // Some transactions carry several changes.
                    store
                        .update_device(
                            mac(&m),
                            DeviceUpdate {
                                tenant: None,
                                settings: Some(line_settings("1")),
                            },
                            &Actor::cli(),
                        )
                        .await
                        .unwrap();
                }
                mine.push(mac(&m));
            }
            mine
        }));
    }
    let mut all = BTreeSet::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    writers_done.notify_one();
    let seen = reader.await.unwrap();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), all);
    let expected_changes: usize = all
        .iter()
        .map(|m| {
            if u32::from_str_radix(&m.to_string()[8..], 16).unwrap_or(1) % 5 == 0 {
                2
            } else {
                1
            }
        })
        .sum();
    assert_eq!(seen.values().sum::<usize>(), expected_changes);
}

/// A tenant is never deleted under a device claimed at the same moment: either the claim wins
/// (and the delete is refused) or the delete wins (and the claim finds no tenant).
pub(crate) async fn tenant_delete_races_claims_consistently(nodes: Nodes) {
    for round in 0..10u32 {
        let t = format!("race{round}");
        tenant(nodes.one.as_ref(), &t, &Actor::cli()).await;
        let m = format!("805ec02000{round:02x}");
        let barrier = Arc::new(Barrier::new(2));
        let claim = {
            let (store, barrier, req) = (nodes.one.clone(), barrier.clone(), request(&m, &t));
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim(req, &Actor::cli()).await.unwrap()
            })
        };
        let delete = {
            let (store, barrier, t) = (nodes.two.clone(), barrier.clone(), name(&t));
            tokio::spawn(async move {
                barrier.wait().await;
                store.delete_tenant(&t, &Actor::cli()).await.unwrap()
            })
        };
        let (claim, delete) = (claim.await.unwrap(), delete.await.unwrap());
        match (&claim, &delete) {
            (ClaimOutcome::Created(_), TenantChanged::HasDevices) => {
                assert!(nodes.one.device(mac(&m)).await.unwrap().is_some());
            }
            (ClaimOutcome::UnknownTenant, TenantChanged::Done(None)) => {
                assert!(nodes.one.device(mac(&m)).await.unwrap().is_none());
            }
            other => panic!("inconsistent outcome {other:?}"),
        }
        assert!(nodes
            .one
            .devices_page(None, 1_000)
            .await
            .unwrap()
            .iter()
            .all(|d| d.tenant > 0));
    }
    // Every stored device still has its tenant.
    for d in nodes.one.devices_page(None, 1_000).await.unwrap() {
        assert!(nodes.one.tenant(d.tenant).await.unwrap().is_some());
    }
}

/// Fetches enrolling one device at once, through two nodes, take turns: exactly one is the
/// enrolment, every other replaces its still unused credentials, and the device ends with the
/// credentials of one of them.
pub(crate) async fn concurrent_enrolment_binds_once(nodes: Nodes) {
    tenant(nodes.one.as_ref(), "t1", &Actor::cli()).await;
    for round in 0..5u32 {
        let m = format!("805ec03000{round:02x}");
        let mut req = request(&m, "t1");
        req.enrol_until = Some(now_millis() + 3_600_000);
        claimed(nodes.one.as_ref(), req, &Actor::cli()).await;
        let barrier = Arc::new(Barrier::new(10));
        let mut tasks = Vec::new();
        for i in 0..10u32 {
            let store = if i % 2 == 0 {
                nodes.one.clone()
            } else {
                nodes.two.clone()
            };
            let barrier = barrier.clone();
            let m = mac(&m);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .change_credentials(
                        m,
                        CredentialChange::Enrol {
                            ha1: Ha1::new(&format!("u{i}"), "p"),
                            user_agent: "Yealink SIP-T46S".into(),
                        },
                        None,
                    )
                    .await
                    .unwrap()
            }));
        }
        let mut applied = Vec::new();
        for t in tasks {
            applied.extend(t.await.unwrap());
        }
        assert_eq!(applied.len(), 10, "each took its turn");
        let last = nodes.two.device(mac(&m)).await.unwrap().expect("claimed");
        assert!(applied.contains(&last));
        let enrolments = nodes
            .one
            .audit_log(AuditQuery {
                partner: None,
                mac: Some(mac(&m)),
                ..all_audit()
            })
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "device.enrol")
            .count();
        assert_eq!(enrolments, 1, "one enrolment, the rest re-issues");
    }
}
