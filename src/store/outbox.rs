//! The redirect outbox as the store keeps it: rows asking for a phone to be registered with,
//! or removed from, its vendor's redirect service, written in the same transaction as the claim
//! or release that asks for them, and each device's redirect state as the partner sees it.
//!
//! The rules that are not SQL live here too: which rows a worker may take (the oldest row of
//! each MAC, due, not leased by a live worker), and how a delivery's outcome changes the row and
//! the state. Must not know vendors' protocols or the worker's timing.

use std::fmt;
use std::str::FromStr;

use crate::domain::{ClaimCode, Mac, Vendor};
use crate::store::{Error, Millis};

/// What a row asks of the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectAction {
    /// Point the MAC at our provisioning URL.
    Register,
    /// Remove the MAC from our account.
    Deregister,
}

impl RedirectAction {
    /// The column value and label.
    pub const fn as_str(self) -> &'static str {
        match self {
            RedirectAction::Register => "register",
            RedirectAction::Deregister => "deregister",
        }
    }
}

impl FromStr for RedirectAction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "register" => Ok(RedirectAction::Register),
            "deregister" => Ok(RedirectAction::Deregister),
            other => Err(Error::Corrupt(format!("redirect action {other:?}"))),
        }
    }
}

/// One undelivered row of the outbox, as leased to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its id: rows of one MAC are delivered in id order.
    pub id: i64,
    /// The device.
    pub mac: Mac,
    /// Whose redirect service.
    pub vendor: Vendor,
    /// What to ask.
    pub action: RedirectAction,
    /// A Gigaset's label code: its service keys devices by MAC-ID. Kept with the row and the
    /// device's redirect state while the vendor may have to be told about the device.
    pub claim_code: Option<ClaimCode>,
    /// Deliveries tried before this one.
    pub attempts: u32,
    /// When the claim or release queued it.
    pub queued_at: Millis,
}

/// Where a device stands with its vendor's redirect service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectState {
    /// Queued, not delivered yet.
    Pending,
    /// The vendor sends the phone to us.
    Registered,
    /// The vendor holds the MAC for another provider.
    RegisteredElsewhere,
    /// The last try failed: retried at `next_try_at`, or never when the vendor refused.
    Failed,
}

impl RedirectState {
    /// The column value, the API's value and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            RedirectState::Pending => "pending",
            RedirectState::Registered => "registered",
            RedirectState::RegisteredElsewhere => "registered_elsewhere",
            RedirectState::Failed => "failed",
        }
    }
}

impl fmt::Display for RedirectState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RedirectState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "pending" => Ok(RedirectState::Pending),
            "registered" => Ok(RedirectState::Registered),
            "registered_elsewhere" => Ok(RedirectState::RegisteredElsewhere),
            "failed" => Ok(RedirectState::Failed),
            other => Err(Error::Corrupt(format!("redirect state {other:?}"))),
        }
    }
}

/// A device's redirect state with its reason and next try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectStatus {
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// Where it stands.
    pub state: RedirectState,
    /// The vendor's reason for `failed` (or what went wrong reaching it).
    pub reason: Option<String>,
    /// When the next delivery is tried (`pending` and retried `failed`).
    pub next_try_at: Option<Millis>,
    /// When the state last changed.
    pub updated_at: Millis,
}

/// How delivering one leased row ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The vendor did what was asked: the row is done.
    Delivered,
    /// The vendor holds the MAC for another provider: the row is done, the device is
    /// `registered_elsewhere` until someone queues it again.
    RegisteredElsewhere,
    /// The vendor refused for a reason retrying cannot fix: the row is done, the device
    /// `failed` with this reason and no next try.
    Refused(String),
    /// Try again at `at`: the device is `failed` with this reason and that next try.
    Retry {
        /// What went wrong.
        reason: String,
        /// When to try next.
        at: Millis,
    },
}

impl Settlement {
    /// The result label of metrics and the audit log.
    pub const fn result(&self) -> &'static str {
        match self {
            Settlement::Delivered => "delivered",
            Settlement::RegisteredElsewhere => "registered_elsewhere",
            Settlement::Refused(_) => "refused",
            Settlement::Retry { .. } => "retry",
        }
    }

    /// The device's state after a register row settled so (`None` after a deregister: a
    /// released device has no state).
    pub(crate) fn state_after_register(&self) -> RedirectState {
        match self {
            Settlement::Delivered => RedirectState::Registered,
            Settlement::RegisteredElsewhere => RedirectState::RegisteredElsewhere,
            Settlement::Refused(_) | Settlement::Retry { .. } => RedirectState::Failed,
        }
    }

    /// The reason kept with the state, trimmed so a vendor's page of HTML cannot bloat a row.
    pub(crate) fn reason(&self) -> Option<String> {
        match self {
            Settlement::Refused(r) | Settlement::Retry { reason: r, .. } => Some(trimmed(r)),
            Settlement::RegisteredElsewhere => {
                Some("the phone is provisioned by another provider".to_owned())
            }
            Settlement::Delivered => None,
        }
    }

    /// When the row is tried again (`None`: it is done).
    pub(crate) fn next_try(&self) -> Option<Millis> {
        match self {
            Settlement::Retry { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// What the outbox holds for one vendor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The vendor.
    pub vendor: Vendor,
    /// Undelivered rows.
    pub rows: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<Millis>,
}

/// A row to queue outside a claim or release (`redirect sync --apply`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueue {
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// What to ask.
    pub action: RedirectAction,
}

/// Longest reason kept, in characters.
const REASON_CHARS: usize = 200;

fn trimmed(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or_default().trim();
    line.chars().take(REASON_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in [RedirectAction::Register, RedirectAction::Deregister] {
            assert_eq!(a.as_str().parse::<RedirectAction>().unwrap(), a);
        }
        for s in [
            RedirectState::Pending,
            RedirectState::Registered,
            RedirectState::RegisteredElsewhere,
            RedirectState::Failed,
        ] {
            assert_eq!(s.as_str().parse::<RedirectState>().unwrap(), s);
        }
        assert!("sent".parse::<RedirectState>().is_err());
    }

    #[test]
    fn reasons_are_one_short_line() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        let r = Settlement::Refused(long).reason().unwrap();
        assert_eq!(r.len(), REASON_CHARS);
        assert!(!r.contains('\n'));
        assert_eq!(Settlement::Delivered.reason(), None);
        let retry = Settlement::Retry {
            reason: "503".into(),
            at: 7,
        };
        assert_eq!(retry.next_try(), Some(7));
        assert_eq!(retry.state_after_register(), RedirectState::Failed);
    }
}
