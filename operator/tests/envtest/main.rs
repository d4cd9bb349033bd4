//! The operator against a real kube-apiserver + etcd + kube-controller-manager (no kubelet),
//! a real Kafka broker and a real MinIO — all started by `scripts/test.sh`, which exports:
//! `TICKLAKE_TEST_KUBECONFIG`, `TICKLAKE_TEST_KUBECTL`, `TICKLAKE_TEST_KAFKA_BOOTSTRAP`,
//! `TICKLAKE_TEST_S3_ENDPOINT` and the MinIO credentials in `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`.
//!
//! Each test runs its own operator process(es) (`ticklake-operator --namespace <ns>`) in a
//! namespace of its own, so tests run in parallel without seeing each other.

#![cfg(feature = "envtest")]

mod aws;
mod chart;
mod dashboard;
mod harness;
mod lifecycle;
mod workers;

use harness::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::time::Duration;
use ticklake_api::crd::StockStream;

/// Bad specs are refused by the CRD schema with a message that says what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_refuse_bad_specs_with_useful_messages() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "crd").await;
    let good = json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "StockStream",
        "metadata": {"name": "good"},
        "spec": {"source": {"simulator": {}}, "topic": "t", "kafka": {"bootstrapServers": "k:9092"}},
    });
    let cases = [
        (
            json!({"spec": {"source": {"replay": {"files": ["a.csv"], "mapping": {"preset": "kaggleIndexProcessed"}}}}}),
            "exactly one of source",
        ),
        (json!({"spec": {"topic": ".."}}), "not valid Kafka topic"),
        (
            json!({"spec": {"kafka": {"securityProtocol": "SASL_SSL", "secretRef": {"name": "k"}}}}),
            "saslMechanism is required",
        ),
        (json!({"metadata": {"name": "x".repeat(44)}}), "at most 43 characters"),
        (json!({"spec": {"partitions": 0}}), "should be greater than or equal to 1"),
        (json!({"spec": {"topik": "typo"}}), "unknown field"),
    ];
    for (patch, expected) in cases {
        let mut obj = good.clone();
        merge(&mut obj, &patch);
        if obj["metadata"]["name"] == "good" {
            obj["metadata"]["name"] = json!(unique("bad"));
        }
        let err = create_raw(&c, &ns, "stockstreams", &obj).await.expect_err(&format!("{patch} must be refused"));
        assert!(err.contains(expected), "{patch}: expected {expected:?} in the refusal, got: {err}");
    }
    // Partitions only grow (a transition rule, checked on update).
    create_raw(&c, &ns, "stockstreams", &good).await.expect("a good StockStream is admitted");
    let api: Api<StockStream> = Api::namespaced(c.clone(), &ns);
    let mut live = api.get("good").await.unwrap();
    assert_eq!(live.spec.partitions, 6, "the schema's default");
    live.spec.partitions = 8;
    api.replace("good", &PostParams::default(), &live).await.expect("growing partitions is allowed");
    live = api.get("good").await.unwrap();
    live.spec.partitions = 7;
    let err = api.replace("good", &PostParams::default(), &live).await.expect_err("shrinking must be refused");
    assert!(err.to_string().contains("partitions can only grow"), "{err}");
    let sink = json!({
        "apiVersion": "ticklake.dev/v1alpha1", "kind": "S3Sink", "metadata": {"name": "s"},
        "spec": {"topic": "t", "bucket": "b-ok", "prefix": "ticks",
                 "athena": {"workgroup": "w", "resultLocation": "s3://b-ok/ticks/results/"}},
    });
    let err = create_raw(&c, &ns, "s3sinks", &sink).await.expect_err("results inside the table");
    assert!(err.contains("must not be inside the sink's own data"), "{err}");
    drop_namespace(&c, &ns).await;
}

