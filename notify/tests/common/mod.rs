//! Shared by the notifier's integration tests: a real HTTP receiver (axum), a real SMTP
//! server's API (Mailpit), configurations with short retry limits, events.
#![allow(dead_code)]

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticklake_api::crd::AlertSubscriptionSpec;
use ticklake_notify::backoff::RetryPolicy;
use ticklake_notify::config::{HttpConfig, RetryConfig};
use ticklake_notify::event::{Event, ObjectWritten, object_created};
use ticklake_notify::http::{TargetPolicy, request};
use ticklake_notify::{NotifierConfig, Subscription};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct RxState {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
}

/// A webhook receiver on loopback answering `status` to every POST and recording it.
pub struct Receiver {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    pub status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `addr` (port 0: any).
    pub async fn start(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("binding the receiver");
        let addr = listener.local_addr().unwrap();
        let st = RxState { hits: Arc::default(), status: Arc::new(AtomicU16::new(200)) };
        let app = Router::new()
            .route(
                "/{*path}",
                post(|State(s): State<RxState>, headers: HeaderMap, body: Bytes| async move {
                    s.hits.lock().unwrap().push(Hit { headers, body });
                    StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap()
                }),
            )
            .with_state(st.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, hits: st.hits, status: st.status, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Stops listening (the port refuses connections afterwards).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out after {secs} s waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fast retries: `attempts` attempts 50–200 ms apart.
pub fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy { max_attempts: attempts, max_age_ms: 120_000, base_delay_ms: 50, max_delay_ms: 200 }
}

/// A test configuration: loopback targets allowed (explicitly), link endpoint on any port,
/// fast retries.
pub fn config() -> NotifierConfig {
    NotifierConfig {
        http: HttpConfig { listen: "127.0.0.1:0".parse().unwrap(), public_base_url: None },
        allow_loopback_targets: true,
        retry: RetryConfig { email: fast(5), webhook: fast(5), chat: fast(5) },
        poll_interval_ms: 50,
        ..NotifierConfig::default()
    }
}

/// A subscription from its spec's YAML; the sink `lake` writes to bucket `demo` under `ticks/`.
pub fn subscription(name: &str, yaml: &str, env: &[(&str, &str)]) -> Subscription {
    let spec: AlertSubscriptionSpec = serde_yaml::from_str(yaml).expect("a valid spec");
    let sinks = |n: &str| (n == "lake").then(|| ("demo".to_string(), "ticks".to_string()));
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = move |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    Subscription::from_spec(name, &spec, &sinks, &lookup).expect("a valid subscription")
}

/// The `object.created` event of object `i` of partition `p`.
pub fn object(p: i32, i: i64, rows: u64) -> Event {
    object_created(&ObjectWritten {
        bucket: "demo".into(),
        region: "local".into(),
        sink: "lake".into(),
        topic: "ticks".into(),
        partition: p,
        first_offset: i * 100,
        last_offset: i * 100 + 99,
        key: format!("ticks/year=2026/month=11/day=25/hour=14/ticks+{p}+{:020}+{:020}.parquet", i * 100, i * 100 + 99),
        rows,
        bytes: rows * 40,
        dead_letter: false,
        time_ms: 1_764_081_000_000 + i,
    })
}

pub fn no_env(_: &str) -> Option<String> {
    None
}

// ----- Mailpit ------------------------------------------------------------------------------

fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the SMTP tests through scripts/test.sh, which starts Mailpit")
    })
}

/// `(host, port)` of the test SMTP server.
pub fn smtp_addr() -> (String, u16) {
    let a = env_or_fail("TICKLAKE_TEST_SMTP_ADDR");
    let (h, p) = a.rsplit_once(':').expect("TICKLAKE_TEST_SMTP_ADDR is host:port");
    (h.to_string(), p.parse().expect("a port"))
}

pub fn mailpit_api() -> String {
    env_or_fail("TICKLAKE_TEST_MAILPIT_API").trim_end_matches('/').to_string()
}

/// An address no other test or run uses.
pub fn unique_address(what: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{what}-{}-{t}@example.com", std::process::id())
}

pub async fn get(url: &str) -> (u16, String) {
    let r = request("GET", url, &[], Bytes::new(), Duration::from_secs(10), TargetPolicy::ANY).await.expect(url);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// One email as Mailpit shows it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub id: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub list_unsubscribe: Option<String>,
}

/// Every email to `address`, oldest first.
pub async fn mails_to(address: &str) -> Vec<Mail> {
    let api = mailpit_api();
    let (status, body) = get(&format!("{api}/api/v1/search?query=to:{address}&limit=500")).await;
    assert_eq!(status, 200, "Mailpit search: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = Vec::new();
    for m in v["messages"].as_array().cloned().unwrap_or_default().into_iter().rev() {
        let id = m["ID"].as_str().unwrap().to_string();
        let to_match = m["To"].as_array().is_some_and(|to| to.iter().any(|t| t["Address"] == address));
        if !to_match {
            continue;
        }
        let (_, full) = get(&format!("{api}/api/v1/message/{id}")).await;
        let f: serde_json::Value = serde_json::from_str(&full).unwrap();
        let (_, headers) = get(&format!("{api}/api/v1/message/{id}/headers")).await;
        let h: serde_json::Value = serde_json::from_str(&headers).unwrap_or_default();
        out.push(Mail {
            id,
            subject: f["Subject"].as_str().unwrap_or_default().to_string(),
            text: f["Text"].as_str().unwrap_or_default().to_string(),
            html: f["HTML"].as_str().unwrap_or_default().to_string(),
            list_unsubscribe: h["List-Unsubscribe"][0].as_str().map(str::to_string),
        });
    }
    out
}

/// The first `http…` link in `text` containing `needle`.
pub fn link(text: &str, needle: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .map(|w| w.trim_end_matches(['>', '.', ')']).to_string())
}
