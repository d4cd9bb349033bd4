//! The persistent outbox: endpoints, undelivered messages, digest items, dead letters and the
//! delivery log, in one SQLite file (`<data-dir>/notify/outbox.sqlite`).
//!
//! Why it cannot lose a message: an event is written here (in one transaction with every
//! endpoint it is for) before anything is sent; a message leaves the `pending` state only by
//! a recorded outcome — `delivered`, `dead` (with its last error) or `cancelled` (its endpoint
//! unsubscribed). A crash at any point leaves it `pending`, and the next start sends it again:
//! delivery is *at least once*, and the message id lets receivers make it exactly once.
//! Duplicates never enter: `(endpoint, message id)` is unique, so an event reported twice
//! (a sink rewriting a batch after a crash) is queued once per endpoint.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives a
//! process crash (the case that matters here); an OS crash may lose the last moments.
//! Confirmation tokens are stored only as SHA-256 hashes; the clear token sits in its
//! confirmation message until that is sent, then is overwritten (`secure_delete`, WAL
//! checkpointed). Unsubscribe tokens are kept: every message carries its endpoint's link.
//! Calls are short and synchronous; the notifier holds the connection behind a mutex.
//!
//! **Replay marks.** Events travel from a sink to here through memory; a process killed in
//! between loses them. The sinks' claims are the durable record of what landed, so the runner
//! re-derives events from them (`ticklake_workers::sink::replay`). Here it keeps, per followed
//! *stream* (one sink's claims folder) and partition, the first offset not yet taken in.
//! [`Outbox::enqueue_marked`] advances a mark in the same transaction that queues the events
//! of the batches below it, so a mark is never ahead of what the outbox holds; duplicates of
//! events the live path already queued are ignored by id.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("outbox: {0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, OutboxError>;

/// Endpoint states.
pub const PENDING_CONFIRMATION: &str = "PendingConfirmation";
pub const CONFIRMED: &str = "Confirmed";
pub const UNSUBSCRIBED: &str = "Unsubscribed";

/// Message kinds.
pub const KIND_EVENT: &str = "event";
pub const KIND_DIGEST: &str = "digest";
pub const KIND_CONFIRMATION: &str = "confirmation";

/// One subscribed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub id: i64,
    pub subscription: String,
    pub protocol: String,
    pub address: String,
    /// [`PENDING_CONFIRMATION`], [`CONFIRMED`] or [`UNSUBSCRIBED`].
    pub state: String,
    /// Secret: only ever put into links sent to the endpoint itself.
    pub unsubscribe_token: String,
    pub confirm_expires_ms: Option<i64>,
    pub last_digest_ms: i64,
}

/// One message to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub endpoint_id: i64,
    pub message_id: String,
    pub kind: String,
    /// JSON: the events (event, digest) or the confirmation link.
    pub payload: String,
    /// `pending`, `delivered`, `dead` or `cancelled`.
    pub status: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub ts_ms: i64,
    pub subscription: String,
    pub protocol: String,
    pub address: String,
    pub message_id: String,
    pub attempt: u32,
    /// `delivered`, `failed`, `dead`, `refused`, `cancelled`, `confirmed`, `unsubscribed`.
    pub outcome: String,
    pub detail: String,
}

/// Something to queue.
#[derive(Debug, Clone)]
pub enum NewItem {
    /// A message to send as soon as possible.
    Message { endpoint_id: i64, message_id: String, kind: &'static str, payload: String },
    /// An event waiting for its endpoint's next digest.
    DigestItem { endpoint_id: i64, event_id: String, event: String },
}

/// What [`Outbox::enqueue`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub inserted: u64,
    /// Already queued (or sent) for that endpoint.
    pub duplicates: u64,
    /// Refused: the outbox is full.
    pub refused: u64,
}

/// Where a replayed stream's partition continues: events of every batch below `next` are in
/// the outbox (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayMark {
    pub stream: String,
    pub partition: i32,
    pub next: i64,
}

