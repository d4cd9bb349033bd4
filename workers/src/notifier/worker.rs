//! The notifier's loop: the I/O edge around the pure parts (`object`, `shape`, `ledger`,
//! `limits`). One task, one queue:
//!
//! 1. **shape** what is due: each pending object (per-object mode), or one digest when the
//!    interval since the first pending object has passed (or the buffer is full, or the oldest
//!    held message nears SQS's 12-hour limit);
//! 2. **deliver** in order, within the rate limit: SNS publish, then one email per `email`
//!    endpoint over SMTP; a failed output is retried with backoff (only what failed);
//! 3. **delete** the SQS messages whose objects are all delivered;
//! 4. **extend** the hiding of held messages before SQS shows them again;
//! 5. **receive** (long poll, until the next thing is due) while the buffer has room: parse,
//!    classify keys, read footers, filter, hold.
//!
//! On shutdown held messages are made visible again at once (another worker, or this one
//! restarted, takes them); a crash leaves them hidden until their timeout ends. Either way
//! nothing is lost and something may be sent twice: receivers de-duplicate by `event_id`.

use super::footer;
use super::ledger::Ledger;
use super::limits::{
    EXTEND_MARGIN_MS, GRACE_MS, HOLD_LIMIT_MS, MAX_ATTEMPTS, RECEIVE_MAX_MESSAGES, RECEIVE_WAIT_SECONDS, RateLimiter,
    backoff_ms,
};
use super::metrics::{NotifierTelemetry, OperationLabel, OutputLabel};
use super::object::{Landed, event_id};
use super::shape::{Outgoing, digest_message, object_message};
use super::{NotifierError, Settings, Summary};
use crate::telemetry::{ReasonLabel, now_ms};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use ticklake_api::crd::SinkFormat;
use ticklake_aws::error::ErrorKind;
use ticklake_aws::{Clients, s3notify, sns, sqs};
use ticklake_notify::email::Mailer;
use ticklake_notify::render::EmailBody;
use tokio::sync::watch;

/// What the loop talks to.
pub struct Runtime {
    /// SQS and SNS.
    pub clients: Clients,
    /// Reads footers from the sink's bucket (see [`super::sink_s3_client`]).
    pub s3: aws_sdk_s3::Client,
    /// With `--smtp-url`.
    pub mailer: Option<Mailer>,
    pub telemetry: Arc<NotifierTelemetry>,
}

/// A message on its way out.
struct Delivery {
    out: Outgoing,
    /// The SQS message of each object it covers.
    messages: Vec<String>,
    sns_pending: bool,
    emails_pending: Vec<String>,
    attempts: u32,
    next_attempt_ms: i64,
    /// Counted as rate-limited already (once per delivery).
    limited: bool,
}

enum Attempt {
    Done,
    /// Try again later.
    Retry(String),
    /// Refused for good: give up.
    Abandon(String),
}

fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (nanos % 1_000_000) as f64 / 1_000_000.0
}

struct Loop<'a> {
    s: &'a Settings,
    rt: &'a Runtime,
    ledger: Ledger,
    /// Filtered, enriched objects not in a delivery yet, with their SQS message id.
    pending: VecDeque<(String, Landed)>,
    /// When the first of `pending` arrived (digests).
    window_opened_ms: Option<i64>,
    deliveries: VecDeque<Delivery>,
    limiter: Option<RateLimiter>,
    visibility_ms: i64,
    margin_ms: i64,
    summary: Summary,
}

