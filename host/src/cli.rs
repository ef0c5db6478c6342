//! The `spin-trigger-host` command line: runs the timer, Redis and Redis Streams triggers of a
//! Spin app. The binary is [`main`]; it lives in the library so that the binary is one line.
//!
//! Two entry points share one run path:
//! - `spin-trigger-host up -f spin.toml`: standalone, from a manifest;
//! - as a Spin plugin (`trigger-timer` or `trigger-redis-stream`, launched by `spin up` with
//!   `SPIN_LOCKED_URL`): that type's triggers of the locked app, answering
//!   `--launch-metadata-only` and `--help-args-only` as Spin expects.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::runtime_config::{self, RuntimeConfig, UserPath};
use crate::stdio::{Follow, OutputOptions};
use crate::variables::{Providers, VariableSource};
use crate::{
    App, EngineOptions, OtlpSignals, Runtime, StateOptions, component_build, engine, manifest,
};

mod args;
mod ctl;
mod plugin;

use args::{
    ADMIN_TOKEN_VARIABLE, AdminTokenArgs, Cli, Command, LOG_FORMAT_VARIABLE, LogFormat, RunArgs,
    UpArgs,
};
use plugin::plugin;

/// Runs the command line with the process's arguments: `up`, or a Spin plugin's launch.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let log_format = LogFormat::requested(&args, std::env::var(LOG_FORMAT_VARIABLE).ok());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "spin_trigger_host=info,warn".into()),
        )
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => logs.with_ansi(colour_wanted()).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let program = std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let locked_url = std::env::var("SPIN_LOCKED_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let plugin_trigger = program.strip_prefix("trigger-").map(str::to_owned);

    let result = if plugin_trigger.is_some() || locked_url.is_some() {
        plugin(&program, plugin_trigger.as_deref(), locked_url)
    } else {
        match Cli::parse().command {
            Command::Up(args) => block_on(up(*args)),
            Command::Ctl(args) => block_on(ctl::ctl(args)),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = crate::error_text::one_line(&error);
            match log_format {
                LogFormat::Text => eprintln!("Error: {message}"),
                // Every stderr line stays one JSON object.
                LogFormat::Json => tracing::error!(error = %message, "the host stopped"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>): logs
/// piped to a file or another program stay plain text.
fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

fn block_on(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(future);
    // A handler still running past `--shutdown-timeout` (already logged) may be on a Redis
    // subscriber's thread; exit without waiting for it.
    runtime.shutdown_background();
    result
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let manifest_path = if args.manifest.is_dir() {
        args.manifest.join("spin.toml")
    } else {
        args.manifest
    };
    let options = manifest::LoadOptions {
        skip_unsupported_triggers: args.skip_unsupported_triggers,
    };
    let app = manifest::load_with(&manifest_path, &options)?;
    if args.build {
        component_build::build_components(&app).await?;
    }
    let context = RunContext {
        working_dir: None,
        // As Spin: `.spin/` beside spin.toml.
        default_state_dir: Some(app.base_dir.join(".spin")),
        component_ids: app.components.keys().cloned().collect(),
    };
    run(app, args.run, context).await
}

/// Where a run happens, as its entry point knows it.
struct RunContext {
    /// Spin's `SPIN_WORKING_DIR`, where the compile cache goes when run as a plugin.
    working_dir: Option<PathBuf>,
    /// The state directory unless `--state-dir` or the runtime config names one.
    default_state_dir: Option<PathBuf>,
    /// Every component of the app, for checking `--follow`.
    component_ids: Vec<String>,
}

/// Applies the options, prepares every component, then runs once or until a signal.
async fn run(app: App, args: RunArgs, context: RunContext) -> anyhow::Result<()> {
    let mut runtime_config = match &args.spin.runtime_config_file {
        Some(file) => RuntimeConfig::load(file)?,
        None => RuntimeConfig::default(),
    };
    let mut providers = Providers::from_process(VariableSource::merge_all(&args.variables)?);
    providers.configured = std::mem::take(&mut runtime_config.variable_providers);
    let variables = app.resolve_variables(&providers)?;
    let once = args.once;
    let shutdown_timeout = args.shutdown_timeout;
    let options = engine_options(args, &mut runtime_config, context)?;
    let runtime = Runtime::new(&app, &variables, options)
        .with_context(|| format!("preparing {}", app.origin.display()))?;
    if once {
        return runtime.run_once().await;
    }
    let shutdown = shutdown_signal();
    tracing::info!(app = %app.name, "running; Ctrl-C to stop");
    runtime.run_until(shutdown, shutdown_timeout).await
}

/// The engine's options from the arguments, the runtime config and where the run happens; the
/// log directory is made (and emptied with `--truncate-logs`) here.
fn engine_options(
    args: RunArgs,
    runtime_config: &mut RuntimeConfig,
    context: RunContext,
) -> anyhow::Result<EngineOptions> {
    let spin = &args.spin;
    let state_dir = runtime_config::resolve_dir(
        spin.state_dir.as_deref().map(UserPath::from_text).as_ref(),
        runtime_config.state_dir.as_ref(),
        context.default_state_dir,
    )
    .context("--state-dir")?;
    let log_dir = runtime_config::resolve_dir(
        spin.log_dir.as_deref().map(UserPath::from_text).as_ref(),
        runtime_config.log_dir.as_ref(),
        state_dir.as_ref().map(|dir| dir.join("logs")),
    )
    .context("--log-dir")?;
    let output = OutputOptions {
        follow: Follow::from_options(spin.quiet, &spin.follow),
        log_dir,
    };
    output
        .follow
        .check(context.component_ids.iter().map(String::as_str))?;
    output.prepare_log_dir(spin.truncate_logs)?;

    let mut options = EngineOptions::default();
    options.handler_timeout = args.handler_timeout;
    options.max_instance_memory = args
        .max_memory
        .or(spin.max_instance_memory)
        .or(runtime_config.max_instance_memory)
        .unwrap_or(options.max_instance_memory);
    options.max_table_elements = args.max_table_elements;
    options.tls_ca_file = args.tls_ca_file.clone();
    options.pooling = !spin.disable_pooling;
    options.debug_info = spin.debug_info;
    options.allow_transient_write = spin.allow_transient_write;
    options.output = output;
    options.state = StateOptions {
        state_dir,
        key_value_stores: std::mem::take(&mut runtime_config.key_value_stores),
        sqlite_databases: std::mem::take(&mut runtime_config.sqlite_databases),
        key_values: spin.key_values.clone(),
        sqlite_statements: sqlite_statements(&spin.sqlite_statements)?,
    };
    options.namespace = args.namespace.clone();
    options.telemetry.metrics_addr = args.metrics_addr;
    options.admin.address = args.admin_addr;
    if args.admin_addr.is_some() {
        options.admin.token = admin_token(&args.admin_token)?;
    }
    options.telemetry.otlp = OtlpSignals::from_env()?;
    options.telemetry.wasi_otel = args.spin.experimental_wasi_otel;
    options.cache_dir = compile_cache_dir(&args, context.working_dir, options.cache_dir)?;
    Ok(options)
}

/// Where compiled components are cached: `--cache-dir`, else Spin's working directory in plugin
/// mode, else `default`; a `--cache` file may move or disable it, and `--disable-cache` does.
fn compile_cache_dir(
    args: &RunArgs,
    working_dir: Option<PathBuf>,
    default: Option<PathBuf>,
) -> anyhow::Result<Option<PathBuf>> {
    let mut cache_dir = working_dir
        .map(|dir| dir.join("compiled-components"))
        .or(default);
    if let Some(dir) = &args.cache_dir {
        cache_dir = Some(dir.clone());
    }
    if let Some(file) = &args.spin.cache {
        cache_dir = engine::cache_dir_from_config_file(file, cache_dir)?;
    }
    Ok(cache_dir.filter(|_| !args.disable_cache))
}

/// The admin endpoint's token: `--admin-token-file`'s contents, else `SPIN_TRIGGER_ADMIN_TOKEN`;
/// `None` when neither is set.
fn admin_token(args: &AdminTokenArgs) -> anyhow::Result<Option<crate::AdminToken>> {
    let (token, from) = match &args.admin_token_file {
        Some(file) => (
            std::fs::read_to_string(file)
                .with_context(|| format!("--admin-token-file: reading {}", file.display()))?,
            format!("--admin-token-file {}", file.display()),
        ),
        None => match std::env::var(ADMIN_TOKEN_VARIABLE) {
            Ok(token) => (token, ADMIN_TOKEN_VARIABLE.to_owned()),
            Err(_) => return Ok(None),
        },
    };
    crate::AdminToken::new(&token)
        .map(Some)
        .with_context(|| from)
}

/// `--sqlite` statements, each as written or, for `@file.sql`, the file's contents.
fn sqlite_statements(statements: &[String]) -> anyhow::Result<Vec<String>> {
    statements
        .iter()
        .map(|statement| match statement.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("--sqlite @{file}: reading the statements file")),
            None => Ok(statement.clone()),
        })
        .collect()
}

/// Completes at Ctrl-C or SIGTERM.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // The listeners are made here, before the host says it is running: a SIGTERM sent as soon
    // as it does (as a service manager or a test may) must find them in place, or it is lost.
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind)
            .inspect_err(|error| tracing::warn!("cannot listen for {name}: {error}"))
            .ok()
    };
    let (terminate, interrupt) = (
        listen(SignalKind::terminate(), "SIGTERM"),
        listen(SignalKind::interrupt(), "SIGINT"),
    );
    async move {
        let received = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = received(terminate) => {}
            _ = received(interrupt) => {}
        }
    }
}
