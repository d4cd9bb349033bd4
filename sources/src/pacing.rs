//! How fast to hand ticks to the producer — as pure arithmetic.
//!
//! A source never sleeps and never reads a clock: it says *how* it wants to be paced
//! ([`Pacing`]), and the worker, which owns the clock and the async runtime, asks the helpers
//! below *how long* to wait, passing the wall time it measured. That keeps the sources
//! deterministic and the pacing math testable without waiting.
//!
//! * [`Pacing::Rate`] — the simulator with `ticksPerSecond > 0`: send `rate` ticks per wall
//!   second. Use [`rate_delay`] (after sending `sent` ticks, `elapsed` since starting).
//! * [`Pacing::EventTime`] — replay with `speed > 0`: a tick is due when the wall time since
//!   the first tick reaches its event-time distance from the first tick divided by `speed`
//!   (speed 2 → a day of data in half a day). Use [`EventTimePacer`] (or [`event_time_delay`]).
//! * [`Pacing::Unthrottled`] — as fast as the broker takes them.
//!
//! Neither helper tries to "catch up" gently: if the worker falls behind (a slow broker), the
//! delays are zero until it is back on schedule, so ticks go out in a burst. Event-time gaps
//! (a weekend in daily data) make long waits at `speed` 1; a worker should sleep in slices so
//! it stays responsive to shutdown.

use std::time::Duration;

/// How a source wants to be paced by its worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// No throttle: produce as fast as the broker accepts.
    Unthrottled,
    /// At most this many ticks per wall-clock second — this replica's share of the stream's
    /// `ticksPerSecond`. See [`rate_delay`].
    Rate(f64),
    /// Send each tick when the wall time since the first tick reaches its event-time distance
    /// from the first tick divided by `speed`. See [`EventTimePacer`].
    EventTime { speed: f64 },
}

/// Wait before sending the next tick so that `sent` ticks take `sent / rate` seconds.
/// `elapsed` is the wall time since the first tick was sent. Zero when on or behind schedule,
/// or when `rate` is not a positive finite number.
pub fn rate_delay(sent: u64, rate: f64, elapsed: Duration) -> Duration {
    if !(rate.is_finite() && rate > 0.0) {
        return Duration::ZERO;
    }
    due_minus(sent as f64 / rate, elapsed)
}

/// Wait before sending a tick of event time `ts_us`, when the first tick had event time
/// `first_ts_us` and `elapsed` wall time has passed since it was sent. Zero when due or
/// overdue, when the tick is older than the first, or when `speed` is not a positive finite
/// number (0 = as fast as possible).
pub fn event_time_delay(first_ts_us: i64, ts_us: i64, speed: f64, elapsed: Duration) -> Duration {
    if !(speed.is_finite() && speed > 0.0) || ts_us <= first_ts_us {
        return Duration::ZERO;
    }
    // i128: the distance between two valid timestamps fits, but be safe with any i64.
    let event_secs = (i128::from(ts_us) - i128::from(first_ts_us)) as f64 / 1e6;
    due_minus(event_secs / speed, elapsed)
}

fn due_minus(due_secs: f64, elapsed: Duration) -> Duration {
    let wait = due_secs - elapsed.as_secs_f64();
    if wait > 0.0 {
        // Clamp absurd values (years of event time at speed 1e-9) instead of panicking.
        Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

/// Event-time pacing across a whole replay, including loops.
///
/// Give it each tick's event time (or each batch's last one) and the wall time the worker
/// reads from its monotonic clock, as a `Duration` since any fixed origin. The first call
/// anchors event time to wall time; when event time goes *backwards* — a looping replay
/// starting its next pass — it re-anchors, so the new pass is paced from its own start.
#[derive(Debug, Clone)]
pub struct EventTimePacer {
    speed: f64,
    anchor: Option<(i64, Duration)>,
    last_ts_us: i64,
}

impl EventTimePacer {
    /// `speed` as in the spec: 0 (or anything not positive and finite) never waits.
    pub fn new(speed: f64) -> Self {
        EventTimePacer { speed, anchor: None, last_ts_us: i64::MIN }
    }

    /// How long to wait before sending a tick of event time `ts_us`, it being `now` on the
    /// worker's clock.
    pub fn delay(&mut self, ts_us: i64, now: Duration) -> Duration {
        let (anchor_ts, anchor_wall) = match self.anchor {
            Some(a) if ts_us >= self.last_ts_us => a,
            _ => {
                self.anchor = Some((ts_us, now));
                (ts_us, now)
            }
        };
        self.last_ts_us = ts_us;
        event_time_delay(anchor_ts, ts_us, self.speed, now.saturating_sub(anchor_wall))
    }

    /// Forget the anchor: the next tick is sent at once and paces the ones after it.
    pub fn reset(&mut self) {
        self.anchor = None;
        self.last_ts_us = i64::MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn pacing_helper_math() {
        // One event day at 86 400× is one wall second.
        let day = 86_400 * S;
        assert_eq!(event_time_delay(0, day, 86_400.0, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(event_time_delay(0, day, 86_400.0, Duration::from_millis(250)), Duration::from_millis(750));
        // Behind schedule: no wait.
        assert_eq!(event_time_delay(0, day, 86_400.0, Duration::from_secs(5)), Duration::ZERO);
        // Real time: 10 event seconds after 4 wall seconds → 6 s.
        assert_eq!(event_time_delay(5 * S, 15 * S, 1.0, Duration::from_secs(4)), Duration::from_secs(6));
        // Speed 0 = as fast as possible; older ticks never wait.
        assert_eq!(event_time_delay(0, day, 0.0, Duration::ZERO), Duration::ZERO);
        assert_eq!(event_time_delay(0, day, f64::NAN, Duration::ZERO), Duration::ZERO);
        assert_eq!(event_time_delay(10, 5, 1.0, Duration::ZERO), Duration::ZERO);
        // Negative (pre-1970) timestamps work the same.
        assert_eq!(event_time_delay(-3 * S, -S, 2.0, Duration::ZERO), Duration::from_secs(1));
        // Extremes do not panic.
        assert_eq!(event_time_delay(i64::MIN, i64::MAX, 1e-300, Duration::ZERO), Duration::MAX);
    }

    #[test]
    fn rate_helper_math() {
        assert_eq!(rate_delay(1000, 1000.0, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(rate_delay(500, 1000.0, Duration::from_millis(200)), Duration::from_millis(300));
        assert_eq!(rate_delay(500, 1000.0, Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(rate_delay(500, 0.0, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn pacer_anchors_and_reanchors_on_loop() {
        let mut p = EventTimePacer::new(10.0);
        let t0 = Duration::from_secs(100);
        assert_eq!(p.delay(50 * S, t0), Duration::ZERO);
        assert_eq!(p.delay(60 * S, t0), Duration::from_secs(1));
        assert_eq!(p.delay(70 * S, t0 + Duration::from_secs(1)), Duration::from_secs(1));
        // Loop: event time jumps back to the start; the new pass starts now.
        let t1 = Duration::from_secs(200);
        assert_eq!(p.delay(50 * S, t1), Duration::ZERO);
        assert_eq!(p.delay(55 * S, t1), Duration::from_millis(500));
        p.reset();
        assert_eq!(p.delay(1_000 * S, t1), Duration::ZERO);
    }
}
