//! Dispatch: one message through the host's own code path (`RedisComponent::handle`: a fresh
//! store, instantiate, call, drop) against the bare baseline, the same component, in one
//! process, in alternating rounds so both see the same machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spin_trigger_host::EngineOptions;
use spin_trigger_host::app::Component;
use spin_trigger_host::internals::AllowedHosts;
use spin_trigger_host::internals::Engine;
use spin_trigger_host::internals::{CallInfo, EventReporter};
use spin_trigger_host::internals::{Message, RedisComponent};

use crate::bare::{Bare, Output};

const ROUNDS: usize = 10;

/// Latencies of one path, sorted.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn percentile(&self, fraction: f64) -> Duration {
        self.0[((self.0.len() - 1) as f64 * fraction).round() as usize]
    }
}

pub struct Figures {
    pub host: Latencies,
    pub bare: Latencies,
}

pub fn run(wasm: &Path, calls: usize) -> anyhow::Result<Figures> {
    // An empty payload: the guest prints nothing, so this is the dispatch alone.
    let bare = Bare::new(wasm, Output::Discard)?;
    compare(
        &current_thread()?,
        component(wasm),
        calls,
        Vec::new(),
        AllowedHosts::default(),
        async |payload| bare.handle(payload).await,
    )
}

/// One `get` and one `set` on the default key-value store per call: the kv-touch guest on the
/// host (a SQLite file in a temporary state directory) against the same two statements on a
/// SQLite file opened as the host opens it, with no instance at all. On a multi-threaded runtime,
/// as the host runs (`multi_thread`), or a current-thread one, as an embedder may.
pub fn run_key_value(wasm: &Path, calls: usize, multi_thread: bool) -> anyhow::Result<Figures> {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        current_thread()?
    };
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bare.db");
    let sqlite = rusqlite::Connection::open(&file)?;
    let _mode: String = sqlite.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    sqlite.pragma_update(None, "synchronous", "NORMAL")?;
    sqlite.execute_batch(
        "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, \
         value BLOB NOT NULL, PRIMARY KEY (store, key))",
    )?;
    let mut component = component(wasm);
    component.key_value_stores = vec!["default".into()];
    compare(
        &runtime,
        component,
        calls,
        b"value".to_vec(),
        AllowedHosts::default(),
        async |payload| {
            let _last: Option<Vec<u8>> = rusqlite::OptionalExtension::optional(
                sqlite
                    .prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?
                    .query_row(("default", "last"), |row| row.get(0)),
            )?;
            sqlite
                .prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(("default", "last", payload))?;
            Ok(())
        },
    )
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn component(wasm: &Path) -> Component {
    let mut component = Component::default();
    component.id = "print".into();
    component.source = wasm.to_path_buf().into();
    component
}

/// One outbound HTTP GET per call: the http-get guest fetching `url` (a loopback server), the
/// host's pooled client against wasmtime-wasi-http's own sender.
pub fn run_http(wasm: &Path, calls: usize, url: &str, origin: &str) -> anyhow::Result<Figures> {
    let allowed = AllowedHosts::parse(&[origin]).map_err(anyhow::Error::msg)?;
    let bare = Bare::with_http(wasm)?;
    compare(
        &current_thread()?,
        component(wasm),
        calls,
        url.as_bytes().to_vec(),
        allowed,
        async |payload| bare.handle(payload).await,
    )
}

/// The host's dispatch of `payload` to `component` against `baseline`'s, alternating, on
/// `runtime`.
fn compare(
    runtime: &tokio::runtime::Runtime,
    component: Component,
    calls: usize,
    payload: Vec<u8>,
    allowed_hosts: AllowedHosts,
    baseline: impl AsyncFn(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Figures> {
    let mut options = EngineOptions::default();
    options.cache_dir = None;
    let engine = Engine::new(options)?;
    let host = RedisComponent::new(Arc::new(engine.prepare(
        &component,
        BTreeMap::new(),
        allowed_hosts,
    )?))?;
    let message = Message {
        channel: "bench".into(),
        payload,
        pattern: None,
        entry: None,
    };
    // The limits a trigger without its own runs under: the default deadline is part of the path.
    let limits = engine.limits(&Default::default());
    compare_paths(
        runtime,
        calls,
        async || host.handle(&engine, &message, &limits).await,
        async || baseline(&message.payload).await,
    )
}

/// Two paths' latencies, `host` against `baseline`, in alternating rounds after a warm-up.
fn compare_paths(
    runtime: &tokio::runtime::Runtime,
    calls: usize,
    host: impl AsyncFn() -> anyhow::Result<()>,
    baseline: impl AsyncFn() -> anyhow::Result<()>,
) -> anyhow::Result<Figures> {
    runtime.block_on(async {
        // Warm-up: fill the allocator's pools and the caches.
        for _ in 0..(calls / 10).max(10) {
            host().await?;
            baseline().await?;
        }
        let per_round = calls.div_ceil(ROUNDS);
        let mut host_samples = Vec::with_capacity(per_round * ROUNDS);
        let mut bare_samples = Vec::with_capacity(per_round * ROUNDS);
        for _ in 0..ROUNDS {
            for _ in 0..per_round {
                let started = Instant::now();
                host().await?;
                host_samples.push(started.elapsed());
            }
            for _ in 0..per_round {
                let started = Instant::now();
                baseline().await?;
                bare_samples.push(started.elapsed());
            }
        }
        host_samples.sort();
        bare_samples.sort();
        Ok(Figures {
            host: Latencies(host_samples),
            bare: Latencies(bare_samples),
        })
    })
}

/// The host's dispatch as a trigger makes it, with its reporting around the call (event
/// counters, in-flight gauge, duration histogram): metrics recorded (`host`) against not
/// (`bare`).
pub fn run_metrics(wasm: &Path, calls: usize) -> anyhow::Result<Figures> {
    let on = Reported::new(wasm, true)?;
    let off = Reported::new(wasm, false)?;
    compare_paths(
        &current_thread()?,
        calls,
        async || on.handle().await,
        async || off.handle().await,
    )
}

/// A component dispatched through an engine with metrics on or off, reporting each call.
struct Reported {
    engine: Engine,
    component: RedisComponent,
    reporter: EventReporter,
    message: Message,
    limits: spin_trigger_host::internals::Limits,
}

impl Reported {
    fn new(wasm: &Path, metrics: bool) -> anyhow::Result<Self> {
        let mut options = EngineOptions::default();
        options.cache_dir = None;
        // Recording is on when metrics are served; the engine alone serves nothing.
        options.telemetry.metrics_addr =
            metrics.then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let engine = Engine::new(options)?;
        let component = RedisComponent::new(Arc::new(engine.prepare(
            &component(wasm),
            BTreeMap::new(),
            AllowedHosts::default(),
        )?))?;
        Ok(Reported {
            reporter: engine.reporter("redis", "bench", "print"),
            limits: engine.limits(&Default::default()),
            engine,
            component,
            message: Message {
                channel: "bench".into(),
                payload: Vec::new(),
                pattern: None,
                entry: None,
            },
        })
    }

    async fn handle(&self) -> anyhow::Result<()> {
        self.reporter.received(1);
        let call = self.reporter.start(CallInfo {
            destination: Some(&self.message.channel),
            ..CallInfo::default()
        });
        let result = self
            .component
            .handle(&self.engine, &self.message, &self.limits)
            .await;
        call.finish(result.as_ref().err());
        result
    }
}
