//! Where a sink's objects go: Hive-style folders by event time, deterministic names.
//!
//! ```text
//! <prefix>/year=2026/month=11/day=25/hour=14/[symbol=AAPL/]<topic>+<partition>+<first>+<last>.parquet
//! <prefix>/<dead-letter prefix>/topic=<topic>/partition=<p>/<topic>+<p>+<first>+<last>.jsonl
//! <prefix>/_ticklake/claims/<topic>/<partition:05>/<first:020>.json
//! ```
//!
//! `first` and `last` are the Kafka offsets (inclusive, zero-padded to 20 digits so names sort
//! by offset) of the *batch* the object came from; a batch spanning several hours writes one
//! object per hour folder, all with the same offsets. The name is a pure function of
//! (layout, topic, partition, batch offsets, folder): writing the same batch again writes the
//! same keys — the heart of the exactly-once argument in ARCHITECTURE.md.
//!
//! Folders starting with `_` are skipped by Athena, Glue and Hive, which keeps claims and dead
//! letters out of the table.

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Serialize};
use ticklake_api::crd::{SinkFormat, TimeGranularity};

/// Everything that decides object keys. Recorded in every claim, so that a batch is rebuilt
/// with the layout it was first written with even if the spec changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    pub prefix: String,
    pub topic: String,
    pub granularity: TimeGranularity,
    pub by_symbol: bool,
    pub format: SinkFormat,
    pub dead_letter_prefix: String,
}

impl Layout {
    fn join(&self, rest: &str) -> String {
        if self.prefix.is_empty() { rest.to_string() } else { format!("{}/{rest}", self.prefix) }
    }

    /// The Hive folder (below the prefix) of a tick: `year=YYYY/month=MM/day=DD/hour=HH`
    /// (UTC; `hour=` omitted for day granularity), then `symbol=…` when partitioning by symbol.
    pub fn folder(&self, ts_us: i64, symbol: &str) -> String {
        let t = DateTime::from_timestamp_micros(ts_us).unwrap_or_default();
        let mut f = match self.granularity {
            TimeGranularity::Hour => {
                format!("year={:04}/month={:02}/day={:02}/hour={:02}", t.year(), t.month(), t.day(), t.hour())
            }
            TimeGranularity::Day => format!("year={:04}/month={:02}/day={:02}", t.year(), t.month(), t.day()),
        };
        if self.by_symbol {
            f.push_str("/symbol=");
            f.push_str(symbol);
        }
        f
    }

    /// Length of one time folder, in microseconds (folders start at UTC midnight or hour).
    pub fn granularity_us(&self) -> i64 {
        match self.granularity {
            TimeGranularity::Hour => 3_600_000_000,
            TimeGranularity::Day => 86_400_000_000,
        }
    }

    pub fn extension(&self) -> &'static str {
        match self.format {
            SinkFormat::Parquet => "parquet",
            SinkFormat::JsonLines => "jsonl",
        }
    }

    /// Key of the data object of batch `first..=last` of `partition` in `folder`.
    pub fn data_key(&self, folder: &str, partition: i32, first: i64, last: i64) -> String {
        self.join(&format!("{folder}/{}+{partition}+{first:020}+{last:020}.{}", self.topic, self.extension()))
    }

    /// Key of the dead-letter object of batch `first..=last` of `partition`.
    pub fn dead_letter_key(&self, partition: i32, first: i64, last: i64) -> String {
        self.join(&format!(
            "{}/topic={}/partition={partition}/{}+{partition}+{first:020}+{last:020}.jsonl",
            self.dead_letter_prefix, self.topic, self.topic
        ))
    }

    /// Whether `key` is a dead-letter object of this layout (not a data object).
    pub fn is_dead_letter_key(&self, key: &str) -> bool {
        key.starts_with(&self.join(&format!("{}/", self.dead_letter_prefix)))
    }

    /// Folder of the claims of every partition of the topic.
    pub fn claims_root(&self) -> String {
        self.join(&format!("_ticklake/claims/{}/", self.topic))
    }

    /// Folder of the claims of one partition.
    pub fn claims_prefix(&self, partition: i32) -> String {
        format!("{}{partition:05}/", self.claims_root())
    }

    /// The partition whose claims folder holds `key`, if it is a claim key of this topic.
    pub fn claim_partition(&self, key: &str) -> Option<i32> {
        let (p, _) = key.strip_prefix(&self.claims_root())?.split_once('/')?;
        p.parse().ok().filter(|p: &i32| *p >= 0)
    }

    /// Key of the claim of the batch starting at `first`.
    pub fn claim_key(&self, partition: i32, first: i64) -> String {
        format!("{}{first:020}.json", self.claims_prefix(partition))
    }

    /// The first offset of the batch a claim key names, if it is one.
    pub fn claim_first_offset(&self, partition: i32, key: &str) -> Option<i64> {
        key.strip_prefix(&self.claims_prefix(partition))?.strip_suffix(".json")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(by_symbol: bool, prefix: &str) -> Layout {
        Layout {
            prefix: prefix.into(),
            topic: "ticks".into(),
            granularity: TimeGranularity::Hour,
            by_symbol,
            format: SinkFormat::Parquet,
            dead_letter_prefix: "_dead_letters".into(),
        }
    }

    #[test]
    fn hive_folders_by_event_time_utc() {
        // 2025-11-25T14:30:00.123456Z
        let ts = 1_764_081_000_123_456;
        assert_eq!(layout(false, "x").folder(ts, "AAPL"), "year=2025/month=11/day=25/hour=14");
        assert_eq!(layout(true, "x").folder(ts, "AAPL"), "year=2025/month=11/day=25/hour=14/symbol=AAPL");
        let mut day = layout(false, "x");
        day.granularity = TimeGranularity::Day;
        assert_eq!(day.folder(ts, "AAPL"), "year=2025/month=11/day=25");
        // Before 1970 (daily bars of the 1960s).
        assert_eq!(layout(false, "x").folder(-126_230_400_000_000, "NYA"), "year=1966/month=01/day=01/hour=00");
    }

    #[test]
    fn names_sort_by_offset_and_are_deterministic() {
        let l = layout(false, "lake/ticks");
        let a = l.data_key("year=2025/month=11/day=25/hour=14", 3, 9, 1200);
        assert_eq!(
            a,
            "lake/ticks/year=2025/month=11/day=25/hour=14/ticks+3+00000000000000000009+00000000000000001200.parquet"
        );
        assert_eq!(a, l.data_key("year=2025/month=11/day=25/hour=14", 3, 9, 1200));
        assert!(l.claim_key(3, 9) < l.claim_key(3, 10));
        assert!(l.claim_key(3, 99) < l.claim_key(3, 100));
        assert_eq!(l.claim_first_offset(3, &l.claim_key(3, 1234)), Some(1234));
        assert_eq!(l.claim_first_offset(4, &l.claim_key(3, 1234)), None);
        assert_eq!(l.claim_partition(&l.claim_key(3, 1234)), Some(3));
        assert_eq!(l.claim_partition("lake/ticks/year=2025/x.parquet"), None);
        assert_eq!(
            l.dead_letter_key(0, 1, 2),
            "lake/ticks/_dead_letters/topic=ticks/partition=0/ticks+0+00000000000000000001+00000000000000000002.jsonl"
        );
        assert!(l.is_dead_letter_key(&l.dead_letter_key(0, 1, 2)));
        assert!(!l.is_dead_letter_key(&l.data_key("year=2026", 0, 1, 2)));
        assert_eq!(layout(false, "").claim_key(0, 0), "_ticklake/claims/ticks/00000/00000000000000000000.json");
    }
}
