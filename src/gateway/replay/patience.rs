//! Asking Kafka for a replay's partition extents, patiently: a look-up that
//! fails (a partition without a leader for a moment, a broker gone from the
//! metadata) is asked again, with a doubling pause, for as long as
//! readiness waits out Kafka's silence (`kafka.ready_broker_silence_seconds`)
//! and within the replay's deadline; then the client is told, and resumes
//! later.

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

use super::Failed;

/// First and longest pause between look-ups.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// `look_up`'s answer, asked again while it fails for less than `patience`
/// and the next attempt starts before `deadline`; `Unavailable` after.
/// (A closure returning a future, not an `AsyncFnMut`: the future of an
/// async closure that borrows is not `Send` for every lifetime, and the
/// replay runs in a spawned task.)
pub(super) async fn patiently<T, E: Display, F: Future<Output = Result<T, E>>>(
    patience: Duration,
    deadline: Instant,
    mut look_up: impl FnMut() -> F,
) -> Result<T, Failed> {
    let mut pause = RETRY_FIRST;
    let mut failing_since = None;
    loop {
        match look_up().await {
            Ok(found) => return Ok(found),
            Err(e)
                if Instant::now() + pause < deadline
                    && failing_since.get_or_insert_with(Instant::now).elapsed() < patience =>
            {
                tracing::debug!(error = %e, "replay asks Kafka for partition extents again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
            Err(e) => {
                tracing::warn!(error = %e, "replay cannot read partition extents");
                return Err(Failed::Unavailable);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Paused time: each sleep ends the moment nothing else can run, so the
    //! attempts' instants are exact.

    use super::*;

    /// Runs `patiently` over a look-up that fails `failures` times (then
    /// answers); returns its outcome and each attempt's time since start.
    async fn attempts(
        failures: usize,
        patience: Duration,
        deadline: Duration,
    ) -> (Result<(), Failed>, Vec<Duration>) {
        let start = Instant::now();
        let mut at = Vec::new();
        let mut look_up = || {
            at.push(start.elapsed());
            let found = if at.len() > failures {
                Ok(())
            } else {
                Err("no leader")
            };
            std::future::ready(found)
        };
        let outcome = patiently(patience, start + deadline, &mut look_up).await;
        (outcome, at)
    }

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    const LONG: Duration = Duration::from_secs(120);

    #[tokio::test(start_paused = true)]
    async fn a_failing_look_up_is_asked_again_after_doubling_pauses() {
        let patience = Duration::from_secs(15);
        let (outcome, at) = attempts(4, patience, LONG).await;
        assert!(outcome.is_ok());
        assert_eq!(at, millis(&[0, 100, 300, 700, 1500]));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pause_stops_doubling_at_its_longest() {
        let (outcome, at) = attempts(7, Duration::from_secs(15), LONG).await;
        assert!(outcome.is_ok());
        assert_eq!(at, millis(&[0, 100, 300, 700, 1500, 3100, 5100, 7100]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_look_up_failing_past_the_patience_is_given_up() {
        let (outcome, at) = attempts(usize::MAX, Duration::from_secs(5), LONG).await;
        assert!(matches!(outcome, Err(Failed::Unavailable)));
        assert_eq!(at, millis(&[0, 100, 300, 700, 1500, 3100, 5100]));
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_past_the_deadline() {
        let deadline = Duration::from_secs(1);
        let (outcome, at) = attempts(usize::MAX, Duration::from_secs(15), deadline).await;
        assert!(matches!(outcome, Err(Failed::Unavailable)));
        assert_eq!(
            at,
            millis(&[0, 100, 300, 700]),
            "the next would start at 1.5 s"
        );
    }
}
