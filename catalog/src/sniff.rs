//! Which format a file is, from its first bytes (and, for Parquet, its last).
//!
//! The content decides; the name is only a hint. In order:
//!
//! 1. **Parquet**: `PAR1` at the start *and* at the end. `PAR1` at the start only is a
//!    truncated or foreign file; `PARE` at the end is an encrypted footer — both reported.
//! 2. **Compression**, by magic bytes: gzip (`1f 8b`) and zstd (`28 b5 2f fd`) are unwrapped,
//!    at most [`Limits::sample_bytes`] of output (a decompression bomb costs nothing more);
//!    bzip2, xz, lz4, zip and snappy are recognised and reported as unsupported.
//! 3. **JSON**: the first non-blank byte (after a UTF-8 byte-order mark) is `{` or `[`.
//!    * `{`: a stream of objects — [`JsonLayout::Document`] when the file holds exactly one,
//!      [`JsonLayout::Lines`] otherwise (one per line, or concatenated);
//!    * `[`: [`JsonLayout::Array`], a top-level array whose elements are the records.
//!
//!    Every record must be an object, and the sample must be valid JSON up to where it was cut.
//! 4. **CSV**: UTF-8 text without NUL bytes, and a delimiter among `,` tab `|` `;` that splits
//!    at least two rows into the same number (≥ 2) of columns — Glue's built-in CSV classifier
//!    asks the same (two columns, two rows). Quoting is RFC 4180: `"…"`, with `""` inside.
//!    The delimiter giving the most columns wins; on a tie, the one the name suggests (`.tsv`
//!    tab, `.psv` pipe), else the order above. Whether the first row is a header follows
//!    [`HeaderRule`].
//! 5. Anything else is [`Format::Unknown`] with the reason.
//!
//! When the sample was cut (the file is longer than the sample), the last, possibly partial,
//! record is ignored — never misread.

use std::io::Read as _;

use serde::de::IgnoredAny;

use crate::infer::{infer_text, merge};
use crate::types::DataType;
use crate::{HeaderRule, Limits};

/// What a file's content is wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// How JSON records are laid out in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonLayout {
    /// A stream of objects, usually one per line (JSON Lines / NDJSON).
    Lines,
    /// Exactly one object in the file.
    Document,
    /// A top-level array of objects.
    Array,
}

/// A CSV file's delimiter and whether its first row names the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub header: bool,
}

/// What a file was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Json(JsonLayout),
    Csv(CsvDialect),
    Parquet,
    /// Not a format the crawler reads; the reason says what was seen.
    Unknown {
        reason: String,
    },
}

impl Format {
    fn unknown(reason: impl Into<String>) -> Self {
        Format::Unknown { reason: reason.into() }
    }
}

/// The bytes of one file the sniffer sees.
#[derive(Debug, Clone, Copy)]
pub struct FileSample<'a> {
    /// The file's name or path (only its extension is used, as a hint).
    pub name: &'a str,
    /// The file's full length in bytes.
    pub len: u64,
    /// The first bytes of the file (the whole file when `head.len() == len`).
    pub head: &'a [u8],
    /// The last bytes of the file, for a Parquet footer; may be empty when `head` is the
    /// whole file.
    pub tail: &'a [u8],
}

impl<'a> FileSample<'a> {
    /// A sample of a file held entirely in memory.
    pub fn whole(name: &'a str, bytes: &'a [u8]) -> Self {
        FileSample { name, len: bytes.len() as u64, head: bytes, tail: bytes }
    }

    /// True when `head` holds the whole file.
    pub fn is_whole(&self) -> bool {
        self.head.len() as u64 >= self.len
    }

    /// The last bytes known: `tail`, or `head` when it is the whole file.
    pub fn end(&self) -> &'a [u8] {
        if self.tail.is_empty() && self.is_whole() { self.head } else { self.tail }
    }
}

/// The sniffer's verdict and the (decompressed, bounded) sample it judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub compression: Compression,
    pub format: Format,
    /// At most `sample_bytes` of decompressed content (empty for Parquet).
    pub sample: Vec<u8>,
    /// True when the content goes on beyond `sample`.
    pub truncated: bool,
}