impl Loop<'_> {
    fn metrics(&self) -> &super::metrics::NotifierMetrics {
        &self.rt.telemetry.metrics
    }

    fn sqs_error(&self, operation: &str, e: &ticklake_aws::AwsError) {
        self.metrics().sqs_errors.get_or_create(&OperationLabel { operation: operation.to_string() }).inc();
        tracing::warn!(error = %e, operation, "SQS call failed");
    }

    /// When the next digest is due.
    fn digest_due_ms(&self) -> Option<i64> {
        if self.pending.is_empty() || self.s.digest_interval_ms == 0 {
            return None;
        }
        let by_interval = self.window_opened_ms.unwrap_or(0) + self.s.digest_interval_ms;
        let by_hold = self.ledger.oldest_received_ms().map(|t| t + HOLD_LIMIT_MS - 2 * GRACE_MS).unwrap_or(i64::MAX);
        Some(by_interval.min(by_hold))
    }

    /// When the first delivery may go.
    fn delivery_due_ms(&mut self, now: i64) -> Option<i64> {
        let d = self.deliveries.front()?;
        let limited = self.limiter.as_mut().map(|l| l.next_at(now)).unwrap_or(now);
        Some(d.next_attempt_ms.max(limited))
    }

    /// 1. Turns what is due into deliveries.
    fn shape(&mut self, now: i64) {
        if self.s.digest_interval_ms == 0 {
            while let Some((id, o)) = self.pending.pop_front() {
                let out = object_message(&self.s.context, &o);
                self.push_delivery(out, vec![id], now);
            }
            return;
        }
        let full = self.pending.len() >= self.s.max_held_objects;
        if self.digest_due_ms().is_some_and(|t| t <= now) || (full && !self.pending.is_empty()) {
            let n = self.pending.len().min(self.s.max_held_objects);
            let (ids, objects): (Vec<String>, Vec<Landed>) = self.pending.drain(..n).unzip();
            let out = digest_message(&self.s.context, &objects);
            tracing::info!(digest = %out.id, objects = objects.len(), "digest due");
            self.push_delivery(out, ids, now);
            self.window_opened_ms = if self.pending.is_empty() { None } else { Some(now) };
        }
    }

    fn push_delivery(&mut self, out: Outgoing, messages: Vec<String>, now: i64) {
        let emails_pending = if self.rt.mailer.is_some() { self.s.email_to.clone() } else { Vec::new() };
        self.deliveries.push_back(Delivery {
            out,
            messages,
            sns_pending: self.s.topic_arn.is_some(),
            emails_pending,
            attempts: 0,
            next_attempt_ms: now,
            limited: false,
        });
    }

    async fn attempt(&self, d: &mut Delivery) -> Attempt {
        let m = self.metrics();
        if d.sns_pending
            && let Some(topic) = &self.s.topic_arn
        {
            match sns::publish_typed(&self.rt.clients, topic, &d.out.subject, &d.out.text, &d.out.attributes).await {
                Ok(message_id) => {
                    m.published.inc();
                    d.sns_pending = false;
                    tracing::info!(id = %d.out.id, sns_message = %message_id, objects = d.out.objects, "published");
                }
                Err(e) => {
                    m.delivery_failures.get_or_create(&OutputLabel { output: "sns".into() }).inc();
                    return if e.kind == ErrorKind::Invalid {
                        Attempt::Abandon(format!("SNS refused the message: {e}"))
                    } else {
                        Attempt::Retry(format!("SNS: {e}"))
                    };
                }
            }
        }
        if let Some(mailer) = &self.rt.mailer {
            let body = EmailBody { subject: d.out.subject.clone(), text: d.out.text.clone(), html: d.out.html.clone() };
            while let Some(to) = d.emails_pending.first().cloned() {
                match mailer.send(&to, &body, &d.out.id, None).await {
                    Ok(()) => {
                        m.emails_sent.inc();
                        d.emails_pending.remove(0);
                        tracing::info!(id = %d.out.id, to = %to, "email sent");
                    }
                    Err(e) => {
                        m.delivery_failures.get_or_create(&OutputLabel { output: "smtp".into() }).inc();
                        if e.permanent {
                            // One refused address must not hold back the others.
                            tracing::error!(id = %d.out.id, to = %to, error = %e,
                                "the SMTP server refused the email for good; not retried");
                            d.emails_pending.remove(0);
                        } else {
                            return Attempt::Retry(format!("SMTP to {to}: {e}"));
                        }
                    }
                }
            }
        }
        Attempt::Done
    }

    /// 2. Sends the deliveries that may go now; returns the receipts to delete and to release.
    async fn deliver(&mut self, now: i64) -> (Vec<String>, Vec<String>) {
        let (mut delete, mut release) = (Vec::new(), Vec::new());
        while let Some(mut d) = self.deliveries.pop_front() {
            if d.next_attempt_ms > now {
                self.deliveries.push_front(d);
                break;
            }
            if let Some(l) = self.limiter.as_mut()
                && l.next_at(now) > now
            {
                if !d.limited {
                    d.limited = true;
                    self.rt.telemetry.metrics.rate_limited.inc();
                }
                self.deliveries.push_front(d);
                break;
            }
            let outcome = self.attempt(&mut d).await;
            let now = now_ms();
            match outcome {
                Attempt::Done => {
                    if let Some(l) = self.limiter.as_mut() {
                        l.record(now);
                    }
                    self.metrics().objects_notified.inc_by(d.out.objects as u64);
                    self.summary.notified += d.out.objects as u64;
                    self.summary.messages += 1;
                    for id in &d.messages {
                        delete.extend(self.ledger.delivered(id));
                    }
                }
                Attempt::Retry(e) if d.attempts + 1 < MAX_ATTEMPTS => {
                    d.attempts += 1;
                    let wait = backoff_ms(d.attempts, jitter());
                    tracing::warn!(id = %d.out.id, attempt = d.attempts, retry_in_ms = wait, error = %e,
                        "delivery failed");
                    d.next_attempt_ms = now + wait;
                    self.deliveries.push_front(d);
                    break;
                }
                Attempt::Retry(e) | Attempt::Abandon(e) => {
                    tracing::error!(id = %d.out.id, attempts = d.attempts + 1, error = %e,
                        "delivery abandoned: its SQS messages go back to the queue (and to the dead-letter \
                         queue after maxReceiveCount receives)");
                    self.metrics().abandoned.inc();
                    for id in &d.messages {
                        release.extend(self.ledger.release(id));
                    }
                    // Their other objects (a message announcing several) are released with them.
                    self.pending.retain(|(id, _)| !d.messages.contains(id));
                    for other in self.deliveries.iter_mut() {
                        other.messages.retain(|id| !d.messages.contains(id));
                    }
                }
            }
        }
        (delete, release)
    }

    /// 4. Keeps held messages hidden until they are due plus a grace period.
    async fn extend(&mut self, now: i64) {
        let due = self.ledger.due(now, self.margin_ms);
        if due.is_empty() {
            return;
        }
        let next = [self.digest_due_ms(), self.delivery_due_ms(now)].into_iter().flatten().min().unwrap_or(now);
        // Hidden until then, plus the queue's own timeout as slack for the delivery itself.
        let until = next.max(now) + self.visibility_ms;
        let mut by_seconds: Vec<(u32, Vec<(String, String)>)> = Vec::new();
        for (id, receipt) in due {
            // SQS's 12-hour limit counts from the receive.
            let received = self.ledger.received_ms(&id).unwrap_or(now);
            let limit = received + sqs::MAX_VISIBILITY_SECONDS as i64 * 1000 - 60_000;
            let secs = ((until.min(limit) - now).max(0) as u64).div_ceil(1000) as u32;
            match by_seconds.iter_mut().find(|(s, _)| *s == secs) {
                Some((_, v)) => v.push((id, receipt)),
                None => by_seconds.push((secs, vec![(id, receipt)])),
            }
        }
        for (secs, batch) in by_seconds {
            let receipts: Vec<String> = batch.iter().map(|(_, r)| r.clone()).collect();
            match sqs::change_visibility(&self.rt.clients, &self.s.queue_url, &receipts, secs).await {
                Ok(refused) => {
                    for (id, r) in &batch {
                        if refused.contains(r) {
                            // Not extended: it shows again and is received again (same id).
                            tracing::warn!(message = %id, "SQS refused to extend the visibility timeout");
                            self.ledger.extended(id, i64::MAX);
                        } else {
                            self.ledger.extended(id, now + secs as i64 * 1000);
                        }
                    }
                }
                Err(e) => {
                    self.sqs_error("ChangeMessageVisibilityBatch", &e);
                    // Try again soon, not in a tight loop.
                    for (id, _) in &batch {
                        self.ledger.extended(id, now + self.margin_ms / 2 + 1_000);
                    }
                }
            }
        }
    }

    async fn delete(&mut self, receipts: Vec<String>) {
        if receipts.is_empty() {
            return;
        }
        match sqs::delete_messages(&self.rt.clients, &self.s.queue_url, &receipts).await {
            Ok(()) => {
                self.metrics().deleted.inc_by(receipts.len() as u64);
            }
            Err(e) => {
                // They come back after their timeout and are sent again: at least once.
                self.sqs_error("DeleteMessageBatch", &e);
            }
        }
    }

    async fn release(&mut self, receipts: Vec<String>) {
        if receipts.is_empty() {
            return;
        }
        if let Err(e) = sqs::change_visibility(&self.rt.clients, &self.s.queue_url, &receipts, 0).await {
            self.sqs_error("ChangeMessageVisibilityBatch", &e);
        }
    }

    /// 5. Handles a batch of received messages.
    async fn intake(&mut self, received: Vec<sqs::Received>) {
        let now = now_ms();
        let m = self.rt.telemetry.metrics.clone();
        let mut to_delete = Vec::new();
        let mut candidates: Vec<(usize, s3notify::S3Object, super::object::KeyInfo)> = Vec::new();
        let mut fresh: Vec<&sqs::Received> = Vec::new();
        for r in &received {
            m.messages_received.inc();
            self.summary.received += 1;
            if self.ledger.seen_again(&r.message_id, &r.receipt, now, self.visibility_ms) {
                tracing::debug!(message = %r.message_id, "received again while held");
                continue;
            }
            match s3notify::parse_s3_events(&r.body) {
                Err(reason) => {
                    m.unparseable.inc();
                    self.summary.unparseable += 1;
                    tracing::error!(message = %r.message_id, receive_count = r.receive_count, %reason,
                        "not an S3 event: left in the queue for its redrive policy to move to the dead-letter queue");
                }
                Ok(objects) => {
                    m.events_received.inc_by(objects.len() as u64);
                    let index = fresh.len();
                    fresh.push(r);
                    for o in objects {
                        match self.s.watch.classify(&o.bucket, &o.key) {
                            Ok(info) => candidates.push((index, o, info)),
                            Err(skip) => {
                                tracing::debug!(key = %o.key, reason = skip.as_str(), "skipped");
                                m.skipped_keys.get_or_create(&ReasonLabel { reason: skip.as_str().to_string() }).inc();
                            }
                        }
                    }
                }
            }
        }
        // Footers of the batch's objects, concurrently (at most 10 messages' worth). JSON lines
        // have no footer: their rows are unknown without reading them whole, which is not done.
        let parquet = self.s.watch.layout.format == SinkFormat::Parquet;
        let rows = futures::future::join_all(candidates.iter().map(|(_, o, _)| {
            let s3 = self.rt.s3.clone();
            async move { if parquet { footer::rows(&s3, &o.bucket, &o.key).await.map(Some) } else { Ok(None) } }
        }))
        .await;
        let mut kept: Vec<Vec<Landed>> = vec![Vec::new(); fresh.len()];
        for ((index, o, info), rows) in candidates.into_iter().zip(rows) {
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    m.footer_failures.inc();
                    tracing::warn!(key = %o.key, error = %e, "rows unknown: the Parquet footer could not be read");
                    None
                }
            };
            let landed = Landed {
                event_id: event_id(&o.bucket, &o.key, &o.etag, &o.sequencer),
                bucket: o.bucket,
                key: o.key,
                bytes: o.size,
                etag: o.etag,
                sequencer: o.sequencer,
                event_time: o.event_time,
                info,
                rows,
            };
            if self.s.context.wanted(&landed) {
                kept[index].push(landed);
            } else {
                m.objects_filtered.inc();
                tracing::debug!(key = %landed.key, "excluded by the filter policy");
            }
        }
        for (r, objects) in fresh.into_iter().zip(kept) {
            if objects.is_empty() {
                // Nothing to deliver (a test event, skipped or filtered keys): done with it.
                to_delete.push(r.receipt.clone());
                continue;
            }
            self.ledger.hold(&r.message_id, &r.receipt, now, self.visibility_ms, objects.len());
            self.window_opened_ms.get_or_insert(now);
            self.pending.extend(objects.into_iter().map(|o| (r.message_id.clone(), o)));
        }
        self.delete(to_delete).await;
    }
}

