//! The status report workers serve at `GET /status` and the operator reads.
//!
//! Prometheus metrics are for dashboards; this report is for `kubectl get`: the few live
//! figures a resource's `status` shows (messages per second, consumer lag, the last object
//! written), computed by the worker that knows them, in one small JSON document:
//!
//! ```json
//! {"workers": [{"worker": "sink/ticks", "kind": "sink", "ready": true, "total": 120000,
//!   "messagesPerSecond": 1000.0, "consumerLag": 12, "deadLetters": 0, "objects": 4,
//!   "lastObjectKey": "ticks/year=2026/.../00000-00000000000000000000.parquet",
//!   "lastObjectTimeMs": 1795600000000}]}
//! ```
//!
//! One process may run several workers (the local runner does); the operator's pods run one.

use serde::{Deserialize, Serialize};

/// Everything one worker process reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub workers: Vec<WorkerReport>,
}

/// What a worker is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum WorkerKind {
    Producer,
    Sink,
}

/// One worker's live figures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReport {
    /// `producer/<name>` or `sink/<name>`.
    pub worker: String,
    pub kind: WorkerKind,
    /// Connected and working.
    pub ready: bool,
    /// Ticks produced (producer) or landed in data objects (sink) since the process started.
    pub total: u64,
    /// Ticks per second over the last minute (or since start, when younger).
    pub messages_per_second: f64,
    /// Sink: messages in its assigned partitions not yet landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Sink: messages refused and written as dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<u64>,
    /// Sink: objects written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Sink: key of the last data object written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_object_key: Option<String>,
    /// Sink: when the last object was written, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_object_time_ms: Option<i64>,
}

/// Figures summed over the workers of one resource (several pods).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub workers: usize,
    pub ready: usize,
    pub total: u64,
    pub messages_per_second: f64,
    pub consumer_lag: Option<i64>,
    pub dead_letters: Option<u64>,
    pub objects: Option<u64>,
    /// The newest last object over all workers.
    pub last_object: Option<(String, i64)>,
}

impl Totals {
    /// Sums `reports`; the last object is the most recent one.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a WorkerReport>) -> Totals {
        fn add<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        let mut t = Totals::default();
        for r in reports {
            t.workers += 1;
            t.ready += r.ready as usize;
            t.total += r.total;
            t.messages_per_second += r.messages_per_second;
            t.consumer_lag = add(t.consumer_lag, r.consumer_lag);
            t.dead_letters = add(t.dead_letters, r.dead_letters);
            t.objects = add(t.objects, r.objects);
            if let (Some(k), Some(at)) = (&r.last_object_key, r.last_object_time_ms)
                && t.last_object.as_ref().is_none_or(|(_, prev)| at > *prev)
            {
                t.last_object = Some((k.clone(), at));
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(total: u64, lag: i64, last: Option<(&str, i64)>) -> WorkerReport {
        WorkerReport {
            worker: "sink/x".into(),
            kind: WorkerKind::Sink,
            ready: true,
            total,
            messages_per_second: total as f64 / 10.0,
            consumer_lag: Some(lag),
            dead_letters: Some(1),
            objects: Some(2),
            last_object_key: last.map(|l| l.0.to_string()),
            last_object_time_ms: last.map(|l| l.1),
        }
    }

    #[test]
    fn totals_sum_workers_and_keep_the_newest_object() {
        let rs = [sink(100, 5, Some(("a", 20))), sink(50, 7, Some(("b", 30))), sink(0, 0, None)];
        let t = Totals::of(&rs);
        assert_eq!((t.workers, t.ready, t.total), (3, 3, 150));
        assert_eq!(t.messages_per_second, 15.0);
        assert_eq!((t.consumer_lag, t.dead_letters, t.objects), (Some(12), Some(3), Some(6)));
        assert_eq!(t.last_object, Some(("b".to_string(), 30)));
    }

    #[test]
    fn producer_reports_have_no_sink_fields() {
        let r = WorkerReport {
            worker: "producer/p".into(),
            kind: WorkerKind::Producer,
            ready: false,
            total: 3,
            messages_per_second: 0.5,
            consumer_lag: None,
            dead_letters: None,
            objects: None,
            last_object_key: None,
            last_object_time_ms: None,
        };
        let json = serde_json::to_string(&StatusReport { workers: vec![r.clone()] }).unwrap();
        assert_eq!(
            json,
            r#"{"workers":[{"worker":"producer/p","kind":"producer","ready":false,"total":3,"messagesPerSecond":0.5}]}"#
        );
        let t = Totals::of(&[r]);
        assert_eq!((t.consumer_lag, t.objects, t.last_object), (None, None, None));
    }
}
