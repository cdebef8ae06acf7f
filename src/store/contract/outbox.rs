//! The store contract, part: the redirect outbox: rows queued with claims and releases,
//! delivered oldest first per MAC, leased to one worker at a time across nodes, settled into
//! each device's redirect state, backed off and woken.
//!
//! Written against [`Store`] only; run against every backend by `contract/mod.rs`.

use super::*;

fn redirected(m: &str, tenant: &str) -> ClaimRequest {
    ClaimRequest {
        redirect: true,
        ..request(m, tenant)
    }
}

async fn state_of(store: &dyn Store, m: &str) -> Option<RedirectStatus> {
    store.redirect_states(vec![mac(m)]).await.unwrap().pop()
}

/// A claim queues a registration (pending), a release after it a deregistration delivered
/// after it; outcomes become the state; retries back off until woken; audit tells the story.
pub(crate) async fn redirect_outbox(nodes: Nodes) {
    let (one, two) = (nodes.one.as_ref(), nodes.two.as_ref());
    let p = partner(one, "one").await;
    let actor = partner_actor(&p);
    tenant(one, "t1", &actor).await;

    claimed(one, redirected("805ec017de13", "t1"), &actor).await;
    claimed(one, request("805ec017de14", "t1"), &actor).await;
    claimed(one, redirected("000413aa0001", "t1"), &actor).await;
    let pending = state_of(two, "805ec017de13").await.expect("a state");
    assert_eq!(pending.state, RedirectState::Pending);
    assert_eq!(pending.vendor, Vendor::Yealink);
    assert_eq!(state_of(one, "805ec017de14").await, None, "not configured");
    assert!(one.release(mac("805ec017de13"), &actor).await.unwrap());
    assert_eq!(state_of(one, "805ec017de13").await, None, "released");

    let backlog = one.redirect_backlog().await.unwrap();
    let yealink = backlog
        .iter()
        .find(|b| b.vendor == Vendor::Yealink)
        .unwrap();
    assert_eq!(yealink.rows, 2, "register and deregister");

    // Only the oldest row of a MAC is leased; a leased row is nobody else's.
    let now = now_millis();
    let first = one
        .redirect_lease("a", now, now + 60_000, 10)
        .await
        .unwrap();
    let actions: Vec<_> = first.iter().map(|r| (r.mac, r.action)).collect();
    assert_eq!(
        actions,
        [
            (mac("805ec017de13"), RedirectAction::Register),
            (mac("000413aa0001"), RedirectAction::Register),
        ]
    );
    assert!(two
        .redirect_lease("b", now, now + 60_000, 10)
        .await
        .unwrap()
        .is_empty());

    // Settled: the Yealink register is done, so its deregister comes next; the Snom one is
    // retried in an hour.
    let hour_later = now_millis() + 3_600_000;
    let settled = vec![
        (first[0].clone(), Settlement::Delivered),
        (
            first[1].clone(),
            Settlement::Retry {
                reason: "503 Service Unavailable".into(),
                at: hour_later,
            },
        ),
    ];
    one.redirect_settle("a", settled).await.unwrap();
    let failed = state_of(one, "000413aa0001").await.unwrap();
    assert_eq!(failed.state, RedirectState::Failed);
    assert_eq!(failed.reason.as_deref(), Some("503 Service Unavailable"));
    assert_eq!(failed.next_try_at, Some(hour_later));
    let now = now_millis();
    let second = two
        .redirect_lease("b", now, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].action, RedirectAction::Deregister);
    assert_eq!(second[0].mac, mac("805ec017de13"));
    two.redirect_settle("b", vec![(second[0].clone(), Settlement::Delivered)])
        .await
        .unwrap();

    // The vendor answers again: the backed-off row is due at once.
    assert!(one
        .redirect_lease("a", now, now + 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(one.redirect_wake(Vendor::Snom, now).await.unwrap(), 1);
    let woken = one
        .redirect_lease("a", now, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].attempts, 1);
    one.redirect_settle(
        "a",
        vec![(woken[0].clone(), Settlement::RegisteredElsewhere)],
    )
    .await
    .unwrap();
    let elsewhere = state_of(two, "000413aa0001").await.unwrap();
    assert_eq!(elsewhere.state, RedirectState::RegisteredElsewhere);
    assert_eq!(elsewhere.next_try_at, None);
    assert!(one.redirect_backlog().await.unwrap().is_empty());

    let audit = one.audit_log(all_audit()).await.unwrap();
    let redirect: Vec<_> = audit
        .iter()
        .filter(|e| e.actor == "redirect")
        .map(|e| (e.action.as_str(), e.mac.clone().unwrap()))
        .collect();
    assert_eq!(
        redirect,
        [
            ("device.redirect.register", "805ec017de13".to_owned()),
            ("device.redirect.register", "000413aa0001".to_owned()),
            ("device.redirect.deregister", "805ec017de13".to_owned()),
            ("device.redirect.register", "000413aa0001".to_owned()),
        ],
        "first failure and final outcomes, not every retry"
    );

    // Repair rows: a register only for a claimed device.
    let queued = one
        .redirect_enqueue(
            vec![
                Enqueue {
                    mac: mac("000413aa0001"),
                    vendor: Vendor::Snom,
                    action: RedirectAction::Register,
                },
                Enqueue {
                    mac: mac("805ec017de99"),
                    vendor: Vendor::Yealink,
                    action: RedirectAction::Register,
                },
                Enqueue {
                    mac: mac("805ec017de98"),
                    vendor: Vendor::Yealink,
                    action: RedirectAction::Deregister,
                },
            ],
            &Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(queued, 2);
    assert_eq!(
        state_of(one, "000413aa0001").await.unwrap().state,
        RedirectState::Pending
    );
}

/// A lease that ran out is anyone's; the late settle of its first owner changes nothing.
/// Two nodes leasing a backlog at once never hold one row together.
pub(crate) async fn redirect_leases_are_exclusive(nodes: Nodes) {
    let (one, two) = (nodes.one.clone(), nodes.two.clone());
    let p = partner(one.as_ref(), "one").await;
    let actor = partner_actor(&p);
    tenant(one.as_ref(), "t1", &actor).await;
    let devices = (0..200)
        .map(|i| ImportDevice {
            redirect: true,
            ..import_device(i, &format!("805ec0{i:06x}"), "t1")
        })
        .collect();
    let batch = ImportBatch {
        tenants: Vec::new(),
        devices,
        actor: actor.clone(),
    };
    one.import(batch).await.unwrap();

    let now = now_millis();
    let short = one.redirect_lease("a", now, now + 1, 1).await.unwrap();
    assert_eq!(short.len(), 1);
    let later = now + 10;
    let taken = two
        .redirect_lease("b", later, later + 60_000, 1)
        .await
        .unwrap();
    assert_eq!(taken, short, "the expired lease is taken over");
    one.redirect_settle("a", vec![(short[0].clone(), Settlement::Delivered)])
        .await
        .unwrap();
    assert_eq!(
        state_of(one.as_ref(), &short[0].mac.to_string())
            .await
            .unwrap()
            .state,
        RedirectState::Pending,
        "a lost lease settles nothing"
    );
    two.redirect_settle("b", vec![(taken[0].clone(), Settlement::Delivered)])
        .await
        .unwrap();

    // Both nodes drain the rest at once, each settling what it leased.
    let drain = |store: Arc<dyn Store>, owner: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let now = now_millis();
            let rows = store
                .redirect_lease(owner, now, now + 60_000, 7)
                .await
                .unwrap();
            if rows.is_empty() {
                break;
            }
            mine.extend(rows.iter().map(|r| r.id));
            let settled = rows
                .into_iter()
                .map(|r| (r, Settlement::Delivered))
                .collect();
            store.redirect_settle(owner, settled).await.unwrap();
        }
        mine
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(one.clone(), "a")),
        tokio::spawn(drain(two.clone(), "b"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), a.len() + b.len(), "no row leased by both");
    assert_eq!(all.len(), 199);
    assert!(one.redirect_backlog().await.unwrap().is_empty());
    let states = one
        .redirect_states((0..200).map(|i| mac(&format!("805ec0{i:06x}"))).collect())
        .await
        .unwrap();
    assert_eq!(states.len(), 200);
    assert!(states.iter().all(|s| s.state == RedirectState::Registered));
}
