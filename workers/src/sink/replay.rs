//! Reading landed batches back from the claim chain, for listeners that may have missed a
//! [`LandedBatch`] report — the notifier, when the process died while reports were still in
//! its channels.
//!
//! The claims of a partition are a durable, ordered record of every batch the sink landed
//! (see [`super::claim`]): `<prefix>/_ticklake/claims/<topic>/<partition:05>/<first:020>.json`,
//! names sorting by offset. A listener keeps a **mark** per partition — the first offset it
//! has not durably taken in — and asks for the batches from there ([`landed_from`]):
//!
//! * a claim with a successor in the chain is complete: a partition claims batch *n+1* only
//!   after batch *n*'s objects are all written;
//! * the chain's **last** claim may be mid-upload, or left incomplete by a crash (the next
//!   owner rewrites it): its objects are checked with `exists`, and it is handed out only when
//!   all are there. Otherwise the mark stays at its first offset and a later call looks again.
//!   So nothing is announced before its objects exist.
//!
//! A listener that starts following a lake with history starts at [`end_mark`] instead of
//! replaying the past; [`chain_end`] finds the last claim with O(log offset) `list` calls of
//! one key each, not by walking the chain. [`partitions`] finds the partitions that have
//! claims the same way (one call per partition).
//!
//! Limits: [`landed_from`] reads one `list` page of at most `max_batches + 1` keys and at most
//! `max_batches` claims; [`partitions`] returns at most `max` partitions.

use super::LandedBatch;
use super::claim::{self, Claim, ClaimError};
use super::layout::Layout;
use crate::store::ObjectStore;

/// What [`landed_from`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Complete batches at or after the mark, in chain order.
    pub batches: Vec<Claim>,
    /// The mark after taking `batches` in: the last one's `last + 1` (unchanged if none).
    pub next: i64,
    /// More complete batches may follow (the page was cut at `max_batches`).
    pub more: bool,
}

/// The partitions of the layout's topic that have at least one claim, ascending, at most
/// `max`. One `list` call of one key per partition: after finding partition *p*, the next
/// call starts after every key of *p*'s folder (`<p:05>/~` sorts after them all).
pub async fn partitions(store: &dyn ObjectStore, layout: &Layout, max: usize) -> Result<Vec<i32>, ClaimError> {
    let root = layout.claims_root();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    while out.len() < max {
        let page = store.list(&root, after.as_deref(), 1).await?;
        let Some(o) = page.into_iter().next() else { break };
        match layout.claim_partition(&o.key) {
            Some(p) => {
                out.push(p);
                after = Some(format!("{}~", layout.claims_prefix(p)));
            }
            // Something else under the root (not `<digits>/…`): step over it.
            None => after = Some(o.key),
        }
    }
    Ok(out)
}

/// The first claim of `partition` whose first offset is at least `from`, if any.
async fn first_claim_from(
    store: &dyn ObjectStore,
    layout: &Layout,
    partition: i32,
    from: i64,
) -> Result<Option<i64>, ClaimError> {
    let after = (from > 0).then(|| layout.claim_key(partition, from - 1));
    let page = store.list(&layout.claims_prefix(partition), after.as_deref(), 1).await?;
    Ok(page.first().and_then(|o| layout.claim_first_offset(partition, &o.key)))
}

/// The last claim of `partition`'s chain (by first offset), found by galloping then
/// bisecting on "is there a claim at or after offset x?" — about 2·log2(offset) `list`
/// calls of one key, whatever the chain's length.
pub async fn chain_end(store: &dyn ObjectStore, layout: &Layout, partition: i32) -> Result<Option<Claim>, ClaimError> {
    let Some(mut lo) = first_claim_from(store, layout, partition, 0).await? else { return Ok(None) };
    // Invariant: a claim starts at `lo`; none starts at or after `hi`.
    let mut step: i64 = 1;
    let mut hi = loop {
        let probe = lo.saturating_add(step);
        match first_claim_from(store, layout, partition, probe).await? {
            Some(f) => {
                lo = f;
                step = step.saturating_mul(2);
            }
            None => break probe,
        }
        if lo == i64::MAX {
            break i64::MAX;
        }
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match first_claim_from(store, layout, partition, mid).await? {
            Some(f) => lo = f,
            None => hi = mid,
        }
    }
    claim::read(store, &layout.claim_key(partition, lo)).await
}

