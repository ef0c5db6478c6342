//! The wasmtime side: one [`Engine`] per process (two wasmtime engines inside: plain, and with
//! component-model async for the components that need it), each component compiled once (and
//! cached on disk between runs), an `InstancePre` per component, and a fresh `Store` for every
//! event.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::allowed_hosts::AllowedHosts;
use crate::component::{self as app, ComponentSource};
use crate::events::EventSink;
use crate::guest_files::GuestFiles;
use crate::host_api::outbound_http::{OutboundHttp, OutboundHttpHooks};
use crate::host_api::{self, InstanceState};
use crate::limits::{HandlerLimits, Limits};
use crate::live::{LiveInstances, lock};
use crate::redis_client::RedisTls;
use crate::stdio::{ComponentOutput, OutputOptions, Target};
use crate::stores::{StateOptions, StoreAccess, Stores};
use crate::telemetry::{EventReporter, Telemetry, TelemetryOptions};

mod disk_cache;

pub use disk_cache::cache_dir_from_config_file;

/// How often the epoch advances. A running guest yields to the async runtime at each epoch, so a
/// looping guest cannot starve the host's other tasks.
const EPOCH_PERIOD: Duration = Duration::from_millis(10);

/// Handles (open stores, connections, streams, CAS values...) one instance may hold at once:
/// wasmtime's default is a million, each of which may keep host memory alive.
pub const MAX_RESOURCES: usize = 10_000;

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
    /// The largest `max_memory` and `max_table_elements` any trigger sets: the pool's slots
    /// are as large as these or the defaults above, whichever is larger.
    /// [`Runtime::new`](crate::Runtime::new) sets them from the app.
    pub largest_trigger_limits: (usize, usize),
    /// A CA certificate (PEM file) `rediss://` servers are checked against instead of the
    /// public roots, for triggers and guests alike.
    pub tls_ca_file: Option<PathBuf>,
    /// How many instances may be live at once; sizes the pooling allocator.
    /// [`Runtime::new`](crate::Runtime::new) sets it from the app: one per timer trigger plus
    /// each Redis trigger's `max_in_flight`.
    pub max_live_instances: usize,
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: dirs::cache_dir().map(|dir| dir.join("spin-trigger-host")),
            max_instance_memory: 256 << 20,
            handler_timeout: Duration::from_secs(30),
            max_table_elements: 20_000,
            largest_trigger_limits: (0, 0),
            tls_ca_file: None,
            max_live_instances: MIN_POOLED_INSTANCES,
            pooling: true,
            debug_info: false,
            allow_transient_write: false,
            output: OutputOptions::default(),
            events: None,
            state: StateOptions::default(),
            telemetry: TelemetryOptions::default(),
            namespace: None,
        }
    }
}

/// The pooling allocator, sized for `options.max_live_instances`: an instance's memories,
/// tables and async stack come from slots reserved once and reused, instead of being mapped
/// and unmapped for every event. `None` (allocate on demand) past 1,000 live instances, or when
/// pooling is turned off.
pub fn pooling_config(options: &EngineOptions) -> Option<wasmtime::PoolingAllocationConfig> {
    if !options.pooling {
        return None;
    }
    if options.max_live_instances > MAX_POOLED_INSTANCES {
        tracing::info!(
            live_instances = options.max_live_instances,
            "more live instances than the pool holds ({MAX_POOLED_INSTANCES}): allocating each on demand"
        );
        return None;
    }
    // A few more than the triggers need: an instance's slots return to the pool as its store
    // drops, which can trail the handler's end by a moment.
    let slots = (options.max_live_instances + 2).max(MIN_POOLED_INSTANCES) as u32;
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
        .max_memory_size(
            options
                .max_instance_memory
                .max(options.largest_trigger_limits.0),
        )
        .table_elements(
            options
                .max_table_elements
                .max(options.largest_trigger_limits.1),
        )
        // Reset a slot's memory by rewriting the pages the last instance dirtied (found with
        // Linux's PAGEMAP_SCAN where the kernel has it) instead of dropping them with
        // `madvise`: the next instance then takes no page faults on them, and no system call
        // has to reach the other cores' TLBs. Only dirtied pages stay resident.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 4);
    Some(pooling)
}

/// A wasmtime engine and the linkers holding the host APIs for it.
struct Flavor {
    engine: wasmtime::Engine,
    /// WASI 0.2 and the Spin APIs.
    linker: Linker<InstanceState>,
    concurrent: bool,
    /// `linker` plus outbound HTTP, for the components that import it.
    http_linker: OnceLock<Result<Linker<InstanceState>, String>>,
}

