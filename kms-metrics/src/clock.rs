//! The latency clock of the hot path: one raw read before the inner call and one after.
//!
//! `quanta` reads the CPU's time-stamp counter when it is invariant (checked once, at the
//! first [`LatencyClock::new`], with a calibration against the monotonic clock) and falls back
//! to the OS monotonic clock otherwise. On the VM this was measured on, a raw TSC read costs
//! about 10 ns against about 25 ns for `std::time::Instant::now()` (a vDSO `clock_gettime`)
//! and more for `tokio::time::Instant::now()` with `test-util`, and the difference of two raw
//! reads scales to nanoseconds with one multiply and shift, without `Duration` arithmetic.
//!
//! Latencies are real time, not tokio's (possibly paused) test clock: a histogram of paused
//! time would say nothing, and no test reads durations under paused time.

/// A cheap-to-clone handle on the process-wide calibrated clock.
#[derive(Clone, Debug)]
pub(crate) struct LatencyClock(quanta::Clock);

impl LatencyClock {
    pub(crate) fn new() -> Self {
        Self(quanta::Clock::new())
    }

    /// A raw reading, only meaningful to [`nanos_between`](Self::nanos_between).
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        self.0.raw()
    }

    /// Nanoseconds from raw reading `start` to raw reading `end` (0 if `end` is not later).
    #[inline]
    pub(crate) fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.0.delta_as_nanos(start, end)
    }
}
