//! The contract between operator and workers, end to end: the operator renders the workers'
//! configuration; this test runs the real `ticklake` worker processes with exactly that
//! configuration (arguments, environment with Secret references resolved, the ConfigMap as the
//! mounted file) against the real Kafka and MinIO, stands in for the kubelet by marking the
//! pods running at the workers' addresses, and sees ticks land and the live figures reach the
//! resources' status and `kubectl get`.

use crate::harness::*;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A worker process and the address of its `/metrics`, `/status`...; stopped when dropped.
struct Worker {
    child: Child,
    addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `ticklake` binary, built by the same `cargo test --workspace`.
fn ticklake_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("ticklake");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace) so it is built",
        bin.display()
    );
    bin
}

/// Starts the container as the kubelet would: `args` with the mounted config folder mapped to
/// `config_dir`, environment resolved (`value` with `$(VAR)`, `fieldRef`, `secretKeyRef`).
async fn run_container(
    c: &kube::Client,
    ns: &str,
    container: &Container,
    pod_name: &str,
    pod_ip: &str,
    config_dir: &std::path::Path,
) -> Worker {
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let mut v = v.clone();
            for (k, val) in &env {
                v = v.replace(&format!("$({k})"), val);
            }
            v
        } else {
            let from = e.value_from.as_ref().expect("value or valueFrom");
            if let Some(f) = &from.field_ref {
                match f.field_path.as_str() {
                    "metadata.name" => pod_name.to_string(),
                    "metadata.labels['apps.kubernetes.io/pod-index']" => "0".to_string(),
                    other => panic!("unexpected fieldRef {other}"),
                }
            } else if let Some(s) = &from.secret_key_ref {
                let secret = secrets.get(&s.name).await.unwrap();
                String::from_utf8(secret.data.unwrap()[&s.key].0.clone()).unwrap()
            } else {
                panic!("unexpected valueFrom {from:?}")
            }
        };
        env.push((e.name.clone(), value));
    }
    // The one difference from a pod: the address is this pod's loopback IP, same port.
    for (k, v) in env.iter_mut() {
        if k == "TICKLAKE_METRICS_ADDR" {
            *v = v.replace("0.0.0.0", pod_ip);
        }
    }
    let mount = container.volume_mounts.iter().flatten().find(|m| m.name == "config").unwrap().mount_path.clone();
    let args: Vec<String> =
        container.args.iter().flatten().map(|a| a.replace(&mount, &config_dir.display().to_string())).collect();
    let log = std::fs::File::create(config_dir.join("worker.log")).unwrap();
    let mut cmd = Command::new(ticklake_bin());
    cmd.args(&args).stdout(Stdio::null()).stderr(log);
    // Credentials only from what the operator rendered, not from the test's environment.
    cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let addr = env.iter().find(|(k, _)| k == "TICKLAKE_METRICS_ADDR").map(|(_, v)| v.clone()).expect("metrics address");
    cmd.envs(env);
    Worker { child: cmd.spawn().expect("starting the worker"), addr }
}

