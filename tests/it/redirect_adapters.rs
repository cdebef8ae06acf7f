//! The vendor redirect adapters against their stand-ins: registration in batches and again
//! (idempotent), who holds a MAC, deregistration (idempotent), listing, every fault mapped to
//! the right `Failure`, credentials refused by the stand-in's own verifier, replays refused,
//! and no credential in any failure's text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zerotouch::domain::mac::Mac;
use zerotouch::domain::vendor::Vendor;
use zerotouch::redirect::gigaset::{Gigaset, GigasetSettings};
use zerotouch::redirect::http::Secret;
use zerotouch::redirect::snom::{Snom, SnomSettings};
use zerotouch::redirect::yealink::{self, Yealink, YealinkSettings};
use zerotouch::redirect::{Device, Failure, Holder, RedirectService};

use crate::standins::{Fault, StandIn, RETRY_AFTER_SECS};

const PUBLIC: &str = "https://prov.example.com";

fn adapter(stand: &StandIn, secret: &str, timeout: Duration) -> Box<dyn RedirectService> {
    match stand.vendor {
        Vendor::Yealink => {
            let mut s = YealinkSettings::new(stand.key_id.clone(), Secret::new(secret));
            s.base_url = stand.url.clone();
            s.timeout = timeout;
            Box::new(Yealink::new(s, PUBLIC).unwrap())
        }
        Vendor::Snom => {
            let mut s = SnomSettings::new(stand.key_id.clone(), Secret::new(secret));
            s.base_url = stand.url.clone();
            s.timeout = timeout;
            Box::new(Snom::new(s, PUBLIC).unwrap())
        }
        Vendor::Gigaset => {
            let mut s = GigasetSettings::new(stand.key_id.clone(), Secret::new(secret));
            s.url = stand.url.clone();
            s.timeout = timeout;
            Box::new(Gigaset::new(s, PUBLIC).unwrap())
        }
    }
}

fn good(stand: &StandIn) -> Box<dyn RedirectService> {
    adapter(stand, &stand.secret.clone(), Duration::from_secs(5))
}

/// Device `n` of a vendor (its OUI; Gigaset devices carry a label code).
fn device(vendor: Vendor, n: u8) -> Device {
    let (oui, code) = match vendor {
        Vendor::Yealink => ("805ec0", None),
        Vendor::Snom => ("000413", None),
        Vendor::Gigaset => ("7c2f80", Some(format!("K{n:03}"))),
    };
    Device {
        mac: Mac::parse(&format!("{oui}1000{n:02x}")).unwrap(),
        claim_code: code,
    }
}

fn all_ok(results: &[Result<(), Failure>]) -> bool {
    results.iter().all(Result::is_ok)
}

/// Asserts that no credential shows in a failure's texts.
fn assert_clean(stand: &StandIn, failure: &Failure) {
    let texts = [failure.to_string(), format!("{failure:?}")];
    for t in texts {
        assert!(!t.contains(&stand.secret), "secret in failure text: {t}");
        assert!(!t.contains(&stand.key_id), "key id in failure text: {t}");
        assert!(
            !t.contains("wrong-secret"),
            "wrong secret in failure text: {t}"
        );
    }
}

