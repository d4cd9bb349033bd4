//! Tests of the embedded log's own guarantees: crash repair, segments, the lock, limits, and
//! the group protocol's edges. The behaviour shared with Kafka is in `tests/conformance.rs`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::{ConsumerEvent, OutRecord, Record};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(5);

fn opts() -> LogOptions {
    LogOptions { fsync_interval_ms: 20, ..LogOptions::default() }
}

fn rec(key: &str, value: &str) -> OutRecord {
    OutRecord {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Bytes::copy_from_slice(value.as_bytes()),
        timestamp_ms: 1_700_000_000_000,
        partition: None,
    }
}

fn to_partition(p: i32, value: &str) -> OutRecord {
    OutRecord { key: None, value: Bytes::copy_from_slice(value.as_bytes()), timestamp_ms: 7, partition: Some(p) }
}

fn segment(dir: &Path, topic: &str, partition: i32, base: i64) -> PathBuf {
    dir.join("topics").join(topic).join(partition.to_string()).join(partition::segment_name(base))
}

async fn produce_values(log: &Arc<EmbeddedLog>, topic: &str, partition: i32, values: impl IntoIterator<Item = String>) {
    let p = log.producer(topic).await.expect("producer");
    let batch = values.into_iter().map(|v| to_partition(partition, &v)).collect();
    p.send_batch(batch).await.expect("send");
}

/// A consumer that has taken its assignment.
async fn assigned_consumer(log: &Arc<EmbeddedLog>, topic: &str, group: &str) -> Box<dyn Consumer> {
    let mut c = log.consumer(topic, group).await.expect("consumer");
    match c.poll(10, LONG).await.expect("poll") {
        ConsumerEvent::Assigned(_) => c,
        other => panic!("expected Assigned, got {other:?}"),
    }
}

/// Polls until `Idle`, returning every record.
async fn drain(c: &mut Box<dyn Consumer>) -> Vec<Record> {
    let mut out = Vec::new();
    loop {
        match c.poll(1000, SHORT).await.expect("poll") {
            ConsumerEvent::Records(r) => out.extend(r),
            ConsumerEvent::Idle => return out,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn values(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect()
}

fn numbered(range: std::ops::Range<i32>) -> Vec<String> {
    range.map(|i| format!("v{i}")).collect()
}

#[tokio::test]
async fn torn_tail_is_repaired_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        log.ensure_topic("t", 1, 1).await.expect("topic");
        produce_values(&log, "t", 0, numbered(0..10)).await;
    }
    // A crash in the middle of writing the last frame: its last 3 bytes never made it.
    let seg = segment(dir.path(), "t", 0, 0);
    let len = std::fs::metadata(&seg).expect("meta").len();
    OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 3).expect("truncate");

    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 9));
    let one_frame = frame::frame_size(None, b"v9") as u64;
    assert_eq!(std::fs::metadata(&seg).expect("meta").len(), len - one_frame, "torn frame cut away");
    produce_values(&log, "t", 0, vec!["new".to_string()]).await;
    let mut c = assigned_consumer(&log, "t", "g").await;
    let got = drain(&mut c).await;
    let mut want = numbered(0..9);
    want.push("new".into());
    assert_eq!(values(&got), want);
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn zero_filled_tail_is_repaired() {
    // What a machine crash can leave: the file grew, but the data never reached the disk.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        log.ensure_topic("t", 1, 1).await.expect("topic");
        produce_values(&log, "t", 0, numbered(0..4)).await;
    }
    let seg = segment(dir.path(), "t", 0, 0);
    let len = std::fs::metadata(&seg).expect("meta").len();
    OpenOptions::new().append(true).open(&seg).expect("open").write_all(&[0; 100]).expect("write");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 4));
    assert_eq!(std::fs::metadata(&seg).expect("meta").len(), len);
}

