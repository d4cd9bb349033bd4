//! The notifier at work: subscriptions, intake, digests, delivery.
//!
//! ```text
//!  sink / crawler ──publish──▶ bounded channel ──intake──▶ outbox (SQLite) ──delivery──▶ SMTP / HTTP
//!                                                 │ digest items ──every interval──▶ one digest message
//!  confirm / unsubscribe links ◀── HTTP endpoint ─┘
//! ```
//!
//! * **Intake** matches each event against every subscription (watch, then filter policy) and
//!   queues it, in one transaction, for each *confirmed* endpoint: as a message when the
//!   subscription has no digest, else as a digest item.
//! * **Digests**: every `digestIntervalSeconds` an endpoint's digest items become one message
//!   (at most `digestMaxEvents` events; the rest go in the next one).
//! * **Delivery** sends due messages, `deliveryConcurrency` at a time, each endpoint within
//!   its rate limit; a failure schedules a retry with backoff ([`crate::backoff`]) or, past the
//!   protocol's attempt or age limit, dead-letters the message with its last error.
//! * Email endpoints start `PendingConfirmation` and receive a confirmation email; only a
//!   click on its link (before it expires) lets messages through — SNS's double opt-in.
//!   Webhook, Slack and Discord endpoints are confirmed by being in the manifest (they are
//!   configured by the cluster's operators, and webhooks can verify the signature).
//! * **Replay**: events re-derived from the sinks' claims (what a crash lost on the way here)
//!   come in through a [`Replayer`], which writes them to the outbox together with the
//!   stream's mark; see [`crate::outbox`] and the runner's `cli/src/landed.rs`.

use crate::backoff::{Next, RetryPolicy, TokenBucket};
use crate::config::NotifierConfig;
use crate::email::{Mailer, SendError};
use crate::event::{Event, SchemaChange, schema_changed, stable_id};
use crate::filter::{FilterPolicy, PolicyError};
use crate::http::{self, TargetPolicy};
use crate::outbox::{
    CONFIRMED, EndpointRow, Enqueued, KIND_CONFIRMATION, KIND_EVENT, MessageRow, NewItem, Outbox, OutboxError,
    PENDING_CONFIRMATION, ReplayMark, UNSUBSCRIBED,
};
use crate::render;
use crate::server::Confirm;
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticklake_api::crd::{AlertSubscriptionSpec, Protocol};
use tokio::sync::{Notify, mpsc, watch};

/// Events waiting for intake at most (publishers wait when it is full).
pub const CHANNEL_CAPACITY: usize = 1024;
/// Events taken from the channel per intake transaction at most.
const INTAKE_BATCH: usize = 256;
/// Finished messages are forgotten after this long (their ids stay in the delivery log).
const KEEP_DONE_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier configuration: {0}")]
    Config(String),
    #[error("subscription {subscription}: {detail}")]
    Subscription { subscription: String, detail: String },
    #[error("subscription {0}: {1}")]
    Policy(String, PolicyError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("binding the notifier's HTTP endpoint {0}: {1}")]
    Bind(SocketAddr, String),
    #[error("the notifier has stopped; event not accepted")]
    Stopped,
}

/// A secret; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One endpoint of a subscription.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub protocol: Protocol,
    pub address: String,
    /// HMAC key of `webhook`/`https` endpoints.
    pub signing_secret: Option<Secret>,
}

/// Which events a subscription watches (before its filter policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Only objects written by this `S3Sink`.
    pub sink: Option<String>,
    /// Objects in this bucket (resolved from the sink for `sinkRef`).
    pub bucket: String,
    /// Keys start with this (the sink's prefix, then the watch prefix).
    pub key_prefix: String,
    pub suffix: String,
}

/// A subscription, resolved for the notifier.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub watch: Watch,
    pub filter: Option<FilterPolicy>,
    /// 0: one message per event.
    pub digest_interval_ms: u64,
    pub rate_limit_per_minute: Option<u32>,
    pub endpoints: Vec<Endpoint>,
}

/// The environment variable the local runner reads a Secret key from:
/// `TICKLAKE_SECRET_<NAME>_<KEY>`, upper case, other characters as `_`.
pub fn secret_env_name(name: &str, key: &str) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect::<String>()
    };
    format!("TICKLAKE_SECRET_{}_{}", clean(name), clean(key))
}

