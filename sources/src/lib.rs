//! # ticklake-sources
//!
//! Where ticks come from. A producer worker builds a [`Source`] from its `StockStream`'s
//! [`SourceSpec`] and pulls batches of [`Tick`]s from it, to encode and produce into Kafka:
//!
//! * [`Simulator`] — a deterministic market simulator: about 50 built-in US tickers (or your
//!   own list), geometric Brownian motion with rare jumps, trades and quotes with realistic
//!   spreads and lot sizes, U-shaped intraday activity, simulated event time.
//! * [`Replay`] — historical CSV (optionally gzipped) or Parquet files, mapped column by
//!   column (or by the `kaggleIndexProcessed` preset), replayed in event-time order, with bad
//!   rows reported and skipped.
//!
//! ## Pure cores, I/O at the edges
//!
//! Nothing here reads a clock or sleeps. The simulator is a pure state machine (the caller
//! passes "now" for a spec without `startTime`); replay does its file I/O once, in
//! [`Replay::open`], and is pure afterwards. Pacing is arithmetic: a source states its
//! [`Pacing`] and the worker asks [`rate_delay`] or an [`EventTimePacer`] how long to wait,
//! passing the wall time it measured itself.
//!
//! ## Driving a source
//!
//! ```no_run
//! # use ticklake_sources::*;
//! # fn produce(_: &[ticklake_api::tick::Tick]) {}
//! # fn run(spec: &ticklake_api::crd::SourceSpec, now_us: i64) -> Result<(), SourceError> {
//! let mut source = Source::from_spec(spec, Shard::new(0, 1)?, now_us)?;
//! let mut batch = Vec::with_capacity(1024);
//! loop {
//!     batch.clear();
//!     let outcome = source.next_batch(&mut batch, 1024)?;
//!     for bad in &outcome.bad_rows {
//!         eprintln!("skipped {bad}");
//!     }
//!     // … wait as source.pacing() says, then:
//!     produce(&batch);
//!     if outcome.finished {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Sharding
//!
//! A stream with several producer replicas gives each a [`Shard`]; each symbol belongs to
//! exactly one replica, so (symbol, seq) stays unique across the stream. See [`shard`].
//!
//! ## Limits
//!
//! Every input is bounded: symbols and rate of the simulator (the CRD's own bounds), files,
//! rows, symbols, bad-row details and record size of a replay ([`ReplayLimits`]), shard
//! count ([`shard::MAX_SHARDS`]). Exceeding one is an error that names it.

mod error;
pub mod pacing;
pub mod replay;
pub mod shard;
pub mod simulator;
pub mod symbols;

pub use error::{BadRow, FileFormat, SourceError};
pub use pacing::{EventTimePacer, Pacing, event_time_delay, rate_delay};
pub use replay::{Replay, ReplayLimits};
pub use shard::Shard;
pub use simulator::Simulator;

use ticklake_api::crd::SourceSpec;
use ticklake_api::tick::Tick;

/// What one [`Source::next_batch`] call did, besides appending ticks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Ticks appended to the caller's vector.
    pub produced: usize,
    /// Rows skipped since the previous call, with file, line and reason (replay only).
    pub bad_rows: Vec<BadRow>,
    /// Bad rows skipped without details (beyond [`ReplayLimits::max_bad_row_details`]);
    /// reported once, with the first batch.
    pub bad_rows_unlisted: u64,
    /// This batch starts a new pass of a looping replay: event time went back to the start
    /// (an [`EventTimePacer`] re-anchors by itself; other pacing should reset too).
    pub new_pass: bool,
    /// The source is exhausted (`maxTicks` reached, or the end of a non-looping replay):
    /// this batch holds the last ticks, and later calls produce none.
    pub finished: bool,
}

/// A tick source built from a `StockStream`'s `source`.
#[derive(Debug, Clone)]
pub enum Source {
    Simulator(Simulator),
    Replay(Replay),
}

