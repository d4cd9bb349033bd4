//! The simulator's universe: which symbols exist, what they cost, how wild and how busy they
//! are.
//!
//! [`BUILT_IN`] lists about 50 liquid US names (large caps plus two index ETFs) with a
//! plausible starting price (late-2025 ballpark), an **annualized volatility** (0.14 for a
//! staple or an index ETF up to 0.70 for a meme-ish name), and a relative **activity weight**:
//! a symbol with weight 100 gets twice the ticks of one with weight 50. The numbers are
//! illustrative, not market data.
//!
//! A symbol that is not in the table (a custom `symbols` list may name anything) gets a
//! profile derived from a hash of its name — stable across runs, independent of the seed:
//! price log-uniform in \$10–\$500, volatility 0.20–0.60, weight 10–40.

use crate::shard::symbol_hash;
use ticklake_api::tick::MAX_SYMBOL_LEN;

/// How one simulated symbol behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SymbolProfile {
    /// Starting price in dollars.
    pub price: f64,
    /// Annualized volatility of log returns (0.25 = 25 %/√year of trading time).
    pub volatility: f64,
    /// Relative tick activity, ≥ 1.
    pub weight: u32,
}

/// (ticker, starting price, annualized volatility, activity weight)
pub const BUILT_IN: &[(&str, f64, f64, u32)] = &[
    ("AAPL", 230.0, 0.25, 100),
    ("MSFT", 420.0, 0.22, 80),
    ("NVDA", 180.0, 0.50, 120),
    ("AMZN", 220.0, 0.30, 80),
    ("GOOGL", 175.0, 0.28, 70),
    ("GOOG", 176.0, 0.28, 40),
    ("META", 600.0, 0.35, 60),
    ("TSLA", 350.0, 0.60, 100),
    ("BRK.B", 470.0, 0.15, 20),
    ("JPM", 240.0, 0.22, 40),
    ("V", 330.0, 0.18, 30),
    ("UNH", 350.0, 0.30, 30),
    ("XOM", 115.0, 0.22, 30),
    ("JNJ", 155.0, 0.15, 20),
    ("WMT", 95.0, 0.18, 30),
    ("MA", 550.0, 0.20, 20),
    ("PG", 165.0, 0.15, 20),
    ("AVGO", 330.0, 0.45, 60),
    ("HD", 380.0, 0.20, 20),
    ("CVX", 150.0, 0.22, 20),
    ("LLY", 800.0, 0.30, 30),
    ("MRK", 95.0, 0.22, 20),
    ("ABBV", 190.0, 0.22, 20),
    ("KO", 70.0, 0.14, 20),
    ("PEP", 150.0, 0.16, 20),
    ("COST", 900.0, 0.20, 20),
    ("ADBE", 380.0, 0.32, 20),
    ("CRM", 260.0, 0.32, 20),
    ("NFLX", 1100.0, 0.38, 30),
    ("AMD", 160.0, 0.50, 70),
    ("INTC", 22.0, 0.45, 50),
    ("CSCO", 60.0, 0.20, 20),
    ("ORCL", 200.0, 0.35, 30),
    ("BAC", 45.0, 0.25, 40),
    ("WFC", 75.0, 0.25, 20),
    ("DIS", 110.0, 0.25, 20),
    ("MCD", 300.0, 0.16, 15),
    ("NKE", 75.0, 0.30, 20),
    ("PFE", 26.0, 0.22, 30),
    ("T", 27.0, 0.18, 20),
    ("VZ", 42.0, 0.17, 20),
    ("IBM", 250.0, 0.22, 15),
    ("QCOM", 160.0, 0.35, 20),
    ("TXN", 180.0, 0.28, 15),
    ("GS", 600.0, 0.25, 15),
    ("CAT", 380.0, 0.27, 15),
    ("BA", 180.0, 0.35, 20),
    ("PLTR", 120.0, 0.70, 80),
    ("UBER", 80.0, 0.38, 30),
    ("COIN", 280.0, 0.70, 30),
    ("SPY", 590.0, 0.14, 150),
    ("QQQ", 510.0, 0.18, 100),
];

/// The built-in tickers, in table order.
pub fn built_in_symbols() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|e| e.0)
}

/// The profile of `symbol`: from [`BUILT_IN`] when listed there, else derived from its name.
pub fn profile(symbol: &str) -> SymbolProfile {
    if let Some(&(_, price, volatility, weight)) = BUILT_IN.iter().find(|e| e.0 == symbol) {
        return SymbolProfile { price, volatility, weight };
    }
    let h = symbol_hash(symbol);
    // Three independent-looking fractions in [0, 1) from disjoint bits of the hash.
    let f = |shift: u32| ((h >> shift) & 0xFFFF) as f64 / 65_536.0;
    SymbolProfile {
        price: (10f64.ln() + f(0) * (500f64.ln() - 10f64.ln())).exp(),
        volatility: 0.20 + 0.40 * f(16),
        weight: 10 + ((h >> 32) % 31) as u32,
    }
}

/// Why `symbol` cannot be a tick symbol, if it cannot (same rules as the tick decoder).
pub fn symbol_problem(symbol: &str) -> Option<String> {
    if symbol.is_empty() {
        return Some("symbol is empty".into());
    }
    if symbol.len() > MAX_SYMBOL_LEN {
        return Some(format!("symbol {symbol:?} is longer than {MAX_SYMBOL_LEN} bytes"));
    }
    if symbol.chars().any(|c| c.is_control() || c == '/' || c == '=') {
        return Some(format!("symbol {symbol:?} contains a control character, '/' or '='"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_is_sane() {
        assert!(BUILT_IN.len() >= 50);
        let mut names: Vec<&str> = built_in_symbols().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILT_IN.len(), "duplicate ticker");
        for &(s, p, v, w) in BUILT_IN {
            assert!(symbol_problem(s).is_none(), "{s}");
            assert!(p > 1.0 && (0.1..=0.8).contains(&v) && w >= 1, "{s}");
        }
    }

    #[test]
    fn derived_profiles_are_stable_and_in_range() {
        let p = profile("ZZZZ");
        assert_eq!(p, profile("ZZZZ"));
        assert!((10.0..=500.0).contains(&p.price));
        assert!((0.2..=0.6).contains(&p.volatility));
        assert!((10..=40).contains(&p.weight));
        assert_eq!(profile("AAPL").price, 230.0);
    }
}
