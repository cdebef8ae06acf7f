//! The store contract, part: Partners: what a partner may see and touch, partners and their tokens, customers.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// A partner never sees or touches another partner's tenants, devices, customers or tokens.
pub(crate) async fn partner_scoping(nodes: Nodes) {
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
    let t1 = tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;
    let operators = tenant(store, "ops", &Actor::cli()).await;
    assert_eq!(operators.partner, None);
    let d = claimed(store, request("805ec017de13", "t1"), &a1).await;
    let tok1 = store
        .create_token(p1.id, new_token("key-one", b"hash-one"), &Actor::cli())
        .await
        .unwrap()
        .expect("token");

    // Tenants.
    let names = |ts: Vec<TenantRecord>| -> Vec<String> {
        ts.into_iter().map(|t| t.name.to_string()).collect()
    };
    assert_eq!(
        names(store.tenants_of(Some(p1.id), Page::all()).await.unwrap()),
        ["t1", "t2"]
    );
    assert_eq!(
        names(store.tenants_of(Some(p2.id), Page::all()).await.unwrap()),
        ["t3"]
    );
    assert_eq!(
        names(store.tenants_of(None, Page::all()).await.unwrap()),
        ["ops", "t1", "t2", "t3"]
    );
    assert_eq!(
        names(store.tenants().await.unwrap()),
        ["ops", "t1", "t2", "t3"]
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p2.id), &name("t1"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p2.id), &name("ops"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p1.id), &name("t1"))
            .await
            .unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store.tenant_by_name(None, &name("t1")).await.unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store
            .update_tenant(&name("t1"), None, settings("evil.example"), &a2)
            .await
            .unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store.delete_tenant(&name("t2"), &a2).await.unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store
            .update_tenant(&name("t3"), Some(c1.id), settings("pbx.example"), &a2)
            .await
            .unwrap(),
        TenantChanged::UnknownCustomer
    );
    assert_eq!(
        store
            .create_tenant(name("t4"), Some(c1.id), settings("pbx.example"), &a2)
            .await
            .unwrap(),
        TenantCreated::UnknownCustomer
    );
    assert_eq!(store.tenant(t1.id).await.unwrap(), Some(t1.clone()));
    assert!(store
        .tenant_by_name(None, &name("t2"))
        .await
        .unwrap()
        .is_some());

    // Devices.
    assert_eq!(store.device_view(Some(p2.id), d.mac).await.unwrap(), None);
    assert_eq!(
        store
            .device_view(Some(p1.id), d.mac)
            .await
            .unwrap()
            .map(|v| v.record),
        Some(d.clone())
    );
    assert!(store.device_view(None, d.mac).await.unwrap().is_some());
    assert!(store
        .search_devices(Some(p2.id), all_devices())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        macs(
            &store
                .search_devices(Some(p1.id), all_devices())
                .await
                .unwrap()
        ),
        ["805ec017de13"]
    );
    let move_to = |t: &str| DeviceUpdate {
        tenant: Some(name(t)),
        settings: None,
    };
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &a2)
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &a1)
            .await
            .unwrap(),
        UpdateOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: None,
                    settings: Some(line_settings("666")),
                },
                &a2
            )
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );
    assert!(!store.release(d.mac, &a2).await.unwrap());
    assert_eq!(
        store.open_enrolment(d.mac, Some(1), &a2).await.unwrap(),
        None
    );
    assert_eq!(
        store.request_rotation(d.mac, &a2).await.unwrap(),
        RotationOutcome::NotFound
    );
    assert_eq!(store.device(d.mac).await.unwrap(), Some(d.clone()));

    // Customers.
    assert!(store
        .customers(p2.id, Page::all())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.customers(p1.id, Page::all()).await.unwrap(),
        vec![c1.clone()]
    );
    assert_eq!(store.customer(p2.id, c1.id).await.unwrap(), None);
    assert_eq!(
        store
            .update_customer(
                p2.id,
                c1.id,
                CustomerFields {
                    company: "Evil".into(),
                    ..CustomerFields::default()
                },
                &a2
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.customer(p1.id, c1.id).await.unwrap(), Some(c1));

    // Tokens.
    assert!(store.tokens(p2.id).await.unwrap().is_empty());
    assert!(!store.revoke_token(p2.id, tok1.id, &a2).await.unwrap());
    assert_eq!(
        store
            .token_by_key("key-one")
            .await
            .unwrap()
            .and_then(|t| t.revoked_at),
        None
    );

    // The operator is not scoped.
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &Actor::cli())
            .await
            .unwrap(),
        UpdateOutcome::Updated(DeviceRecord {
            tenant: t3.id,
            ..d.clone()
        })
    );
    assert!(store.release(d.mac, &Actor::cli()).await.unwrap());
    assert_eq!(
        store
            .delete_tenant(&name("t2"), &Actor::cli())
            .await
            .unwrap(),
        TenantChanged::Done(None)
    );
}

