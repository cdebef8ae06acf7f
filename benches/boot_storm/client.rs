//! The simulated phones: what the client knows about the server and how to behave, and how
//! one phone fetches a file (answering a Digest challenge when asked), boots (its whole
//! sequence, every response checked) and enrols (its per-device file, once, keeping the
//! credentials the config hands it).
//!
//! Must not know how phones are scheduled or figures reported beyond counting into `Stats`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::credentials::{credentials_in, Credential};
use crate::digest::{digest_authorization, NonceUse};
use crate::fleet::{mix, Device, Fleet, Step, Vendor};
use crate::http::{self, find, Tls};
use crate::options::{PhoneAuth, Sequence};
use crate::report::{micros, Stats};

/// What the client knows about the server and how to behave.
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) host: String,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) keepalive: bool,
    pub(crate) resume: bool,
    pub(crate) timeout: Duration,
    pub(crate) fleet: Fleet,
    pub(crate) phones: usize,
    pub(crate) sequence: Sequence,
    pub(crate) errors: Mutex<ErrorLog>,
    pub(crate) auth: PhoneAuth,
    pub(crate) preemptive: bool,
    /// Per phone (storm index): the provisioning credentials it holds (Gigaset: its MAC-ID
    /// from the start; Yealink and Snom: once enrolled or read back from credentials.tsv).
    pub(crate) credentials: Vec<OnceLock<Credential>>,
    /// Makes client nonces differ.
    pub(crate) cnonces: AtomicU64,
}

/// The errors of a storm: how many, and the first distinct messages with their counts.
#[derive(Default)]
pub(crate) struct ErrorLog {
    pub(crate) count: u64,
    pub(crate) distinct: Vec<(String, u64)>,
}

impl ErrorLog {
    /// Counts one error.
    pub(crate) fn record(&mut self, message: String) {
        self.count += 1;
        if let Some(e) = self.distinct.iter_mut().find(|(m, _)| *m == message) {
            e.1 += 1;
        } else if self.distinct.len() < 64 {
            self.distinct.push((message, 1));
        }
    }
}

/// Why a file of a boot did not come out as expected.
pub(crate) struct FetchError {
    pub(crate) message: String,
    /// A 401 for a device the phone holds no credentials for (a bound device, its
    /// credentials lost).
    pub(crate) unanswerable: bool,
}

impl FetchError {
    /// A failure that credentials would not have avoided.
    pub(crate) fn new(message: String) -> Self {
        Self {
            message,
            unanswerable: false,
        }
    }
}

/// One phone as the client plays it.
struct Phone<'a> {
    /// Its device.
    device: Device,
    /// The User-Agent it sends.
    ua: String,
    /// What every config it gets must name: its tenant.
    marker: String,
    /// The provisioning credentials it holds.
    credential: Option<&'a Credential>,
    /// Its TLS configuration (its own session store with `--resume`).
    tls: Arc<ClientConfig>,
}

/// Whether `body` names `tenant` (`tenant: t5`, not `tenant: t50`).
pub(crate) fn names_tenant(body: &[u8], marker: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find(&body[from..], marker) {
        let end = from + i + marker.len();
        match body.get(end) {
            Some(c) if c.is_ascii_alphanumeric() || *c == b'-' => from = end,
            _ => return true,
        }
    }
    false
}

