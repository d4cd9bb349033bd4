//! `ticklake local up` with AlertSubscriptions, as a user runs it: a real child process, the
//! embedded log, the local object directory, a real HTTP receiver and (feature `smtp-tests`)
//! a real SMTP server, Mailpit, started by scripts/test.sh.
//!
//! * killed (SIGKILL) while retrying deliveries to a receiver that is down, then restarted
//!   with the receiver up: every object's event arrives exactly once;
//! * killed (SIGKILL) after objects landed but before their events reached the outbox (the
//!   live road held back by the test-only `TICKLAKE_TEST_LANDED_STALL_MS`), then restarted:
//!   the events are re-derived from the sinks' claims, each delivered once per subscription;
//! * the issue's "done when": with the runner going and an email subscription confirmed
//!   through the link, Mailpit receives digest emails listing objects that exist.

#[path = "../../notify/tests/common/mod.rs"]
mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use ticklake_notify::outbox::Outbox;

fn spawn_up(dir: &Path, run: &str) -> Child {
    spawn_up_with(dir, run, &[])
}

fn spawn_up_with(dir: &Path, run: &str, env: &[(&str, &str)]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .envs(env.iter().copied())
        .args(["local", "up", "--metrics-addr", "127.0.0.1:0", "--sql-addr", "127.0.0.1:0", "-f"])
        .arg(dir.join("manifests"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--notify-config")
        .arg(dir.join("notify.yaml"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A StockStream `ticks` (`partitions`, simulator settings as a YAML flow map) and an S3Sink
/// `lake` landing it in bucket `demo` under `ticks` (flush settings), as manifest documents.
fn pipeline(partitions: u32, simulator: &str, flush: &str) -> String {
    format!(
        r#"apiVersion: ticklake.dev/v1alpha1
kind: StockStream
metadata: {{name: ticks}}
spec:
  topic: ticks
  partitions: {partitions}
  source:
    simulator: {simulator}
---
apiVersion: ticklake.dev/v1alpha1
kind: S3Sink
metadata: {{name: lake}}
spec:
  topic: ticks
  bucket: demo
  prefix: ticks
  flush: {flush}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

/// Data objects the sink wrote (keys under the bucket), claims excluded.
fn data_keys(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let root: PathBuf = dir.join("data/s3/demo");
    let mut out = BTreeSet::new();
    walk(&root, &root, &mut out);
    out
}

fn log_of(dir: &Path, run: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{run}.log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_retrying_then_restarted_delivers_every_event_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The receiver is down: a port that refuses connections.
    let probe = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    let addr = probe.addr;
    probe.stop().await;
    write(
        dir,
        "manifests/pipeline.yaml",
        &format!(
            r#"{pipeline}---
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {{name: hooks}}
spec:
  watch: {{sinkRef: lake}}
  digestIntervalSeconds: 0
  endpoints:
    - {{protocol: webhook, address: "http://{addr}/hook"}}
"#,
            pipeline = pipeline(
                2,
                "{ticksPerSecond: 0, seed: 5, maxTicks: 4000, startTime: \"2026-11-25T14:30:00Z\"}",
                "{maxRecords: 500, intervalMs: 300}"
            )
        ),
    );
    write(
        dir,
        "notify.yaml",
        "http: {listen: \"127.0.0.1:0\"}\nallowLoopbackTargets: true\npollIntervalMs: 50\nretry:\n  webhook: {maxAttempts: 1000, maxAgeMs: 600000, baseDelayMs: 100, maxDelayMs: 400}\n",
    );
    let mut first = spawn_up(dir, "run1");
    let outbox_path = dir.join("data/notify/outbox.sqlite");
    // Every tick landed, every object's event queued, and deliveries failing.
    let keys = eventually(90, "objects landed, events queued, deliveries failing", || async {
        if !outbox_path.exists() {
            return None;
        }
        let o = Outbox::open(&outbox_path, u64::MAX).ok()?;
        let keys = data_keys(dir);
        let queued: usize = o.endpoints().ok()?.iter().map(|e| o.messages_of(e.id).unwrap().len()).sum();
        let failed = o.log(10_000).ok()?.iter().filter(|l| l.outcome == "failed").count();
        let rows_done = log_of(dir, "run1").matches("batch landed").count() > 0;
        (rows_done && !keys.is_empty() && queued == keys.len() && failed >= 2 * keys.len()).then_some(keys)
    })
    .await;
    // Let the producer finish and the sink land everything (4000 ticks), then kill.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let keys_before_kill = data_keys(dir);
    assert!(keys_before_kill.len() >= keys.len());
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let keys = data_keys(dir);

    let rx = Receiver::start(addr).await;
    let mut second = spawn_up(dir, "run2");
    let expected: BTreeSet<String> =
        keys.iter().map(|k| ticklake_notify::event::stable_id("evt", &["object.created", "demo", k])).collect();
    let got = eventually(60, "every object's event delivered after the restart", || async {
        let ids: Vec<String> = rx
            .hits()
            .iter()
            .map(|h| serde_json::from_slice::<ticklake_notify::render::Envelope>(&h.body).unwrap().id)
            .collect();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        (unique.len() >= expected.len()).then_some(ids)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let all: Vec<String> = rx
        .hits()
        .iter()
        .map(|h| serde_json::from_slice::<ticklake_notify::render::Envelope>(&h.body).unwrap().id)
        .collect();
    second.kill().unwrap();
    second.wait().unwrap();
    let unique: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(unique, expected, "exactly the objects on disk");
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for id in &all {
        *counts.entry(id).or_default() += 1;
    }
    assert!(
        counts.values().all(|&c| c == 1),
        "each event once: {:?}",
        counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    assert!(got.len() >= expected.len());
    let o = Outbox::open(&outbox_path, u64::MAX).unwrap();
    let statuses: BTreeSet<String> =
        o.endpoints().unwrap().iter().flat_map(|e| o.messages_of(e.id).unwrap()).map(|m| m.status).collect();
    assert_eq!(statuses, BTreeSet::from(["delivered".to_string()]), "the outbox marks them delivered");
    // The delivery log is readable through the CLI, and shows the failures before the kill.
    let out = Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .args(["notify", "deliveries", "--limit", "100000", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.contains(" failed ") && l.contains("hooks")), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(" delivered ")).count(), expected.len());
}

/// The sink's claims under the data dir: (claim JSON) for every landed batch.
fn claims(dir: &Path) -> Vec<serde_json::Value> {
    fn walk(p: &Path, out: &mut Vec<serde_json::Value>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "json")
                && let Some(v) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok())
            {
                out.push(v);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("data/s3/demo/ticks/_ticklake/claims"), &mut out);
    out
}

/// Per receiver path (= subscription), how often each event id was delivered (a digest
/// delivers each event it lists).
fn deliveries(rx: &Receiver) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for h in rx.hits() {
        let env: ticklake_notify::render::Envelope = serde_json::from_slice(&h.body).unwrap();
        for e in env.events {
            *out.entry(env.subscription.clone()).or_default().entry(e.id).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_landing_and_the_outbox_then_restarted_replays_every_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    write(
        dir,
        "manifests/pipeline.yaml",
        &format!(
            r#"{pipeline}---
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {{name: each}}
spec:
  watch: {{sinkRef: lake}}
  digestIntervalSeconds: 0
  endpoints:
    - {{protocol: webhook, address: "{each}"}}
---
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {{name: digest}}
spec:
  watch: {{bucket: demo, prefix: ticks/}}
  digestIntervalSeconds: 1
  endpoints:
    - {{protocol: webhook, address: "{digest}"}}
"#,
            pipeline = pipeline(
                2,
                "{ticksPerSecond: 0, seed: 11, maxTicks: 3000, startTime: \"2026-11-25T14:30:00Z\"}",
                "{maxRecords: 400, intervalMs: 300}"
            ),
            each = rx.url("/each"),
            digest = rx.url("/digest"),
        ),
    );
    // No periodic replay during the test: only the one at start can close the gap.
    write(
        dir,
        "notify.yaml",
        "http: {listen: \"127.0.0.1:0\"}\nallowLoopbackTargets: true\npollIntervalMs: 50\nreplayIntervalMs: 3600000\n",
    );
    // Run 1: the live road holds every landed batch back for an hour.
    let mut first = spawn_up_with(dir, "run1", &[("TICKLAKE_TEST_LANDED_STALL_MS", "3600000")]);
    let landed = eventually(90, "every tick landed (claims cover 3000 records, objects exist)", || async {
        let cs = claims(dir);
        let records: u64 = cs.iter().map(|c| c["records"].as_u64().unwrap() + c["deadLetters"].as_u64().unwrap()).sum();
        let keys: BTreeSet<String> = cs
            .iter()
            .flat_map(|c| c["objects"].as_array().unwrap().clone())
            .map(|o| o["key"].as_str().unwrap().to_string())
            .collect();
        let all_there = keys.iter().all(|k| dir.join("data/s3/demo").join(k).exists());
        (records == 3000 && all_there).then_some(keys)
    })
    .await;
    first.kill().unwrap(); // SIGKILL, inside the window
    first.wait().unwrap();
    assert!(log_of(dir, "run1").contains("TICKLAKE_TEST_LANDED_STALL_MS is set"), "{}", log_of(dir, "run1"));
    let keys: BTreeSet<String> = claims(dir)
        .iter()
        .flat_map(|c| c["objects"].as_array().unwrap().clone())
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, landed);
    assert_eq!(keys.iter().filter(|k| k.ends_with(".parquet")).cloned().collect::<BTreeSet<_>>(), data_keys(dir));
    let expected: BTreeSet<String> =
        keys.iter().map(|k| ticklake_notify::event::stable_id("evt", &["object.created", "demo", k])).collect();
    // Proof that the kill hit the window: objects on disk whose events are nowhere in the outbox.
    let outbox_path = dir.join("data/notify/outbox.sqlite");
    let queued: BTreeSet<String> = {
        let o = Outbox::open(&outbox_path, u64::MAX).unwrap();
        let eps = o.endpoints().unwrap();
        assert_eq!(eps.len(), 2);
        eps.iter().flat_map(|e| o.messages_of(e.id).unwrap()).map(|m| m.message_id).collect()
    };
    let lost: Vec<&String> = expected.iter().filter(|id| !queued.contains(*id)).collect();
    assert!(!lost.is_empty(), "the kill left landed objects without events in the outbox");
    assert!(rx.hits().is_empty(), "nothing was delivered before the kill");

    // Run 2: no stall. The replay at start re-derives the events from the claims.
    let mut second = spawn_up(dir, "run2");
    eventually(60, "every object's event delivered to both subscriptions", || async {
        let d = deliveries(&rx);
        let done = |s: &str| d.get(s).is_some_and(|ids| expected.iter().all(|id| ids.contains_key(id)));
        (done("each") && done("digest")).then_some(())
    })
    .await;
    // Time for duplicates to show, were there any (digests close every second).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    let run2 = log_of(dir, "run2");
    assert!(run2.contains("landed objects replayed from the sink's claims"), "{run2}");
    assert_eq!(
        data_keys(dir),
        keys.iter().filter(|k| k.ends_with(".parquet")).cloned().collect(),
        "nothing new landed"
    );
    let d = deliveries(&rx);
    for sub in ["each", "digest"] {
        let got = &d[sub];
        assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected, "{sub}: exactly the objects on disk");
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "{sub}: each event once: {twice:?}");
    }
    // A third start replays nothing new: the marks are past every batch.
    let o = Outbox::open(&outbox_path, u64::MAX).unwrap();
    let before: usize = o.endpoints().unwrap().iter().map(|e| o.messages_of(e.id).unwrap().len()).sum();
    drop(o);
    let mut third = spawn_up(dir, "run3");
    eventually(30, "the third run's notifier started", || async {
        log_of(dir, "run3").contains("notifier started").then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    third.kill().unwrap();
    third.wait().unwrap();
    assert!(!log_of(dir, "run3").contains("landed objects replayed"), "{}", log_of(dir, "run3"));
    let o = Outbox::open(&outbox_path, u64::MAX).unwrap();
    let after: usize = o.endpoints().unwrap().iter().map(|e| o.messages_of(e.id).unwrap().len()).sum();
    assert_eq!(after, before, "no new messages");
    assert_eq!(deliveries(&rx), d, "no new deliveries");
}

#[cfg(feature = "smtp-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_when_local_up_emails_digests_listing_the_new_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let address = unique_address("local-up");
    let (host, port) = smtp_addr();
    write(
        dir,
        "manifests/pipeline.yaml",
        &format!(
            r#"{pipeline}---
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {{name: landed}}
spec:
  watch: {{sinkRef: lake, suffix: .parquet}}
  digestIntervalSeconds: 2
  endpoints:
    - {{protocol: email, address: "{address}"}}
"#,
            pipeline = pipeline(2, "{ticksPerSecond: 2000, seed: 9}", "{intervalMs: 1000}")
        ),
    );
    write(
        dir,
        "notify.yaml",
        &format!(
            "smtp: {{host: \"{host}\", port: {port}, tls: none, from: \"ticklake <ticklake@example.com>\"}}\nhttp: {{listen: \"127.0.0.1:0\"}}\n"
        ),
    );
    let mut child = spawn_up(dir, "run");
    let conf = eventually(60, "the confirmation email", || async {
        mails_to(&address).await.into_iter().find(|m| m.subject.contains("Confirm"))
    })
    .await;
    let url = link(&conf.text, "/notify/confirm?token=").expect("a confirmation link");
    let (status, page) = get(&url).await;
    assert_eq!(status, 200, "{page}");
    let digests = eventually(60, "two digest emails", || async {
        let d: Vec<Mail> = mails_to(&address).await.into_iter().filter(|m| m.subject.contains("new object")).collect();
        (d.len() >= 2).then_some(d)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let on_disk = data_keys(dir);
    let mut listed = BTreeSet::new();
    for d in &digests {
        assert!(d.subject.starts_with("[ticklake] landed: "), "{}", d.subject);
        assert!(d.text.contains("Totals: "), "{}", d.text);
        assert!(link(&d.text, "/notify/unsubscribe?token=").is_some());
        for line in d.text.lines() {
            if let Some(rest) = line.trim().strip_prefix("- s3://demo/") {
                let key = rest.split(" — ").next().unwrap().to_string();
                listed.insert(key);
            }
        }
    }
    assert!(!listed.is_empty(), "the digests list objects");
    for k in &listed {
        assert!(on_disk.contains(k), "listed object {k} exists under the data dir");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_redriven_by_the_cli_while_the_runner_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap()).await;
    rx.status.store(500, std::sync::atomic::Ordering::SeqCst);
    write(
        dir,
        "manifests/pipeline.yaml",
        &format!(
            r#"{pipeline}---
apiVersion: ticklake.dev/v1alpha1
kind: AlertSubscription
metadata: {{name: dlq}}
spec:
  watch: {{sinkRef: lake}}
  digestIntervalSeconds: 0
  endpoints:
    - {{protocol: webhook, address: "{}"}}
"#,
            rx.url("/hook"),
            pipeline = pipeline(
                1,
                "{ticksPerSecond: 0, seed: 2, maxTicks: 300, startTime: \"2026-11-25T14:30:00Z\"}",
                "{intervalMs: 200}"
            ),
        ),
    );
    write(
        dir,
        "notify.yaml",
        "http: {listen: \"127.0.0.1:0\"}\nallowLoopbackTargets: true\npollIntervalMs: 50\nretry:\n  webhook: {maxAttempts: 2, maxAgeMs: 60000, baseDelayMs: 50, maxDelayMs: 100}\n",
    );
    let mut child = spawn_up(dir, "run");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ticklake"))
            .args(["notify"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dead = eventually(60, "dead letters listed by the CLI", || async {
        let (ok, out, _) = cli(&["dead-letters", "--json"]);
        let lines: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (ok && !lines.is_empty() && lines.len() == data_keys(dir).len()).then_some(lines)
    })
    .await;
    for d in &dead {
        assert_eq!(d["attempts"], 2);
        let e = d["lastError"].as_str().unwrap();
        assert!(e.contains("gave up after 2 attempts") && e.contains("HTTP 500"), "{e}");
        assert_eq!(d["subscription"], "dlq");
    }
    let (ok, _, err) = cli(&["redrive"]);
    assert!(!ok && err.contains("--id"), "redrive needs --id or --all: {err}");
    let (ok, _, err) = cli(&["redrive", "--id", "999999"]);
    assert!(!ok && err.contains("not dead letters"), "{err}");
    rx.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let before = rx.hits().len();
    let (ok, out, err) = cli(&["redrive", "--all"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("redriven: {}", dead.len()));
    eventually(30, "redriven messages delivered by the running runner", || async {
        let (_, out, _) = cli(&["dead-letters", "--json"]);
        (out.trim().is_empty() && rx.hits().len() == before + dead.len()).then_some(())
    })
    .await;
    let (_, log, _) = cli(&["deliveries", "--limit", "1000"]);
    assert!(log.lines().any(|l| l.contains("redriven")), "{log}");
    assert_eq!(log.lines().filter(|l| l.contains(" delivered ")).count(), dead.len());
    let (_, eps, _) = cli(&["endpoints"]);
    assert!(eps.contains("Confirmed") && eps.contains("dlq"), "{eps}");
    child.kill().unwrap();
    child.wait().unwrap();
}
