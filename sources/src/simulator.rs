//! A market simulator: trades and quotes for a universe of symbols, in simulated event time.
//!
//! The simulator is a pure, deterministic state machine: build it from a [`SimulatorSpec`], a
//! [`Shard`] and a start time, then pull ticks. It never reads a clock and never sleeps — the
//! worker throttles it according to [`Simulator::pacing`]. The same spec, shard and start time
//! give the same ticks, bit for bit (for a given build: the random generator is
//! [`SmallRng`] seeded with [`SmallRng::seed_from_u64`] from the spec's `seed` mixed with the
//! shard, and the dependency versions are pinned by `Cargo.lock`).
//!
//! # The model
//!
//! **Arrivals and event time.** Ticks arrive as a Poisson process in simulated time. The
//! stream's nominal rate is `ticksPerSecond` (or [`NOMINAL_UNTHROTTLED_RATE`] when that is 0);
//! this replica simulates its symbols' share of it, proportional to their activity weights.
//! Each tick advances event time by an exponential inter-arrival gap of mean
//! `1 / (rate × u(t))`, where `u` is the intraday intensity below. So when the worker sends
//! ticks at [`Pacing::Rate`], event time keeps pace with wall time on average over a session
//! day, racing a little at midday and dawdling at the open and close, where more ticks fall in
//! each event-time second.
//!
//! **Intraday U-shape** ([`intraday_intensity`]). During the US regular session, fixed here at
//! 14:30–21:00 UTC (09:30–16:00 New York standard time; daylight saving is ignored), with
//! `x` the fraction of the session elapsed:
//!
//! ```text
//! u(x) = (1 + 3·(2x − 1)²) / 2      2.0 at the open and the close, 0.5 at mid-session,
//!                                    averaging exactly 1 over the session
//! ```
//!
//! Outside the session (nights, weekends, holidays alike) time simply continues at `u = 1`:
//! no gap is skipped and there is no after-hours lull. Simple, and documented here.
//!
//! **Picking the symbol.** Each tick belongs to one symbol drawn with probability
//! proportional to its weight (Walker's alias method: one random draw, O(1)).
//!
//! **Price.** Each symbol's reference price follows geometric Brownian motion without drift,
//! updated lazily over the event time elapsed since that symbol's previous tick:
//! `ln S += −σ²/2·Δt + σ·√Δt·Z`. Volatility is annualized over **trading time**
//! ([`TRADING_YEAR_SECONDS`] = 252 days × 6.5 h): every simulated second counts as a trading
//! second, nights included. On top, rare jumps arrive as a Poisson process of
//! [`JUMPS_PER_TRADING_DAY`] per symbol per 6.5 simulated hours, each moving the log price by
//! ±1 % to ±5 % (uniform size, either sign). The log price is kept within
//! \[ln 0.01, ln 10 000 000\] so it can never overflow, and every printed price is a whole
//! number of cents, at least \$0.01.
//!
//! **Quotes and trades.** A tick is a quote with probability `quoteRatio`, else a trade.
//! The spread is `price × (0.3 bp + 1 bp × σ) × m`, `m` uniform in \[0.5, 2\], rounded to
//! whole cents and at least one cent, so **bid < ask** always; for AAPL at \$230 that is 1–3
//! cents. A quote shows that bid and ask with sizes in round lots (100 × 1, 2, 3… mostly small,
//! sometimes ×2 or ×5) and, one time in sixteen, an odd lot (1–99 shares). A trade prints at
//! the bid (40 %), at the ask (40 %) or at the mid rounded down to the cent (20 %), for a
//! round-lot size or, one time in four, an odd lot.
//!
//! **Sequence numbers.** `seq` counts each symbol's ticks from 0 up by one; since each symbol
//! belongs to exactly one replica, (symbol, seq) is unique in the stream.
//!
//! # Limits
//!
//! At most [`MAX_SYMBOLS`] symbols and [`MAX_TICKS_PER_SECOND`]; `maxTicks` is a stream total
//! split over the replicas by activity weight (see [`crate::shard::apportion`]), and the
//! simulator also stops, rather than produce an out-of-range timestamp, if simulated time
//! reaches the tick format's upper bound (year 2200).
//!
//! # Speed
//!
//! A tick costs a handful of random draws, one `exp`, one `sqrt` and the `String` clone of the
//! symbol; [`Simulator::fill`] appends a batch into a caller's reused `Vec`. See the
//! `simulator_speed` example.

