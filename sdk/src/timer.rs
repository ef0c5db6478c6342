//! Timer events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::__private::timer::exports::spin_trigger::sdk0_4_0::timer_handler as wit;
use crate::__private::{HandlerResult, block_on};

/// One firing of a component's timer, for handlers that take it as their argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// When the tick was due: for an interval, the host's start plus whole intervals (so a slow
    /// handler does not shift later ticks); for a cron schedule, the time it names.
    pub scheduled_at: SystemTime,
    /// When the host fired it.
    pub fired_at: SystemTime,
    /// The tick's number in the schedule, from 1 (0 for the single run of `up --once`). A tick
    /// skipped because the previous run was still going leaves a gap.
    pub sequence: u64,
    /// The schedule it fired for, as the manifest says it: `every 10s`, or
    /// `cron 0 30 9 * * MON-FRI in Europe/Paris`.
    pub schedule: String,
    /// Which attempt at this tick this is, from 1: a timer with `max_attempts` tries a failed
    /// tick again after `retry_backoff`.
    pub attempt: u32,
    /// Whether the tick was missed while no host ran and is run late, at start, because the
    /// timer sets `catch_up`.
    pub late: bool,
}

impl Tick {
    /// How late the tick fired relative to its schedule.
    pub fn lateness(&self) -> Duration {
        self.fired_at
            .duration_since(self.scheduled_at)
            .unwrap_or_default()
    }
}

impl From<wit::Tick> for Tick {
    fn from(tick: wit::Tick) -> Self {
        Tick {
            scheduled_at: UNIX_EPOCH + Duration::from_millis(tick.scheduled_at_ms),
            fired_at: UNIX_EPOCH + Duration::from_millis(tick.fired_at_ms),
            sequence: tick.sequence,
            schedule: tick.schedule,
            attempt: tick.attempt,
            late: tick.late,
        }
    }
}

/// Runs a raw-world handler (`fn()` or `async fn()`): used by `#[timer_component]`.
#[doc(hidden)]
pub fn raw_timer_export<F: std::future::Future<Output = ()>>(handler: F) {
    block_on(handler)
}

/// Runs a rich-world handler and converts its result: used by `#[timer_component]`.
#[doc(hidden)]
pub fn rich_timer_export<F>(handler: F) -> Result<(), wit::Error>
where
    F: std::future::Future,
    F::Output: HandlerResult,
{
    block_on(handler)
        .into_message_result()
        .map_err(|message| wit::Error { message })
}
