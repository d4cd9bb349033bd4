//! The consumer: a group member's state machine (eager rebalance) and its read cursors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::group::Group;
use super::partition::Cursor;
use super::{EmbeddedLog, Topic, blocking};
use crate::{BusError, Consumer, ConsumerEvent, Result};

/// Where a member is in the group protocol.
enum Phase {
    /// Waiting for the group to hand out a generation's assignment.
    Joining,
    /// Holding (and reading) the assignment of this generation.
    Active { generation: u64 },
    /// `Revoked` was returned; the application is writing out and committing. The member still
    /// owns its old partitions (so those commits succeed) until its next poll.
    Revoking,
}

/// What one pass of the state machine produced.
enum Step {
    Event(ConsumerEvent),
    /// Nothing yet; wait for data or a group change, and at the latest until this instant
    /// (a pending rebalance's deadline).
    Wait(Option<std::time::Instant>),
}

pub(crate) struct EmbeddedConsumer {
    pub(crate) log: Arc<EmbeddedLog>,
    pub(crate) topic: Arc<Topic>,
    pub(crate) group: Arc<Group>,
    pub(crate) member: u64,
    phase: Phase,
    /// The assignment the application was last told about.
    assignment: Vec<i32>,
    cursors: BTreeMap<i32, Cursor>,
    /// Rotates which assigned partition is read first, for fairness across polls.
    next_first: usize,
    closed: bool,
}

impl EmbeddedConsumer {
    pub(crate) fn new(log: Arc<EmbeddedLog>, topic: Arc<Topic>, group: Arc<Group>, member: u64) -> Self {
        EmbeddedConsumer {
            log,
            topic,
            group,
            member,
            phase: Phase::Joining,
            assignment: Vec::new(),
            cursors: BTreeMap::new(),
            next_first: 0,
            closed: false,
        }
    }

    fn check_partition(&self, partition: i32) -> Result<()> {
        if (0..self.topic.partitions.len() as i32).contains(&partition) {
            Ok(())
        } else {
            Err(BusError::UnknownPartition { topic: self.topic.name.clone(), partition })
        }
    }

    /// Advances the member's state machine by what the group says, then reads.
    fn step(&mut self, max_records: usize) -> Result<Step> {
        loop {
            match self.phase {
                Phase::Active { generation } => {
                    let view = self.group.view(self.member);
                    if view.rebalancing.is_some() || view.generation != generation {
                        self.phase = Phase::Revoking;
                        self.cursors.clear();
                        return Ok(Step::Event(ConsumerEvent::Revoked(std::mem::take(&mut self.assignment))));
                    }
                    return self.read(max_records);
                }
                Phase::Revoking => {
                    // The application has seen `Revoked` and polled again: it is done.
                    self.group.ack(self.member);
                    self.phase = Phase::Joining;
                }
                Phase::Joining => {
                    let view = self.group.view(self.member);
                    if let Some(deadline) = view.rebalancing {
                        // Gives up an assignment handed out but never taken.
                        self.group.ack(self.member);
                        return Ok(Step::Wait(Some(deadline)));
                    }
                    self.start(view.generation, view.owned);
                    return Ok(Step::Event(ConsumerEvent::Assigned(self.assignment.clone())));
                }
            }
        }
    }

    /// Takes a new assignment: each partition starts at the group's committed offset, or at
    /// the earliest offset when none was committed.
    fn start(&mut self, generation: u64, owned: Vec<i32>) {
        let committed = self.group.committed(&self.topic.name, &owned);
        self.cursors = owned
            .iter()
            .zip(committed)
            .map(|(&p, c)| {
                let high = self.topic.partitions[p as usize].high();
                let offset = match c {
                    Some(c) if c > high => {
                        // The log lost its unsynced tail in a machine crash after the commit;
                        // what was lost is gone, and what is written next is new.
                        tracing::warn!(
                            topic = %self.topic.name, partition = p, committed = c, high,
                            "committed offset is past the end of the log; starting at the end"
                        );
                        high
                    }
                    Some(c) => c,
                    None => 0,
                };
                (p, Cursor::at(offset))
            })
            .collect();
        self.assignment = owned;
        self.next_first = 0;
        self.phase = Phase::Active { generation };
    }

