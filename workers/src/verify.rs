//! Reading a sink's output back: every data object under a prefix, counted.
//!
//! Used by the crash tests, the benchmarks and `ticklake lake verify`: a landed topic is
//! exactly-once when every tick — identified by (`symbol`, `seq`) — appears once, none missing.

use crate::sink::encode;
use crate::store::{ObjectStore, StoreError, list_all};
use std::collections::HashMap;
use ticklake_api::tick::Tick;

/// What a prefix holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LakeStats {
    pub data_objects: u64,
    pub data_bytes: u64,
    /// Rows across data objects.
    pub rows: u64,
    /// Distinct (symbol, seq).
    pub distinct: u64,
    /// Rows whose (symbol, seq) was seen before.
    pub duplicates: u64,
    pub dead_letter_objects: u64,
    pub dead_letters: u64,
    pub claims: u64,
    /// Highest seq + 1 per symbol (ticks expected when a producer numbers from 0).
    pub seq_end: HashMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("object {key}: {detail}")]
    Object { key: String, detail: String },
}

/// Reads every object under `prefix` (`dead_letter_prefix` is the sink's dead-letter folder
/// name) and counts ticks.
pub async fn scan(store: &dyn ObjectStore, prefix: &str, dead_letter_prefix: &str) -> Result<LakeStats, VerifyError> {
    let mut stats = LakeStats::default();
    let mut seen: HashMap<String, std::collections::HashSet<u64>> = HashMap::new();
    let list_prefix = if prefix.is_empty() { String::new() } else { format!("{}/", prefix.trim_end_matches('/')) };
    let dl = format!("{list_prefix}{dead_letter_prefix}/");
    for o in list_all(store, &list_prefix).await? {
        let rel = &o.key[list_prefix.len()..];
        if o.key.starts_with(&dl) {
            let body = store.get(&o.key).await?.unwrap_or_default();
            stats.dead_letter_objects += 1;
            stats.dead_letters += body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
            continue;
        }
        if rel.starts_with("_ticklake/claims/") {
            stats.claims += 1;
            continue;
        }
        if rel.starts_with('_') || rel.split('/').any(|s| s.starts_with('_') || s.starts_with('.')) {
            continue;
        }
        let body = store.get(&o.key).await?.unwrap_or_default();
        let ticks: Vec<Tick> = if o.key.ends_with(".parquet") {
            encode::read_parquet(body.clone())
                .map_err(|e| VerifyError::Object { key: o.key.clone(), detail: e.to_string() })?
        } else if o.key.ends_with(".jsonl") {
            body.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    Tick::decode(l, usize::MAX)
                        .map_err(|e| VerifyError::Object { key: o.key.clone(), detail: e.to_string() })
                })
                .collect::<Result<_, _>>()?
        } else {
            continue;
        };
        stats.data_objects += 1;
        stats.data_bytes += body.len() as u64;
        for t in ticks {
            stats.rows += 1;
            let end = stats.seq_end.entry(t.symbol.clone()).or_default();
            *end = (*end).max(t.seq + 1);
            if seen.entry(t.symbol).or_default().insert(t.seq) {
                stats.distinct += 1;
            } else {
                stats.duplicates += 1;
            }
        }
    }
    Ok(stats)
}
