//! Replay of historical files as ticks, in event-time order.
//!
//! # How a replay runs
//!
//! 1. **Files** ([`files`]): the spec's `files` entries (paths or globs) are expanded, in
//!    order, and each file's reader is chosen by `format` (or its name).
//! 2. **Mapping** ([`mapping`]): the `mapping` is resolved once — a preset such as
//!    `kaggleIndexProcessed`, or explicit columns — and bound to each file's header. A mapped
//!    column missing from a header stops the replay with an error naming column and file.
//! 3. **Loading**: every row is read ([`csv_file`], [`parquet_file`]) and mapped by the pure
//!    core; a row that cannot become a tick is a [`BadRow`] (file, line, reason) and is
//!    skipped. Rows whose symbol belongs to another replica are skipped silently (see
//!    [`crate::shard`]: replay shards by a stable hash of the symbol).
//! 4. **Ordering** ([`table`]): the loaded rows are sorted by event time with a *stable* sort,
//!    so the replay is in event-time order across all files, and rows with equal times keep
//!    their file and row order. This loads everything in memory — simple, and right for
//!    files that are not themselves in time order (the Kaggle file is sorted by index, then
//!    date) — so the rows a replica keeps are capped by [`ReplayLimits::max_rows`]; beyond
//!    it, opening fails with an error saying so.
//! 5. **Emitting**: ticks come out with a per-symbol `seq` assigned in replay order, from 0.
//!    With `loop: true` the replay starts over when it reaches the end; `seq` keeps counting,
//!    so every (symbol, seq) stays unique, while event times repeat pass after pass (the
//!    [`EventTimePacer`](crate::EventTimePacer) re-anchors when time goes back).
//!
//! The submodules document each step; their items are internal.
//!
//! Loading happens in [`Replay::open`]: it is blocking I/O, to be run off the async runtime
//! (e.g. `spawn_blocking`). After that, producing ticks does no I/O and cannot fail.
//!
//! # Pacing
//!
//! `speed: 0` is as fast as possible; `speed: k` plays k× real time by event time. The replay
//! does not sleep: [`Replay::pacing`] returns [`Pacing::EventTime`] and the worker asks
//! [`EventTimePacer`](crate::EventTimePacer) how long to wait.

pub mod csv_file;
pub mod files;
pub mod mapping;
pub mod parquet_file;
pub mod table;
pub mod time;

use crate::pacing::Pacing;
use crate::shard::Shard;
use crate::{BadRow, BatchOutcome, FileFormat, SourceError};
use mapping::{Bound, Cell, Plan, RowOutcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use table::RowTable;
use ticklake_api::crd::ReplaySpec;
use ticklake_api::tick::Tick;

/// Caps on what one replay may load. The defaults suit a worker with a few GB of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Rows this replica keeps in memory (after sharding). Default 20 million, about 1.4 GB of
    /// bars or 0.6 GB of trades; at most `u32::MAX`.
    pub max_rows: usize,
    /// Files after glob expansion. Default 10 000.
    pub max_files: usize,
    /// Distinct symbols this replica keeps. Default 1 000 000.
    pub max_symbols: usize,
    /// Bad rows kept with their details; more are only counted. Default 10 000.
    pub max_bad_row_details: usize,
    /// Longest CSV record, in bytes; a longer one is a bad row. Default 1 MiB.
    pub max_record_bytes: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            max_rows: 20_000_000,
            max_files: 10_000,
            max_symbols: 1_000_000,
            max_bad_row_details: 10_000,
            max_record_bytes: 1 << 20,
        }
    }
}

/// Highest `speed` accepted (as in the CRD schema).
pub const MAX_SPEED: f64 = 1_000_000.0;

/// Rows being loaded: the mapping, the shard filter, the interned symbols, the bad rows.
pub(crate) struct Loader<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) limits: ReplayLimits,
    shard: Shard,
    table: RowTable,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    bad: Vec<BadRow>,
    bad_total: u64,
    vals: Vec<f64>,
}

