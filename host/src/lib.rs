//! A thin host for Spin timer and Redis components: wasmtime + tokio. It runs an app's timer,
//! Redis (pub/sub) and Redis Streams triggers in one process, as the `spin-trigger-host`
//! binary ([`cli`]) or embedded in a program of your own.
//!
//! # Embedding
//!
//! Build an app in code ([`App::builder`], see [`app_builder`]) or load one
//! ([`manifest::load`], [`locked_app::load`]); resolve its variables; compile it into a
//! [`Runtime`]; then run it on your tokio runtime ([`Runtime::start`], stopped with
//! [`RunningApp::stop`]) or run its timers once ([`Runtime::run_once`]). Each handler call's
//! outcome reaches an [`events::EventSink`] you set in [`EngineOptions::events`].
//!
//! ```no_run
//! use std::time::Duration;
//! use spin_trigger_host::app_builder::{ComponentBuilder, TriggerBuilder};
//! use spin_trigger_host::events::EventSink;
//! use spin_trigger_host::variables::Providers;
//! use spin_trigger_host::{App, EngineOptions, Runtime};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let app = App::builder("clock")
//!     .component(ComponentBuilder::from_file("tick", "tick.wasm"))
//!     .trigger(TriggerBuilder::timer("tick").interval(Duration::from_secs(1)))
//!     .build()?;
//! let variables = app.resolve_variables(&Providers::default())?;
//! let (events, mut outcomes) = EventSink::channel();
//! let mut options = EngineOptions::default();
//! options.events = Some(events);
//! let running = Runtime::new(&app, &variables, options)?.start();
//! if let Some(outcome) = outcomes.recv().await {
//!     println!("{} ran in {:?}: {:?}", outcome.component, outcome.duration, outcome.result);
//! }
//! running.stop(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! `examples/embed` in the repository is a whole program doing this with a timer and a Redis
//! stream.
//!
//! # Layout
//!
//! One concern per module; each imports only modules listed before it in its group or in the
//! groups above (a test checks that no two modules import each other in a circle).
//!
//! The model and its loaders:
//! - `error_text`, `allowed_hosts`, `variable_templates`, `limits`: error messages on one line,
//!   outbound host matching, `[variables]` and their `{{ var }}` templates, the range of every
//!   number a user writes and the limits of one handler call.
//! - `component`, `validation`: a component as the host runs it, and the vocabulary every app
//!   source is validated in (a component as written, each trigger type's tables).
//! - `variables`, `runtime_config`, `stdio`, `events`: variable providers and resolution, Spin's
//!   runtime config file, component output, event outcomes.
//!
//! The engine:
//! - `call_trace`: the trace context a handler call runs in; the spans of its outbound calls
//!   and its guest's own, inside the call's span.
//! - `live`, `redis_client`, `stores`, `host_api`: which instances are running; Redis clients
//!   and TLS; the key-value stores and SQLite databases components open by label; each host API
//!   a guest imports (variables, outbound Redis, outbound HTTP, key-value, SQLite) and its
//!   linking.
//! - `http_endpoint`, `control`, `admin`: the small HTTP server of the host's own endpoints;
//!   what an operator may do to a running trigger (pause, resume, run now) and see of it; the
//!   admin endpoint serving that on `--admin-addr`, for a bearer token.
//! - `telemetry`: metrics (Prometheus on `--metrics-addr`, OTLP), connection health
//!   (`/healthz`, `/readyz`), a span per handler call; each trigger reports through it.
//! - `guest_files`, `engine`: what a guest sees of the host's files; wasmtime, the
//!   compiled-component cache, `InstancePre`, a store per event.
//!
//! The triggers:
//! - `trigger_type`: the contract each trigger type fulfils, and what every build starts with.
//! - `rate_limit`, `retry_backoff`: `max_per_second`, on one host or shared by all through
//!   Redis; the doubling wait between attempts at a failed event.
//! - `redis_address`, `redis_component`: a trigger's Redis server, and a component in any Redis
//!   world; shared by the two Redis triggers.
//! - `timer` (where a timer fires), `redis_trigger` (where a message is dispatched),
//!   `stream_trigger` (where a stream entry is dispatched, acknowledged, retried, dead-lettered or
//!   claimed).
//! - `trigger_registry`: the one registration list, above the trigger modules.
//!
//! The app and running it:
//! - `app`, `app_spec`: the resolved app model; an app as any source writes it, validated.
//! - `manifest`, `locked_app`, `app_builder`: `spin.toml`, Spin's locked app, and code.
//! - `component_build`, `runtime`, `cli`: `up --build`; running an app; the command line.

#![warn(missing_docs)]

// What an embedder uses.
pub mod app;
pub mod app_builder;
pub mod cli;
pub mod events;
pub mod locked_app;
pub mod manifest;
pub mod variables;

// The host's inside (mapped in the crate documentation above).
mod admin;
mod allowed_hosts;
mod app_spec;
mod call_trace;
mod component;
mod component_build;
mod control;
mod engine;
mod error_text;
mod guest_files;
mod host_api;
mod http_endpoint;
mod limits;
mod live;
mod rate_limit;
mod redis_address;
mod redis_client;
mod redis_component;
mod redis_trigger;
mod retry_backoff;
mod runtime;
mod runtime_config;
mod stdio;
mod stores;
mod stream_trigger;
mod telemetry;
mod timer;
mod trigger_registry;
mod trigger_type;
mod validation;
mod variable_templates;

pub use admin::{AdminOptions, AdminToken};
pub use app::App;
pub use control::{LastRun, TriggerStatus};
pub use engine::EngineOptions;
pub use runtime::{RunningApp, Runtime};
pub use runtime_config::{KeyValueStoreConfig, SqliteDatabaseConfig};
pub use stdio::{Follow, OutputOptions};
pub use stores::StateOptions;
pub use telemetry::{OtlpSignals, TelemetryOptions};
pub use variables::ResolvedVariables;

/// Not part of the API: the engine's own dispatch path, for this workspace's benchmark and
/// tests to measure and probe. It may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::allowed_hosts::AllowedHosts;
    pub use crate::engine::{Engine, PoolSize, PreparedComponent, pooling_config};
    pub use crate::limits::{
        DURATION_RANGE, Limits, MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE, MEMORY_RANGE,
        SPEEDUP_RANGE, TABLE_ELEMENTS_RANGE,
    };
    pub use crate::redis_component::{Message, Outcome, RedisComponent};
    pub use crate::telemetry::{CallInfo, EventReporter};
}