#[tokio::test]
async fn corruption_in_the_middle_of_the_last_segment_truncates_from_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        log.ensure_topic("t", 1, 1).await.expect("topic");
        produce_values(&log, "t", 0, numbered(0..10)).await;
    }
    let seg = segment(dir.path(), "t", 0, 0);
    let mut bytes = std::fs::read(&seg).expect("read");
    let frame = frame::frame_size(None, b"v0");
    let flip = 5 * frame + frame - 1; // last byte of record 5's value
    bytes[flip] ^= 0x55;
    std::fs::write(&seg, &bytes).expect("write");

    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 5));
    assert_eq!(std::fs::metadata(&seg).expect("meta").len(), 5 * frame as u64);
    let mut c = assigned_consumer(&log, "t", "g").await;
    assert_eq!(values(&drain(&mut c).await), numbered(0..5));
    produce_values(&log, "t", 0, vec!["after".into()]).await;
    let got = drain(&mut c).await;
    assert_eq!((got.len(), got[0].offset), (1, 5));
}

#[tokio::test]
async fn offsets_that_do_not_continue_are_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        log.ensure_topic("t", 1, 1).await.expect("topic");
        produce_values(&log, "t", 0, numbered(0..3)).await;
    }
    // A well-formed frame claiming offset 7 after offset 2.
    let seg = segment(dir.path(), "t", 0, 0);
    let mut buf = Vec::new();
    frame::encode(&mut buf, 7, 0, None, b"stray");
    OpenOptions::new().append(true).open(&seg).expect("open").write_all(&buf).expect("write");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 3));
}

#[tokio::test]
async fn segments_roll_and_reads_cross_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = LogOptions { segment_bytes: 300, ..opts() };
    let frame = frame::frame_size(None, b"v00") as u64; // 31 bytes: 9 per segment
    {
        let log = EmbeddedLog::open(dir.path(), small.clone()).expect("open");
        log.ensure_topic("t", 1, 1).await.expect("topic");
        // One batch spanning many segments, then small batches.
        produce_values(&log, "t", 0, (0..50).map(|i| format!("v{i:02}"))).await;
        for i in 50..100 {
            produce_values(&log, "t", 0, vec![format!("v{i:02}")]).await;
        }
        let topic = log.topic("t").expect("topic");
        assert_eq!(topic.partitions[0].segment_count(), 100usize.div_ceil(9));
        for s in 0..12 {
            let len = std::fs::metadata(segment(dir.path(), "t", 0, s * 9)).expect("segment").len();
            assert_eq!(len, if s < 11 { 9 * frame } else { frame });
        }

        let mut c = assigned_consumer(&log, "t", "g").await;
        let got = drain(&mut c).await;
        assert_eq!(values(&got), (0..100).map(|i| format!("v{i:02}")).collect::<Vec<_>>());
        // Seek into the middle of a later segment, and back to the start.
        c.seek(0, 40).await.expect("seek");
        let got = drain(&mut c).await;
        assert_eq!(got.first().map(|r| r.offset), Some(40));
        assert_eq!(got.len(), 60);
        c.seek(0, 0).await.expect("seek");
        assert_eq!(drain(&mut c).await.len(), 100);
        c.seek(0, 100).await.expect("seek to the end");
        assert!(drain(&mut c).await.is_empty());
    }
    // Recovery looks at the last segment only, and appends continue there.
    let log = EmbeddedLog::open(dir.path(), small).expect("reopen");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 100));
    produce_values(&log, "t", 0, vec!["v100".into()]).await;
    let mut c = assigned_consumer(&log, "t", "g2").await;
    c.seek(0, 98).await.expect("seek");
    assert_eq!(values(&drain(&mut c).await), ["v98", "v99", "v100"]);
}

#[tokio::test]
async fn a_second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    match EmbeddedLog::open(dir.path(), opts()) {
        Err(BusError::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(log);
    EmbeddedLog::open(dir.path(), opts()).expect("open after the first closed");
}

#[tokio::test]
async fn the_log_stays_open_while_producers_and_consumers_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 1, 1).await.expect("topic");
    let p = log.producer("t").await.expect("producer");
    drop(log);
    assert!(matches!(EmbeddedLog::open(dir.path(), opts()), Err(BusError::Locked(_))));
    p.send_batch(vec![to_partition(0, "x")]).await.expect("send");
    drop(p);
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 1));
}