async fn lifecycle(vendor: Vendor) {
    let stand = StandIn::start(vendor).await;
    let a = good(&stand);
    let ours: Vec<Device> = (1..=3).map(|n| device(vendor, n)).collect();

    // Register a batch, and again: both succeed, nothing changes the second time.
    assert!(all_ok(&a.register(&ours).await));
    let registered = stand.registered();
    assert_eq!(registered.len(), 3);
    for d in &ours {
        assert_eq!(
            registered.get(&d.mac).map(String::as_str),
            Some(a.provisioning_url())
        );
    }
    let again = a.register(&ours).await;
    assert_eq!(again.len(), 3);
    assert!(all_ok(&again), "{again:?}");
    assert_eq!(stand.registered(), registered);

    // Who holds what.
    assert_eq!(a.check(&ours[0]).await, Ok(Holder::Us));
    let stranger = device(vendor, 9);
    assert_eq!(a.check(&stranger).await, Ok(Holder::Nobody));
    let theirs = device(vendor, 10);
    stand.seed_elsewhere(theirs.mac);
    let expected = match vendor {
        Vendor::Yealink => Holder::Elsewhere,
        // SRAPS and Gigaset's service show only our own devices.
        Vendor::Snom | Vendor::Gigaset => Holder::Nobody,
    };
    assert_eq!(a.check(&theirs).await, Ok(expected));
    assert_eq!(
        a.register(std::slice::from_ref(&theirs)).await,
        vec![Err(Failure::RegisteredElsewhere)]
    );
    assert!(!stand.registered().contains_key(&theirs.mac));

    // Listing, where the API has it.
    match a.list().await.unwrap() {
        Some(listed) => {
            assert_eq!(listed.len(), 3);
            assert!(listed.iter().all(|l| l.url == a.provisioning_url()));
        }
        None => assert_eq!(vendor, Vendor::Gigaset),
    }

    // Deregister one of ours and a stranger; again: all succeed.
    let gone = [ours[0].clone(), stranger.clone()];
    assert!(all_ok(&a.deregister(&gone).await));
    assert!(!stand.registered().contains_key(&ours[0].mac));
    assert_eq!(stand.registered().len(), 2);
    assert!(all_ok(&a.deregister(&gone).await));
    assert_eq!(a.check(&ours[0]).await, Ok(Holder::Nobody));

    // The adapter delivers one request at a time.
    assert_eq!(stand.concurrent_max(), 1);
    assert_eq!(stand.refusals(), 0);
}

async fn faults(vendor: Vendor) {
    let stand = StandIn::start(vendor).await;
    let a = adapter(&stand, &stand.secret.clone(), Duration::from_millis(400));
    let d = device(vendor, 1);
    let batch = [d.clone()];

    for fault in [
        Fault::ServerError,
        Fault::Malformed,
        Fault::Down,
        Fault::Hang,
    ] {
        stand.set_fault(fault);
        let r = a.register(&batch).await;
        assert!(
            matches!(
                &r[..],
                [Err(Failure::Transient {
                    retry_after: None,
                    ..
                })]
            ),
            "{fault:?}: {r:?}"
        );
        assert_clean(&stand, r[0].as_ref().unwrap_err());
        let c = a.check(&d).await;
        assert!(
            matches!(c, Err(Failure::Transient { .. })),
            "{fault:?}: {c:?}"
        );
        assert_clean(&stand, &c.unwrap_err());
    }

    stand.set_fault(Fault::RateLimited);
    let r = a.register(&batch).await;
    assert_eq!(
        r,
        vec![Err(Failure::Transient {
            reason: "the vendor is limiting our request rate".into(),
            retry_after: Some(Duration::from_secs(RETRY_AFTER_SECS)),
        })]
    );
    assert!(matches!(
        a.deregister(&batch).await[..],
        [Err(Failure::Transient {
            retry_after: Some(_),
            ..
        })]
    ));

    // Latency below the time-out is only slower; the stand-in comes back up.
    stand.set_fault(Fault::Latency(Duration::from_millis(50)));
    assert!(all_ok(&a.register(&batch).await));
    stand.set_fault(Fault::None);
    assert_eq!(a.check(&d).await, Ok(Holder::Us));
    assert_eq!(stand.refusals(), 0);
}

async fn wrong_secret(vendor: Vendor) {
    let stand = StandIn::start(vendor).await;
    let a = adapter(&stand, "wrong-secret", Duration::from_secs(5));
    let d = device(vendor, 1);
    let r = a.register(std::slice::from_ref(&d)).await;
    assert!(matches!(&r[..], [Err(Failure::Refused { .. })]), "{r:?}");
    assert_clean(&stand, r[0].as_ref().unwrap_err());
    // A batch is refused whole, at the first call.
    let before = stand.refusals();
    let batch: Vec<Device> = (2..=4).map(|n| device(vendor, n)).collect();
    let r = a.register(&batch).await;
    assert_eq!(r.len(), 3);
    assert!(
        r.iter().all(|x| matches!(x, Err(Failure::Refused { .. }))),
        "{r:?}"
    );
    if vendor == Vendor::Yealink {
        assert_eq!(stand.refusals(), before + 1);
    }
    let c = a.check(&d).await;
    assert!(matches!(c, Err(Failure::Refused { .. })), "{c:?}");
    assert_clean(&stand, &c.unwrap_err());
    assert!(stand.refusals() >= 2);
    assert!(stand.registered().is_empty());
    // The refused requests were never taken as calls.
    assert!(stand.calls().is_empty());
}