/// Sniffs a file's format. Never fails and never panics: what it cannot read is
/// [`Format::Unknown`] with the reason.
pub fn sniff(file: &FileSample<'_>, limits: &Limits) -> Sniffed {
    let unknown = |compression, reason: String| Sniffed {
        compression,
        format: Format::unknown(reason),
        sample: Vec::new(),
        truncated: false,
    };
    let ext = extension(file.name);
    if file.len == 0 || file.head.is_empty() {
        return unknown(Compression::None, "empty file".into());
    }
    if file.head.starts_with(b"PAR1") {
        let end = file.end();
        return if file.len >= 12 && end.ends_with(b"PAR1") {
            Sniffed { compression: Compression::None, format: Format::Parquet, sample: Vec::new(), truncated: false }
        } else if end.is_empty() {
            unknown(
                Compression::None,
                "starts with the Parquet magic PAR1, but the file's last bytes were not given".into(),
            )
        } else if end.ends_with(b"PARE") {
            unknown(Compression::None, "Parquet with an encrypted footer (PARE) is not supported".into())
        } else {
            unknown(
                Compression::None,
                "starts with the Parquet magic PAR1 but does not end with it (truncated?)".into(),
            )
        };
    }
    if let Some(name) = unsupported_compression(file.head) {
        return unknown(Compression::None, format!("{name} compression is not supported (gzip and zstd are)"));
    }
    let compression = if file.head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if file.head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let (sample, truncated) = match compression {
        Compression::None => {
            let n = file.head.len().min(limits.sample_bytes);
            (file.head[..n].to_vec(), (n as u64) < file.len)
        }
        _ => match decompress(compression, file.head, file.is_whole(), limits.sample_bytes) {
            Ok(x) => x,
            Err(reason) => return unknown(compression, reason),
        },
    };
    let format = classify(&sample, truncated, ext, compression, limits);
    Sniffed { compression, format, sample, truncated }
}

/// The format of decompressed content (steps 3–5 of the module documentation).
fn classify(sample: &[u8], truncated: bool, ext: &str, compression: Compression, limits: &Limits) -> Format {
    if sample.is_empty() {
        return Format::unknown(format!("empty after {} decompression", compression.name()));
    }
    if sample.starts_with(b"PAR1") {
        return Format::unknown(format!(
            "Parquet inside {} compression: Parquet compresses its pages itself",
            compression.name()
        ));
    }
    if ext == "parquet" {
        return Format::unknown("named .parquet but has no PAR1 magic");
    }
    let body = strip_bom(sample);
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Format::unknown("only whitespace");
    };
    if body[first] == b'{' || body[first] == b'[' {
        return match scan_json(sample, truncated, limits.max_records) {
            Ok(scan) => Format::Json(scan.layout),
            Err(reason) => Format::Unknown { reason },
        };
    }
    if let Some(at) = sample.iter().position(|&b| b == 0) {
        return Format::unknown(format!("binary data (NUL byte at offset {at})"));
    }
    if let Err(e) = std::str::from_utf8(sample) {
        // A cut sample may end inside a UTF-8 sequence; only an error before that counts.
        if !(truncated && e.error_len().is_none()) {
            return Format::unknown(format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()));
        }
    }
    match sniff_csv(sample, truncated, ext, limits) {
        Ok(dialect) => Format::Csv(dialect),
        Err(reason) => Format::Unknown { reason },
    }
}

fn extension(name: &str) -> &str {
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut parts = base.rsplit('.');
    let mut ext = parts.next().unwrap_or("");
    if matches!(ext.to_ascii_lowercase().as_str(), "gz" | "gzip" | "zst" | "zstd") {
        ext = parts.next().unwrap_or("");
    }
    if ext.len() == base.len() { "" } else { ext }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(b)
}