/// The outbox.
pub struct Outbox {
    conn: Mutex<Connection>,
    max_pending: u64,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS endpoints (
    id INTEGER PRIMARY KEY,
    subscription TEXT NOT NULL,
    protocol TEXT NOT NULL,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    unsubscribe_token TEXT NOT NULL UNIQUE,
    confirm_token_sha256 TEXT,
    confirm_expires_ms INTEGER,
    last_digest_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (subscription, protocol, address)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id),
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    done_ms INTEGER,
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (status, next_attempt_ms);
CREATE TABLE IF NOT EXISTS digest_items (
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id),
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE TABLE IF NOT EXISTS delivery_log (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_log_message ON delivery_log (endpoint_id, message_id);
CREATE TABLE IF NOT EXISTS replay_streams (
    stream TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS replay_marks (
    stream TEXT NOT NULL REFERENCES replay_streams(stream) ON DELETE CASCADE,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (stream, partition)
);
"#;

fn endpoint_from(r: &rusqlite::Row) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        id: r.get(0)?,
        subscription: r.get(1)?,
        protocol: r.get(2)?,
        address: r.get(3)?,
        state: r.get(4)?,
        unsubscribe_token: r.get(5)?,
        confirm_expires_ms: r.get(6)?,
        last_digest_ms: r.get(7)?,
    })
}
const ENDPOINT_COLS: &str =
    "id, subscription, protocol, address, state, unsubscribe_token, confirm_expires_ms, last_digest_ms";

fn message_from(r: &rusqlite::Row) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        message_id: r.get(2)?,
        kind: r.get(3)?,
        payload: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get(6)?,
        created_ms: r.get(7)?,
        next_attempt_ms: r.get(8)?,
        last_error: r.get(9)?,
    })
}
const MESSAGE_COLS: &str =
    "id, endpoint_id, message_id, kind, payload, status, attempts, created_ms, next_attempt_ms, last_error";