use crate::SourceError;
use crate::pacing::Pacing;
use crate::shard::{Shard, apportion};
use crate::symbols::{built_in_symbols, profile, symbol_problem};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, Exp1, StandardNormal};
use std::collections::HashSet;
use ticklake_api::crd::SimulatorSpec;
use ticklake_api::tick::{MAX_TS_US, MIN_TS_US, Tick, TickBody};

/// Event-time rate assumed when `ticksPerSecond` is 0 (unthrottled): 100 000 ticks per event
/// second, stream-wide.
pub const NOMINAL_UNTHROTTLED_RATE: f64 = 100_000.0;
/// Highest `ticksPerSecond` accepted (as in the CRD schema).
pub const MAX_TICKS_PER_SECOND: u64 = 100_000_000;
/// Most symbols a simulator accepts (as in the CRD schema).
pub const MAX_SYMBOLS: usize = 10_000;
/// Seconds of trading in a year, the time base of the annualized volatilities.
pub const TRADING_YEAR_SECONDS: f64 = 252.0 * 6.5 * 3600.0;
/// Price jumps per symbol per trading day (6.5 simulated hours).
pub const JUMPS_PER_TRADING_DAY: f64 = 0.1;
/// Smallest and largest jump, as a log-price move.
pub const JUMP_SIZE: (f64, f64) = (0.01, 0.05);
/// Start of the US regular session, microseconds after midnight UTC (14:30).
pub const SESSION_OPEN_US: i64 = (14 * 3600 + 30 * 60) * 1_000_000;
/// End of the US regular session, microseconds after midnight UTC (21:00).
pub const SESSION_CLOSE_US: i64 = 21 * 3600 * 1_000_000;

const DAY_US: i64 = 86_400 * 1_000_000;
const TRADING_DAY_US: f64 = 6.5 * 3600.0 * 1e6;
const US_PER_YEAR: f64 = TRADING_YEAR_SECONDS * 1e6;
const MIN_LOG_PRICE: f64 = -4.605_170_185_988_091; // ln 0.01
const MAX_LOG_PRICE: f64 = 16.118_095_650_958_32; // ln 1e7
/// Depth of the U: intensity at the open relative to the session mean is (1 + D) / (1 + D/3).
const U_DEPTH: f64 = 3.0;

/// Relative arrival intensity at event time `ts_us` (UTC µs): the U-shaped curve during the
/// 14:30–21:00 UTC session, 1 outside it. Averages 1 over the session.
pub fn intraday_intensity(ts_us: i64) -> f64 {
    let tod = ts_us.rem_euclid(DAY_US);
    if !(SESSION_OPEN_US..SESSION_CLOSE_US).contains(&tod) {
        return 1.0;
    }
    let x = (tod - SESSION_OPEN_US) as f64 / (SESSION_CLOSE_US - SESSION_OPEN_US) as f64;
    let y = 2.0 * x - 1.0;
    (1.0 + U_DEPTH * y * y) / (1.0 + U_DEPTH / 3.0)
}

/// One simulated symbol's state.
#[derive(Debug, Clone)]
struct SymState {
    name: String,
    log_price: f64,
    /// −σ²/2 per µs.
    drift_per_us: f64,
    /// σ per √µs.
    sigma_per_sqrt_us: f64,
    /// Spread as a fraction of price, before the random multiplier.
    spread_frac: f64,
    /// Simulated µs (since start) of this symbol's previous tick.
    last_t: f64,
    /// Simulated µs of this symbol's next price jump.
    next_jump_t: f64,
    seq: u64,
}

/// Walker/Vose alias table: O(1) sampling of an index with given weights.
#[derive(Debug, Clone)]
struct AliasTable {
    /// Keep `i` when the low 32 bits of the draw are below `threshold[i]` (≤ 2³²).
    threshold: Vec<u64>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> AliasTable {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let mut threshold = vec![1u64 << 32; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = (scaled[s] * 4_294_967_296.0) as u64;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left (rounding) keeps its own index with certainty.
        AliasTable { threshold, alias }
    }

    #[inline]
    fn pick(&self, r: u64) -> usize {
        let i = (((r >> 32) * self.threshold.len() as u64) >> 32) as usize;
        if (r & 0xFFFF_FFFF) < self.threshold[i] { i } else { self.alias[i] as usize }
    }
}

/// Trade and quote generator for one shard of a `StockStream`. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Simulator {
    rng: SmallRng,
    symbols: Vec<SymState>,
    alias: AliasTable,
    start_us: i64,
    /// Simulated µs since `start_us`.
    t_us: f64,
    mean_gap_us: f64,
    /// Quote when the low 24 bits of a draw are below this.
    quote_threshold: u64,
    jump_rate_per_us: f64,
    rate: f64,
    pacing: Pacing,
    produced: u64,
    quota: Option<u64>,
    done: bool,
}

