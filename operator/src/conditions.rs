//! Status conditions, computed without a client.
//!
//! Every kind reports `Ready`, `Progressing` and `Degraded` (Kubernetes API conventions: a list
//! keyed by `type`, CamelCase reasons, `observedGeneration` on each, `lastTransitionTime` moved
//! only when the status flips). [`Observed`] is what one reconcile saw; [`conditions`] turns it
//! into the three conditions; [`merge`] keeps the transition times of unchanged ones, so that a
//! reconcile that saw nothing new produces an identical status — and writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use ticklake_api::crd::condition::{DEGRADED, PROGRESSING, READY};

/// A problem the operator cannot fix by itself; becomes `Degraded=True` and `Ready=False`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase, e.g. `KafkaUnavailable`.
    pub reason: String,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &str, message: impl Into<String>) -> Problem {
        Problem { reason: reason.to_string(), message: message.into() }
    }
}

/// What a reconcile observed of a workload (StatefulSet or Deployment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// `kind/name`, for messages.
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    /// Pods running the current template.
    pub updated: i32,
    /// The workload controller has seen the workload's latest spec.
    pub observed_current: bool,
}

/// Everything the conditions depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub generation: Option<i64>,
    /// `None` when there is no workload (the spec could not be rendered, or the kind has none).
    pub workload: Option<Workload>,
    /// Problems, most important first.
    pub problems: Vec<Problem>,
    /// Why the resource is not ready although nothing is wrong (e.g. a feature not yet
    /// available): `Ready=False` with this reason, `Degraded=False`.
    pub not_ready: Option<Problem>,
}

fn condition(type_: &str, status: bool, reason: &str, message: String, generation: Option<i64>) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        // Set by `merge`.
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// `Ready`, `Progressing`, `Degraded` for what was observed.
pub fn conditions(o: &Observed) -> Vec<Condition> {
    let g = o.generation;
    let (progressing, progress_reason, progress_msg) = match &o.workload {
        Some(w) if !w.observed_current => (true, "RollingOut", format!("{} is picking up the new spec", w.name)),
        Some(w) if w.updated < w.desired => (
            true,
            "RollingOut",
            format!("{}: {} of {} pods run the current configuration", w.name, w.updated, w.desired),
        ),
        Some(w) if w.ready < w.desired => {
            (true, "PodsStarting", format!("{}: {} of {} pods ready", w.name, w.ready, w.desired))
        }
        Some(w) => (false, "RolledOut", format!("{}: {} of {} pods ready", w.name, w.ready, w.desired)),
        None => (false, "NoWorkload", "no workers are deployed".to_string()),
    };
    let (ready, ready_reason, ready_msg) = if let Some(p) = o.problems.first() {
        (false, p.reason.as_str(), p.message.clone())
    } else if let Some(n) = &o.not_ready {
        (false, n.reason.as_str(), n.message.clone())
    } else {
        match &o.workload {
            Some(w) if w.desired == 0 => (true, "ScaledToZero", format!("{} has 0 replicas: stopped", w.name)),
            Some(_) if progressing => (false, progress_reason, progress_msg.clone()),
            Some(w) => (true, "Running", format!("{}: all {} pods ready", w.name, w.ready)),
            None => (true, "Reconciled", "nothing to run".to_string()),
        }
    };
    let (degraded, degraded_reason, degraded_msg) = match o.problems.as_slice() {
        [] => (false, "AsExpected", "no problems".to_string()),
        [p] => (true, p.reason.as_str(), p.message.clone()),
        [p, rest @ ..] => (
            true,
            p.reason.as_str(),
            format!("{}; also: {}", p.message, rest.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join("; ")),
        ),
    };
    vec![
        condition(READY, ready, ready_reason, ready_msg, g),
        condition(PROGRESSING, progressing, progress_reason, progress_msg, g),
        condition(DEGRADED, degraded, degraded_reason, degraded_msg, g),
    ]
}

