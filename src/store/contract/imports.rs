//! The store contract, part: Imports: every row gets an outcome, accepted rows are committed, importing again is harmless.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// Every row gets an outcome; accepted rows are committed; importing again is harmless.
pub(crate) async fn import_reports_every_row_and_is_idempotent(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let mut g_ok = import_device(4, "7c2f80e0d605", "sales");
    g_ok.claim_code = Some(code("AB12"));
    let mut g_bad = import_device(5, "7c2f80e0d605", "sales");
    g_bad.claim_code = Some(code("ZZ99"));
    let batch = ImportBatch {
        tenants: vec![
            (0, name("sales"), settings("sales.cloud.example")),
            (1, name("support"), settings("support.cloud.example")),
        ],
        devices: vec![
            import_device(0, "805ec017de13", "sales"),
            import_device(1, "805ec017de13", "support"),
            import_device(2, "805ec017de14", "nowhere"),
            import_device(3, "805ec017de13", "sales"),
            g_ok,
            g_bad,
        ],
        actor: Actor::cli(),
    };
    let first = store.import(batch.clone()).await.unwrap();
    assert_eq!(
        first.tenants,
        vec![(0, RowOutcome::Created), (1, RowOutcome::Created)]
    );
    assert_eq!(
        first.devices,
        vec![
            (0, RowOutcome::Created),
            (1, RowOutcome::AlreadyInUse),
            (2, RowOutcome::UnknownTenant),
            (3, RowOutcome::Updated),
            (4, RowOutcome::Created),
            (5, RowOutcome::ClaimCodeMismatch),
        ]
    );
    let sales = store
        .tenant_by_name(None, &name("sales"))
        .await
        .unwrap()
        .expect("sales");
    let support = store
        .tenant_by_name(None, &name("support"))
        .await
        .unwrap()
        .expect("support");
    assert_eq!(first.applied_tenants, vec![sales.clone(), support.clone()]);
    assert_eq!(sales.partner, None);
    assert_eq!(sales.settings, settings("sales.cloud.example"));
    let applied: Vec<(String, TenantId)> = first
        .applied_devices
        .iter()
        .map(|d| (d.mac.to_string(), d.tenant))
        .collect();
    assert_eq!(
        applied,
        vec![
            ("805ec017de13".into(), sales.id),
            ("805ec017de13".into(), sales.id),
            ("7c2f80e0d605".into(), sales.id),
        ]
    );
    assert!(first.applied_devices[2].claim_secret.is_some());
    assert_eq!(
        store.device(mac("805ec017de13")).await.unwrap().as_ref(),
        Some(&first.applied_devices[0])
    );
    assert_eq!(store.device(mac("805ec017de14")).await.unwrap(), None);
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 2);

    // The same file again: tenants are updated, claims by the same tenant are updated.
    let before = store.latest_change().await.unwrap();
    let second = store.import(batch.clone()).await.unwrap();
    assert_eq!(
        second.tenants,
        vec![(0, RowOutcome::Updated), (1, RowOutcome::Updated)]
    );
    assert_eq!(
        second.devices,
        vec![
            (0, RowOutcome::Updated),
            (1, RowOutcome::AlreadyInUse),
            (2, RowOutcome::UnknownTenant),
            (3, RowOutcome::Updated),
            (4, RowOutcome::Updated),
            (5, RowOutcome::ClaimCodeMismatch),
        ]
    );
    assert_eq!(second.applied_tenants, vec![sales.clone(), support]);
    assert_eq!(second.applied_devices.len(), 3);
    assert_eq!(store.tenants().await.unwrap().len(), 2);
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 2);
    // Unchanged devices produce no device change; updated tenants do.
    let changes = changes_after(store, before).await;
    assert!(changes.contains(&Change::Tenant(sales.id)));
    assert!(!changes.iter().any(|c| matches!(c, Change::Device(_))));

    // New per-device settings are applied to a device already claimed by the same tenant.
    let mut refreshed = import_device(0, "805ec017de13", "sales");
    refreshed.settings = line_settings("1001");
    let third = store
        .import(ImportBatch {
            tenants: vec![],
            devices: vec![refreshed],
            actor: Actor::cli(),
        })
        .await
        .unwrap();
    assert_eq!(third.devices, vec![(0, RowOutcome::Updated)]);
    assert_eq!(third.applied_devices[0].settings, line_settings("1001"));
    assert_eq!(
        store
            .device(mac("805ec017de13"))
            .await
            .unwrap()
            .expect("claimed")
            .settings,
        line_settings("1001")
    );

    // A partner's import: its new tenants are its own; other owners' names are taken and their
    // tenants are unknown to it.
    let acme = partner(store, "acme").await;
    let as_acme = partner_actor(&acme);
    let fourth = store
        .import(ImportBatch {
            tenants: vec![
                (0, name("acme-hq"), settings("hq.acme.example")),
                (1, name("sales"), settings("evil.example")),
            ],
            devices: vec![
                import_device(0, "805ec0000001", "acme-hq"),
                import_device(1, "805ec0000002", "sales"),
            ],
            actor: as_acme.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        fourth.tenants,
        vec![(0, RowOutcome::Created), (1, RowOutcome::NameTaken)]
    );
    assert_eq!(
        fourth.devices,
        vec![(0, RowOutcome::Created), (1, RowOutcome::UnknownTenant)]
    );
    assert_eq!(fourth.applied_tenants.len(), 1);
    assert_eq!(fourth.applied_tenants[0].partner, Some(acme.id));
    assert_eq!(
        store
            .tenant_by_name(None, &name("sales"))
            .await
            .unwrap()
            .expect("sales")
            .settings,
        settings("sales.cloud.example")
    );
    // The operator may update anyone's tenant; the owner stays.
    let fifth = store
        .import(ImportBatch {
            tenants: vec![(0, name("acme-hq"), settings("hq2.acme.example"))],
            devices: vec![],
            actor: Actor::cli(),
        })
        .await
        .unwrap();
    assert_eq!(fifth.tenants, vec![(0, RowOutcome::Updated)]);
    assert_eq!(fifth.applied_tenants[0].partner, Some(acme.id));
    assert_eq!(
        fifth.applied_tenants[0].settings,
        settings("hq2.acme.example")
    );
}
