//! Consumer groups: membership with Kafka's eager rebalance protocol and range assignment,
//! and the group's committed offsets in `groups/<group>.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::fsutil::{lock, write_atomic};
use crate::{BusError, Result};

/// Committed next offsets: topic → partition → offset.
type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// The content of `groups/<group>.json`.
#[derive(Serialize, Deserialize)]
struct OffsetsFile {
    group: String,
    offsets: Offsets,
}

/// The file name a group's offsets are kept in: the name itself when it is made of
/// `[A-Za-z0-9._-]`, with any other byte written as `%XX`, so any group name is a safe file
/// name and distinct names stay distinct.
pub(crate) fn group_file_name(group: &str) -> String {
    let mut s = String::with_capacity(group.len() + 5);
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str(".json");
    s
}

struct Member {
    topic: String,
    partitions: i32,
    /// Partitions this member owns in the current generation. Ownership is what commits are
    /// checked against (generation fencing).
    owned: Vec<i32>,
}

struct Rebalance {
    /// Members that still own partitions of the previous generation and have not yet come
    /// back after their `Revoked` event.
    waiting: BTreeSet<u64>,
    /// After this the rebalance completes without the laggards (Kafka's
    /// `max.poll.interval.ms`): their partitions are reassigned and their commits refused.
    deadline: Instant,
}

struct Membership {
    generation: u64,
    next_id: u64,
    /// In join order; range assignment follows it.
    members: BTreeMap<u64, Member>,
    rebalance: Option<Rebalance>,
}

/// A member's view of its group, for [`super::consumer`].
pub(crate) struct View {
    pub generation: u64,
    /// Set while a rebalance is in progress: when it will be forced through.
    pub rebalancing: Option<Instant>,
    /// What the member owns in `generation` (meaningful when not rebalancing).
    pub owned: Vec<i32>,
}

/// One consumer group of this log. Shared by its members; lives as long as the log.
pub(crate) struct Group {
    name: String,
    path: PathBuf,
    rebalance_timeout: Duration,
    state: Mutex<Membership>,
    /// Woken whenever membership, a rebalance or ownership changes.
    pub changed: Notify,
    /// The committed offsets as last written to disk; read without touching the disk.
    offsets: Mutex<Offsets>,
    /// Serializes writers of the offsets file (held across the write and fsyncs, which the
    /// `offsets` lock never is).
    write_lock: Mutex<()>,
}

