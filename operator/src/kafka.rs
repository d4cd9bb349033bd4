//! Kafka topics, through the Kafka admin API.
//!
//! [`plan`] decides (pure): create a missing topic, grow one with fewer partitions than the
//! spec, and never shrink one with more — Kafka cannot remove partitions, so that case is a
//! problem reported in status, not an action. [`Admins`] keeps one admin connection per
//! cluster (a librdkafka client has threads and sockets; reconciles are frequent), bounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticklake_api::crd::{KafkaConnection, SecurityProtocol};
use ticklake_bus::kafka::KafkaBus;

/// Admin calls give up after this long, so an unreachable cluster delays one reconcile only.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Most clusters kept connected at once.
const MAX_CLIENTS: usize = 32;

/// What to do about a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicPlan {
    Create {
        partitions: i32,
    },
    Grow {
        from: i32,
        to: i32,
    },
    AsSpecified {
        partitions: i32,
    },
    /// The topic has more partitions than the spec asks; left alone and reported.
    LargerThanSpec {
        have: i32,
        want: i32,
    },
}

/// The action for a topic that has `have` partitions (`None`: missing) and should have `want`.
pub fn plan(have: Option<i32>, want: i32) -> TopicPlan {
    assert!(want >= 1, "the CRD schema keeps partitions >= 1");
    match have {
        None => TopicPlan::Create { partitions: want },
        Some(h) if h < want => TopicPlan::Grow { from: h, to: want },
        Some(h) if h > want => TopicPlan::LargerThanSpec { have: h, want },
        Some(h) => TopicPlan::AsSpecified { partitions: h },
    }
}

/// What the operator reads from a connection's `kafka.secretRef` Secret: the keys the workers
/// get from it too (`username` and `password` as `KAFKA_SASL_*`, `ca.crt`, `tls.crt` and
/// `tls.key` as files under `TICKLAKE_KAFKA_TLS_DIR`), so that its admin client connects as
/// they do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaSecret {
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM: the CA the brokers' certificates are verified against (absent: the system's roots).
    pub ca_crt: Option<String>,
    /// PEM: client certificate and key, for mutual TLS.
    pub tls_crt: Option<String>,
    pub tls_key: Option<String>,
}

impl KafkaSecret {
    /// From a Secret's `data` (values as bytes); empty values count as absent.
    pub fn from_data<'a>(data: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> KafkaSecret {
        let mut s = KafkaSecret::default();
        for (key, value) in data {
            let slot = match key {
                "username" => &mut s.username,
                "password" => &mut s.password,
                "ca.crt" => &mut s.ca_crt,
                "tls.crt" => &mut s.tls_crt,
                "tls.key" => &mut s.tls_key,
                _ => continue,
            };
            if !value.is_empty() {
                *slot = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
        s
    }
}

/// librdkafka properties for a connection, with what its `kafka.secretRef` Secret holds (read by
/// the caller; `None` when there is none): SASL credentials, and for SSL / SASL_SSL the TLS
/// material as PEM strings (`ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem`) — nothing is
/// written to the operator's read-only filesystem.
pub fn properties(k: &KafkaConnection, secret: Option<&KafkaSecret>) -> Result<BTreeMap<String, String>, String> {
    let bootstrap = k
        .bootstrap_servers
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "spec.kafka.bootstrapServers is not set".to_string())?;
    let mut p = BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("security.protocol".to_string(), k.security_protocol.as_str().to_string()),
    ]);
    let empty = KafkaSecret::default();
    let s = secret.unwrap_or(&empty);
    if matches!(k.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        let mech = k.sasl_mechanism.ok_or("spec.kafka.saslMechanism is required with SASL")?;
        let (Some(user), Some(pass)) = (&s.username, &s.password) else {
            return Err("the kafka.secretRef Secret has no username and password".into());
        };
        p.insert("sasl.mechanism".into(), mech.as_str().into());
        p.insert("sasl.username".into(), user.clone());
        p.insert("sasl.password".into(), pass.clone());
    }
    if matches!(k.security_protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        if s.tls_crt.is_some() != s.tls_key.is_some() {
            let (has, lacks) = if s.tls_crt.is_some() { ("tls.crt", "tls.key") } else { ("tls.key", "tls.crt") };
            return Err(format!(
                "the kafka.secretRef Secret has {has} but no {lacks}: a client certificate needs both"
            ));
        }
        for (value, prop) in
            [(&s.ca_crt, "ssl.ca.pem"), (&s.tls_crt, "ssl.certificate.pem"), (&s.tls_key, "ssl.key.pem")]
        {
            if let Some(v) = value {
                p.insert(prop.into(), v.clone());
            }
        }
    }
    Ok(p)
}

