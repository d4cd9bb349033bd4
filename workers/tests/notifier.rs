//! The notifier worker against real peers: moto (`.ci/moto/peer.py`, S3 + SQS + SNS at
//! `TICKLAKE_TEST_AWS_ENDPOINT`) and Mailpit (`TICKLAKE_TEST_SMTP_ADDR`,
//! `TICKLAKE_TEST_MAILPIT_API`).
//!
//! Each test builds the notifier route as the operator does — a bucket, the events queue and
//! its dead-letter queue (`sqs::ensure`, with a 2 s visibility timeout and a
//! `maxReceiveCount` of 2 so redrives happen within a test), the bucket rule sending
//! object-created events to it (`s3notify::ensure`), the topic (`sns::ensure`) — plus an
//! observer: an SQS queue subscribed to the topic *without* raw delivery, so the SNS envelope
//! shows the subject and the typed message attributes, with the subscription's filter policy.
//! Objects are real Parquet files written by the sink's encoder at the sink's layout keys.
//!
//! Two tests run the real `ticklake` binary (`target/release/ticklake` next to this test's
//! executable, or `$TICKLAKE_BIN`; `cargo test --workspace` builds it): one end to end, one
//! killed with SIGKILL and restarted. The others call the library.
//!
//! `cargo test --release -p ticklake-workers --features aws-tests --test notifier`
#![cfg(feature = "aws-tests")]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use ticklake_api::crd::{AlertSubscription, S3Sink};
use ticklake_api::tick::{Tick, TickBody};
use ticklake_aws::s3notify::{self, Rule, Target};
use ticklake_aws::{AwsSettings, Clients, Owner, sns, sqs};
use ticklake_notify::http::{TargetPolicy, request};
use ticklake_workers::notifier::{self, NotifierTelemetry, Outputs, Runtime, Settings};
use ticklake_workers::sink::layout::Layout;

const REGION: &str = "us-east-1";

fn endpoint() -> String {
    std::env::var("TICKLAKE_TEST_AWS_ENDPOINT").expect(
        "TICKLAKE_TEST_AWS_ENDPOINT: the moto peer's URL, e.g. http://127.0.0.1:15001 (scripts/test.sh sets it)",
    )
}

fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: scripts/test.sh starts Mailpit and sets it"))
}

/// Clients at the peer with static test credentials, whatever the environment holds.
async fn clients() -> Clients {
    let settings = AwsSettings { region: Some(REGION.into()), endpoint: Some(endpoint()), max_attempts: Some(2) };
    let c = Clients::new(&settings).await;
    let creds = aws_sdk_sns::config::Credentials::new("testing", "testing", None, None, "ticklake-tests");
    Clients {
        sns: aws_sdk_sns::Client::from_conf(c.sns.config().to_builder().credentials_provider(creds.clone()).build()),
        sqs: aws_sdk_sqs::Client::from_conf(c.sqs.config().to_builder().credentials_provider(creds.clone()).build()),
        s3: aws_sdk_s3::Client::from_conf(c.s3.config().to_builder().credentials_provider(creds.clone()).build()),
        glue: aws_sdk_glue::Client::from_conf(c.glue.config().to_builder().credentials_provider(creds.clone()).build()),
        athena: aws_sdk_athena::Client::from_conf(c.athena.config().to_builder().credentials_provider(creds).build()),
        region: c.region,
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{:x}-{}", (nanos as u64) & 0xff_ffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

/// Polls `f` every 200 ms until it gives a value, for at most `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn http_get(url: &str) -> (u16, String) {
    let r = request("GET", url, &[], bytes::Bytes::new(), Duration::from_secs(10), TargetPolicy::ANY).await.expect(url);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

// ------------------------------------------------------------------------------ the route

const PREFIX: &str = "lake/ticks";

struct Route {
    c: Clients,
    bucket: String,
    queue: sqs::QueueObserved,
    topic_arn: String,
    /// The observer queue (SNS envelope, filter policy of the spec).
    observer: String,
    sink: S3Sink,
    sub: AlertSubscription,
    layout: Layout,
}

fn sink_manifest(bucket: &str, by_symbol: bool) -> S3Sink {
    serde_json::from_value(json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "S3Sink",
        "metadata": {"name": "ticks-lake", "namespace": "tests"},
        "spec": {
            "topic": "ticks", "bucket": bucket, "prefix": PREFIX,
            "partitioning": {"granularity": "hour", "bySymbol": by_symbol},
            "glue": {"database": "market"},
            "athena": {"workgroup": "analysts", "resultLocation": "s3://results/athena/"}
        }
    }))
    .unwrap()
}

