//! [`CircuitState`]: the state of a circuit breaker, as layers report it and metrics export it.

use std::fmt;

/// The state of a circuit breaker.
///
/// Exported as the gauge `<prefix>_circuit_breaker_state{backend}` with the values of
/// [`as_gauge`](CircuitState::as_gauge): 0 closed, 1 open, 2 half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls flow to the backend; outcomes are counted.
    Closed,
    /// Calls fail at once with [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen).
    Open,
    /// A limited number of trial calls are let through to probe the backend.
    HalfOpen,
}

impl CircuitState {
    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub const fn as_gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }

    /// A stable label: `"closed"`, `"open"`, `"half_open"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