/// Marks a pod as running and ready at `ip`, as a kubelet would.
async fn mark_running(pods: &Api<Pod>, name: &str, ip: &str) {
    let now = chrono_now();
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "startTime": now,
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

fn chrono_now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_with_the_rendered_configuration_and_report_status() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "e2e").await;
    let op = Operator::start(&ns, "op", &[]).await;
    let topic = unique("e2e");
    let bucket = unique("e2e-lake");
    // The bucket exists before the sink (the operator does not create buckets).
    ticklake_workers::store::S3Store::connect(ticklake_workers::store::S3Options {
        bucket: bucket.clone(),
        region: Some("us-east-1".into()),
        endpoint: Some(need("TICKLAKE_TEST_S3_ENDPOINT")),
        force_path_style: true,
        max_attempts: None,
    })
    .await
    .unwrap()
    .ensure_bucket()
    .await
    .unwrap();
    apply(&c, &ns, json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds"},
        "stringData": {"AWS_ACCESS_KEY_ID": need("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": need("AWS_SECRET_ACCESS_KEY")},
    }))
    .await;
    apply(&c, &ns, stockstream_manifest("e2e", &topic, 1)).await;
    let mut sink = sink_manifest("e2e-lake", &topic, &bucket);
    sink["spec"]["credentialsSecretRef"] = json!({"name": "s3-creds"});
    apply(&c, &ns, sink).await;

    let pods: Api<Pod> = Api::namespaced(c.clone(), &ns);
    let mut workers = Vec::new();
    let mut dirs = Vec::new();
    for (component, ip) in [("producer", "127.0.0.1"), ("sink", "127.0.0.2")] {
        let selector = format!("app.kubernetes.io/component={component}");
        // The controller-manager creates the workload's pod (Pending: no kubelet).
        let pod = wait_for(Duration::from_secs(60), &format!("the {component} pod"), || async {
            pods.list(&ListParams::default().labels(&selector)).await.ok()?.items.into_iter().next()
        })
        .await;
        let pod_name = pod.metadata.name.clone().unwrap();
        let config_name = pod
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "config")
            .unwrap()
            .config_map
            .as_ref()
            .unwrap()
            .name
            .clone();
        let data = get_json(&c, &ns, "configmaps", &config_name).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resource.yaml"), data["data"]["resource.yaml"].as_str().unwrap()).unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        workers.push(run_container(&c, &ns, &container, &pod_name, ip, dir.path()).await);
        mark_running(&pods, &pod_name, ip).await;
        dirs.push(dir);
    }

    // The workers' figures reach the status.
    let status = wait_for(Duration::from_secs(120), "live figures in the S3Sink status", || async {
        let s = get_json(&c, &ns, "s3sinks", "e2e-lake").await?;
        let st = &s["status"];
        (st["lastObjectKey"].as_str()?.starts_with("ticks/year=") && st["objectsWritten"].as_i64()? > 0)
            .then(|| st.clone())
    })
    .await;
    let produced = wait_for(Duration::from_secs(60), "live figures in the StockStream status", || async {
        let s = get_json(&c, &ns, "stockstreams", "e2e").await?;
        let st = &s["status"];
        (st["producedTotal"].as_i64()? > 0 && st["messagesPerSecond"].as_f64()? > 0.0).then(|| st.clone())
    })
    .await;
    let (ready, _) = wait_conditions(&c, &ns, "stockstreams", "e2e", "Running").await;
    assert_eq!(ready["status"], "True");
    let (ready, _) = wait_conditions(&c, &ns, "s3sinks", "e2e-lake", "Running").await;
    assert_eq!(ready["status"], "True");
    eprintln!("S3Sink status: {status}\nStockStream status: {produced}");
    let table = kubectl(&["get", "stockstreams,s3sinks", "-n", &ns, "-o", "wide"]);
    eprintln!("{table}");
    assert!(table.contains("True") && table.contains("Running") && table.contains("ticks/year="), "{table}");

    // The chart's Grafana dashboard queries only what the operator and the workers export (once
    // the sink has landed data, so the figures are there). The operator's error counter has no
    // series, and so is not exposed at all, until a reconcile fails: one with an unreachable
    // Kafka makes it appear.
    let mut unreachable = stockstream_manifest("unreachable", &unique("unreachable"), 1);
    unreachable["spec"]["kafka"]["bootstrapServers"] = json!("127.0.0.1:1");
    apply(&c, &ns, unreachable).await;
    let op_metrics = wait_for(Duration::from_secs(60), "a failed reconcile counted", || async {
        let m = op.metrics().await;
        (metric_sum(&m, "ticklake_operator_reconcile_errors_total") >= 1.0).then_some(m)
    })
    .await;
    let mut scrapes = vec![op_metrics];
    for (w, landed) in workers.iter().zip(["ticklake_producer_ticks_total", "ticklake_sink_records_total"]) {
        let text = wait_for(Duration::from_secs(30), &format!("{landed} on {}/metrics", w.addr), || async {
            let (code, text) = http_get(&w.addr, "/metrics").await;
            (code == 200 && metric_sum(&text, landed) > 0.0).then_some(text)
        })
        .await;
        scrapes.push(text);
    }
    crate::dashboard::assert_dashboard_metrics_exported(&scrapes);

    // And the ticks really are in MinIO, exactly once.
    drop(workers);
    let store = ticklake_workers::store::S3Store::connect(ticklake_workers::store::S3Options {
        bucket: bucket.clone(),
        region: Some("us-east-1".into()),
        endpoint: Some(need("TICKLAKE_TEST_S3_ENDPOINT")),
        force_path_style: true,
        max_attempts: None,
    })
    .await
    .unwrap();
    let stats = ticklake_workers::verify::scan(&store, "ticks", "_dead_letters").await.unwrap();
    eprintln!("landed: {stats:?}");
    assert!(stats.rows > 0 && stats.data_objects > 0, "{stats:?}");
    assert_eq!(stats.duplicates, 0);
    assert_eq!(stats.dead_letters, 0);
    // Its finalizer would wait for the unreachable Kafka.
    kubectl(&["delete", "stockstreams", "unreachable", "-n", &ns, "--wait=false"]);
    drop_namespace(&c, &ns).await;
}
