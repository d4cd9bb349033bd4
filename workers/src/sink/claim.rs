//! Claims: the record that makes a batch's objects exactly-once.
//!
//! Before uploading the objects of a batch (Kafka offsets `first..=last` of one partition), the
//! sink creates `<prefix>/_ticklake/claims/<topic>/<partition>/<first>.json` with a
//! create-if-absent write. The claim lists the objects the batch produces and the layout that
//! named them. Then the objects are uploaded; then the Kafka offset `last + 1` is committed.
//!
//! * The claims of a partition form a chain: each starts at the previous one's `last + 1`.
//!   Create-if-absent makes each link unique — two workers racing for the same offsets (a
//!   rebalance, a zombie) cannot both claim them; the loser drops its buffer and follows the
//!   chain.
//! * Object names depend only on the batch and the layout, so writing a batch again writes
//!   the same keys with the same rows: re-uploads after a crash replace, never duplicate.
//! * Recovery (on every partition assignment) walks the chain from the committed Kafka offset
//!   (a hint: it is only ever behind the chain), finds the last claim, and checks that its
//!   objects exist. If some are missing — the previous owner crashed mid-upload — it re-reads
//!   exactly `first..=last` from Kafka and writes the claimed objects again, then continues at
//!   `last + 1`. Only the last claim can be incomplete: a worker claims the next batch only
//!   after the previous one's objects are all written.

use super::layout::Layout;
use crate::store::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

/// The claim of one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// Claim format version (1).
    pub v: u32,
    pub topic: String,
    pub partition: i32,
    /// First Kafka offset of the batch.
    pub first: i64,
    /// Last Kafka offset of the batch (inclusive).
    pub last: i64,
    /// Ticks in the data objects.
    pub records: u64,
    /// Messages in the dead-letter object.
    pub dead_letters: u64,
    /// Who claimed it (pod or host, process id).
    pub writer: String,
    /// RFC 3339.
    pub created_at: String,
    pub layout: Layout,
    pub objects: Vec<ClaimedObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedObject {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Where a partition resumes after an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The next offset to land; `None` when nothing was ever landed for this partition (start
    /// wherever the consumer starts: the committed offset, else the earliest).
    pub next: Option<i64>,
    /// A claimed batch whose objects are not all there: to be re-read and rewritten first.
    pub rebuild: Option<Claim>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("claim {key} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
}

/// Reads one claim.
pub async fn read(store: &dyn ObjectStore, key: &str) -> Result<Option<Claim>, ClaimError> {
    let Some(bytes) = store.get(key).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ClaimError::Corrupt { key: key.to_string(), detail: e.to_string() })
}

/// Walks the claim chain of `partition` from `hint` (the committed Kafka offset) and says
/// where to resume. See the module docs.
pub async fn recover(
    store: &dyn ObjectStore,
    layout: &Layout,
    partition: i32,
    hint: Option<i64>,
) -> Result<Resume, ClaimError> {
    const PAGE: usize = 1000;
    let prefix = layout.claims_prefix(partition);
    let mut after: Option<String> = hint.filter(|h| *h > 0).map(|h| layout.claim_key(partition, h - 1));
    let mut next = hint;
    let mut last: Option<Claim> = None;
    loop {
        let page = store.list(&prefix, after.as_deref(), PAGE).await?;
        let n = page.len();
        for o in page {
            let Some(first) = layout.claim_first_offset(partition, &o.key) else { continue };
            if let Some(want) = next {
                if first < want {
                    continue;
                }
                if first > want {
                    tracing::warn!(
                        partition,
                        expected = want,
                        found = first,
                        "claim chain has a gap; continuing from the next claim"
                    );
                }
            }
            let Some(c) = read(store, &o.key).await? else { continue };
            if c.last < c.first || c.first != first {
                return Err(ClaimError::Corrupt {
                    key: o.key,
                    detail: format!("offsets {}..={} do not match its name", c.first, c.last),
                });
            }
            next = Some(c.last + 1);
            last = Some(c);
        }
        if n < PAGE {
            break;
        }
        after = last.as_ref().map(|c| layout.claim_key(partition, c.first));
    }
    if let Some(c) = last {
        for o in &c.objects {
            if !store.exists(&o.key).await? {
                tracing::warn!(partition, first = c.first, last = c.last, missing = %o.key, "claimed batch is incomplete; it will be rewritten");
                return Ok(Resume { next: Some(c.first), rebuild: Some(c) });
            }
        }
    }
    Ok(Resume { next, rebuild: None })
}
