//! Which files to read, and how.
//!
//! Each `files` entry is a path or a glob pattern (`*`, `?`, `[…]`, and `**` for any depth,
//! via the `glob` crate). A pattern's matches are taken in alphabetical order; entries are
//! taken in the order listed; a file named twice is read once. A pattern matching nothing
//! and a path that cannot be opened are hard errors, as is listing more than
//! [`ReplayLimits::max_files`](super::ReplayLimits::max_files) files.
//!
//! With `format: auto` the name decides: `.csv` or `.csv.gz` is CSV, `.parquet` is Parquet
//! (case-insensitive). A CSV file is gunzipped when its content starts with the gzip magic
//! bytes, whatever its name.

use crate::SourceError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use ticklake_api::crd::ReplayFormat;

/// How one file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    Csv,
    Parquet,
}

/// Expands the spec's `files` into a list of files, in replay order.
pub(crate) fn expand(patterns: &[String], max_files: usize) -> Result<Vec<PathBuf>, SourceError> {
    if patterns.is_empty() {
        return Err(SourceError::config("replay.files is empty"));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |p: PathBuf, out: &mut Vec<PathBuf>| -> Result<(), SourceError> {
        if seen.insert(p.clone()) {
            if out.len() == max_files {
                return Err(SourceError::Limit(format!(
                    "replay.files names more than {max_files} files; merge some files"
                )));
            }
            out.push(p);
        }
        Ok(())
    };
    for pattern in patterns {
        if pattern.is_empty() {
            return Err(SourceError::config("replay.files has an empty entry"));
        }
        if !pattern.contains(['*', '?', '[']) {
            let path = PathBuf::from(pattern);
            std::fs::metadata(&path).map_err(|source| SourceError::Io { path: path.clone(), source })?;
            add(path, &mut out)?;
            continue;
        }
        let paths = glob::glob(pattern)
            .map_err(|e| SourceError::BadPattern { pattern: pattern.clone(), message: e.to_string() })?;
        let mut matched = false;
        for entry in paths {
            let path = entry.map_err(|e| {
                let path = e.path().to_path_buf();
                SourceError::Io { path, source: e.into() }
            })?;
            if path.is_file() {
                matched = true;
                add(path, &mut out)?;
            }
        }
        if !matched {
            return Err(SourceError::NoMatch { pattern: pattern.clone() });
        }
    }
    Ok(out)
}

/// How to read `file` under `format`.
pub(crate) fn reader_for(file: &Path, format: ReplayFormat) -> Result<Reader, SourceError> {
    match format {
        ReplayFormat::Csv => Ok(Reader::Csv),
        ReplayFormat::Parquet => Ok(Reader::Parquet),
        ReplayFormat::Auto => {
            let name = file.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
            if name.ends_with(".csv") || name.ends_with(".csv.gz") {
                Ok(Reader::Csv)
            } else if name.ends_with(".parquet") {
                Ok(Reader::Parquet)
            } else {
                Err(SourceError::UnknownFormat { file: file.to_path_buf() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        let r = |n: &str| reader_for(Path::new(n), ReplayFormat::Auto).ok();
        assert_eq!(r("/d/a.csv"), Some(Reader::Csv));
        assert_eq!(r("/d/A.CSV.GZ"), Some(Reader::Csv));
        assert_eq!(r("/d/a.parquet"), Some(Reader::Parquet));
        assert_eq!(r("/d/a.txt"), None);
        assert_eq!(r("/d/a.gz"), None);
        assert_eq!(reader_for(Path::new("a.txt"), ReplayFormat::Csv).ok(), Some(Reader::Csv));
        let e = reader_for(Path::new("a.json"), ReplayFormat::Auto).unwrap_err().to_string();
        assert!(e.contains("a.json") && e.contains("format"), "{e}");
    }

    #[test]
    fn globs_expand_sorted_deduplicated_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.csv", "a.csv", "c.parquet"] {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        let d = dir.path().display();
        let got = expand(&[format!("{d}/*.csv"), format!("{d}/a.csv"), format!("{d}/*")], 10).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.csv", "b.csv", "c.parquet"]);
        assert!(matches!(expand(&[format!("{d}/*.json")], 10), Err(SourceError::NoMatch { .. })));
        assert!(matches!(expand(&[format!("{d}/nope.csv")], 10), Err(SourceError::Io { .. })));
        assert!(matches!(expand(&[format!("{d}/[")], 10), Err(SourceError::BadPattern { .. })));
        assert!(matches!(expand(&[format!("{d}/*")], 2), Err(SourceError::Limit(_))));
        assert!(expand(&[], 2).is_err());
    }
}