#[tokio::test]
async fn oversized_records_fail_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), LogOptions { max_record_bytes: 100, ..opts() }).expect("open");
    log.ensure_topic("t", 1, 1).await.expect("topic");
    let p = log.producer("t").await.expect("producer");
    let big = "x".repeat(99);
    match p.send_batch(vec![to_partition(0, "ok"), rec("kk", &big)]).await {
        Err(BusError::TooLarge { bytes: 101, limit: 100 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, 0), "nothing of the batch was written");
    p.send_batch(vec![rec("k", &big)]).await.expect("exactly at the limit");
    match p.send_batch(vec![to_partition(1, "x")]).await {
        Err(BusError::UnknownPartition { partition: 1, .. }) => {}
        other => panic!("expected UnknownPartition, got {other:?}"),
    }
}

#[tokio::test]
async fn a_poll_returns_about_max_poll_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), LogOptions { max_poll_bytes: 100, ..opts() }).expect("open");
    log.ensure_topic("t", 1, 1).await.expect("topic");
    produce_values(&log, "t", 0, numbered(0..10)).await; // 30-byte frames
    let mut c = assigned_consumer(&log, "t", "g").await;
    match c.poll(1000, LONG).await.expect("poll") {
        ConsumerEvent::Records(r) => assert_eq!(r.len(), 4),
        other => panic!("unexpected {other:?}"),
    }
    match c.poll(2, LONG).await.expect("poll") {
        ConsumerEvent::Records(r) => {
            assert_eq!(r.iter().map(|r| r.offset).collect::<Vec<_>>(), [4, 5])
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(c.poll(0, LONG).await, Err(BusError::Config(_))));
}

#[tokio::test]
async fn every_batch_is_fsynced_with_interval_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), LogOptions { fsync_interval_ms: 0, ..opts() }).expect("open");
    log.ensure_topic("t", 3, 1).await.expect("topic");
    let p = log.producer("t").await.expect("producer");
    p.send_batch((0..30).map(|i| rec(&format!("k{i}"), "v")).collect()).await.expect("send");
    p.flush().await.expect("flush");
    let mut total = 0;
    for part in 0..3 {
        total += log.watermarks("t", part).await.expect("wm").1;
    }
    assert_eq!(total, 30);
}

#[tokio::test]
async fn keyless_records_go_round_robin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 3, 1).await.expect("topic");
    let p = log.producer("t").await.expect("producer");
    let batch =
        (0..9).map(|_| OutRecord { key: None, value: Bytes::from_static(b"v"), timestamp_ms: 0, partition: None });
    p.send_batch(batch.collect()).await.expect("send");
    for part in 0..3 {
        assert_eq!(log.watermarks("t", part).await.expect("wm"), (0, 3));
    }
}

