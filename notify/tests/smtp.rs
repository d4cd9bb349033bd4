//! The notifier against a real SMTP server (Mailpit, started by scripts/test.sh, which sets
//! TICKLAKE_TEST_SMTP_ADDR and TICKLAKE_TEST_MAILPIT_API): double opt-in, digests with totals,
//! unsubscribe links, expired confirmation links, email-json with a filter policy.
//! `cargo test --release -p ticklake-notify --features smtp-tests --test smtp`
#![cfg(feature = "smtp-tests")]

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::Duration;
use ticklake_notify::NotifierConfig;
use ticklake_notify::config::{SmtpConfig, SmtpTls};
use ticklake_notify::render::Envelope;
use tokio::sync::watch;

fn smtp_config() -> NotifierConfig {
    let (host, port) = smtp_addr();
    NotifierConfig {
        smtp: Some(SmtpConfig {
            host,
            port: Some(port),
            tls: SmtpTls::None,
            from: "ticklake <ticklake@example.com>".into(),
            username: None,
            password_env: None,
            timeout_ms: 10_000,
        }),
        ..config()
    }
}

async fn mails_where(address: &str, n: usize, what: &str, pred: impl Fn(&Mail) -> bool) -> Vec<Mail> {
    eventually(30, what, || async {
        let m: Vec<Mail> = mails_to(address).await.into_iter().filter(|m| pred(m)).collect();
        (m.len() >= n).then_some(m)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_opt_in_then_one_digest_with_totals_then_unsubscribe_stops_it() {
    let address = unique_address("digest");
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "landed",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 3\nendpoints: [{{protocol: email, address: \"{address}\"}}]"
        ),
        &[],
    );
    let (stop, stop_rx) = watch::channel(false);
    let n =
        ticklake_notify::start(smtp_config(), vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();

    // Before confirmation nothing is queued for the endpoint.
    let early = object(2, 99, 5);
    n.handle.publish(early.clone()).await.unwrap();

    let conf = mails_where(&address, 1, "the confirmation email", |m| m.subject.contains("Confirm")).await;
    assert_eq!(conf.len(), 1);
    let c = &conf[0];
    assert_eq!(c.subject, "[ticklake] Confirm your subscription to landed");
    let url = link(&c.text, "/notify/confirm?token=").expect("a confirmation link in the text body");
    assert!(c.html.contains(&url), "and in the HTML body");
    let token = url.split("token=").nth(1).unwrap();
    assert_eq!(token.len(), 64, "a 256-bit token");
    // Once sent, only its hash is stored.
    eventually(10, "the confirmation token gone from the outbox files", || async {
        let db = std::fs::read(dir.path().join("o.sqlite")).unwrap_or_default();
        let wal = std::fs::read(dir.path().join("o.sqlite-wal")).unwrap_or_default();
        let contains = |hay: &[u8]| hay.windows(token.len()).any(|w| w == token.as_bytes());
        (!contains(&db) && !contains(&wal)).then_some(())
    })
    .await;

    let (status, page) = get(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Subscription confirmed"), "{page}");
    let (status, page) = get(&url).await;
    assert_eq!((status, page.contains("Already confirmed")), (200, true), "{page}");

    // Many objects within one interval: one digest listing all of them, with totals.
    let mut keys = BTreeSet::new();
    for i in 0..30 {
        let e = object(i % 3, i as i64, 100);
        keys.insert(e.key().unwrap().to_string());
        n.handle.publish(e).await.unwrap();
    }
    let digests = mails_where(&address, 1, "the digest", |m| !m.subject.contains("Confirm")).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let digests_after: Vec<Mail> =
        mails_to(&address).await.into_iter().filter(|m| !m.subject.contains("Confirm")).collect();
    assert_eq!(digests_after.len(), 1, "one digest, not one email per object");
    let d = &digests[0];
    assert_eq!(d.subject, "[ticklake] landed: 30 new objects (3000 rows, 117.2 KiB)");
    for k in &keys {
        assert!(d.text.contains(&format!("s3://demo/{k}")), "{k} listed in the text body");
        assert!(d.html.contains(k.as_str()), "{k} listed in the HTML body");
    }
    assert!(d.text.contains("Totals: 30 objects, 3000 rows, 117.2 KiB, 0 schema changes."), "{}", d.text);
    assert!(!d.text.contains(early.key().unwrap()), "the event before confirmation is not sent");
    let unsub = link(&d.text, "/notify/unsubscribe?token=").expect("an unsubscribe link in every email");
    assert!(d.html.contains(&unsub));
    assert_eq!(d.list_unsubscribe.as_deref(), Some(format!("<{unsub}>").as_str()), "List-Unsubscribe header");

    // Unsubscribe: nothing more arrives.
    let (status, page) = get(&unsub).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Unsubscribed"));
    for i in 100..110 {
        n.handle.publish(object(0, i, 1)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(mails_to(&address).await.len(), 2, "confirmation and one digest only");
    let log = n.outbox.log(500).unwrap();
    assert!(log.iter().any(|l| l.outcome == "confirmed") && log.iter().any(|l| l.outcome == "unsubscribed"));
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_confirmation_link_sends_a_new_one() {
    let address = unique_address("expired");
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "late",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nendpoints: [{{protocol: email, address: \"{address}\"}}]"
        ),
        &[],
    );
    let cfg = NotifierConfig { confirmation_ttl_seconds: 1, ..smtp_config() };
    let (stop, stop_rx) = watch::channel(false);
    let n = ticklake_notify::start(cfg, vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    let first = mails_where(&address, 1, "the confirmation", |m| m.subject.contains("Confirm")).await;
    let url = link(&first[0].text, "/notify/confirm?token=").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, page) = get(&url).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("expired"));
    let both = mails_where(&address, 2, "a second confirmation", |m| m.subject.contains("Confirm")).await;
    let url2 = link(&both[1].text, "/notify/confirm?token=").unwrap();
    assert_ne!(url, url2, "a new token");
    let (status, page) = get(&url2).await;
    assert_eq!(status, 200, "{page}");
    // One event, one email.
    let e = object(1, 5, 42);
    n.handle.publish(e.clone()).await.unwrap();
    let m = mails_where(&address, 1, "the event email", |m| !m.subject.contains("Confirm")).await;
    assert_eq!(m[0].subject, format!("[ticklake] late: new object {}", e.key().unwrap()));
    stop.send(true).unwrap();
    n.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_json_gets_the_envelope_of_events_its_filter_policy_passes() {
    let address = unique_address("json");
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription(
        "json",
        &format!(
            "watch: {{sinkRef: lake}}\ndigestIntervalSeconds: 0\nfilterPolicy: '{{\"partition\": [1], \"rows\": [{{\"numeric\": [\">=\", 10]}}]}}'\nendpoints: [{{protocol: email-json, address: \"{address}\"}}]"
        ),
        &[],
    );
    let (stop, stop_rx) = watch::channel(false);
    let n =
        ticklake_notify::start(smtp_config(), vec![sub], &dir.path().join("o.sqlite"), &no_env, stop_rx).await.unwrap();
    let conf = mails_where(&address, 1, "the confirmation", |m| m.subject.contains("Confirm")).await;
    let (status, _) = get(&link(&conf[0].text, "/notify/confirm?token=").unwrap()).await;
    assert_eq!(status, 200);
    let wanted = object(1, 1, 10);
    for e in [object(0, 1, 10), wanted.clone(), object(1, 2, 9), object(2, 3, 100)] {
        n.handle.publish(e).await.unwrap();
    }
    let m = mails_where(&address, 1, "the JSON email", |m| !m.subject.contains("Confirm")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mails_to(&address).await.len(), 2, "only the event the policy passes");
    let env: Envelope = serde_json::from_str(m[0].text.trim()).expect("the body is the JSON envelope");
    assert_eq!(env.id, wanted.id);
    assert_eq!(env.events, vec![wanted]);
    stop.send(true).unwrap();
    n.stopped().await;
}