impl<'p> Loader<'p> {
    fn new(plan: &'p Plan, shard: Shard, limits: ReplayLimits) -> Self {
        Loader {
            plan,
            limits,
            shard,
            table: RowTable::new(plan.kind, plan.width()),
            names: Vec::new(),
            ids: HashMap::new(),
            bad: Vec::new(),
            bad_total: 0,
            vals: vec![0.0; plan.width()],
        }
    }

    /// Maps and keeps (or skips, or reports) one row.
    pub(crate) fn row<'a>(
        &mut self,
        file: &Path,
        format: FileFormat,
        line: u64,
        bound: &Bound,
        cell: impl Fn(usize) -> Cell<'a>,
    ) -> Result<(), SourceError> {
        let shard = self.shard;
        match self.plan.map_row(bound, cell, |s| shard.owns_symbol(s), &mut self.vals) {
            RowOutcome::NotOurs => Ok(()),
            RowOutcome::Bad { reason, ours } => {
                self.bad(file, format, line, reason, ours);
                Ok(())
            }
            RowOutcome::Mapped { symbol, ts_us } => {
                let id = match self.ids.get(symbol.as_ref()) {
                    Some(&id) => id,
                    None => {
                        if self.names.len() >= self.limits.max_symbols {
                            return Err(SourceError::Limit(format!(
                                "more than {} distinct symbols for this replica (reached at {}); \
                                 spread the stream over more replicas",
                                self.limits.max_symbols,
                                location(file, format, line)
                            )));
                        }
                        let id = self.names.len() as u32;
                        self.names.push(symbol.to_string());
                        self.ids.insert(symbol.into_owned(), id);
                        id
                    }
                };
                if self.table.len() >= self.limits.max_rows {
                    return Err(SourceError::Limit(format!(
                        "more than {} rows for this replica (reached at {}); replay fewer files \
                         or spread the stream over more replicas",
                        self.limits.max_rows,
                        location(file, format, line)
                    )));
                }
                self.table.push(ts_us, id, &self.vals);
                Ok(())
            }
        }
    }

    /// Records a bad row. `ours`: whether this shard reports it (`None`: the symbol was
    /// unreadable, so the row belongs to no shard in particular and shard 0 reports it).
    pub(crate) fn bad(&mut self, file: &Path, format: FileFormat, line: u64, reason: String, ours: Option<bool>) {
        if !ours.unwrap_or(self.shard.index == 0) {
            return;
        }
        self.bad_total += 1;
        if self.bad.len() < self.limits.max_bad_row_details {
            self.bad.push(BadRow { file: file.to_path_buf(), line, reason, format });
        }
    }
}

fn location(file: &Path, format: FileFormat, line: u64) -> String {
    match format {
        FileFormat::Csv => format!("{}:{line}", file.display()),
        FileFormat::Parquet => format!("{} row {line}", file.display()),
    }
}

/// Historical files replayed as ticks in event-time order. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Replay {
    files: Vec<PathBuf>,
    names: Vec<String>,
    table: RowTable,
    next_seq: Vec<u64>,
    pos: usize,
    pass: u64,
    loop_: bool,
    speed: f64,
    bad: Vec<BadRow>,
    bad_total: u64,
    bad_handed_out: usize,
    unlisted_handed_out: bool,
    finished: bool,
}

impl Replay {
    /// Loads this shard's rows of the spec's files with the default [`ReplayLimits`].
    pub fn open(spec: &ReplaySpec, shard: Shard) -> Result<Replay, SourceError> {
        Replay::open_with_limits(spec, shard, ReplayLimits::default())
    }

    /// Loads this shard's rows of the spec's files. Blocking I/O.
    pub fn open_with_limits(spec: &ReplaySpec, shard: Shard, limits: ReplayLimits) -> Result<Replay, SourceError> {
        shard.validate()?;
        if !(spec.speed.is_finite() && (0.0..=MAX_SPEED).contains(&spec.speed)) {
            return Err(SourceError::config(format!("replay.speed {} is outside 0..={MAX_SPEED}", spec.speed)));
        }
        if limits.max_rows >= u32::MAX as usize {
            return Err(SourceError::config("ReplayLimits::max_rows must be below u32::MAX"));
        }
        let plan = Plan::from_mapping(&spec.mapping)?;
        let files = files::expand(&spec.files, limits.max_files)?;
        let mut loader = Loader::new(&plan, shard, limits);
        for file in &files {
            match files::reader_for(file, spec.format)? {
                files::Reader::Csv => csv_file::read(file, &mut loader)?,
                files::Reader::Parquet => parquet_file::read(file, &mut loader)?,
            }
        }
        let Loader { mut table, names, bad, bad_total, .. } = loader;
        table.sort();
        let finished = table.len() == 0;
        Ok(Replay {
            files,
            next_seq: vec![0; names.len()],
            names,
            table,
            pos: 0,
            pass: 0,
            loop_: spec.loop_,
            speed: spec.speed,
            bad,
            bad_total,
            bad_handed_out: 0,
            unlisted_handed_out: false,
            finished,
        })
    }