fn unsupported_compression(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 6] = [
        (b"BZh", "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (b"PK\x03\x04", "zip"),
        (&[0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'], "snappy (framed)"),
        (&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c], "7z"),
    ];
    let bzip2 = head.len() >= 4 && head.starts_with(b"BZh") && head[3].is_ascii_digit();
    MAGICS
        .iter()
        .find(|(magic, name)| if *name == "bzip2" { bzip2 } else { head.starts_with(magic) })
        .map(|(_, name)| *name)
}

/// Decompresses at most `max` bytes. `raw_whole` says whether `raw` is the whole file: if it
/// is not, running out of input is a cut sample, not corruption.
fn decompress(kind: Compression, raw: &[u8], raw_whole: bool, max: usize) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    let limit = max as u64 + 1;
    let result = match kind {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(raw).take(limit).read_to_end(&mut out),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(raw) {
            Ok(d) => d.take(limit).read_to_end(&mut out),
            Err(e) => Err(e),
        },
        Compression::None => return Ok((raw.to_vec(), false)),
    };
    match result {
        Ok(_) if out.len() > max => {
            out.truncate(max);
            Ok((out, true))
        }
        Ok(_) => Ok((out, false)),
        Err(_) if !raw_whole && !out.is_empty() => {
            out.truncate(max);
            Ok((out, true))
        }
        Err(e) => Err(format!("corrupt {} data: {e}", kind.name())),
    }
}

