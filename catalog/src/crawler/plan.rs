//! What a crawl changes in the catalog: a pure function of the stored tables, partitions and
//! file states, the files seen now and their [`Grouping`] — [`plan`] returns the [`Changes`]
//! to apply in one transaction and what to tell the user.
//!
//! Rules (Glue's crawler settings in brackets):
//!
//! * A table found by the crawl is matched to a stored table of the database with the same
//!   location URL (its stored name is kept, so a table registered by a sink under its own name
//!   is the one a crawl of its prefix updates), else with the same name whose location is under
//!   the crawl root; else it is created at version 1. A same-named table located outside the
//!   crawl root is not touched: the found table is skipped with a warning.
//! * A format, schema or partition-key change ([`describe_change`]): policy
//!   [`SchemaChangePolicy::Update`] writes a new version with the change text
//!   [`UPDATE_IN_DATABASE`]; [`SchemaChangePolicy::Log`] keeps the stored shape and version and
//!   warns [`LOG`]. Under `Log`, when partition keys differ in name or number, the table is left
//!   exactly as it is (its files keep their stored assignment, new files join no table).
//! * Partitions are the found ones: new ones added, changed counts replaced, vanished ones
//!   removed.
//! * A stored table under the crawl root that no found table matched and to which some stored
//!   file belonged is deprecated [`DEPRECATE_IN_DATABASE`] (its partitions removed); one found
//!   again is no longer deprecated.
//! * File states: written when new or changed (size, tag, what it is, its table or partition
//!   values); removed when the file vanished.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::group::{Grouping, Table};
use crate::sniff::Compression;
use crate::store::{
    Changes, FileState, PartitionChanges, PartitionRecord, SchemaVersion, TableChange, TableRecord, describe_change,
    encode_path,
};

/// What a recrawl does when a table's shape changed (Glue's `SchemaChangePolicy.UpdateBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaChangePolicy {
    /// A new schema version (`UPDATE_IN_DATABASE`).
    #[default]
    Update,
    /// Keep the stored schema; report the change as a warning (`LOG`).
    Log,
}

impl std::str::FromStr for SchemaChangePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "update" | "update_in_database" => Ok(SchemaChangePolicy::Update),
            "log" => Ok(SchemaChangePolicy::Log),
            _ => Err(format!("schema change policy {s:?}: use update or log")),
        }
    }
}

/// The input of [`plan`].
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub database: &'a str,
    /// The crawl root's URL, ending in `/`.
    pub root: &'a str,
    pub now_ms: i64,
    pub policy: SchemaChangePolicy,
    /// Every stored table of the database.
    pub existing: &'a [TableRecord],
    /// Stored partitions, by table name (at least for the tables under the root).
    pub existing_partitions: &'a HashMap<String, Vec<PartitionRecord>>,
    /// The stored file states of this root.
    pub previous: &'a [FileState],
    /// Every file of the root now, with what it is (`table`/`partition_values` are ignored).
    pub current: &'a [FileState],
    pub grouping: &'a Grouping,
}

/// The changes and what to report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub changes: Changes,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deprecated: Vec<String>,
    pub partitions_added: usize,
    /// `table `t` version 2: added column x: double`.
    pub schema_changes: Vec<String>,
    pub warnings: Vec<String>,
}

/// The URL of a folder relative to the root (`""` is the root).
pub fn folder_url(root: &str, folder: &str) -> String {
    if folder.is_empty() { root.to_string() } else { format!("{root}{}/", encode_path(folder)) }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn crawler_properties(t: &Table, format: &crate::group::TableFormat, root: &str) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("classification".into(), format.classification().into());
    p.insert("compression".into(), format.compression().name().into());
    if let crate::group::TableFormat::Csv(d, _) = format {
        p.insert("delimiter".into(), (d.delimiter as char).to_string());
        p.insert("skip.header.line.count".into(), if d.header { "1" } else { "0" }.into());
    }
    if format.compression() != Compression::None {
        p.insert("compressionType".into(), format.compression().name().into());
    }
    p.insert("ticklake.crawl_root".into(), root.into());
    p.insert("ticklake.files".into(), t.files.len().to_string());
    p.insert("ticklake.bytes".into(), t.bytes.to_string());
    p.insert("ticklake.distinct_schemas".into(), t.distinct_schemas.to_string());
    p
}

