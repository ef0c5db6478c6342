//! What the engine is configured with: the options an embedder sets, and the pool's size,
//! which the app decides.

use std::path::PathBuf;
use std::time::Duration;

use crate::admin::AdminOptions;
use crate::events::EventSink;
use crate::stdio::OutputOptions;
use crate::stores::StateOptions;
use crate::telemetry::TelemetryOptions;

/// Live instances beyond which the host allocates each instance on demand instead of from a
/// pool: each pooled memory reserves about 4 GiB of address space (never resident) so that
/// compiled code needs no bounds checks, and the two engines' pools must fit the address space.
const MAX_POOLED_INSTANCES: usize = 1000;
/// The pool never has fewer slots than this, so a composed component with several memories
/// and tables still fits when the app needs one or two instances at a time.
const MIN_POOLED_INSTANCES: usize = 16;

/// How much of a pooled memory may stay resident between instances (see [`pooling_config`]).
const KEEP_RESIDENT: usize = 2 << 20;

/// Settings for the runtime.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Where compiled components are kept between runs; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory one instance may grow to, unless its trigger sets `max_memory`.
    pub max_instance_memory: usize,
    /// How long one handler call may run, unless its trigger sets `handler_timeout`.
    pub handler_timeout: Duration,
    /// Elements one instance's tables may hold (function references, mostly), unless its
    /// trigger sets `max_table_elements`.
    pub max_table_elements: usize,
    /// A CA certificate (PEM file) `rediss://` servers are checked against instead of the
    /// public roots, for triggers and guests alike.
    pub tls_ca_file: Option<PathBuf>,
    /// Whether instances come from the pooling allocator (Spin's `--disable-pooling` turns it
    /// off: each instance's memory is then mapped and unmapped on demand).
    pub pooling: bool,
    /// Native debug info for guest code, so gdb or lldb can debug it (Spin's `--debug-info`).
    pub debug_info: bool,
    /// Guests may write to their `files`, in a copy made for this run (Spin's
    /// `--allow-transient-write`); read-only otherwise.
    pub allow_transient_write: bool,
    /// Where component output goes: the terminal, log files.
    pub output: OutputOptions,
    /// Where each handler call's outcome is reported, for an embedder; `None`: only logged.
    pub events: Option<EventSink>,
    /// Where the app's key-value stores and SQLite databases are, and what to put in them
    /// before the first event. The default: `default` store and database in a temporary
    /// directory that goes when the process ends.
    pub state: StateOptions,
    /// Metrics, health and OTLP export; all off by default.
    pub telemetry: TelemetryOptions,
    /// What sets this deployment of the app apart from others sharing its Redis servers
    /// (`--namespace`): coordinated timers' keys and stream triggers' default consumer group
    /// carry it as `<app>@<namespace>`.
    pub namespace: Option<String>,
    /// The admin endpoint (`--admin-addr`, with its token): pause, resume and run-now for the
    /// app's timers; off by default.
    pub admin: AdminOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: dirs::cache_dir().map(|dir| dir.join("spin-trigger-host")),
            max_instance_memory: 256 << 20,
            handler_timeout: Duration::from_secs(30),
            max_table_elements: 20_000,
            tls_ca_file: None,
            pooling: true,
            debug_info: false,
            allow_transient_write: false,
            output: OutputOptions::default(),
            events: None,
            state: StateOptions::default(),
            telemetry: TelemetryOptions::default(),
            namespace: None,
            admin: AdminOptions::default(),
        }
    }
}

/// How large the instance pool must be, which only the app knows: [`Runtime::new`] sizes it
/// from the app's triggers.
///
/// [`Runtime::new`]: crate::Runtime::new
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// Instances live at once: one per timer trigger plus each Redis trigger's `max_in_flight`.
    pub live_instances: usize,
    /// The largest `max_memory` any trigger sets (0 when none does): a slot holds it, or the
    /// engine's default, whichever is larger.
    pub largest_memory: usize,
    /// The largest `max_table_elements` any trigger sets (0 when none does).
    pub largest_table_elements: usize,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            live_instances: MIN_POOLED_INSTANCES,
            largest_memory: 0,
            largest_table_elements: 0,
        }
    }
}

/// The pooling allocator, sized for `size.live_instances`: an instance's memories, tables and
/// async stack come from slots reserved once and reused, instead of being mapped and unmapped
/// for every event. `None` (allocate on demand) past 1,000 live instances, or when pooling is
/// turned off.
pub fn pooling_config(
    options: &EngineOptions,
    size: &PoolSize,
) -> Option<wasmtime::PoolingAllocationConfig> {
    if !options.pooling {
        return None;
    }
    if size.live_instances > MAX_POOLED_INSTANCES {
        tracing::info!(
            live_instances = size.live_instances,
            "more live instances than the pool holds ({MAX_POOLED_INSTANCES}): allocating each on demand"
        );
        return None;
    }
    // A few more than the triggers need: an instance's slots return to the pool as its store
    // drops, which can trail the handler's end by a moment.
    let slots = (size.live_instances + 2).max(MIN_POOLED_INSTANCES) as u32;
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(4 * slots)
        .total_memories(slots)
        .total_tables(2 * slots)
        .total_stacks(slots)
        .max_memories_per_component(MIN_POOLED_INSTANCES as u32)
        .max_tables_per_component(2 * MIN_POOLED_INSTANCES as u32)
        .max_core_instances_per_component(200)
        .max_memory_size(options.max_instance_memory.max(size.largest_memory))
        .table_elements(options.max_table_elements.max(size.largest_table_elements))
        // Reset a slot's memory by rewriting the pages the last instance dirtied (found with
        // Linux's PAGEMAP_SCAN where the kernel has it) instead of dropping them with
        // `madvise`: the next instance then takes no page faults on them, and no system call
        // has to reach the other cores' TLBs. Only dirtied pages stay resident.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 4);
    Some(pooling)
}