/// Runs until `shutdown` turns true. Errors only when the queue can't be read at start.
pub async fn run(
    settings: Settings,
    rt: Runtime,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Summary, NotifierError> {
    let health = &rt.telemetry.health;
    // The queue's own timeout: how long a received message stays hidden by itself.
    let visibility_s = loop {
        match sqs::visibility_timeout(&rt.clients, &settings.queue_url).await {
            Ok(v) => break v,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, queue = %settings.queue_url, "reading the queue's attributes; retrying");
                health.beat();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => return Ok(Summary::default()),
                }
            }
            Err(e) => return Err(NotifierError::Queue(e)),
        }
    };
    let visibility_ms = visibility_s.max(1) as i64 * 1000;
    let mut l = Loop {
        s: &settings,
        rt: &rt,
        ledger: Ledger::new(),
        pending: VecDeque::new(),
        window_opened_ms: None,
        deliveries: VecDeque::new(),
        limiter: settings.rate_limit_per_minute.map(RateLimiter::new),
        visibility_ms,
        margin_ms: EXTEND_MARGIN_MS.min(visibility_ms / 2).max(500),
        summary: Summary::default(),
    };
    health.set_ready(true);
    tracing::info!(queue = %settings.queue_url, visibility_s, topic = ?settings.topic_arn,
        emails = settings.email_to.len(), digest_interval_ms = settings.digest_interval_ms, "notifier started");
    let mut receive_errors = 0u32;
    loop {
        health.beat();
        // Stop when told, or when whoever could tell is gone.
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        let now = now_ms();
        l.shape(now);
        let (delete, release) = l.deliver(now).await;
        l.delete(delete).await;
        l.release(release).await;
        let now = now_ms();
        l.extend(now).await;
        rt.telemetry.metrics.held_objects.set(l.ledger.held_objects() as i64);

        // Until the next thing is due.
        let now = now_ms();
        let next = [l.digest_due_ms(), l.delivery_due_ms(now), l.ledger.next_due_ms(l.margin_ms)]
            .into_iter()
            .flatten()
            .min()
            .map(|t| (t - now).max(0));
        let room = settings.max_held_objects.saturating_sub(l.ledger.held_objects());
        match next {
            Some(ms) if ms < 1_000 || room == 0 => {
                // Soon (or full): wait without receiving.
                let ms = ms.clamp(10, RECEIVE_WAIT_SECONDS * 1000);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms as u64)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            None if room == 0 => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            _ => {}
        }
        let wait = next.map(|ms| ms / 1000).unwrap_or(RECEIVE_WAIT_SECONDS).min(RECEIVE_WAIT_SECONDS) as i32;
        let max = RECEIVE_MAX_MESSAGES.min(room as i32);
        let received = tokio::select! {
            r = sqs::receive_messages(&rt.clients, &settings.queue_url, max, wait) => r,
            _ = shutdown.changed() => continue,
        };
        match received {
            Ok(msgs) => {
                receive_errors = 0;
                health.set_ready(true);
                if !msgs.is_empty() {
                    l.intake(msgs).await;
                }
            }
            Err(e) => {
                receive_errors += 1;
                l.sqs_error("ReceiveMessage", &e);
                if e.kind == ErrorKind::NotFound || e.kind == ErrorKind::AccessDenied {
                    health.set_ready(false);
                }
                let wait = backoff_ms(receive_errors, jitter());
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    // Hand back what was not delivered, at once.
    let held = l.ledger.release_all();
    if !held.is_empty() {
        tracing::info!(messages = held.len(), "stopping: undelivered messages made visible again");
        l.release(held).await;
    }
    rt.telemetry.metrics.held_objects.set(0);
    health.set_ready(false);
    Ok(l.summary)
}