impl Simulator {
    /// Builds this shard's simulator. `now_us` (UTC µs) is the start time when the spec has
    /// no `startTime`; the core itself never reads the clock.
    pub fn new(spec: &SimulatorSpec, shard: Shard, now_us: i64) -> Result<Simulator, SourceError> {
        shard.validate()?;
        if spec.ticks_per_second > MAX_TICKS_PER_SECOND {
            return Err(SourceError::config(format!(
                "simulator.ticksPerSecond {} exceeds {MAX_TICKS_PER_SECOND}",
                spec.ticks_per_second
            )));
        }
        if !(0.0..=1.0).contains(&spec.quote_ratio) {
            return Err(SourceError::config(format!("simulator.quoteRatio {} is outside 0..=1", spec.quote_ratio)));
        }
        let start_us = match &spec.start_time {
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| SourceError::config(format!("simulator.startTime {text:?} is not RFC 3339: {e}")))?
                .timestamp_micros(),
            None => now_us,
        };
        if !(MIN_TS_US..MAX_TS_US).contains(&start_us) {
            return Err(SourceError::config(format!(
                "simulator start time {start_us} µs is outside 1900-01-01..2200-01-01"
            )));
        }

        let all: Vec<String> =
            if spec.symbols.is_empty() { built_in_symbols().map(String::from).collect() } else { spec.symbols.clone() };
        if all.len() > MAX_SYMBOLS {
            return Err(SourceError::config(format!(
                "simulator.symbols has {} entries; at most {MAX_SYMBOLS} are allowed",
                all.len()
            )));
        }
        let mut seen = HashSet::with_capacity(all.len());
        for s in &all {
            if let Some(problem) = symbol_problem(s) {
                return Err(SourceError::config(format!("simulator.symbols: {problem}")));
            }
            if !seen.insert(s.as_str()) {
                return Err(SourceError::config(format!("simulator.symbols lists {s:?} twice")));
            }
        }

        // Stream-wide weights per shard: they split both the rate and maxTicks.
        let mut shard_weight = vec![0u64; shard.count as usize];
        for (i, s) in all.iter().enumerate() {
            shard_weight[i % shard.count as usize] += u64::from(profile(s).weight);
        }
        let total_weight: u64 = shard_weight.iter().sum();
        let my_weight = shard_weight[shard.index as usize];
        if my_weight == 0 {
            return Err(SourceError::config(format!(
                "shard {} of {} has no symbols: {} symbols cannot be spread over {} replicas",
                shard.index,
                shard.count,
                all.len(),
                shard.count
            )));
        }
        let stream_rate =
            if spec.ticks_per_second == 0 { NOMINAL_UNTHROTTLED_RATE } else { spec.ticks_per_second as f64 };
        let rate = stream_rate * my_weight as f64 / total_weight as f64;
        let quota = spec.max_ticks.map(|m| apportion(m, &shard_weight)[shard.index as usize]);

        let mut rng = SmallRng::seed_from_u64(mix_seed(spec.seed, shard));
        let jump_rate_per_us = JUMPS_PER_TRADING_DAY / TRADING_DAY_US;
        let mut symbols = Vec::new();
        let mut weights = Vec::new();
        for (i, name) in all.iter().enumerate() {
            if !shard.owns_position(i) {
                continue;
            }
            let p = profile(name);
            let sigma2 = p.volatility * p.volatility / US_PER_YEAR;
            symbols.push(SymState {
                name: name.clone(),
                log_price: p.price.ln().clamp(MIN_LOG_PRICE, MAX_LOG_PRICE),
                drift_per_us: -0.5 * sigma2,
                sigma_per_sqrt_us: sigma2.sqrt(),
                spread_frac: 0.000_03 + 0.000_1 * p.volatility,
                last_t: 0.0,
                next_jump_t: next_jump_after(&mut rng, 0.0, jump_rate_per_us),
                seq: 0,
            });
            weights.push(f64::from(p.weight));
        }

