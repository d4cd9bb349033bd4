//! The operator's Kafka admin client over TLS and SASL/SCRAM, as the workers connect
//! (workers/tests/kafka_tls.rs): its settings come from the `kafka.secretRef` Secret, read from
//! a real kube-apiserver, with the TLS material given to librdkafka as PEM strings (the
//! operator writes no files). Against the SSL (mutual TLS) and SASL_SSL (SCRAM-SHA-512)
//! listeners of the broker `scripts/test.sh` starts, which exports `TICKLAKE_TEST_KUBECONFIG`,
//! `TICKLAKE_TEST_KAFKA_SSL_BOOTSTRAP`, `TICKLAKE_TEST_KAFKA_SASL_SSL_BOOTSTRAP`,
//! `TICKLAKE_TEST_KAFKA_TLS_DIR` (`ca.crt`, `tls.crt`, `tls.key`) and the SCRAM user in
//! `TICKLAKE_TEST_KAFKA_SCRAM_USERNAME` / `TICKLAKE_TEST_KAFKA_SCRAM_PASSWORD`:
//! `source /tmp/svc.env; cargo test --release -p ticklake-operator --features envtest --test kafka_tls`.

#![cfg(feature = "envtest")]

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use ticklake_api::crd::KafkaConnection;
use ticklake_bus::Bus;
use ticklake_operator::controller::{Context, Settings};
use ticklake_operator::kafka::ADMIN_TIMEOUT;
use ticklake_operator::metrics::Metrics;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh --services"))
}

fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1_000_000_000;
    format!("{what}-{t}-{}-{}", std::process::id() % 10_000, N.fetch_add(1, Ordering::Relaxed))
}

/// An operator context on the test API server, and a namespace of its own.
async fn context() -> (Arc<Context>, String) {
    let kc = kube::config::Kubeconfig::read_from(var("TICKLAKE_TEST_KUBECONFIG")).expect("the test kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig");
    let client = Client::try_from(cfg).expect("a client");
    let ns = unique("tl-kafka-tls");
    let obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &obj).await.unwrap();
    (Context::new(client, Settings::default(), Metrics::new()), ns)
}

async fn drop_namespace(ctx: &Context, ns: &str) {
    let _ = Api::<Namespace>::all(ctx.client.clone()).delete(ns, &DeleteParams::default()).await;
}

/// A Secret `name` in `ns` with these keys.
async fn secret(ctx: &Context, ns: &str, name: &str, data: &[(&str, Vec<u8>)]) {
    let mut s = Secret::default();
    s.metadata.name = Some(name.to_string());
    s.data = Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.clone()))).collect::<BTreeMap<_, _>>());
    Api::<Secret>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &s).await.unwrap();
}

fn tls_file(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(&var("TICKLAKE_TEST_KAFKA_TLS_DIR")).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn kafka(yaml: &str) -> KafkaConnection {
    serde_yaml::from_str(yaml).unwrap()
}

/// What the StockStream controller does with a topic: create it, grow it, delete it — through
/// the admin connection `kafka_admin` gives for `k` in `ns`.
async fn administer_a_topic(ctx: &Context, ns: &str, k: &KafkaConnection) {
    let (bus, _cluster) = ctx.kafka_admin(ns, k).await.expect("the admin connection");
    let topic = unique("ticklake-operator-tls");
    let step = Duration::from_secs(60);
    let info = tokio::time::timeout(step, bus.ensure_topic(&topic, 2, 1)).await.expect("in time").expect("create");
    assert!(info.created && info.partitions == 2, "{info:?}");
    tokio::time::timeout(step, bus.grow_partitions(&topic, 3)).await.expect("in time").expect("grow");
    assert_eq!(bus.topic_partitions(&topic).await.unwrap(), Some(3));
    assert!(tokio::time::timeout(step, bus.delete_topic(&topic)).await.expect("in time").expect("delete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_speaks_mutual_tls_from_the_secret() {
    let (ctx, ns) = context().await;
    let data = [("ca.crt", tls_file("ca.crt")), ("tls.crt", tls_file("tls.crt")), ("tls.key", tls_file("tls.key"))];
    secret(&ctx, &ns, "msk-tls", &data).await;
    let bootstrap = var("TICKLAKE_TEST_KAFKA_SSL_BOOTSTRAP");
    let k = kafka(&format!("{{bootstrapServers: '{bootstrap}', securityProtocol: SSL, secretRef: {{name: msk-tls}}}}"));
    administer_a_topic(&ctx, &ns, &k).await;

    // Without the client certificate the broker refuses the connection, and the reconcile is
    // told so within the admin timeout.
    secret(&ctx, &ns, "ca-only", &[("ca.crt", tls_file("ca.crt"))]).await;
    let k = kafka(&format!("{{bootstrapServers: '{bootstrap}', securityProtocol: SSL, secretRef: {{name: ca-only}}}}"));
    let (bus, _) = ctx.kafka_admin(&ns, &k).await.unwrap();
    let started = Instant::now();
    let err = bus.ensure_topic(&unique("refused"), 1, 1).await.map(|_| ()).unwrap_err().to_string();
    assert!(started.elapsed() <= ADMIN_TIMEOUT + Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(err.contains("alert bad certificate"), "{err}");
    drop_namespace(&ctx, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_speaks_sasl_ssl_scram_from_the_secret() {
    let (ctx, ns) = context().await;
    let (user, password) = (var("TICKLAKE_TEST_KAFKA_SCRAM_USERNAME"), var("TICKLAKE_TEST_KAFKA_SCRAM_PASSWORD"));
    let data =
        [("username", user.clone().into_bytes()), ("password", password.into_bytes()), ("ca.crt", tls_file("ca.crt"))];
    secret(&ctx, &ns, "msk-scram", &data).await;
    let bootstrap = var("TICKLAKE_TEST_KAFKA_SASL_SSL_BOOTSTRAP");
    let spec = |secret: &str| {
        kafka(&format!(
            "{{bootstrapServers: '{bootstrap}', securityProtocol: SASL_SSL, saslMechanism: SCRAM-SHA-512, secretRef: {{name: {secret}}}}}"
        ))
    };
    administer_a_topic(&ctx, &ns, &spec("msk-scram")).await;

    // A wrong password: an authentication error, not a timeout.
    let data = [("username", user.into_bytes()), ("password", b"wrong".to_vec()), ("ca.crt", tls_file("ca.crt"))];
    secret(&ctx, &ns, "wrong-password", &data).await;
    let (bus, _) = ctx.kafka_admin(&ns, &spec("wrong-password")).await.unwrap();
    let err = bus.ensure_topic(&unique("refused"), 1, 1).await.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("Authentication failed"), "{err}");

    // No Secret at all: SASL cannot go without it.
    let err = ctx.kafka_admin(&ns, &spec("missing")).await.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("Secret missing (kafka.secretRef) not found"), "{err}");
    drop_namespace(&ctx, &ns).await;
}
