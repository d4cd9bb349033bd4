//! Rows of a Parquet object from its footer, read with ranged GETs of the object's last bytes:
//! a first read of [`FIRST_READ_BYTES`] holds the footer of every object the sink writes (its
//! metadata grows with row groups and columns, a few KiB); a larger footer is read with one more
//! GET, up to [`MAX_FOOTER_BYTES`]. Beyond that, or on any error, the rows are unknown — the
//! notification says so instead of failing.
//!
//! A Parquet file ends with `<FileMetaData (Thrift)><length: u32 LE>PAR1`; `num_rows` is in
//! the metadata.

use parquet::file::metadata::ParquetMetaDataReader;

/// Bytes of the first ranged GET.
pub const FIRST_READ_BYTES: u64 = 64 * 1024;
/// Largest footer read (metadata + 8 bytes).
pub const MAX_FOOTER_BYTES: u64 = 1024 * 1024;

/// What the last bytes of an object say.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    Rows(u64),
    /// The footer is this many bytes (metadata + 8): read that many from the end.
    Need(u64),
    Invalid(String),
}

/// Reads the rows from `tail`, the last bytes of an object (the whole object if shorter).
pub fn rows_from_tail(tail: &[u8]) -> Tail {
    if tail.len() < 12 {
        return Tail::Invalid(format!("{} bytes are too few for a Parquet file", tail.len()));
    }
    let (rest, end) = tail.split_at(tail.len() - 8);
    if &end[4..] != b"PAR1" {
        return Tail::Invalid("no PAR1 magic at the end: not a Parquet file (or an encrypted footer)".into());
    }
    let len = u32::from_le_bytes([end[0], end[1], end[2], end[3]]) as u64;
    if len > rest.len() as u64 {
        return Tail::Need(len + 8);
    }
    let meta = &rest[rest.len() - len as usize..];
    match ParquetMetaDataReader::decode_metadata(meta) {
        Ok(m) => match u64::try_from(m.file_metadata().num_rows()) {
            Ok(n) => Tail::Rows(n),
            Err(_) => Tail::Invalid(format!("negative row count {}", m.file_metadata().num_rows())),
        },
        Err(e) => Tail::Invalid(format!("footer metadata: {e}")),
    }
}

async fn read_tail(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: u64) -> Result<Vec<u8>, String> {
    let out = s3.get_object().bucket(bucket).key(key).range(format!("bytes=-{bytes}")).send().await.map_err(|e| {
        let e = aws_sdk_s3::error::DisplayErrorContext(e);
        format!("GET {key} (last {bytes} bytes): {e}")
    })?;
    let body = out.body.collect().await.map_err(|e| format!("reading {key}: {e}"))?.into_bytes();
    if body.len() as u64 > bytes {
        // A server ignoring the range sent the whole object: keep its end.
        return Ok(body[body.len() - bytes as usize..].to_vec());
    }
    Ok(body.to_vec())
}

/// The rows of the Parquet object `bucket/key`, with at most two ranged GETs and
/// [`FIRST_READ_BYTES`] + [`MAX_FOOTER_BYTES`] bytes read.
pub async fn rows(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<u64, String> {
    let tail = read_tail(s3, bucket, key, FIRST_READ_BYTES).await?;
    match rows_from_tail(&tail) {
        Tail::Rows(n) => Ok(n),
        Tail::Invalid(e) => Err(e),
        Tail::Need(n) if n > MAX_FOOTER_BYTES => {
            Err(format!("the footer is {n} bytes, more than the {MAX_FOOTER_BYTES} read at most"))
        }
        Tail::Need(n) if (tail.len() as u64) < FIRST_READ_BYTES => {
            Err(format!("the footer says {n} bytes but the object has only {}", tail.len()))
        }
        Tail::Need(n) => match rows_from_tail(&read_tail(s3, bucket, key, n).await?) {
            Tail::Rows(r) => Ok(r),
            Tail::Need(m) => Err(format!("the footer is {m} bytes but only {n} were there")),
            Tail::Invalid(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::tick::{Tick, TickBody};

    fn ticks(n: usize) -> Vec<Tick> {
        (0..n)
            .map(|i| Tick {
                symbol: format!("S{}", i % 7),
                ts_us: 1_767_323_045_000_000 + i as i64,
                seq: i as u64,
                body: TickBody::Trade { price: 100.0 + i as f64, size: 10 },
            })
            .collect()
    }

    #[test]
    fn rows_come_from_the_footer_alone() {
        let file = crate::sink::encode::parquet(&ticks(1234)).unwrap();
        assert_eq!(rows_from_tail(&file), Tail::Rows(1234));
        let len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap()) as usize;
        assert!(len < FIRST_READ_BYTES as usize, "the sink's footers fit the first read: {len}");
        assert_eq!(rows_from_tail(&file[file.len() - len - 8..]), Tail::Rows(1234), "exactly the footer");
        assert_eq!(rows_from_tail(&file[file.len() - len - 7..]), Tail::Need(len as u64 + 8), "one byte short");
        assert_eq!(rows_from_tail(&crate::sink::encode::parquet(&ticks(0)).unwrap()), Tail::Rows(0));
    }

    #[test]
    fn other_bytes_are_invalid() {
        assert!(matches!(rows_from_tail(b"PAR1"), Tail::Invalid(e) if e.contains("too few")));
        assert!(matches!(rows_from_tail(b"{\"v\":1,\"symbol\":\"A\"}\n"), Tail::Invalid(e) if e.contains("PAR1")));
        let mut garbage = vec![0xAB; 100];
        garbage.extend_from_slice(&50u32.to_le_bytes());
        garbage.extend_from_slice(b"PAR1");
        assert!(
            matches!(rows_from_tail(&garbage), Tail::Invalid(e) if e.contains("footer metadata")),
            "{:?}",
            rows_from_tail(&garbage)
        );
        let mut huge = vec![0u8; 10];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"PAR1");
        assert_eq!(rows_from_tail(&huge), Tail::Need(u32::MAX as u64 + 8));
    }
}
