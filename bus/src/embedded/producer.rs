//! The producer: validates and routes a batch, then appends it on a blocking thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::partition::Append;
use super::{EmbeddedLog, Topic, blocking};
use crate::{BusError, OutRecord, Producer, Result, partition_for_key};

pub(crate) struct EmbeddedProducer {
    pub(crate) log: Arc<EmbeddedLog>,
    pub(crate) topic: Arc<Topic>,
    /// Round-robin position for records with neither key nor partition.
    pub(crate) next: AtomicU32,
}

impl EmbeddedProducer {
    /// The partition of each record, checking the whole batch before anything is written,
    /// so a bad record fails the batch without writing part of it.
    fn route(&self, batch: &[OutRecord]) -> Result<Vec<usize>> {
        let n = self.topic.partitions.len() as i32;
        let limit = self.log.options.max_record_bytes;
        batch
            .iter()
            .map(|r| {
                let bytes = r.key.as_ref().map_or(0, |k| k.len()) + r.value.len();
                if bytes > limit {
                    return Err(BusError::TooLarge { bytes, limit });
                }
                let p = match (r.partition, &r.key) {
                    (Some(p), _) if (0..n).contains(&p) => p,
                    (Some(p), _) => {
                        return Err(BusError::UnknownPartition { topic: self.topic.name.clone(), partition: p });
                    }
                    (None, Some(key)) => partition_for_key(key, n),
                    (None, None) => (self.next.fetch_add(1, Ordering::Relaxed) % n as u32) as i32,
                };
                Ok(p as usize)
            })
            .collect()
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn send_batch(&self, batch: Vec<OutRecord>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let routes = self.route(&batch)?;
        let topic = Arc::clone(&self.topic);
        // Held until the write is done, even if this future is dropped: the log stays open.
        let log = Arc::clone(&self.log);
        blocking(move || {
            let mut by_partition: Vec<Vec<Append<'_>>> = (0..topic.partitions.len()).map(|_| Vec::new()).collect();
            for (r, p) in batch.iter().zip(routes) {
                by_partition[p].push(Append { timestamp_ms: r.timestamp_ms, key: r.key.as_deref(), value: &r.value });
            }
            let mut touched = Vec::new();
            for (p, records) in by_partition.iter().enumerate() {
                if records.is_empty() {
                    continue;
                }
                let appended = topic.partitions[p].append(records);
                // Wake consumers even when the append failed part way: it may have written
                // (and made readable) a prefix before failing.
                topic.data.notify_waiters();
                appended?;
                touched.push(p);
            }
            if log.options.fsync_interval_ms == 0 {
                for p in touched {
                    topic.partitions[p].sync()?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        let topic = Arc::clone(&self.topic);
        let log = Arc::clone(&self.log);
        blocking(move || {
            let _open = &log;
            topic.partitions.iter().try_for_each(|p| p.sync())
        })
        .await
    }
}
