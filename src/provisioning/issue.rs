//! Issuing provisioning credentials: the rare answer that hands a phone new credentials (its
//! enrolment, a rotation, a re-issue). Their HA1 is committed before the phone gets them — in
//! groups, one transaction for a burst of phones enrolling at once — so a crash or another node
//! can never leave a phone with credentials nobody knows.
//!
//! Knows what to commit and when to answer; where it is committed is the writer's business.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::domain::credentials::{issue_credentials, CredentialChange};
use crate::domain::Mac;
use crate::registry::{Device, Tenant};
use crate::vendors::{FileKind, Template};

use super::ledger::{Ledger, LedgerError};
use super::render;
use super::{Answer, Outcome, Provisioner};

/// Why credentials are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issuance {
    /// First fetch inside the enrolment window.
    Enrol,
    /// A rotation was requested; the phone authenticated with its current credentials.
    Rotate,
    /// The phone authenticated with its previous credentials: it never got (or lost) the
    /// current ones; hand it new ones, keeping the previous valid.
    Reissue,
}

impl Issuance {
    /// Metric label and log field.
    pub fn label(self) -> &'static str {
        match self {
            Issuance::Enrol => "enrol",
            Issuance::Rotate => "rotate",
            Issuance::Reissue => "reissue",
        }
    }
}

/// Everything needed to finish a request whose answer hands out credentials.
pub struct Ticket {
    pub(super) issuance: Issuance,
    pub(super) mac: Mac,
    pub(super) device: Arc<Device>,
    pub(super) tenant: Arc<Tenant>,
    pub(super) template: Template,
    pub(super) file: FileKind,
    pub(super) model: Option<String>,
    pub(super) firmware: Option<String>,
    pub(super) user_agent: String,
    pub(super) provisioning_url: String,
    pub(super) source: IpAddr,
    pub(super) started: Instant,
}

/// Where credential changes made by phones' fetches go.
pub struct CredentialSink {
    /// Issued credentials, committed (in groups) before a phone gets them.
    pub issue: mpsc::Sender<IssueJob>,
    /// Confirmations (the phone used its current credentials) and compromises (it presented
    /// retired ones), applied off the hot path.
    pub settle: mpsc::Sender<(Mac, CredentialChange, IpAddr)>,
}

/// One credential change waiting for its commit.
pub struct IssueJob {
    mac: Mac,
    change: CredentialChange,
    source: IpAddr,
    reply: tokio::sync::oneshot::Sender<Result<bool, LedgerError>>,
}

