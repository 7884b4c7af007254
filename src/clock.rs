//! Time as a dependency, so time-dependent logic (stuck runs, the reaper) is tested
//! without sleeping (the tests' clock that moves only when told to is
//! `test_support::ManualClock`).

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