impl Group {
    /// Loads the group's committed offsets (none when the file does not exist).
    pub(crate) fn load(groups_dir: &Path, name: &str, rebalance_timeout: Duration) -> Result<Group> {
        let path = groups_dir.join(group_file_name(name));
        let offsets = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: OffsetsFile = serde_json::from_slice(&bytes)
                    .map_err(|e| BusError::Corrupt { path: path.clone(), detail: e.to_string() })?;
                file.offsets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Offsets::new(),
            Err(e) => return Err(BusError::Io { path, source: e }),
        };
        Ok(Group {
            name: name.to_string(),
            path,
            rebalance_timeout,
            state: Mutex::new(Membership { generation: 0, next_id: 1, members: BTreeMap::new(), rebalance: None }),
            changed: Notify::new(),
            offsets: Mutex::new(offsets),
            write_lock: Mutex::new(()),
        })
    }

    /// Adds a member reading `topic` (of `partitions` partitions); starts a rebalance.
    pub(crate) fn join(&self, topic: &str, partitions: i32) -> u64 {
        let mut m = lock(&self.state);
        let id = m.next_id;
        m.next_id += 1;
        m.members.insert(id, Member { topic: topic.to_string(), partitions, owned: Vec::new() });
        self.start_rebalance(&mut m);
        drop(m);
        self.changed.notify_waiters();
        id
    }

    /// Removes a member (its partitions go back to the group); starts a rebalance.
    pub(crate) fn leave(&self, id: u64) {
        let mut m = lock(&self.state);
        if m.members.remove(&id).is_none() {
            return;
        }
        if let Some(r) = &mut m.rebalance {
            r.waiting.remove(&id);
        }
        self.start_rebalance(&mut m);
        drop(m);
        self.changed.notify_waiters();
    }

    /// The member has handled its `Revoked` event (or never took its last assignment): it
    /// gives up what it owns, and the rebalance completes once nobody else holds anything.
    pub(crate) fn ack(&self, id: u64) {
        let mut m = lock(&self.state);
        let Some(r) = &mut m.rebalance else { return };
        r.waiting.remove(&id);
        if let Some(member) = m.members.get_mut(&id) {
            member.owned.clear();
        }
        let done = self.try_complete(&mut m, Instant::now());
        drop(m);
        if done {
            self.changed.notify_waiters();
        }
    }

    /// The member's view, after forcing an overdue rebalance through.
    pub(crate) fn view(&self, id: u64) -> View {
        let mut m = lock(&self.state);
        let forced = self.try_complete(&mut m, Instant::now());
        let view = View {
            generation: m.generation,
            rebalancing: m.rebalance.as_ref().map(|r| r.deadline),
            owned: m.members.get(&id).map(|x| x.owned.clone()).unwrap_or_default(),
        };
        drop(m);
        if forced {
            self.changed.notify_waiters();
        }
        view
    }

    /// The partition's owner must stop before anyone else starts: everyone who owns
    /// something has to come back (poll after `Revoked`) before the new generation begins.
    fn start_rebalance(&self, m: &mut Membership) {
        if m.rebalance.is_none() {
            let waiting = m.members.iter().filter(|(_, x)| !x.owned.is_empty()).map(|(id, _)| *id).collect();
            m.rebalance = Some(Rebalance { waiting, deadline: Instant::now() + self.rebalance_timeout });
        }
        self.try_complete(m, Instant::now());
    }

    /// Completes the rebalance when nobody holds old partitions any more (or the deadline
    /// passed): bumps the generation and assigns partitions by range. Returns true if done.
    fn try_complete(&self, m: &mut Membership, now: Instant) -> bool {
        let Some(r) = &m.rebalance else { return false };
        if !r.waiting.is_empty() && now < r.deadline {
            return false;
        }
        let laggards: Vec<u64> = r.waiting.iter().copied().collect();
        if !laggards.is_empty() {
            tracing::warn!(
                group = %self.name,
                members = ?laggards,
                timeout = ?self.rebalance_timeout,
                "members did not poll within the rebalance timeout; their partitions are reassigned"
            );
        }
        m.rebalance = None;
        m.generation += 1;
        // Range assignment, per topic, over the members reading it in join order.
        let mut by_topic: BTreeMap<String, (i32, Vec<u64>)> = BTreeMap::new();
        for (id, x) in &m.members {
            by_topic.entry(x.topic.clone()).or_insert((x.partitions, Vec::new())).1.push(*id);
        }
        for (_, (partitions, ids)) in by_topic {
            for (id, range) in ids.iter().zip(range_assign(partitions, ids.len())) {
                if let Some(x) = m.members.get_mut(id) {
                    x.owned = range.collect();
                }
            }
        }
        true
    }

    /// Committed offsets of `topic` for these partitions.
    pub(crate) fn committed(&self, topic: &str, partitions: &[i32]) -> Vec<Option<i64>> {
        let offsets = lock(&self.offsets);
        let t = offsets.get(topic);
        partitions.iter().map(|p| t.and_then(|t| t.get(p)).copied()).collect()
    }

    /// Records committed offsets, refusing partitions the member does not own in the current
    /// generation. Blocking: writes the offsets file atomically (temp file, fsync, rename,
    /// fsync directory).
    pub(crate) fn commit(&self, member: u64, topic: &str, offsets: &[(i32, i64)]) -> Result<()> {
        let _writer = lock(&self.write_lock);
        {
            let m = lock(&self.state);
            let owned = m.members.get(&member).map(|x| x.owned.as_slice()).unwrap_or_default();
            if let Some((p, _)) = offsets.iter().find(|(p, _)| !owned.contains(p)) {
                return Err(BusError::NotAssigned(*p));
            }
        }
        let mut next = lock(&self.offsets).clone();
        let t = next.entry(topic.to_string()).or_default();
        for (p, o) in offsets {
            t.insert(*p, *o);
        }
        let file = OffsetsFile { group: self.name.clone(), offsets: next };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| BusError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
        write_atomic(&self.path, &bytes)?;
        *lock(&self.offsets) = file.offsets;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Kafka's range assignor for one topic: `members` consecutive ranges, the first
/// `partitions % members` one partition longer.
fn range_assign(partitions: i32, members: usize) -> Vec<std::ops::Range<i32>> {
    if members == 0 {
        return Vec::new();
    }
    let k = members as i32;
    let (per, extra) = (partitions / k, partitions % k);
    let mut start = 0;
    (0..k)
        .map(|i| {
            let len = per + i32::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_is_kafkas() {
        assert_eq!(range_assign(4, 2), vec![0..2, 2..4]);
        assert_eq!(range_assign(5, 2), vec![0..3, 3..5]);
        assert_eq!(range_assign(2, 3), vec![0..1, 1..2, 2..2]);
        assert_eq!(range_assign(3, 1), vec![0..3]);
        assert!(range_assign(3, 0).is_empty());
    }

    #[test]
    fn group_file_names_are_safe_and_distinct() {
        assert_eq!(group_file_name("sink-1.a_b"), "sink-1.a_b.json");
        assert_eq!(group_file_name("a/b"), "a%2Fb.json");
        assert_eq!(group_file_name("a%2Fb"), "a%252Fb.json");
        assert_eq!(group_file_name(".."), "...json");
    }
}
