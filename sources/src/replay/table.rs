//! The loaded rows, stored compactly and put in event-time order.
//!
//! Every row of one replay has the same kind, so the rows are kept column-wise: the event
//! time (`i64`), an interned symbol id (`u32`) and the kind's field values (`f64` × 2 for a
//! trade, × 4 for a quote, × 7 for a bar; sizes are whole numbers ≤ 2⁵³, exact in an `f64`;
//! NaN marks an absent optional bar field). Ordering adds a `u32` permutation. Per row that is
//! 32 bytes for trades, 48 for quotes and 72 for bars, plus each distinct symbol once — e.g.
//! 20 million bar rows take about 1.4 GB.
//!
//! `RowTable::sort` is a **stable** sort by event time: rows with the same time keep the
//! order in which they were read (file order as listed, then row order within a file).

use ticklake_api::crd::ReplayKind;
use ticklake_api::tick::{Tick, TickBody};

#[derive(Debug, Clone)]
pub(crate) struct RowTable {
    kind: ReplayKind,
    width: usize,
    ts: Vec<i64>,
    sym: Vec<u32>,
    vals: Vec<f64>,
    /// Row indices in event-time order (after [`RowTable::sort`]).
    order: Vec<u32>,
}

impl RowTable {
    pub(crate) fn new(kind: ReplayKind, width: usize) -> RowTable {
        RowTable { kind, width, ts: Vec::new(), sym: Vec::new(), vals: Vec::new(), order: Vec::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Appends a row; `vals` has the table's width.
    pub(crate) fn push(&mut self, ts_us: i64, sym: u32, vals: &[f64]) {
        debug_assert_eq!(vals.len(), self.width);
        self.ts.push(ts_us);
        self.sym.push(sym);
        self.vals.extend_from_slice(vals);
    }

    /// Orders the rows by event time, stably. Already-sorted input (the common case for
    /// tick files) is detected in one pass.
    pub(crate) fn sort(&mut self) {
        self.ts.shrink_to_fit();
        self.sym.shrink_to_fit();
        self.vals.shrink_to_fit();
        // Row indices fit in u32: the loader's row limit is below u32::MAX.
        self.order = (0..self.ts.len() as u32).collect();
        if !self.ts.is_sorted() {
            let ts = &self.ts;
            self.order.sort_by_key(|&i| ts[i as usize]);
        }
    }

    /// The symbol id and event time of the `pos`-th row in event-time order.
    pub(crate) fn key(&self, pos: usize) -> (u32, i64) {
        let i = self.order[pos] as usize;
        (self.sym[i], self.ts[i])
    }

    /// The tick of the `pos`-th row in event-time order.
    pub(crate) fn tick(&self, pos: usize, symbol: String, seq: u64) -> Tick {
        let i = self.order[pos] as usize;
        let v = &self.vals[i * self.width..(i + 1) * self.width];
        let opt = |x: f64| if x.is_nan() { None } else { Some(x) };
        let body = match self.kind {
            ReplayKind::Trade => TickBody::Trade { price: v[0], size: v[1] as u64 },
            ReplayKind::Quote => TickBody::Quote { bid: v[0], bid_size: v[1] as u64, ask: v[2], ask_size: v[3] as u64 },
            ReplayKind::Bar => TickBody::Bar {
                open: v[0],
                high: v[1],
                low: v[2],
                close: v[3],
                adj_close: opt(v[4]),
                volume: v[5],
                close_usd: opt(v[6]),
            },
        };
        Tick { symbol, ts_us: self.ts[i], seq, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_stable_by_time() {
        let mut t = RowTable::new(ReplayKind::Trade, 2);
        for (ts, sym, p) in [(30, 0, 1.0), (10, 1, 2.0), (30, 2, 3.0), (10, 3, 4.0), (20, 4, 5.0)] {
            t.push(ts, sym, &[p, 100.0]);
        }
        t.sort();
        let got: Vec<(u32, i64)> = (0..t.len()).map(|p| t.key(p)).collect();
        assert_eq!(got, [(1, 10), (3, 10), (4, 20), (0, 30), (2, 30)]);
        let tick = t.tick(0, "X".into(), 9);
        assert_eq!(tick.body, TickBody::Trade { price: 2.0, size: 100 });
        assert_eq!((tick.ts_us, tick.seq), (10, 9));
    }
}
