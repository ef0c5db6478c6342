//! A thin host for Spin timer and Redis components: wasmtime + tokio.
//!
//! The architecture, one concern per module:
//!
//! - [`manifest`]: reads and validates `spin.toml` (manifest version 2) into the [`app`] model.
//! - [`locked_app`]: reads the locked app `spin up` hands a plugin into the same model.
//! - [`variables`]: `[variables]`, `{{ var }}` templates, and resolution from `--variable`,
//!   the runtime config's providers, `SPIN_VARIABLE_<NAME>` and defaults.
//! - [`runtime_config`]: Spin's runtime config file (`--runtime-config-file`).
//! - [`engine`]: the wasmtime engine, the compiled-component cache, `InstancePre`, per-event stores.
//! - [`guest_files`]: what a guest sees of the host's files (`files`, `exclude_files`).
//! - [`trigger`]: the shape every trigger type has, and the one list that registers each.
//! - [`timer`]: the timer trigger — where a timer fires.
//! - [`redis_trigger`]: the Redis trigger — where a message is dispatched.
//! - [`stream_trigger`]: the Redis Streams trigger — where a stream entry is dispatched, acked,
//!   retried, dead-lettered or claimed from a consumer that died.
//! - [`host_api`]: host APIs a guest imports: variables and outbound Redis, in Spin's 2.0.0 and
//!   3.0.0 (`async func`) versions.
//! - [`redis_client`]: Redis clients for triggers and guests, and how `rediss://` is trusted.
//! - [`allowed_hosts`]: `allowed_outbound_hosts` matching.
//! - [`stdio`]: component output: prefixed with the component id on the terminal (`--follow`,
//!   `--quiet`), and into log files (`--log-dir`).
//! - [`builder`]: `up --build`.
//! - [`errors`]: error messages on one line, each cause once.
//! - [`runtime`]: ties it together; [`Runtime::run_until`] runs every trigger of an app.

pub mod allowed_hosts;
pub mod app;
pub mod app_builder;
pub mod app_spec;
pub mod cli;
pub mod component;
pub mod component_build;
pub mod engine;
pub mod errors;
pub mod events;
pub mod guest_files;
pub mod host_api;
pub mod limits;
pub mod live;
pub mod locked_app;
pub mod manifest;
pub mod redis_address;
pub mod redis_client;
pub mod redis_component;
pub mod redis_trigger;
pub mod runtime;
pub mod runtime_config;
pub mod stdio;
pub mod stream_trigger;
pub mod template;
pub mod timer;
pub mod trigger;
pub mod triggers;
pub mod validation;
pub mod variables;

pub use app::App;
pub use engine::EngineOptions;
pub use runtime::Runtime;
pub use variables::ResolvedVariables;
