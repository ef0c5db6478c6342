//! Where one connection's reading stands: the claim scan, this consumer's own pending entries,
//! and when idle times and the group's backlog are next refreshed.

use std::time::{Duration, Instant};

use super::{BACKLOG_INTERVAL, DELAYED_INTERVAL, MIN_CLAIM_INTERVAL};

/// Where one connection's reading stands.
pub(super) struct ConnectionState {
    /// How often idle entries of dead consumers are claimed.
    pub(super) claim_interval: Duration,
    pub(super) next_claim: Instant,
    /// `Some(cursor)` while a claim scan is under way.
    pub(super) claim_cursor: Option<String>,
    /// This consumer's own pending entries (a lost acknowledgement, or a restart under a fixed
    /// consumer name) are read first, once nothing of this consumer is in flight.
    pub(super) own_pending: bool,
    /// Whether the last read filled every free slot: more entries are likely waiting.
    pub(super) backlog: bool,
    /// When the idle time of the entries this consumer holds is next reset.
    pub(super) next_refresh: Instant,
    /// When the group's pending count and lag are next read, while metrics are on.
    pub(super) next_backlog: Instant,
    /// When the delayed set's due entries are next moved back to the stream.
    pub(super) next_delayed: Instant,
}

impl ConnectionState {
    pub(super) fn new(claim_idle: Duration) -> Self {
        ConnectionState {
            claim_interval: (claim_idle / 2).max(MIN_CLAIM_INTERVAL),
            next_claim: Instant::now(),
            claim_cursor: None,
            own_pending: true,
            backlog: false,
            next_backlog: Instant::now(),
            next_delayed: Instant::now(),
            next_refresh: Instant::now() + refresh_interval(claim_idle),
        }
    }

    /// Whether the group's pending count and lag are due to be read (and, if so, when next).
    pub(super) fn backlog_due(&mut self) -> bool {
        let due = Instant::now() >= self.next_backlog;
        if due {
            self.next_backlog = Instant::now() + BACKLOG_INTERVAL;
        }
        due
    }
}

impl ConnectionState {
    /// Whether the delayed set's due entries are to be moved now (and, if so, when next).
    pub(super) fn delayed_due(&mut self) -> bool {
        let due = Instant::now() >= self.next_delayed;
        if due {
            self.next_delayed = Instant::now() + DELAYED_INTERVAL;
        }
        due
    }
}

/// How often a consumer resets the idle time of the entries it holds: three times per
/// `claim_idle`, so one slow or lost round trip still leaves two before another consumer may
/// claim them.
pub(super) fn refresh_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 3).max(Duration::from_millis(10))
}
