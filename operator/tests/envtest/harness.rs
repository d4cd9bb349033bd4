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

/// The Helm release that owns the CRDs on the test API server: `chart.rs` installs the chart
/// as this release, which adopts the CRDs the other tests applied (as a user adopts CRDs first
/// applied with kubectl: Helm's ownership label and annotations, set here).
pub const CHART_RELEASE: &str = "ticklake";
pub const CHART_RELEASE_NAMESPACE: &str = "ticklake-system";

/// Server-side applies the committed CRDs and waits until they are established.
pub async fn install_crds(c: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    let dir = format!("{}/../crds", env!("CARGO_MANIFEST_DIR"));
    for file in ["stockstreams.yaml", "s3sinks.yaml", "alertsubscriptions.yaml"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let mut crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
        crd.metadata.labels = Some([("app.kubernetes.io/managed-by".to_string(), "Helm".to_string())].into());
        crd.metadata.annotations = Some(
            [
                ("meta.helm.sh/release-name".to_string(), CHART_RELEASE.to_string()),
                ("meta.helm.sh/release-namespace".to_string(), CHART_RELEASE_NAMESPACE.to_string()),
            ]
            .into(),
        );
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("ticklake-tests").force(), &Patch::Apply(&crd)).await.unwrap();
        wait_for(Duration::from_secs(30), &format!("CRD {name} established"), || async {
            let crd = api.get(&name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
}

/// Runs the test Helm (`TICKLAKE_TEST_HELM`) against the test API server: stdout, or stderr as
/// the error.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(need("TICKLAKE_TEST_HELM"))
        .arg("--kubeconfig")
        .arg(need("TICKLAKE_TEST_KUBECONFIG"))
        .args(args)
        .output()
        .expect("running helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("helm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The chart folder.
pub fn chart_dir() -> String {
    format!("{}/../charts/ticklake", env!("CARGO_MANIFEST_DIR"))
}

/// A kubeconfig for the test API server that authenticates as `sa` in `ns` (a fresh token).
pub fn service_account_kubeconfig(ns: &str, sa: &str) -> String {
    let token = kubectl(&["create", "token", sa, "-n", ns, "--duration", "3h"]).trim().to_string();
    let admin: Value =
        serde_yaml::from_str(&std::fs::read_to_string(need("TICKLAKE_TEST_KUBECONFIG")).unwrap()).unwrap();
    let cluster = admin["clusters"][0]["cluster"].clone();
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": "test", "user": sa}}],
        "current-context": sa,
    });
    let file = std::env::temp_dir().join(format!("ticklake-{ns}-{sa}-{}.kubeconfig", std::process::id()));
    std::fs::write(&file, serde_yaml::to_string(&kubeconfig).unwrap()).unwrap();
    file.to_string_lossy().into_owned()
}

/// Where the operators of the tests run, as far as RBAC goes: release `envtest` of the chart,
/// default values, in this namespace. Their Leases live here too (the chart's leader-election
/// Role is in the release namespace).
pub const OPERATOR_NAMESPACE: &str = "ticklake-envtest";

/// A kubeconfig with the token of the chart's operator ServiceAccount, bound to exactly the
/// chart's RBAC (rendered by `helm template` with the default values and applied once per
/// test process). Every operator the tests start runs with it, so the whole suite checks that
/// the chart grants what the operator uses.
pub async fn chart_rbac_kubeconfig() -> String {
    static KUBECONFIG: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KUBECONFIG
        .get_or_init(|| async {
            let rendered = helm(&[
                "template",
                "envtest",
                &chart_dir(),
                "--namespace",
                OPERATOR_NAMESPACE,
                "--show-only",
                "templates/serviceaccount.yaml",
                "--show-only",
                "templates/rbac.yaml",
            ])
            .unwrap();
            let _ = kubectl_try(&["create", "namespace", OPERATOR_NAMESPACE]);
            let file = std::env::temp_dir().join(format!("ticklake-envtest-rbac-{}.yaml", std::process::id()));
            std::fs::write(&file, rendered).unwrap();
            kubectl(&["apply", "--server-side", "--force-conflicts", "-f", file.to_str().unwrap()]);
            service_account_kubeconfig(OPERATOR_NAMESPACE, "envtest-ticklake-operator")
        })
        .await
        .clone()
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

/// As [`kubectl`], the error as text instead of a panic.
pub fn kubectl_try(args: &[&str]) -> Result<String, String> {
    let out = Command::new(need("TICKLAKE_TEST_KUBECTL"))
        .arg("--kubeconfig")
        .arg(need("TICKLAKE_TEST_KUBECONFIG"))
        .args(args)
        .output()
        .expect("running kubectl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn free_port() -> u16 {
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

/// The IAM role the tests' operators give Glue crawlers.
pub const TEST_CRAWLER_ROLE: &str = "arn:aws:iam::123456789012:role/ticklake-crawler";

/// Static AWS credentials for an operator process (standing in for IRSA's web identity in a
/// pod): the test environment's (moto accepts any).
pub fn aws_credentials() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].iter().map(|k| (k.to_string(), need(k))).collect();
    env.push(("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()));
    env
}

/// AWS clients on the tests' moto server, to check what the operator did there.
pub async fn aws_clients() -> ticklake_aws::Clients {
    ticklake_aws::Clients::new(&ticklake_aws::AwsSettings {
        region: Some("us-east-1".into()),
        endpoint: Some(need("TICKLAKE_TEST_AWS_ENDPOINT")),
        max_attempts: Some(3),
    })
    .await
}

/// Held by the tests that apply `deploy/examples/` (fixed AWS names: one at a time).
pub async fn examples_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// An operator process; killed when dropped. Its log must not show a refusal by the API server
/// (checked on drop): the operators of the tests run with the chart's RBAC.
pub struct Operator {
    child: Child,
    pub addr: String,
    pub identity: String,
    pub lease: String,
    pub lease_namespace: String,
    pub log: String,
}

impl Operator {
    /// An operator for one namespace, as the chart's ServiceAccount ([`chart_rbac_kubeconfig`]),
    /// its Lease in [`OPERATOR_NAMESPACE`].
    pub async fn start(ns: &str, identity: &str, extra: &[&str]) -> Operator {
        let kubeconfig = chart_rbac_kubeconfig().await;
        let addr = format!("127.0.0.1:{}", free_port());
        let lease = format!("ticklake-operator-{ns}");
        let mut args: Vec<String> = ["--kubeconfig", &kubeconfig, "--namespace", ns, "--metrics-addr", &addr]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for a in ["--status-interval-seconds", "1", "--resync-seconds", "1", "--lease-name", &lease] {
            args.push(a.to_string());
        }
        for a in ["--lease-namespace", OPERATOR_NAMESPACE, "--lease-duration-seconds", "4", "--identity", identity] {
            args.push(a.to_string());
        }
        args.extend(["--worker-image".to_string(), "ticklake:test".to_string()]);
        // AWS is moto's server (scripts/test.sh); the crawler role is any well-formed ARN there.
        args.extend(["--aws-endpoint-url".to_string(), need("TICKLAKE_TEST_AWS_ENDPOINT")]);
        args.extend(["--aws-region".to_string(), "us-east-1".to_string()]);
        args.extend(["--glue-crawler-role".to_string(), TEST_CRAWLER_ROLE.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env = vec![("RUST_LOG".to_string(), "info,ticklake_operator=debug,kube=warn".to_string())];
        env.extend(aws_credentials());
        Self::spawn(&format!("{ns}-{identity}"), &args, &env, &addr, identity, &lease, OPERATOR_NAMESPACE).await
    }

    /// Starts `ticklake-operator` with exactly these arguments and environment, serving metrics on
    /// `addr`; waits for its health endpoint.
    pub async fn spawn(
        log_name: &str,
        args: &[String],
        env: &[(String, String)],
        addr: &str,
        identity: &str,
        lease: &str,
        lease_namespace: &str,
    ) -> Operator {
        let log = format!("{}/ticklake-operator-{log_name}.log", std::env::temp_dir().display());
        let child = Command::new(env!("CARGO_BIN_EXE_ticklake-operator"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting ticklake-operator");
        let op = Operator {
            child,
            addr: addr.to_string(),
            identity: identity.to_string(),
            lease: lease.to_string(),
            lease_namespace: lease_namespace.to_string(),
            log,
        };
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
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        if std::thread::panicking() {
            eprintln!("--- operator log {} ---\n{log}", self.log);
        } else if log.to_lowercase().contains("forbidden") {
            panic!("the API server refused the operator something its RBAC lacks; log {}:\n{log}", self.log);
        }
    }
}
