//! When to try a delivery again, when to give up, and how fast an endpoint may be sent to.
//! Pure: the random draw and the clock are arguments.
//!
//! * Delays grow exponentially — `base_delay_ms · 2^(attempt-1)`, capped at `max_delay_ms` —
//!   with "equal jitter": the delay is drawn uniformly from `[d/2, d]`, so retries of many
//!   messages spread out instead of arriving together.
//! * A message is dead-lettered when it failed `max_attempts` times or is older than
//!   `max_age_ms`, whichever comes first. Email defaults follow SNS's email retry policy: about
//!   50 attempts over 6 hours ([`RetryPolicy::email`]).
//! * A [`TokenBucket`] limits messages per minute per endpoint; a message that finds no token
//!   waits (it is not an attempt, and does not fail).

use serde::{Deserialize, Serialize};

/// Retries of one protocol.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts before the message is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Age (from when the message was queued) after which it is dead-lettered.
    pub max_age_ms: u64,
    /// Delay before the 2nd attempt (before jitter).
    pub base_delay_ms: u64,
    /// Longest delay between attempts (before jitter).
    pub max_delay_ms: u64,
}

impl RetryPolicy {
    /// SNS's email policy, approximately: 50 attempts over 6 hours. Delays 1 s, 2 s, 4 s …
    /// reach the 10-minute cap at the 11th attempt; with jitter (mean 7.5 min) the remaining
    /// ~40 attempts take about 5 hours.
    pub fn email() -> RetryPolicy {
        RetryPolicy { max_attempts: 50, max_age_ms: 6 * 3600 * 1000, base_delay_ms: 1000, max_delay_ms: 600_000 }
    }
    /// Webhooks (`webhook`, `https`): 30 attempts over at most 2 hours, delays up to 5 minutes.
    pub fn webhook() -> RetryPolicy {
        RetryPolicy { max_attempts: 30, max_age_ms: 2 * 3600 * 1000, base_delay_ms: 1000, max_delay_ms: 300_000 }
    }
    /// Slack and Discord incoming webhooks: 10 attempts over at most 1 hour.
    pub fn chat() -> RetryPolicy {
        RetryPolicy { max_attempts: 10, max_age_ms: 3600 * 1000, base_delay_ms: 2000, max_delay_ms: 300_000 }
    }

    /// Checks the policy makes sense.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err(format!("{what}.maxAttempts must be at least 1"));
        }
        if self.base_delay_ms == 0 || self.max_delay_ms < self.base_delay_ms {
            return Err(format!("{what}: need 0 < baseDelayMs <= maxDelayMs"));
        }
        if self.max_age_ms == 0 {
            return Err(format!("{what}.maxAgeMs must be positive"));
        }
        Ok(())
    }

    /// The delay after failed attempt number `attempt` (1-based); `unit` in `[0, 1)` is the
    /// random draw for the jitter.
    pub fn delay_ms(&self, attempt: u32, unit: f64) -> u64 {
        let exp = attempt.saturating_sub(1).min(40);
        let d = self.base_delay_ms.saturating_mul(1u64 << exp).min(self.max_delay_ms);
        let half = d / 2;
        half + ((d - half) as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// What to do after failed attempt number `attempt` of a message queued at `created_ms`.
    pub fn after_failure(&self, attempt: u32, created_ms: i64, now_ms: i64, unit: f64) -> Next {
        if attempt >= self.max_attempts {
            return Next::DeadLetter(format!("gave up after {attempt} attempts"));
        }
        let retry_at = now_ms + self.delay_ms(attempt, unit) as i64;
        if retry_at - created_ms > self.max_age_ms as i64 {
            return Next::DeadLetter(format!(
                "gave up after {attempt} attempts: the next would be past the maximum age of {} s",
                self.max_age_ms / 1000
            ));
        }
        Next::RetryAt(retry_at)
    }
}

/// After a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    /// Stop; the reason.
    DeadLetter(String),
}

/// A token bucket: `per_minute` tokens a minute, bursts of up to `per_minute` (at least 1).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_minute: u32,
    tokens: f64,
    at_ms: i64,
}

impl TokenBucket {
    pub fn new(per_minute: u32, now_ms: i64) -> TokenBucket {
        let per_minute = per_minute.max(1);
        TokenBucket { per_minute, tokens: per_minute as f64, at_ms: now_ms }
    }

    fn refill(&mut self, now_ms: i64) {
        let dt = (now_ms - self.at_ms).max(0) as f64;
        self.tokens = (self.tokens + dt * self.per_minute as f64 / 60_000.0).min(self.per_minute as f64);
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// Takes a token, or says when one will be there (ms since the epoch).
    pub fn take(&mut self, now_ms: i64) -> Result<(), i64> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - self.tokens) * 60_000.0 / self.per_minute as f64).ceil() as i64;
            Err(now_ms + wait.max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_equal_jitter() {
        let p = RetryPolicy { max_attempts: 10, max_age_ms: 1_000_000, base_delay_ms: 100, max_delay_ms: 1000 };
        assert_eq!(p.delay_ms(1, 1.0), 100);
        assert_eq!(p.delay_ms(1, 0.0), 50);
        assert_eq!(p.delay_ms(2, 1.0), 200);
        assert_eq!(p.delay_ms(4, 1.0), 800);
        assert_eq!(p.delay_ms(5, 1.0), 1000);
        assert_eq!(p.delay_ms(60, 0.0), 500);
        for i in 0..100 {
            let d = p.delay_ms(3, i as f64 / 100.0);
            assert!((200..=400).contains(&d));
        }
    }

    #[test]
    fn gives_up_at_the_attempt_limit_or_the_age_limit() {
        let p = RetryPolicy { max_attempts: 3, max_age_ms: 10_000, base_delay_ms: 1000, max_delay_ms: 8000 };
        assert_eq!(p.after_failure(1, 0, 0, 1.0), Next::RetryAt(1000));
        assert_eq!(p.after_failure(2, 0, 1000, 1.0), Next::RetryAt(3000));
        assert!(matches!(p.after_failure(3, 0, 3000, 1.0), Next::DeadLetter(r) if r.contains("3 attempts")));
        let long = RetryPolicy { max_attempts: 100, ..p };
        assert!(matches!(long.after_failure(2, 0, 9500, 1.0), Next::DeadLetter(r) if r.contains("maximum age")));
    }

    #[test]
    fn the_email_default_is_about_fifty_attempts_over_six_hours() {
        let p = RetryPolicy::email();
        p.validate("email").unwrap();
        let (mut now, mut attempts) = (0i64, 0u32);
        // Mean jitter: every attempt fails.
        loop {
            attempts += 1;
            match p.after_failure(attempts, 0, now, 0.5) {
                Next::RetryAt(t) => now = t,
                Next::DeadLetter(_) => break,
            }
        }
        assert!((45..=50).contains(&attempts), "{attempts} attempts");
        let hours = now as f64 / 3_600_000.0;
        assert!((4.5..=6.0).contains(&hours), "{hours} h");
        assert!(RetryPolicy { max_attempts: 0, ..p.clone() }.validate("x").is_err());
    }

    #[test]
    fn token_bucket_limits_per_minute() {
        let mut b = TokenBucket::new(2, 0);
        assert!(b.take(0).is_ok());
        assert!(b.take(0).is_ok());
        let next = b.take(0).unwrap_err();
        assert_eq!(next, 30_000);
        assert!(b.take(29_000).is_err());
        assert!(b.take(30_000).is_ok());
    }
}