/// Partners, and their tokens: create, list, look up by key, revoke.
pub(crate) async fn partners_and_tokens(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let acme = partner(store, "acme").await;
    assert_eq!(acme.name, "acme");
    assert!(acme.created_at > 0);
    assert_eq!(
        store.create_partner("acme", &Actor::cli()).await.unwrap(),
        None
    );
    let zeta = partner(nodes.two.as_ref(), "zeta").await;
    assert_eq!(
        store.partners().await.unwrap(),
        vec![acme.clone(), zeta.clone()]
    );
    assert_eq!(store.partner(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.partner(999_999).await.unwrap(), None);
    assert_eq!(
        store.partner_by_name("zeta").await.unwrap(),
        Some(zeta.clone())
    );
    assert_eq!(store.partner_by_name("nope").await.unwrap(), None);

    let t1 = store
        .create_token(acme.id, new_token("k1", &[1, 2, 3]), &Actor::cli())
        .await
        .unwrap()
        .expect("token");
    assert_eq!(t1.partner, acme.id);
    assert_eq!(t1.key_id, "k1");
    assert_eq!(t1.secret_hash, vec![1, 2, 3]);
    assert_eq!(t1.revoked_at, None);
    let t2 = store
        .create_token(acme.id, new_token("k2", &[4; 32]), &Actor::cli())
        .await
        .unwrap()
        .expect("token");
    assert_eq!(
        store
            .create_token(999_999, new_token("k3", &[5]), &Actor::cli())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.tokens(acme.id).await.unwrap(),
        vec![t1.clone(), t2.clone()]
    );
    assert!(store.tokens(zeta.id).await.unwrap().is_empty());
    assert_eq!(store.token_by_key("k1").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.token_by_key("k3").await.unwrap(), None);

    assert!(store
        .revoke_token(acme.id, t1.id, &Actor::cli())
        .await
        .unwrap());
    assert!(!store
        .revoke_token(acme.id, t1.id, &Actor::cli())
        .await
        .unwrap());
    assert!(!store
        .revoke_token(acme.id, 999_999, &Actor::cli())
        .await
        .unwrap());
    let revoked = store
        .token_by_key("k1")
        .await
        .unwrap()
        .expect("still there");
    assert!(revoked.revoked_at.is_some_and(|at| at >= t1.created_at));
    assert_eq!(store.tokens(acme.id).await.unwrap().len(), 2);
    assert_eq!(store.token_by_key("k2").await.unwrap(), Some(t2.clone()));

    // A named, read-only token with an expiry, and when tokens were last used.
    let t3 = store
        .create_token(
            acme.id,
            NewToken {
                name: Some("inventory export".into()),
                expires_at: Some(t2.created_at + 3_600_000),
                read_only: true,
                ..new_token("k3", &[6; 32])
            },
            &Actor::cli(),
        )
        .await
        .unwrap()
        .expect("token");
    assert_eq!(store.token_by_key("k3").await.unwrap(), Some(t3.clone()));
    assert!(t3.read_only && t3.valid_at(t3.created_at));
    assert!(
        !t3.valid_at(t2.created_at + 3_600_000),
        "expired at its end"
    );
    assert!(!revoked.valid_at(revoked.created_at), "revoked");
    let at = t2.created_at + 60_000;
    store
        .tokens_used(vec![(t2.id, at), (t3.id, at)])
        .await
        .unwrap();
    store.tokens_used(vec![(t2.id, at - 1)]).await.unwrap();
    let used = |key: &'static str| async move {
        store.token_by_key(key).await.unwrap().unwrap().last_used_at
    };
    assert_eq!(
        used("k2").await,
        Some(at),
        "an older use never goes back in time"
    );
    assert_eq!(used("k3").await, Some(at));
    assert_eq!(used("k1").await, None);

    let audit = store.audit_log(all_audit()).await.unwrap();
    let entries: Vec<(&str, Option<serde_json::Value>)> = audit
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.detail
                    .as_deref()
                    .map(|d| serde_json::from_str(d).expect("json detail")),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                "partner.create",
                Some(serde_json::json!({"partner": acme.id, "name": "acme"}))
            ),
            (
                "partner.create",
                Some(serde_json::json!({"partner": zeta.id, "name": "zeta"}))
            ),
            (
                "token.create",
                Some(serde_json::json!({"partner": acme.id, "token": t1.id}))
            ),
            (
                "token.create",
                Some(serde_json::json!({"partner": acme.id, "token": t2.id}))
            ),
            (
                "token.revoke",
                Some(serde_json::json!({"partner": acme.id, "token": t1.id}))
            ),
            (
                "token.create",
                Some(serde_json::json!({"partner": acme.id, "token": t3.id}))
            ),
        ]
    );
    assert!(audit.iter().all(|e| e.actor == "cli" && e.source.is_none()));
}

