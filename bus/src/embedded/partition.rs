//! One partition: a directory of segment files, its recovery, appends, fsync and reads.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::frame::{self, Next, SegmentReader};
use super::fsutil::{io_err, lock, sync_dir, write_all_at};
use crate::{BusError, Record, Result};

/// File name of the segment starting at `base`: 20 zero-padded digits, so names sort by offset.
pub(crate) fn segment_name(base: i64) -> String {
    format!("{base:020}.log")
}

/// One record to append, borrowed from the producer's batch.
pub(crate) struct Append<'a> {
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
}

#[derive(Debug)]
struct Segment {
    base: i64,
    path: PathBuf,
    /// Bytes of complete frames. For the last (active) segment this is the end readers may
    /// read up to; it moves only after a `write(2)` of whole frames has returned.
    len: u64,
}

struct Log {
    /// Sorted by base offset, never empty; the last one is active.
    segments: Vec<Segment>,
    /// Open read-write handle of the active segment (shared with whoever fsyncs it).
    active: Arc<File>,
    /// The high watermark: offset of the next record appended.
    next_offset: i64,
    /// Count of writes to the active segment, and how many of them are known to be fsynced.
    written: u64,
    synced: u64,
    /// Set when a failed write could not be rolled back: appending more would put frames
    /// after garbage, so the partition refuses writes until the log is reopened (and
    /// recovery truncates the garbage).
    failed: Option<String>,
}

/// A partition of a topic, shared by its producers and consumers.
pub(crate) struct Partition {
    pub id: i32,
    dir: PathBuf,
    segment_bytes: u64,
    log: Mutex<Log>,
}

impl Partition {
    /// Opens (or, with `create`, creates) the partition in `dir` and repairs a torn tail of its
    /// last segment.
    pub(crate) fn open(dir: &Path, id: i32, segment_bytes: u64, create: bool) -> Result<Partition> {
        if create {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        } else if !dir.is_dir() {
            return Err(BusError::Corrupt { path: dir.to_path_buf(), detail: "partition directory is missing".into() });
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
                continue;
            };
            let base = match stem.parse::<i64>() {
                Ok(b) if stem.len() == 20 && b >= 0 => b,
                _ => {
                    tracing::warn!(path = %entry.path().display(), "ignoring a file that is not a segment");
                    continue;
                }
            };
            let path = entry.path();
            let len = entry.metadata().map_err(io_err(&path))?.len();
            segments.push(Segment { base, path, len });
        }
        segments.sort_by_key(|s| s.base);
        if segments.is_empty() {
            let path = dir.join(segment_name(0));
            File::create(&path).map_err(io_err(&path))?;
            sync_dir(dir)?;
            segments.push(Segment { base: 0, path, len: 0 });
        }
        let last = segments.last_mut().expect("segments is not empty");
        let (good_len, next_offset) = recover(&last.path, last.base, last.len)?;
        let active = OpenOptions::new().read(true).write(true).open(&last.path).map_err(io_err(&last.path))?;
        if good_len < last.len {
            active.set_len(good_len).map_err(io_err(&last.path))?;
            active.sync_all().map_err(io_err(&last.path))?;
            last.len = good_len;
        }
        let log = Log { segments, active: Arc::new(active), next_offset, written: 0, synced: 0, failed: None };
        Ok(Partition { id, dir: dir.to_path_buf(), segment_bytes, log: Mutex::new(log) })
    }

    /// The offset the next appended record gets.
    pub(crate) fn high(&self) -> i64 {
        lock(&self.log).next_offset
    }

    /// Appends records in order, rolling to new segments as needed. Returns once the frames
    /// are written (`write(2)` returned), not fsynced. The caller has checked record sizes.
    pub(crate) fn append(&self, records: &[Append<'_>]) -> Result<()> {
        let mut log = lock(&self.log);
        if let Some(why) = &log.failed {
            return Err(BusError::Corrupt { path: self.dir.clone(), detail: why.clone() });
        }
        let mut buf = Vec::new();
        let mut count = 0i64;
        for r in records {
            let size = frame::frame_size(r.key, r.value) as u64;
            let seg_len = log.active_len() + buf.len() as u64;
            if seg_len > 0 && seg_len + size > self.segment_bytes {
                log.write(&buf, count)?;
                buf.clear();
                count = 0;
                log.roll(&self.dir)?;
            }
            frame::encode(&mut buf, log.next_offset + count, r.timestamp_ms, r.key, r.value);
            count += 1;
        }
        log.write(&buf, count)
    }

    /// fsyncs what was written so far. The fsync itself runs without the partition lock, so
    /// appends and reads continue meanwhile.
    pub(crate) fn sync(&self) -> Result<()> {
        let (file, seq, path) = {
            let log = lock(&self.log);
            if log.written == log.synced {
                return Ok(());
            }
            (Arc::clone(&log.active), log.written, log.active_path().to_path_buf())
        };
        file.sync_data().map_err(io_err(path))?;
        let mut log = lock(&self.log);
        log.synced = log.synced.max(seq);
        Ok(())
    }

    /// Reads records from `cur.offset` on, at most `max_records` and (about) `max_bytes` of
    /// frames (at least one record when any is there), appending them to `out`. Returns the
    /// number of records and of frame bytes read.
    pub(crate) fn read(
        &self,
        cur: &mut Cursor,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Record>,
    ) -> Result<(usize, usize)> {
        let mut n = 0;
        let mut bytes = 0;
        'segments: while n < max_records && bytes < max_bytes {
            let reader = match &mut cur.reader {
                Some(r) => r,
                None => match self.open_reader(cur.offset)? {
                    Some(r) => cur.reader.insert(r),
                    None => break,
                },
            };
            let (limit, next) = self.extent(reader.base)?;
            while n < max_records && bytes < max_bytes {
                match reader.next(limit)? {
                    Next::Frame(f) => {
                        if f.offset != cur.offset {
                            let detail = format!("expected offset {} but found {}", cur.offset, f.offset);
                            return Err(BusError::Corrupt { path: reader.path().to_path_buf(), detail });
                        }
                        bytes += f.size;
                        out.push(f.to_record(self.id));
                        cur.offset += 1;
                        n += 1;
                    }
                    Next::End => match next {
                        None => break 'segments,
                        Some((base, path)) if base == cur.offset => {
                            cur.reader = Some(SegmentReader::open(&path, base)?);
                            continue 'segments;
                        }
                        Some((base, _)) => {
                            let detail =
                                format!("segment ends before offset {} but the next one starts at {base}", cur.offset);
                            return Err(BusError::Corrupt { path: reader.path().to_path_buf(), detail });
                        }
                    },
                    Next::Torn(why) => return Err(reader.corrupt(why)),
                }
            }
        }
        Ok((n, bytes))
    }

    /// A reader positioned at `offset`, or `None` when `offset` is the high watermark.
    /// Finds the segment by binary search on base offsets, then skips frame headers forward.
    fn open_reader(&self, offset: i64) -> Result<Option<SegmentReader>> {
        let (base, path, limit) = {
            let log = lock(&self.log);
            if offset == log.next_offset {
                return Ok(None);
            }
            if !(0..log.next_offset).contains(&offset) {
                return Err(BusError::OffsetOutOfRange { partition: self.id, offset, low: 0, high: log.next_offset });
            }
            let i = log.segments.partition_point(|s| s.base <= offset) - 1;
            let s = &log.segments[i];
            (s.base, s.path.clone(), s.len)
        };
        let mut r = SegmentReader::open(&path, base)?;
        r.skip_to(offset, limit)?;
        Ok(Some(r))
    }

    /// The readable length of the segment starting at `base`, and the segment after it.
    fn extent(&self, base: i64) -> Result<(u64, Option<(i64, PathBuf)>)> {
        let log = lock(&self.log);
        match log.segments.binary_search_by_key(&base, |s| s.base) {
            Ok(i) => Ok((log.segments[i].len, log.segments.get(i + 1).map(|s| (s.base, s.path.clone())))),
            Err(_) => Err(BusError::Corrupt { path: self.dir.clone(), detail: format!("segment {base} vanished") }),
        }
    }

    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        lock(&self.log).segments.len()
    }
}