/// The route for a subscription with `spec` (watch, endpoints, digest, filter...).
async fn route(name: &str, by_symbol: bool, spec: Value) -> Route {
    let c = clients().await;
    let bucket = unique(name);
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let owner = Owner::new("AlertSubscription", "tests", &unique(name));
    let mut qd = sqs::desired(&owner, &bucket);
    qd.visibility_timeout_seconds = 2;
    qd.max_receive_count = 2;
    let queue = sqs::ensure(&c, &qd, &owner).await.unwrap();
    let prefix = s3notify::id_prefix(&owner);
    let rule = Rule {
        id: prefix.clone(),
        target: Target::Queue(queue.arn.clone()),
        prefix: format!("{PREFIX}/"),
        suffix: String::new(),
    };
    s3notify::ensure(&c.s3, &bucket, &[rule], &prefix).await.unwrap();

    let mut manifest = json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "AlertSubscription",
        "metadata": {"name": owner.name, "namespace": "tests"},
        "spec": spec,
    });
    manifest["spec"]["watch"] = json!({"sinkRef": "ticks-lake"});
    let sub: AlertSubscription = serde_json::from_value(manifest).unwrap();
    let topic = sns::ensure(&c, &sns::desired(&sub.spec, &owner, &bucket), &owner).await.unwrap();

    // The observer: an SQS subscriber with the spec's filter policy, enveloped.
    let out = c.sqs.create_queue().queue_name(unique("observer")).send().await.unwrap();
    let observer = out.queue_url().unwrap().to_string();
    let arn = c
        .sqs
        .get_queue_attributes()
        .queue_url(&observer)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let mut attrs: std::collections::HashMap<String, String> =
        sns::subscription_attributes("sqs", sub.spec.filter_policy.as_deref()).into_iter().collect();
    attrs.insert("RawMessageDelivery".into(), "false".into());
    c.sns
        .subscribe()
        .topic_arn(&topic.arn)
        .protocol("sqs")
        .endpoint(arn)
        .set_attributes(Some(attrs))
        .send()
        .await
        .unwrap();
    // S3 tested the queue when the rule was written: drop that test event.
    drain(&c, &queue.url, Duration::from_secs(1)).await;
    Route {
        c,
        bucket: bucket.clone(),
        queue,
        topic_arn: topic.arn,
        observer,
        sink: sink_manifest(&bucket, by_symbol),
        sub,
        layout: Layout {
            prefix: PREFIX.into(),
            topic: "ticks".into(),
            granularity: ticklake_api::crd::TimeGranularity::Hour,
            by_symbol,
            format: ticklake_api::crd::SinkFormat::Parquet,
            dead_letter_prefix: "_dead_letters".into(),
        },
    }
}

/// Receives and deletes for `wait`; the bodies.
async fn drain(c: &Clients, url: &str, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut bodies = Vec::new();
    while Instant::now() < deadline {
        let got = sqs::receive(c, url, 10, 1).await.unwrap();
        let receipts: Vec<String> = got.iter().map(|(r, _)| r.clone()).collect();
        bodies.extend(got.into_iter().map(|(_, b)| b));
        if !receipts.is_empty() {
            sqs::delete_messages(c, url, &receipts).await.unwrap();
        }
    }
    bodies
}

/// One SNS notification as the observer queue got it.
#[derive(Debug, Clone)]
struct Seen {
    subject: String,
    text: String,
    /// name → (type, value)
    attributes: BTreeMap<String, (String, String)>,
}

impl Seen {
    fn attr(&self, name: &str) -> Option<(&str, &str)> {
        self.attributes.get(name).map(|(t, v)| (t.as_str(), v.as_str()))
    }
}