/// An unchanged resource is reconciled again and again (status interval 1 s) without a single
/// write: no object's resourceVersion moves and the operator's write counter stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconcile_of_an_unchanged_resource_writes_nothing() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "idem").await;
    let op = Operator::start(&ns, "op", &[]).await;
    let topic = unique("idem");
    apply(&c, &ns, stockstream_manifest("idem", &topic, 1)).await;
    apply(&c, &ns, sink_manifest("idem-lake", &topic, "idem-bucket")).await;
    wait_for(Duration::from_secs(60), "both resources reconciled", || async {
        let ss = get_json(&c, &ns, "stockstreams", "idem").await?;
        let sk = get_json(&c, &ns, "s3sinks", "idem-lake").await?;
        (ss["status"]["observedGeneration"] == 1 && sk["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;
    // Let the controller-manager finish its own status updates of the workloads.
    let snapshot = || async {
        let mut v = Vec::new();
        for (plural, name) in [
            ("stockstreams", "idem"),
            ("s3sinks", "idem-lake"),
            ("configmaps", "idem-producer-config"),
            ("configmaps", "idem-lake-sink-config"),
            ("statefulsets", "idem-producer"),
            ("deployments", "idem-lake-sink"),
        ] {
            let o = get_json(&c, &ns, plural, name).await.unwrap_or_default();
            v.push(format!("{plural}/{name}@{}", o["metadata"]["resourceVersion"]));
        }
        v
    };
    let mut before = snapshot().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = snapshot().await;
        if now == before {
            break;
        }
        before = now;
    }
    let writes_before = metric_sum(&op.metrics().await, "ticklake_operator_writes_total");
    let reconciles_before = metric_sum(&op.metrics().await, "ticklake_operator_reconciles_total");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = op.metrics().await;
    assert!(
        metric_sum(&m, "ticklake_operator_reconciles_total") >= reconciles_before + 6.0,
        "the operator kept reconciling:\n{m}"
    );
    assert_eq!(snapshot().await, before, "no object changed");
    assert_eq!(metric_sum(&m, "ticklake_operator_writes_total"), writes_before, "no writes:\n{m}");
    drop(op);
    drop_namespace(&c, &ns).await;
}

/// Two operator replicas: one holds the Lease and reconciles; killed, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_failover() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "lead").await;
    let a = Operator::start(&ns, "replica-a", &[]).await;
    let b = Operator::start(&ns, "replica-b", &[]).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), &a.lease_namespace);
    let holder = wait_for(Duration::from_secs(30), "a leader", || async {
        leases.get_opt(&a.lease).await.ok().flatten()?.spec?.holder_identity
    })
    .await;
    assert!(holder == "replica-a" || holder == "replica-b", "{holder}");
    let (mut leader, follower) = if holder == "replica-a" { (a, b) } else { (b, a) };
    // Exactly one leads: the leader gauge says so on each.
    assert_eq!(metric_sum(&leader.metrics().await, "ticklake_operator_leader"), 1.0);
    assert_eq!(metric_sum(&follower.metrics().await, "ticklake_operator_leader"), 0.0);
    apply(&c, &ns, stockstream_manifest("one", &unique("one"), 1)).await;
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    wait_for(Duration::from_secs(30), "the leader reconciles", || async {
        sets.get_opt("one-producer").await.ok().flatten()
    })
    .await;
    assert_eq!(metric_sum(&follower.metrics().await, "ticklake_operator_reconciles_total"), 0.0, "the follower waits");
    // The leader dies without releasing the Lease: the follower takes over once it expires.
    leader.kill();
    let started = std::time::Instant::now();
    apply(&c, &ns, stockstream_manifest("two", &unique("two"), 1)).await;
    let new = wait_for(Duration::from_secs(60), "the follower takes over", || async {
        let h = leases.get_opt(&follower.lease).await.ok().flatten()?.spec?.holder_identity?;
        (h == follower.identity).then_some(h)
    })
    .await;
    assert_eq!(new, follower.identity);
    wait_for(Duration::from_secs(30), "the new leader reconciles", || async {
        sets.get_opt("two-producer").await.ok().flatten()
    })
    .await;
    eprintln!("failover took {:?} (lease duration 4 s)", started.elapsed());
    assert_eq!(metric_sum(&follower.metrics().await, "ticklake_operator_leader"), 1.0);
    drop(follower);
    drop_namespace(&c, &ns).await;
}

