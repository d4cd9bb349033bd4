//! Who owns an AWS resource: tags on everything the operator creates, and the names it
//! derives. The operator only updates or deletes what carries its owner tag.

use std::collections::{BTreeMap, HashMap};

/// Always `ticklake-operator` on what the operator created.
pub const MANAGED_BY_KEY: &str = "ticklake.dev/managed-by";
pub const MANAGED_BY: &str = "ticklake-operator";
/// `<kind>/<namespace>/<name>` of the resource that owns it.
pub const OWNER_KEY: &str = "ticklake.dev/owner";

/// The Kubernetes resource an AWS resource belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `S3Sink` or `AlertSubscription`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Owner {
        Owner { kind: kind.to_string(), namespace: namespace.to_string(), name: name.to_string() }
    }

    /// The value of [`OWNER_KEY`].
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The tags every created resource carries.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(MANAGED_BY_KEY.to_string(), MANAGED_BY.to_string()), (OWNER_KEY.to_string(), self.id())])
    }

    /// Whether a resource with these tags is ours.
    pub fn owns(&self, tags: &HashMap<String, String>) -> bool {
        tags.get(OWNER_KEY).is_some_and(|o| *o == self.id())
            && tags.get(MANAGED_BY_KEY).is_some_and(|m| m == MANAGED_BY)
    }

    /// Short form of the kind in names: `sink`, `alert` (an S3Sink and an AlertSubscription of
    /// the same name must not share a queue).
    pub fn kind_short(&self) -> &str {
        match self.kind.as_str() {
            "S3Sink" => "sink",
            "AlertSubscription" => "alert",
            other => other,
        }
    }

    /// A name for an AWS resource of this owner: `ticklake-<kind>-<namespace>-<name>[-<suffix>]`
    /// (kind as [`Owner::kind_short`]), only `[A-Za-z0-9_-]`, at most `max` characters (a hash
    /// of the full name replaces the tail when it is longer, so names stay unique).
    pub fn aws_name(&self, suffix: &str, max: usize) -> String {
        assert!(max >= 24, "AWS names of at least 24 characters");
        let mut full = format!("ticklake-{}-{}-{}", self.kind_short(), self.namespace, self.name);
        if !suffix.is_empty() {
            full.push('-');
            full.push_str(suffix);
        }
        let clean: String =
            full.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
        if clean.len() <= max {
            return clean;
        }
        let hash = fnv1a(full.as_bytes());
        let keep = max - 9;
        format!("{}-{:08x}", &clean[..keep], hash as u32)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_and_names() {
        let o = Owner::new("S3Sink", "data", "ticks-lake");
        assert_eq!(o.id(), "S3Sink/data/ticks-lake");
        let tags: HashMap<String, String> = o.tags().into_iter().collect();
        assert!(o.owns(&tags));
        assert!(!Owner::new("S3Sink", "other", "ticks-lake").owns(&tags));
        assert!(!o.owns(&HashMap::new()));
        assert_eq!(o.aws_name("", 255), "ticklake-sink-data-ticks-lake");
        assert_eq!(o.aws_name("events", 80), "ticklake-sink-data-ticks-lake-events");
        let alert = Owner::new("AlertSubscription", "data", "ticks-lake");
        assert_ne!(alert.aws_name("events", 80), o.aws_name("events", 80), "kinds do not collide");
        let long = Owner::new("S3Sink", &"n".repeat(63), &"x".repeat(63));
        let a = long.aws_name("events", 80);
        assert_eq!(a.len(), 80);
        assert_ne!(a, Owner::new("S3Sink", &"n".repeat(63), &"y".repeat(63)).aws_name("events", 80));
    }
}