/// A partner's customers: create, list, read, update.
pub(crate) async fn customers(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    let fields = CustomerFields {
        company: "Initech".into(),
        contact: Some("Bill".into()),
        address: Some("1 Main St".into()),
        phone: Some("+1 555 0100".into()),
        email: Some("it@initech.example".into()),
    };
    let c = store
        .create_customer(p.id, fields.clone(), &actor)
        .await
        .unwrap();
    assert_eq!(c.partner, p.id);
    assert_eq!(c.fields, fields);
    assert!(c.created_at > 0);
    let c2 = store
        .create_customer(
            p.id,
            CustomerFields {
                company: "Globex".into(),
                ..CustomerFields::default()
            },
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(
        store.customers(p.id, Page::all()).await.unwrap(),
        vec![c.clone(), c2.clone()]
    );
    assert_eq!(store.customer(p.id, c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.customer(p.id, 999_999).await.unwrap(), None);

    let new_fields = CustomerFields {
        company: "Initrode".into(),
        ..CustomerFields::default()
    };
    let updated = store
        .update_customer(p.id, c.id, new_fields.clone(), &actor)
        .await
        .unwrap();
    let expected = CustomerRecord {
        fields: new_fields,
        ..c.clone()
    };
    assert_eq!(updated, Some(expected.clone()));
    assert_eq!(
        nodes.two.customer(p.id, c.id).await.unwrap(),
        Some(expected)
    );
    assert_eq!(
        store
            .update_customer(p.id, 999_999, CustomerFields::default(), &actor)
            .await
            .unwrap(),
        None
    );
    let audit = store.audit_log(all_audit()).await.unwrap();
    let actions: Vec<(&str, Option<&str>)> = audit
        .iter()
        .filter(|e| e.action.starts_with("customer."))
        .map(|e| (e.action.as_str(), e.detail.as_deref()))
        .collect();
    let detail = |id: i64| serde_json::json!({"customer": id}).to_string();
    assert_eq!(
        actions,
        vec![
            ("customer.create", Some(detail(c.id).as_str())),
            ("customer.create", Some(detail(c2.id).as_str())),
            ("customer.update", Some(detail(c.id).as_str())),
        ]
    );
}

/// Tenants page by name and customers by id, each page after the previous one's last row,
/// only the partner's own.
pub(crate) async fn tenant_and_customer_pages(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    for n in ["t5", "t1", "t4", "t2", "t3"] {
        tenant(store, n, &a1).await;
    }
    tenant(store, "t22", &a2).await;
    let page = |after: Option<&str>, limit| Page {
        after: after.map(name),
        limit: Some(limit),
    };
    let names = |ts: Vec<TenantRecord>| -> Vec<String> {
        ts.into_iter().map(|t| t.name.to_string()).collect()
    };
    let of = |after, limit| store.tenants_of(Some(p1.id), page(after, limit));
    assert_eq!(names(of(None, 2).await.unwrap()), ["t1", "t2"]);
    assert_eq!(names(of(Some("t2"), 2).await.unwrap()), ["t3", "t4"]);
    assert_eq!(names(of(Some("t4"), 2).await.unwrap()), ["t5"]);
    assert!(of(Some("t5"), 2).await.unwrap().is_empty());
    assert_eq!(
        names(store.tenants_of(None, page(Some("t2"), 2)).await.unwrap()),
        ["t22", "t3"],
        "the operator pages through every partner's"
    );

    let mut ids = Vec::new();
    for company in ["A", "B", "C"] {
        let fields = CustomerFields {
            company: company.into(),
            ..CustomerFields::default()
        };
        ids.push(store.create_customer(p1.id, fields, &a1).await.unwrap().id);
    }
    let other = CustomerFields {
        company: "Other".into(),
        ..CustomerFields::default()
    };
    store.create_customer(p2.id, other, &a2).await.unwrap();
    let customers = |after, limit| {
        store.customers(
            p1.id,
            Page {
                after,
                limit: Some(limit),
            },
        )
    };
    let companies = |cs: Vec<CustomerRecord>| -> Vec<String> {
        cs.into_iter().map(|c| c.fields.company).collect()
    };
    assert_eq!(companies(customers(None, 2).await.unwrap()), ["A", "B"]);
    assert_eq!(companies(customers(Some(ids[1]), 2).await.unwrap()), ["C"]);
    assert_eq!(
        companies(store.customers(p1.id, Page::all()).await.unwrap()),
        ["A", "B", "C"]
    );
}
