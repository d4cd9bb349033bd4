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

/// librdkafka properties for a connection; SASL credentials from the referenced Secret's
/// `username` and `password` (read by the caller).
pub fn properties(k: &KafkaConnection, sasl: Option<(String, String)>) -> Result<BTreeMap<String, String>, String> {
    let bootstrap = k
        .bootstrap_servers
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "spec.kafka.bootstrapServers is not set".to_string())?;
    let mut p = BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("security.protocol".to_string(), k.security_protocol.as_str().to_string()),
    ]);
    if matches!(k.security_protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        let mech = k.sasl_mechanism.ok_or("spec.kafka.saslMechanism is required with SASL")?;
        let (user, pass) = sasl.ok_or("the kafka.secretRef Secret has no username and password")?;
        p.insert("sasl.mechanism".into(), mech.as_str().into());
        p.insert("sasl.username".into(), user);
        p.insert("sasl.password".into(), pass);
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
        let p = properties(&k, Some(("u".into(), "p".into()))).unwrap();
        assert_eq!(p["sasl.mechanism"], "PLAIN");
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert!(properties(&KafkaConnection::default(), None).is_err());
    }
}