/// The process's wasmtime engines and linkers.
///
/// Two flavors: `plain` runs the components that need nothing of component-model async (our
/// SDK's, Spin's timer example, spin-sdk 5 and earlier); `concurrent` runs the ones that do
/// (spin-sdk 6 and later: `async func` exports and imports). Turning concurrency support on for
/// an engine makes every call into it a component-model task, about 1.3–1.5× the cost of a plain
/// call (see docs/performance.md), so a component gets it only when it needs it.
pub struct Engine {
    plain: Flavor,
    /// Made when a component first needs it (see [`Engine::concurrent`]).
    concurrent: OnceLock<Result<Flavor, String>>,
    /// The concurrent flavor's engine once made, for the epoch ticker thread.
    concurrent_engine: Arc<OnceLock<wasmtime::Engine>>,
    options: EngineOptions,
    /// Compiled components by content hash, so the same `.wasm` used by two components is
    /// compiled once. Each knows its engine.
    compiled: Mutex<HashMap<String, Component>>,
    redis_tls: RedisTls,
    /// The key-value stores and SQLite databases components open.
    stores: Arc<Stores>,
    /// The client every instance's outbound HTTP requests share.
    outbound_http: Arc<OutboundHttp>,
    live: Arc<LiveInstances>,
    telemetry: Arc<Telemetry>,
    stop_epoch_ticker: Arc<AtomicBool>,
}

impl Flavor {
    fn new(
        concurrent: bool,
        pooling: Option<&wasmtime::PoolingAllocationConfig>,
        debug_info: bool,
    ) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.debug_info(debug_info);
        if let Some(pooling) = pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                pooling.clone(),
            ));
        }
        config.wasm_component_model(true);
        // Spin's v3 worlds (spin-sdk 6 and later) use component-model async: `async func`
        // exports and imports, and the `waitable` / `task` built-ins that come with them.
        config.wasm_component_model_async(concurrent);
        config.concurrency_support(concurrent);
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("configuring wasmtime")?;

        let mut linker = Linker::new(&engine);
        host_api::add_to_linker(&mut linker, concurrent)?;
        Ok(Flavor {
            engine,
            linker,
            concurrent,
            http_linker: OnceLock::new(),
        })
    }

    /// The linker for `component`: with outbound HTTP when it imports `wasi:http` (made the
    /// first time one does), else the base one.
    fn linker_for(&self, component: &Component) -> anyhow::Result<&Linker<InstanceState>> {
        let component_type = component.component_type();
        let imports = component_type
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned());
        if !host_api::needs_http(imports) {
            return Ok(&self.linker);
        }
        self.http_linker
            .get_or_init(|| {
                let mut linker = self.linker.clone();
                host_api::add_http_to_linker(&mut linker, self.concurrent)
                    .map(|()| linker)
                    .map_err(|error| crate::errors::one_line(&error))
            })
            .as_ref()
            .map_err(|message| anyhow::anyhow!("{message}"))
    }
}