impl Outbox {
    /// Opens (creating) the outbox at `path`; at most `max_pending` undelivered messages plus
    /// digest items are kept.
    pub fn open(path: &Path, max_pending: u64) -> Result<Outbox> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| OutboxError::Io(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Freed content is overwritten: a sent confirmation's token does not linger in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox { conn: Mutex::new(conn), max_pending })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an endpoint in `state` unless it exists; returns it as stored.
    pub fn upsert_endpoint(
        &self,
        subscription: &str,
        protocol: &str,
        address: &str,
        state: &str,
        unsubscribe_token: &str,
        now_ms: i64,
    ) -> Result<EndpointRow> {
        let c = self.conn();
        c.execute(
            "INSERT OR IGNORE INTO endpoints (subscription, protocol, address, state, unsubscribe_token, last_digest_ms, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![subscription, protocol, address, state, unsubscribe_token, now_ms],
        )?;
        Ok(c.query_row(
            &format!(
                "SELECT {ENDPOINT_COLS} FROM endpoints WHERE subscription = ?1 AND protocol = ?2 AND address = ?3"
            ),
            params![subscription, protocol, address],
            endpoint_from,
        )?)
    }

    pub fn endpoint(&self, id: i64) -> Result<Option<EndpointRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1"), [id], endpoint_from)
            .optional()?)
    }

    pub fn endpoints(&self) -> Result<Vec<EndpointRow>> {
        let c = self.conn();
        let mut st = c.prepare(&format!("SELECT {ENDPOINT_COLS} FROM endpoints ORDER BY id"))?;
        let rows = st.query_map([], endpoint_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Records a new confirmation token (its SHA-256) for an endpoint and queues the
    /// confirmation message, in one transaction.
    pub fn start_confirmation(
        &self,
        endpoint_id: i64,
        token_sha256: &str,
        expires_ms: i64,
        message_id: &str,
        payload: &str,
        now_ms: i64,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE endpoints SET confirm_token_sha256 = ?2, confirm_expires_ms = ?3 WHERE id = ?1",
            params![endpoint_id, token_sha256, expires_ms],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO messages (endpoint_id, message_id, kind, payload, status, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            params![endpoint_id, message_id, KIND_CONFIRMATION, payload, now_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The endpoint whose confirmation token hashes to `token_sha256`, if any.
    pub fn endpoint_by_confirm_token(&self, token_sha256: &str) -> Result<Option<EndpointRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE confirm_token_sha256 = ?1"),
                [token_sha256],
                endpoint_from,
            )
            .optional()?)
    }

    pub fn endpoint_by_unsubscribe_token(&self, token: &str) -> Result<Option<EndpointRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE unsubscribe_token = ?1"),
                [token],
                endpoint_from,
            )
            .optional()?)
    }

    /// Sets an endpoint's state (confirming keeps the token's hash, so a second click says
    /// "already confirmed"; it starts the digest window); unsubscribing cancels its
    /// pending messages and digest items. Logged.
    pub fn set_state(&self, endpoint_id: i64, state: &str, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute("UPDATE endpoints SET state = ?2 WHERE id = ?1", params![endpoint_id, state])?;
        let outcome = match state {
            CONFIRMED => {
                tx.execute(
                    "UPDATE endpoints SET confirm_expires_ms = NULL, last_digest_ms = ?2 WHERE id = ?1",
                    params![endpoint_id, now_ms],
                )?;
                "confirmed"
            }
            UNSUBSCRIBED => {
                tx.execute(
                    "UPDATE messages SET status = 'cancelled', done_ms = ?2, last_error = 'unsubscribed'
                     WHERE endpoint_id = ?1 AND status = 'pending'",
                    params![endpoint_id, now_ms],
                )?;
                tx.execute("DELETE FROM digest_items WHERE endpoint_id = ?1", [endpoint_id])?;
                "unsubscribed"
            }
            _ => "state",
        };
        tx.execute(
            "INSERT INTO delivery_log (ts_ms, endpoint_id, message_id, attempt, outcome, detail) VALUES (?1, ?2, '', 0, ?3, ?4)",
            params![now_ms, endpoint_id, outcome, format!("endpoint is now {state}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Undelivered messages plus digest items.
    pub fn pending(&self) -> Result<u64> {
        let c = self.conn();
        let m: i64 = c.query_row("SELECT count(*) FROM messages WHERE status = 'pending'", [], |r| r.get(0))?;
        let d: i64 = c.query_row("SELECT count(*) FROM digest_items", [], |r| r.get(0))?;
        Ok((m + d) as u64)
    }

    /// Queues items in one transaction. Duplicates are skipped; past the outbox limit items
    /// are refused (and a `refused` line is written to the delivery log for each).
    pub fn enqueue(&self, items: &[NewItem], now_ms: i64) -> Result<Enqueued> {
        self.enqueue_marked(items, None, now_ms)
    }

    /// [`Outbox::enqueue`], and in the same transaction moves a followed stream's mark up to
    /// `mark.next` (never down). The stream must be followed ([`Outbox::follow_stream`]).
    pub fn enqueue_marked(&self, items: &[NewItem], mark: Option<&ReplayMark>, now_ms: i64) -> Result<Enqueued> {
        let mut pending = self.pending()?;
        let mut c = self.conn();
        let tx = c.transaction()?;
        if let Some(m) = mark {
            tx.execute(
                "INSERT INTO replay_marks (stream, partition, next_offset, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (stream, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset),
                 updated_ms = excluded.updated_ms",
                params![m.stream, m.partition, m.next, now_ms],
            )?;
        }
        let mut out = Enqueued::default();
        for item in items {
            let (endpoint_id, id) = match item {
                NewItem::Message { endpoint_id, message_id, .. } => (*endpoint_id, message_id),
                NewItem::DigestItem { endpoint_id, event_id, .. } => (*endpoint_id, event_id),
            };
            if pending >= self.max_pending {
                out.refused += 1;
                tx.execute(
                    "INSERT INTO delivery_log (ts_ms, endpoint_id, message_id, attempt, outcome, detail) VALUES (?1, ?2, ?3, 0, 'refused', ?4)",
                    params![now_ms, endpoint_id, id, format!("the outbox is full ({} undelivered)", self.max_pending)],
                )?;
                continue;
            }
            let n = match item {
                NewItem::Message { endpoint_id, message_id, kind, payload } => tx.execute(
                    "INSERT OR IGNORE INTO messages (endpoint_id, message_id, kind, payload, status, created_ms, next_attempt_ms)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
                    params![endpoint_id, message_id, kind, payload, now_ms],
                )?,
                NewItem::DigestItem { endpoint_id, event_id, event } => {
                    // An event already sent in an earlier digest is not queued again.
                    let sent: bool = tx
                        .query_row(
                            "SELECT 1 FROM delivery_log WHERE endpoint_id = ?1 AND message_id = ?2 AND outcome = 'digested' LIMIT 1",
                            params![endpoint_id, event_id],
                            |_| Ok(true),
                        )
                        .optional()?
                        .unwrap_or(false);
                    if sent {
                        0
                    } else {
                        tx.execute(
                            "INSERT OR IGNORE INTO digest_items (endpoint_id, event_id, event, created_ms) VALUES (?1, ?2, ?3, ?4)",
                            params![endpoint_id, event_id, event, now_ms],
                        )?
                    }
                }
            };
            if n == 0 {
                out.duplicates += 1;
            } else {
                out.inserted += 1;
                pending += 1;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The marks of a followed stream by partition; `None` when the stream is not followed
    /// (never seen, or forgotten).
    pub fn replay_marks(&self, stream: &str) -> Result<Option<BTreeMap<i32, i64>>> {
        let c = self.conn();
        let known =
            c.query_row("SELECT 1 FROM replay_streams WHERE stream = ?1", [stream], |_| Ok(())).optional()?.is_some();
        if !known {
            return Ok(None);
        }
        let mut st = c.prepare("SELECT partition, next_offset FROM replay_marks WHERE stream = ?1")?;
        let marks = st.query_map([stream], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(Some(marks))
    }

    /// Starts following a stream with these marks (where its chains end now: what landed
    /// before is history, not news). A partition without a mark starts at offset 0. Does
    /// nothing to a stream already followed.
    pub fn follow_stream(&self, stream: &str, marks: &BTreeMap<i32, i64>, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        if tx.execute(
            "INSERT OR IGNORE INTO replay_streams (stream, created_ms) VALUES (?1, ?2)",
            params![stream, now_ms],
        )? > 0
        {
            for (p, next) in marks {
                tx.execute(
                    "INSERT INTO replay_marks (stream, partition, next_offset, updated_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![stream, p, next, now_ms],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stops following every stream not in `keep` (nothing watches it in this run; if
    /// something does again later, it starts from where its chains end then). Returns how many.
    pub fn forget_streams_except(&self, keep: &[String]) -> Result<u64> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let all: Vec<String> = {
            let mut st = tx.prepare("SELECT stream FROM replay_streams")?;
            st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut n = 0;
        for s in all.iter().filter(|s| !keep.contains(s)) {
            tx.execute("DELETE FROM replay_marks WHERE stream = ?1", [s])?;
            n += tx.execute("DELETE FROM replay_streams WHERE stream = ?1", [s])? as u64;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Digest items waiting for an endpoint.
    pub fn digest_items(&self, endpoint_id: i64) -> Result<u64> {
        let n: i64 =
            self.conn()
                .query_row("SELECT count(*) FROM digest_items WHERE endpoint_id = ?1", [endpoint_id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Turns up to `max_events` digest items of an endpoint into one digest message (built by
    /// `build` from the events' JSON, oldest first: it returns the message id and payload), in
    /// one transaction; records the digest time. Returns the message id, or `None` when no
    /// item was waiting.
    pub fn close_digest(
        &self,
        endpoint_id: i64,
        max_events: u32,
        now_ms: i64,
        build: impl FnOnce(&[(String, String)], i64) -> (String, String),
    ) -> Result<Option<String>> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let since: i64 =
            tx.query_row("SELECT last_digest_ms FROM endpoints WHERE id = ?1", [endpoint_id], |r| r.get(0))?;
        let items: Vec<(String, String)> = {
            let mut st = tx.prepare(
                "SELECT event_id, event FROM digest_items WHERE endpoint_id = ?1 ORDER BY created_ms, event_id LIMIT ?2",
            )?;
            st.query_map(params![endpoint_id, max_events], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.execute("UPDATE endpoints SET last_digest_ms = ?2 WHERE id = ?1", params![endpoint_id, now_ms])?;
        if items.is_empty() {
            tx.commit()?;
            return Ok(None);
        }
        let (message_id, payload) = build(&items, since);
        tx.execute(
            "INSERT OR IGNORE INTO messages (endpoint_id, message_id, kind, payload, status, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            params![endpoint_id, message_id, KIND_DIGEST, payload, now_ms],
        )?;
        for (event_id, _) in &items {
            tx.execute(
                "DELETE FROM digest_items WHERE endpoint_id = ?1 AND event_id = ?2",
                params![endpoint_id, event_id],
            )?;
            tx.execute(
                "INSERT INTO delivery_log (ts_ms, endpoint_id, message_id, attempt, outcome, detail) VALUES (?1, ?2, ?3, 0, 'digested', ?4)",
                params![now_ms, endpoint_id, event_id, format!("in digest {message_id}")],
            )?;
        }
        tx.commit()?;
        Ok(Some(message_id))
    }

    /// Pending messages due at `now_ms` (oldest first), skipping `busy` ones, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize, busy: &HashSet<i64>) -> Result<Vec<MessageRow>> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2"
        ))?;
        let rows = st
            .query_map(params![now_ms, (limit + busy.len()) as i64], message_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().filter(|m| !busy.contains(&m.id)).take(limit).collect())
    }

    /// The earliest next attempt of a pending message.
    pub fn next_due_ms(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row("SELECT min(next_attempt_ms) FROM messages WHERE status = 'pending'", [], |r| r.get(0))?)
    }

    pub fn message(&self, id: i64) -> Result<Option<MessageRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE id = ?1"), [id], message_from)
            .optional()?)
    }

    /// Messages of an endpoint (any status), oldest first.
    pub fn messages_of(&self, endpoint_id: i64) -> Result<Vec<MessageRow>> {
        let c = self.conn();
        let mut st = c.prepare(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE endpoint_id = ?1 ORDER BY id"))?;
        let rows = st.query_map([endpoint_id], message_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn log_tx(
        tx: &rusqlite::Transaction,
        m: &MessageRow,
        attempt: u32,
        outcome: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO delivery_log (ts_ms, endpoint_id, message_id, attempt, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![now_ms, m.endpoint_id, m.message_id, attempt, outcome, detail],
        )?;
        Ok(())
    }

    /// Records a successful attempt.
    pub fn delivered(&self, m: &MessageRow, attempt: u32, detail: &str, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        // A confirmation's token is not kept once sent.
        tx.execute(
            "UPDATE messages SET status = 'delivered', attempts = ?2, done_ms = ?3, last_error = NULL,
             payload = CASE kind WHEN 'confirmation' THEN '{}' ELSE payload END WHERE id = ?1",
            params![m.id, attempt, now_ms],
        )?;
        Self::log_tx(&tx, m, attempt, "delivered", detail, now_ms)?;
        tx.commit()?;
        if m.kind == KIND_CONFIRMATION {
            // Move the overwrite into the database file and empty the WAL, where the old page
            // (with the token) still was. Best effort: a concurrent reader may delay it.
            let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(())
    }

    /// Records a failed attempt to retry at `retry_at_ms`.
    pub fn failed(&self, m: &MessageRow, attempt: u32, error: &str, retry_at_ms: i64, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE messages SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
            params![m.id, attempt, retry_at_ms, error],
        )?;
        Self::log_tx(&tx, m, attempt, "failed", error, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Moves a message to the dead-letter store with its last error.
    pub fn dead(&self, m: &MessageRow, attempt: u32, error: &str, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE messages SET status = 'dead', attempts = ?2, last_error = ?3, done_ms = ?4 WHERE id = ?1",
            params![m.id, attempt, error, now_ms],
        )?;
        Self::log_tx(&tx, m, attempt, "dead", error, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Postpones a message without counting an attempt (rate limit).
    pub fn defer(&self, id: i64, until_ms: i64) -> Result<()> {
        self.conn().execute("UPDATE messages SET next_attempt_ms = ?2 WHERE id = ?1", params![id, until_ms])?;
        Ok(())
    }

    /// Cancels a message that can no longer be sent (endpoint gone or unsubscribed).
    pub fn cancel(&self, m: &MessageRow, reason: &str, now_ms: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE messages SET status = 'cancelled', last_error = ?2, done_ms = ?3 WHERE id = ?1",
            params![m.id, reason, now_ms],
        )?;
        Self::log_tx(&tx, m, m.attempts, "cancelled", reason, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Dead-lettered messages, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<MessageRow>> {
        let c = self.conn();
        let mut st = c.prepare(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE status = 'dead' ORDER BY id"))?;
        let rows = st.query_map([], message_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Puts dead-lettered messages (`ids`, or all) back to pending with a fresh attempt count
    /// and age. Returns how many.
    pub fn redrive(&self, ids: Option<&[i64]>, now_ms: i64) -> Result<u64> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        let targets: Vec<i64> = match ids {
            Some(ids) => ids.to_vec(),
            None => {
                let mut st = tx.prepare("SELECT id FROM messages WHERE status = 'dead'")?;
                st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        let mut n = 0;
        for id in targets {
            let changed = tx.execute(
                "UPDATE messages SET status = 'pending', attempts = 0, created_ms = ?2, next_attempt_ms = ?2, done_ms = NULL
                 WHERE id = ?1 AND status = 'dead'",
                params![id, now_ms],
            )?;
            if changed > 0 {
                tx.execute(
                    "INSERT INTO delivery_log (ts_ms, endpoint_id, message_id, attempt, outcome, detail)
                     SELECT ?2, endpoint_id, message_id, 0, 'redriven', 'back to pending' FROM messages WHERE id = ?1",
                    params![id, now_ms],
                )?;
            }
            n += changed as u64;
        }
        tx.commit()?;
        Ok(n)
    }

    /// The last `limit` lines of the delivery log, newest first.
    pub fn log(&self, limit: usize) -> Result<Vec<LogRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT l.ts_ms, e.subscription, e.protocol, e.address, l.message_id, l.attempt, l.outcome, l.detail
             FROM delivery_log l JOIN endpoints e ON e.id = l.endpoint_id ORDER BY l.id DESC LIMIT ?1",
        )?;
        let rows = st
            .query_map([limit as i64], |r| {
                Ok(LogRow {
                    ts_ms: r.get(0)?,
                    subscription: r.get(1)?,
                    protocol: r.get(2)?,
                    address: r.get(3)?,
                    message_id: r.get(4)?,
                    attempt: r.get(5)?,
                    outcome: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Keeps the delivery log at `max_rows` and forgets finished messages older than
    /// `keep_done_ms` (their ids stay in the log, which is what digest de-duplication reads).
    pub fn prune(&self, max_rows: u64, keep_done_ms: i64, now_ms: i64) -> Result<()> {
        let c = self.conn();
        c.execute("DELETE FROM delivery_log WHERE id <= (SELECT max(id) FROM delivery_log) - ?1", [max_rows as i64])?;
        c.execute(
            "DELETE FROM messages WHERE status IN ('delivered', 'cancelled') AND done_ms < ?1",
            [now_ms - keep_done_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ep: i64, id: &str) -> NewItem {
        NewItem::Message { endpoint_id: ep, message_id: id.into(), kind: KIND_EVENT, payload: "[]".into() }
    }

    #[test]
    fn queues_once_refuses_when_full_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        {
            let o = Outbox::open(&path, 3).unwrap();
            let ep = o.upsert_endpoint("s", "webhook", "http://x", CONFIRMED, "tok1", 0).unwrap();
            let again = o.upsert_endpoint("s", "webhook", "http://x", PENDING_CONFIRMATION, "tok2", 5).unwrap();
            assert_eq!(again, ep, "an existing endpoint keeps its state and token");
            let r = o.enqueue(&[msg(ep.id, "a"), msg(ep.id, "a"), msg(ep.id, "b")], 10).unwrap();
            assert_eq!(r, Enqueued { inserted: 2, duplicates: 1, refused: 0 });
            let r = o.enqueue(&[msg(ep.id, "c"), msg(ep.id, "d")], 10).unwrap();
            assert_eq!(r, Enqueued { inserted: 1, duplicates: 0, refused: 1 });
            assert!(o.log(10).unwrap().iter().any(|l| l.outcome == "refused" && l.message_id == "d"));
        }
        let o = Outbox::open(&path, 3).unwrap();
        let due = o.due(10, 10, &HashSet::new()).unwrap();
        assert_eq!(due.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        o.failed(&due[0], 1, "connection refused", 100, 11).unwrap();
        o.delivered(&due[1], 1, "200", 11).unwrap();
        o.dead(&due[2], 1, "HTTP 500", 11).unwrap();
        assert_eq!(o.due(50, 10, &HashSet::new()).unwrap().len(), 0);
        assert_eq!(o.due(100, 10, &HashSet::new()).unwrap()[0].last_error.as_deref(), Some("connection refused"));
        let dead = o.dead_letters().unwrap();
        assert_eq!((dead.len(), dead[0].last_error.as_deref()), (1, Some("HTTP 500")));
        assert_eq!(o.redrive(None, 200).unwrap(), 1);
        let back = o.message(dead[0].id).unwrap().unwrap();
        assert_eq!((back.status.as_str(), back.attempts, back.created_ms), ("pending", 0, 200));
        assert!(o.dead_letters().unwrap().is_empty());
    }

    #[test]
    fn replay_marks_move_with_the_events_they_cover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let o = Outbox::open(&path, 100).unwrap();
        let ep = o.upsert_endpoint("s", "webhook", "http://x", CONFIRMED, "t", 0).unwrap();
        assert_eq!(o.replay_marks("lake").unwrap(), None);
        o.follow_stream("lake", &BTreeMap::from([(0, 40), (1, 7)]), 1).unwrap();
        o.follow_stream("lake", &BTreeMap::from([(0, 0)]), 2).unwrap(); // already followed: kept
        assert_eq!(o.replay_marks("lake").unwrap(), Some(BTreeMap::from([(0, 40), (1, 7)])));
        let mark = |p, next| ReplayMark { stream: "lake".into(), partition: p, next };
        let r = o.enqueue_marked(&[msg(ep.id, "a"), msg(ep.id, "b")], Some(&mark(0, 60)), 3).unwrap();
        assert_eq!(r.inserted, 2);
        // A replay of what the live path already queued: duplicates, the mark still moves.
        let r = o.enqueue_marked(&[msg(ep.id, "b")], Some(&mark(2, 5)), 4).unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 1));
        o.enqueue_marked(&[], Some(&mark(0, 50)), 5).unwrap(); // never backwards
        drop(o);
        let o = Outbox::open(&path, 100).unwrap();
        assert_eq!(o.replay_marks("lake").unwrap(), Some(BTreeMap::from([(0, 60), (1, 7), (2, 5)])));
        o.follow_stream("other", &BTreeMap::new(), 6).unwrap();
        assert_eq!(o.forget_streams_except(&["other".to_string()]).unwrap(), 1);
        assert_eq!(o.replay_marks("lake").unwrap(), None);
        assert_eq!(o.replay_marks("other").unwrap(), Some(BTreeMap::new()));
    }

    #[test]
    fn digests_take_items_once() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("o.sqlite"), 100).unwrap();
        let ep = o.upsert_endpoint("s", "email", "a@b.c", CONFIRMED, "t", 0).unwrap();
        let item =
            |id: &str| NewItem::DigestItem { endpoint_id: ep.id, event_id: id.into(), event: format!("\"{id}\"") };
        o.enqueue(&[item("e1"), item("e2"), item("e3")], 1).unwrap();
        let built = o
            .close_digest(ep.id, 2, 10, |items, since| {
                assert_eq!(since, 0);
                assert_eq!(items.len(), 2);
                ("dig_a".into(), "[]".into())
            })
            .unwrap();
        assert_eq!(built.as_deref(), Some("dig_a"));
        assert_eq!(o.digest_items(ep.id).unwrap(), 1);
        // An event already digested is not queued again (a rewritten object).
        let r = o.enqueue(&[item("e1")], 11).unwrap();
        assert_eq!(r.duplicates, 1);
        let m = o.close_digest(ep.id, 10, 20, |items, since| {
            assert_eq!((items.len(), since), (1, 10));
            ("dig_b".into(), "[]".into())
        });
        assert_eq!(m.unwrap().as_deref(), Some("dig_b"));
        assert_eq!(o.close_digest(ep.id, 10, 30, |_, _| unreachable!()).unwrap(), None);
        // Unsubscribing cancels what is pending.
        o.set_state(ep.id, UNSUBSCRIBED, 40).unwrap();
        assert!(o.messages_of(ep.id).unwrap().iter().all(|m| m.status == "cancelled"));
    }
}
