//! What a message looks like on each protocol. Pure: events in, bodies out.
//!
//! Every message — one event, or a digest of the events of an interval — is first an
//! [`Envelope`]: its `id` (the event's id, or a digest id derived from the ids it contains), the
//! subscription, totals, the events, and the endpoint's unsubscribe link. Webhooks and
//! `email-json` receive the envelope as JSON; `email` receives text and HTML renderings of it;
//! Slack and Discord receive a short summary in their incoming-webhook formats.

use crate::event::{Event, OBJECT_CREATED, SCHEMA_CHANGED, rfc3339};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// A message as webhooks and `email-json` receive it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// De-duplication id: equal ids are the same message, however often delivered.
    pub id: String,
    /// `event` (one event) or `digest` (what landed during an interval).
    pub kind: String,
    /// The `AlertSubscription`'s name.
    pub subscription: String,
    /// Digests only: the interval covered, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    pub totals: Totals,
    pub events: Vec<Event>,
    /// Opens a page that unsubscribes this endpoint.
    pub unsubscribe_url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: String,
    pub to: String,
}

/// Sums over a message's events.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub events: u64,
    pub objects: u64,
    pub rows: u64,
    pub bytes: u64,
    pub schema_changes: u64,
}

/// Totals of `events`.
pub fn totals(events: &[Event]) -> Totals {
    let mut t = Totals { events: events.len() as u64, ..Totals::default() };
    for e in events {
        match e.event_type.as_str() {
            OBJECT_CREATED => {
                t.objects += 1;
                t.rows += e.rows();
                t.bytes += e.bytes();
            }
            SCHEMA_CHANGED => t.schema_changes += 1,
            _ => {}
        }
    }
    t
}

/// The envelope of a message.
pub fn envelope(
    id: &str,
    subscription: &str,
    events: Vec<Event>,
    window_ms: Option<(i64, i64)>,
    unsubscribe_url: &str,
) -> Envelope {
    Envelope {
        id: id.to_string(),
        kind: if window_ms.is_some() { "digest" } else { "event" }.into(),
        subscription: subscription.to_string(),
        window: window_ms.map(|(a, b)| Window { from: rfc3339(a), to: rfc3339(b) }),
        totals: totals(&events),
        events,
        unsubscribe_url: unsubscribe_url.to_string(),
    }
}

/// An email's subject and bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailBody {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line describing an event.
fn line(e: &Event) -> String {
    match (e.event_type.as_str(), e.key(), &e.schema) {
        (OBJECT_CREATED, Some(key), _) => {
            let bucket = e.records.first().map(|r| r.s3.bucket.name.as_str()).unwrap_or("");
            format!("s3://{bucket}/{key} — {} rows, {}", e.rows(), human_bytes(e.bytes()))
        }
        (SCHEMA_CHANGED, _, Some(s)) => {
            let cols = |cs: &[crate::event::Column]| {
                cs.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect::<Vec<_>>().join(", ")
            };
            let mut l = format!("table {}.{} schema version {}", s.database, s.table, s.version);
            if !s.added_columns.is_empty() {
                let _ = write!(l, "; added: {}", cols(&s.added_columns));
            }
            if !s.removed_columns.is_empty() {
                let _ = write!(l, "; removed: {}", cols(&s.removed_columns));
            }
            if !s.changed_columns.is_empty() {
                let _ = write!(l, "; changed: {}", cols(&s.changed_columns));
            }
            l
        }
        _ => format!("{} {}", e.event_type, e.id),
    }
}

fn summary(env: &Envelope) -> String {
    let t = &env.totals;
    let mut parts = Vec::new();
    if t.objects > 0 {
        parts.push(format!(
            "{} new object{} ({} rows, {})",
            t.objects,
            if t.objects == 1 { "" } else { "s" },
            t.rows,
            human_bytes(t.bytes)
        ));
    }
    if t.schema_changes > 0 {
        parts.push(format!("{} schema change{}", t.schema_changes, if t.schema_changes == 1 { "" } else { "s" }));
    }
    if parts.is_empty() { format!("{} events", t.events) } else { parts.join(", ") }
}