impl Log {
    fn active_len(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.len)
    }

    fn active_path(&self) -> &Path {
        self.segments.last().map_or(Path::new(""), |s| &s.path)
    }

    /// Writes whole frames at the end of the active segment. On failure the segment is cut
    /// back to its last complete frame, so a later append does not follow garbage.
    fn write(&mut self, buf: &[u8], count: i64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = self.active_len();
        if let Err(e) = write_all_at(&self.active, buf, end) {
            let path = self.active_path().to_path_buf();
            if let Err(e2) = self.active.set_len(end) {
                self.failed = Some(format!(
                    "a write failed ({e}) and cutting back to byte {end} failed too ({e2}); reopen the log to repair it"
                ));
            }
            return Err(BusError::Io { path, source: e });
        }
        if let Some(s) = self.segments.last_mut() {
            s.len += buf.len() as u64;
        }
        self.next_offset += count;
        self.written += 1;
        Ok(())
    }

    /// Seals the active segment and starts a new one at the high watermark. The sealed
    /// segment is fsynced first: recovery only checks the last segment, so every earlier one
    /// must be complete on disk before a later one exists.
    fn roll(&mut self, dir: &Path) -> Result<()> {
        let old = self.active_path().to_path_buf();
        self.active.sync_data().map_err(io_err(&old))?;
        let base = self.next_offset;
        let path = dir.join(segment_name(base));
        // A file by this name can only be left over from a roll that failed half way, before
        // anything was written to it.
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(io_err(&path))?;
        sync_dir(dir)?;
        self.segments.push(Segment { base, path, len: 0 });
        self.active = Arc::new(file);
        self.synced = self.written;
        Ok(())
    }
}

/// Scans the last segment and returns the length of its intact prefix and the offset after
/// it. A torn tail is what a crash in the middle of a write leaves: a frame cut short, a frame
/// whose checksum fails (the file was extended but the data never reached the disk), or an
/// offset that does not continue the sequence.
fn recover(path: &Path, base: i64, file_len: u64) -> Result<(u64, i64)> {
    let mut r = SegmentReader::open(path, base)?;
    let mut expected = base;
    let (good, why) = loop {
        let at = r.pos();
        match r.next(file_len)? {
            Next::Frame(f) if f.offset == expected => expected += 1,
            Next::Frame(_) => break (at, "offset does not continue the sequence"),
            Next::End => break (at, ""),
            Next::Torn(why) => break (at, why),
        }
    };
    if good < file_len {
        tracing::warn!(
            path = %path.display(),
            dropped_bytes = file_len - good,
            kept_records = expected - base,
            reason = why,
            "truncating the torn tail of the log (crash repair)"
        );
    }
    Ok((good, expected))
}

/// A consumer's read position in one partition. It keeps the open segment reader, so reading
/// on from where the last poll stopped costs no search or rescan.
#[derive(Default)]
pub(crate) struct Cursor {
    pub offset: i64,
    reader: Option<SegmentReader>,
}

impl Cursor {
    pub(crate) fn at(offset: i64) -> Cursor {
        Cursor { offset, reader: None }
    }
}