    /// Reads from the assigned partitions, at most `max_records` and about `max_poll_bytes`.
    fn read(&mut self, max_records: usize) -> Result<Step> {
        let n = self.assignment.len();
        let max_bytes = self.log.options.max_poll_bytes;
        let mut out = Vec::new();
        let mut bytes = 0;
        for i in 0..n {
            if out.len() >= max_records || bytes >= max_bytes {
                break;
            }
            let p = self.assignment[(self.next_first + i) % n];
            let Some(cursor) = self.cursors.get_mut(&p) else {
                continue;
            };
            let (_, b) =
                self.topic.partitions[p as usize].read(cursor, max_records - out.len(), max_bytes - bytes, &mut out)?;
            bytes += b;
        }
        if n > 0 {
            self.next_first = (self.next_first + 1) % n;
        }
        Ok(if out.is_empty() { Step::Wait(None) } else { Step::Event(ConsumerEvent::Records(out)) })
    }

    fn leave(&mut self) {
        if !self.closed {
            self.closed = true;
            self.cursors.clear();
            self.assignment.clear();
            self.group.leave(self.member);
        }
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    /// Cancel-safe: nothing is consumed before the last await point, so dropping the future
    /// loses no records or events.
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<ConsumerEvent> {
        if self.closed {
            return Err(BusError::Closed);
        }
        if max_records == 0 {
            return Err(BusError::Config("poll needs max_records of at least 1".into()));
        }
        let deadline = Instant::now().checked_add(timeout);
        let topic = Arc::clone(&self.topic);
        let group = Arc::clone(&self.group);
        loop {
            // Register for wake-ups before looking, so nothing slips in between.
            let data = topic.data.notified();
            let changed = group.changed.notified();
            tokio::pin!(data, changed);
            data.as_mut().enable();
            changed.as_mut().enable();

            let wake = match self.step(max_records)? {
                Step::Event(e) => return Ok(e),
                Step::Wait(rebalance_deadline) => {
                    let r = rebalance_deadline.map(Instant::from_std);
                    match (deadline, r) {
                        (Some(d), Some(r)) => Some(d.min(r)),
                        (d, r) => d.or(r),
                    }
                }
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(ConsumerEvent::Idle);
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut data => {}
                _ = &mut changed => {}
                _ = sleep => {}
            }
        }
    }

    async fn seek(&mut self, partition: i32, offset: i64) -> Result<()> {
        if self.closed {
            return Err(BusError::Closed);
        }
        self.check_partition(partition)?;
        if !self.assignment.contains(&partition) {
            return Err(BusError::NotAssigned(partition));
        }
        let high = self.topic.partitions[partition as usize].high();
        if !(0..=high).contains(&offset) {
            return Err(BusError::OffsetOutOfRange { partition, offset, low: 0, high });
        }
        self.cursors.insert(partition, Cursor::at(offset));
        Ok(())
    }

    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<()> {
        if self.closed {
            return Err(BusError::Closed);
        }
        if offsets.is_empty() {
            return Ok(());
        }
        for &(partition, offset) in offsets {
            self.check_partition(partition)?;
            let high = self.topic.partitions[partition as usize].high();
            if !(0..=high).contains(&offset) {
                return Err(BusError::OffsetOutOfRange { partition, offset, low: 0, high });
            }
        }
        let group = Arc::clone(&self.group);
        let topic = self.topic.name.clone();
        let member = self.member;
        let offsets = offsets.to_vec();
        let log = Arc::clone(&self.log);
        blocking(move || {
            let _open = &log; // the log stays open until the write is done
            group.commit(member, &topic, &offsets)
        })
        .await
    }

    async fn committed(&mut self, partitions: &[i32]) -> Result<Vec<Option<i64>>> {
        for &p in partitions {
            self.check_partition(p)?;
        }
        Ok(self.group.committed(&self.topic.name, partitions))
    }

    fn assignment(&self) -> Vec<i32> {
        self.assignment.clone()
    }

    async fn close(&mut self) -> Result<()> {
        self.leave();
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.leave();
    }
}