impl Subscription {
    /// Resolves an `AlertSubscription`: `sink` gives a sink's (bucket, prefix) by name; `env`
    /// reads secrets (see [`secret_env_name`]).
    pub fn from_spec(
        name: &str,
        spec: &AlertSubscriptionSpec,
        sink: &dyn Fn(&str) -> Option<(String, String)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Subscription, NotifyError> {
        let fail = |detail: String| NotifyError::Subscription { subscription: name.to_string(), detail };
        let watch = match (&spec.watch.sink_ref, &spec.watch.bucket) {
            (Some(s), None) => {
                let (bucket, prefix) =
                    sink(s).ok_or_else(|| fail(format!("watch.sinkRef {s:?} names no S3Sink in the manifests")))?;
                let prefix = prefix.trim_matches('/');
                let key_prefix = if prefix.is_empty() {
                    spec.watch.prefix.clone()
                } else {
                    format!("{prefix}/{}", spec.watch.prefix)
                };
                Watch { sink: Some(s.clone()), bucket, key_prefix, suffix: spec.watch.suffix.clone() }
            }
            (None, Some(b)) => Watch {
                sink: None,
                bucket: b.clone(),
                key_prefix: spec.watch.prefix.clone(),
                suffix: spec.watch.suffix.clone(),
            },
            _ => return Err(fail("exactly one of watch.sinkRef or watch.bucket must be set".into())),
        };
        let filter = match &spec.filter_policy {
            Some(p) => Some(FilterPolicy::parse(p).map_err(|e| NotifyError::Policy(name.to_string(), e))?),
            None => None,
        };
        let mut endpoints = Vec::new();
        for e in &spec.endpoints {
            let signing_secret = match &e.signing_secret_ref {
                Some(r) => {
                    let var = secret_env_name(&r.name, &r.key);
                    let v = env(&var).ok_or_else(|| {
                        fail(format!(
                            "endpoint {}: signingSecretRef {}/{} is read from {var}, which is not set",
                            redact(e.protocol, &e.address),
                            r.name,
                            r.key
                        ))
                    })?;
                    Some(Secret(v.into_bytes()))
                }
                None => None,
            };
            endpoints.push(Endpoint { protocol: e.protocol, address: e.address.clone(), signing_secret });
        }
        Ok(Subscription {
            name: name.to_string(),
            watch,
            filter,
            digest_interval_ms: spec.digest_interval_seconds as u64 * 1000,
            rate_limit_per_minute: spec.rate_limit_per_minute,
            endpoints,
        })
    }

    /// Whether the subscription wants `e`: its watch, then its filter policy.
    pub fn wants(&self, e: &Event) -> bool {
        let watched = match e.records.first() {
            Some(r) => {
                self.watch.sink.as_ref().is_none_or(|s| *s == r.ticklake.sink)
                    && r.s3.bucket.name == self.watch.bucket
                    && r.s3.object.key.starts_with(&self.watch.key_prefix)
                    && r.s3.object.key.ends_with(&self.watch.suffix)
            }
            None => match &e.schema {
                Some(s) => s.location.starts_with(&format!("s3://{}/{}", self.watch.bucket, self.watch.key_prefix)),
                None => false,
            },
        };
        watched && self.filter.as_ref().is_none_or(|f| f.matches(&e.attributes))
    }
}

/// An address fit for logs: Slack and Discord webhook URLs are secrets (only scheme and host
/// are shown); other URLs lose their query string.
pub fn redact(protocol: Protocol, address: &str) -> String {
    let host_only = |a: &str| -> String {
        let after = a.find("://").map(|i| i + 3).unwrap_or(0);
        let end = a[after..].find('/').map(|i| after + i).unwrap_or(a.len());
        format!("{}/…", &a[..end])
    };
    match protocol {
        Protocol::Slack | Protocol::Discord => host_only(address),
        Protocol::Webhook | Protocol::Https => match address.split_once('?') {
            Some((a, _)) => format!("{a}?…"),
            None => address.to_string(),
        },
        _ => address.to_string(),
    }
}

fn protocol_of(name: &str) -> Option<Protocol> {
    serde_json::from_value(serde_json::Value::from(name)).ok()
}

/// What a message row's `payload` holds.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_ms: Option<(i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirm_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_ms: Option<i64>,
}

/// Publishes events to a running notifier.
#[derive(Clone, Debug)]
pub struct NotifierHandle {
    tx: mpsc::Sender<Event>,
}

impl NotifierHandle {
    /// Queues an event (waits while [`CHANNEL_CAPACITY`] events are ahead of it).
    pub async fn publish(&self, e: Event) -> Result<(), NotifyError> {
        self.tx.send(e).await.map_err(|_| NotifyError::Stopped)
    }