impl Client {
    /// A new TLS connection to the server.
    pub(crate) async fn connect(&self, config: &Arc<ClientConfig>) -> Result<Tls, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }

    /// The TLS configuration for one phone: with --resume each phone keeps its own session
    /// store, so it resumes only its own earlier sessions (a phone after a power cut has none
    /// from before).
    pub(crate) fn phone_tls(&self) -> Arc<ClientConfig> {
        if self.resume {
            let mut c = (*self.tls).clone();
            c.resumption = Resumption::in_memory_sessions(4);
            Arc::new(c)
        } else {
            self.tls.clone()
        }
    }

    /// Fetches one file of a boot like a phone: one request, or with phone authentication
    /// also the answer to the server's Digest challenge (on the same connection when the
    /// server keeps it open). Checks the final status and, for a config, the tenant's name.
    /// `Ok(Some(body))` for a 200 (the body's place in `buf`).
    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &self,
        phone: &Phone<'_>,
        step: &Step,
        conn: &mut Option<Tls>,
        nonce: &mut Option<NonceUse>,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) -> Result<Option<std::ops::Range<usize>>, FetchError> {
        let (ua, marker, credential, tls) =
            (&phone.ua, &phone.marker, phone.credential, &phone.tls);
        let authenticate = self.auth == PhoneAuth::Enrolment && step.status == 200;
        let mut authorization = None;
        if authenticate && self.preemptive {
            if let (Some(n), Some(c)) = (nonce.as_mut(), credential) {
                n.nc += 1;
                authorization = Some(digest_authorization(
                    c,
                    &n.challenge,
                    &step.path,
                    n.nc,
                    &self.cnonce(),
                ));
            }
        }
        let started = Instant::now();
        let mut exchanges = 0;
        let result = loop {
            exchanges += 1;
            // Without keep-alive the connection stays open only for the answer to a challenge.
            let keep_open =
                self.keepalive || (authenticate && authorization.is_none() && credential.is_some());
            request.clear();
            request.extend_from_slice(b"GET ");
            request.extend_from_slice(step.path.as_bytes());
            request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
            request.extend_from_slice(self.host.as_bytes());
            request.extend_from_slice(b"\r\nUser-Agent: ");
            request.extend_from_slice(ua.as_bytes());
            request.extend_from_slice(b"\r\nAccept: */*\r\n");
            if let Some(a) = &authorization {
                request.extend_from_slice(b"Authorization: ");
                request.extend_from_slice(a.as_bytes());
                request.extend_from_slice(b"\r\n");
            }
            if !keep_open {
                request.extend_from_slice(b"Connection: close\r\n");
            }
            request.extend_from_slice(b"\r\n");

            let sent = Instant::now();
            let outcome = tokio::time::timeout(self.timeout, async {
                let mut stream = match conn.take() {
                    Some(s) => s,
                    None => {
                        stats.connections += 1;
                        self.connect(tls).await?
                    }
                };
                let response = http::exchange(&mut stream, request, buf).await?;
                Ok::<_, String>((stream, response))
            })
            .await;
            stats.requests += 1;
            stats.latencies.push(micros(sent.elapsed()));
            let (stream, response) = match outcome {
                Err(_) => {
                    break Err(FetchError::new(format!(
                        "{}: timed out after {:?}",
                        step.what, self.timeout
                    )))
                }
                Ok(Err(e)) => break Err(FetchError::new(format!("{}: {e}", step.what))),
                Ok(Ok(r)) => r,
            };
            let reusable = keep_open && !response.close;
            if response.status == 429 {
                stats.throttled += 1;
            }
            if response.status == 401 && authenticate {
                stats.challenges += 1;
                let Some(challenge) = response.challenge else {
                    break Err(FetchError::new(format!(
                        "{}: 401 without a Digest MD5 qop=auth challenge",
                        step.what
                    )));
                };
                let Some(credential) = credential else {
                    break Err(FetchError {
                        message: format!(
                            "{}: 401 (the device is bound), but the phone holds no provisioning credentials",
                            step.what
                        ),
                        unanswerable: true,
                    });
                };
                // Answer a first challenge, or a later one that says our nonce went stale.
                if !(authorization.is_none() || challenge.stale) || exchanges >= 3 {
                    break Err(FetchError::new(format!(
                        "{}: 401 again after a Digest answer",
                        step.what
                    )));
                }
                authorization = Some(digest_authorization(
                    credential,
                    &challenge,
                    &step.path,
                    1,
                    &self.cnonce(),
                ));
                *nonce = Some(NonceUse { challenge, nc: 1 });
                if reusable {
                    *conn = Some(stream);
                } else {
                    stats.reconnects += 1;
                }
                continue;
            }
            let result = if response.status != step.status {
                Err(FetchError::new(format!(
                    "{}: status {}, expected {}",
                    step.what, response.status, step.status
                )))
            } else if step.status == 200 {
                if names_tenant(&buf[response.body.clone()], marker.as_bytes()) {
                    Ok(Some(response.body))
                } else {
                    Err(FetchError::new(format!(
                        "{}: the body does not name the phone's tenant",
                        step.what
                    )))
                }
            } else {
                Ok(None)
            };
            if self.keepalive && reusable {
                *conn = Some(stream);
            }
            break result;
        };
        stats.fetches += 1;
        stats.fetch_latencies.push(micros(started.elapsed()));
        result
    }

    /// A fresh client nonce.
    pub(crate) fn cnonce(&self) -> String {
        format!(
            "{:016x}",
            mix(self.cnonces.fetch_add(1, Ordering::Relaxed) ^ 0x5a5a_5a5a)
        )
    }

    /// Counts one failed fetch.
    pub(crate) fn record(&self, error: &FetchError) {
        if let Ok(mut log) = self.errors.lock() {
            log.record(error.message.clone());
        }
    }

    /// Phone `phone` of the storm, as this client plays it.
    fn phone(&self, phone: usize) -> Phone<'_> {
        let device = self.fleet.phone(phone, self.phones);
        Phone {
            ua: device.user_agent(),
            marker: format!("tenant: t{}", device.tenant),
            credential: self.credentials.get(phone).and_then(OnceLock::get),
            tls: self.phone_tls(),
            device,
        }
    }

    /// One phone's boot: its whole sequence, each response checked.
    pub(crate) async fn boot(
        &self,
        phone: usize,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) {
        let phone = self.phone(phone);
        let started = Instant::now();
        let mut failed = false;
        let mut conn: Option<Tls> = None;
        // A phone after a power cut holds no nonce; it keeps the one of its first challenge.
        let mut nonce = None;
        for step in phone.device.requests(self.sequence) {
            let fetched = self
                .fetch(&phone, &step, &mut conn, &mut nonce, stats, buf, request)
                .await;
            if let Err(e) = fetched {
                failed = true;
                stats.unanswerable += u64::from(e.unanswerable);
                self.record(&e);
            }
        }
        stats.boots.push(micros(started.elapsed()));
        stats.vendors[phone.device.vendor.index()] += 1;
        if failed {
            stats.failed_phones += 1;
        }
    }

    /// The enrolment pass for one phone: its per-device file, once. A Yealink or Snom phone
    /// is bound by it and keeps the credentials the config carries; a Gigaset phone answers
    /// the challenge with its MAC-ID.
    pub(crate) async fn enrol(
        &self,
        phone: usize,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) -> Option<Credential> {
        let phone = self.phone(phone);
        let device = phone.device;
        let started = Instant::now();
        let step = device.requests(Sequence::Device).remove(0);
        let fetched = self
            .fetch(&phone, &step, &mut None, &mut None, stats, buf, request)
            .await;
        stats.boots.push(micros(started.elapsed()));
        stats.vendors[device.vendor.index()] += 1;
        let issued = match fetched {
            Ok(Some(body)) if device.vendor != Vendor::Gigaset => {
                match credentials_in(device.vendor, &buf[body]) {
                    Some(c) => Ok(Some(c)),
                    None => Err(FetchError::new(format!(
                        "{}: the enrolment config carries no provisioning credentials",
                        step.what
                    ))),
                }
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        match issued {
            Ok(c) => c,
            Err(e) => {
                stats.failed_phones += 1;
                stats.unanswerable += u64::from(e.unanswerable);
                self.record(&e);
                None
            }
        }
    }
}