/// `new` with each condition's `lastTransitionTime` taken from `old` when its status did not
/// change, else `now`.
pub fn merge(old: &[Condition], new: Vec<Condition>, now: Time) -> Vec<Condition> {
    new.into_iter()
        .map(|mut c| {
            c.last_transition_time = match old.iter().find(|o| o.type_ == c.type_) {
                Some(o) if o.status == c.status => o.last_transition_time.clone(),
                _ => now.clone(),
            };
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(desired: i32, ready: i32, updated: i32, current: bool) -> Option<Workload> {
        Some(Workload { name: "StatefulSet/x".into(), desired, ready, updated, observed_current: current })
    }

    fn get<'a>(cs: &'a [Condition], t: &str) -> (&'a str, &'a str) {
        let c = cs.iter().find(|c| c.type_ == t).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn ready_when_every_pod_is() {
        let cs = conditions(&Observed { generation: Some(3), workload: w(2, 2, 2, true), ..Default::default() });
        assert_eq!(get(&cs, READY), ("True", "Running"));
        assert_eq!(get(&cs, PROGRESSING), ("False", "RolledOut"));
        assert_eq!(get(&cs, DEGRADED), ("False", "AsExpected"));
        assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn progressing_while_rolling_or_starting() {
        let cs = conditions(&Observed { workload: w(2, 2, 1, true), ..Default::default() });
        assert_eq!(get(&cs, READY), ("False", "RollingOut"));
        assert_eq!(get(&cs, PROGRESSING), ("True", "RollingOut"));
        let cs = conditions(&Observed { workload: w(2, 0, 2, true), ..Default::default() });
        assert_eq!(get(&cs, PROGRESSING), ("True", "PodsStarting"));
        let cs = conditions(&Observed { workload: w(2, 2, 2, false), ..Default::default() });
        assert_eq!(get(&cs, PROGRESSING), ("True", "RollingOut"));
        let cs = conditions(&Observed { workload: w(0, 0, 0, true), ..Default::default() });
        assert_eq!(get(&cs, READY), ("True", "ScaledToZero"));
    }

    #[test]
    fn problems_degrade_and_unready() {
        let o = Observed {
            workload: w(1, 1, 1, true),
            problems: vec![
                Problem::new("KafkaUnavailable", "no broker answered"),
                Problem::new("PartitionsCannotShrink", "12 > 6"),
            ],
            ..Default::default()
        };
        let cs = conditions(&o);
        assert_eq!(get(&cs, READY), ("False", "KafkaUnavailable"));
        assert_eq!(get(&cs, DEGRADED), ("True", "KafkaUnavailable"));
        let d = cs.iter().find(|c| c.type_ == DEGRADED).unwrap();
        assert!(d.message.contains("no broker answered") && d.message.contains("12 > 6"), "{}", d.message);
        let n = Observed { not_ready: Some(Problem::new("NotImplemented", "later")), ..Default::default() };
        let cs = conditions(&n);
        assert_eq!(get(&cs, READY), ("False", "NotImplemented"));
        assert_eq!(get(&cs, DEGRADED), ("False", "AsExpected"));
    }

    #[test]
    fn transition_times_move_only_on_a_flip() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let o = Observed { workload: w(1, 0, 1, true), ..Default::default() };
        let first = merge(&[], conditions(&o), t0.clone());
        assert!(first.iter().all(|c| c.last_transition_time == t0));
        // Same observation later: identical conditions, so an identical status.
        assert_eq!(merge(&first, conditions(&o), t1.clone()), first);
        let ready = Observed { workload: w(1, 1, 1, true), ..Default::default() };
        let second = merge(&first, conditions(&ready), t1.clone());
        let time = |cs: &[Condition], t: &str| cs.iter().find(|c| c.type_ == t).unwrap().last_transition_time.clone();
        assert_eq!(time(&second, READY), t1);
        assert_eq!(time(&second, PROGRESSING), t1);
        assert_eq!(time(&second, DEGRADED), t0);
    }
}
