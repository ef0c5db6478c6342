//! Limits on each handler call: as a trigger sets them ([`HandlerLimits`]), as a call runs under
//! them ([`Limits`]), and how a memory size is written.

use std::time::Duration;

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
            Err(_) => Err(anyhow::anyhow!(
                "the handler ran past its {:?} deadline (handler_timeout); its instance was stopped",
                self.timeout
            )),
        }
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
    if size < 64 << 10 {
        return Err(format!(
            "\"{text}\" is less than one WebAssembly page (64KiB): give a component room to start"
        ));
    }
    Ok(size)
}
