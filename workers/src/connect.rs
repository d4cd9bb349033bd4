//! From a resource's spec to the bus and store a worker uses.
//!
//! Secrets never appear in a spec: Kafka SASL credentials come from the environment
//! (`KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, which the operator fills from the
//! `kafka.secretRef` Secret), TLS material from files mounted at
//! `TICKLAKE_KAFKA_TLS_DIR` (`ca.crt`, `tls.crt`, `tls.key`), and AWS credentials from the
//! default chain (environment, profile, IRSA).

use crate::store::{LocalStore, ObjectStore, S3Options, S3Store, StoreError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use ticklake_api::crd::{KafkaConnection, S3SinkSpec, SecurityProtocol};
use ticklake_bus::kafka::KafkaBus;
use ticklake_bus::{Bus, BusError};

/// librdkafka properties for a Kafka connection, or `None` when no bootstrap servers are
/// given (the local runner then uses its embedded log).
pub fn kafka_properties(
    k: &KafkaConnection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<BTreeMap<String, String>>, BusError> {
    let Some(bootstrap) = k.bootstrap_servers.as_deref().filter(|s| !s.trim().is_empty()) else { return Ok(None) };
    let mut p = BTreeMap::new();
    p.insert("bootstrap.servers".to_string(), bootstrap.to_string());
    p.insert("security.protocol".to_string(), k.security_protocol.as_str().to_string());
    if matches!(k.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        let mech = k
            .sasl_mechanism
            .ok_or_else(|| BusError::Config("kafka.saslMechanism is required with a SASL security protocol".into()))?;
        p.insert("sasl.mechanism".to_string(), mech.as_str().to_string());
        let user = env("KAFKA_SASL_USERNAME")
            .ok_or_else(|| BusError::Config("KAFKA_SASL_USERNAME is not set (from kafka.secretRef)".into()))?;
        let pass = env("KAFKA_SASL_PASSWORD")
            .ok_or_else(|| BusError::Config("KAFKA_SASL_PASSWORD is not set (from kafka.secretRef)".into()))?;
        p.insert("sasl.username".to_string(), user);
        p.insert("sasl.password".to_string(), pass);
    }
    if matches!(k.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
        && let Some(dir) = env("TICKLAKE_KAFKA_TLS_DIR")
    {
        // Each file is optional (the Secret volume is): without ca.crt the brokers are verified
        // against the system's roots (as for Amazon MSK); tls.crt and tls.key, for mutual TLS,
        // come as a pair.
        let dir = Path::new(&dir);
        let (cert, key) = (dir.join("tls.crt").exists(), dir.join("tls.key").exists());
        if cert != key {
            let (has, lacks) = if cert { ("tls.crt", "tls.key") } else { ("tls.key", "tls.crt") };
            return Err(BusError::Config(format!(
                "{} has {has} but no {lacks}: a client certificate needs both (kafka.secretRef)",
                dir.display()
            )));
        }
        for (file, prop) in
            [("ca.crt", "ssl.ca.location"), ("tls.crt", "ssl.certificate.location"), ("tls.key", "ssl.key.location")]
        {
            let f = dir.join(file);
            if f.exists() {
                p.insert(prop.to_string(), f.display().to_string());
            }
        }
    }
    Ok(Some(p))
}

/// The process environment, for [`kafka_properties`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A Kafka bus for a connection that names bootstrap servers; `None` otherwise.
pub fn kafka_bus(k: &KafkaConnection, compression: Option<&str>) -> Result<Option<Arc<dyn Bus>>, BusError> {
    kafka_bus_with_env(k, compression, &process_env)
}

/// [`kafka_bus`] with the environment given (credentials and the TLS folder are read through
/// `env`), so tests take the workers' own path without touching the process environment.
pub fn kafka_bus_with_env(
    k: &KafkaConnection,
    compression: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn Bus>>, BusError> {
    let Some(props) = kafka_properties(k, env)? else { return Ok(None) };
    let mut bus = KafkaBus::with_properties(props)?;
    if let Some(c) = compression {
        bus = bus.with_producer_property("compression.type", c);
    }
    Ok(Some(Arc::new(bus)))
}

/// The store an `S3Sink` writes to: S3 (or the spec's S3-compatible endpoint), or — when
/// `local_root` is given and the spec names no endpoint — the local directory
/// `<local_root>/<bucket>`.
pub async fn sink_store(spec: &S3SinkSpec, local_root: Option<&Path>) -> Result<Arc<dyn ObjectStore>, StoreError> {
    if spec.endpoint.is_none()
        && let Some(root) = local_root
    {
        return Ok(Arc::new(LocalStore::new(root.join(&spec.bucket))?));
    }
    let store = S3Store::connect(S3Options {
        bucket: spec.bucket.clone(),
        region: spec.region.clone(),
        endpoint: spec.endpoint.clone(),
        force_path_style: spec.force_path_style.unwrap_or(spec.endpoint.is_some()),
        max_attempts: None,
    })
    .await?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::crd::SaslMechanism;

    #[test]
    fn no_bootstrap_means_embedded() {
        assert!(kafka_properties(&KafkaConnection::default(), &|_| None).unwrap().is_none());
    }

    #[test]
    fn sasl_credentials_come_from_the_environment_only() {
        let k = KafkaConnection {
            bootstrap_servers: Some("b:9092".into()),
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            secret_ref: None,
        };
        let err = kafka_properties(&k, &|_| None).unwrap_err().to_string();
        assert!(err.contains("KAFKA_SASL_USERNAME"), "{err}");
        let env = |n: &str| match n {
            "KAFKA_SASL_USERNAME" => Some("u".to_string()),
            "KAFKA_SASL_PASSWORD" => Some("p".to_string()),
            _ => None,
        };
        let p = kafka_properties(&k, &env).unwrap().unwrap();
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert_eq!(p["sasl.username"], "u");
    }

    #[test]
    fn tls_files_come_from_the_mounted_secret() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().display().to_string();
        let env = |n: &str| (n == "TICKLAKE_KAFKA_TLS_DIR").then(|| tls_dir.clone());
        let k = KafkaConnection {
            bootstrap_servers: Some("b:9094".into()),
            security_protocol: SecurityProtocol::Ssl,
            sasl_mechanism: None,
            secret_ref: None,
        };
        // An empty folder (the Secret has no TLS keys): the system's roots, no client certificate.
        let p = kafka_properties(&k, &env).unwrap().unwrap();
        assert_eq!(p["security.protocol"], "SSL");
        assert!(!p.keys().any(|k| k.starts_with("ssl.")), "{p:?}");

        std::fs::write(dir.path().join("ca.crt"), "ca").unwrap();
        let p = kafka_properties(&k, &env).unwrap().unwrap();
        assert_eq!(p["ssl.ca.location"], dir.path().join("ca.crt").display().to_string());
        assert!(!p.contains_key("ssl.certificate.location"));

        std::fs::write(dir.path().join("tls.crt"), "crt").unwrap();
        let err = kafka_properties(&k, &env).unwrap_err().to_string();
        assert!(err.contains("tls.crt but no tls.key"), "{err}");

        std::fs::write(dir.path().join("tls.key"), "key").unwrap();
        let p = kafka_properties(&k, &env).unwrap().unwrap();
        assert_eq!(p["ssl.certificate.location"], dir.path().join("tls.crt").display().to_string());
        assert_eq!(p["ssl.key.location"], dir.path().join("tls.key").display().to_string());

        // PLAINTEXT ignores the folder.
        let plain = KafkaConnection { security_protocol: SecurityProtocol::Plaintext, ..k };
        let p = kafka_properties(&plain, &env).unwrap().unwrap();
        assert!(!p.keys().any(|k| k.starts_with("ssl.")), "{p:?}");
    }
}