#[tokio::test]
async fn yealink_lifecycle() {
    lifecycle(Vendor::Yealink).await;
}

#[tokio::test]
async fn snom_lifecycle() {
    lifecycle(Vendor::Snom).await;
}

#[tokio::test]
async fn gigaset_lifecycle() {
    lifecycle(Vendor::Gigaset).await;
}

#[tokio::test]
async fn yealink_faults() {
    faults(Vendor::Yealink).await;
}

#[tokio::test]
async fn snom_faults() {
    faults(Vendor::Snom).await;
}

#[tokio::test]
async fn gigaset_faults() {
    faults(Vendor::Gigaset).await;
}

#[tokio::test]
async fn yealink_wrong_secret_is_refused() {
    wrong_secret(Vendor::Yealink).await;
}

#[tokio::test]
async fn snom_wrong_secret_is_refused() {
    wrong_secret(Vendor::Snom).await;
}

#[tokio::test]
async fn gigaset_wrong_password_is_refused() {
    wrong_secret(Vendor::Gigaset).await;
}

#[tokio::test]
async fn yealink_batches_split_and_sort_out_one_refused_mac() {
    let stand = StandIn::start(Vendor::Yealink).await;
    let mut s = YealinkSettings::new(stand.key_id.clone(), Secret::new(stand.secret.clone()));
    s.base_url = stand.url.clone();
    s.batch_limit = 2;
    let a = Yealink::new(s, PUBLIC).unwrap();
    let devices: Vec<Device> = (1..=3).map(|n| device(Vendor::Yealink, n)).collect();
    assert!(all_ok(&a.register(&devices).await));
    let adds: Vec<_> = stand
        .calls()
        .into_iter()
        .filter(|c| c.op == "device/add")
        .collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[0].macs, vec![devices[0].mac, devices[1].mac]);
    assert_eq!(adds[1].macs, vec![devices[2].mac]);

    // A batch with another provider's MAC in it: the others still get through.
    let theirs = device(Vendor::Yealink, 20);
    stand.seed_elsewhere(theirs.mac);
    let mixed = [
        device(Vendor::Yealink, 21),
        theirs,
        device(Vendor::Yealink, 22),
    ];
    let r = a.register(&mixed).await;
    assert_eq!(r, vec![Ok(()), Err(Failure::RegisteredElsewhere), Ok(())]);
    assert_eq!(stand.registered().len(), 5);
}

#[tokio::test]
async fn yealink_repoints_a_device_of_ours_with_another_url() {
    let stand = StandIn::start(Vendor::Yealink).await;
    let d = device(Vendor::Yealink, 1);
    let old = {
        let mut s = YealinkSettings::new(stand.key_id.clone(), Secret::new(stand.secret.clone()));
        s.base_url = stand.url.clone();
        Yealink::new(s, "https://old.example.com").unwrap()
    };
    assert!(all_ok(&old.register(std::slice::from_ref(&d)).await));
    let a = good(&stand);
    assert!(all_ok(&a.register(std::slice::from_ref(&d)).await));
    assert_eq!(
        stand.registered().get(&d.mac).map(String::as_str),
        Some("https://prov.example.com/")
    );
}

