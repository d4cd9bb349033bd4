//! Splitting one stream over several producer replicas.
//!
//! A `StockStream` with `replicas: n` runs n workers; worker *i* is given
//! `Shard { index: i, count: n }`. Each symbol belongs to exactly one shard, so the replicas
//! never produce the same (symbol, seq) pair and each symbol's ticks stay in order:
//!
//! * the **simulator** knows its whole symbol list up front and takes the symbols whose
//!   *position* in the list, modulo `count`, equals `index` (round robin: balanced, and easy to
//!   predict from the spec);
//! * **replay** discovers symbols while reading, so it takes the symbols whose
//!   [`symbol_hash`] (FNV-1a 64 of the UTF-8 bytes — stable across versions and machines)
//!   modulo `count` equals `index`.
//!
//! A stream-wide total such as the simulator's `maxTicks` is apportioned by
//! [`apportion`]: exact integer shares proportional to weights, largest remainder first, so
//! the shares always add up to the total and every replica computes the same split.

use crate::SourceError;

/// Most replicas a stream may be split over (the CRD allows 64).
pub const MAX_SHARDS: u32 = 1024;

/// This replica's place among the producers of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// 0-based replica index, `< count`.
    pub index: u32,
    /// Number of replicas, ≥ 1.
    pub count: u32,
}

impl Shard {
    /// The whole stream in one replica.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Checks `index < count` and `1 <= count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Result<Shard, SourceError> {
        let shard = Shard { index, count };
        shard.validate()?;
        Ok(shard)
    }

    pub(crate) fn validate(&self) -> Result<(), SourceError> {
        if self.count == 0 || self.count > MAX_SHARDS {
            return Err(SourceError::config(format!("shard count {} is outside 1..={MAX_SHARDS}", self.count)));
        }
        if self.index >= self.count {
            return Err(SourceError::config(format!(
                "shard index {} is not below the shard count {}",
                self.index, self.count
            )));
        }
        Ok(())
    }

    /// Whether the symbol at `position` of a known list belongs to this shard.
    pub fn owns_position(&self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }

    /// Whether a symbol discovered while reading belongs to this shard (by [`symbol_hash`]).
    pub fn owns_symbol(&self, symbol: &str) -> bool {
        symbol_hash(symbol) % u64::from(self.count) == u64::from(self.index)
    }
}

impl From<(u32, u32)> for Shard {
    /// `(index, count)`; not validated until used.
    fn from((index, count): (u32, u32)) -> Self {
        Shard { index, count }
    }
}

/// FNV-1a 64-bit hash of the symbol's bytes. Stable: part of how replay shards symbols.
pub fn symbol_hash(symbol: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in symbol.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Splits `total` into integer shares proportional to `weights` (largest remainder method,
/// ties to the lower index). The shares add up to `total` exactly; all-zero weights split
/// evenly.
pub fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let (weights, sum): (Vec<u128>, u128) = if sum == 0 {
        (vec![1; weights.len()], weights.len() as u128)
    } else {
        (weights.iter().map(|&w| u128::from(w)).collect(), sum)
    };
    let total = u128::from(total);
    let mut shares: Vec<u128> = weights.iter().map(|w| total * w / sum).collect();
    let given: u128 = shares.iter().sum();
    let mut left = total - given; // < weights.len()
    let mut by_remainder: Vec<(u128, usize)> = weights.iter().enumerate().map(|(i, w)| (total * w % sum, i)).collect();
    // Largest remainder first; equal remainders go to the lower index.
    by_remainder.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &by_remainder {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    // Each share is at most `total`, which came from a u64.
    shares.into_iter().map(|s| s as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_validation() {
        assert!(Shard::new(0, 1).is_ok());
        assert!(Shard::new(3, 4).is_ok());
        assert!(Shard::new(4, 4).is_err());
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(0, MAX_SHARDS + 1).is_err());
    }

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0, 0]), vec![4, 3]);
        assert_eq!(apportion(100, &[3, 1]), vec![75, 25]);
        assert_eq!(apportion(1, &[1, 5]), vec![0, 1]);
        let w = [17, 3, 99, 1, 40];
        for total in [0u64, 1, 2, 99, 1000, 123_456_789, u64::MAX] {
            let s = apportion(total, &w);
            assert_eq!(s.iter().map(|&x| u128::from(x)).sum::<u128>(), u128::from(total));
        }
    }

    #[test]
    fn hash_sharding_partitions() {
        let syms: Vec<String> = (0..500).map(|i| format!("S{i}")).collect();
        let count = 7;
        for s in &syms {
            let owners = (0..count).filter(|&i| Shard { index: i, count }.owns_symbol(s)).count();
            assert_eq!(owners, 1);
        }
        assert_eq!(symbol_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(symbol_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
