//! Table grouping over fuzzed trees. The input is lines `path<TAB>record`: each record is
//! inspected as a one-object JSON (or CSV) file, and the files that yield a schema are grouped
//! with options taken from the first line. `group` must return a grouping or an error, never
//! panic; every file it is given must come back exactly once: in a table, set aside or excluded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ticklake_catalog::{FileEntry, FileSample, GroupOptions, Limits, group, inspect};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let Some(options) = lines.next() else { return };
    let o = options.as_bytes();
    let at = |i: usize| o.get(i).copied().unwrap_or(0);
    let limits = Limits { sample_bytes: 2048, max_records: 16, max_depth: 6, max_columns: 32, ..Limits::default() };
    let opts = GroupOptions {
        similarity_threshold: f64::from(at(0) % 101) / 100.0,
        max_schemas: 1 + usize::from(at(1) % 6),
        exclusions: options.split('|').skip(1).take(4).map(str::to_string).collect(),
        combine_compatible_schemas: at(2) % 2 == 1,
        table_level: (at(3) % 4 != 0).then(|| usize::from(at(3) % 4)),
        max_folder_depth: 1 + usize::from(at(4) % 12),
        limits: limits.clone(),
        ..GroupOptions::default()
    };
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in lines.take(256) {
        let Some((path, record)) = line.split_once('\t') else { continue };
        // A tree holds each path once.
        if !seen.insert(path) {
            continue;
        }
        let sample = FileSample::whole(path, record.as_bytes());
        if let Ok(inspected) = inspect(&sample, &limits) {
            files.push(FileEntry {
                path: path.to_string(),
                size: record.len() as u64,
                format: inspected.format,
                schema: inspected.schema,
            });
        }
    }
    if let Ok(grouping) = group(&files, &opts) {
        let in_tables: usize = grouping.tables.iter().map(|t| t.files.len()).sum();
        let placed = in_tables + grouping.set_aside.len() + grouping.excluded.len();
        assert_eq!(placed, files.len(), "every file is in one table, set aside or excluded: {grouping:?}");
    }
});
