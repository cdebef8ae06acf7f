//! Talking to the CA (RFC 8555, with `instant-acme`): the account (created once and kept in the
//! store), one order for the configured names proved by HTTP-01, and the certificate with a
//! fresh ECDSA P-256 key.
//!
//! Must not know when to order (`mod.rs` decides), how answers are served (`challenges`), or
//! what uses the certificate.

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use super::challenges::Challenges;
use super::stored::{self, Certificate};
use super::{Error, Settings};
use crate::store::Store;

/// How long the CA gets to validate the answers, and then to issue.
fn polling() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(std::time::Duration::from_millis(250))
        .backoff(1.5)
        .timeout(std::time::Duration::from_secs(90))
}

/// Places one order for `settings.domains` and returns the issued certificate.
pub(super) async fn order(
    settings: &Settings,
    store: &dyn Store,
    challenges: &Challenges,
) -> Result<Certificate, Error> {
    let account = load_account(settings, store, false).await?;
    match place(settings, &account, challenges).await {
        // The CA forgot the account (a reset test CA, a deactivated account): make a new one
        // and order once more.
        Err(Error::Ca(instant_acme::Error::Api(problem)))
            if problem
                .r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
        {
            tracing::warn!("the ACME CA does not know the stored account: creating a new one");
            let account = load_account(settings, store, true).await?;
            place(settings, &account, challenges).await
        }
        other => other,
    }
}

fn builder(settings: &Settings) -> Result<AccountBuilder, Error> {
    Ok(match &settings.ca_root {
        Some(root) => Account::builder_with_root(root)?,
        None => Account::builder()?,
    })
}

/// The stored account for this directory, or a new one (stored for every node).
async fn load_account(
    settings: &Settings,
    store: &dyn Store,
    fresh: bool,
) -> Result<Account, Error> {
    let current = store.stored_secret(stored::ACCOUNT).await?;
    if !fresh {
        if let Some(bytes) = &current {
            // An account made on another directory, or unreadable, is replaced.
            if let Ok(kept) = serde_json::from_slice::<stored::Account>(bytes) {
                if kept.directory == settings.directory {
                    if let Ok(credentials) =
                        serde_json::from_value::<AccountCredentials>(kept.credentials)
                    {
                        return Ok(builder(settings)?.from_credentials(credentials).await?);
                    }
                }
            }
        }
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(settings)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    let kept = stored::Account {
        directory: settings.directory.clone(),
        credentials: serde_json::to_value(&credentials).map_err(|e| Error::Stored {
            what: stored::ACCOUNT,
            reason: e.to_string(),
        })?,
    };
    let bytes = serde_json::to_vec(&kept).unwrap_or_default();
    // Only the lease holder gets here; a lost swap only means this account is not reused.
    store
        .swap_secret(stored::ACCOUNT, current.as_deref(), Some(&bytes))
        .await?;
    tracing::info!(directory = %settings.directory, "ACME account created");
    Ok(account)
}

/// One order: answer every pending authorisation's HTTP-01 challenge, wait until the CA is
/// satisfied, send a CSR for a fresh key and fetch the chain.
async fn place(
    settings: &Settings,
    account: &Account,
    challenges: &Challenges,
) -> Result<Certificate, Error> {
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut tokens = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(Error::Refused(format!(
                        "an authorisation is {status:?} before any challenge was answered"
                    )))
                }
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| Error::Refused("the CA offers no HTTP-01 challenge".to_owned()))?;
            let key_authorization = challenge.key_authorization();
            challenges
                .publish(&challenge.token, key_authorization.as_str())
                .await?;
            tokens.push(challenge.token.clone());
            challenge.set_ready().await?;
        }
        match order.poll_ready(&polling()).await? {
            OrderStatus::Ready => {}
            status => {
                return Err(Error::Refused(format!(
                    "the order is {status:?} after the challenges were answered"
                )))
            }
        }
        let key = rcgen::KeyPair::generate().map_err(|e| Error::Key(e.to_string()))?;
        let csr = rcgen::CertificateParams::new(settings.domains.clone())
            .and_then(|params| params.serialize_request(&key))
            .map_err(|e| Error::Key(e.to_string()))?;
        order.finalize_csr(csr.der()).await?;
        let chain_pem = order.poll_certificate(&polling()).await?;
        Ok(Certificate {
            directory: settings.directory.clone(),
            domains: settings.domains.clone(),
            chain_pem,
            key_pem: key.serialize_pem(),
        })
    }
    .await;
    for token in tokens {
        challenges.withdraw(&token).await;
    }
    result
}
