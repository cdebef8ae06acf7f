//! The store contract, part: The audit log: who did what to which device or tenant, from where.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

/// (action, actor, source, mac, tenant, detail) of an audit entry.
type AuditLine<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Who did what to which device or tenant, from where; filtered and paged.
pub(crate) async fn audit_log(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    tenant(store, "t1", &actor).await;
    tenant(store, "t2", &actor).await;
    let m = mac("805ec017de13");
    let mut req = request("805ec017de13", "t1");
    req.enrol_until = Some(1_234);
    claimed(store, req, &actor).await;
    store
        .update_device(
            m,
            DeviceUpdate {
                tenant: Some(name("t2")),
                settings: Some(line_settings("1")),
            },
            &actor,
        )
        .await
        .unwrap();
    claimed(store, request("805ec0000001", "t1"), &Actor::cli()).await;
    store
        .update_tenant(&name("t1"), None, settings("x.example"), &actor)
        .await
        .unwrap();
    store.release(m, &actor).await.unwrap();

    let log = store.audit_log(all_audit()).await.unwrap();
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    let summary: Vec<AuditLine<'_>> = log
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.source.as_deref(),
                e.mac.as_deref(),
                e.tenant.as_deref(),
                e.detail.as_deref(),
            )
        })
        .collect();
    let who = format!("partner:{}:acme", p.id);
    let from = Some("192.0.2.7");
    let dev = Some("805ec017de13");
    let moved = serde_json::json!({"from": "t1", "to": "t2"}).to_string();
    let enrol = serde_json::json!({"enrolment_until": 1_234}).to_string();
    assert_eq!(
        summary,
        vec![
            ("partner.create", "cli", None, None, None, summary[0].5),
            ("tenant.create", who.as_str(), from, None, Some("t1"), None),
            ("tenant.create", who.as_str(), from, None, Some("t2"), None),
            (
                "device.claim",
                who.as_str(),
                from,
                dev,
                Some("t1"),
                Some(enrol.as_str())
            ),
            (
                "device.move",
                who.as_str(),
                from,
                dev,
                Some("t2"),
                Some(moved.as_str())
            ),
            ("device.update", who.as_str(), from, dev, Some("t2"), None),
            (
                "device.claim",
                "cli",
                None,
                Some("805ec0000001"),
                Some("t1"),
                None
            ),
            ("tenant.update", who.as_str(), from, None, Some("t1"), None),
            ("device.release", who.as_str(), from, dev, Some("t2"), None),
        ]
    );
    assert!(log.iter().all(|e| e.at > 0));

    // Filters.
    let by_mac = store
        .audit_log(AuditQuery {
            partner: None,
            mac: Some(m),
            ..all_audit()
        })
        .await
        .unwrap();
    assert_eq!(
        by_mac.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "device.claim",
            "device.move",
            "device.update",
            "device.release"
        ]
    );
    let by_tenant = nodes
        .two
        .audit_log(AuditQuery {
            partner: None,
            tenant: Some("t1".into()),
            ..all_audit()
        })
        .await
        .unwrap();
    assert_eq!(
        by_tenant
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        [
            "tenant.create",
            "device.claim",
            "device.claim",
            "tenant.update"
        ]
    );
    // Paging.
    let first = store
        .audit_log(AuditQuery {
            partner: None,
            limit: 4,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first, log[..4].to_vec());
    let second = store
        .audit_log(AuditQuery {
            partner: None,
            limit: 4,
            after: Some(first[3].id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(second, log[4..8].to_vec());
    let by_mac_after = store
        .audit_log(AuditQuery {
            partner: None,
            mac: Some(m),
            after: Some(by_mac[1].id),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_mac_after, vec![by_mac[2].clone()]);
}