/// Where the JSON records of a sample are.
#[derive(Debug)]
pub(crate) struct JsonScan {
    pub layout: JsonLayout,
    /// Byte ranges of the complete records, at most `max_records` of them.
    pub records: Vec<std::ops::Range<usize>>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn line_of(b: &[u8], at: usize) -> usize {
    1 + b[..at.min(b.len())].iter().filter(|&&c| c == b'\n').count()
}

/// Finds the records of a JSON sample (objects in a stream, or in a top-level array),
/// validating the syntax. A record cut by the end of a truncated sample is dropped.
pub(crate) fn scan_json(sample: &[u8], truncated: bool, max_records: usize) -> Result<JsonScan, String> {
    let start = sample.len() - strip_bom(sample).len();
    let mut pos = skip_ws(sample, start);
    let mut records = Vec::new();
    let is_array = sample.get(pos) == Some(&b'[');
    let mut cut = false; // stopped at the end of a truncated sample or at max_records
    if is_array {
        pos += 1;
        loop {
            pos = skip_ws(sample, pos);
            if pos >= sample.len() {
                if truncated {
                    cut = true;
                    break;
                }
                return Err("the top-level JSON array is not closed".into());
            }
            if sample[pos] == b']' && records.is_empty() {
                pos += 1;
                break;
            }
            if !records.is_empty() {
                match sample[pos] {
                    b']' => {
                        pos += 1;
                        break;
                    }
                    b',' => pos = skip_ws(sample, pos + 1),
                    _ => {
                        return Err(format!(
                            "expected `,` or `]` in the top-level array at line {}",
                            line_of(sample, pos)
                        ));
                    }
                }
                if pos >= sample.len() {
                    if truncated {
                        cut = true;
                        break;
                    }
                    return Err("the top-level JSON array is not closed".into());
                }
            }
            if records.len() >= max_records {
                cut = true;
                break;
            }
            if sample[pos] != b'{' {
                return Err(format!("element {} of the top-level JSON array is not an object", records.len() + 1));
            }
            match next_object(sample, pos, truncated, records.len() + 1)? {
                Next::Object(end) => {
                    records.push(pos..end);
                    pos = end;
                }
                Next::Cut => {
                    cut = true;
                    break;
                }
                Next::End => break,
            }
        }
        if !cut {
            let after = skip_ws(sample, pos);
            if after < sample.len() {
                return Err(format!("content after the top-level JSON array at line {}", line_of(sample, after)));
            }
        }
    } else {
        loop {
            pos = skip_ws(sample, pos);
            if pos >= sample.len() {
                break;
            }
            if records.len() >= max_records {
                cut = true;
                break;
            }
            if sample[pos] != b'{' {
                return Err(format!(
                    "record {} (line {}) is not a JSON object",
                    records.len() + 1,
                    line_of(sample, pos)
                ));
            }
            match next_object(sample, pos, truncated, records.len() + 1)? {
                Next::Object(end) => {
                    records.push(pos..end);
                    pos = end;
                }
                Next::Cut => {
                    cut = true;
                    break;
                }
                Next::End => break,
            }
        }
    }
    if records.is_empty() {
        return Err(if cut && truncated {
            format!("the first JSON record is longer than the sample of {} bytes (raise sample_bytes)", sample.len())
        } else {
            "no JSON records".into()
        });
    }
    let layout = if is_array {
        JsonLayout::Array
    } else if records.len() == 1 && !cut && !truncated {
        JsonLayout::Document
    } else {
        JsonLayout::Lines
    };
    Ok(JsonScan { layout, records })
}

/// What follows at `pos` in a JSON sample: one object ending at the given offset, an object cut
/// by the end of a truncated sample, or nothing.
enum Next {
    Object(usize),
    Cut,
    End,
}

/// Reads the object that starts at `pos` (record number `n`, for messages).
fn next_object(sample: &[u8], pos: usize, truncated: bool, n: usize) -> Result<Next, String> {
    let mut it = serde_json::Deserializer::from_slice(&sample[pos..]).into_iter::<IgnoredAny>();
    match it.next() {
        Some(Ok(_)) => Ok(Next::Object(pos + it.byte_offset())),
        Some(Err(e)) if truncated && (e.is_eof() || error_at_end(&sample[pos..], &e)) => Ok(Next::Cut),
        Some(Err(e)) => Err(json_error(sample, pos, n, &e)),
        None => Ok(Next::End),
    }
}

/// Whether a syntax error lies in the last bytes of `rest`: a number (`1.`, `-`, `2e`), a
/// literal (`tru`) or a UTF-8 sequence cut by the end of a truncated sample is reported as
/// invalid, not as an early end, but only there. serde_json positions are 1-based lines and
/// byte columns.
fn error_at_end(rest: &[u8], e: &serde_json::Error) -> bool {
    let line_start = match e.line() {
        0 | 1 => 0,
        l => match rest.iter().enumerate().filter(|&(_, &c)| c == b'\n').nth(l - 2) {
            Some((i, _)) => i + 1,
            None => return false,
        },
    };
    line_start + e.column() + 4 >= rest.len()
}

fn json_error(sample: &[u8], pos: usize, record: usize, e: &serde_json::Error) -> String {
    if e.is_eof() {
        format!("record {record} (line {}) ends early: the file is cut inside a JSON value", line_of(sample, pos))
    } else {
        format!("invalid JSON in record {record} (starting at line {}): {e}", line_of(sample, pos))
    }
}

/// The rows of a CSV sample with `delimiter`: at most `max` complete records; when the sample
/// was cut, its last record (possibly partial) is dropped.
pub(crate) fn csv_rows(
    sample: &[u8],
    delimiter: u8,
    truncated: bool,
    max: usize,
) -> Result<Vec<csv::ByteRecord>, csv::Error> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(strip_bom(sample));
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut hit_max = false;
    while reader.read_byte_record(&mut record)? {
        rows.push(record.clone());
        if rows.len() > max {
            hit_max = true;
            break;
        }
    }
    if hit_max || truncated {
        rows.pop();
    }
    Ok(rows)
}

/// A CSV field as text (the sample was checked to be UTF-8 up to its cut).
pub(crate) fn cell(field: &[u8]) -> &str {
    std::str::from_utf8(field).unwrap_or("")
}