    /// Appends up to `max` ticks to `out` (not cleared). A batch never spans two passes of a
    /// looping replay: the first batch of a new pass has `new_pass` set. Bad rows not yet
    /// handed out come with the batch (they are all found while opening, so the first batch
    /// carries them).
    pub fn next_batch(&mut self, out: &mut Vec<Tick>, max: usize) -> BatchOutcome {
        let mut o = BatchOutcome { bad_rows: self.bad[self.bad_handed_out..].to_vec(), ..BatchOutcome::default() };
        self.bad_handed_out = self.bad.len();
        if !self.unlisted_handed_out {
            o.bad_rows_unlisted = self.bad_total - self.bad.len() as u64;
            self.unlisted_handed_out = true;
        }
        if self.finished || max == 0 {
            o.finished = self.finished;
            return o;
        }
        let n = self.table.len();
        if self.pos == n {
            // Only reachable when looping (otherwise the replay is finished).
            self.pos = 0;
            self.pass += 1;
            o.new_pass = true;
        }
        let end = n.min(self.pos.saturating_add(max));
        out.reserve(end - self.pos);
        for p in self.pos..end {
            out.push(self.make(p));
        }
        o.produced = end - self.pos;
        self.pos = end;
        if self.pos == n && !self.loop_ {
            self.finished = true;
        }
        o.finished = self.finished;
        o
    }

    /// The next tick, crossing into the next pass when looping; `None` at the end (never,
    /// when looping over at least one row).
    pub fn next_tick(&mut self) -> Option<Tick> {
        if self.finished {
            return None;
        }
        if self.pos == self.table.len() {
            self.pos = 0;
            self.pass += 1;
        }
        let t = self.make(self.pos);
        self.pos += 1;
        if self.pos == self.table.len() && !self.loop_ {
            self.finished = true;
        }
        Some(t)
    }

    fn make(&mut self, pos: usize) -> Tick {
        let (sym, _) = self.table.key(pos);
        let seq = &mut self.next_seq[sym as usize];
        let tick = self.table.tick(pos, self.names[sym as usize].clone(), *seq);
        *seq += 1;
        tick
    }

    /// Bad rows found while loading, with details (at most
    /// [`ReplayLimits::max_bad_row_details`]), in file and line order.
    pub fn bad_rows(&self) -> &[BadRow] {
        &self.bad
    }

    /// All bad rows this replica found, including those beyond the detail limit.
    pub fn bad_rows_total(&self) -> u64 {
        self.bad_total
    }

    /// Rows loaded (ticks per pass).
    pub fn rows(&self) -> usize {
        self.table.len()
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Distinct symbols this replica replays, in order of first appearance in the files.
    pub fn symbols(&self) -> &[String] {
        &self.names
    }

    /// Event times of the first and last tick of a pass, if there are any rows.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let n = self.table.len();
        (n > 0).then(|| (self.table.key(0).1, self.table.key(n - 1).1))
    }

    /// The current pass, from 0; increases each time a looping replay starts over.
    pub fn pass(&self) -> u64 {
        self.pass
    }

    /// Whether no more ticks will come.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// [`Pacing::EventTime`] with the spec's speed, or [`Pacing::Unthrottled`] for speed 0.
    pub fn pacing(&self) -> Pacing {
        if self.speed > 0.0 { Pacing::EventTime { speed: self.speed } } else { Pacing::Unthrottled }
    }
}

impl Iterator for Replay {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        self.next_tick()
    }
}