/// Whether every object a claim lists exists.
async fn complete(store: &dyn ObjectStore, c: &Claim) -> Result<bool, ClaimError> {
    for o in &c.objects {
        if !store.exists(&o.key).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The mark of a listener that starts following `partition` now: after every complete
/// batch; at the last claim's first offset if its objects are not all written yet (it will
/// be completed, and should then be announced). 0 when the partition has no claim.
pub async fn end_mark(store: &dyn ObjectStore, layout: &Layout, partition: i32) -> Result<i64, ClaimError> {
    Ok(match chain_end(store, layout, partition).await? {
        None => 0,
        Some(c) if complete(store, &c).await? => c.last + 1,
        Some(c) => c.first,
    })
}

/// The complete batches of `partition` from offset `from` on (see the module docs), at most
/// `max_batches` (at least 1 is read).
pub async fn landed_from(
    store: &dyn ObjectStore,
    layout: &Layout,
    partition: i32,
    from: i64,
    max_batches: usize,
) -> Result<Page, ClaimError> {
    let max_batches = max_batches.max(1);
    let after = (from > 0).then(|| layout.claim_key(partition, from - 1));
    let listed = store.list(&layout.claims_prefix(partition), after.as_deref(), max_batches + 1).await?;
    let mut claims: Vec<(i64, String)> = listed
        .into_iter()
        .filter_map(|o| layout.claim_first_offset(partition, &o.key).map(|first| (first, o.key)))
        .collect();
    let more = claims.len() > max_batches;
    claims.truncate(max_batches);
    let mut page = Page { batches: Vec::new(), next: from, more };
    let n = claims.len();
    for (i, (first, key)) in claims.into_iter().enumerate() {
        let Some(c) = claim::read(store, &key).await? else { continue };
        if c.last < c.first || c.first != first {
            return Err(ClaimError::Corrupt {
                key,
                detail: format!("offsets {}..={} do not match its name", c.first, c.last),
            });
        }
        // Only the chain's last claim can be incomplete: it has no successor in the listing.
        let is_last = i + 1 == n && !more;
        if is_last && !complete(store, &c).await? {
            tracing::debug!(partition, first = c.first, "last claim not complete yet; not replayed");
            break;
        }
        page.next = c.last + 1;
        page.batches.push(c);
    }
    Ok(page)
}

/// The [`LandedBatch`]es of a page, as the sink would have reported them. `landed_at_ms` is
/// the claim's creation time (the batch became visible just after), else `fallback_ms`.
pub fn batches(sink: &str, page: &Page, fallback_ms: i64) -> Vec<LandedBatch> {
    page.batches
        .iter()
        .map(|c| {
            let at = chrono::DateTime::parse_from_rfc3339(&c.created_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or(fallback_ms);
            LandedBatch::from_claim(sink, c, at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::claim::ClaimedObject;
    use crate::store::LocalStore;
    use bytes::Bytes;
    use ticklake_api::crd::{SinkFormat, TimeGranularity};

    fn layout() -> Layout {
        Layout {
            prefix: "lake".into(),
            topic: "ticks".into(),
            granularity: TimeGranularity::Hour,
            by_symbol: false,
            format: SinkFormat::Parquet,
            dead_letter_prefix: "_dead_letters".into(),
        }
    }

    /// Claims batch `first..=last` of `p` with one data object; writes the object if `write`.
    async fn claim(store: &dyn ObjectStore, p: i32, first: i64, last: i64, write: bool) -> String {
        let l = layout();
        let key = l.data_key("year=2026/month=11/day=25/hour=14", p, first, last);
        let c = Claim {
            v: 1,
            topic: "ticks".into(),
            partition: p,
            first,
            last,
            records: (last - first + 1) as u64,
            dead_letters: 0,
            writer: "test".into(),
            created_at: "2026-11-25T14:30:00.000Z".into(),
            layout: l.clone(),
            objects: vec![ClaimedObject { key: key.clone(), rows: (last - first + 1) as u64, bytes: 1 }],
        };
        assert!(
            store.put_if_absent(&l.claim_key(p, first), Bytes::from(serde_json::to_vec(&c).unwrap())).await.unwrap()
        );
        if write {
            store.put(&key, Bytes::from_static(b"x")).await.unwrap();
        }
        key
    }

    #[tokio::test]
    async fn replays_complete_batches_in_pages_and_waits_for_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let l = layout();
        assert_eq!(partitions(&store, &l, 10).await.unwrap(), Vec::<i32>::new());
        assert_eq!(end_mark(&store, &l, 0).await.unwrap(), 0);
        for i in 0..5 {
            claim(&store, 0, i * 10, i * 10 + 9, true).await;
        }
        // The last claim of partition 0 is mid-upload.
        let pending = claim(&store, 0, 50, 59, false).await;
        claim(&store, 3, 0, 99, true).await;
        claim(&store, 12, 7, 7, true).await;
        assert_eq!(partitions(&store, &l, 10).await.unwrap(), vec![0, 3, 12]);
        assert_eq!(partitions(&store, &l, 2).await.unwrap(), vec![0, 3]);

        let p = landed_from(&store, &l, 0, 0, 2).await.unwrap();
        assert_eq!((p.batches.iter().map(|c| c.first).collect::<Vec<_>>(), p.next, p.more), (vec![0, 10], 20, true));
        let p = landed_from(&store, &l, 0, 20, 10).await.unwrap();
        assert_eq!(
            (p.batches.iter().map(|c| c.first).collect::<Vec<_>>(), p.next, p.more),
            (vec![20, 30, 40], 50, false)
        );
        let p = landed_from(&store, &l, 0, 50, 10).await.unwrap();
        assert_eq!((p.batches.len(), p.next), (0, 50), "not announced before its object exists");
        assert_eq!(end_mark(&store, &l, 0).await.unwrap(), 50, "a listener starting now still gets it");
        store.put(&pending, Bytes::from_static(b"x")).await.unwrap();
        let p = landed_from(&store, &l, 0, 50, 10).await.unwrap();
        assert_eq!((p.batches.len(), p.next), (1, 60));
        assert_eq!(end_mark(&store, &l, 0).await.unwrap(), 60);
        assert_eq!(end_mark(&store, &l, 3).await.unwrap(), 100);
        assert_eq!(end_mark(&store, &l, 12).await.unwrap(), 8);
        let b = batches("lake", &p, 0);
        assert_eq!((b[0].sink.as_str(), b[0].first, b[0].objects[0].key.as_str()), ("lake", 50, pending.as_str()));
        assert_eq!(b[0].landed_at_ms, 1_795_617_000_000);
    }

    #[tokio::test]
    async fn the_chain_end_is_found_by_bisection() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let l = layout();
        let firsts = [3i64, 4, 90, 1000, 1001, 65_537, 9_000_000_001];
        for (i, f) in firsts.iter().enumerate() {
            let last = firsts.get(i + 1).map(|n| n - 1).unwrap_or(f + 5);
            claim(&store, 1, *f, last, true).await;
        }
        let c = chain_end(&store, &l, 1).await.unwrap().unwrap();
        assert_eq!((c.first, c.last), (9_000_000_001, 9_000_000_006));
        assert_eq!(end_mark(&store, &l, 1).await.unwrap(), 9_000_000_007);
        assert!(chain_end(&store, &l, 2).await.unwrap().is_none());
    }
}
