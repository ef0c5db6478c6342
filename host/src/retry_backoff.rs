//! The wait between attempts at a failed event: a first wait, doubled before each later one, up
//! to a longest. A timer's `retry_backoff` and a stream trigger's `retry_backoff` and
//! `max_retry_backoff` are read through it.

use std::time::Duration;

/// A doubling wait between attempts.
///
/// ```ignore
/// let backoff = RetryBackoff { first: Duration::from_millis(100), max: Duration::from_secs(5) };
/// assert_eq!(backoff.after(3), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryBackoff {
    /// The wait after the first failed attempt.
    pub(crate) first: Duration,
    /// The longest wait, however often `first` doubled (`first` itself, if that is longer).
    pub(crate) max: Duration,
}

impl RetryBackoff {
    /// The wait after failed attempt `attempt` (from 1): `first` doubled `attempt - 1` times,
    /// at most `max` (or `first`, if that is longer).
    pub(crate) fn after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(Duration::MAX)
            .min(self.max.max(self.first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_longest() {
        let backoff = RetryBackoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        let waits: Vec<u128> = (1..=8)
            .map(|attempt| backoff.after(attempt).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(5));
        let long_first = RetryBackoff {
            first: Duration::from_secs(9),
            max: Duration::from_secs(5),
        };
        assert_eq!(long_first.after(4), Duration::from_secs(9));
    }
}