        let pacing = if spec.ticks_per_second == 0 { Pacing::Unthrottled } else { Pacing::Rate(rate) };
        Ok(Simulator {
            rng,
            alias: AliasTable::new(&weights),
            symbols,
            start_us,
            t_us: 0.0,
            mean_gap_us: 1e6 / rate,
            quote_threshold: (spec.quote_ratio * (1u64 << 24) as f64).round() as u64,
            jump_rate_per_us,
            rate,
            pacing,
            produced: 0,
            quota,
            done: quota == Some(0),
        })
    }

    /// The next tick, or `None` once this shard's share of `maxTicks` is produced (or
    /// simulated time reached year 2200).
    #[inline]
    pub fn next_tick(&mut self) -> Option<Tick> {
        if self.done {
            return None;
        }
        let tick = self.step();
        if tick.is_none() || Some(self.produced) == self.quota {
            self.done = true;
        }
        tick
    }

    /// Appends up to `n` ticks to `out` and returns how many were appended (fewer than `n`
    /// only when the simulator is finished). `out` is not cleared: reuse one `Vec` and clear
    /// it yourself between batches.
    pub fn fill(&mut self, out: &mut Vec<Tick>, n: usize) -> usize {
        let n = match self.remaining() {
            Some(r) => n.min(usize::try_from(r).unwrap_or(usize::MAX)),
            None => n,
        };
        out.reserve(n);
        for i in 0..n {
            match self.next_tick() {
                Some(t) => out.push(t),
                None => return i,
            }
        }
        n
    }

    /// Whether no more ticks will come.
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// How the worker should throttle: [`Pacing::Rate`] with this shard's share of
    /// `ticksPerSecond`, or [`Pacing::Unthrottled`] when it is 0.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// This shard's event-time tick rate (ticks per simulated second, session average).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The symbols this shard simulates, in spec order.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols.iter().map(|s| s.name.as_str())
    }

    /// Ticks produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// This shard's share of `maxTicks`, if any.
    pub fn quota(&self) -> Option<u64> {
        self.quota
    }

    /// Ticks left before the quota is reached (`None` = unlimited).
    pub fn remaining(&self) -> Option<u64> {
        self.quota.map(|q| q.saturating_sub(self.produced))
    }

    /// Current simulated event time, UTC µs (the last tick's `ts_us`, or the start time).
    pub fn event_time_us(&self) -> i64 {
        self.start_us + self.t_us as i64
    }

    #[cfg(test)]
    fn set_jumps_per_trading_day(&mut self, per_day: f64) {
        self.jump_rate_per_us = per_day / TRADING_DAY_US;
        for s in &mut self.symbols {
            s.next_jump_t = next_jump_after(&mut self.rng, self.t_us, self.jump_rate_per_us);
        }
    }

    #[inline]
    fn step(&mut self) -> Option<Tick> {
        if let Some(q) = self.quota
            && self.produced >= q
        {
            return None;
        }
        // Advance event time by an exponential gap at the current intensity. The intensity
        // is evaluated at the previous tick's time: it changes over hours, gaps are short.
        let u = intraday_intensity(self.start_us + self.t_us as i64);
        let e: f64 = Exp1.sample(&mut self.rng);
        self.t_us += e * self.mean_gap_us / u;
        let ts_us = self.start_us + self.t_us as i64;
        if ts_us >= MAX_TS_US {
            return None;
        }

        let rng = &mut self.rng;
        let idx = self.alias.pick(rng.next_u64());
        let s = &mut self.symbols[idx];
        let t = self.t_us;

        // GBM over the time since this symbol's last tick, then any jumps due by now.
        let dt = t - s.last_t;
        s.last_t = t;
        let z: f64 = StandardNormal.sample(rng);
        let mut lp = s.log_price + s.drift_per_us * dt + s.sigma_per_sqrt_us * dt.sqrt() * z;
        while t >= s.next_jump_t {
            let j: u64 = rng.next_u64();
            let size = JUMP_SIZE.0 + (JUMP_SIZE.1 - JUMP_SIZE.0) * ((j >> 11) as f64 / (1u64 << 53) as f64);
            lp += if j & 1 == 0 { size } else { -size };
            s.next_jump_t = next_jump_after(rng, s.next_jump_t, self.jump_rate_per_us);
        }
        lp = lp.clamp(MIN_LOG_PRICE, MAX_LOG_PRICE);
        s.log_price = lp;

        let cents_f = lp.exp() * 100.0;
        let cents = (cents_f.round() as i64).max(1);
        // One draw decides kind, spread, trade side and size.
        let bits = rng.next_u64();
        let m = 0.5 + 1.5 * ((bits >> 24) & 0xFFFF) as f64 / 65_536.0;
        let spread = ((cents_f * s.spread_frac * m).round() as i64).max(1);
        let bid = (cents - spread / 2).max(1);
        let ask = bid + spread;

        let body = if (bits & 0xFF_FFFF) < self.quote_threshold {
            let b2 = rng.next_u64();
            TickBody::Quote {
                bid: bid as f64 / 100.0,
                bid_size: quote_size(b2 as u32),
                ask: ask as f64 / 100.0,
                ask_size: quote_size((b2 >> 32) as u32),
            }
        } else {
            let rest = bits >> 40; // 24 bits
            let side = rest & 0xFF;
            let price_c = if side < 102 {
                bid
            } else if side < 204 {
                ask
            } else {
                bid + spread / 2
            };
            TickBody::Trade { price: price_c as f64 / 100.0, size: trade_size((rest >> 8) as u32) }
        };
        let seq = s.seq;
        s.seq += 1;
        self.produced += 1;
        Some(Tick { symbol: s.name.clone(), ts_us, seq, body })
    }
}

