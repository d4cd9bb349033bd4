//! Writing desired objects: server-side apply, and only when something differs.
//!
//! A level-based operator reconciles often (every watch event, every status refresh). Sending a
//! server-side apply each time would be harmless for etcd but noisy for audit logs, webhooks and
//! the API server, and it would hide real drift. So [`ensure`] first compares: every field the
//! operator renders must be present with the same value in the live object
//! ([`first_difference`]); fields the API server or other controllers add (defaults, status,
//! annotations of others) are ignored. Only a difference — a missing object, an edited image,
//! a changed spec — leads to an apply, with `force` so the operator takes back fields someone
//! else changed (drift repair).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

use crate::render::FIELD_MANAGER;

/// The first path at which `desired` is not contained in `live`, or `None` when it is.
///
/// Objects: every key of `desired` must be in `live` with a contained value. Lists: same length,
/// each element contained (the API server keeps list order). Scalars: equal, except that
/// numbers compare by value.
pub fn first_difference(desired: &Value, live: &Value) -> Option<String> {
    fn walk(d: &Value, l: &Value, path: &mut String) -> bool {
        match (d, l) {
            (Value::Object(dm), Value::Object(lm)) => dm.iter().all(|(k, dv)| {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                let ok = match lm.get(k) {
                    Some(lv) => walk(dv, lv, path),
                    // An absent field equals an empty one (the server drops `{}`, `[]`, null).
                    None => is_empty(dv),
                };
                if ok {
                    path.truncate(len);
                }
                ok
            }),
            (Value::Array(da), Value::Array(la)) => {
                if da.len() != la.len() {
                    return false;
                }
                da.iter().zip(la).enumerate().all(|(i, (dv, lv))| {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    let ok = walk(dv, lv, path);
                    if ok {
                        path.truncate(len);
                    }
                    ok
                })
            }
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (d, l) => d == l || (is_empty(d) && is_empty(l)),
        }
    }
    fn is_empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    let mut path = String::new();
    if walk(desired, live, &mut path) { None } else { Some(if path.is_empty() { ".".into() } else { path }) }
}

/// What [`ensure`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    /// Updated because of a difference at this path.
    Updated(String),
}

/// Makes the live object contain `desired`: nothing when it already does, else a forced
/// server-side apply. `live` is the object as read just before (`None`: absent).
pub async fn ensure<K>(api: &Api<K>, desired: &K, live: Option<&K>) -> kube::Result<Outcome>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let want = serde_json::to_value(desired).map_err(kube::Error::SerdeError)?;
    let outcome = match live {
        None => Outcome::Created,
        Some(live) => {
            let have = serde_json::to_value(live).map_err(kube::Error::SerdeError)?;
            match first_difference(&want, &have) {
                None => return Ok(Outcome::Unchanged),
                Some(path) => Outcome::Updated(path),
            }
        }
    };
    let name = desired.name_any();
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&want)).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn server_additions_are_not_differences() {
        let desired = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "w", "image": "a"}]}}});
        let live = json!({
            "metadata": {"resourceVersion": "7", "managedFields": []},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10,
                     "template": {"containers": [{"name": "w", "image": "a", "terminationMessagePath": "/dev/x"}]}},
            "status": {"replicas": 2},
        });
        assert_eq!(first_difference(&desired, &live), None);
    }

    #[test]
    fn edits_and_deletions_are_found_with_their_path() {
        let desired = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "w", "image": "a"}]}}});
        let edited = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "w", "image": "evil"}]}}});
        assert_eq!(first_difference(&desired, &edited).as_deref(), Some(".spec.template.containers[0].image"));
        let scaled = json!({"spec": {"replicas": 5, "template": {"containers": [{"name": "w", "image": "a"}]}}});
        assert_eq!(first_difference(&desired, &scaled).as_deref(), Some(".spec.replicas"));
        let extra =
            json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "w", "image": "a"}, {"name": "x"}]}}});
        assert_eq!(first_difference(&desired, &extra).as_deref(), Some(".spec.template.containers"));
        assert_eq!(first_difference(&desired, &json!({})).as_deref(), Some(".spec"));
    }

    #[test]
    fn empty_equals_absent_and_numbers_by_value() {
        assert_eq!(first_difference(&json!({"a": {}, "b": [], "c": null}), &json!({})), None);
        assert_eq!(first_difference(&json!({"n": 1}), &json!({"n": 1.0})), None);
        assert!(first_difference(&json!({"n": 1}), &json!({"n": 2})).is_some());
    }
}