fn sniff_csv(sample: &[u8], truncated: bool, ext: &str, limits: &Limits) -> Result<CsvDialect, String> {
    const DELIMITERS: [u8; 4] = [b',', b'\t', b'|', b';'];
    let hinted = match ext.to_ascii_lowercase().as_str() {
        "tsv" | "tab" => Some(b'\t'),
        "psv" => Some(b'|'),
        "csv" => Some(b','),
        _ => None,
    };
    let mut best: Option<(u8, usize, Vec<csv::ByteRecord>)> = None;
    let mut rows_seen = 0;
    for d in DELIMITERS {
        let Ok(rows) = csv_rows(sample, d, truncated, limits.max_records) else { continue };
        rows_seen = rows_seen.max(rows.len());
        let Some(n) = rows.first().map(|r| r.len()) else { continue };
        if rows.len() < 2 || n < 2 || rows.iter().any(|r| r.len() != n) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((bd, bn, _)) => n > *bn || (n == *bn && hinted == Some(d) && hinted != Some(*bd)),
        };
        if better {
            best = Some((d, n, rows));
        }
    }
    let Some((delimiter, _, rows)) = best else {
        return Err(if rows_seen < 2 {
            "text with fewer than two complete lines: not enough to call it CSV".into()
        } else {
            "text, but no delimiter among `,` tab `|` `;` splits its lines into the same number (≥ 2) of columns".into()
        });
    };
    let header = match limits.csv_header {
        HeaderRule::Always => true,
        HeaderRule::Never => false,
        HeaderRule::Detect => looks_like_header(&rows),
    };
    Ok(CsvDialect { delimiter, header })
}