impl Engine {
    /// Configures wasmtime (the plain flavor now, the concurrent one when a component first
    /// needs it; the pooling allocator; epoch interruption) and links the host APIs.
    pub fn new(options: EngineOptions) -> anyhow::Result<Self> {
        let redis_tls = match &options.tls_ca_file {
            Some(file) => RedisTls::with_ca_file(file)?,
            None => RedisTls::default(),
        };
        let telemetry = Arc::new(Telemetry::new(&options.telemetry)?);
        let pooling = pooling_config(&options);
        let stores = Arc::new(Stores::new(options.state.clone(), redis_tls.clone()));
        let plain = Flavor::new(false, pooling.as_ref(), options.debug_info)?;
        let concurrent_engine = Arc::new(OnceLock::new());

        let stop_epoch_ticker = Arc::new(AtomicBool::new(false));
        let (ticked, later) = (plain.engine.clone(), concurrent_engine.clone());
        let stop = stop_epoch_ticker.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_PERIOD);
                    ticked.increment_epoch();
                    if let Some(engine) = later.get() {
                        wasmtime::Engine::increment_epoch(engine);
                    }
                }
            })
            .context("starting the epoch ticker thread")?;

        Ok(Engine {
            plain,
            concurrent: OnceLock::new(),
            concurrent_engine,
            options,
            compiled: Mutex::new(HashMap::new()),
            outbound_http: Arc::new(OutboundHttp::new(redis_tls.ca_pem())),
            stores,
            redis_tls,
            live: Arc::default(),
            telemetry,
            stop_epoch_ticker,
        })
    }

    /// Compiles (or loads from cache) a component and links it, ready to instantiate per event.
    pub fn prepare(
        &self,
        component: &app::Component,
        variables: BTreeMap<String, String>,
        allowed_hosts: AllowedHosts,
    ) -> anyhow::Result<PreparedComponent> {
        let compiled = self
            .load(&component.source)
            .with_context(|| format!("loading component `{}`", component.id))?;
        // The component was compiled for one flavor's engine; its linker is that flavor's too.
        let concurrent = !wasmtime::Engine::same(compiled.engine(), &self.plain.engine);
        let flavor = if concurrent {
            self.concurrent()?
        } else {
            &self.plain
        };
        let pre = flavor
            .linker_for(&compiled)?
            .instantiate_pre(&compiled)
            .map_err(|error| self.link_error(component, &compiled, error))?;
        tracing::debug!(component = %component.id, concurrent, "prepared component");
        Ok(PreparedComponent {
            id: component.id.as_str().into(),
            export_names: export_names(&compiled),
            engine: compiled.engine().clone(),
            concurrent,
            pre,
            variables: Arc::new(variables),
            allowed_hosts: Arc::new(allowed_hosts),
            stores: Arc::new(StoreAccess::for_component(&self.stores, component)?),
            environment: component.environment.clone(),
            files: GuestFiles::stage(component, self.options.allow_transient_write)?,
            stdout: ComponentOutput::new(&component.id, Target::Stdout, &self.options.output)?,
            stderr: ComponentOutput::new(&component.id, Target::Stderr, &self.options.output)?,
        })
    }

    /// Why a component could not be linked: the imports this host does not provide, by name,
    /// and what it does provide; or, when every import is one it provides (a type mismatch),
    /// wasmtime's own reason.
    fn link_error(
        &self,
        component: &app::Component,
        compiled: &Component,
        error: wasmtime::Error,
    ) -> anyhow::Error {
        let missing: Vec<String> = compiled
            .component_type()
            .imports(compiled.engine())
            .map(|(name, _)| name.to_owned())
            .filter(|name| !crate::host_api::provides(name))
            .collect();
        if missing.is_empty() {
            return anyhow::Error::from(error).context(format!(
                "component `{}` does not link against this host's imports",
                component.id
            ));
        }
        anyhow::anyhow!(
            "component `{}` ({}) imports what this host does not provide: {}. This host provides: {}",
            component.id,
            component.source,
            missing.join(", "),
            crate::host_api::provided_summary()
        )
    }

    /// The components with instances running now, each with how many: what a shutdown that
    /// reached its deadline names.
    pub fn running_components(&self) -> BTreeMap<String, usize> {
        self.live.running_components()
    }

    /// The reporter of one trigger's events for `component`: metrics, spans, and the
    /// embedder's [`EventSink`], if there is one.
    pub fn reporter(
        &self,
        trigger_type: &'static str,
        trigger: &str,
        component: &str,
    ) -> EventReporter {
        self.telemetry.reporter(
            trigger_type,
            trigger,
            component,
            self.options.events.clone(),
        )
    }

    /// Metrics, health and OTLP export.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Applies `--key-value` and `--sqlite` (once): before a trigger's first event.
    pub async fn seed_stores(&self) -> anyhow::Result<()> {
        self.stores.seed().await
    }

    /// How `rediss://` servers are trusted, for the triggers' own connections.
    pub fn redis_tls(&self) -> &RedisTls {
        &self.redis_tls
    }

    /// One trigger's limits: its own where it sets them, else this engine's defaults.
    pub fn limits(&self, limits: &HandlerLimits) -> Limits {
        Limits {
            timeout: limits.timeout.unwrap_or(self.options.handler_timeout),
            max_table_elements: limits
                .max_table_elements
                .unwrap_or(self.options.max_table_elements),
            max_memory: limits
                .max_memory
                .unwrap_or(self.options.max_instance_memory),
        }
    }

    /// A fresh store for one event, held to `limits`: the guest sees its own variables,
    /// environment and files and nothing else of the host.
    pub fn new_store(
        &self,
        component: &PreparedComponent,
        limits: &Limits,
    ) -> anyhow::Result<Store<InstanceState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(component.stdout.clone())
            .stderr(component.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (name, value) in &component.environment {
            wasi.env(name, value);
        }
        let perms = if component.files.writable() {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        for (host_path, guest_path) in component.files.mounts() {
            wasi.preopened_dir(host_path, guest_path, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{}`: opening files directory {}",
                        component.id,
                        host_path.display()
                    )
                })?;
        }
        let state = InstanceState {
            component_id: component.id.clone(),
            variables: component.variables.clone(),
            allowed_hosts: component.allowed_hosts.clone(),
            open_redis_connections: 0,
            redis_tls: self.redis_tls.clone(),
            stores: component.stores.clone(),
            open_stores: 0,
            open_databases: 0,
            cas_bytes: 0,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            http_hooks: OutboundHttpHooks::new(
                component.id.clone(),
                component.allowed_hosts.clone(),
                self.outbound_http.clone(),
            ),
            table: resource_table(),
            limits: crate::limits::GuestLimiter::new(limits),
            host_call_limits: crate::limits::HostCallLimits::starting_now(limits),
            _live: self.live.register(&component.id),
        };
        let mut store = Store::new(&component.engine, state);
        store.limiter(|state| &mut state.limits);
        // A new store's deadline is the current epoch: without this, every instance would yield
        // to the runtime at its first epoch check, and its task hop to another worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }

    /// The compiled component for `source`: compiled once per process (by content), from the
    /// disk cache when it holds it, else compiled and written there.
    fn load(&self, source: &ComponentSource) -> anyhow::Result<Component> {
        let bytes = source.read().with_context(|| match source {
            ComponentSource::File(path) => missing_source_message(path),
            ComponentSource::Bytes(_) => format!("reading {source}"),
        })?;
        let key = disk_cache::hex(&Sha256::digest(&bytes));
        let mut compiled = lock(&self.compiled);
        if let Some(component) = compiled.get(&key) {
            return Ok(component.clone());
        }
        let component = self.compile_or_load(&bytes, source)?;
        compiled.insert(key, component.clone());
        Ok(component)
    }

    /// The component for the plain engine when it validates there (from the disk cache, else
    /// compiled and cached), else for the concurrent one: only then is that engine made.
    fn compile_or_load(&self, bytes: &[u8], source: &ComponentSource) -> anyhow::Result<Component> {
        if let Some(component) = self.cached(&self.plain, bytes, source) {
            return Ok(component);
        }
        let started = std::time::Instant::now();
        let (flavor, compiled) = match Component::new(&self.plain.engine, bytes) {
            Ok(component) => (&self.plain, component),
            // Not valid without component-model async (or not valid at all: then the concurrent
            // engine's error, the more permissive engine's, is the one to report).
            Err(_) => {
                let flavor = self.concurrent()?;
                if let Some(component) = self.cached(flavor, bytes, source) {
                    return Ok(component);
                }
                let component = Component::new(&flavor.engine, bytes)
                    .map_err(|error| feature_error(anyhow::Error::from(error)))
                    .with_context(|| format!("compiling {source}"))?;
                (flavor, component)
            }
        };
        tracing::debug!(%source, elapsed = ?started.elapsed(), "compiled component");
        if let Some(file) = self.cache_file(flavor, bytes) {
            disk_cache::store(&compiled, &file).unwrap_or_else(|error| {
                tracing::warn!(file = %file.display(), "could not cache compiled component: {}", crate::errors::one_line(&error));
            });
        }
        Ok(compiled)
    }

    /// Where `flavor` caches the component with these bytes, when the disk cache is on.
    fn cache_file(&self, flavor: &Flavor, bytes: &[u8]) -> Option<PathBuf> {
        self.options
            .cache_dir
            .as_ref()
            .map(|dir| disk_cache::file(dir, &flavor.engine, bytes))
    }

    /// The component from `flavor`'s disk cache entry, if one exists and loads.
    fn cached(&self, flavor: &Flavor, bytes: &[u8], source: &ComponentSource) -> Option<Component> {
        disk_cache::load(&self.cache_file(flavor, bytes)?, &flavor.engine, source)
    }

    /// The engine with component-model async, made the first time a component needs it: most
    /// apps never do, and its pool and linker (WASI 0.3, `wasi:http` 0.3, Spin's v3 APIs) would
    /// cost memory for nothing.
    fn concurrent(&self) -> anyhow::Result<&Flavor> {
        let made = self.concurrent.get_or_init(|| {
            let pooling = pooling_config(&self.options);
            let flavor = Flavor::new(true, pooling.as_ref(), self.options.debug_info)
                .map_err(|error| crate::errors::one_line(&error))?;
            // The epoch ticker advances this engine too from now on.
            let _ = self.concurrent_engine.set(flavor.engine.clone());
            Ok(flavor)
        });
        made.as_ref().map_err(|message| {
            anyhow::anyhow!("configuring wasmtime for component-model async: {message}")
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_epoch_ticker.store(true, Ordering::Relaxed);
    }
}

/// A validation failure caused by a WebAssembly feature (proposal) this host's engine leaves
/// off says so, before wasmparser's own words, which name the feature; other errors pass as they
/// are.
fn feature_error(error: anyhow::Error) -> anyhow::Error {
    let text = format!("{error:#}");
    // wasmparser's wordings: "`waitable.join` requires the component model async feature",
    // "threads must be enabled for shared memories", "... support is not enabled".
    let about_a_feature = ["feature", "proposal", "must be enabled", "is not enabled"]
        .iter()
        .any(|marker| text.contains(marker));
    if about_a_feature {
        anyhow::anyhow!(
            "it uses a WebAssembly feature this host's engine does not enable ({}); the host \
             enables the component model with component-model async, and the WebAssembly \
             features wasmtime enables by default",
            crate::errors::one_line(&error)
        )
    } else {
        error
    }
}

/// Why a component's `source` could not be read, and what to do. With `CARGO_TARGET_DIR` set,
/// `cargo build` (and so `up --build`) writes the `.wasm` there instead of the project's
/// `target/`, where a manifest's `source` usually points; say so, since the build succeeded.
fn missing_source_message(path: &Path) -> String {
    let mut message = format!(
        "reading {}: build it first, or run `up --build`",
        path.display()
    );
    if let Some(target_dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        message.push_str(&format!(
            " (CARGO_TARGET_DIR is set to {}, so cargo writes its output there, not where `source` \
             points: unset CARGO_TARGET_DIR, or point `source` into it)",
            Path::new(&target_dir).display()
        ));
    }
    message
}

fn export_names(component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(component.engine())
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// One world a trigger accepts: the export that marks it, what to call it in errors, and the
/// trigger's own tag for it.
pub struct AcceptedWorld<W> {
    pub export: &'static str,
    pub description: &'static str,
    pub world: W,
}

impl PreparedComponent {
    /// Whether the component runs on the engine with component-model async, which only
    /// components that use it (`async func` exports or imports) need.
    pub fn is_concurrent(&self) -> bool {
        self.concurrent
    }

    /// Picks the first of `worlds` whose export the component has; none is an error naming the
    /// component, what it exports, and what a `kind` component must export.
    pub fn select_world<W: Copy>(
        &self,
        kind: &str,
        worlds: &[AcceptedWorld<W>],
    ) -> anyhow::Result<W> {
        let exports = |name: &str| self.export_names.iter().any(|export| export == name);
        if let Some(accepted) = worlds.iter().find(|accepted| exports(accepted.export)) {
            return Ok(accepted.world);
        }
        let expected: Vec<String> = worlds
            .iter()
            .map(|accepted| format!("`{}` ({})", accepted.export, accepted.description))
            .collect();
        anyhow::bail!(
            "component `{}` is not a {kind} component: it exports [{}], but a {kind} component exports one of: {}",
            self.id,
            self.export_names.join(", "),
            expected.join(", ")
        )
    }
}

/// A component compiled and linked, ready for a fresh instance per event.
pub struct PreparedComponent {
    /// The component's id.
    pub id: Arc<str>,
    /// The component's top-level export names, which tell which world it targets.
    pub export_names: Vec<String>,
    /// Linked, ready to instantiate.
    pub pre: InstancePre<InstanceState>,
    /// The engine it was compiled for; its stores belong to the same one.
    engine: wasmtime::Engine,
    /// Whether that is the engine with component-model async.
    concurrent: bool,
    variables: Arc<BTreeMap<String, String>>,
    allowed_hosts: Arc<AllowedHosts>,
    /// The stores and databases the component may open.
    stores: Arc<StoreAccess>,
    environment: BTreeMap<String, String>,
    files: GuestFiles,
    /// Built once: each instance's streams share the prefix.
    stdout: ComponentOutput,
    stderr: ComponentOutput,
}

/// An instance's resource table, holding at most [`MAX_RESOURCES`] handles.
fn resource_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    table
}
