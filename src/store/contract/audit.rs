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

/// The administrator's filters: by the partner whose caller left an entry, by action
/// exactly, by text in the actor, and by a time range (from inclusive, to exclusive); they
/// combine with each other and with paging.
pub(crate) async fn audit_filters(nodes: Nodes) {
    let (one, two) = (nodes.one.as_ref(), nodes.two.as_ref());
    let acme = partner(one, "acme").await;
    let other = partner(one, "other").await;
    tenant(one, "a1", &partner_actor(&acme)).await;
    tenant(one, "o1", &partner_actor(&other)).await;
    claimed(one, request("805ec0000001", "a1"), &partner_actor(&acme)).await;
    claimed(one, request("805ec0000002", "o1"), &partner_actor(&other)).await;
    claimed(one, request("805ec0000003", "a1"), &Actor::cli()).await;
    let log = two.audit_log(all_audit()).await.unwrap();
    let pick = |q: AuditQuery| async move {
        two.audit_log(q)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.mac.or(e.tenant).unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let line = |a: &str, what: &str| (a.to_owned(), what.to_owned());
    assert_eq!(
        pick(AuditQuery {
            partner: Some(acme.id),
            ..all_audit()
        })
        .await,
        vec![
            line("tenant.create", "a1"),
            line("device.claim", "805ec0000001")
        ]
    );
    assert_eq!(
        pick(AuditQuery {
            action: Some("device.claim".into()),
            ..all_audit()
        })
        .await,
        vec![
            line("device.claim", "805ec0000001"),
            line("device.claim", "805ec0000002"),
            line("device.claim", "805ec0000003"),
        ]
    );
    assert!(
        pick(AuditQuery {
            action: Some("device.cl".into()),
            ..all_audit()
        })
        .await
        .is_empty(),
        "an action matches exactly"
    );
    assert_eq!(
        pick(AuditQuery {
            actor: Some(format!(":{}:other", other.id)),
            action: Some("device.claim".into()),
            ..all_audit()
        })
        .await,
        vec![line("device.claim", "805ec0000002")],
        "actor text and action combine"
    );
    assert_eq!(
        pick(AuditQuery {
            actor: Some("cli".into()),
            action: Some("device.claim".into()),
            ..all_audit()
        })
        .await,
        vec![line("device.claim", "805ec0000003")]
    );
    assert_eq!(
        pick(AuditQuery {
            actor: Some("CLI".into()),
            action: Some("device.claim".into()),
            ..all_audit()
        })
        .await,
        vec![line("device.claim", "805ec0000003")],
        "actor text in any case, as a person types it"
    );
    // A time range: entries at or after `since` and before `until`.
    let (first, last) = (log[0].at, log[log.len() - 1].at);
    assert_eq!(
        two.audit_log(AuditQuery {
            since: Some(first),
            until: Some(last + 1),
            ..all_audit()
        })
        .await
        .unwrap(),
        log
    );
    assert!(two
        .audit_log(AuditQuery {
            since: Some(last + 1),
            ..all_audit()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(two
        .audit_log(AuditQuery {
            until: Some(first),
            ..all_audit()
        })
        .await
        .unwrap()
        .is_empty());
    // Filters and paging combine.
    let page = two
        .audit_log(AuditQuery {
            action: Some("device.claim".into()),
            limit: 1,
            after: Some(
                log.iter()
                    .find(|e| e.action == "device.claim")
                    .map(|e| e.id)
                    .unwrap(),
            ),
            ..all_audit()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].mac.as_deref(), Some("805ec0000002"));
}
