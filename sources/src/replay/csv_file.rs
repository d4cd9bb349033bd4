//! Reading one CSV file (optionally gzip-compressed) into the loader.
//!
//! The first line is the header. Fields are trimmed; a UTF-8 byte-order mark is ignored;
//! quoted fields may contain commas and line breaks. A row shorter than the header has
//! empty cells at the end (reported as missing values if the mapping needs them); extra
//! fields are ignored. Line numbers in bad-row reports are 1-based and count the header, so
//! the first data row is line 2. A read or decompression failure stops the replay with an
//! error naming the file — a truncated file is not a bad row.

use super::Loader;
use super::mapping::Cell;
use crate::{FileFormat, SourceError};
use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub(crate) fn read(path: &Path, loader: &mut Loader<'_>) -> Result<(), SourceError> {
    let io = |source: std::io::Error| SourceError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let mut buf = BufReader::with_capacity(256 * 1024, file);
    let gzipped = buf.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gzipped { Box::new(MultiGzDecoder::new(buf)) } else { Box::new(buf) };
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(input);

    let header = rdr.byte_headers().map_err(|e| csv_error(path, e))?;
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(SourceError::Format { file: path.to_path_buf(), message: "no header line".into() });
    }
    let names: Vec<String> =
        header.iter().map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_string()).collect();
    let bound = loader.plan.bind(path, &names)?;

    let max_bytes = loader.limits.max_record_bytes;
    let mut rec = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        if rec.as_slice().len() > max_bytes {
            loader.bad(path, FileFormat::Csv, line, format!("record is longer than {max_bytes} bytes"), None);
            continue;
        }
        let cell = |i: usize| match rec.get(i) {
            None => Cell::Null,
            Some(b) => std::str::from_utf8(b).map_or(Cell::BadUtf8, Cell::Text),
        };
        loader.row(path, FileFormat::Csv, line, &bound, cell)?;
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> SourceError {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(source) => SourceError::Io { path: path.to_path_buf(), source },
        _ => SourceError::Format { file: path.to_path_buf(), message },
    }
}