impl Iterator for Simulator {
    type Item = Tick;

    #[inline]
    fn next(&mut self) -> Option<Tick> {
        self.next_tick()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining() {
            _ if self.done => (0, Some(0)),
            Some(r) => (0, usize::try_from(r).ok()),
            None => (usize::MAX, None),
        }
    }
}

/// A round-lot multiplier: mostly 1, sometimes 2 or 5.
const LOT_MULT: [u64; 4] = [1, 1, 2, 5];

/// Trade size from 16 random bits: an odd lot (1–99) one time in four, else 100 × lots,
/// lots geometric (1, 2, 3… halving) times 1, 2 or 5.
#[inline]
fn trade_size(r: u32) -> u64 {
    if r & 0x3 == 0 {
        1 + u64::from((r >> 2) & 0x3FFF) % 99
    } else {
        let lots = 1 + u64::from(((r >> 2) | 0x100).trailing_zeros().min(8));
        100 * lots * LOT_MULT[((r >> 10) & 3) as usize]
    }
}

/// Quote size from 32 random bits: an odd lot one time in sixteen, else round lots as above.
#[inline]
fn quote_size(r: u32) -> u64 {
    if r & 0xF == 0 {
        1 + u64::from((r >> 4) & 0x3FFF) % 99
    } else {
        let lots = 1 + u64::from(((r >> 4) | 0x100).trailing_zeros().min(8));
        100 * lots * LOT_MULT[((r >> 12) & 3) as usize]
    }
}

fn next_jump_after(rng: &mut SmallRng, t: f64, rate_per_us: f64) -> f64 {
    if rate_per_us > 0.0 {
        let e: f64 = Exp1.sample(rng);
        // Guarantee progress even if the exponential draw is 0.
        t + (e / rate_per_us).max(1.0)
    } else {
        f64::INFINITY
    }
}

