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
use wasmtime::component::Component;

use crate::allowed_hosts::AllowedHosts;
use crate::component::{self as app, ComponentSource};
use crate::guest_files::GuestFiles;
use crate::host_api::outbound_http::OutboundHttp;
use crate::limits::{HandlerLimits, Limits};
use crate::live::{LiveInstances, lock};
use crate::redis_client::RedisTls;
use crate::stdio::{ComponentOutput, Target};
use crate::stores::{StoreAccess, Stores};
use crate::telemetry::{EventReporter, Telemetry};

mod disk_cache;
mod instance;
mod linked_engine;
mod options;
mod release_candidate_imports;

pub use disk_cache::cache_dir_from_config_file;
use instance::export_names;
pub use instance::{AcceptedWorld, PreparedComponent};
use linked_engine::{LinkedEngine, feature_error};
pub use options::{EngineOptions, PoolSize, pooling_config};

/// How often the epoch advances. A running guest yields to the async runtime at each epoch, so a
/// looping guest cannot starve the host's other tasks.
const EPOCH_PERIOD: Duration = Duration::from_millis(10);

/// The process's wasmtime engines and linkers.
///
/// Two flavors: `plain` runs the components that need nothing of component-model async (our
/// SDK's, Spin's timer example, spin-sdk 5 and earlier); `concurrent` runs the ones that do
/// (spin-sdk 6 and later: `async func` exports and imports). Turning concurrency support on for
/// an engine makes every call into it a component-model task, about 1.3–1.5× the cost of a plain
/// call (see docs/performance.md), so a component gets it only when it needs it.
pub struct Engine {
    plain: LinkedEngine,
    /// Made when a component first needs it (see [`Engine::concurrent`]).
    concurrent: OnceLock<Result<LinkedEngine, String>>,
    /// The concurrent flavor's engine once made, for the epoch ticker thread.
    concurrent_engine: Arc<OnceLock<wasmtime::Engine>>,
    options: EngineOptions,
    pool: PoolSize,
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

impl Engine {
    /// An engine with a pool of the default size (16 live instances), for a component or two.
    pub fn new(options: EngineOptions) -> anyhow::Result<Self> {
        Self::with_pool(options, PoolSize::default())
    }

    /// Configures wasmtime (the plain flavor now, the concurrent one when a component first
    /// needs it; the pooling allocator, of `pool`'s size; epoch interruption) and links the host
    /// APIs.
    pub fn with_pool(options: EngineOptions, pool: PoolSize) -> anyhow::Result<Self> {
        let redis_tls = match &options.tls_ca_file {
            Some(file) => RedisTls::with_ca_file(file)?,
            None => RedisTls::default(),
        };
        let telemetry = Arc::new(Telemetry::new(&options.telemetry)?);
        let pooling = pooling_config(&options, &pool);
        let stores = Arc::new(Stores::new(options.state.clone(), redis_tls.clone()));
        let plain = LinkedEngine::new(
            false,
            pooling.as_ref(),
            options.debug_info,
            options.telemetry.wasi_otel,
        )?;
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
            pool,
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
            .filter(|name| {
                !(crate::host_api::provides(name)
                    || (self.options.telemetry.wasi_otel
                        && crate::host_api::otel::LINKED_INTERFACES.contains(&name.as_str())))
            })
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

    /// The app's state directory (`--state-dir`); `None` when it has none.
    pub fn state_dir(&self) -> Option<&Path> {
        self.options.state.state_dir.as_deref()
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

    /// The compiled component for `source`: compiled once per process (by content), from the
    /// disk cache when it holds it, else compiled and written there.
    fn load(&self, source: &ComponentSource) -> anyhow::Result<Component> {
        let bytes = source.read().with_context(|| match source {
            ComponentSource::File(path) => missing_source_message(path),
            ComponentSource::Bytes(_) => format!("reading {source}"),
        })?;
        let bytes = release_candidate_imports::bridge_release_candidate_imports(&bytes)
            .with_context(|| format!("reading {source}"))?;
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
                tracing::warn!(file = %file.display(), "could not cache compiled component: {}", crate::error_text::one_line(&error));
            });
        }
        Ok(compiled)
    }

    /// Where `flavor` caches the component with these bytes, when the disk cache is on.
    fn cache_file(&self, flavor: &LinkedEngine, bytes: &[u8]) -> Option<PathBuf> {
        self.options
            .cache_dir
            .as_ref()
            .map(|dir| disk_cache::file(dir, &flavor.engine, bytes))
    }

    /// The component from `flavor`'s disk cache entry, if one exists and loads.
    fn cached(
        &self,
        flavor: &LinkedEngine,
        bytes: &[u8],
        source: &ComponentSource,
    ) -> Option<Component> {
        disk_cache::load(&self.cache_file(flavor, bytes)?, &flavor.engine, source)
    }

    /// The engine with component-model async, made the first time a component needs it: most
    /// apps never do, and its pool and linker (WASI 0.3, `wasi:http` 0.3, Spin's v3 APIs) would
    /// cost memory for nothing.
    fn concurrent(&self) -> anyhow::Result<&LinkedEngine> {
        let made = self.concurrent.get_or_init(|| {
            let pooling = pooling_config(&self.options, &self.pool);
            let flavor = LinkedEngine::new(
                true,
                pooling.as_ref(),
                self.options.debug_info,
                self.options.telemetry.wasi_otel,
            )
            .map_err(|error| crate::error_text::one_line(&error))?;
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