#[tokio::test]
async fn names_and_ranges_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(250)] {
        assert!(matches!(log.ensure_topic(bad, 1, 1).await, Err(BusError::Config(_))), "{bad:?}");
    }
    assert!(matches!(log.ensure_topic("t", 0, 1).await, Err(BusError::Config(_))));
    assert!(matches!(log.ensure_topic("t", MAX_PARTITIONS + 1, 1).await, Err(BusError::Config(_))));
    assert!(matches!(log.partitions("nope").await, Err(BusError::UnknownTopic(_))));
    assert!(matches!(log.producer("nope").await, Err(BusError::UnknownTopic(_))));
    assert!(matches!(log.consumer("nope", "g").await, Err(BusError::UnknownTopic(_))));
    log.ensure_topic("t", 2, 1).await.expect("topic");
    assert!(matches!(log.watermarks("t", 2).await, Err(BusError::UnknownPartition { .. })));
    assert!(matches!(log.watermarks("t", -1).await, Err(BusError::UnknownPartition { .. })));
    assert!(matches!(log.consumer("t", "").await, Err(BusError::Config(_))));

    produce_values(&log, "t", 0, numbered(0..3)).await;
    let mut c = assigned_consumer(&log, "t", "any name / with % odd bytes").await;
    assert!(matches!(c.seek(0, 4).await, Err(BusError::OffsetOutOfRange { offset: 4, high: 3, .. })));
    assert!(matches!(c.seek(0, -1).await, Err(BusError::OffsetOutOfRange { .. })));
    assert!(matches!(c.seek(5, 0).await, Err(BusError::UnknownPartition { .. })));
    assert!(matches!(c.commit(&[(0, 4)]).await, Err(BusError::OffsetOutOfRange { .. })));
    assert!(matches!(c.committed(&[9]).await, Err(BusError::UnknownPartition { .. })));
    c.commit(&[(0, 3)]).await.expect("commit");
    c.close().await.expect("close");
    c.close().await.expect("close twice");
    assert!(matches!(c.poll(1, SHORT).await, Err(BusError::Closed)));
    assert!(matches!(c.commit(&[(0, 1)]).await, Err(BusError::Closed)));
}

#[tokio::test]
async fn seek_needs_the_partition_assigned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 2, 1).await.expect("topic");
    let mut a = assigned_consumer(&log, "t", "g").await;
    let mut b = log.consumer("t", "g").await.expect("consumer");
    assert!(matches!(b.seek(0, 0).await, Err(BusError::NotAssigned(0))), "not assigned before the first poll");
    assert!(matches!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Revoked(_)));
    assert!(matches!(a.seek(0, 0).await, Err(BusError::NotAssigned(0))), "not assigned after Revoked");
    assert_eq!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![0]));
    assert_eq!(b.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![1]));
    assert!(matches!(a.seek(1, 0).await, Err(BusError::NotAssigned(1))));
    a.seek(0, 0).await.expect("seek own partition");
}

#[tokio::test]
async fn commits_are_fenced_by_ownership() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 2, 1).await.expect("topic");
    produce_values(&log, "t", 0, numbered(0..5)).await;
    produce_values(&log, "t", 1, numbered(0..5)).await;
    let mut a = assigned_consumer(&log, "t", "g").await;
    assert_eq!(drain(&mut a).await.len(), 10);

    let mut b = log.consumer("t", "g").await.expect("consumer");
    // The rebalance has begun but `a` has not seen it: it still owns both partitions.
    a.commit(&[(0, 1), (1, 1)]).await.expect("commit before noticing the rebalance");
    assert_eq!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Revoked(vec![0, 1]));
    assert!(a.assignment().is_empty());
    // Handling Revoked: write out and commit what was processed, as Kafka allows.
    a.commit(&[(0, 5), (1, 5)]).await.expect("commit while handling Revoked");
    assert!(matches!(b.poll(10, SHORT).await.expect("poll"), ConsumerEvent::Idle), "b waits for a");
    assert_eq!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![0]));
    assert_eq!(b.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![1]));
    // `b` starts where `a` committed during the rebalance.
    assert!(matches!(b.poll(10, SHORT).await.expect("poll"), ConsumerEvent::Idle));
    match a.commit(&[(0, 5), (1, 3)]).await {
        Err(BusError::NotAssigned(1)) => {}
        other => panic!("expected NotAssigned(1), got {other:?}"),
    }
    assert_eq!(a.committed(&[0, 1]).await.expect("committed"), [Some(5), Some(5)], "the refused commit wrote nothing");
    b.commit(&[(1, 4)]).await.expect("the owner commits");
    assert_eq!(a.committed(&[1]).await.expect("committed"), [Some(4)]);
}