/// `kubectl apply -f deploy/examples/` gives the workers' workloads and, on AWS (moto), the Glue
/// crawler and database, the Athena workgroup with named queries, the SNS topic with the email
/// subscription and the bucket notification; `kubectl get` shows meaningful columns;
/// `kubectl delete` removes exactly what was created (finalizers on AWS, the garbage collector
/// in Kubernetes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_the_examples_then_delete() {
    let _one_at_a_time = examples_lock().await;
    let c = client().await;
    install_crds(&c).await;
    aws::examples_bucket().await;
    let ns = namespace(&c, "examples").await;
    let kafka = need("TICKLAKE_TEST_KAFKA_BOOTSTRAP");
    let _op = Operator::start(&ns, "op", &["--default-kafka-bootstrap", &kafka]).await;
    let examples = format!("{}/../deploy/examples/", env!("CARGO_MANIFEST_DIR"));
    let out = kubectl(&["apply", "-n", &ns, "-f", &examples]);
    assert!(out.contains("stockstream.ticklake.dev/ticks"), "{out}");
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(c.clone(), &ns);
    wait_for(Duration::from_secs(60), "the examples' workloads", || async {
        let s = sets.get_opt("ticks-producer").await.ok().flatten()?;
        let d = deployments.get_opt("ticks-lake-sink").await.ok().flatten()?;
        Some((s, d))
    })
    .await;
    wait_for(Duration::from_secs(60), "status of the examples", || async {
        let ss = get_json(&c, &ns, "stockstreams", "ticks").await?;
        let sk = get_json(&c, &ns, "s3sinks", "ticks-lake").await?;
        (ss["status"]["topicPartitions"] == 6 && sk["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;
    let table = kubectl(&["get", "stockstreams,s3sinks,alertsubscriptions", "-n", &ns]);
    eprintln!("{table}");
    for column in ["READY", "TOPIC", "REPLICAS", "MSG/S", "PRODUCED", "BUCKET", "LAG", "DEAD", "ENDPOINTS"] {
        assert!(table.contains(column), "column {column} missing:\n{table}");
    }
    wait_conditions(&c, &ns, "stockstreams", "ticks", "PodsStarting").await;
    let wide = kubectl(&["get", "stockstreams", "-n", &ns, "-o", "wide"]);
    assert!(wide.contains("REASON") && wide.contains("PodsStarting"), "{wide}");
    // The AWS side (moto): crawler, database, workgroup, named queries, topic, email
    // subscription, bucket notification, notifier worker.
    let on_aws = aws::examples_on_aws(&c, &ns).await;
    kubectl(&["delete", "-n", &ns, "-f", &examples, "--wait=true", "--timeout=90s"]);
    on_aws.assert_removed().await;
    wait_for(Duration::from_secs(60), "garbage collection of the workloads", || async {
        let s = sets.get_opt("ticks-producer").await.ok()?;
        let d = deployments.get_opt("ticks-lake-sink").await.ok()?;
        let cm = get_json(&c, &ns, "configmaps", "ticks-producer-config").await;
        (s.is_none() && d.is_none() && cm.is_none()).then_some(())
    })
    .await;
    drop_namespace(&c, &ns).await;
}

/// A resource that cannot run is reported in its status — the operator keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_or_unreachable_is_reported_not_crashed() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "bad").await;
    let op = Operator::start(&ns, "op", &[]).await;
    // No Kafka anywhere: nothing to deploy, said so.
    let mut no_kafka = stockstream_manifest("nokafka", "t", 1);
    no_kafka["spec"]["kafka"] = json!({});
    apply(&c, &ns, no_kafka).await;
    let (ready, degraded) = wait_conditions(&c, &ns, "stockstreams", "nokafka", "KafkaNotConfigured").await;
    assert_eq!(ready["status"], "False");
    assert_eq!(degraded["status"], "True");
    assert!(degraded["message"].as_str().unwrap().contains("bootstrapServers"), "{degraded}");
    assert!(get_json(&c, &ns, "statefulsets", "nokafka-producer").await.is_none(), "nothing deployed");
    // Kafka unreachable: the workers are deployed, the topic is retried with backoff.
    let mut unreachable = stockstream_manifest("unreachable", "t", 1);
    unreachable["spec"]["kafka"]["bootstrapServers"] = json!("127.0.0.1:1");
    apply(&c, &ns, unreachable).await;
    let (ready, _) = wait_conditions(&c, &ns, "stockstreams", "unreachable", "KafkaUnavailable").await;
    assert_eq!(ready["status"], "False");
    assert!(get_json(&c, &ns, "statefulsets", "unreachable-producer").await.is_some());
    wait_for(Duration::from_secs(60), "retries counted as errors", || async {
        let m = op.metrics().await;
        (metric_sum(&m, "ticklake_operator_reconcile_errors_total") >= 2.0).then_some(())
    })
    .await;
    // A sink whose topic does not exist yet: not ready, not degraded.
    apply(&c, &ns, sink_manifest("early", &unique("missing"), "early-bucket")).await;
    let (ready, degraded) = wait_conditions(&c, &ns, "s3sinks", "early", "TopicMissing").await;
    assert_eq!((ready["status"].as_str(), degraded["status"].as_str()), (Some("False"), Some("False")));
    // A subscription to a sink that does not exist, then does.
    apply(
        &c,
        &ns,
        json!({
            "apiVersion": "ticklake.dev/v1alpha1", "kind": "AlertSubscription", "metadata": {"name": "alerts"},
            "spec": {"watch": {"sinkRef": "later"}, "endpoints": [{"protocol": "email", "address": "ops@example.com"}]},
        }),
    )
    .await;
    wait_conditions(&c, &ns, "alertsubscriptions", "alerts", "SinkNotFound").await;
    // The sink writes to MinIO: S3-compatible stores cannot notify SNS or SQS, and status says so.
    apply(&c, &ns, sink_manifest("later", &unique("later"), "later-bucket")).await;
    let (_, degraded) =
        wait_conditions(&c, &ns, "alertsubscriptions", "alerts", "BucketNotificationsUnsupported").await;
    assert!(degraded["message"].as_str().unwrap_or_default().contains("ticklake local up"), "{degraded}");
    assert_eq!(op.get("/healthz").await.0, 200, "the operator is fine");
    // Events tell what failed.
    let events = kubectl(&["get", "events", "-n", &ns]);
    assert!(events.contains("KafkaNotConfigured") && events.contains("KafkaUnavailable"), "{events}");
    drop(op);
    let api: Api<StockStream> = Api::namespaced(c.clone(), &ns);
    let _ = api.delete("unreachable", &DeleteParams::default()).await;
    drop_namespace(&c, &ns).await;
}

/// The operator needs no more than the chart's RBAC (every operator of these tests runs with
/// it; this test walks the whole life of a StockStream to be sure each permission is used:
/// objects, topic, status, events, lease, finalizer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_is_enough() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "rbac").await;
    let op = Operator::start(&ns, "rbac", &[]).await;
    let kafka = ticklake_bus::kafka::KafkaBus::new(&need("TICKLAKE_TEST_KAFKA_BOOTSTRAP")).unwrap();
    let topic = unique("rbac");
    let mut m = stockstream_manifest("rbac", &topic, 1);
    m["spec"]["topicDeletionPolicy"] = json!("delete");
    apply(&c, &ns, m).await;
    let (ready, _) = wait_conditions(&c, &ns, "stockstreams", "rbac", "PodsStarting").await;
    assert_eq!(ready["status"], "False");
    assert!(get_json(&c, &ns, "statefulsets", "rbac-producer").await.is_some());
    assert!(kafka.topic_partitions(&topic).await.unwrap().is_some());
    let leases: Api<Lease> = Api::namespaced(c.clone(), &op.lease_namespace);
    assert_eq!(leases.get(&op.lease).await.unwrap().spec.unwrap().holder_identity.as_deref(), Some("rbac"));
    let events = kubectl(&["get", "events", "-n", &ns]);
    assert!(events.contains("TopicCreated"), "{events}");
    let api: Api<StockStream> = Api::namespaced(c.clone(), &ns);
    api.delete("rbac", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(60), "the finalizer done", || async {
        api.get_opt("rbac").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(kafka.topic_partitions(&topic).await.unwrap(), None, "topic deleted");
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(!log.to_lowercase().contains("forbidden"), "the operator was refused something:\n{log}");
    drop(op);
    drop_namespace(&c, &ns).await;
}
