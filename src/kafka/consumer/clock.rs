//! The consume loop's clock for delivery latency: a clock read costs as
//! much as routing a record, so it is read afresh only now and then.

use std::time::SystemTime;

/// Wall-clock time for the latency of records that matched nobody, read
/// once per [`CLOCK_RECORDS`]. Read afresh after every wait and every
/// delivery to a socket, so it is never older than a few dozen records that
/// matched nobody (tens of microseconds; the histogram's first bucket is
/// 1 ms).
pub(super) struct Clock {
    now: SystemTime,
    uses: u32,
}

const CLOCK_RECORDS: u32 = 32;

impl Clock {
    pub(super) fn new() -> Self {
        Self {
            now: SystemTime::now(),
            uses: 0,
        }
    }

    pub(super) fn now(&mut self) -> SystemTime {
        self.uses += 1;
        if self.uses >= CLOCK_RECORDS {
            self.refresh();
        }
        self.now
    }

    pub(super) fn refresh(&mut self) {
        self.now = SystemTime::now();
        self.uses = 0;
    }
}
