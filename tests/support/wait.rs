//! Waiting for something to happen: the one way a test waits. It never
//! sleeps on a guess that something happened; it looks at what it can
//! observe until that shows it, and fails naming what it waited for and
//! what it saw last. (A `sleep` left in the tests paces a producer, spaces
//! looks, or is a scenario's own duration, such as an outage's.)

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How long an expected observation may take before the test fails: long
/// enough for a CI machine running every test binary at once (this bounds
/// a wait, it times nothing).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How long a server process may take to start: a cold JVM on a busy
/// 2-core machine starts Kafka in ~10 s and Apicurio in ~10-30 s.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

/// Between two looks: often enough that a wait adds little to a test,
/// seldom enough that looking (an HTTP request, a Kafka look-up) does not
/// load the machine.
const POLL: Duration = Duration::from_millis(100);

/// Looks with `observe` until `done` holds of what it saw, and returns
/// that; fails the test after [`PATIENCE`] with `what` (completing "waited
/// for") and the last observation.
pub async fn eventually<T: Debug>(
    what: &str,
    mut observe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = observe().await;
        if done(&seen) {
            return seen;
        }
        give_up_after(deadline, PATIENCE, what, &seen);
        tokio::time::sleep(POLL).await;
    }
}

/// As [`eventually`], for a server process to start (Kafka, the registry,
/// nginx): outside any Tokio runtime, with a look that blocks, and more
/// patience.
pub fn eventually_blocking<T: Debug>(
    what: &str,
    mut observe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) {
    let deadline = Instant::now() + STARTUP_PATIENCE;
    loop {
        let seen = observe();
        if done(&seen) {
            return;
        }
        give_up_after(deadline, STARTUP_PATIENCE, what, &seen);
        std::thread::sleep(POLL);
    }
}

fn give_up_after(deadline: Instant, patience: Duration, what: &str, seen: &impl Debug) {
    assert!(
        Instant::now() < deadline,
        "waited {patience:?} for {what}; last observed: {seen:#?}"
    );
}
