//! One connection's inbound events: a token bucket (`events_per_second`,
//! bursts up to `event_burst`), and flood detection. A refused event is
//! dropped, never queued; the client is told once per burst of refusals
//! (each refusal also answers its own acknowledgement), and a client refused
//! `flood_refusals` times within `flood_window_seconds` is flooding.

use std::time::{Duration, Instant};

use super::{GuardConfig, TokenBucket};

pub struct EventRate {
    bucket: TokenBucket,
    window: Duration,
    flood_refusals: u32,
    window_started: Instant,
    refused_in_window: u32,
    /// Refusing since the last admitted event (told once per such run).
    refusing: bool,
}

#[derive(Debug, PartialEq)]
pub enum Admission {
    Admitted,
    /// Dropped; retry after this long. `tell`: the first refusal of a run,
    /// which the client hears about as an `error` event.
    Refused {
        retry_after: Duration,
        tell: bool,
    },
    /// Too many refusals: disconnect the client.
    Flooding,
}

impl EventRate {
    pub fn new(config: &GuardConfig, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(config.events_per_second, config.event_burst, now),
            window: Duration::from_secs(config.flood_window_seconds),
            flood_refusals: config.flood_refusals,
            window_started: now,
            refused_in_window: 0,
            refusing: false,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        let retry_after = match self.bucket.take(now) {
            Ok(()) => {
                self.refusing = false;
                return Admission::Admitted;
            }
            Err(retry_after) => retry_after,
        };
        if now.saturating_duration_since(self.window_started) >= self.window {
            self.window_started = now;
            self.refused_in_window = 0;
        }
        self.refused_in_window += 1;
        if self.refused_in_window >= self.flood_refusals {
            return Admission::Flooding;
        }
        let tell = !self.refusing;
        self.refusing = true;
        Admission::Refused { retry_after, tell }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GuardConfig {
        GuardConfig {
            events_per_second: 100,
            event_burst: 5,
            flood_refusals: 20,
            flood_window_seconds: 10,
            ..GuardConfig::default()
        }
    }

    #[test]
    fn bursts_pass_then_refusals_are_told_once_per_run() {
        let start = Instant::now();
        let mut rate = EventRate::new(&config(), start);
        for _ in 0..5 {
            assert_eq!(rate.admit(start), Admission::Admitted);
        }
        let first = rate.admit(start);
        assert_eq!(
            first,
            Admission::Refused {
                retry_after: Duration::from_millis(10),
                tell: true
            }
        );
        assert!(matches!(
            rate.admit(start),
            Admission::Refused { tell: false, .. }
        ));
        let later = start + Duration::from_millis(10);
        assert_eq!(rate.admit(later), Admission::Admitted);
        assert!(matches!(
            rate.admit(later),
            Admission::Refused { tell: true, .. }
        ));
    }

    #[test]
    fn a_client_that_keeps_flooding_is_flagged() {
        let start = Instant::now();
        let mut rate = EventRate::new(&config(), start);
        let outcomes: Vec<Admission> = (0..25).map(|_| rate.admit(start)).collect();
        assert_eq!(
            outcomes
                .iter()
                .filter(|a| **a == Admission::Admitted)
                .count(),
            5
        );
        assert_eq!(outcomes[24], Admission::Flooding);
        assert!(outcomes[..24].iter().all(|a| *a != Admission::Flooding));
    }

    #[test]
    fn refusals_spread_over_windows_are_not_a_flood() {
        let start = Instant::now();
        let mut rate = EventRate::new(&config(), start);
        for second in 0..10 {
            let now = start + Duration::from_secs(second * 10);
            for _ in 0..5 {
                rate.admit(now);
            }
            for _ in 0..15 {
                assert_ne!(rate.admit(now), Admission::Flooding);
            }
        }
    }
}