#[tokio::test]
async fn a_member_that_stops_polling_loses_its_partitions_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), LogOptions { rebalance_timeout_ms: 300, ..opts() }).expect("open");
    log.ensure_topic("t", 2, 1).await.expect("topic");
    let mut stuck = assigned_consumer(&log, "t", "g").await;
    let mut b = log.consumer("t", "g").await.expect("consumer");
    let started = std::time::Instant::now();
    assert_eq!(b.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![1]));
    assert!(started.elapsed() >= Duration::from_millis(250), "b waited for the timeout");
    assert!(matches!(stuck.commit(&[(1, 0)]).await, Err(BusError::NotAssigned(1))));
    assert_eq!(stuck.poll(10, LONG).await.expect("poll"), ConsumerEvent::Revoked(vec![0, 1]));
    assert_eq!(stuck.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![0]));
}

#[tokio::test]
async fn dropping_a_consumer_leaves_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 3, 1).await.expect("topic");
    let mut a = assigned_consumer(&log, "t", "g").await;
    let b = log.consumer("t", "g").await.expect("consumer");
    assert_eq!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Revoked(vec![0, 1, 2]));
    drop(b); // before it ever polled
    assert_eq!(a.poll(10, LONG).await.expect("poll"), ConsumerEvent::Assigned(vec![0, 1, 2]));
}

#[tokio::test]
async fn a_waiting_poll_wakes_up_for_new_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    log.ensure_topic("t", 1, 1).await.expect("topic");
    let mut c = assigned_consumer(&log, "t", "g").await;
    let writer = Arc::clone(&log);
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        produce_values(&writer, "t", 0, vec!["late".into()]).await;
    });
    let started = std::time::Instant::now();
    match c.poll(10, Duration::from_secs(30)).await.expect("poll") {
        ConsumerEvent::Records(r) => assert_eq!(values(&r), ["late"]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    handle.await.expect("writer");
    let started = std::time::Instant::now();
    assert_eq!(c.poll(10, Duration::from_millis(200)).await.expect("poll"), ConsumerEvent::Idle);
    assert!(started.elapsed() >= Duration::from_millis(190));
}

#[tokio::test]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        assert!(log.ensure_topic("t", 2, 1).await.expect("topic").created);
        produce_values(&log, "t", 1, numbered(0..6)).await;
        let mut c = assigned_consumer(&log, "t", "g").await;
        c.commit(&[(1, 4)]).await.expect("commit");
        let file = log.group("g").expect("group").path().to_path_buf();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).expect("offsets file")).expect("json");
        assert_eq!(json["offsets"]["t"]["1"], 4);
    }
    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen");
    let info = log.ensure_topic("t", 5, 1).await.expect("topic");
    assert_eq!((info.partitions, info.created), (2, false));
    let mut c = assigned_consumer(&log, "t", "g").await;
    assert_eq!(c.committed(&[0, 1]).await.expect("committed"), [None, Some(4)]);
    assert_eq!(values(&drain(&mut c).await), ["v4", "v5"]);
}

#[tokio::test]
async fn an_unfinished_topic_creation_is_redone() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(EmbeddedLog::open(dir.path(), opts()).expect("open"));
    // A crash after the partition directories but before meta.json.
    std::fs::create_dir_all(dir.path().join("topics/t/0")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("topics/t/1")).expect("mkdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    assert!(matches!(log.partitions("t").await, Err(BusError::UnknownTopic(_))));
    let info = log.ensure_topic("t", 3, 1).await.expect("topic");
    assert_eq!((info.partitions, info.created), (3, true));
    produce_values(&log, "t", 2, numbered(0..2)).await;
    assert_eq!(log.watermarks("t", 2).await.expect("wm"), (0, 2));
}

#[tokio::test]
async fn a_missing_partition_directory_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
        log.ensure_topic("t", 2, 1).await.expect("topic");
    }
    std::fs::remove_dir_all(dir.path().join("topics/t/1")).expect("rm");
    assert!(matches!(EmbeddedLog::open(dir.path(), opts()), Err(BusError::Corrupt { .. })));
}

#[tokio::test]
async fn bad_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for o in [
        LogOptions { segment_bytes: 0, ..opts() },
        LogOptions { max_record_bytes: 0, ..opts() },
        LogOptions { max_poll_bytes: 0, ..opts() },
    ] {
        assert!(matches!(EmbeddedLog::open(dir.path(), o), Err(BusError::Config(_))));
    }
}