    /// Publishes a `table.schema_changed` event — what the local crawler calls when it
    /// records a new schema version of a table.
    pub async fn publish_schema_changed(&self, change: SchemaChange) -> Result<(), NotifyError> {
        self.publish(schema_changed(&change, now_ms())).await
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Shared state of a running notifier.
pub(crate) struct Inner {
    cfg: NotifierConfig,
    outbox: Arc<Outbox>,
    subs: Vec<Subscription>,
    mailer: Option<Mailer>,
    base_url: String,
    wake: Notify,
    buckets: Mutex<HashMap<i64, TokenBucket>>,
    rng: Mutex<rand::rngs::StdRng>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Inner {
    fn token(&self) -> String {
        let mut b = [0u8; 32];
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(&mut b);
        hex::encode(b)
    }

    fn unit(&self) -> f64 {
        let v = self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
        (v >> 11) as f64 / (1u64 << 53) as f64
    }

    fn find(&self, ep: &EndpointRow) -> Option<(&Subscription, &Endpoint)> {
        let sub = self.subs.iter().find(|s| s.name == ep.subscription)?;
        let e = sub.endpoints.iter().find(|e| e.protocol.as_str() == ep.protocol && e.address == ep.address)?;
        Some((sub, e))
    }

    fn policy(&self, p: Protocol) -> &RetryPolicy {
        match p {
            Protocol::Email | Protocol::EmailJson => &self.cfg.retry.email,
            Protocol::Slack | Protocol::Discord => &self.cfg.retry.chat,
            _ => &self.cfg.retry.webhook,
        }
    }

    fn unsubscribe_url(&self, ep: &EndpointRow) -> String {
        format!("{}/notify/unsubscribe?token={}", self.base_url, ep.unsubscribe_token)
    }

    /// Queues a fresh confirmation email for a pending endpoint.
    fn send_confirmation(&self, ep: &EndpointRow) -> Result<(), NotifyError> {
        let token = self.token();
        let now = now_ms();
        let expires = now + self.cfg.confirmation_ttl_seconds as i64 * 1000;
        let payload = Payload {
            confirm_url: Some(format!("{}/notify/confirm?token={token}", self.base_url)),
            expires_ms: Some(expires),
            ..Payload::default()
        };
        let id = stable_id("cnf", &[&sha256_hex(&token)]);
        self.outbox.start_confirmation(
            ep.id,
            &sha256_hex(&token),
            expires,
            &id,
            &serde_json::to_string(&payload).expect("a payload serializes"),
            now,
        )?;
        tracing::info!(subscription = %ep.subscription, address = %ep.address, "confirmation email queued");
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn confirm(&self, token: &str) -> Result<Confirm, NotifyError> {
        let Some(ep) = self.outbox.endpoint_by_confirm_token(&sha256_hex(token))? else { return Ok(Confirm::Unknown) };
        if ep.state == CONFIRMED {
            return Ok(Confirm::Already(ep.subscription));
        }
        if ep.state != PENDING_CONFIRMATION {
            return Ok(Confirm::Unknown);
        }
        if ep.confirm_expires_ms.is_some_and(|t| t < now_ms()) {
            self.send_confirmation(&ep)?;
            return Ok(Confirm::Expired);
        }
        self.outbox.set_state(ep.id, CONFIRMED, now_ms())?;
        tracing::info!(subscription = %ep.subscription, address = %ep.address, "endpoint confirmed");
        Ok(Confirm::Confirmed(ep.subscription))
    }

    pub(crate) fn unsubscribe(&self, token: &str) -> Result<Option<String>, NotifyError> {
        let Some(ep) = self.outbox.endpoint_by_unsubscribe_token(token)? else { return Ok(None) };
        if ep.state != UNSUBSCRIBED {
            self.outbox.set_state(ep.id, UNSUBSCRIBED, now_ms())?;
            let shown = protocol_of(&ep.protocol).map(|p| redact(p, &ep.address)).unwrap_or_default();
            tracing::info!(subscription = %ep.subscription, address = %shown, "endpoint unsubscribed");
        }
        Ok(Some(ep.subscription))
    }

    /// Queues a batch of events for every confirmed endpoint that wants them.
    fn intake(&self, events: &[Event]) -> Result<(), NotifyError> {
        let items = self.items(events)?;
        if items.is_empty() {
            return Ok(());
        }
        let r = self.outbox.enqueue(&items, now_ms())?;
        self.queued(events.len(), &r);
        Ok(())
    }

    fn queued(&self, events: usize, r: &Enqueued) {
        if r.refused > 0 {
            tracing::error!(
                refused = r.refused,
                limit = self.cfg.outbox_max_pending,
                "outbox full: notifications refused (see the delivery log)"
            );
        }
        tracing::debug!(events, queued = r.inserted, duplicates = r.duplicates, "events queued");
        if r.inserted > 0 {
            self.wake.notify_one();
        }
    }

    /// What `events` become in the outbox: a message or a digest item per confirmed endpoint
    /// that wants each.
    fn items(&self, events: &[Event]) -> Result<Vec<NewItem>, NotifyError> {
        let endpoints = self.outbox.endpoints()?;
        let mut items = Vec::new();
        for e in events {
            for ep in endpoints.iter().filter(|ep| ep.state == CONFIRMED) {
                let Some((sub, _)) = self.find(ep) else { continue };
                if !sub.wants(e) {
                    continue;
                }
                let json = serde_json::to_string(e).expect("an event serializes");
                if sub.digest_interval_ms > 0 {
                    items.push(NewItem::DigestItem { endpoint_id: ep.id, event_id: e.id.clone(), event: json });
                } else {
                    let payload = Payload { events: vec![e.clone()], ..Payload::default() };
                    items.push(NewItem::Message {
                        endpoint_id: ep.id,
                        message_id: e.id.clone(),
                        kind: KIND_EVENT,
                        payload: serde_json::to_string(&payload).expect("a payload serializes"),
                    });
                }
            }
        }
        Ok(items)
    }

    /// Closes every digest that is due.
    fn digests(&self) -> Result<(), NotifyError> {
        let now = now_ms();
        for ep in self.outbox.endpoints()?.into_iter().filter(|e| e.state == CONFIRMED) {
            let Some((sub, _)) = self.find(&ep) else { continue };
            if sub.digest_interval_ms == 0 || now - ep.last_digest_ms < sub.digest_interval_ms as i64 {
                continue;
            }
            let made = self.outbox.close_digest(ep.id, self.cfg.digest_max_events, now, |items, since| {
                let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
                let events: Vec<Event> = items.iter().filter_map(|(_, j)| serde_json::from_str(j).ok()).collect();
                let payload = Payload { events, window_ms: Some((since, now)), ..Payload::default() };
                (stable_id("dig", &ids), serde_json::to_string(&payload).expect("a payload serializes"))
            })?;
            if let Some(id) = made {
                tracing::info!(subscription = %ep.subscription, message_id = %id, "digest queued");
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// One delivery attempt of `m`, and its recorded outcome.
    async fn deliver(&self, m: MessageRow) -> Result<(), NotifyError> {
        let now = now_ms();
        let Some(ep) = self.outbox.endpoint(m.endpoint_id)? else { return Ok(()) };
        let Some((sub, endpoint)) = self.find(&ep) else {
            self.outbox.cancel(&m, "the endpoint is no longer in the manifests", now)?;
            return Ok(());
        };
        if ep.state == UNSUBSCRIBED {
            self.outbox.cancel(&m, "unsubscribed", now)?;
            return Ok(());
        }
        if ep.state != CONFIRMED && m.kind != KIND_CONFIRMATION {
            self.outbox.defer(m.id, now + 60_000)?;
            return Ok(());
        }
        if m.kind != KIND_CONFIRMATION
            && let Some(limit) = sub.rate_limit_per_minute
        {
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let b = buckets.entry(ep.id).or_insert_with(|| TokenBucket::new(limit, now));
            if let Err(at) = b.take(now) {
                drop(buckets);
                tracing::debug!(subscription = %sub.name, message_id = %m.message_id, "rate limited; deferred");
                self.outbox.defer(m.id, at)?;
                return Ok(());
            }
        }
        let policy = self.policy(endpoint.protocol).clone();
        let attempt = m.attempts + 1;
        let shown = redact(endpoint.protocol, &endpoint.address);
        if now - m.created_ms > policy.max_age_ms as i64 {
            let why = format!(
                "older than the maximum age of {} s; last error: {}",
                policy.max_age_ms / 1000,
                m.last_error.as_deref().unwrap_or("none")
            );
            self.outbox.dead(&m, m.attempts, &why, now)?;
            tracing::error!(subscription = %sub.name, endpoint = %shown, message_id = %m.message_id, "dead-lettered: {why}");
            return Ok(());
        }
        let result = self.send(&ep, sub, endpoint, &m, attempt).await;
        let now = now_ms();
        match result {
            Ok(detail) => {
                self.outbox.delivered(&m, attempt, &detail, now)?;
                tracing::info!(subscription = %sub.name, endpoint = %shown, kind = %m.kind, message_id = %m.message_id, attempt, "delivered");
            }
            Err(SendError { message, permanent }) => {
                let next = if permanent {
                    Next::DeadLetter(format!("refused for good: {message}"))
                } else {
                    policy.after_failure(attempt, m.created_ms, now, self.unit())
                };
                match next {
                    Next::RetryAt(at) => {
                        self.outbox.failed(&m, attempt, &message, at, now)?;
                        tracing::warn!(subscription = %sub.name, endpoint = %shown, message_id = %m.message_id, attempt, retry_in_ms = at - now, error = %message, "delivery failed; will retry");
                    }
                    Next::DeadLetter(why) => {
                        let last = if permanent { why } else { format!("{why}; last error: {message}") };
                        self.outbox.dead(&m, attempt, &last, now)?;
                        tracing::error!(subscription = %sub.name, endpoint = %shown, message_id = %m.message_id, attempt, error = %last, "dead-lettered");
                    }
                }
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        ep: &EndpointRow,
        sub: &Subscription,
        endpoint: &Endpoint,
        m: &MessageRow,
        attempt: u32,
    ) -> Result<String, SendError> {
        let payload: Payload = serde_json::from_str(&m.payload)
            .map_err(|e| SendError { message: format!("unreadable outbox payload: {e}"), permanent: true })?;
        let max_listed = self.cfg.max_listed as usize;
        if m.kind == KIND_CONFIRMATION {
            let mailer = self
                .mailer
                .as_ref()
                .ok_or_else(|| SendError { message: "no SMTP server configured".into(), permanent: false })?;
            let url = payload.confirm_url.unwrap_or_default();
            let expires = crate::event::rfc3339(payload.expires_ms.unwrap_or(0));
            let body = render::confirmation_email(&sub.name, &ep.address, &url, &expires);
            mailer.send(&ep.address, &body, &m.message_id, None).await?;
            return Ok(format!("confirmation sent via {}", mailer.describe));
        }
        let unsubscribe = self.unsubscribe_url(ep);
        let env = render::envelope(&m.message_id, &sub.name, payload.events, payload.window_ms, &unsubscribe);
        match endpoint.protocol {
            Protocol::Email | Protocol::EmailJson => {
                let mailer = self
                    .mailer
                    .as_ref()
                    .ok_or_else(|| SendError { message: "no SMTP server configured".into(), permanent: false })?;
                let body = if endpoint.protocol == Protocol::Email {
                    render::email(&env, max_listed)
                } else {
                    let r = render::email(&env, 0);
                    render::EmailBody {
                        subject: r.subject,
                        text: serde_json::to_string_pretty(&env).expect("an envelope serializes"),
                        html: String::new(),
                    }
                };
                mailer.send(&ep.address, &body, &m.message_id, Some(&unsubscribe)).await?;
                Ok(format!("{} events via {}", env.events.len(), mailer.describe))
            }
            Protocol::Webhook | Protocol::Https | Protocol::Slack | Protocol::Discord => {
                let body = match endpoint.protocol {
                    Protocol::Slack => serde_json::to_vec(&render::slack(&env, max_listed.min(50))),
                    Protocol::Discord => serde_json::to_vec(&render::discord(&env, max_listed.min(50))),
                    _ => serde_json::to_vec(&env),
                }
                .expect("a body serializes");
                let mut headers = vec![
                    ("content-type", "application/json".to_string()),
                    ("user-agent", concat!("ticklake-notify/", env!("CARGO_PKG_VERSION")).to_string()),
                ];
                if matches!(endpoint.protocol, Protocol::Webhook | Protocol::Https) {
                    headers.push(("x-ticklake-message-id", m.message_id.clone()));
                    headers.push(("x-ticklake-message-kind", m.kind.clone()));
                    headers.push(("x-ticklake-attempt", attempt.to_string()));
                    if let Some(s) = &endpoint.signing_secret {
                        headers.push(("x-ticklake-signature", http::sign(&s.0, now_ms() / 1000, &body)));
                    }
                }
                let policy = TargetPolicy {
                    allow_loopback: self.cfg.allow_loopback_targets,
                    allow_private: self.cfg.allow_private_targets,
                };
                let timeout = Duration::from_millis(self.cfg.webhook_timeout_ms);
                match http::request("POST", &endpoint.address, &headers, Bytes::from(body), timeout, policy).await {
                    Ok(r) if (200..300).contains(&r.status) => Ok(format!("HTTP {}", r.status)),
                    Ok(r) => {
                        let snippet: String = String::from_utf8_lossy(&r.body).chars().take(200).collect();
                        // As SNS: client errors other than timeouts and throttling are final.
                        let permanent = (400..500).contains(&r.status) && r.status != 408 && r.status != 429;
                        Err(SendError { message: format!("HTTP {}: {}", r.status, snippet.trim()), permanent })
                    }
                    Err(e @ http::HttpError::Refused(_)) | Err(e @ http::HttpError::Url(..)) => {
                        Err(SendError { message: e.to_string(), permanent: true })
                    }
                    Err(e) => Err(SendError { message: e.to_string(), permanent: false }),
                }
            }
            Protocol::Sqs => {
                Err(SendError { message: "sqs endpoints are delivered by Amazon SNS only".into(), permanent: true })
            }
        }
    }
}

/// Takes in events re-derived from durable records — the sinks' claims — for landed objects
/// whose live events may have been lost (in memory when the process was killed). Unlike
/// [`NotifierHandle::publish`], it writes to the outbox directly and moves the stream's
/// [`ReplayMark`] in the same transaction, so a mark never gets ahead of the outbox. Events
/// the live path already queued are duplicates (same id) and ignored.
///
/// Streams are named by the caller (the local runner: sink name and claims folder); see
/// [`crate::outbox`] for the marks. Calls are short synchronous SQLite transactions.
#[derive(Clone)]
pub struct Replayer {
    inner: Arc<Inner>,
}

impl Replayer {
    /// The marks of a followed stream by partition; `None` when it is not followed yet.
    pub fn marks(&self, stream: &str) -> Result<Option<BTreeMap<i32, i64>>, NotifyError> {
        Ok(self.inner.outbox.replay_marks(stream)?)
    }

    /// Starts following a stream from these marks (where its chains end now).
    pub fn follow(&self, stream: &str, marks: &BTreeMap<i32, i64>) -> Result<(), NotifyError> {
        Ok(self.inner.outbox.follow_stream(stream, marks, now_ms())?)
    }

    /// Forgets every followed stream not in `keep`; returns how many.
    pub fn forget_except(&self, keep: &[String]) -> Result<u64, NotifyError> {
        Ok(self.inner.outbox.forget_streams_except(keep)?)
    }

    /// Queues `events` (matched against the subscriptions like published ones) and moves
    /// `mark` up, in one transaction.
    pub fn intake(&self, events: &[Event], mark: &ReplayMark) -> Result<Enqueued, NotifyError> {
        let items = self.inner.items(events)?;
        let r = self.inner.outbox.enqueue_marked(&items, Some(mark), now_ms())?;
        self.inner.queued(events.len(), &r);
        Ok(r)
    }
}

/// A running notifier.
pub struct Running {
    pub handle: NotifierHandle,
    /// Where the confirm/unsubscribe endpoint listens.
    pub http_addr: SocketAddr,
    /// The base of links (`http.publicBaseUrl`, or `http://<http_addr>`).
    pub base_url: String,
    pub outbox: Arc<Outbox>,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The way in for events re-derived from the sinks' claims.
    pub fn replayer(&self) -> Replayer {
        Replayer { inner: self.inner.clone() }
    }

    /// Waits until the notifier has stopped: after `shutdown` turned true, in-flight
    /// deliveries finish; intake ends once every clone of the handle is dropped (events
    /// published until then are in the outbox).
    pub async fn stopped(self) {
        drop(self.handle);
        let _ = self.task.await;
    }
}

/// Starts the notifier: opens the outbox at `outbox_path`, registers the subscriptions'
/// endpoints (queuing confirmation emails), binds the link endpoint, and runs intake,
/// digests and delivery until `shutdown` turns true.
pub async fn start(
    cfg: NotifierConfig,
    subs: Vec<Subscription>,
    outbox_path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Running, NotifyError> {
    cfg.validate().map_err(NotifyError::Config)?;
    let needs_email =
        subs.iter().flat_map(|s| &s.endpoints).any(|e| matches!(e.protocol, Protocol::Email | Protocol::EmailJson));
    let mailer = match &cfg.smtp {
        Some(s) => Some(Mailer::new(s, env).map_err(NotifyError::Config)?),
        None if needs_email => {
            return Err(NotifyError::Config(
                "email endpoints need an SMTP server: set smtp in the notifier configuration (--notify-config)".into(),
            ));
        }
        None => None,
    };
    for s in &subs {
        for e in &s.endpoints {
            if e.protocol == Protocol::Sqs {
                return Err(NotifyError::Subscription {
                    subscription: s.name.clone(),
                    detail: "sqs endpoints are delivered by Amazon SNS only, not by ticklake's notifier".into(),
                });
            }
        }
    }
    let outbox = Arc::new(Outbox::open(outbox_path, cfg.outbox_max_pending)?);
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|e| NotifyError::Bind(cfg.http.listen, e.to_string()))?;
    let http_addr = listener.local_addr().map_err(|e| NotifyError::Bind(cfg.http.listen, e.to_string()))?;
    let base_url = cfg
        .http
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"))
        .trim_end_matches('/')
        .to_string();
    let inner = Arc::new(Inner {
        cfg,
        outbox: outbox.clone(),
        subs,
        mailer,
        base_url: base_url.clone(),
        wake: Notify::new(),
        buckets: Mutex::new(HashMap::new()),
        rng: Mutex::new(rand::rngs::StdRng::from_os_rng()),
    });
    // Endpoints: new email endpoints wait for confirmation; others are confirmed.
    let now = now_ms();
    for s in &inner.subs {
        for e in &s.endpoints {
            let needs_confirmation = matches!(e.protocol, Protocol::Email | Protocol::EmailJson);
            let state = if needs_confirmation { PENDING_CONFIRMATION } else { CONFIRMED };
            let ep = outbox.upsert_endpoint(&s.name, e.protocol.as_str(), &e.address, state, &inner.token(), now)?;
            if ep.state == PENDING_CONFIRMATION && ep.confirm_expires_ms.is_none_or(|t| t < now) {
                inner.send_confirmation(&ep)?;
            }
            tracing::info!(subscription = %s.name, protocol = e.protocol.as_str(), endpoint = %redact(e.protocol, &e.address), state = %ep.state, digest_interval_ms = s.digest_interval_ms, "notification endpoint");
        }
    }
    let (tx, mut rx) = mpsc::channel::<Event>(CHANNEL_CAPACITY);
    tracing::info!(addr = %http_addr, links = %base_url, outbox = %outbox_path.display(), "notifier started");

    let task = tokio::spawn({
        let inner = inner.clone();
        async move {
            // The link endpoint.
            let server = {
                let mut stop = shutdown.clone();
                let app = crate::server::router(inner.clone());
                tokio::spawn(async move {
                    let r = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|v| *v).await;
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::error!(error = %e, "the notifier's HTTP endpoint failed");
                    }
                })
            };
            // Intake: until every handle is dropped — not at shutdown, because sinks write
            // out their buffers after it and report those objects too. What is queued after
            // delivery stopped is sent by the next start.
            let intake = {
                let inner = inner.clone();
                tokio::spawn(async move {
                    loop {
                        let Some(first) = rx.recv().await else { break };
                        let mut batch = vec![first];
                        while batch.len() < INTAKE_BATCH {
                            match rx.try_recv() {
                                Ok(e) => batch.push(e),
                                Err(_) => break,
                            }
                        }
                        if let Err(e) = inner.intake(&batch) {
                            tracing::error!(error = %e, events = batch.len(), "queuing events failed");
                        }
                    }
                })
            };
            // Digests and housekeeping, every second.
            let digests = {
                let inner = inner.clone();
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(500));
                    let mut n = 0u64;
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stop.wait_for(|v| *v) => break,
                        }
                        if let Err(e) = inner.digests() {
                            tracing::error!(error = %e, "closing digests failed");
                        }
                        n += 1;
                        if n.is_multiple_of(600)
                            && let Err(e) = inner.outbox.prune(inner.cfg.delivery_log_max_rows, KEEP_DONE_MS, now_ms())
                        {
                            tracing::warn!(error = %e, "pruning the outbox failed");
                        }
                    }
                })
            };
            // Delivery.
            let concurrency = inner.cfg.delivery_concurrency as usize;
            let poll = Duration::from_millis(inner.cfg.poll_interval_ms);
            let mut busy: HashSet<i64> = HashSet::new();
            let mut running = tokio::task::JoinSet::new();
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let free = concurrency.saturating_sub(running.len());
                if free > 0 {
                    match inner.outbox.due(now_ms(), free, &busy) {
                        Ok(due) => {
                            for m in due {
                                busy.insert(m.id);
                                let inner = inner.clone();
                                running.spawn(async move {
                                    let id = m.id;
                                    if let Err(e) = inner.deliver(m).await {
                                        tracing::error!(error = %e, "recording a delivery failed");
                                    }
                                    id
                                });
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "reading the outbox failed"),
                    }
                }
                let wait = match inner.outbox.next_due_ms() {
                    Ok(Some(t)) => Duration::from_millis((t - now_ms()).clamp(0, poll.as_millis() as i64) as u64),
                    _ => poll,
                };
                tokio::select! {
                    Some(done) = running.join_next(), if !running.is_empty() => {
                        if let Ok(id) = done { busy.remove(&id); }
                    }
                    _ = inner.wake.notified() => {}
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(20))) => {}
                    _ = shutdown.changed() => {}
                }
            }
            // In-flight deliveries finish (each is bounded by its timeout).
            while running.join_next().await.is_some() {}
            let _ = intake.await;
            let _ = digests.await;
            let _ = server.await;
            tracing::info!("notifier stopped");
        }
    });
    Ok(Running { handle: NotifierHandle { tx }, http_addr, base_url, outbox, inner, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ObjectWritten, object_created};

    fn spec(yaml: &str) -> AlertSubscriptionSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn ev(sink: &str, bucket: &str, key: &str) -> Event {
        object_created(&ObjectWritten {
            bucket: bucket.into(),
            region: "local".into(),
            sink: sink.into(),
            topic: "t".into(),
            partition: 0,
            first_offset: 0,
            last_offset: 1,
            key: key.into(),
            rows: 2,
            bytes: 10,
            dead_letter: false,
            time_ms: 0,
        })
    }

    #[test]
    fn subscriptions_watch_a_sink_or_a_bucket_then_filter() {
        let sinks = |n: &str| (n == "lake").then(|| ("demo".to_string(), "ticks/".to_string()));
        let no_env = |_: &str| None;
        let s = Subscription::from_spec(
            "a",
            &spec("watch: {sinkRef: lake, suffix: .parquet}\nendpoints: [{protocol: webhook, address: 'http://x/'}]\nfilterPolicy: '{\"partition\": [0]}'"),
            &sinks,
            &no_env,
        )
        .unwrap();
        assert_eq!(s.watch.key_prefix, "ticks/");
        assert!(s.wants(&ev("lake", "demo", "ticks/a.parquet")));
        assert!(!s.wants(&ev("other", "demo", "ticks/a.parquet")), "another sink");
        assert!(!s.wants(&ev("lake", "demo", "ticks/a.json")), "suffix");
        assert!(!s.wants(&ev("lake", "demo", "other/a.parquet")), "prefix");
        let b = Subscription::from_spec(
            "b",
            &spec("watch: {bucket: demo, prefix: exports/}\nendpoints: [{protocol: slack, address: 'https://hooks.slack.com/x'}]"),
            &sinks,
            &no_env,
        )
        .unwrap();
        assert!(b.wants(&ev("anything", "demo", "exports/x")));
        assert!(!b.wants(&ev("anything", "other", "exports/x")));
        let e = Subscription::from_spec(
            "c",
            &spec("watch: {sinkRef: nope}\nendpoints: [{protocol: webhook, address: 'http://x/'}]"),
            &sinks,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("names no S3Sink"), "{e}");
        let e = Subscription::from_spec(
            "d",
            &spec("watch: {bucket: demo}\nendpoints: [{protocol: webhook, address: 'http://x/', signingSecretRef: {name: hook-key, key: hmac}}]"),
            &sinks,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("TICKLAKE_SECRET_HOOK_KEY_HMAC"), "{e}");
        let e = Subscription::from_spec("f", &spec("watch: {bucket: demo}\nendpoints: [{protocol: webhook, address: 'http://x/'}]\nfilterPolicy: '{\"a\": 1}'"), &sinks, &no_env)
            .unwrap_err();
        assert!(e.to_string().contains("filter policy"), "{e}");
    }

    #[test]
    fn secrets_and_webhook_urls_are_redacted() {
        assert_eq!(redact(Protocol::Slack, "https://hooks.slack.com/services/T/B/SECRET"), "https://hooks.slack.com/…");
        assert_eq!(redact(Protocol::Webhook, "https://h/x?token=SECRET"), "https://h/x?…");
        assert_eq!(redact(Protocol::Email, "a@b.c"), "a@b.c");
        assert_eq!(format!("{:?}", Secret(b"SECRET".to_vec())), "Secret(***)");
        assert_eq!(secret_env_name("hook-key", "hmac.v1"), "TICKLAKE_SECRET_HOOK_KEY_HMAC_V1");
    }
}
