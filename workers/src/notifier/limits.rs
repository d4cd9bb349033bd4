//! The notifier's limits, each with a reason, and the two small clocks it keeps: a per-minute
//! rate limit and retry backoff. Pure: times are passed in (ms since the epoch).

use std::collections::VecDeque;

/// Messages per `ReceiveMessage` (SQS's maximum).
pub const RECEIVE_MAX_MESSAGES: i32 = 10;
/// Longest long poll (SQS's maximum); shorter when something is due sooner.
pub const RECEIVE_WAIT_SECONDS: i64 = 20;
/// Objects held in memory at most (received, not yet delivered). When full the worker stops
/// receiving; the rest waits in the queue. Also the most objects one digest covers: a full
/// buffer sends its digest early.
pub const MAX_HELD_OBJECTS: usize = 10_000;
/// Objects listed by name in a message; the totals cover all, the rest are "and N more".
pub const MAX_LISTED: usize = 50;
/// Partition lines in a digest; the rest are "and N more partitions".
pub const MAX_PARTITION_LINES: usize = 24;
/// A received message is kept hidden this long past when its delivery is due, in case the
/// delivery takes a while.
pub const GRACE_MS: i64 = 60_000;
/// Hiding is extended when less than this is left (or half the queue's visibility timeout, if
/// shorter).
pub const EXTEND_MARGIN_MS: i64 = 20_000;
/// SQS hides a message at most 12 hours after it was received: digests are sent early when the
/// oldest held message gets within this of that limit.
pub const HOLD_LIMIT_MS: i64 = 12 * 3600 * 1000 - 10 * 60 * 1000;
/// Retry backoff of a failed delivery: from 1 s, doubling, at most a minute, equal jitter.
pub const BACKOFF_MIN_MS: i64 = 1_000;
pub const BACKOFF_MAX_MS: i64 = 60_000;
/// Attempts of a delivery before it is abandoned: its messages go back to the queue at once,
/// and after the redrive policy's `maxReceiveCount` receives into the dead-letter queue.
pub const MAX_ATTEMPTS: u32 = 30;

/// At most `per_minute` messages in any 60 s.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: usize,
    sent: VecDeque<i64>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute: per_minute.max(1) as usize, sent: VecDeque::new() }
    }

    /// When the next message may go: `now`, or when the oldest of the last minute's leaves it.
    pub fn next_at(&mut self, now: i64) -> i64 {
        while self.sent.front().is_some_and(|&t| t <= now - 60_000) {
            self.sent.pop_front();
        }
        if self.sent.len() < self.per_minute { now } else { self.sent[0] + 60_000 }
    }

    /// Counts a message sent at `now`.
    pub fn record(&mut self, now: i64) {
        self.sent.push_back(now);
        // Never more than the limit kept (a clock step back can't grow it).
        while self.sent.len() > self.per_minute {
            self.sent.pop_front();
        }
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failures (1, 2, …), `jitter` in
/// [0, 1): half the exponential delay, plus up to the other half.
pub fn backoff_ms(attempt: u32, jitter: f64) -> i64 {
    let exp = BACKOFF_MIN_MS.saturating_mul(1i64 << attempt.saturating_sub(1).min(20)).min(BACKOFF_MAX_MS);
    exp / 2 + ((exp / 2) as f64 * jitter.clamp(0.0, 1.0)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_is_a_sliding_minute() {
        let mut r = RateLimiter::new(3);
        for t in [0, 10, 20] {
            assert_eq!(r.next_at(t), t);
            r.record(t);
        }
        assert_eq!(r.next_at(30), 60_000, "the fourth waits for the first to leave the minute");
        assert_eq!(r.next_at(60_000), 60_000);
        r.record(60_000);
        assert_eq!(r.next_at(60_001), 60_010);
        assert!(r.sent.len() <= 3);
        // A clock step back keeps the limit.
        for _ in 0..10 {
            r.record(5);
        }
        assert_eq!(r.sent.len(), 3);
    }

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter() {
        assert_eq!(backoff_ms(1, 0.0), 500);
        assert_eq!(backoff_ms(1, 0.999_999), 999);
        assert_eq!(backoff_ms(2, 0.0), 1_000);
        assert_eq!(backoff_ms(4, 0.0), 4_000);
        assert_eq!(backoff_ms(7, 0.0), 30_000);
        assert_eq!(backoff_ms(100, 0.0), 30_000);
        assert!(backoff_ms(100, 1.0) <= BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(0, 0.0), 500);
    }
}