/// SplitMix64 of the seed and the shard, so replicas draw independent streams.
fn mix_seed(seed: u64, shard: Shard) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix(seed ^ splitmix((u64::from(shard.index) << 32) | u64::from(shard.count)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MON_1430: &str = "2025-11-24T14:30:00Z";

    fn spec() -> SimulatorSpec {
        SimulatorSpec {
            symbols: vec![],
            ticks_per_second: 1000,
            seed: 42,
            quote_ratio: 0.6,
            start_time: Some(MON_1430.into()),
            max_ticks: None,
        }
    }

    fn sim(spec: &SimulatorSpec) -> Simulator {
        Simulator::new(spec, Shard::ALL, 0).unwrap()
    }

    fn start_us() -> i64 {
        chrono::DateTime::parse_from_rfc3339(MON_1430).unwrap().timestamp_micros()
    }

    #[test]
    fn deterministic_per_seed_and_different_across_seeds() {
        let a: Vec<Tick> = sim(&spec()).take(20_000).collect();
        let b: Vec<Tick> = sim(&spec()).take(20_000).collect();
        assert_eq!(a, b);
        let mut other = spec();
        other.seed = 43;
        let c: Vec<Tick> = sim(&other).take(20_000).collect();
        assert_ne!(a, c);
        // Batches and single ticks are the same stream.
        let mut s = sim(&spec());
        let mut batch = Vec::new();
        assert_eq!(s.fill(&mut batch, 12_345), 12_345);
        batch.extend(s.by_ref().take(20_000 - 12_345));
        assert_eq!(a, batch);
        // Start time "now" is taken from the caller.
        let mut no_start = spec();
        no_start.start_time = None;
        let t = Simulator::new(&no_start, Shard::ALL, 1_700_000_000_000_000).unwrap().next_tick().unwrap();
        assert!(t.ts_us >= 1_700_000_000_000_000 && t.ts_us < 1_700_000_001_000_000);
    }

    #[test]
    fn seq_is_contiguous_per_symbol_and_time_never_goes_back() {
        let mut next: HashMap<String, u64> = HashMap::new();
        let mut last_ts = i64::MIN;
        for t in sim(&spec()).take(200_000) {
            let want = next.entry(t.symbol.clone()).or_insert(0);
            assert_eq!(t.seq, *want, "{}", t.symbol);
            *want += 1;
            assert!(t.ts_us >= last_ts);
            last_ts = t.ts_us;
        }
        assert_eq!(next.len(), BUILT_IN_LEN);
    }

    const BUILT_IN_LEN: usize = crate::symbols::BUILT_IN.len();

    /// Log-returns over ≥ 5 min of event time, normalised by elapsed time, recover the
    /// configured volatility (jumps off: they are a separate, rare component). Five minutes
    /// keep the bid/ask bounce and cent rounding of trade prints (≈ 1 % of the variance at
    /// this horizon for a \$70, low-volatility name) out of the estimate.
    #[test]
    fn realized_volatility_matches_configured() {
        for (symbol, vol) in [("NVDA", 0.50), ("KO", 0.14)] {
            let mut sp = spec();
            sp.symbols = vec![symbol.into()];
            sp.ticks_per_second = 1;
            sp.quote_ratio = 0.0;
            let mut s = sim(&sp);
            s.set_jumps_per_trading_day(0.0);
            let (mut sum_r2, mut sum_dt, mut n) = (0.0, 0.0, 0u64);
            let mut prev: Option<(i64, f64)> = None;
            for t in s.take(5_000_000) {
                let TickBody::Trade { price, .. } = t.body else { panic!("quote") };
                match prev {
                    None => prev = Some((t.ts_us, price)),
                    Some((ts0, p0)) if t.ts_us - ts0 >= 300_000_000 => {
                        sum_r2 += (price / p0).ln().powi(2);
                        sum_dt += (t.ts_us - ts0) as f64 / 1e6;
                        n += 1;
                        prev = Some((t.ts_us, price));
                    }
                    _ => {}
                }
            }
            let realized = (sum_r2 / sum_dt * TRADING_YEAR_SECONDS).sqrt();
            assert!(n > 15_000, "{n}");
            assert!((realized / vol - 1.0).abs() < 0.05, "{symbol}: realized {realized} vs {vol}");
        }
    }

    #[test]
    fn jumps_arrive_at_the_documented_rate() {
        let mut sp = spec();
        sp.symbols = vec!["KO".into()];
        sp.ticks_per_second = 1;
        sp.quote_ratio = 0.0;
        let mut s = sim(&sp);
        s.set_jumps_per_trading_day(10.0);
        let ticks: Vec<Tick> = s.take(1_000_000).collect();
        let price = |t: &Tick| match t.body {
            TickBody::Trade { price, .. } => price,
            _ => unreachable!(),
        };
        // Diffusion over ~1 s is ~0.01 %, so returns of ≥ 0.9 % are jumps.
        let jumps = ticks.windows(2).filter(|w| (price(&w[1]) / price(&w[0])).ln().abs() > 0.009).count();
        let days = (ticks.last().unwrap().ts_us - ticks[0].ts_us) as f64 / TRADING_DAY_US;
        let expected = 10.0 * days;
        assert!((jumps as f64 / expected - 1.0).abs() < 0.25, "{jumps} jumps, expected {expected}");
        let max = ticks.windows(2).map(|w| (price(&w[1]) / price(&w[0])).ln().abs()).fold(0.0, f64::max);
        assert!(max < 0.1, "{max}");
    }

    #[test]
    fn prices_positive_whole_cents_and_bid_below_ask() {
        let mut s = sim(&spec());
        // Push one symbol to the floor, with high volatility, to exercise the clamp.
        s.symbols[0].log_price = (0.015f64).ln();
        s.symbols[0].sigma_per_sqrt_us *= 20.0;
        s.set_jumps_per_trading_day(200.0);
        let cents = |p: f64| ((p * 100.0).round() - p * 100.0).abs() < 1e-6;
        let mut saw_floor = false;
        for t in s.take(500_000) {
            match t.body {
                TickBody::Trade { price, size } => {
                    assert!(price >= 0.01 && cents(price), "{t:?}");
                    assert!(size >= 1);
                    saw_floor |= price == 0.01;
                }
                TickBody::Quote { bid, bid_size, ask, ask_size } => {
                    assert!(bid >= 0.01 && bid < ask && cents(bid) && cents(ask), "{t:?}");
                    assert!(bid_size >= 1 && ask_size >= 1);
                }
                TickBody::Bar { .. } => panic!("bar"),
            }
        }
        assert!(saw_floor, "the floor was never reached");
    }

    #[test]
    fn spreads_and_sizes_look_like_a_market() {
        let (mut round, mut odd, mut aapl_spreads) = (0u64, 0u64, Vec::new());
        for t in sim(&spec()).take(300_000) {
            match t.body {
                TickBody::Trade { size, .. } => {
                    if size % 100 == 0 {
                        round += 1
                    } else {
                        odd += 1
                    }
                }
                TickBody::Quote { bid, ask, bid_size, ask_size } => {
                    if t.symbol == "AAPL" {
                        aapl_spreads.push(((ask - bid) * 100.0).round() as i64);
                    }
                    assert!(bid_size <= 100 * 9 * 5 && ask_size <= 100 * 9 * 5);
                }
                _ => unreachable!(),
            }
        }
        let odd_share = odd as f64 / (round + odd) as f64;
        assert!((0.2..0.3).contains(&odd_share), "{odd_share}");
        let mean = aapl_spreads.iter().sum::<i64>() as f64 / aapl_spreads.len() as f64;
        assert!((1.0..4.0).contains(&mean), "AAPL mean spread {mean} cents");
    }

    #[test]
    fn quote_share_follows_quote_ratio() {
        for ratio in [0.0, 0.25, 0.6, 1.0] {
            let mut sp = spec();
            sp.quote_ratio = ratio;
            let n = 400_000;
            let quotes = sim(&sp).take(n).filter(|t| matches!(t.body, TickBody::Quote { .. })).count();
            let share = quotes as f64 / n as f64;
            assert!((share - ratio).abs() < 0.005, "ratio {ratio}: share {share}");
        }
    }

    #[test]
    fn intraday_volume_is_u_shaped() {
        let mut sp = spec();
        sp.ticks_per_second = 20;
        let open = start_us();
        let close = open + 6 * 3_600_000_000 + 1_800_000_000;
        let half_hour = 1_800_000_000;
        let mut first = 0u64;
        let mut mid = 0u64;
        let mut last = 0u64;
        let midday = open + 3 * 3_600_000_000; // 17:30–18:00
        for t in sim(&sp).take_while(|t| t.ts_us < close) {
            if t.ts_us < open + half_hour {
                first += 1;
            } else if (midday..midday + half_hour).contains(&t.ts_us) {
                mid += 1;
            } else if t.ts_us >= close - half_hour {
                last += 1;
            }
        }
        // The curve gives ≈ 1.78 vs 0.50 vs 1.78 of the mean rate.
        assert!(first as f64 > 3.0 * mid as f64, "open {first}, midday {mid}");
        assert!(last as f64 > 3.0 * mid as f64, "close {last}, midday {mid}");
        let mean_per_half_hour = 20.0 * 1800.0;
        assert!((mid as f64 / mean_per_half_hour - 0.51).abs() < 0.05, "{mid}");
        // The curve itself.
        assert!((intraday_intensity(open) - 2.0).abs() < 1e-9);
        assert!((intraday_intensity(open + 11_700_000_000) - 0.5).abs() < 1e-9);
        assert_eq!(intraday_intensity(open - 1), 1.0);
        assert_eq!(intraday_intensity(close), 1.0);
        let avg: f64 = (0..23_400).map(|s| intraday_intensity(open + s * 1_000_000)).sum::<f64>() / 23_400.0;
        assert!((avg - 1.0).abs() < 1e-3, "{avg}");
    }

    #[test]
    fn sharding_partitions_symbols_and_max_ticks() {
        let mut sp = spec();
        sp.max_ticks = Some(100_003);
        let all: Vec<String> = crate::symbols::built_in_symbols().map(String::from).collect();
        for count in 1..=6u32 {
            let mut union: Vec<String> = Vec::new();
            let mut total = 0u64;
            let mut rate = 0.0;
            for index in 0..count {
                let s = Simulator::new(&sp, Shard::new(index, count).unwrap(), 0).unwrap();
                let mine: Vec<String> = s.symbols().map(String::from).collect();
                for (pos, name) in all.iter().enumerate() {
                    assert_eq!(mine.contains(name), pos % count as usize == index as usize);
                }
                rate += s.rate();
                union.extend(mine);
                let produced: Vec<Tick> = s.collect();
                assert!(produced.iter().all(|t| union.contains(&t.symbol)));
                total += produced.len() as u64;
            }
            union.sort();
            let mut want = all.clone();
            want.sort();
            assert_eq!(union, want, "count {count}");
            assert_eq!(total, 100_003, "count {count}");
            assert!((rate - 1000.0).abs() < 1e-6);
        }
        // Replicas draw different streams.
        let a = Simulator::new(&sp, Shard::new(0, 2).unwrap(), 0).unwrap().next_tick();
        let b = Simulator::new(&sp, Shard::new(1, 2).unwrap(), 0).unwrap().next_tick();
        assert_ne!(a.unwrap().symbol, b.unwrap().symbol);
    }

    #[test]
    fn max_ticks_ends_the_stream() {
        let mut sp = spec();
        sp.max_ticks = Some(1_000);
        let mut s = sim(&sp);
        let mut out = Vec::new();
        assert_eq!(s.fill(&mut out, 600), 600);
        assert_eq!(s.fill(&mut out, 600), 400);
        assert!(s.is_finished());
        assert_eq!(s.next_tick(), None);
        assert_eq!(s.fill(&mut out, 10), 0);
        assert_eq!(out.len(), 1_000);
    }

    #[test]
    fn event_time_follows_the_rate() {
        // Outside the session u = 1: 10 000 ticks at 1000/s span ≈ 10 s.
        let mut sp = spec();
        sp.start_time = Some("2025-11-24T02:00:00Z".into());
        let ticks: Vec<Tick> = sim(&sp).take(10_000).collect();
        let span = (ticks.last().unwrap().ts_us - ticks[0].ts_us) as f64 / 1e6;
        assert!((span - 10.0).abs() < 0.5, "{span}");
        // Unthrottled: nominal 100 000/s of event time, and no throttle requested.
        sp.ticks_per_second = 0;
        let s = sim(&sp);
        assert_eq!(s.pacing(), Pacing::Unthrottled);
        assert_eq!(s.rate(), NOMINAL_UNTHROTTLED_RATE);
        let ticks: Vec<Tick> = s.take(100_000).collect();
        let span = (ticks.last().unwrap().ts_us - ticks[0].ts_us) as f64 / 1e6;
        assert!((span - 1.0).abs() < 0.05, "{span}");
        assert_eq!(sim(&spec()).pacing(), Pacing::Rate(1000.0));
    }

    #[test]
    fn bad_specs_are_refused_with_reasons() {
        let err = |f: &dyn Fn(&mut SimulatorSpec)| {
            let mut sp = spec();
            f(&mut sp);
            Simulator::new(&sp, Shard::ALL, 0).unwrap_err().to_string()
        };
        assert!(err(&|s| s.quote_ratio = 1.5).contains("quoteRatio"));
        assert!(err(&|s| s.quote_ratio = f64::NAN).contains("quoteRatio"));
        assert!(err(&|s| s.ticks_per_second = MAX_TICKS_PER_SECOND + 1).contains("ticksPerSecond"));
        assert!(err(&|s| s.start_time = Some("yesterday".into())).contains("startTime"));
        assert!(err(&|s| s.start_time = Some("2300-01-01T00:00:00Z".into())).contains("outside"));
        assert!(err(&|s| s.symbols = vec!["A".into(), "A".into()]).contains("twice"));
        assert!(err(&|s| s.symbols = vec!["A/B".into()]).contains("'/'"));
        assert!(err(&|s| s.symbols = vec![String::new()]).contains("empty"));
        assert!(err(&|s| s.symbols = (0..10_001).map(|i| format!("S{i}")).collect()).contains("10000"));
        let mut sp = spec();
        sp.symbols = vec!["A".into(), "B".into()];
        let e = Simulator::new(&sp, Shard::new(2, 3).unwrap(), 0).unwrap_err().to_string();
        assert!(e.contains("no symbols"), "{e}");
        assert!(Simulator::new(&sp, Shard { index: 1, count: 1 }, 0).is_err());
        // max_ticks smaller than the replica count: some shards produce nothing.
        sp.max_ticks = Some(1);
        let a = Simulator::new(&sp, Shard::new(0, 2).unwrap(), 0).unwrap().count();
        let b = Simulator::new(&sp, Shard::new(1, 2).unwrap(), 0).unwrap().count();
        assert_eq!(a + b, 1);
    }

    #[test]
    fn alias_table_samples_by_weight() {
        let w = [1.0, 2.0, 7.0, 0.5];
        let table = AliasTable::new(&w);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u64; 4];
        let n = 2_000_000;
        for _ in 0..n {
            counts[table.pick(rng.next_u64())] += 1;
        }
        let sum: f64 = w.iter().sum();
        for i in 0..4 {
            let share = counts[i] as f64 / n as f64;
            assert!((share - w[i] / sum).abs() < 0.002, "{i}: {share}");
        }
    }
}
