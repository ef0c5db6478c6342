//! Limits on each handler call: as a trigger sets them ([`HandlerLimits`]), as a call runs under
//! them ([`Limits`]), how a memory size is written, and the range of every number a user writes
//! (the `*_RANGE` constants), which the manifest, the locked app, the builder and the command
//! line all check at load, naming the field, so that nothing downstream overflows, divides by
//! zero or reserves more than a machine has.
//!
//! | field | range |
//! | --- | --- |
//! | durations: `interval`, `interval_secs`, `handler_timeout`, `claim_idle`, `batch_wait`, `--handler-timeout`, `--shutdown-timeout` | 1 ms to 365 days |
//! | `speedup` | 0.001 to 1,000,000 |
//! | a timer's interval divided by `speedup` | at least 1 ms |
//! | `max_in_flight` | 1 to 1,000 |
//! | `max_attempts` | 1 to 1,000 |
//! | `batch_size` | 1 to 10,000 |
//! | `max_memory`, `--max-memory`, `--max-instance-memory`, `max_instance_memory` | 64 KiB to 4 GiB |
//! | `max_table_elements`, `--max-table-elements` | 1 to 1,000,000 |

use std::ops::RangeInclusive;
use std::time::Duration;

/// Every duration a user writes: from 1 ms to 365 days.
pub const DURATION_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(365 * 24 * 60 * 60);

/// `speedup`: timers at most a million times faster, or a thousand times slower.
pub const SPEEDUP_RANGE: RangeInclusive<f64> = 0.001..=1_000_000.0;

/// `max_in_flight`: each handler in flight is a live instance, with its memory reserved.
pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<usize> = 1..=1_000;

/// `batch_size` of a stream trigger whose component takes batches: entries per call.
pub const BATCH_SIZE_RANGE: RangeInclusive<usize> = 1..=10_000;

/// `max_attempts` of a stream entry.
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=1_000;

/// One instance's linear memory: from one WebAssembly page to what 32-bit memory addresses.
pub const MEMORY_RANGE: RangeInclusive<usize> = (64 << 10)..=(4 << 30);

/// Elements one instance's tables may hold.
pub const TABLE_ELEMENTS_RANGE: RangeInclusive<usize> = 1..=1_000_000;

/// A duration in [`DURATION_RANGE`], as the command line takes it (`--handler-timeout 30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("\"{text}\" is not a duration ({error}): write e.g. \"30s\""))?;
    check_duration(text, duration)?;
    Ok(duration)
}

/// Whether `duration` (written `text`) is in [`DURATION_RANGE`]; the error says which end.
pub fn check_duration(text: &str, duration: Duration) -> Result<(), String> {
    if duration < *DURATION_RANGE.start() {
        return Err(format!("\"{text}\" is shorter than the 1ms minimum"));
    }
    if duration > *DURATION_RANGE.end() {
        return Err(format!("\"{text}\" is longer than the 365-day maximum"));
    }
    Ok(())
}

/// A table size in [`TABLE_ELEMENTS_RANGE`], as the command line takes it.
pub fn parse_table_elements(text: &str) -> Result<usize, String> {
    let elements: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not a whole number of elements"))?;
    check_in_range(elements, &TABLE_ELEMENTS_RANGE)?;
    Ok(elements)
}

/// A memory size in bytes in [`MEMORY_RANGE`] (Spin's `--max-instance-memory`).
pub fn parse_memory_bytes(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of bytes"))?;
    check_memory(text, bytes)?;
    Ok(bytes)
}

/// Whether `value` is in `range`; the error names the range.
pub fn check_in_range<T: PartialOrd + std::fmt::Display>(
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{value} is out of range: write a number from {} to {}",
            range.start(),
            range.end()
        ))
    }
}

/// Whether a memory size (written `text`) is in [`MEMORY_RANGE`]; the error says which end.
fn check_memory(text: &str, size: usize) -> Result<(), String> {
    if size < *MEMORY_RANGE.start() {
        return Err(format!(
            "\"{text}\" is less than one WebAssembly page (64KiB): give a component room to start"
        ));
    }
    if size > *MEMORY_RANGE.end() {
        return Err(format!(
            "\"{text}\" is more than the 4GiB a component's 32-bit memory can address"
        ));
    }
    Ok(())
}

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
    /// Runs one handler call, stopping it at the deadline: the guest yields at every epoch, so
    /// a guest that loops is stopped within one epoch of it, and dropping the call drops its
    /// store and instance.
    pub async fn run<T>(
        &self,
        call: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(DeadlinePassed(self.timeout).into()),
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
    /// The most one host call may read or copy for the guest, in bytes.
    pub max_bytes: usize,
}

impl HostCallLimits {
    /// The limits of the host calls of a handler call starting now under `limits`.
    pub fn starting_now(limits: &Limits) -> Self {
        HostCallLimits {
            deadline: std::time::Instant::now() + limits.timeout,
            max_bytes: limits.max_memory,
        }
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
#[error("the handler ran past its {0:?} deadline (handler_timeout); its instance was stopped")]
pub struct DeadlinePassed(pub Duration);

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

/// A memory size as `max_memory` takes it: `"64MiB"`, `"1GiB"`, `"512MB"`, or bytes.
pub fn parse_memory_size(text: &str) -> Result<usize, String> {
    let wrong =
        || format!("\"{text}\" is not a memory size: write e.g. \"64MiB\", \"1GiB\" or \"512MB\"");
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| wrong())?;
    let unit_size: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return Err(wrong()),
    };
    let size = number.checked_mul(unit_size).ok_or_else(wrong)?;
    check_memory(text, size)?;
    Ok(size)
}
