//! The range of every number a user writes (the `*_RANGE` constants) and how durations and
//! memory sizes are written: the manifest, the locked app, the builder and the command line all
//! check them at load, naming the field, so that nothing downstream overflows, divides by zero
//! or reserves more than a machine has.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Every duration a user writes: from 1 ms to 365 days.
pub const DURATION_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(365 * 24 * 60 * 60);

/// `speedup`: timers at most a million times faster, or a thousand times slower.
pub const SPEEDUP_RANGE: RangeInclusive<f64> = 0.001..=1_000_000.0;

/// `max_per_second`: from one event in about 17 minutes to a million a second.
pub const MAX_PER_SECOND_RANGE: RangeInclusive<f64> = 0.001..=1_000_000.0;

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
