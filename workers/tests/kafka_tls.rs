//! Kafka over TLS and SASL/SCRAM — what Amazon MSK's TLS (9094) and SASL/SCRAM (9096) listeners
//! speak — through the path the workers take: a resource's `kafka` spec, turned into librdkafka
//! properties by [`connect`] (TLS files from the Secret folder at `TICKLAKE_KAFKA_TLS_DIR`, SASL
//! credentials from `KAFKA_SASL_USERNAME` / `KAFKA_SASL_PASSWORD`), a `KafkaBus`, and the producer
//! and sink workers on it.
//!
//! * `librdkafka_is_built_with_ssl_and_sasl_scram` always runs: a change to rdkafka's features
//!   that drops OpenSSL fails here, not in a customer's cluster.
//! * The rest need `--features kafka-tests` and the broker of `scripts/test.sh`, whose listeners
//!   are `TICKLAKE_TEST_KAFKA_SSL_BOOTSTRAP` (mutual TLS: a client certificate is required) and
//!   `TICKLAKE_TEST_KAFKA_SASL_SSL_BOOTSTRAP` (SCRAM-SHA-512, user
//!   `TICKLAKE_TEST_KAFKA_SCRAM_USERNAME` / `TICKLAKE_TEST_KAFKA_SCRAM_PASSWORD`), with the test
//!   CA and a client certificate in `TICKLAKE_TEST_KAFKA_TLS_DIR` (`ca.crt`, `tls.crt`,
//!   `tls.key`, as in a Secret):
//!   `source /tmp/svc.env; cargo test --release -p ticklake-workers --features kafka-tests --test kafka_tls`.

use std::collections::BTreeSet;
use ticklake_api::crd::{KafkaConnection, SecurityProtocol};
use ticklake_workers::connect;

#[test]
fn librdkafka_is_built_with_ssl_and_sasl_scram() {
    let conf = rdkafka::ClientConfig::new().create_native_config().expect("a librdkafka configuration");
    let features = conf.get("builtin.features").expect("builtin.features");
    let have: BTreeSet<&str> = features.split(',').collect();
    let (_, version) = rdkafka::util::get_rdkafka_version();
    for want in ["ssl", "sasl_scram", "zstd"] {
        assert!(have.contains(want), "librdkafka {version} is built without {want}: builtin.features={features}");
    }

    // And the clients the workers create for SSL and SASL_SSL/SCRAM are accepted (without
    // OpenSSL librdkafka refuses them: `Unsupported value "SSL" for configuration property
    // "security.protocol": OpenSSL not available at build time`). Nothing listens on port 9.
    for (protocol, mechanism) in
        [("SSL", None), ("SASL_SSL", Some("SCRAM-SHA-512")), ("SASL_SSL", Some("SCRAM-SHA-256"))]
    {
        let mut yaml = format!("{{bootstrapServers: '127.0.0.1:9', securityProtocol: {protocol}");
        if let Some(m) = mechanism {
            yaml += &format!(", saslMechanism: {m}, secretRef: {{name: kafka}}");
        }
        let k: KafkaConnection = serde_yaml::from_str(&(yaml + "}")).unwrap();
        let env = |n: &str| matches!(n, "KAFKA_SASL_USERNAME" | "KAFKA_SASL_PASSWORD").then(|| "x".to_string());
        if let Err(e) = connect::kafka_bus_with_env(&k, Some("zstd"), &env) {
            panic!("{protocol} {mechanism:?}: {e}");
        }
        assert!(matches!(k.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl));
    }
}

#[cfg(feature = "kafka-tests")]
mod broker {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    use ticklake_api::crd::{S3SinkSpec, StockStreamSpec};
    use ticklake_bus::{Bus, BusError, ConsumerEvent};
    use ticklake_workers::connect;
    use ticklake_workers::producer::ProducerWorker;
    use ticklake_workers::sink::{Sink, SinkConfig};
    use ticklake_workers::store::{LocalStore, ObjectStore};
    use ticklake_workers::telemetry::Telemetry;
    use ticklake_workers::verify;
    use tokio::sync::watch;

    /// Longest any one step may take; a hang fails the test instead of blocking it.
    const STEP: Duration = Duration::from_secs(90);
    /// A refused connection is an error within this (the first refusal comes within a second).
    const REFUSED_WITHIN: Duration = Duration::from_secs(15);

    fn var(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh --services"))
    }

