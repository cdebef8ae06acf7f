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