/// Commits issued credentials in groups — one transaction for a burst of phones enrolling at
/// once — then lets each waiting request answer. Runs until every sender is gone.
pub async fn commit_credentials(ledger: Arc<dyn Ledger>, mut jobs: mpsc::Receiver<IssueJob>) {
    const GROUP: usize = 256;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let changes = group
            .iter()
            .map(|j| (j.mac, j.change.clone(), Some(j.source)))
            .collect();
        match ledger.change_credentials(changes).await {
            Ok(applied) => {
                for (job, applied) in group.into_iter().zip(applied) {
                    let _ = job.reply.send(Ok(applied));
                }
            }
            Err(e) => {
                for job in group {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Applies confirmations and compromises queued by phones' fetches, in groups (one
/// transaction for a burst of phones binding at once), until the queue closes. Each is
/// idempotent: a lost confirmation is asked for again by the next fetch, a lost compromise by
/// the next use of the retired credentials.
pub async fn settle_credentials(
    ledger: Arc<dyn Ledger>,
    mut queue: mpsc::Receiver<(Mac, CredentialChange, IpAddr)>,
) {
    const GROUP: usize = 256;
    while let Some(first) = queue.recv().await {
        let mut group = vec![(first.0, first.1, Some(first.2))];
        while group.len() < GROUP {
            match queue.try_recv() {
                Ok((mac, change, source)) => group.push((mac, change, Some(source))),
                Err(_) => break,
            }
        }
        let count = group.len();
        if let Err(e) = ledger.change_credentials(group).await {
            tracing::warn!(changes = count, error = %e, "cannot record phone credential changes");
        }
    }
}

impl Provisioner {
    /// Finishes a request that hands out credentials: generates them, commits their HA1 to
    /// the store, updates the registry, then renders the config that carries them.
    pub async fn issue(&self, ticket: Ticket) -> Answer {
        let answer = self.issue_inner(&ticket).await;
        self.record(
            ticket.source,
            Some(ticket.device.vendor),
            Some(ticket.file),
            Some(ticket.mac),
            answer.outcome,
            ticket.started,
        );
        if answer.outcome == Outcome::Enrolled {
            self.record_sighting(
                ticket.source,
                &ticket.user_agent,
                ticket.model.as_deref(),
                ticket.firmware.as_deref(),
                ticket.file,
                ticket.mac,
                answer.outcome,
            );
        }
        answer
    }

    /// Asks the credential writer to record `change` (a confirmation or a compromise); best
    /// effort: if the queue is full, the next such fetch asks again.
    pub(super) fn settle(&self, mac: Mac, change: CredentialChange, source: IpAddr) {
        if let Some(sink) = &self.credentials {
            let _ = sink.settle.try_send((mac, change, source));
        }
    }

    async fn issue_inner(&self, t: &Ticket) -> Answer {
        let render = |credentials: render::Credentials<'_>| {
            self.renderer().render(
                t.device.vendor,
                t.template,
                &render::Input {
                    phone: render::Phone {
                        mac: t.mac,
                        model: t.model.as_deref(),
                        firmware: t.firmware.as_deref(),
                    },
                    tenant: &t.tenant.name,
                    settings: &t.tenant.settings,
                    device: t.device.settings.as_deref(),
                    provisioning_url: &t.provisioning_url,
                    credentials: Some(credentials),
                },
            )
        };
        let content_type = t.template.content_type();
        let Some(sink) = &self.credentials else {
            // A dry run (`zerotouch render`): show where the credentials go, bind nothing.
            let placeholder = render::Credentials {
                username: "<issued-at-first-fetch>",
                password: "<issued-at-first-fetch>",
            };
            return match render(placeholder) {
                Ok(body) => Answer::config(Outcome::Served, content_type, body),
                Err(_) => Answer::refusal(Outcome::RenderFailed),
            };
        };
        let issued = match issue_credentials(t.mac) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot generate phone credentials");
                return Answer::refusal(Outcome::Unavailable);
            }
        };
        let change = match t.issuance {
            Issuance::Enrol => CredentialChange::Enrol {
                ha1: issued.ha1.clone(),
                user_agent: t.user_agent.clone(),
            },
            Issuance::Rotate => CredentialChange::Rotate(issued.ha1.clone()),
            Issuance::Reissue => CredentialChange::Reissue(issued.ha1.clone()),
        };
        let (reply, committed) = tokio::sync::oneshot::channel();
        let job = IssueJob {
            mac: t.mac,
            change,
            source: t.source,
            reply,
        };
        let stopped = || LedgerError("credential writer stopped".into());
        let result = match sink.issue.send(job).await {
            Ok(()) => committed.await.unwrap_or_else(|_| Err(stopped())),
            Err(_) => Err(stopped()),
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                // Another fetch (on this or another node) bound or rotated it first, or the
                // window closed meanwhile: this client gets what an unbound device gets.
                return Answer::refusal(Outcome::NotEnrolled);
            }
            Err(e) => {
                tracing::warn!(mac = %t.mac, error = %e, "cannot store phone credentials");
                let mut a = Answer::refusal(Outcome::Unavailable);
                a.retry_after = Some(30);
                return a;
            }
        }
        self.metrics
            .enrolments
            .with_label_values(&[t.issuance.label()])
            .inc();
        tracing::info!(target: "zerotouch::phone", mac = %t.mac, kind = t.issuance.label(), "phone credentials issued");
        match render(render::Credentials {
            username: &issued.username,
            password: &issued.password,
        }) {
            Ok(body) => Answer::config(Outcome::Enrolled, content_type, body),
            Err(e) => {
                tracing::error!(mac = %t.mac, error = %e, "cannot render config");
                Answer::refusal(Outcome::RenderFailed)
            }
        }
    }
}