    /// A topic or group name of its own for every call (shared broker, repeated runs).
    fn unique(what: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
        format!("ticklake-tls-{what}-{}-{}-{t}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }

    /// What a worker pod would see: `TICKLAKE_KAFKA_TLS_DIR` (the Secret's volume) and, for SASL,
    /// the Secret's `username` / `password` as `KAFKA_SASL_USERNAME` / `KAFKA_SASL_PASSWORD`.
    #[derive(Clone)]
    struct PodEnv(BTreeMap<&'static str, String>);

    impl PodEnv {
        fn tls(dir: &Path) -> PodEnv {
            PodEnv(BTreeMap::from([("TICKLAKE_KAFKA_TLS_DIR", dir.display().to_string())]))
        }
        fn sasl(mut self, user: &str, password: &str) -> PodEnv {
            self.0.insert("KAFKA_SASL_USERNAME", user.to_string());
            self.0.insert("KAFKA_SASL_PASSWORD", password.to_string());
            self
        }
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    /// A Secret folder with some of the test TLS files (`ca.crt`, `tls.crt`, `tls.key`), and
    /// `ca.crt` replaced by `ca` when given.
    fn secret_dir(files: &[&str], ca: Option<&Path>) -> tempfile::TempDir {
        let from = PathBuf::from(var("TICKLAKE_TEST_KAFKA_TLS_DIR"));
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::copy(from.join(f), dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        if let Some(ca) = ca {
            std::fs::copy(ca, dir.path().join("ca.crt")).unwrap();
        }
        dir
    }

    /// A CA of its own, which signed none of the broker's certificates.
    fn unrelated_ca(dir: &Path) -> PathBuf {
        let (crt, key) = (dir.join("other-ca.crt"), dir.join("other-ca.key"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "1"])
            .args(["-subj", "/CN=not-the-kafka-ca", "-addext", "basicConstraints=critical,CA:TRUE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("running openssl");
        assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        crt
    }

    fn ssl_kafka() -> String {
        format!(
            "{{bootstrapServers: '{}', securityProtocol: SSL, secretRef: {{name: msk-tls}}}}",
            var("TICKLAKE_TEST_KAFKA_SSL_BOOTSTRAP")
        )
    }

    fn scram_kafka() -> String {
        format!(
            "{{bootstrapServers: '{}', securityProtocol: SASL_SSL, saslMechanism: SCRAM-SHA-512, secretRef: {{name: msk-scram}}}}",
            var("TICKLAKE_TEST_KAFKA_SASL_SSL_BOOTSTRAP")
        )
    }

    fn stream_spec(topic: &str, kafka: &str, n: u64) -> StockStreamSpec {
        serde_yaml::from_str(&format!(
            "source: {{simulator: {{ticksPerSecond: 0, seed: 11, startTime: '2026-11-25T14:30:00Z', maxTicks: {n}}}}}\n\
             kafka: {kafka}\ntopic: {topic}\npartitions: 3\ncompression: zstd\n"
        ))
        .unwrap()
    }

    fn sink_spec(topic: &str, kafka: &str) -> S3SinkSpec {
        serde_yaml::from_str(&format!(
            "topic: {topic}\nkafka: {kafka}\nbucket: lake\nprefix: ticks\nflush: {{maxRecords: 1000, intervalMs: 200}}\n"
        ))
        .unwrap()
    }

    /// The producer worker's bus for a StockStream, as `ticklake worker producer` builds it.
    fn producer_bus(spec: &StockStreamSpec, env: &PodEnv) -> Result<Arc<dyn Bus>, BusError> {
        Ok(connect::kafka_bus_with_env(&spec.kafka, Some("zstd"), &|n| env.get(n))?.expect("bootstrap servers"))
    }

    /// The sink worker's bus for an S3Sink, as `ticklake worker sink` builds it.
    fn sink_bus(spec: &S3SinkSpec, env: &PodEnv) -> Arc<dyn Bus> {
        connect::kafka_bus_with_env(&spec.kafka, None, &|n| env.get(n)).unwrap().expect("bootstrap servers")
    }

    async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
        match tokio::time::timeout(STEP, f).await {
            Ok(v) => v,
            Err(_) => panic!("{what}: still running after {STEP:?} (a hang, not an error)"),
        }
    }

    /// Produces `n` ticks with the producer worker, reads them back with a plain consumer of
    /// the same bus, then lands them with the sink worker (on its own bus from the S3Sink's
    /// spec) into a local store and checks every tick landed once.
    async fn round_trip(kafka: &str, env: PodEnv) {
        const N: u64 = 3_000;
        let topic = unique("ticks");
        let stream = stream_spec(&topic, kafka, N);
        let bus = producer_bus(&stream, &env).expect("producer bus");
        let t = Telemetry::new();
        let (metrics, health) = t.producer("producer/tls");
        let (_stop, rx) = watch::channel(false);
        let w = ProducerWorker {
            name: "tls".into(),
            spec: stream,
            shard: ticklake_sources::Shard::ALL,
            bus: bus.clone(),
            metrics,
            health,
        };
        let summary = bounded("producing", w.run(rx)).await.expect("producer worker");
        assert_eq!(summary.produced, N);

        // Read back through KafkaBus's consumer.
        let mut consumer = bus.consumer(&topic, &unique("reader")).await.unwrap();
        let mut seen = 0usize;
        bounded("consuming", async {
            while seen < N as usize {
                if let ConsumerEvent::Records(r) = consumer.poll(1000, Duration::from_millis(500)).await.unwrap() {
                    for rec in &r {
                        ticklake_api::tick::Tick::decode(&rec.value, 1 << 20).expect("a tick");
                    }
                    seen += r.len();
                }
            }
        })
        .await;
        assert_eq!(seen, N as usize);
        consumer.close().await.unwrap();

        // The sink worker lands them.
        let sink = sink_spec(&topic, kafka);
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("lake")).unwrap());
        let (metrics, health) = t.sink("sink/tls");
        let (stop, rx) = watch::channel(false);
        let cfg = SinkConfig::from_spec(&unique("sink"), &sink);
        let h = tokio::spawn(Sink::new(cfg, sink_bus(&sink, &env), store.clone(), metrics, health).run(rx));
        let until = Instant::now() + STEP;
        let stats = loop {
            let s = verify::scan(store.as_ref(), "ticks", "_dead_letters").await.unwrap();
            if s.distinct >= N || Instant::now() > until || h.is_finished() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        stop.send(true).unwrap();
        bounded("stopping the sink", h).await.unwrap().expect("sink worker");
        assert_eq!((stats.rows, stats.distinct, stats.duplicates, stats.dead_letters), (N, N, 0, 0), "{stats:?}");
    }

    /// Workers whose connection the brokers refuse: the producer's first call (creating its
    /// topic) and the sink's consumer each return an error, well before [`STEP`]. Returns both.
    async fn refused(kafka: &str, env: PodEnv) -> [String; 2] {
        let topic = unique("refused");
        let stream = stream_spec(&topic, kafka, 10);
        let started = Instant::now();
        let bus = producer_bus(&stream, &env).expect("the client is created; connecting fails");
        let producer = bounded("the producer's topic on a refused connection", bus.ensure_topic(&topic, 1, 1))
            .await
            .map(|_| ())
            .expect_err("the producer connected");
        eprintln!("producer refused after {:?}: {producer}", started.elapsed());
        // Refused, not timed out: librdkafka's reason ends the wait (30 s for metadata).
        assert!(started.elapsed() < REFUSED_WITHIN, "the producer waited {:?}", started.elapsed());

        let sink = sink_spec(&topic, kafka);
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("lake")).unwrap());
        let (metrics, health) = Telemetry::new().sink("sink/refused");
        let (_stop, rx) = watch::channel(false);
        let started = Instant::now();
        let run =
            Sink::new(SinkConfig::from_spec(&unique("sink"), &sink), sink_bus(&sink, &env), store, metrics, health)
                .run(rx);
        let sink = bounded("the sink on a refused connection", run).await.map(|_| ()).expect_err("the sink connected");
        eprintln!("sink refused after {:?}: {sink}", started.elapsed());
        assert!(started.elapsed() < REFUSED_WITHIN, "the sink waited {:?}", started.elapsed());
        [producer.to_string(), sink.to_string()]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ssl_with_a_client_certificate() {
        let secret = secret_dir(&["ca.crt", "tls.crt", "tls.key"], None);
        round_trip(&ssl_kafka(), PodEnv::tls(secret.path())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sasl_ssl_with_scram_sha_512() {
        // As on MSK's SASL/SCRAM listener: no client certificate, the Secret has the CA only.
        let secret = secret_dir(&["ca.crt"], None);
        let env = PodEnv::tls(secret.path())
            .sasl(&var("TICKLAKE_TEST_KAFKA_SCRAM_USERNAME"), &var("TICKLAKE_TEST_KAFKA_SCRAM_PASSWORD"));
        round_trip(&scram_kafka(), env).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_ca_is_a_certificate_verify_error() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = secret_dir(&["tls.crt", "tls.key"], Some(&unrelated_ca(tmp.path())));
        for err in refused(&ssl_kafka(), PodEnv::tls(secret.path())).await {
            assert!(err.contains("certificate verify failed"), "{err}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_client_certificate_is_refused_by_the_mutual_tls_listener() {
        let secret = secret_dir(&["ca.crt"], None);
        for err in refused(&ssl_kafka(), PodEnv::tls(secret.path())).await {
            // The broker's TLS alert (with TLS 1.3 after the handshake): `bad certificate`.
            assert!(err.contains("refused the connection") && err.contains("alert bad certificate"), "{err}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_password_is_an_authentication_error() {
        let secret = secret_dir(&["ca.crt"], None);
        let env = PodEnv::tls(secret.path()).sasl(&var("TICKLAKE_TEST_KAFKA_SCRAM_USERNAME"), "not-the-password");
        for err in refused(&scram_kafka(), env).await {
            assert!(err.contains("Authentication failed"), "{err}");
        }
    }
}