/// The `email` rendering of a message: at most `max_listed` events listed, then a count of
/// the rest (the totals always cover all).
pub fn email(env: &Envelope, max_listed: usize) -> EmailBody {
    let subject = match &env.window {
        Some(_) => format!("[ticklake] {}: {}", env.subscription, summary(env)),
        None => match env.events.first() {
            Some(e) if e.event_type == OBJECT_CREATED => {
                format!("[ticklake] {}: new object {}", env.subscription, e.key().unwrap_or(""))
            }
            _ => format!("[ticklake] {}: {}", env.subscription, summary(env)),
        },
    };
    let listed = &env.events[..env.events.len().min(max_listed)];
    let rest = env.events.len() - listed.len();
    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html><html><body style=\"font-family: sans-serif\">\n");
    match &env.window {
        Some(w) => {
            let _ = writeln!(text, "What landed for subscription {} from {} to {}:\n", env.subscription, w.from, w.to);
            let _ = writeln!(
                html,
                "<p>What landed for subscription <b>{}</b> from {} to {}:</p>",
                html_escape(&env.subscription),
                html_escape(&w.from),
                html_escape(&w.to)
            );
        }
        None => {
            let _ = writeln!(text, "New for subscription {}:\n", env.subscription);
            let _ = writeln!(html, "<p>New for subscription <b>{}</b>:</p>", html_escape(&env.subscription));
        }
    }
    html.push_str("<ul>\n");
    for e in listed {
        let l = line(e);
        let _ = writeln!(text, "  - {l}");
        let _ = writeln!(html, "<li>{}</li>", html_escape(&l));
    }
    if rest > 0 {
        let _ = writeln!(text, "  … and {rest} more");
        let _ = writeln!(html, "<li>… and {rest} more</li>");
    }
    html.push_str("</ul>\n");
    let t = &env.totals;
    let total_line = format!(
        "Totals: {} objects, {} rows, {}, {} schema changes.",
        t.objects,
        t.rows,
        human_bytes(t.bytes),
        t.schema_changes
    );
    let _ = writeln!(text, "\n{total_line}\n");
    let _ = writeln!(html, "<p>{}</p>", html_escape(&total_line));
    let _ = writeln!(text, "Message id: {}", env.id);
    let _ = writeln!(text, "Unsubscribe: {}", env.unsubscribe_url);
    let _ = writeln!(
        html,
        "<p style=\"color:#666;font-size:small\">Message id: {}<br><a href=\"{}\">Unsubscribe</a></p>\n</body></html>",
        html_escape(&env.id),
        html_escape(&env.unsubscribe_url)
    );
    EmailBody { subject, text, html }
}

/// The confirmation email of a new email endpoint.
pub fn confirmation_email(subscription: &str, address: &str, confirm_url: &str, expires_at: &str) -> EmailBody {
    let subject = format!("[ticklake] Confirm your subscription to {subscription}");
    let text = format!(
        "You ({address}) were subscribed to ticklake notifications \"{subscription}\".\n\n\
         To receive them, confirm by opening this link (valid until {expires_at}):\n\n{confirm_url}\n\n\
         If you did not expect this, ignore this email: nothing will be sent to you.\n"
    );
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family: sans-serif\">\n\
         <p>You ({}) were subscribed to ticklake notifications <b>{}</b>.</p>\n\
         <p>To receive them, <a href=\"{}\">confirm the subscription</a> (valid until {}).</p>\n\
         <p style=\"color:#666;font-size:small\">If you did not expect this, ignore this email: nothing will be sent to you.</p>\n\
         </body></html>",
        html_escape(address),
        html_escape(subscription),
        html_escape(confirm_url),
        html_escape(expires_at)
    );
    EmailBody { subject, text, html }
}

