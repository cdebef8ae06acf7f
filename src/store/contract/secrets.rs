//! The contract of compare-and-swap on server-wide secrets: a swap applies only over the
//! expected value, and of many nodes racing from one value exactly one wins.

use super::*;

/// Swaps apply over the expected value only, seen by every node; removal too.
pub(crate) async fn secret_swap(nodes: Nodes) {
    let (one, two) = (&nodes.one, &nodes.two);
    assert_eq!(one.stored_secret("lease").await.unwrap(), None);
    assert!(
        one.swap_secret("lease", None, None).await.unwrap(),
        "absent as expected"
    );
    assert!(one.swap_secret("lease", None, Some(b"a")).await.unwrap());
    assert!(
        !two.swap_secret("lease", None, Some(b"b")).await.unwrap(),
        "already there"
    );
    assert!(!two.swap_secret("lease", None, None).await.unwrap());
    assert!(
        !two.swap_secret("lease", Some(b"x"), Some(b"b"))
            .await
            .unwrap(),
        "not x"
    );
    assert_eq!(
        two.stored_secret("lease").await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert!(two
        .swap_secret("lease", Some(b"a"), Some(b"b"))
        .await
        .unwrap());
    assert_eq!(
        one.stored_secret("lease").await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert!(
        !one.swap_secret("lease", Some(b"a"), None).await.unwrap(),
        "stale removal"
    );
    assert!(one.swap_secret("lease", Some(b"b"), None).await.unwrap());
    assert_eq!(two.stored_secret("lease").await.unwrap(), None);

    // Twenty callers on two nodes race from one value: one wins.
    assert!(one
        .swap_secret("raced-swap", None, Some(b"start"))
        .await
        .unwrap());
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .swap_secret("raced-swap", Some(b"start"), Some(&[i]))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one swap from the same value wins");
}