/// Notifications the observer got, until `done` or `secs` pass.
async fn observe(r: &Route, secs: u64, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !done(&seen) {
        for body in drain(&r.c, &r.observer, Duration::from_millis(500)).await {
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(v["Type"], "Notification", "{body}");
            let attributes = v["MessageAttributes"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, a)| {
                            (
                                k.clone(),
                                (a["Type"].as_str().unwrap().to_string(), a["Value"].as_str().unwrap().to_string()),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            seen.push(Seen {
                subject: v["Subject"].as_str().unwrap_or_default().to_string(),
                text: v["Message"].as_str().unwrap().to_string(),
                attributes,
            });
        }
    }
    seen
}

/// Messages in the queue, visible or not.
async fn queue_depth(c: &Clients, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = c
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = out.attributes().unwrap();
    let n = |k: &A| a.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(&A::ApproximateNumberOfMessages) + n(&A::ApproximateNumberOfMessagesNotVisible)
}

fn ticks(n: usize, symbol: &str, hour_ts_us: i64) -> Vec<Tick> {
    (0..n)
        .map(|i| Tick {
            symbol: symbol.to_string(),
            ts_us: hour_ts_us + i as i64 * 1000,
            seq: i as u64,
            body: TickBody::Trade { price: 100.0 + i as f64, size: 5 },
        })
        .collect()
}

/// 2026-01-02T03:00:00Z
const T0: i64 = 1_767_322_800_000_000;

/// Writes `rows` ticks of `symbol` as the sink would (its encoder, its key); the key and size.
async fn land(r: &Route, symbol: &str, partition: i32, first: i64, rows: usize) -> (String, usize) {
    let body = ticklake_workers::sink::encode::parquet(&ticks(rows, symbol, T0)).unwrap();
    let key = r.layout.data_key(&r.layout.folder(T0, symbol), partition, first, first + rows as i64 - 1);
    put(r, &key, body.clone()).await;
    (key, body.len())
}

async fn put(r: &Route, key: &str, body: Vec<u8>) {
    r.c.s3.put_object().bucket(&r.bucket).key(key).body(body.into()).send().await.unwrap();
}

fn metric(text: &str, name: &str, label: Option<&str>) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| label.is_none_or(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

// ------------------------------------------------------------------------------ runners

/// The notifier as a library call, until the returned sender says stop.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<notifier::Summary>,
    telemetry: Arc<NotifierTelemetry>,
}

async fn start(r: &Route, outputs: Outputs, mailer: Option<ticklake_notify::email::Mailer>) -> Running {
    let settings = Settings::new(&r.sub, &r.sink, &r.queue.url, &outputs, REGION).unwrap();
    let telemetry = NotifierTelemetry::new("notifier/test");
    let rt = Runtime {
        clients: clients().await,
        s3: notifier::sink_s3_client(&r.c, &r.sink),
        mailer,
        telemetry: telemetry.clone(),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { notifier::run(settings, rt, rx).await.unwrap() });
    Running { stop, task, telemetry }
}

impl Running {
    async fn stop(self) -> notifier::Summary {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("stops within 30 s").unwrap()
    }
}

fn binary() -> std::path::PathBuf {
    if let Ok(b) = std::env::var("TICKLAKE_BIN") {
        return b.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("ticklake");
    assert!(bin.exists(), "{} is missing: `cargo build --release -p ticklake` (or set TICKLAKE_BIN)", bin.display());
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ticklake worker notifier` as a process.
struct Process {
    child: std::process::Child,
    metrics: String,
    _dir: tempfile::TempDir,
}

fn spawn(r: &Route, topic_arn: &str) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("alertsubscription.yaml");
    let sink = dir.path().join("s3sink.yaml");
    std::fs::write(&sub, serde_yaml::to_string(&r.sub).unwrap()).unwrap();
    std::fs::write(&sink, serde_yaml::to_string(&r.sink).unwrap()).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("notifier.log")).unwrap();
    let child = std::process::Command::new(binary())
        .args(["worker", "notifier", "--resource"])
        .arg(&sub)
        .arg("--sink")
        .arg(&sink)
        .args(["--queue-url", &r.queue.url, "--topic-arn", topic_arn, "--aws-endpoint", &endpoint()])
        .args(["--aws-region", REGION, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("TICKLAKE_SMTP_URL")
        .env("RUST_LOG", "info,ticklake_workers=debug")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process { child, metrics: format!("http://127.0.0.1:{port}/metrics"), _dir: dir }
}

impl Process {
    async fn metrics(&self) -> Option<String> {
        let r =
            request("GET", &self.metrics, &[], bytes::Bytes::new(), Duration::from_secs(5), TargetPolicy::ANY).await;
        r.ok().filter(|r| r.status == 200).map(|r| String::from_utf8_lossy(&r.body).into_owned())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("notifier.log")).unwrap_or_default()
    }

    /// SIGTERM (graceful) or SIGKILL; waits for the exit.
    fn stop(mut self, graceful: bool) -> (std::process::ExitStatus, String) {
        let signal = if graceful { "-TERM" } else { "-KILL" };
        std::process::Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, self.log());
            }
            assert!(Instant::now() < deadline, "the notifier did not exit within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

// ------------------------------------------------------------------------------ tests

/// One message per object, through the real binary: readable text with table, partition,
/// rows from the footer, bytes, the Athena query; typed attributes; skipped keys counted; an
/// unreadable footer reported as unknown rows; the events queue empty afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_per_object_through_the_binary() {
    let r = route(
        "per-object",
        false,
        json!({"endpoints": [{"protocol": "email", "address": "ops@example.com"}], "digestIntervalSeconds": 0}),
    )
    .await;
    let (k1, n1) = land(&r, "AAPL", 0, 0, 7).await;
    let (k2, n2) = land(&r, "MSFT", 3, 100, 11).await;
    // Not data: a dead letter, a claim, a temporary name; and data that is no Parquet.
    put(&r, &r.layout.dead_letter_key(0, 7, 8), b"{}\n".to_vec()).await;
    put(&r, &r.layout.claim_key(0, 0), b"{}".to_vec()).await;
    put(&r, &format!("{PREFIX}/year=2026/month=01/day=02/hour=03/.tmp-1-2"), b"x".to_vec()).await;
    let broken = r.layout.data_key("year=2026/month=01/day=02/hour=04", 1, 5, 9);
    put(&r, &broken, b"not parquet at all".to_vec()).await;

    let p = spawn(&r, &r.topic_arn);
    let seen = observe(&r, 60, |s| s.len() >= 3).await;
    let metrics = eventually(20, "the metrics", || async {
        let m = p.metrics().await?;
        (metric(&m, "ticklake_notifier_sqs_deleted_total", None) >= 6).then_some(m)
    })
    .await;
    let (status, log) = p.stop(true);
    assert!(status.success(), "{status}\n{log}");
    assert_eq!(seen.len(), 3, "{seen:#?}\n{log}");

    let by_key = |k: &str| {
        seen.iter().find(|s| s.attr("key").map(|(_, v)| v) == Some(k)).unwrap_or_else(|| panic!("{k}: {seen:#?}"))
    };
    let a = by_key(&k1);
    assert_eq!(a.subject, "[ticklake] market.ticks: 7 rows landed in 2026-01-02 03h");
    for want in [
        "New data landed in market.ticks.",
        "Table:      market.ticks\n",
        "Partition:  year=2026/month=01/day=02/hour=03\n",
        "Rows:       7\n",
        &format!("Size:       {} ", ticklake_notify::render::human_bytes(n1 as u64)),
        &format!("Object:     s3://{}/{k1}\n", r.bucket),
        "From:       topic ticks, Kafka partition 0, offsets 0 to 6\n",
        "Query it in Athena (workgroup analysts):\n  SELECT * FROM \"market\".\"ticks\" WHERE year = '2026' AND month = '01' AND day = '02' AND hour = '03' LIMIT 100;",
    ] {
        assert!(a.text.contains(want), "{want:?} in\n{}", a.text);
    }
    assert_eq!(a.attr("rows"), Some(("Number", "7")));
    assert_eq!(a.attr("bytes"), Some(("Number", n1.to_string().as_str())));
    assert_eq!(a.attr("table"), Some(("String", "market.ticks")));
    assert_eq!(a.attr("bucket"), Some(("String", r.bucket.as_str())));
    assert_eq!(
        [a.attr("year"), a.attr("month"), a.attr("day"), a.attr("hour")],
        [Some(("String", "2026")), Some(("String", "01")), Some(("String", "02")), Some(("String", "03"))]
    );
    let id = a.attr("event_id").unwrap().1;
    assert!(id.starts_with("evt_") && a.text.contains(id), "{id}");
    let b = by_key(&k2);
    assert_eq!(b.attr("rows"), Some(("Number", "11")));
    assert_eq!(b.attr("bytes"), Some(("Number", n2.to_string().as_str())));
    assert!(b.text.contains("Kafka partition 3, offsets 100 to 110"), "{}", b.text);
    assert_ne!(b.attr("event_id"), a.attr("event_id"));
    let c = by_key(&broken);
    assert_eq!(c.subject, "[ticklake] market.ticks: new object in 2026-01-02 04h");
    assert!(c.text.contains("Rows:       unknown (the Parquet footer could not be read)"), "{}", c.text);
    assert_eq!(c.attr("rows"), None);

    let w = "worker=\"notifier/tests/";
    for (name, label, want) in [
        ("ticklake_notifier_events_received_total", None, 6),
        ("ticklake_notifier_objects_notified_total", None, 3),
        ("ticklake_notifier_sns_published_total", None, 3),
        ("ticklake_notifier_skipped_keys_total", Some("reason=\"dead_letter\""), 1),
        ("ticklake_notifier_skipped_keys_total", Some("reason=\"claim\""), 1),
        ("ticklake_notifier_skipped_keys_total", Some("reason=\"temporary\""), 1),
        ("ticklake_notifier_footer_failures_total", None, 1),
        ("ticklake_notifier_unparseable_messages_total", None, 0),
    ] {
        assert_eq!(metric(&metrics, name, label), want, "{name} {label:?}\n{metrics}");
    }
    assert!(metrics.contains(w), "{metrics}");
    assert_eq!(queue_depth(&r.c, &r.queue.url).await, 0, "every message deleted");
    assert_eq!(drain(&r.c, &r.queue.dlq_url, Duration::from_secs(1)).await, Vec::<String>::new());
}

/// A digest every 2 s: one message listing the objects the filter policy lets through, with
/// totals; the same digest as an HTML + text email at Mailpit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_of_the_matching_objects_by_sns_and_smtp() {
    let address = format!("{}@example.com", unique("digest"));
    let policy = r#"{"symbol": ["AAPL", "MSFT"], "rows": [{"numeric": [">", 0]}]}"#;
    let r = route(
        "digest",
        true,
        json!({"endpoints": [{"protocol": "email", "address": address}], "digestIntervalSeconds": 2,
               "filterPolicy": policy}),
    )
    .await;
    let (a1, _) = land(&r, "AAPL", 0, 0, 5).await;
    let (a2, _) = land(&r, "AAPL", 0, 5, 6).await;
    let (m1, _) = land(&r, "MSFT", 1, 0, 7).await;
    let (ibm, _) = land(&r, "IBM", 2, 0, 8).await;

    let smtp = env_or_fail("TICKLAKE_TEST_SMTP_ADDR");
    let mailer =
        notifier::smtp::mailer(&format!("smtp://{smtp}"), "ticklake <ticklake@example.com>", &|_| None).unwrap();
    let n = start(&r, Outputs { topic_arn: Some(r.topic_arn.clone()), smtp: true }, Some(mailer)).await;
    let seen = observe(&r, 40, |s| !s.is_empty()).await;
    // Nothing more comes: the four objects were one digest.
    let more = observe(&r, 4, |_| false).await;
    let metrics = n.telemetry.encode();
    let summary = n.stop().await;
    assert_eq!(seen.len(), 1, "{seen:#?} {more:#?}");
    assert!(more.is_empty(), "{more:#?}");
    let d = &seen[0];
    assert_eq!(d.subject, "[ticklake] market.ticks: 3 new objects, 18 rows (2026-01-02 03h)");
    for want in [
        "3 new objects landed in market.ticks: 18 rows,",
        "By partition:\n  year=2026/month=01/day=02/hour=03/symbol=AAPL — 2 objects, 11 rows,",
        "  year=2026/month=01/day=02/hour=03/symbol=MSFT — 1 object, 7 rows,",
        &format!("s3://{}/{a1} — 5 rows,", r.bucket),
        &format!("s3://{}/{a2} — 6 rows,", r.bucket),
        &format!("s3://{}/{m1} — 7 rows,", r.bucket),
        "WHERE concat(year, month, day, hour) = '2026010203' AND symbol IN ('AAPL', 'MSFT') LIMIT 100;",
        "Totals: 3 objects, 18 rows,",
    ] {
        assert!(d.text.contains(want), "{want:?} in\n{}", d.text);
    }
    assert!(!d.text.contains(&ibm), "the filter policy excluded IBM:\n{}", d.text);
    assert_eq!(d.attr("kind"), Some(("String", "digest")));
    assert_eq!(d.attr("objects"), Some(("Number", "3")));
    assert_eq!(d.attr("day"), Some(("String", "02")), "shared by all");
    // The policy's attributes are the first object's (SNS evaluates the same policy).
    assert_eq!(d.attr("symbol"), Some(("String", "AAPL")));
    assert_eq!(d.attr("rows"), Some(("Number", "5")));
    let id = d.attr("event_id").unwrap().1.to_string();
    assert!(id.starts_with("dig_") && d.text.contains(&id));
    assert_eq!(metric(&metrics, "ticklake_notifier_objects_filtered_total", None), 1, "{metrics}");
    assert_eq!(metric(&metrics, "ticklake_notifier_emails_sent_total", None), 1, "{metrics}");
    assert_eq!((summary.messages, summary.notified), (1, 3));

    // The email: the same digest, text and HTML.
    let api = env_or_fail("TICKLAKE_TEST_MAILPIT_API");
    let api = api.trim_end_matches('/');
    let found: Value = eventually(20, "the digest email", || async {
        let (status, body) = http_get(&format!("{api}/api/v1/search?query=to:{address}")).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["messages"].as_array().filter(|m| !m.is_empty()).cloned().map(Value::Array)
    })
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let mail_id = found[0]["ID"].as_str().unwrap();
    let (_, full) = http_get(&format!("{api}/api/v1/message/{mail_id}")).await;
    let mail: Value = serde_json::from_str(&full).unwrap();
    assert_eq!(mail["Subject"], d.subject.as_str());
    let (text, html) = (mail["Text"].as_str().unwrap(), mail["HTML"].as_str().unwrap());
    for key in [&a1, &a2, &m1] {
        assert!(text.contains(key.as_str()), "{key} in the text:\n{text}");
        assert!(html.contains(key.as_str()), "{key} in the HTML:\n{html}");
    }
    assert!(!text.contains(&ibm) && !html.contains(&ibm));
    assert!(html.contains("<h3>By partition</h3>") && html.contains("Totals: 3 objects, 18 rows"), "{html}");
    assert!(text.contains(&id));
    assert_eq!(queue_depth(&r.c, &r.queue.url).await, 0);
}

/// A message that is no S3 event is not deleted: it comes back and the redrive policy moves
/// it to the dead-letter queue; the good ones around it are delivered and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_message_goes_to_the_dead_letter_queue() {
    let r = route(
        "unparseable",
        false,
        json!({"endpoints": [{"protocol": "email", "address": "o@example.com"}], "digestIntervalSeconds": 0}),
    )
    .await;
    r.c.sqs.send_message().queue_url(&r.queue.url).message_body("hello, not an event").send().await.unwrap();
    let (key, _) = land(&r, "AAPL", 0, 0, 3).await;
    let n = start(&r, Outputs { topic_arn: Some(r.topic_arn.clone()), smtp: false }, None).await;
    let seen = observe(&r, 30, |s| !s.is_empty()).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].attr("key"), Some(("String", key.as_str())));
    let dead = eventually(40, "the message in the dead-letter queue", || async {
        let b = drain(&r.c, &r.queue.dlq_url, Duration::from_millis(500)).await;
        (!b.is_empty()).then_some(b)
    })
    .await;
    assert_eq!(dead, vec!["hello, not an event".to_string()]);
    let metrics = n.telemetry.encode();
    let summary = n.stop().await;
    let counted = metric(&metrics, "ticklake_notifier_unparseable_messages_total", None);
    assert!(counted >= 1, "{metrics}");
    assert_eq!(summary.unparseable, counted);
    assert_eq!(queue_depth(&r.c, &r.queue.url).await, 0);
}

/// SIGKILL while deliveries fail (the topic is wrong), then a restart with the right topic:
/// every object is notified, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_nothing() {
    let r = route(
        "crash",
        false,
        json!({"endpoints": [{"protocol": "email", "address": "o@example.com"}], "digestIntervalSeconds": 1}),
    )
    .await;
    let mut keys = Vec::new();
    for i in 0..3 {
        keys.push(land(&r, "AAPL", i, 0, 2 + i as usize).await.0);
    }
    let missing = format!("arn:aws:sns:{REGION}:123456789012:{}", unique("missing"));
    let p = spawn(&r, &missing);
    eventually(30, "failed deliveries", || async {
        let m = p.metrics().await?;
        (metric(&m, "ticklake_notifier_events_received_total", None) >= 3
            && metric(&m, "ticklake_notifier_delivery_failures_total", Some("output=\"sns\"")) >= 1)
            .then_some(())
    })
    .await;
    let (_, log) = p.stop(false);
    assert!(log.contains("delivery failed"), "{log}");
    assert!(observe(&r, 1, |_| false).await.is_empty());

    let p = spawn(&r, &r.topic_arn);
    let seen = observe(&r, 60, |s| {
        s.iter().map(|m| m.attr("objects").map(|(_, v)| v.parse::<usize>().unwrap()).unwrap_or(0)).sum::<usize>() >= 3
    })
    .await;
    let (status, log) = p.stop(true);
    assert!(status.success(), "{log}");
    let text: String = seen.iter().map(|s| s.text.clone()).collect();
    for k in &keys {
        assert!(text.contains(k.as_str()), "{k} after the restart:\n{text}\n{log}");
    }
    assert_eq!(queue_depth(&r.c, &r.queue.url).await, 0);
}

/// `rateLimitPerMinute: 1`: the first object's message goes, the second waits (held, hidden);
/// on shutdown it is handed back to the queue, undelivered and not deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_messages_back_and_shutdown_hands_them_back() {
    let r = route(
        "rate",
        false,
        json!({"endpoints": [{"protocol": "email", "address": "o@example.com"}], "digestIntervalSeconds": 0,
               "rateLimitPerMinute": 1}),
    )
    .await;
    land(&r, "AAPL", 0, 0, 2).await;
    land(&r, "AAPL", 1, 0, 3).await;
    let n = start(&r, Outputs { topic_arn: Some(r.topic_arn.clone()), smtp: false }, None).await;
    let seen = observe(&r, 30, |s| !s.is_empty()).await;
    assert_eq!(seen.len(), 1);
    // Longer than the queue's 2 s visibility timeout: the waiting message is kept hidden.
    let more = observe(&r, 6, |_| false).await;
    assert!(more.is_empty(), "{more:#?}");
    let metrics = n.telemetry.encode();
    assert_eq!(metric(&metrics, "ticklake_notifier_rate_limited_total", None), 1, "{metrics}");
    assert_eq!(metric(&metrics, "ticklake_notifier_held_objects", None), 1, "{metrics}");
    assert_eq!(metric(&metrics, "ticklake_notifier_messages_received_total", None), 2, "received once each: {metrics}");
    let summary = n.stop().await;
    assert_eq!(summary.messages, 1);
    // Handed back at once: visible again, not deleted, not in the dead-letter queue.
    let back = eventually(10, "the held message visible again", || async {
        let got = sqs::receive(&r.c, &r.queue.url, 10, 1).await.unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(back.len(), 1);
    let objects = s3notify::parse_s3_events(&back[0].1).unwrap();
    assert!(objects[0].key.contains("/ticks+1+"), "the second object's: {objects:?}");
}