impl Source {
    /// Builds the source the spec names — exactly one of `simulator` or `replay` must be set.
    /// `shard` is this replica's place among the stream's producers (`(index, count)` works);
    /// `now_us` (UTC µs) starts a simulator whose spec has no `startTime`. Opening a replay
    /// reads all its files (blocking).
    pub fn from_spec(spec: &SourceSpec, shard: impl Into<Shard>, now_us: i64) -> Result<Source, SourceError> {
        let shard = shard.into();
        match (&spec.simulator, &spec.replay) {
            (Some(sim), None) => Ok(Source::Simulator(Simulator::new(sim, shard, now_us)?)),
            (None, Some(replay)) => Ok(Source::Replay(Replay::open(replay, shard)?)),
            (Some(_), Some(_)) => Err(SourceError::config("source sets both simulator and replay; set exactly one")),
            (None, None) => Err(SourceError::config("source sets neither simulator nor replay; set exactly one")),
        }
    }

    /// Appends up to `max` ticks to `out` (which is not cleared). Ticks of one symbol come in
    /// `seq` order. Once `finished` has been reported, calls append nothing. Errors are
    /// reserved for sources that read while running; the current ones do all their I/O when
    /// built.
    pub fn next_batch(&mut self, out: &mut Vec<Tick>, max: usize) -> Result<BatchOutcome, SourceError> {
        match self {
            Source::Simulator(s) => {
                let produced = s.fill(out, max);
                Ok(BatchOutcome { produced, finished: s.is_finished(), ..Default::default() })
            }
            Source::Replay(r) => Ok(r.next_batch(out, max)),
        }
    }

    /// How the worker should pace this source: the simulator wants [`Pacing::Rate`] (its
    /// replica's share of `ticksPerSecond`) or [`Pacing::Unthrottled`] (`ticksPerSecond: 0`);
    /// a replay wants [`Pacing::EventTime`] (`speed > 0`) or [`Pacing::Unthrottled`].
    pub fn pacing(&self) -> Pacing {
        match self {
            Source::Simulator(s) => s.pacing(),
            Source::Replay(r) => r.pacing(),
        }
    }

    /// Whether no more ticks will come.
    pub fn is_finished(&self) -> bool {
        match self {
            Source::Simulator(s) => s.is_finished(),
            Source::Replay(r) => r.is_finished(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticklake_api::crd::SimulatorSpec;

    fn sim_spec(max_ticks: Option<u64>) -> SimulatorSpec {
        SimulatorSpec {
            symbols: vec![],
            ticks_per_second: 500,
            seed: 1,
            quote_ratio: 0.5,
            start_time: Some("2025-01-02T14:30:00Z".into()),
            max_ticks,
        }
    }

    #[test]
    fn source_from_spec_drives_a_simulator_to_its_end() {
        let spec = SourceSpec { simulator: Some(sim_spec(Some(2_500))), replay: None };
        let mut src = Source::from_spec(&spec, (0, 1), 0).unwrap();
        assert_eq!(src.pacing(), Pacing::Rate(500.0));
        let mut out = Vec::new();
        let a = src.next_batch(&mut out, 1_000).unwrap();
        assert_eq!((a.produced, a.finished), (1_000, false));
        src.next_batch(&mut out, 1_000).unwrap();
        let c = src.next_batch(&mut out, 1_000).unwrap();
        assert_eq!((c.produced, c.finished), (500, true));
        assert!(src.is_finished());
        let d = src.next_batch(&mut out, 1_000).unwrap();
        assert_eq!((d.produced, d.finished), (0, true));
        assert_eq!(out.len(), 2_500);
    }

    #[test]
    fn source_spec_must_name_exactly_one_source() {
        let none = SourceSpec { simulator: None, replay: None };
        assert!(Source::from_spec(&none, Shard::ALL, 0).unwrap_err().to_string().contains("neither"));
        let both = SourceSpec {
            simulator: Some(sim_spec(None)),
            replay: Some(ticklake_api::crd::ReplaySpec {
                files: vec!["x.csv".into()],
                format: Default::default(),
                mapping: Default::default(),
                speed: 0.0,
                loop_: false,
            }),
        };
        assert!(Source::from_spec(&both, Shard::ALL, 0).unwrap_err().to_string().contains("both"));
        let spec = SourceSpec { simulator: Some(sim_spec(None)), replay: None };
        assert!(Source::from_spec(&spec, (2, 2), 0).is_err());
    }
}