/// A Slack incoming-webhook body (`text` with mrkdwn).
pub fn slack(env: &Envelope, max_listed: usize) -> serde_json::Value {
    let mut text = format!("*ticklake {}*: {}\n", env.subscription, summary(env));
    for e in env.events.iter().take(max_listed) {
        let _ = writeln!(text, "• {}", line(e));
    }
    if env.events.len() > max_listed {
        let _ = writeln!(text, "… and {} more", env.events.len() - max_listed);
    }
    let _ = write!(text, "<{}|Unsubscribe>", env.unsubscribe_url);
    serde_json::json!({ "text": text })
}

/// A Discord incoming-webhook body (`content`, at most 2000 characters).
pub fn discord(env: &Envelope, max_listed: usize) -> serde_json::Value {
    let mut content = format!("**ticklake {}**: {}\n", env.subscription, summary(env));
    let footer = format!("Unsubscribe: <{}>", env.unsubscribe_url);
    let mut shown = 0;
    for e in env.events.iter().take(max_listed) {
        let l = format!("- {}\n", line(e));
        if content.chars().count() + l.chars().count() + footer.chars().count() + 40 > 2000 {
            break;
        }
        content.push_str(&l);
        shown += 1;
    }
    if env.events.len() > shown {
        let _ = writeln!(content, "… and {} more", env.events.len() - shown);
    }
    content.push_str(&footer);
    serde_json::json!({ "content": content, "username": "ticklake", "allowed_mentions": { "parse": [] } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ObjectWritten, object_created};

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                object_created(&ObjectWritten {
                    bucket: "demo".into(),
                    region: "local".into(),
                    sink: "s".into(),
                    topic: "t".into(),
                    partition: 0,
                    first_offset: i as i64 * 10,
                    last_offset: i as i64 * 10 + 9,
                    key: format!("ticks/<k{i}>.parquet"),
                    rows: 10,
                    bytes: 2048,
                    dead_letter: false,
                    time_ms: 0,
                })
            })
            .collect()
    }

    #[test]
    fn a_digest_lists_what_landed_with_totals_and_an_unsubscribe_link() {
        let env = envelope("dig_1", "alerts", events(3), Some((0, 60_000)), "http://h/notify/unsubscribe?token=abc");
        assert_eq!(env.totals, Totals { events: 3, objects: 3, rows: 30, bytes: 6144, schema_changes: 0 });
        let m = email(&env, 2);
        assert_eq!(m.subject, "[ticklake] alerts: 3 new objects (30 rows, 6.0 KiB)");
        assert!(m.text.contains("s3://demo/ticks/<k0>.parquet — 10 rows, 2.0 KiB"), "{}", m.text);
        assert!(m.text.contains("s3://demo/ticks/<k1>.parquet"));
        assert!(!m.text.contains("<k2>"), "only two listed");
        assert!(m.text.contains("… and 1 more"));
        assert!(m.text.contains("Totals: 3 objects, 30 rows, 6.0 KiB"));
        assert!(m.text.contains("Unsubscribe: http://h/notify/unsubscribe?token=abc"));
        assert!(m.html.contains("ticks/&lt;k0&gt;.parquet"), "escaped: {}", m.html);
        assert!(m.html.contains("href=\"http://h/notify/unsubscribe?token=abc\""));
        assert!(m.html.contains("1970-01-01T00:01:00.000Z"));
    }

    #[test]
    fn chat_formats_stay_within_their_limits() {
        let env = envelope("dig_2", "alerts", events(500), Some((0, 1)), "http://h/u");
        let d = discord(&env, 1000);
        let c = d["content"].as_str().unwrap();
        assert!(c.chars().count() <= 2000, "{}", c.len());
        assert!(c.contains("more") && c.contains("Unsubscribe: <http://h/u>"));
        let s = slack(&env, 5);
        assert!(s["text"].as_str().unwrap().contains("… and 495 more"));
        let single = envelope("evt_1", "alerts", events(1), None, "http://h/u");
        assert_eq!(single.kind, "event");
        assert!(email(&single, 10).subject.contains("new object ticks/<k0>.parquet"));
    }

    #[test]
    fn bytes_read_like_a_person_would_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
