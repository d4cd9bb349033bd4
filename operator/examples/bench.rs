//! Operator benchmark (figures, not a test), against the services `scripts/test.sh --services`
//! starts (real kube-apiserver + etcd + controller-manager, Kafka):
//!
//! ```sh
//! TICKLAKE_SERVICES_ENV=/tmp/svc.env scripts/test.sh --services &   # then: source /tmp/svc.env
//! cargo build --release -p ticklake-operator
//! cargo run --release -p ticklake-operator --example bench -- 1000
//! ```
//!
//! 1. Starts the operator binary (leader election on, one namespace).
//! 2. Creates N StockStreams one after another; the latency of each is from its create call
//!    returning to its StatefulSet appearing in a watch (p50, p99, max).
//! 3. Waits until every status reports generation 1; reads the operator's resident memory.
//! 4. Restarts the API server (`TICKLAKE_TEST_APISERVER_RESTART`), then changes every spec at
//!    once and measures the time until every StatefulSet carries the new configuration and every
//!    status reports generation 2 — convergence after the restart.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticklake_api::crd::StockStream;

fn need(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: source the env file of scripts/test.sh --services"))
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Reconciles, mean duration and writes so far, from the operator's own metrics.
async fn reconcile_summary(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains("StockStream"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (n, secs) = (
        sum("ticklake_operator_reconcile_duration_seconds_count"),
        sum("ticklake_operator_reconcile_duration_seconds_sum"),
    );
    format!(
        "reconciles so far: {n} (mean {:.0} ms), errors {}, writes {}",
        if n > 0.0 { secs / n * 1000.0 } else { 0.0 },
        sum("ticklake_operator_reconcile_errors_total"),
        sum("ticklake_operator_writes_total"),
    )
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let kubeconfig = need("TICKLAKE_TEST_KUBECONFIG");
    let kafka = need("TICKLAKE_TEST_KAFKA_BOOTSTRAP");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let c = kube::Client::try_from(cfg).unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    for f in ["stockstreams.yaml", "s3sinks.yaml", "alertsubscriptions.yaml"] {
        let crd: CustomResourceDefinition = serde_yaml::from_str(
            &std::fs::read_to_string(format!("{}/../crds/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
        )
        .unwrap();
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&crd)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ns = format!("bench-{}", std::process::id());
    let nso: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(c.clone()).create(&PostParams::default(), &nso).await.unwrap();

    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("ticklake-operator");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut op = std::process::Command::new(&bin)
        .args(["--kubeconfig", &kubeconfig, "--namespace", &ns, "--metrics-addr", &metrics_addr])
        .args(["--lease-namespace", &ns, "--status-interval-seconds", "30"])
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release -p ticklake-operator first)", bin.display()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle, _) = rss_kib(op.id());

    // Watch StatefulSets: when each first appears.
    let seen: Arc<Mutex<HashMap<String, (Instant, String)>>> = Arc::default();
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    {
        let seen = seen.clone();
        let sets = sets.clone();
        tokio::spawn(async move {
            let mut w = watcher(sets, watcher::Config::default()).default_backoff().boxed();
            while let Some(ev) = w.next().await {
                if let Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) = ev {
                    let hash = s
                        .spec
                        .as_ref()
                        .and_then(|sp| {
                            sp.template
                                .metadata
                                .as_ref()?
                                .annotations
                                .as_ref()?
                                .get("ticklake.dev/config-hash")
                                .cloned()
                        })
                        .unwrap_or_default();
                    let name = s.metadata.name.clone().unwrap_or_default();
                    let mut m = seen.lock().unwrap();
                    match m.get(&name) {
                        Some((_, h)) if *h == hash => {}
                        _ => {
                            m.insert(name, (Instant::now(), hash));
                        }
                    }
                }
            }
        });
    }
    let api: Api<StockStream> = Api::namespaced(c.clone(), &ns);
    let manifest = |i: usize, tps: u64| {
        json!({
            "apiVersion": "ticklake.dev/v1alpha1", "kind": "StockStream", "metadata": {"name": format!("s{i}")},
            "spec": {"source": {"simulator": {"ticksPerSecond": tps}}, "topic": format!("{ns}-s{i}"),
                     "partitions": 1, "kafka": {"bootstrapServers": kafka}},
        })
    };
    let started = Instant::now();
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        api.patch(&format!("s{i}"), &PatchParams::apply("bench"), &Patch::Apply(manifest(i, 100))).await.unwrap();
        created.push(Instant::now());
    }
    let create_secs = started.elapsed().as_secs_f64();
    let wait_all = |generation: i64| {
        let api = api.clone();
        async move {
            loop {
                let list = api.list(&Default::default()).await.unwrap();
                let done = list
                    .items
                    .iter()
                    .filter(|s| s.status.as_ref().and_then(|st| st.observed_generation) == Some(generation))
                    .count();
                if done == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    wait_all(1).await;
    let converged = started.elapsed().as_secs_f64();
    let mut lat: Vec<Duration> = {
        let m = seen.lock().unwrap();
        (0..n)
            .map(|i| m.get(&format!("s{i}-producer")).map(|(t, _)| t.saturating_duration_since(created[i])).unwrap())
            .collect()
    };
    lat.sort();
    let (rss, hwm) = rss_kib(op.id());
    println!("resources: {n}");
    println!("created in {create_secs:.1} s; all Ready-reported (status generation 1) after {converged:.1} s");
    println!(
        "apply → StatefulSet latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        quantile(&lat, 0.5).as_secs_f64() * 1000.0,
        quantile(&lat, 0.99).as_secs_f64() * 1000.0,
        lat.last().unwrap().as_secs_f64() * 1000.0
    );
    println!(
        "operator memory: idle {} MiB; with {n} resources RSS {} MiB, peak {} MiB",
        idle / 1024,
        rss / 1024,
        hwm / 1024
    );

    let restart = need("TICKLAKE_TEST_APISERVER_RESTART");
    let t = Instant::now();
    let ok = std::process::Command::new(&restart).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(ok.success(), "restarting the API server failed");
    let down = t.elapsed().as_secs_f64();
    let before: HashMap<String, String> =
        seen.lock().unwrap().iter().map(|(k, (_, h))| (k.clone(), h.clone())).collect();
    let t = Instant::now();
    for i in 0..n {
        loop {
            match api.patch(&format!("s{i}"), &PatchParams::apply("bench"), &Patch::Apply(manifest(i, 200))).await {
                Ok(_) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    let updated = t.elapsed().as_secs_f64();
    loop {
        let changed = {
            let m = seen.lock().unwrap();
            m.iter().filter(|(k, (_, h))| before.get(*k).is_some_and(|b| b != h)).count()
        };
        if changed == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rolled = t.elapsed().as_secs_f64();
    wait_all(2).await;
    let reported = t.elapsed().as_secs_f64();
    println!(
        "API server restart took {down:.1} s; then {n} spec changes sent in {updated:.1} s; every StatefulSet rolled after {rolled:.1} s, every status at generation 2 after {reported:.1} s"
    );
    println!("{}", reconcile_summary(&metrics_addr).await);
    let (rss, hwm) = rss_kib(op.id());
    println!("operator memory after: RSS {} MiB, peak {} MiB", rss / 1024, hwm / 1024);
    let _ = op.kill();
    let _ = op.wait();
}
