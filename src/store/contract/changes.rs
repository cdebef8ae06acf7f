//! The store contract, part: The change sequence: which mutations take sequence numbers, in order.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Every mutation of phone-visible data takes new sequence numbers, in order; nothing else
/// does.
pub(crate) async fn change_sequence(nodes: Nodes) {
    let store = nodes.one.as_ref();
    assert_eq!(store.latest_change().await.unwrap(), 0);
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    store
        .create_customer(
            p.id,
            CustomerFields {
                company: "Initech".into(),
                ..CustomerFields::default()
            },
            &actor,
        )
        .await
        .unwrap();
    store
        .create_token(p.id, new_token("k1", b"h"), &Actor::cli())
        .await
        .unwrap();
    assert_eq!(
        store.latest_change().await.unwrap(),
        0,
        "no phone-visible change"
    );

    let mut seq = 0;
    // Runs `op` and returns the changes it appended, checking the sequence moved forward.
    macro_rules! step {
        ($op:expr) => {{
            let _ = $op;
            let latest = store.latest_change().await.unwrap();
            let entries = store.changes_since(seq, 1_000).await.unwrap();
            assert!(latest > seq, "a mutation must take a new sequence number");
            assert_eq!(entries.last().map(|e| e.seq), Some(latest));
            seq = latest;
            entries.into_iter().map(|e| e.change).collect::<Vec<_>>()
        }};
    }
    let t1 = tenant(store, "t1", &actor).await;
    let _ = step!(());
    let m = mac("805ec017de13");
    assert_eq!(
        step!(claimed(store, request("805ec017de13", "t1"), &actor).await),
        [Change::Device(m)]
    );
    let t2 = tenant(nodes.two.as_ref(), "t2", &actor).await;
    assert_eq!(step!(()), [Change::Tenant(t2.id)]);
    assert_eq!(
        step!(store
            .update_device(
                m,
                DeviceUpdate {
                    tenant: Some(name("t2")),
                    settings: Some(line_settings("1")),
                },
                &actor
            )
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store
            .update_tenant(&name("t1"), None, settings("new.example"), &actor)
            .await
            .unwrap()),
        [Change::Tenant(t1.id)]
    );
    assert_eq!(
        step!(store
            .open_enrolment(m, Some(now_millis() + 60_000), &actor)
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store
            .change_credentials(
                m,
                CredentialChange::Enrol {
                    ha1: Ha1::new("u", "p"),
                    user_agent: String::new()
                },
                None
            )
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store.request_rotation(m, &actor).await.unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(assert!(store.release(m, &actor).await.unwrap())),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store.delete_tenant(&name("t1"), &actor).await.unwrap()),
        [Change::Tenant(t1.id)]
    );
    let imported = step!(store
        .import(ImportBatch {
            tenants: vec![(0, name("t9"), settings("t9.example"))],
            devices: vec![
                import_device(0, "805ec0000001", "t9"),
                import_device(1, "805ec0000002", "t9"),
            ],
            actor: actor.clone(),
        })
        .await
        .unwrap());
    let t9 = store
        .tenant_by_name(None, &name("t9"))
        .await
        .unwrap()
        .expect("t9");
    assert_eq!(
        imported,
        [
            Change::Tenant(t9.id),
            Change::Device(mac("805ec0000001")),
            Change::Device(mac("805ec0000002"))
        ]
    );

    // Refusals, reads, sightings, partners, customers, tokens and secrets change nothing.
    assert_eq!(
        store
            .claim(request("805ec0000001", "t2"), &actor)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert!(matches!(
        store
            .claim(request("805ec0000001", "t9"), &actor)
            .await
            .unwrap(),
        ClaimOutcome::Unchanged(_)
    ));
    store
        .record_sightings(vec![sighting("805ec0000001", 5, "device")])
        .await
        .unwrap();
    store.secret("nonce-key", b"fresh").await.unwrap();
    partner(store, "zeta").await;
    assert!(!store.release(mac("805ec0099999"), &actor).await.unwrap());
    assert_eq!(store.latest_change().await.unwrap(), seq);

    // The whole sequence: strictly increasing, pageable.
    let all = store.changes_since(0, 10_000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.last().map(|e| e.seq), Some(seq));
    let page = store.changes_since(0, 3).await.unwrap();
    assert_eq!(page, all[..3].to_vec());
    let next = nodes.two.changes_since(page[2].seq, 3).await.unwrap();
    assert_eq!(next, all[3..6].to_vec());
    assert!(store.changes_since(seq, 10).await.unwrap().is_empty());
    assert_eq!(nodes.two.latest_change().await.unwrap(), seq);
}