/// A topic found as specified is not asked about again for this long: the periodic status
/// refresh then costs no Kafka call. A topic deleted behind the operator's back is recreated
/// within this time.
pub const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// Most topics remembered as verified.
const MAX_VERIFIED: usize = 100_000;

/// One admin connection per distinct set of connection properties, and the topics recently
/// verified on each.
#[derive(Default)]
pub struct Admins {
    clients: Mutex<HashMap<String, Arc<KafkaBus>>>,
    verified: Mutex<HashMap<(String, String), (i32, std::time::Instant)>>,
}

/// Key of a cluster in [`Admins`]: a hash, so that passwords are not kept as map keys in clear.
pub fn cluster_key(props: &BTreeMap<String, String>) -> String {
    crate::render::short_hash(&format!("{props:?}"))
}

impl Admins {
    /// The partitions `topic` had when verified less than [`VERIFIED_FOR`] ago.
    pub fn recently_verified(&self, cluster: &str, topic: &str) -> Option<i32> {
        let v = self.verified.lock().expect("verified lock");
        v.get(&(cluster.to_string(), topic.to_string())).filter(|(_, at)| at.elapsed() < VERIFIED_FOR).map(|(p, _)| *p)
    }

    /// Records that `topic` exists with `partitions`.
    pub fn verified(&self, cluster: &str, topic: &str, partitions: i32) {
        let mut v = self.verified.lock().expect("verified lock");
        if v.len() >= MAX_VERIFIED {
            v.retain(|_, (_, at)| at.elapsed() < VERIFIED_FOR);
            if v.len() >= MAX_VERIFIED {
                v.clear();
            }
        }
        v.insert((cluster.to_string(), topic.to_string()), (partitions, std::time::Instant::now()));
    }

    /// Forgets `topic` (after an error or a change).
    pub fn forget(&self, cluster: &str, topic: &str) {
        self.verified.lock().expect("verified lock").remove(&(cluster.to_string(), topic.to_string()));
    }