/// Glue's header rule: every cell of the first row is a non-empty string (not a number, date,
/// boolean…), the cells are distinct, and at least one column of the other rows is typed — if
/// every column is a string, the first row is "not sufficiently different" to be a header.
fn looks_like_header(rows: &[csv::ByteRecord]) -> bool {
    let Some((first, data)) = rows.split_first() else { return false };
    if data.is_empty() {
        return false;
    }
    let mut names = std::collections::HashSet::new();
    for f in first.iter() {
        let c = cell(f).trim();
        if c.is_empty() || infer_text(c, None) != DataType::String || !names.insert(c) {
            return false;
        }
    }
    (0..first.len()).any(|j| {
        let t =
            data.iter().filter_map(|r| r.get(j)).fold(DataType::Null, |acc, f| merge(&acc, &infer_text(cell(f), None)));
        !matches!(t, DataType::String | DataType::Null)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn sniffed(name: &str, bytes: &[u8]) -> Sniffed {
        sniff(&FileSample::whole(name, bytes), &Limits::default())
    }

    fn format(name: &str, bytes: &[u8]) -> Format {
        sniffed(name, bytes).format
    }

    fn reason(f: Format) -> String {
        match f {
            Format::Unknown { reason } => reason,
            other => panic!("expected Unknown, got {other:?}"),
        }
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn json_layouts() {
        assert_eq!(format("a.json", b"{\"a\":1}\n{\"a\":2}\n"), Format::Json(JsonLayout::Lines));
        assert_eq!(format("a.json", b"{\"a\":1} {\"a\":2}"), Format::Json(JsonLayout::Lines), "concatenated");
        assert_eq!(format("a.json", b"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n"), Format::Json(JsonLayout::Document));
        assert_eq!(format("a.json", b" [ {\"a\":1}, {\"a\":2} ] "), Format::Json(JsonLayout::Array));
        assert_eq!(format("a.json", b"\xef\xbb\xbf{\"a\":1}"), Format::Json(JsonLayout::Document), "BOM");
    }

    #[test]
    fn json_that_is_not_records_is_reported() {
        assert!(reason(format("a.json", b"{\"a\":1}\n[1,2]\n")).contains("record 2 (line 2) is not a JSON object"));
        assert!(reason(format("a.json", b"[{\"a\":1}, 3]")).contains("element 2"));
        assert!(reason(format("a.json", b"[]")).contains("no JSON records"));
        assert!(reason(format("a.json", b"[{\"a\":1}] x")).contains("content after"));
        assert!(reason(format("a.json", b"[{\"a\":1}")).contains("not closed"));
        let r = reason(format("a.json", b"{\"a\":1}\n{\"a\":tru}\n"));
        assert!(r.contains("invalid JSON in record 2 (starting at line 2)"), "{r}");
        // A whole file that stops inside a value is corrupt, not cut.
        assert!(reason(format("a.json", b"{\"a\":1}\n{\"a\":")).contains("ends early"));
    }

    #[test]
    fn a_cut_sample_drops_its_partial_last_record() {
        let lines: Vec<u8> = (0..100).flat_map(|i| format!("{{\"i\":{i}}}\n").into_bytes()).collect();
        let limits = Limits { sample_bytes: 50, ..Limits::default() };
        let s = sniff(&FileSample { name: "x.jsonl", len: lines.len() as u64, head: &lines, tail: &[] }, &limits);
        assert_eq!(s.format, Format::Json(JsonLayout::Lines));
        assert!(s.truncated);
        assert_eq!(s.sample.len(), 50);
        let scan = scan_json(&s.sample, true, 1000).unwrap();
        assert!(scan.records.iter().all(|r| s.sample[r.clone()].ends_with(b"}")));
        assert_eq!(scan.records.len(), 6, "six 8-byte records fit in 50 bytes; the seventh is cut");
        // A cut array is still an array; one record is enough to say so.
        let arr = b"[{\"i\":1},{\"i\":2},{\"i\":3}]";
        let s = sniff(&FileSample { name: "x", len: 100, head: &arr[..12], tail: &[] }, &Limits::default());
        assert_eq!(s.format, Format::Json(JsonLayout::Array));
        // Regression (the 10,000-file crawl benchmark): a sample cut inside a number, a literal
        // or a UTF-8 sequence drops that record like any other cut, instead of calling the
        // whole file invalid JSON.
        for cut in ["{\"p\":1.", "{\"p\":-", "{\"p\":2e", "{\"p\":tru", "{\"p\":\"\u{e9}"] {
            let mut head = b"{\"p\":1.5}\n{\"p\":2}\n".to_vec();
            head.extend_from_slice(cut.as_bytes());
            if cut.ends_with('\u{e9}') {
                head.pop(); // half of the two-byte é
            }
            let s = sniff(&FileSample { name: "x.json", len: 1000, head: &head, tail: &[] }, &Limits::default());
            assert_eq!(s.format, Format::Json(JsonLayout::Lines), "cut {cut:?}");
            assert_eq!(scan_json(&s.sample, true, 1000).unwrap().records.len(), 2, "cut {cut:?}");
        }
        // The same bytes as a whole file are still invalid, and an error earlier in a cut
        // sample is still an error.
        assert!(reason(format("a.json", b"{\"p\":1}\n{\"p\":1.")).contains("invalid JSON in record 2"));
        let early = b"{\"p\":1.}\n{\"p\":2}\n{\"p\":3}\n";
        let s = sniff(&FileSample { name: "x.json", len: 1000, head: early, tail: &[] }, &Limits::default());
        assert!(reason(s.format).contains("invalid JSON in record 1"));
        // A record longer than the sample: say so.
        let s = sniff(&FileSample { name: "x", len: 100, head: b"{\"a\": \"abc", tail: &[] }, &Limits::default());
        assert!(reason(s.format).contains("raise sample_bytes"));
    }

    #[test]
    fn a_single_object_cut_by_the_sample_is_lines_not_document() {
        // Only one record fits, but more follows: the file is a stream, not one document.
        let s = sniff(&FileSample { name: "x", len: 100, head: b"{\"a\":1}\n{\"a\"", tail: &[] }, &Limits::default());
        assert_eq!(s.format, Format::Json(JsonLayout::Lines));
    }

    #[test]
    fn max_records_bounds_the_scan() {
        let lines: Vec<u8> = (0..50).flat_map(|i| format!("{{\"i\":{i}}}\n").into_bytes()).collect();
        let scan = scan_json(&lines, false, 10).unwrap();
        assert_eq!(scan.records.len(), 10);
        assert_eq!(scan.layout, JsonLayout::Lines);
    }

    #[test]
    fn csv_delimiters() {
        let csv = |d: &str| format!("sym{d}price{d}qty\nAAPL{d}189.5{d}100\nMSFT{d}410.25{d}7\n");
        for (d, b) in [(",", b','), ("\t", b'\t'), ("|", b'|'), (";", b';')] {
            assert_eq!(
                format("t.txt", csv(d).as_bytes()),
                Format::Csv(CsvDialect { delimiter: b, header: true }),
                "delimiter {d:?}"
            );
        }
    }

    #[test]
    fn csv_quoting_keeps_delimiters_and_newlines_inside_quotes() {
        let text = b"name,note,n\n\"Smith, J\",\"said \"\"hi\"\"\nthen left\",1\nDoe,plain,2\n";
        assert_eq!(format("q.csv", text), Format::Csv(CsvDialect { delimiter: b',', header: true }));
    }

    #[test]
    fn csv_ties_follow_the_name_then_the_order() {
        // Two columns with `,` and two with `;`: the name breaks the tie.
        let text = b"a,b;c\n1,2;3\n4,5;6\n";
        assert_eq!(format("x.csv", text), Format::Csv(CsvDialect { delimiter: b',', header: true }));
        let text = b"a\tb|c\n1\t2|3\n4\t5|6\n";
        assert_eq!(format("x.psv", text), Format::Csv(CsvDialect { delimiter: b'|', header: true }));
        assert_eq!(format("x.txt", text), Format::Csv(CsvDialect { delimiter: b'\t', header: true }));
    }

    #[test]
    fn csv_header_rule_is_glues() {
        // Typed data under string names: a header.
        assert!(matches!(format("a.csv", b"a,b\n1,x\n2,y\n"), Format::Csv(CsvDialect { header: true, .. })));
        // All strings: the first row is not different enough (Glue), so no header.
        assert!(matches!(
            format("a.csv", b"name,city\nann,paris\nbob,rome\n"),
            Format::Csv(CsvDialect { header: false, .. })
        ));
        // A typed cell in the first row: not a header.
        assert!(matches!(format("a.csv", b"a,2024\n1,2\n3,4\n"), Format::Csv(CsvDialect { header: false, .. })));
        // Repeated or empty names: not a header.
        assert!(matches!(format("a.csv", b"a,a\n1,2\n3,4\n"), Format::Csv(CsvDialect { header: false, .. })));
        assert!(matches!(format("a.csv", b"a,\n1,2\n3,4\n"), Format::Csv(CsvDialect { header: false, .. })));
        // The rule can be overridden.
        let limits = Limits { csv_header: HeaderRule::Always, ..Limits::default() };
        let f = sniff(&FileSample::whole("a.csv", b"name,city\nann,paris\n"), &limits).format;
        assert_eq!(f, Format::Csv(CsvDialect { delimiter: b',', header: true }));
    }

    #[test]
    fn text_that_is_not_csv_is_reported() {
        assert!(
            reason(format("r.txt", b"hello world\nthis is prose, mostly\nnothing; tabular\n")).contains("no delimiter")
        );
        assert!(reason(format("r.txt", b"one line, only")).contains("fewer than two"));
        assert!(reason(format("r.bin", b"a,b\n\x00\x01,2\n")).contains("NUL byte at offset 4"));
        assert!(reason(format("r.txt", b"a,b\n\xff\xfe,2\n")).contains("not UTF-8"));
        assert!(reason(format("r.txt", b"   \n\t ")).contains("only whitespace"));
        assert!(reason(format("r.txt", b"")).contains("empty file"));
    }

    #[test]
    fn parquet_needs_the_magic_at_both_ends() {
        let mut pq = b"PAR1".to_vec();
        pq.extend_from_slice(&[0; 8]);
        pq.extend_from_slice(b"PAR1");
        assert_eq!(format("x.bin", &pq), Format::Parquet);
        let n = pq.len();
        pq[n - 1] = b'E';
        assert!(reason(format("x.parquet", &pq)).contains("encrypted"));
        assert!(reason(format("x.parquet", b"PAR1 and then nothing")).contains("does not end with it"));
        assert!(reason(format("x.parquet", b"{\"a\":1}")).contains("named .parquet"));
        // Head only, no tail given, file longer than the head: cannot be confirmed.
        let s = sniff(&FileSample { name: "x", len: 1000, head: b"PAR1xxxx", tail: &[] }, &Limits::default());
        assert!(matches!(s.format, Format::Unknown { .. }));
    }

    #[test]
    fn gzip_and_zstd_are_unwrapped() {
        let text = b"{\"a\":1}\n{\"a\":2}\n";
        let s = sniffed("a.json.gz", &gzip(text));
        assert_eq!((s.compression, s.format), (Compression::Gzip, Format::Json(JsonLayout::Lines)));
        assert_eq!(s.sample, text);
        let z = zstd::stream::encode_all(&b"x,y\n1,2\n3,4\n"[..], 3).unwrap();
        let s = sniffed("a.csv.zst", &z);
        assert_eq!(
            (s.compression, s.format),
            (Compression::Zstd, Format::Csv(CsvDialect { delimiter: b',', header: true }))
        );
        // Concatenated gzip members read as one stream.
        let mut two = gzip(b"{\"a\":1}\n");
        two.extend(gzip(b"{\"a\":2}\n"));
        assert_eq!(sniffed("a.gz", &two).sample, text);
    }

    #[test]
    fn decompression_is_bounded_and_a_cut_stream_is_a_sample() {
        // 10 MB of JSON lines compress to little; the sample stays at sample_bytes.
        let big: Vec<u8> = (0..400_000).flat_map(|i| format!("{{\"i\":{i}}}\n").into_bytes()).collect();
        let gz = gzip(&big);
        let limits = Limits { sample_bytes: 4096, ..Limits::default() };
        let s = sniff(&FileSample::whole("big.gz", &gz), &limits);
        assert_eq!(s.sample.len(), 4096);
        assert!(s.truncated);
        assert_eq!(s.format, Format::Json(JsonLayout::Lines));
        // Only the first 2 KiB of the compressed file: still a sample, not corruption.
        let s = sniff(&FileSample { name: "big.gz", len: gz.len() as u64, head: &gz[..2048], tail: &[] }, &limits);
        assert!(s.truncated);
        assert_eq!(s.format, Format::Json(JsonLayout::Lines));
        // The whole file, corrupted: reported.
        let mut bad = gzip(b"{\"a\":1}\n");
        let n = bad.len();
        bad.truncate(n - 12);
        assert!(reason(sniffed("bad.gz", &bad).format).contains("corrupt gzip"));
    }

    #[test]
    fn other_compressions_are_named() {
        assert!(reason(format("a.bz2", b"BZh91AY&SY")).contains("bzip2"));
        assert!(reason(format("a.zip", b"PK\x03\x04rest")).contains("zip"));
        assert!(reason(format("a.xz", b"\xfd7zXZ\x00rest")).contains("xz"));
        assert!(reason(sniffed("a.gz", &gzip(b"PAR1....PAR1")).format).contains("Parquet inside gzip"));
    }

    #[test]
    fn extension_hints() {
        assert_eq!(extension("a/b/c.tsv.gz"), "tsv");
        assert_eq!(extension("c.PSV"), "PSV");
        assert_eq!(extension("noext"), "");
        assert_eq!(extension("dir.d/noext"), "");
    }

    #[test]
    fn never_panics_on_arbitrary_prefixes() {
        // Every prefix of a few tricky inputs, as whole files and as cut samples.
        let inputs: [&[u8]; 5] = [
            b"[{\"a\":[1,{\"b\":null}]},{\"c\":\"\\u00e9\"}]",
            b"\"q,\"\"x\"\"\",2\n3,\"4\n5\"\n",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
            b"PAR1\x00\x00PAR1",
            b"\xef\xbb\xbf{\"a\":1}\n\xff",
        ];
        for input in inputs {
            for n in 0..=input.len() {
                let _ = sniff(&FileSample::whole("x", &input[..n]), &Limits::default());
                let _ =
                    sniff(&FileSample { name: "x", len: 1 << 20, head: &input[..n], tail: &[] }, &Limits::default());
            }
        }
    }
}
