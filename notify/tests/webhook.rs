//! The notifier against a real HTTP receiver (an axum server on loopback): signatures,
//! filter policies, Slack/Discord formats, outages, dead letters and redrive, rate limits,
//! refused targets, schema-change events. No external service needed.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;
use ticklake_notify::event::{Column, SchemaChange};
use ticklake_notify::http::verify;
use ticklake_notify::outbox::{Outbox, UNSUBSCRIBED};
use ticklake_notify::render::Envelope;
use tokio::sync::watch;

const SECRET: &str = "whsec-test-0123456789";

fn envelope(h: &Hit) -> Envelope {
    serde_json::from_slice(&h.body).expect("the body is an envelope")
}

fn statuses(outbox: &Outbox) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ep in outbox.endpoints().unwrap() {
        for m in outbox.messages_of(ep.id).unwrap() {
            *out.entry(m.status).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_filtered_events_arrive_once_and_chat_formats_are_right() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "hooks",
        &format!(
            r#"
watch: {{sinkRef: lake}}
filterPolicy: '{{"partition": [0], "rows": [{{"numeric": [">", 0]}}]}}'
digestIntervalSeconds: 0
endpoints:
  - {{protocol: webhook, address: "{}", signingSecretRef: {{name: hook-key, key: hmac}}}}
  - {{protocol: slack, address: "{}"}}
  - {{protocol: discord, address: "{}"}}
"#,
            rx.url("/hook"),
            rx.url("/slack"),
            rx.url("/discord")
        ),
        &[("TICKLAKE_SECRET_HOOK_KEY_HMAC", SECRET)],
    );
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(config(), vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    let mut want = BTreeSet::new();
    for i in 0..5 {
        let e = object(0, i, 10 + i as u64);
        want.insert(e.id.clone());
        n.handle.publish(e).await.unwrap();
        n.handle.publish(object(1, i, 10)).await.unwrap(); // filtered out: partition 1
    }
    n.handle.publish(object(0, 9, 0)).await.unwrap(); // filtered out: no rows
    n.handle.publish(object(0, 0, 10)).await.unwrap(); // the same object again (a rewrite)
    eventually(20, "15 requests (5 events × 3 endpoints)", || async { (rx.hits().len() >= 15).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 15, "nothing more, nothing twice");

    let hooks: Vec<&Hit> = hits.iter().filter(|h| h.headers.contains_key("x-ticklake-message-kind")).collect();
    assert_eq!(hooks.len(), 5);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut got = BTreeSet::new();
    for h in &hooks {
        let sig = h.headers["x-ticklake-signature"].to_str().unwrap();
        assert!(verify(SECRET.as_bytes(), sig, &h.body, now, 300), "signature verifies: {sig}");
        assert!(!verify(b"wrong-key", sig, &h.body, now, 300));
        let env = envelope(h);
        assert_eq!(h.headers["x-ticklake-message-id"].to_str().unwrap(), env.id);
        assert_eq!(env.kind, "event");
        assert_eq!(env.events.len(), 1);
        assert_eq!(env.events[0].id, env.id, "an event message's id is the event's id");
        assert_eq!(env.events[0].attributes["partition"], 0);
        assert!(env.unsubscribe_url.contains("/notify/unsubscribe?token="));
        got.insert(env.id);
    }
    assert_eq!(got, want, "each matching event once");

    let slack: Vec<serde_json::Value> = hits
        .iter()
        .filter(|h| !h.headers.contains_key("x-ticklake-message-kind"))
        .map(|h| serde_json::from_slice(&h.body).unwrap())
        .collect();
    assert_eq!(slack.iter().filter(|v| v["text"].as_str().is_some_and(|t| t.contains("*ticklake hooks*"))).count(), 5);
    assert_eq!(
        slack.iter().filter(|v| v["content"].as_str().is_some_and(|t| t.contains("**ticklake hooks**"))).count(),
        5
    );
    assert!(
        hits.iter()
            .filter(|h| !h.headers.contains_key("x-ticklake-message-kind"))
            .all(|h| !h.headers.contains_key("x-ticklake-signature"))
    );
    assert_eq!(statuses(&n.outbox), BTreeMap::from([("delivered".to_string(), 15)]));

    // Unsubscribing through the link in the body stops delivery to that endpoint.
    let url = envelope(hooks[0]).unsubscribe_url;
    let (status, page) = get(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Unsubscribed"));
    let ep = n.outbox.endpoints().unwrap().into_iter().find(|e| e.protocol == "webhook").unwrap();
    assert_eq!(ep.state, UNSUBSCRIBED);
    n.handle.publish(object(0, 20, 5)).await.unwrap();
    eventually(10, "slack and discord get the next event", || async { (rx.hits().len() >= 17).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.hits().iter().filter(|h| h.headers.contains_key("x-ticklake-message-kind")).count(),
        5,
        "the webhook got nothing more"
    );
    let (status, _) = get(&format!("http://{}/notify/unsubscribe?token=00ff", n.http_addr)).await;
    assert_eq!(status, 404, "an unknown token");
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_are_refused_unless_allowed() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "refused",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nendpoints: [{{protocol: webhook, address: \"{}\"}}]",
            rx.url("/h")
        ),
        &[],
    );
    let cfg = ticklake_notify::NotifierConfig { allow_loopback_targets: false, ..config() };
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(cfg, vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    n.handle.publish(object(0, 0, 1)).await.unwrap();
    let dead = eventually(10, "a dead letter", || async {
        let d = n.outbox.dead_letters().unwrap();
        (!d.is_empty()).then_some(d)
    })
    .await;
    let err = dead[0].last_error.clone().unwrap();
    assert!(err.contains("loopback") && err.contains("allowLoopbackTargets"), "{err}");
    assert_eq!(dead[0].attempts, 1, "a refused target is not retried");
    assert!(rx.hits().is_empty(), "nothing was sent");
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_gets_each_event_exactly_once() {
    // Take a port, then close it: the receiver is down.
    let down = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let addr = down.addr;
    down.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "outage",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nendpoints: [{{protocol: webhook, address: \"http://{addr}/h\"}}]"
        ),
        &[],
    );
    let mut cfg = config();
    cfg.retry.webhook = fast(200);
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(cfg, vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    let mut want = BTreeSet::new();
    for i in 0..20 {
        let e = object(i % 3, i as i64, 7);
        want.insert(e.id.clone());
        n.handle.publish(e).await.unwrap();
    }
    eventually(20, "failed attempts while the receiver is down", || async {
        let failed = n.outbox.log(1000).unwrap().iter().filter(|l| l.outcome == "failed").count();
        (failed >= 40).then_some(())
    })
    .await;
    assert!(
        n.outbox
            .log(1000)
            .unwrap()
            .iter()
            .any(|l| l.detail.contains("Connection refused") || l.detail.contains("connecting"))
    );
    let up = Receiver::start(addr).await;
    eventually(30, "every event delivered", || async {
        (statuses(&n.outbox).get("delivered") == Some(&20)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids: Vec<String> = up.hits().iter().map(|h| envelope(h).id).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, want, "each event arrived");
    assert_eq!(ids.len(), 20, "and none twice");
    assert_eq!(statuses(&n.outbox), BTreeMap::from([("delivered".to_string(), 20)]));
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_after_the_attempt_limit_then_redrive_delivers() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    rx.status.store(503, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "dlq",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nendpoints: [{{protocol: webhook, address: \"{}\"}}]",
            rx.url("/h")
        ),
        &[],
    );
    let mut cfg = config();
    cfg.retry.webhook = fast(3);
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(cfg, vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    n.handle.publish(object(0, 1, 1)).await.unwrap();
    n.handle.publish(object(0, 2, 1)).await.unwrap();
    let dead = eventually(20, "two dead letters", || async {
        let d = n.outbox.dead_letters().unwrap();
        (d.len() == 2).then_some(d)
    })
    .await;
    for d in &dead {
        assert_eq!(d.attempts, 3);
        let e = d.last_error.as_deref().unwrap();
        assert!(e.contains("gave up after 3 attempts") && e.contains("HTTP 503"), "{e}");
    }
    assert_eq!(rx.hits().len(), 6, "three attempts each");
    let attempts: BTreeSet<String> =
        rx.hits().iter().map(|h| h.headers["x-ticklake-attempt"].to_str().unwrap().to_string()).collect();
    assert_eq!(attempts, BTreeSet::from(["1".into(), "2".into(), "3".into()]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 6, "dead letters are not retried");

    rx.status.store(200, Ordering::SeqCst);
    assert_eq!(n.outbox.redrive(None, ticklake_notify::notifier::now_ms()).unwrap(), 2);
    eventually(10, "redriven messages delivered", || async {
        (statuses(&n.outbox).get("delivered") == Some(&2)).then_some(())
    })
    .await;
    assert_eq!(rx.hits().len(), 8);
    assert!(n.outbox.dead_letters().unwrap().is_empty());
    assert!(n.outbox.log(100).unwrap().iter().any(|l| l.outcome == "redriven"));
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_delay_without_dropping() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "slow",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nrateLimitPerMinute: 2\nendpoints: [{{protocol: webhook, address: \"{}\"}}]",
            rx.url("/h")
        ),
        &[],
    );
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(config(), vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    for i in 0..4 {
        n.handle.publish(object(0, i, 1)).await.unwrap();
    }
    eventually(10, "the first two", || async { (rx.hits().len() >= 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.hits().len(), 2, "two a minute");
    assert_eq!(statuses(&n.outbox).get("pending"), Some(&2), "the others wait");
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_published_directly_are_delivered() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "schemas",
        &format!(
            "watch: {{bucket: demo, prefix: ticks/}}\ndigestIntervalSeconds: 0\nfilterPolicy: '{{\"eventType\": [\"table.schema_changed\"]}}'\nendpoints: [{{protocol: webhook, address: \"{}\"}}]",
            rx.url("/h")
        ),
        &[],
    );
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(config(), vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    n.handle.publish(object(0, 0, 1)).await.unwrap(); // an object: filtered out
    // What the local crawler will call.
    n.handle
        .publish_schema_changed(SchemaChange {
            database: "ticklake".into(),
            table: "ticks".into(),
            location: "s3://demo/ticks/".into(),
            version: 2,
            added_columns: vec![Column { name: "venue".into(), data_type: "string".into() }],
            removed_columns: vec![],
            changed_columns: vec![],
        })
        .await
        .unwrap();
    let hit = eventually(10, "the schema change", || async { rx.hits().first().cloned() }).await;
    let env = envelope(&hit);
    assert_eq!(env.events[0].event_type, "table.schema_changed");
    assert_eq!(env.events[0].schema.as_ref().unwrap().added_columns[0].name, "venue");
    assert_eq!(env.totals.schema_changes, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), 1, "the object event was filtered out");
    stop.send(true).unwrap();
    n.stopped().await;
}
