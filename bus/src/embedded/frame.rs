//! The on-disk record frame and a buffered, bounded reader of frames in a segment file.
//!
//! ```text
//! u32 len | u32 crc32 | i64 offset | i64 timestamp_ms | i32 key_len | key | value
//! ```
//!
//! All integers little-endian. `len` counts the bytes after itself (`24 + key + value`); the
//! CRC-32 (IEEE, `crc32fast`) covers everything after the CRC field, from `offset` to the end
//! of `value`. `key_len == -1` means "no key" (distinct from an empty key).

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::fsutil::{io_err, read_exact_at};
use crate::{BusError, Record, Result};

/// Bytes of a frame before the key: len, crc, offset, timestamp, key_len.
pub(crate) const FRAME_HEADER: usize = 4 + 4 + 8 + 8 + 4;
/// The smallest legal value of the `len` field (no key, empty value).
const MIN_LEN: u32 = (FRAME_HEADER - 4) as u32;
/// Bytes read from disk at a time when scanning.
const CHUNK: usize = 64 * 1024;

/// Size of the frame that holds this key and value.
pub(crate) fn frame_size(key: Option<&[u8]>, value: &[u8]) -> usize {
    FRAME_HEADER + key.map_or(0, <[u8]>::len) + value.len()
}

/// Appends one frame to `buf`. The caller has checked the record against `max_record_bytes`,
/// which is far below `u32::MAX`.
pub(crate) fn encode(buf: &mut Vec<u8>, offset: i64, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8]) {
    let size = frame_size(key, value);
    assert!(size - 4 <= u32::MAX as usize, "frame of {size} bytes: record limits were not checked");
    let start = buf.len();
    buf.reserve(size);
    buf.extend_from_slice(&((size - 4) as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, filled in below
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    match key {
        Some(k) => {
            buf.extend_from_slice(&(k.len() as i32).to_le_bytes());
            buf.extend_from_slice(k);
        }
        None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    buf.extend_from_slice(value);
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A frame decoded in place, borrowing the reader's buffer.
#[derive(Debug)]
pub(crate) struct FrameRef<'a> {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// Whole frame, header included.
    pub size: usize,
}

impl FrameRef<'_> {
    /// Copies the frame out as a [`Record`] (one allocation for key and value together).
    pub(crate) fn to_record(&self, partition: i32) -> Record {
        let klen = self.key.map_or(0, <[u8]>::len);
        let mut both = Vec::with_capacity(klen + self.value.len());
        if let Some(k) = self.key {
            both.extend_from_slice(k);
        }
        both.extend_from_slice(self.value);
        let both = Bytes::from(both);
        Record {
            partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.map(|_| both.slice(..klen)),
            value: both.slice(klen..),
        }
    }
}

/// What [`SegmentReader::next`] found at the current position.
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// A complete frame with a good checksum.
    Frame(FrameRef<'a>),
    /// The position is at the limit: nothing more to read.
    End,
    /// The bytes at the current position are not a complete, intact frame. During recovery
    /// of the last segment this is a torn tail; anywhere else it is corruption.
    Torn(&'static str),
}

/// Reads frames sequentially from one segment file, never past a caller-given limit.
///
/// The limit matters: the log's writer may be appending past the end the caller knows about,
/// so bytes beyond it may be half written. Everything below the limit is immutable, so the
/// buffer never holds stale data and can be kept across calls (a consumer's cursor keeps its
/// reader, making sequential reads O(1) per record with no rescans).
pub(crate) struct SegmentReader {
    file: File,
    path: PathBuf,
    /// Base offset of the segment (from its file name).
    pub base: i64,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// Start of the unread bytes in `buf`.
    head: usize,
}

impl SegmentReader {
    pub(crate) fn open(path: &Path, base: i64) -> Result<SegmentReader> {
        let file = File::open(path).map_err(io_err(path))?;
        Ok(SegmentReader { file, path: path.to_path_buf(), base, buf: Vec::new(), buf_pos: 0, head: 0 })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// File position of the next frame.
    pub(crate) fn pos(&self) -> u64 {
        self.buf_pos + self.head as u64
    }

    /// Ensures `n` unread bytes are buffered. The caller has checked `pos + n <= limit`.
    fn fill(&mut self, n: usize, limit: u64) -> Result<()> {
        let avail = self.buf.len() - self.head;
        if avail >= n {
            return Ok(());
        }
        let pos = self.pos();
        self.buf.drain(..self.head);
        self.buf_pos = pos;
        self.head = 0;
        let want = n.max(CHUNK).min((limit - pos) as usize);
        if self.buf.capacity() > 4 * CHUNK && want <= CHUNK {
            self.buf.shrink_to(CHUNK);
        }
        self.buf.resize(want, 0);
        read_exact_at(&self.file, &mut self.buf[avail..], pos + avail as u64).map_err(io_err(&self.path))
    }

    /// Reads the `len` field at the current position and checks the frame lies below `limit`.
    /// Returns the whole frame size.
    fn frame_at_head(&mut self, limit: u64) -> Result<Result<usize, &'static str>> {
        let pos = self.pos();
        if limit - pos < 4 {
            return Ok(Err("frame header cut short"));
        }
        self.fill(4, limit)?;
        let len = u32::from_le_bytes(le4(&self.buf[self.head..]));
        if len < MIN_LEN {
            return Ok(Err("frame length field too small"));
        }
        let size = 4 + len as u64;
        if size > limit - pos {
            return Ok(Err("frame cut short"));
        }
        Ok(Ok(size as usize))
    }

    /// The next frame below `limit`, checksum verified.
    pub(crate) fn next(&mut self, limit: u64) -> Result<Next<'_>> {
        if self.pos() >= limit {
            return Ok(Next::End);
        }
        let size = match self.frame_at_head(limit)? {
            Ok(size) => size,
            Err(why) => return Ok(Next::Torn(why)),
        };
        self.fill(size, limit)?;
        let f = &self.buf[self.head..self.head + size];
        let crc = u32::from_le_bytes(le4(&f[4..]));
        if crc32fast::hash(&f[8..]) != crc {
            return Ok(Next::Torn("checksum mismatch"));
        }
        let offset = i64::from_le_bytes(le8(&f[8..]));
        let timestamp_ms = i64::from_le_bytes(le8(&f[16..]));
        let key_len = i32::from_le_bytes(le4(&f[24..]));
        let body = &f[FRAME_HEADER..];
        let key = match key_len {
            -1 => None,
            k if k >= 0 && k as usize <= body.len() => Some(k as usize),
            _ => return Ok(Next::Torn("key length out of range")),
        };
        self.head += size;
        let f = &self.buf[self.head - size..self.head];
        let body = &f[FRAME_HEADER..];
        let (key, value) = match key {
            None => (None, body),
            Some(k) => (Some(&body[..k]), &body[k..]),
        };
        Ok(Next::Frame(FrameRef { offset, timestamp_ms, key, value, size }))
    }

    /// Advances over frames whose offset is below `target`, reading only their headers (no
    /// checksum: the frames skipped are not returned to anyone). Stops at the frame holding
    /// `target` or at `limit`.
    pub(crate) fn skip_to(&mut self, target: i64, limit: u64) -> Result<()> {
        loop {
            let pos = self.pos();
            if pos >= limit {
                return Ok(());
            }
            let size = match self.frame_at_head(limit)? {
                Ok(size) => size,
                Err(why) => return Err(self.corrupt(why)),
            };
            self.fill(16, limit)?; // size >= FRAME_HEADER, and the frame lies below limit
            let offset = i64::from_le_bytes(le8(&self.buf[self.head + 8..]));
            if offset >= target {
                return Ok(());
            }
            if self.head + size <= self.buf.len() {
                self.head += size;
            } else {
                self.buf.clear();
                self.buf_pos = pos + size as u64;
                self.head = 0;
            }
        }
    }

    /// A [`BusError::Corrupt`] for the frame at the current position.
    pub(crate) fn corrupt(&self, why: &str) -> BusError {
        BusError::Corrupt { path: self.path.clone(), detail: format!("{why} at byte {}", self.pos()) }
    }
}

fn le4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn le8(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Offset, key, value.
    type TestFrame<'a> = (i64, Option<&'a [u8]>, &'a [u8]);

    fn write_frames(path: &Path, frames: &[TestFrame<'_>]) -> u64 {
        let mut buf = Vec::new();
        for (off, k, v) in frames {
            encode(&mut buf, *off, 1000 + off, *k, v);
        }
        let mut f = File::create(path).expect("create");
        f.write_all(&buf).expect("write");
        buf.len() as u64
    }

    #[test]
    fn round_trip_keys_and_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.log");
        let big = vec![7u8; 200 * 1024]; // larger than a read chunk
        let len = write_frames(
            &path,
            &[(0, Some(b"k"), b"v0"), (1, None, b""), (2, Some(b""), b"v2"), (3, Some(b"big"), &big)],
        );
        let mut r = SegmentReader::open(&path, 0).expect("open");
        let mut got = Vec::new();
        while let Next::Frame(f) = r.next(len).expect("next") {
            got.push(f.to_record(4));
        }
        assert_eq!(r.pos(), len);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(&got[0].value[..], b"v0");
        assert_eq!(got[1].key, None);
        assert_eq!(got[2].key.as_deref(), Some(&b""[..]));
        assert_eq!(got[3].value.len(), big.len());
        assert_eq!(got[3].timestamp_ms, 1003);
        assert!(got.iter().all(|r| r.partition == 4));
    }

    #[test]
    fn limit_hides_bytes_beyond_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.log");
        let len = write_frames(&path, &[(0, None, b"a"), (1, None, b"b")]);
        let first = frame_size(None, b"a") as u64;
        let mut r = SegmentReader::open(&path, 0).expect("open");
        assert!(matches!(r.next(first).expect("next"), Next::Frame(f) if f.offset == 0));
        assert!(matches!(r.next(first).expect("next"), Next::End));
        assert!(matches!(r.next(len).expect("next"), Next::Frame(f) if f.offset == 1));
        assert!(matches!(r.next(len - 1).expect("next"), Next::End));
    }

    #[test]
    fn skip_to_lands_on_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.log");
        let frames: Vec<TestFrame<'_>> = (0..1000).map(|i| (i, None, &b"value"[..])).collect();
        let len = write_frames(&path, &frames);
        let mut r = SegmentReader::open(&path, 0).expect("open");
        r.skip_to(777, len).expect("skip");
        assert!(matches!(r.next(len).expect("next"), Next::Frame(f) if f.offset == 777));
        r.skip_to(5000, len).expect("skip past end");
        assert_eq!(r.pos(), len);
    }

    #[test]
    fn torn_and_corrupt_frames_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.log");
        let len = write_frames(&path, &[(0, None, b"abc")]);
        let mut r = SegmentReader::open(&path, 0).expect("open");
        assert!(matches!(r.next(len - 1).expect("next"), Next::Torn("frame cut short")));
        let mut r = SegmentReader::open(&path, 0).expect("open");
        assert!(matches!(r.next(3).expect("next"), Next::Torn("frame header cut short")));

        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let mut r = SegmentReader::open(&path, 0).expect("open");
        assert!(matches!(r.next(len).expect("next"), Next::Torn("checksum mismatch")));

        std::fs::write(&path, [0u8; 64]).expect("write");
        let mut r = SegmentReader::open(&path, 0).expect("open");
        assert!(matches!(r.next(64).expect("next"), Next::Torn("frame length field too small")));
    }
}
