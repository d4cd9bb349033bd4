//! How fast the simulator generates ticks, single-threaded.
//!
//! ```text
//! cargo run --release -p ticklake-sources --example simulator_speed [TICKS] [BATCH] [SYMBOLS]
//! ```
//!
//! Generates TICKS ticks (default 50 million) in batches of BATCH (default 4096) into one
//! reused `Vec`, unthrottled, and prints ticks per second. SYMBOLS (default 0) replaces the
//! built-in tickers with that many generated ones (`S0`, `S1`, …).

use std::time::Instant;
use ticklake_api::crd::SimulatorSpec;
use ticklake_sources::{Shard, Simulator};

fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4096);
    let symbols: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let spec = SimulatorSpec {
        symbols: (0..symbols).map(|i| format!("S{i}")).collect(),
        ticks_per_second: 0,
        seed: 42,
        quote_ratio: 0.6,
        start_time: Some("2025-11-24T14:30:00Z".into()),
        max_ticks: Some(total),
    };
    let mut sim = Simulator::new(&spec, Shard::ALL, 0).expect("valid spec");
    let mut out = Vec::with_capacity(batch);
    let mut checksum = 0u64;
    let started = Instant::now();
    let mut n = 0u64;
    loop {
        out.clear();
        let got = sim.fill(&mut out, batch);
        if got == 0 {
            break;
        }
        n += got as u64;
        // Touch the batch so nothing is optimised away.
        checksum = checksum.wrapping_add(out[got - 1].seq).wrapping_add(out[0].ts_us as u64);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} ticks over {} symbols in {secs:.3} s = {:.2} M ticks/s (batch {batch}, checksum {checksum:x}, event time now {})",
        sim.symbols().count(),
        n as f64 / secs / 1e6,
        sim.event_time_us()
    );
}
