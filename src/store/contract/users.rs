//! The contract of portal users and sessions: unique e-mails, one-time set-password links that
//! expire, resets scoped to the user's partner, sessions every node sees and ends, the
//! operator's administrators, and disabling a user.

use super::*;

fn link(token: &[u8], expires_at: Millis) -> PasswordLink {
    PasswordLink {
        token_hash: token.to_vec(),
        expires_at,
    }
}

/// Users are unique by e-mail; a link sets a password once, before it expires; a reset
/// replaces the link; a partner may reset only its own users; every step is audited.
pub(crate) async fn portal_users(nodes: Nodes) {
    let (one, two) = (&nodes.one, &nodes.two);
    let acme = partner(one.as_ref(), "acme").await;
    let other = partner(one.as_ref(), "other").await;
    let later = now_millis() + 3_600_000;
    let user = one
        .create_user(
            Some(acme.id),
            "ann@acme.test",
            link(b"first", later),
            &Actor::cli(),
        )
        .await
        .unwrap()
        .expect("created");
    assert_eq!(user.partner, Some(acme.id));
    assert_eq!(user.password_hash, None);
    assert!(one
        .create_user(
            Some(other.id),
            "ann@acme.test",
            link(b"dup", later),
            &Actor::cli()
        )
        .await
        .unwrap()
        .is_none());
    assert!(one
        .create_user(
            Some(9999),
            "bob@acme.test",
            link(b"nobody", later),
            &Actor::cli()
        )
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        two.user_by_email("ann@acme.test").await.unwrap().as_ref(),
        Some(&user)
    );
    assert_eq!(two.user(user.id).await.unwrap().as_ref(), Some(&user));
    assert_eq!(two.users(Some(acme.id)).await.unwrap(), vec![user.clone()]);
    assert_eq!(two.users(None).await.unwrap(), vec![user.clone()]);
    assert!(two.users(Some(other.id)).await.unwrap().is_empty());

    // Another partner may not reset Ann; her own partner and the operator may.
    assert!(!two
        .issue_password_link(user.id, link(b"evil", later), &partner_actor(&other))
        .await
        .unwrap());
    assert!(two
        .issue_password_link(user.id, link(b"second", later), &partner_actor(&acme))
        .await
        .unwrap());
    let now = now_millis();
    assert!(
        one.set_password(b"first", "hash-1", now, None)
            .await
            .unwrap()
            .is_none(),
        "replaced by the reset"
    );
    let set = one
        .set_password(b"second", "hash-2", now, Some(source()))
        .await
        .unwrap()
        .expect("valid link");
    assert_eq!(set.password_hash.as_deref(), Some("hash-2"));
    assert!(
        two.set_password(b"second", "hash-3", now, None)
            .await
            .unwrap()
            .is_none(),
        "used once"
    );
    assert!(two
        .issue_password_link(user.id, link(b"old", now - 1), &Actor::cli())
        .await
        .unwrap());
    assert!(
        one.set_password(b"old", "hash-4", now, None)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(one.set_user_language(user.id, "fr").await.unwrap());
    assert!(!one.set_user_language(9999, "fr").await.unwrap());
    let stored = two.user(user.id).await.unwrap().expect("stored");
    assert_eq!(stored.language.as_deref(), Some("fr"));
    assert_eq!(stored.password_hash.as_deref(), Some("hash-2"));

    let actions: Vec<(String, String)> = one
        .audit_log(all_audit())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("user."))
        .map(|e| (e.action, e.actor))
        .collect();
    let ann = format!("user:{}:ann@acme.test", user.id);
    assert_eq!(
        actions,
        vec![
            ("user.create".to_owned(), "cli".to_owned()),
            ("user.password.link".to_owned(), partner_actor(&acme).name),
            ("user.password.set".to_owned(), ann),
            ("user.password.link".to_owned(), "cli".to_owned()),
        ]
    );
    let acmes: Vec<String> = two
        .audit_log(AuditQuery {
            partner: Some(acme.id),
            ..all_audit()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        acmes,
        vec!["user.password.link", "user.password.set"],
        "the partner's own callers' entries only"
    );
}

/// A session stored on one node is found on the other, touched, ended; creating a session
/// removes expired ones; setting a password ends the user's sessions.
pub(crate) async fn portal_sessions(nodes: Nodes) {
    let (one, two) = (&nodes.one, &nodes.two);
    let acme = partner(one.as_ref(), "acme").await;
    let later = now_millis() + 3_600_000;
    let user = one
        .create_user(
            Some(acme.id),
            "ann@acme.test",
            link(b"t", later),
            &Actor::cli(),
        )
        .await
        .unwrap()
        .expect("created");
    let session = |id: &[u8], at: Millis| SessionRecord {
        id_hash: id.to_vec(),
        user: user.id,
        csrf: "csrf".into(),
        created_at: at,
        last_seen: at,
    };
    let now = now_millis();
    one.create_session(session(b"stale", now - 10_000), 0, 0)
        .await
        .unwrap();
    one.create_session(session(b"fresh", now), now - 5_000, 0)
        .await
        .unwrap();
    assert_eq!(
        two.session(b"stale").await.unwrap(),
        None,
        "expired, removed"
    );
    assert_eq!(
        two.session(b"fresh").await.unwrap(),
        Some(session(b"fresh", now))
    );
    two.touch_session(b"fresh", now + 1_000).await.unwrap();
    two.touch_session(b"fresh", now + 500).await.unwrap();
    assert_eq!(
        one.session(b"fresh").await.unwrap().map(|s| s.last_seen),
        Some(now + 1_000),
        "never goes back"
    );
    two.delete_session(b"fresh").await.unwrap();
    assert_eq!(one.session(b"fresh").await.unwrap(), None);

    one.create_session(session(b"again", now), 0, 0)
        .await
        .unwrap();
    one.set_password(b"t", "hash", now, None)
        .await
        .unwrap()
        .expect("valid link");
    assert_eq!(
        two.session(b"again").await.unwrap(),
        None,
        "a new password ends every session"
    );
}

/// An administrator is a user without a partner, listed with everyone, whom no partner may
/// reset or disable; disabling (by the operator or a colleague of the same partner) ends the
/// user's sessions at once, enabling lets it back, another partner reaches nothing, and both
/// are audited with the person who did it.
pub(crate) async fn admin_users_and_disabling(nodes: Nodes) {
    let (one, two) = (&nodes.one, &nodes.two);
    let acme = partner(one.as_ref(), "acme").await;
    let other = partner(one.as_ref(), "other").await;
    let later = now_millis() + 3_600_000;
    let root = one
        .create_user(None, "root@op.test", link(b"root", later), &Actor::cli())
        .await
        .unwrap()
        .expect("created");
    assert_eq!(root.partner, None);
    assert!(
        one.create_user(None, "root@op.test", link(b"dup", later), &Actor::cli())
            .await
            .unwrap()
            .is_none(),
        "e-mails are unique across administrators and partners' users"
    );
    let ann = one
        .create_user(
            Some(acme.id),
            "ann@acme.test",
            link(b"ann", later),
            &Actor::cli(),
        )
        .await
        .unwrap()
        .expect("created");
    let bob = one
        .create_user(
            Some(acme.id),
            "bob@acme.test",
            link(b"bob", later),
            &Actor::cli(),
        )
        .await
        .unwrap()
        .expect("created");
    assert_eq!(
        two.users(None).await.unwrap(),
        vec![root.clone(), ann.clone(), bob.clone()]
    );
    assert_eq!(
        two.users(Some(acme.id)).await.unwrap(),
        vec![ann.clone(), bob.clone()]
    );
    assert_eq!(
        two.user_by_email("root@op.test").await.unwrap(),
        Some(root.clone())
    );

    // No partner reaches the administrator, nor another partner's users.
    let acme_actor = rules::user_actor(&ann, None);
    assert!(!two
        .issue_password_link(root.id, link(b"evil", later), &acme_actor)
        .await
        .unwrap());
    assert_eq!(
        two.set_user_disabled(root.id, true, &acme_actor)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        two.set_user_disabled(bob.id, true, &partner_actor(&other))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        two.set_user_disabled(9999, true, &Actor::cli())
            .await
            .unwrap(),
        None
    );

    // Ann disables her colleague Bob: his sessions end at once, on every node.
    let now = now_millis();
    one.create_session(
        SessionRecord {
            id_hash: b"bob-session".to_vec(),
            user: bob.id,
            csrf: "csrf".into(),
            created_at: now,
            last_seen: now,
        },
        0,
        0,
    )
    .await
    .unwrap();
    let disabled = two
        .set_user_disabled(bob.id, true, &acme_actor)
        .await
        .unwrap()
        .expect("in reach");
    assert!(disabled.disabled);
    assert_eq!(one.session(b"bob-session").await.unwrap(), None);
    assert!(one.user(bob.id).await.unwrap().expect("stored").disabled);
    let admin_actor = rules::user_actor(&root, Some(source()));
    assert_eq!(admin_actor.partner, None);
    let enabled = one
        .set_user_disabled(bob.id, false, &admin_actor)
        .await
        .unwrap()
        .expect("the operator reaches everyone");
    assert!(!enabled.disabled);
    assert!(!two.user(bob.id).await.unwrap().expect("stored").disabled);

    let entries: Vec<(String, String, Option<String>)> = one
        .audit_log(AuditQuery {
            action: None,
            ..all_audit()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "user.disable" || e.action == "user.enable")
        .map(|e| (e.action, e.actor, e.detail))
        .collect();
    let detail = Some(serde_json::json!({"user": bob.id, "email": "bob@acme.test"}).to_string());
    assert_eq!(
        entries,
        vec![
            (
                "user.disable".to_owned(),
                format!("user:{}:ann@acme.test", ann.id),
                detail.clone()
            ),
            (
                "user.enable".to_owned(),
                format!("user:{}:root@op.test", root.id),
                detail
            ),
        ]
    );
}