/// Computes a crawl's changes (see the module documentation).
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let PlanInput { database, root, now_ms, policy, existing, existing_partitions, previous, current, grouping } =
        *input;
    let mut out = Plan::default();
    let sizes: HashMap<&str, u64> = current.iter().map(|f| (f.path.as_str(), f.size)).collect();
    let previous_by_path: HashMap<&str, &FileState> = previous.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut used: HashSet<String> = HashSet::new();
    // Per file: its table and partition values.
    let mut assign: HashMap<&str, (String, Vec<Option<String>>)> = HashMap::new();
    let empty = Vec::new();

    for t in &grouping.tables {
        let location = folder_url(root, &t.location);
        let by_location = existing.iter().find(|e| e.location == location && !used.contains(&e.name));
        let by_name = || existing.iter().find(|e| e.name == t.name && !used.contains(&e.name));
        let old = match by_location.or_else(by_name) {
            Some(e) if e.location != location && !e.location.starts_with(root) => {
                out.warnings.push(format!(
                    "table `{}` found at {location} was not written: the name is taken by the table at {}",
                    t.name, e.location
                ));
                continue;
            }
            other => other,
        };
        let name = old.map(|e| e.name.clone()).unwrap_or_else(|| t.name.clone());
        used.insert(name.clone());
        for w in &t.warnings {
            out.warnings.push(format!("table `{name}`: {w}"));
        }

        let mut new_version = None;
        let (format, schema, keys, version) = match old {
            None => {
                new_version = Some(SchemaVersion {
                    version: 1,
                    schema: t.schema.clone(),
                    partition_keys: t.partition_keys.clone(),
                    created_ms: now_ms,
                    change: "created".into(),
                });
                (t.format, t.schema.clone(), t.partition_keys.clone(), 1)
            }
            Some(e) => {
                let change = describe_change(
                    (&e.format, &e.schema, &e.partition_keys),
                    (&t.format, &t.schema, &t.partition_keys),
                );
                if change.is_empty() {
                    (e.format, e.schema.clone(), e.partition_keys.clone(), e.schema_version)
                } else if policy == SchemaChangePolicy::Update {
                    let version = e.schema_version + 1;
                    let change = change.join("; ");
                    out.schema_changes.push(format!("table `{name}` version {version}: {change}"));
                    new_version = Some(SchemaVersion {
                        version,
                        schema: t.schema.clone(),
                        partition_keys: t.partition_keys.clone(),
                        created_ms: now_ms,
                        change,
                    });
                    (t.format, t.schema.clone(), t.partition_keys.clone(), version)
                } else {
                    let same_keys = e.partition_keys.len() == t.partition_keys.len()
                        && e.partition_keys.iter().zip(&t.partition_keys).all(|(a, b)| a.name == b.name);
                    out.warnings.push(format!(
                        "table `{name}`: schema change not applied (schema change policy log){}: {}",
                        if same_keys { "" } else { ", table left unchanged" },
                        change.join("; ")
                    ));
                    if !same_keys {
                        for f in &t.files {
                            if let Some(p) =
                                previous_by_path.get(f.as_str()).filter(|p| p.table.as_ref() == Some(&name))
                            {
                                assign.insert(f, (name.clone(), p.partition_values.clone()));
                            }
                        }
                        continue;
                    }
                    (e.format, e.schema.clone(), e.partition_keys.clone(), e.schema_version)
                }
            }
        };

        let mut properties = old.map(|e| e.properties.clone()).unwrap_or_default();
        properties.extend(crawler_properties(t, &format, root));
        let record = TableRecord {
            database: database.to_string(),
            name: name.clone(),
            location,
            format,
            schema,
            partition_keys: keys.clone(),
            properties,
            schema_version: version,
            deprecated: false,
            created_ms: old.map(|e| e.created_ms).unwrap_or(now_ms),
            updated_ms: now_ms,
        };

        // Partitions and each file's values.
        let by_folder: HashMap<&str, &Vec<Option<String>>> =
            t.partitions.iter().map(|p| (p.location.as_str(), &p.values)).collect();
        let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
        for f in &t.files {
            let folder = parent(f);
            let values = if keys.is_empty() {
                Vec::new()
            } else {
                by_folder.get(folder).map(|v| (*v).clone()).unwrap_or_default()
            };
            let c = counts.entry(folder).or_default();
            c.0 += 1;
            c.1 += sizes.get(f.as_str()).copied().unwrap_or(0);
            assign.insert(f, (name.clone(), values));
        }
        let found: Vec<PartitionRecord> = if keys.is_empty() {
            Vec::new()
        } else {
            t.partitions
                .iter()
                .map(|p| {
                    let (files, bytes) = counts.get(p.location.as_str()).copied().unwrap_or((0, 0));
                    PartitionRecord { values: p.values.clone(), location: folder_url(root, &p.location), files, bytes }
                })
                .collect()
        };
        let stored = existing_partitions.get(&name).unwrap_or(&empty);
        let stored_by_values: HashMap<&Vec<Option<String>>, &PartitionRecord> =
            stored.iter().map(|p| (&p.values, p)).collect();
        let found_values: HashSet<&Vec<Option<String>>> = found.iter().map(|p| &p.values).collect();
        let mut pc = PartitionChanges { table: name.clone(), ..PartitionChanges::default() };
        for p in &found {
            match stored_by_values.get(&p.values) {
                None => {
                    out.partitions_added += 1;
                    pc.upsert.push(p.clone());
                }
                Some(s) if *s != p => pc.upsert.push(p.clone()),
                Some(_) => {}
            }
        }
        pc.delete = stored.iter().filter(|p| !found_values.contains(&p.values)).map(|p| p.values.clone()).collect();
        let partitions_changed = !pc.upsert.is_empty() || !pc.delete.is_empty();
        if partitions_changed {
            out.changes.partitions.push(pc);
        }

        let record_changed = old.is_none_or(|e| TableRecord { updated_ms: e.updated_ms, ..record.clone() } != *e);
        if old.is_none() {
            out.created.push(name.clone());
        } else if record_changed || partitions_changed {
            out.updated.push(name.clone());
        }
        if record_changed {
            out.changes.tables.push(TableChange { record, new_version });
        }
    }

    // Tables whose files all went elsewhere or vanished.
    let had_files: HashSet<&str> = previous.iter().filter_map(|f| f.table.as_deref()).collect();
    for e in existing {
        if used.contains(&e.name)
            || e.deprecated
            || !e.location.starts_with(root)
            || !had_files.contains(e.name.as_str())
        {
            continue;
        }
        out.deprecated.push(e.name.clone());
        out.changes.tables.push(TableChange {
            record: TableRecord { deprecated: true, updated_ms: now_ms, ..e.clone() },
            new_version: None,
        });
        let stored = existing_partitions.get(&e.name).unwrap_or(&empty);
        if !stored.is_empty() {
            out.changes.partitions.push(PartitionChanges {
                table: e.name.clone(),
                upsert: Vec::new(),
                delete: stored.iter().map(|p| p.values.clone()).collect(),
            });
        }
    }

    // File states.
    let now_paths: HashSet<&str> = current.iter().map(|f| f.path.as_str()).collect();
    for f in current {
        let (table, partition_values) = match assign.get(f.path.as_str()) {
            Some((t, v)) => (Some(t.clone()), v.clone()),
            None => (None, Vec::new()),
        };
        let state = FileState { table, partition_values, ..f.clone() };
        if previous_by_path.get(f.path.as_str()).is_none_or(|p| **p != state) {
            out.changes.files_upsert.push(state);
        }
    }
    out.changes.files_delete =
        previous.iter().filter(|f| !now_paths.contains(f.path.as_str())).map(|f| f.path.clone()).collect();
    out.changes.database = database.to_string();
    out.changes.root = root.to_string();
    out.changes.now_ms = now_ms;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{FileEntry, GroupOptions, TableFormat, group};
    use crate::types::{DataType, Field, Schema};

    const ROOT: &str = "file:///lake/";

    fn schema(cols: &str) -> Schema {
        Schema::new(cols.split(',').map(|c| Field::new(c, DataType::Int, false)).collect())
    }

    fn state(path: &str, s: &Schema) -> FileState {
        FileState {
            path: path.into(),
            size: 10,
            tag: "1".into(),
            found: Ok((TableFormat::Json(Compression::None), s.clone())),
            table: None,
            partition_values: Vec::new(),
        }
    }

    /// Groups `files` and plans against the stored state; returns the plan and the catalog as
    /// it would be after applying it.
    fn run(
        files: &[FileState],
        tables: &[TableRecord],
        parts: &HashMap<String, Vec<PartitionRecord>>,
        previous: &[FileState],
        policy: SchemaChangePolicy,
    ) -> Plan {
        let entries: Vec<FileEntry> = files
            .iter()
            .filter_map(|f| {
                let (format, schema) = f.found.clone().ok()?;
                Some(FileEntry { path: f.path.clone(), size: f.size, format, schema })
            })
            .collect();
        let grouping = group(&entries, &GroupOptions { root_name: "ticks".into(), ..GroupOptions::default() }).unwrap();
        plan(&PlanInput {
            database: "db",
            root: ROOT,
            now_ms: 1000,
            policy,
            existing: tables,
            existing_partitions: parts,
            previous,
            current: files,
            grouping: &grouping,
        })
    }

    /// Applies a plan to in-memory stand-ins of the store.
    fn apply(
        p: &Plan,
        tables: &mut Vec<TableRecord>,
        parts: &mut HashMap<String, Vec<PartitionRecord>>,
        files: &mut Vec<FileState>,
    ) {
        for t in &p.changes.tables {
            tables.retain(|x| x.name != t.record.name);
            tables.push(t.record.clone());
        }
        for pc in &p.changes.partitions {
            let v = parts.entry(pc.table.clone()).or_default();
            v.retain(|x| !pc.delete.contains(&x.values) && !pc.upsert.iter().any(|u| u.values == x.values));
            v.extend(pc.upsert.iter().cloned());
        }
        files.retain(|f| !p.changes.files_delete.contains(&f.path));
        for f in &p.changes.files_upsert {
            files.retain(|x| x.path != f.path);
            files.push(f.clone());
        }
    }

    #[test]
    fn first_crawl_creates_then_an_unchanged_recrawl_changes_nothing() {
        let s = schema("a,b");
        let files = vec![state("year=2026/month=01/1.json", &s), state("year=2026/month=02/2.json", &s)];
        let (mut tables, mut parts, mut stored) = (Vec::new(), HashMap::new(), Vec::new());
        let p = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert_eq!(p.created, ["ticks"]);
        assert_eq!(p.partitions_added, 2);
        let t = &p.changes.tables[0].record;
        assert_eq!(t.location, ROOT);
        assert_eq!((t.schema_version, t.properties["classification"].as_str()), (1, "json"));
        assert_eq!(p.changes.tables[0].new_version.as_ref().unwrap().change, "created");
        let keys: Vec<String> = t.partition_keys.iter().map(|k| format!("{} {}", k.name, k.data_type)).collect();
        assert_eq!(keys, ["year int", "month string"]);
        assert_eq!(p.changes.files_upsert[0].partition_values, [Some("2026".into()), Some("01".into())]);
        assert_eq!(p.changes.files_upsert[0].table.as_deref(), Some("ticks"));
        apply(&p, &mut tables, &mut parts, &mut stored);
        let again = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert!(again.changes.is_empty(), "{again:?}");
        assert!(again.created.is_empty() && again.updated.is_empty());
    }

    #[test]
    fn drift_makes_a_version_or_a_warning() {
        let s = schema("a,b,c");
        let mut files = vec![state("p=1/1.json", &s), state("p=2/2.json", &s)];
        let (mut tables, mut parts, mut stored) = (Vec::new(), HashMap::new(), Vec::new());
        let p = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        apply(&p, &mut tables, &mut parts, &mut stored);
        files.push(state("p=3/3.json", &schema("a,b,c,x")));
        let log = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Log);
        assert!(log.schema_changes.is_empty());
        assert!(log.warnings[0].contains("not applied (schema change policy log): added column x: int"), "{log:?}");
        let t = &log.changes.tables[0];
        assert_eq!((t.record.schema_version, t.record.schema.columns.len()), (1, 3));
        assert!(t.new_version.is_none());
        assert_eq!(log.partitions_added, 1, "partitions are still added under log");
        let upd = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert_eq!(upd.schema_changes, ["table `ticks` version 2: added column x: int"]);
        assert_eq!(upd.updated, ["ticks"]);
        let v = upd.changes.tables[0].new_version.as_ref().unwrap();
        assert_eq!((v.version, v.change.as_str()), (2, "added column x: int"));
    }

    #[test]
    fn vanished_tables_are_deprecated_and_revived() {
        let (a, b, c) = (schema("id,qty,px"), schema("id,name,email,city"), schema("sku,title"));
        let files = vec![state("orders/1.json", &a), state("customers/1.json", &b), state("products/1.json", &c)];
        let (mut tables, mut parts, mut stored) = (Vec::new(), HashMap::new(), Vec::new());
        let p = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert_eq!(p.created, ["customers", "orders", "products"]);
        apply(&p, &mut tables, &mut parts, &mut stored);
        // (Two dissimilar folders remain, so the root stays heterogeneous: with one, the root
        // itself would become the table and both old tables would be deprecated.)
        let fewer = vec![files[1].clone(), files[2].clone()];
        let p = run(&fewer, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert_eq!(p.deprecated, ["orders"]);
        assert_eq!(p.changes.files_delete, ["orders/1.json"]);
        apply(&p, &mut tables, &mut parts, &mut stored);
        assert!(tables.iter().find(|t| t.name == "orders").unwrap().deprecated);
        let p = run(&fewer, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert!(p.deprecated.is_empty() && p.changes.is_empty(), "deprecated once");
        let p = run(&files, &tables, &parts, &stored, SchemaChangePolicy::Update);
        assert_eq!(p.updated, ["orders"]);
        assert!(!p.changes.tables[0].record.deprecated);
    }

    #[test]
    fn a_registered_table_is_matched_by_location_and_a_foreign_name_is_left_alone() {
        let s = schema("a,b");
        let files = vec![state("1.json", &s)];
        let registered = TableRecord {
            database: "db".into(),
            name: "sink_ticks".into(),
            location: ROOT.into(),
            format: TableFormat::Json(Compression::None),
            schema: s.clone(),
            partition_keys: Vec::new(),
            properties: BTreeMap::new(),
            schema_version: 1,
            deprecated: false,
            created_ms: 5,
            updated_ms: 5,
        };
        let p = run(&files, std::slice::from_ref(&registered), &HashMap::new(), &[], SchemaChangePolicy::Update);
        assert!(p.created.is_empty());
        assert_eq!(p.updated, ["sink_ticks"]);
        assert_eq!(p.changes.files_upsert[0].table.as_deref(), Some("sink_ticks"));
        let elsewhere = TableRecord { name: "ticks".into(), location: "s3://other/".into(), ..registered };
        let p = run(&files, &[elsewhere], &HashMap::new(), &[], SchemaChangePolicy::Update);
        assert!(p.changes.tables.is_empty());
        assert!(p.warnings[0].contains("name is taken by the table at s3://other/"), "{p:?}");
    }
}
