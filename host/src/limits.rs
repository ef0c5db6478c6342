//! Limits on each handler call: as a trigger sets them ([`HandlerLimits`]), as a call runs under
//! them ([`Limits`], the memory limiter, [`HostCallLimits`]); and, in `limits/ranges.rs`,
//! re-exported here, how a duration or a memory size is written and the range of every number a
//! user writes (the `*_RANGE` constants), which the manifest, the locked app, the builder and
//! the command line all check at load, naming the field, so that nothing downstream overflows,
//! divides by zero or reserves more than a machine has.
//!
//! | field | range |
//! | --- | --- |
//! | durations: `interval`, `interval_secs`, `handler_timeout`, `claim_idle`, `batch_wait`, `--handler-timeout`, `--shutdown-timeout` | 1 ms to 365 days |
//! | `speedup` | 0.001 to 1,000,000 |
//! | a timer's interval divided by `speedup` | at least 1 ms |
//! | `max_in_flight` | 1 to 1,000 |
//! | `max_per_second` | 0.001 to 1,000,000 |
//! | `max_attempts` | 1 to 1,000 |
//! | `batch_size` | 1 to 10,000 |
//! | `max_memory`, `--max-memory`, `--max-instance-memory`, `max_instance_memory` | 64 KiB to 4 GiB |
//! | `max_table_elements`, `--max-table-elements` | 1 to 1,000,000 |

use std::time::Duration;

mod ranges;

pub use ranges::*;

/// What a `[[trigger.<type>]]` of any type may set, ours: limits on each handler call. Unset,
/// the host's defaults apply (`--handler-timeout`, `--max-memory`, `--max-table-elements`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerLimits {
    /// `handler_timeout = "30s"`: how long one call may run before its instance is stopped.
    pub timeout: Option<std::time::Duration>,
    /// `max_memory = "64MiB"`: how large the instance's linear memory may grow.
    pub max_memory: Option<usize>,
    /// `max_table_elements = 5000`: how many elements the instance's tables may hold.
    pub max_table_elements: Option<usize>,
}

/// The limits one handler call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long the call may run; then its instance is stopped and the call fails.
    pub timeout: Duration,
    /// How large the instance's linear memory may grow.
    pub max_memory: usize,
    /// How many elements the instance's tables may hold.
    pub max_table_elements: usize,
}

impl Limits {
    /// Runs one handler call, stopping it at the deadline. Running guest code checks the
    /// deadline itself at every epoch ([`HostCallLimits::at_epoch`]), so a guest that loops is
    /// stopped within one epoch of it; this timer stops a call waiting on anything else, and
    /// dropping the call drops its store and instance.
    pub async fn run<T>(
        &self,
        call: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let started = std::time::Instant::now();
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(DeadlinePassed {
                timeout: self.timeout,
                ran: started.elapsed(),
            }
            .into()),
        }
    }
}

/// What one host call a guest makes may use: it ends by the handler's deadline (a call still
/// running then fails, so even a call that blocks its thread cannot hold the instance past it),
/// and what it makes the host read or copy for the guest stays within the instance's
/// `max_memory`, since more could never reach the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCallLimits {
    /// When the handler call's deadline passes.
    pub deadline: std::time::Instant,
    /// The handler call's `handler_timeout`, which ends at `deadline`.
    pub timeout: Duration,
    /// The most one host call may read or copy for the guest, in bytes.
    pub max_bytes: usize,
}

impl HostCallLimits {
    /// The limits of the host calls of a handler call starting now under `limits`.
    pub fn starting_now(limits: &Limits) -> Self {
        HostCallLimits {
            deadline: std::time::Instant::now() + limits.timeout,
            timeout: limits.timeout,
            max_bytes: limits.max_memory,
        }
    }

    /// What running guest code does at each epoch: stops with [`DeadlinePassed`] once the
    /// deadline has passed, else yields to the async runtime and runs on to the next epoch.
    ///
    /// The check is the guest's own, not a runtime timer's: guests that loop in every slot never
    /// let a worker thread idle, and an idle worker is where tokio fires its timers, so a timer
    /// alone let such loops run about ten times past their deadline. `yield_now` lets the
    /// runtime fire the host's other timers (ticks, lease renewals, idle claims) between turns.
    pub fn at_epoch(&self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        let now = std::time::Instant::now();
        if now >= self.deadline {
            return Err(wasmtime::Error::new(DeadlinePassed {
                timeout: self.timeout,
                ran: self.timeout + now.duration_since(self.deadline),
            }));
        }
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    }

    /// How long a call may still run; zero once the deadline has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(std::time::Instant::now())
    }

    /// An error when `bytes` (what a call has gathered so far) is past [`Self::max_bytes`].
    pub fn check_bytes(&self, bytes: usize, what: &str) -> Result<(), String> {
        if bytes > self.max_bytes {
            Err(format!(
                "{what} is larger than the instance's max_memory ({} bytes) and could never reach \
                 it: ask for less at a time",
                self.max_bytes
            ))
        } else {
            Ok(())
        }
    }
}

/// A handler call stopped at its deadline.
#[derive(Debug, thiserror::Error)]
#[error(
    "the handler ran past its {timeout:?} deadline (handler_timeout); its instance was stopped \
     after {}ms",
    ran.as_millis()
)]
pub struct DeadlinePassed {
    /// The call's `handler_timeout`.
    pub timeout: Duration,
    /// How long the call had run when it was stopped.
    pub ran: Duration,
}

/// A handler call failed after its instance was refused memory past its `max_memory`.
#[derive(Debug, thiserror::Error)]
#[error("the instance was refused memory past its max_memory ({0} bytes)")]
pub struct MemoryLimitReached(pub usize);

/// An instance's memory and table limits, noting when it was refused memory: a guest that
/// cannot grow its memory usually traps soon after, and that failure is then put down to
/// memory, not to the trap.
pub(crate) struct GuestLimiter {
    limits: wasmtime::StoreLimits,
    max_memory: usize,
    memory_refused: bool,
}

impl GuestLimiter {
    pub fn new(limits: &Limits) -> Self {
        GuestLimiter {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(limits.max_memory)
                .table_elements(limits.max_table_elements)
                .instances(16)
                .build(),
            max_memory: limits.max_memory,
            memory_refused: false,
        }
    }

    /// `result`, with a failure marked as [`MemoryLimitReached`] when memory was refused.
    pub fn explain<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        match result {
            Err(error) if self.memory_refused => {
                Err(error.context(MemoryLimitReached(self.max_memory)))
            }
            other => other,
        }
    }
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.memory_refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