    /// The connection for `props`, created on first use.
    pub fn get(&self, props: BTreeMap<String, String>) -> Result<Arc<KafkaBus>, ticklake_bus::BusError> {
        let key = cluster_key(&props);
        let mut clients = self.clients.lock().expect("admin cache lock");
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        if clients.len() >= MAX_CLIENTS {
            // Rare (more clusters than the bound): start over rather than grow without limit.
            clients.clear();
        }
        let bus = Arc::new(KafkaBus::with_properties(props)?.with_admin_timeout(ADMIN_TIMEOUT));
        clients.insert(key, bus.clone());
        Ok(bus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_grow_but_never_shrink() {
        assert_eq!(plan(None, 6), TopicPlan::Create { partitions: 6 });
        assert_eq!(plan(Some(3), 6), TopicPlan::Grow { from: 3, to: 6 });
        assert_eq!(plan(Some(6), 6), TopicPlan::AsSpecified { partitions: 6 });
        assert_eq!(plan(Some(12), 6), TopicPlan::LargerThanSpec { have: 12, want: 6 });
    }

    #[test]
    fn verified_topics_are_remembered_for_a_while() {
        let a = Admins::default();
        assert_eq!(a.recently_verified("c", "t"), None);
        a.verified("c", "t", 6);
        assert_eq!(a.recently_verified("c", "t"), Some(6));
        assert_eq!(a.recently_verified("other", "t"), None);
        a.forget("c", "t");
        assert_eq!(a.recently_verified("c", "t"), None);
    }

    #[test]
    fn sasl_needs_the_secret() {
        let k: KafkaConnection = serde_yaml::from_str(
            "{bootstrapServers: 'a:1', securityProtocol: SASL_SSL, saslMechanism: PLAIN, secretRef: {name: s}}",
        )
        .unwrap();
        assert!(properties(&k, None).unwrap_err().contains("username"));
        let only_user = KafkaSecret::from_data([("username", &b"u"[..]), ("password", &b""[..])]);
        assert!(properties(&k, Some(&only_user)).unwrap_err().contains("username"));
        let secret = KafkaSecret::from_data([("username", &b"u"[..]), ("password", &b"p"[..])]);
        let p = properties(&k, Some(&secret)).unwrap();
        assert_eq!(p["sasl.mechanism"], "PLAIN");
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert_eq!((p["sasl.username"].as_str(), p["sasl.password"].as_str()), ("u", "p"));
        assert!(properties(&KafkaConnection::default(), None).is_err());
    }

    const CA: &str = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
    const CRT: &str = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";

    /// The TLS material of the Secret reaches the admin client as PEM strings, as the workers
    /// get it as files: the same CA and client certificate for both.
    #[test]
    fn tls_material_comes_from_the_secret_as_pem() {
        let secret = KafkaSecret::from_data([
            ("ca.crt", CA.as_bytes()),
            ("tls.crt", CRT.as_bytes()),
            ("tls.key", KEY.as_bytes()),
            ("unrelated", &b"x"[..]),
        ]);
        let ssl: KafkaConnection =
            serde_yaml::from_str("{bootstrapServers: 'b-1:9094', securityProtocol: SSL, secretRef: {name: tls}}")
                .unwrap();
        let p = properties(&ssl, Some(&secret)).unwrap();
        let want = BTreeMap::from(
            [
                ("bootstrap.servers", "b-1:9094"),
                ("security.protocol", "SSL"),
                ("ssl.ca.pem", CA),
                ("ssl.certificate.pem", CRT),
                ("ssl.key.pem", KEY),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(p, want);
        // No property names a file: the operator's root filesystem is read-only.
        assert!(!p.keys().any(|k| k.ends_with(".location")), "{p:?}");

        // SASL_SSL with SCRAM: credentials and TLS material together.
        let scram: KafkaConnection = serde_yaml::from_str(
            "{bootstrapServers: 'b-1:9096', securityProtocol: SASL_SSL, saslMechanism: SCRAM-SHA-512, secretRef: {name: s}}",
        )
        .unwrap();
        let both = KafkaSecret { username: Some("u".into()), password: Some("p".into()), ..secret.clone() };
        let p = properties(&scram, Some(&both)).unwrap();
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["ssl.ca.pem"], CA);
        assert_eq!(p["ssl.certificate.pem"], CRT);

        // Only the CA (MSK's SASL/SCRAM listener): no client certificate.
        let ca_only = KafkaSecret { ca_crt: Some(CA.into()), ..Default::default() };
        let p = properties(&ssl, Some(&ca_only)).unwrap();
        assert_eq!(p["ssl.ca.pem"], CA);
        assert!(!p.contains_key("ssl.certificate.pem") && !p.contains_key("ssl.key.pem"));
        // No Secret (its volume is optional for the workers too): the system's roots.
        let p = properties(&ssl, None).unwrap();
        assert!(!p.keys().any(|k| k.starts_with("ssl.")), "{p:?}");

        // A certificate without its key is refused, not half-used.
        let half = KafkaSecret { tls_crt: Some(CRT.into()), ..Default::default() };
        assert!(properties(&ssl, Some(&half)).unwrap_err().contains("tls.crt but no tls.key"));

        // PLAINTEXT and SASL_PLAINTEXT ignore the TLS keys.
        let plain: KafkaConnection = serde_yaml::from_str("{bootstrapServers: 'b:9092'}").unwrap();
        assert!(!properties(&plain, Some(&secret)).unwrap().keys().any(|k| k.starts_with("ssl.")));
    }

    /// The admin clients' cache tells clusters apart by everything that reaches librdkafka, so a
    /// rotated certificate gets a new connection.
    #[test]
    fn a_rotated_certificate_is_another_cluster_key() {
        let ssl: KafkaConnection =
            serde_yaml::from_str("{bootstrapServers: 'b-1:9094', securityProtocol: SSL, secretRef: {name: tls}}")
                .unwrap();
        let a = KafkaSecret {
            ca_crt: Some(CA.into()),
            tls_crt: Some(CRT.into()),
            tls_key: Some(KEY.into()),
            ..Default::default()
        };
        let b = KafkaSecret { tls_crt: Some(CRT.replace("client", "rotated")), ..a.clone() };
        let (ka, kb) =
            (cluster_key(&properties(&ssl, Some(&a)).unwrap()), cluster_key(&properties(&ssl, Some(&b)).unwrap()));
        assert_ne!(ka, kb);
        assert!(!ka.contains("BEGIN"), "the key is a hash, not the material");
    }
}
