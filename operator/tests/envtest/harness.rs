//! What the envtest tests share: clients, CRDs, namespaces, operator processes, waiting.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An environment variable the test script sets; a clear failure when it is missing.
pub fn need(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through scripts/test.sh, which starts the API server, Kafka and MinIO"
        )
    })
}

pub async fn client() -> Client {
    let path = need("TICKLAKE_TEST_KUBECONFIG");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("reading the test kubeconfig");
    let cfg =
        Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.expect("kubeconfig");
    Client::try_from(cfg).expect("a client")
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000_000;
    format!("{prefix}-{t}-{}-{}", std::process::id() % 10_000, N.fetch_add(1, Ordering::Relaxed))
}

/// Server-side applies the committed CRDs and waits until they are established.
pub async fn install_crds(c: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    let dir = format!("{}/../crds", env!("CARGO_MANIFEST_DIR"));
    for file in ["stockstreams.yaml", "s3sinks.yaml", "alertsubscriptions.yaml"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("ticklake-tests").force(), &Patch::Apply(&crd)).await.unwrap();
        wait_for(Duration::from_secs(30), &format!("CRD {name} established"), || async {
            let crd = api.get(&name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
}

pub async fn namespace(c: &Client, prefix: &str) -> String {
    let name = unique(&format!("tl-{prefix}"));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(c.clone()).create(&PostParams::default(), &ns).await.unwrap();
    name
}

pub async fn drop_namespace(c: &Client, ns: &str) {
    let _ = Api::<Namespace>::all(c.clone()).delete(ns, &DeleteParams::default()).await;
}

fn resource(plural: &str) -> ApiResource {
    let (group, version, kind) = match plural {
        "stockstreams" => ("ticklake.dev", "v1alpha1", "StockStream"),
        "s3sinks" => ("ticklake.dev", "v1alpha1", "S3Sink"),
        "alertsubscriptions" => ("ticklake.dev", "v1alpha1", "AlertSubscription"),
        "configmaps" => ("", "v1", "ConfigMap"),
        "secrets" => ("", "v1", "Secret"),
        "pods" => ("", "v1", "Pod"),
        "statefulsets" => ("apps", "v1", "StatefulSet"),
        "deployments" => ("apps", "v1", "Deployment"),
        other => panic!("no resource {other}"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn dynamic(c: &Client, ns: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), ns, &resource(plural))
}

/// Creates an object from JSON as a user would (`kubectl create --validate=strict`); the API
/// server's refusal as text.
pub async fn create_raw(_c: &Client, ns: &str, _plural: &str, obj: &Value) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(need("TICKLAKE_TEST_KUBECTL"))
        .arg("--kubeconfig")
        .arg(need("TICKLAKE_TEST_KUBECONFIG"))
        .args(["create", "-n", ns, "--validate=strict", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    child.stdin.take().unwrap().write_all(obj.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Server-side applies a ticklake manifest (as a user would with `kubectl apply --server-side`).
pub async fn apply(c: &Client, ns: &str, obj: Value) {
    let plural = match obj["kind"].as_str().unwrap() {
        "StockStream" => "stockstreams",
        "S3Sink" => "s3sinks",
        "AlertSubscription" => "alertsubscriptions",
        "Secret" => "secrets",
        k => panic!("apply {k}"),
    };
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    dynamic(c, ns, plural)
        .patch(&name, &PatchParams::apply("ticklake-tests").force(), &Patch::Apply(&obj))
        .await
        .unwrap_or_else(|e| panic!("applying {plural}/{name}: {e}"));
}

/// An object as JSON; `None` when absent.
pub async fn get_json(c: &Client, ns: &str, plural: &str, name: &str) -> Option<Value> {
    let o = dynamic(c, ns, plural).get_opt(name).await.unwrap()?;
    Some(serde_json::to_value(o).unwrap())
}

/// JSON merge of `patch` into `target`.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Polls `f` every 250 ms until it returns `Some`, or fails the test after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the `Ready` condition has `reason`; returns the `Ready` and `Degraded` conditions.
pub async fn wait_conditions(c: &Client, ns: &str, plural: &str, name: &str, reason: &str) -> (Value, Value) {
    wait_for(Duration::from_secs(60), &format!("{plural}/{name} Ready reason {reason}"), || async {
        let o = get_json(c, ns, plural, name).await?;
        let cs = o["status"]["conditions"].as_array()?.clone();
        let find = |t: &str| cs.iter().find(|c| c["type"] == t).cloned();
        let ready = find("Ready")?;
        (ready["reason"] == reason).then(|| (ready, find("Degraded").unwrap_or_default()))
    })
    .await
}

/// A StockStream on the test Kafka.
pub fn stockstream_manifest(name: &str, topic: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "StockStream", "metadata": {"name": name},
        "spec": {
            "source": {"simulator": {"ticksPerSecond": 500}},
            "topic": topic, "partitions": 2, "replicas": replicas,
            "kafka": {"bootstrapServers": need("TICKLAKE_TEST_KAFKA_BOOTSTRAP")},
        },
    })
}

/// An S3Sink on the test Kafka and MinIO.
pub fn sink_manifest(name: &str, topic: &str, bucket: &str) -> Value {
    json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "S3Sink", "metadata": {"name": name},
        "spec": {
            "topic": topic, "bucket": bucket, "prefix": "ticks", "region": "us-east-1",
            "endpoint": need("TICKLAKE_TEST_S3_ENDPOINT"), "forcePathStyle": true,
            "kafka": {"bootstrapServers": need("TICKLAKE_TEST_KAFKA_BOOTSTRAP")},
            "flush": {"intervalMs": 1000},
        },
    })
}

/// Runs the test kubectl against the test API server; its stdout (stderr on failure panics).
pub fn kubectl(args: &[&str]) -> String {
    let out = Command::new(need("TICKLAKE_TEST_KUBECTL"))
        .arg("--kubeconfig")
        .arg(need("TICKLAKE_TEST_KUBECONFIG"))
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET http://addr/path`: status code and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return (0, String::new()) };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw).await;
    let code = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// Sum of every sample of a metric (all label sets) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l[name.len()..].chars().next(), Some('{') | Some(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An operator process for one namespace; killed when dropped.
pub struct Operator {
    child: Child,
    pub addr: String,
    pub identity: String,
    pub lease: String,
    pub log: String,
}

impl Operator {
    pub async fn start(ns: &str, identity: &str, extra: &[&str]) -> Operator {
        Self::start_with(ns, identity, extra, &need("TICKLAKE_TEST_KUBECONFIG")).await
    }

    /// As [`Operator::start`], with its own kubeconfig (e.g. a ServiceAccount's token).
    pub async fn start_with(ns: &str, identity: &str, extra: &[&str], kubeconfig: &str) -> Operator {
        let addr = format!("127.0.0.1:{}", free_port());
        let lease = format!("ticklake-operator-{ns}");
        let log = format!("{}/ticklake-operator-{ns}-{identity}.log", std::env::temp_dir().display());
        let child = Command::new(env!("CARGO_BIN_EXE_ticklake-operator"))
            .args(["--kubeconfig", kubeconfig])
            .args([
                "--namespace",
                ns,
                "--metrics-addr",
                &addr,
                "--status-interval-seconds",
                "1",
                "--resync-seconds",
                "1",
            ])
            .args(["--lease-name", &lease, "--lease-namespace", ns, "--lease-duration-seconds", "4"])
            .args(["--identity", identity, "--worker-image", "ticklake:test"])
            .args(extra)
            .env("RUST_LOG", "info,ticklake_operator=debug,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting ticklake-operator");
        let op = Operator { child, addr, identity: identity.to_string(), lease, log };
        wait_for(Duration::from_secs(30), "the operator's health endpoint", || async {
            (op.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
        op
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path).await
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// SIGKILL: no lease release, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- operator log {} ---\n{}", self.log, std::fs::read_to_string(&self.log).unwrap_or_default());
        }
    }
}