#[tokio::test]
async fn yealink_replayed_and_stale_requests_are_refused() {
    let stand = StandIn::start(Vendor::Yealink).await;
    let client = reqwest::Client::new();
    let send = |nonce: &'static str, ts: u128| {
        let path = "/api/open/v1/device/checkMac";
        let ts = ts.to_string();
        let sts = yealink::string_to_sign(
            "GET",
            None,
            &stand.key_id,
            nonce,
            &ts,
            path,
            &[("mac", "805ec0100001")],
        );
        let sig = yealink::sign(&stand.secret, &sts);
        client
            .get(format!("{}{path}?mac=805ec0100001", stand.url))
            .header("X-Ca-Key", &stand.key_id)
            .header("X-Ca-Nonce", nonce)
            .header("X-Ca-Timestamp", ts)
            .header("X-Ca-Signature", sig)
            .send()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(send("n-1", now).await.unwrap().status(), 200);
    assert_eq!(send("n-1", now).await.unwrap().status(), 401);
    assert_eq!(
        send("n-2", now - 16 * 60 * 1000).await.unwrap().status(),
        401
    );
    assert_eq!(stand.refusals(), 2);
}

#[tokio::test]
async fn snom_replayed_and_stale_requests_are_refused() {
    let stand = StandIn::start(Vendor::Snom).await;
    let client = reqwest::Client::new();
    let url = reqwest::Url::parse(&format!("{}/companies/", stand.url)).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = |nonce: &str, ts: u64| {
        zerotouch::redirect::snom::authorization(
            &stand.key_id,
            &stand.secret,
            "GET",
            &url,
            ts,
            nonce,
            None,
        )
    };
    let fresh = header("abc123", now);
    let get = |h: String| client.get(url.clone()).header("Authorization", h).send();
    assert_eq!(get(fresh.clone()).await.unwrap().status(), 200);
    assert_eq!(get(fresh).await.unwrap().status(), 401);
    assert_eq!(
        get(header("def456", now - 120)).await.unwrap().status(),
        401
    );
    assert_eq!(stand.refusals(), 2);
}

#[tokio::test]
async fn gigaset_needs_the_right_label_code() {
    let stand = StandIn::start(Vendor::Gigaset).await;
    let a = good(&stand);
    let mut d = device(Vendor::Gigaset, 1);
    d.claim_code = None;
    let r = a.register(std::slice::from_ref(&d)).await;
    assert!(matches!(&r[..], [Err(Failure::Refused { code, .. })] if code == "claim_code_missing"));
    assert!(stand.calls().is_empty(), "nothing is sent without a code");

    stand.seed_label(d.mac, "REAL");
    d.claim_code = Some("FAKE".into());
    let r = a.register(std::slice::from_ref(&d)).await;
    assert!(
        matches!(&r[..], [Err(Failure::Refused { code, .. })] if code == "mac_not_exist"),
        "{r:?}"
    );
    d.claim_code = Some("real".into());
    assert!(all_ok(&a.register(std::slice::from_ref(&d)).await));
    assert_eq!(
        stand.calls().last().map(|c| c.op.as_str()),
        Some("autoprov.registerDevice")
    );
}

#[tokio::test]
async fn knobs_name_each_vendors_settings() {
    for vendor in [Vendor::Yealink, Vendor::Snom, Vendor::Gigaset] {
        let stand = StandIn::start(vendor).await;
        let knobs = stand.knobs();
        assert_eq!(knobs.len(), 3);
        assert!(knobs.iter().any(|(_, v)| *v == stand.url));
        assert!(knobs.iter().any(|(_, v)| *v == stand.secret));
    }
}

#[tokio::test]
async fn stand_in_sees_one_mac_delivered_concurrently() {
    // The stand-in's in-flight count is what lets the outbox's tests prove it never
    // delivers one MAC twice at once: show that it does see such overlap.
    let stand = StandIn::start(Vendor::Gigaset).await;
    let a = good(&stand);
    let d = device(Vendor::Gigaset, 1);
    stand.set_fault(Fault::Latency(Duration::from_millis(100)));
    let (x, y) = tokio::join!(a.check(&d), a.check(&d));
    assert_eq!((x, y), (Ok(Holder::Nobody), Ok(Holder::Nobody)));
    assert_eq!(stand.concurrent_max(), 2);
    assert_eq!(stand.calls().len(), 2);
}