#[test]
fn the_log_is_a_bus() {
    fn assert_bus(_: Arc<dyn Bus>) {}
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), opts()).expect("open");
    assert_bus(log);
}

/// Concurrent producers and a tailing consumer, across segment rolls: the reader never sees a
/// half-written frame, and each producer's records keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_a_tailing_reader() {
    const WRITERS: usize = 4;
    const EACH: usize = 2000;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), LogOptions { segment_bytes: 8192, ..opts() }).expect("open");
    log.ensure_topic("t", 1, 1).await.expect("topic");
    let mut c = assigned_consumer(&log, "t", "g").await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let p = log.producer("t").await.expect("producer");
                for chunk in (0..EACH).collect::<Vec<_>>().chunks(7) {
                    let batch = chunk.iter().map(|i| to_partition(0, &format!("{w}:{i}"))).collect();
                    p.send_batch(batch).await.expect("send");
                }
            })
        })
        .collect();
    let mut next = [0usize; WRITERS];
    let mut offset = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while offset < (WRITERS * EACH) as i64 {
        assert!(std::time::Instant::now() < deadline, "timed out at offset {offset}");
        if let ConsumerEvent::Records(records) = c.poll(500, SHORT).await.expect("poll") {
            for r in records {
                assert_eq!(r.offset, offset);
                offset += 1;
                let v = String::from_utf8_lossy(&r.value).into_owned();
                let (w, i) = v.split_once(':').expect("w:i");
                let (w, i): (usize, usize) = (w.parse().expect("w"), i.parse().expect("i"));
                assert_eq!(i, next[w], "writer {w} out of order");
                next[w] += 1;
            }
        }
    }
    for w in writers {
        w.await.expect("writer");
    }
    assert!(log.topic("t").expect("topic").partitions[0].segment_count() > 10);
}

/// Where the child process of [`a_killed_writer_loses_nothing_it_acknowledged`] writes.
#[cfg(unix)]
const CHILD_DIR_VAR: &str = "TICKLAKE_BUS_TEST_CHILD_DIR";

/// A producer process is killed with SIGKILL right after its sends returned, with no fsync
/// ever run: everything acknowledged is there when the log is reopened. While the child lives,
/// this (other) process cannot open the log.
#[cfg(unix)]
#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    const RECORDS: usize = 500;

    if let Ok(dir) = std::env::var(CHILD_DIR_VAR) {
        // The child: write, say so, and wait to be killed.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let never = LogOptions { fsync_interval_ms: 3_600_000, segment_bytes: 4096, ..LogOptions::default() };
            let log = EmbeddedLog::open(Path::new(&dir), never).expect("open");
            log.ensure_topic("t", 1, 1).await.expect("topic");
            let p = log.producer("t").await.expect("producer");
            for chunk in numbered(0..RECORDS as i32).chunks(50) {
                p.send_batch(chunk.iter().map(|v| to_partition(0, v)).collect()).await.expect("send");
            }
            println!("acked {RECORDS}");
            std::io::stdout().flush().expect("flush stdout");
            std::future::pending::<()>().await;
        });
        return;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "embedded::tests::a_killed_writer_loses_nothing_it_acknowledged", "--nocapture"])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("stdout");
    let acked =
        std::io::BufReader::new(stdout).lines().map_while(|l| l.ok()).any(|l| l.trim() == format!("acked {RECORDS}"));
    let locked = matches!(EmbeddedLog::open(dir.path(), opts()), Err(BusError::Locked(_)));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert!(acked, "the writer did not finish");
    assert!(locked, "a second process could open the log");

    let log = EmbeddedLog::open(dir.path(), opts()).expect("reopen after the kill");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        assert_eq!(log.watermarks("t", 0).await.expect("wm"), (0, RECORDS as i64));
        let mut c = assigned_consumer(&log, "t", "g").await;
        assert_eq!(values(&drain(&mut c).await), numbered(0..RECORDS as i32));
    });
}
