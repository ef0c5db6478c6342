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
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::runtime_config::{self, RuntimeConfig, UserPath};
use crate::stdio::{Follow, OutputOptions};
use crate::variables::{Providers, VariableSource};
use crate::{
    App, EngineOptions, OtlpSignals, Runtime, StateOptions, TelemetryOptions, component_build,
    engine, locked_app, manifest,
};

#[derive(Parser)]
#[command(name = "spin-trigger-host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every trigger of an app (timer, Redis, Redis Streams) until Ctrl-C / SIGTERM.
    Up(UpArgs),
}

#[derive(Args)]
struct UpArgs {
    /// The app's manifest, or a directory containing spin.toml.
    #[arg(
        short = 'f',
        long = "from",
        visible_alias = "file",
        default_value = "spin.toml"
    )]
    manifest: PathBuf,
    /// Run each component's build command first.
    #[arg(long)]
    build: bool,
    /// Run the triggers this host runs and leave out the others (such as HTTP), saying which,
    /// instead of refusing the app.
    #[arg(long)]
    skip_unsupported_triggers: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// What both entry points accept.
#[derive(Args)]
struct RunArgs {
    /// Run each timer component once and exit; non-zero if any failed.
    #[arg(long, visible_alias = "test")]
    once: bool,
    /// Set an application variable: `name=value`, `name=@file` (the file's text), or every
    /// pair in `@file.json` / `@file.toml` (repeatable; the last value wins; above the runtime
    /// config's providers, SPIN_VARIABLE_<NAME> and defaults).
    #[arg(
        long = "variable",
        value_name = "KEY=VALUE | KEY=@FILE | @FILE.json | @FILE.toml"
    )]
    variables: Vec<VariableSource>,
    /// Where compiled components are cached between runs.
    #[arg(long, env = "SPIN_TRIGGER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and cache nothing.
    #[arg(
        long = "disable-cache",
        visible_alias = "no-cache",
        env = "DISABLE_WASMTIME_CACHE",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "cache"
    )]
    disable_cache: bool,
    /// How long to wait for handlers in flight at shutdown; past it, exit non-zero naming the
    /// components still running.
    #[arg(long, default_value = "10s", value_parser = crate::limits::parse_duration)]
    shutdown_timeout: Duration,
    /// How long one handler call may run before its instance is stopped (a trigger's
    /// `handler_timeout` overrides it).
    #[arg(long, default_value = "30s", value_parser = crate::limits::parse_duration)]
    handler_timeout: Duration,
    /// How large one instance's memory may grow, e.g. 256MiB (default; a trigger's
    /// `max_memory` overrides it).
    #[arg(long, value_parser = crate::limits::parse_memory_size, conflicts_with = "max_instance_memory")]
    max_memory: Option<usize>,
    /// How many elements one instance's tables may hold.
    #[arg(long, default_value = "20000", value_parser = crate::limits::parse_table_elements)]
    max_table_elements: usize,
    /// A CA certificate (PEM) to check `rediss://` servers against instead of the public roots.
    #[arg(long, env = "SPIN_TRIGGER_TLS_CA_FILE")]
    tls_ca_file: Option<PathBuf>,
    /// How the host's own log lines (stderr) are written: `text`, or `json` (one object per
    /// line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = LOG_FORMAT_VARIABLE)]
    log_format: LogFormat,
    /// Serve Prometheus metrics (`/metrics`) and health probes (`/healthz`, `/readyz`) on this
    /// address, e.g. 127.0.0.1:9090; off unless given.
    #[arg(long, env = "SPIN_TRIGGER_METRICS_ADDR", value_name = "ADDRESS:PORT")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Set this apart for each deployment of one app that shares a Redis server (staging,
    /// production): the timers' coordination keys and the stream triggers' default consumer
    /// group carry it, so one deployment neither suppresses the other's ticks nor takes its
    /// entries. Unset: the app's name alone, as before.
    #[arg(long, env = "SPIN_TRIGGER_NAMESPACE", value_name = "NAME", value_parser = parse_namespace)]
    namespace: Option<String>,
    #[command(flatten)]
    spin: SpinTriggerOptions,
}

/// The environment variable that sets `--log-format`.
const LOG_FORMAT_VARIABLE: &str = "SPIN_TRIGGER_LOG_FORMAT";

/// How the host's own log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields.
    Json,
}

impl LogFormat {
    /// The format asked for, read before the arguments are parsed, so that everything from
    /// argument parsing on logs in it: the last `--log-format` (or `--log-format=`), else
    /// `SPIN_TRIGGER_LOG_FORMAT`. Anything but `json` is text here; clap then refuses a value
    /// that is neither.
    fn requested(args: &[String], variable: Option<String>) -> LogFormat {
        let mut requested = variable;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--log-format" {
                requested = args.next().cloned();
            } else if let Some(value) = arg.strip_prefix("--log-format=") {
                requested = Some(value.to_owned());
            }
        }
        match requested.as_deref() {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Spin's common trigger options: `spin up` forwards each of them to every trigger plugin it
/// launches, so the plugin takes them all, with Spin's meaning where this host can give one.
#[derive(Args)]
#[command(next_help_heading = "Spin's common trigger options")]
struct SpinTriggerOptions {
    /// Where components' stdout and stderr are also written, as <component>_stdout.txt and
    /// _stderr.txt (default: logs/ in the state directory; "" for none).
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR")]
    log_dir: Option<String>,
    /// Empty the components' log files before starting.
    #[arg(long)]
    truncate_logs: bool,
    /// A wasmtime cache config file: its [cache] `directory` holds the compiled components,
    /// and `enabled = false` turns the cache off.
    #[arg(long = "cache", env = "WASMTIME_CACHE_FILE")]
    cache: Option<PathBuf>,
    /// Allocate each instance on demand instead of from the pooling allocator.
    #[arg(long)]
    disable_pooling: bool,
    /// Generate native debug info for guest code, for gdb or lldb.
    #[arg(long)]
    debug_info: bool,
    /// Show only this component's output on the terminal (repeatable).
    #[arg(long = "follow", value_name = "COMPONENT")]
    follow: Vec<String>,
    /// Show no component's output on the terminal (log files are still written).
    #[arg(short = 'q', long, aliases = ["sh", "shush"], conflicts_with = "follow")]
    quiet: bool,
    /// Spin's runtime config file: state_dir, log_dir, max_instance_memory, variables
    /// providers, key-value stores and SQLite databases are applied; a section this host does
    /// not provide is an error naming it.
    #[arg(long, env = "RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
    /// The app's state directory (default: .spin/ beside spin.toml; "" for none).
    #[arg(long)]
    state_dir: Option<String>,
    /// Let components write to their `files`, in a copy made for this run.
    #[arg(long)]
    allow_transient_write: bool,
    /// Accepted for Spin's sake; this host provides no wasi:otel imports yet.
    #[arg(long)]
    experimental_wasi_otel: bool,
    /// Set key=value in the default key-value store before start (repeatable).
    #[arg(long = "key-value", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    key_values: Vec<(String, String)>,
    /// Run a statement (or @file.sql) against the default SQLite database before start
    /// (repeatable, in order).
    #[arg(long = "sqlite", value_name = "STATEMENT")]
    sqlite_statements: Vec<String>,
    /// How large one instance's memory may grow, in bytes (as --max-memory).
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY", value_parser = crate::limits::parse_memory_bytes)]
    max_instance_memory: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn the_log_format_is_read_before_the_arguments_are_parsed() {
        let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
        assert_eq!(LogFormat::requested(&args(&["up"]), None), LogFormat::Text);
        assert_eq!(
            LogFormat::requested(&args(&["up", "--log-format", "json"]), None),
            LogFormat::Json
        );
        assert_eq!(
            LogFormat::requested(&args(&["up", "--log-format=json"]), Some("text".into())),
            LogFormat::Json
        );
        assert_eq!(
            LogFormat::requested(&args(&["up"]), Some("json".into())),
            LogFormat::Json
        );
        assert_eq!(
            LogFormat::requested(&args(&["up", "--log-format", "text"]), Some("json".into())),
            LogFormat::Text
        );
    }
}

/// One `--key-value key=value`.
fn parse_key_value(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{pair}` is not `key=value`"))
}

/// The arguments `spin up` passes to the plugin.
#[derive(Parser)]
#[command(version, about = "Runs the app's triggers; launched by `spin up`")]
struct PluginArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Print the flags this trigger takes, as JSON on stderr, and exit (for `spin up`).
    #[arg(long, hide = true)]
    launch_metadata_only: bool,
    /// Print help for this trigger's flags and exit (for `spin up --help`).
    #[arg(long, hide = true)]
    help_args_only: bool,
}

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
            Command::Up(args) => block_on(up(args)),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = crate::errors::one_line(&error);
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

/// The plugin entry point: `trigger-<type>` runs that type's triggers of the locked app; any
/// other name (as in tests) runs every trigger type this host knows.
fn plugin(
    program: &str,
    trigger_type: Option<&str>,
    locked_url: Option<String>,
) -> anyhow::Result<()> {
    let command = PluginArgs::command().name(program.to_owned());
    let mut args = PluginArgs::from_arg_matches_mut(&mut command.clone().get_matches())?;
    if args.help_args_only {
        let mut help_command = command;
        help_command.print_help()?;
        return Ok(());
    }
    if args.launch_metadata_only {
        eprintln!("{}", launch_metadata(&command));
        return Ok(());
    }
    let url =
        locked_url.context("SPIN_LOCKED_URL is not set: this entry point is run by `spin up`")?;
    let local_app_dir = std::env::var_os("SPIN_LOCAL_APP_DIR").map(PathBuf::from);
    let mut app = locked_app::load(
        &url,
        local_app_dir
            .as_deref()
            .filter(|dir| !dir.as_os_str().is_empty()),
    )?;
    if let Some(trigger_type) = trigger_type {
        args.run.metrics_addr = plugin_metrics_addr(&app, trigger_type, args.run.metrics_addr);
        app.retain_trigger_type(trigger_type);
    }
    let context = RunContext {
        working_dir: std::env::var_os("SPIN_WORKING_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from),
        // As Spin: `.spin/` in the local app directory, which `spin up` may pass empty (the
        // working directory it runs in); none for an app that is not local.
        default_state_dir: local_app_dir.map(|dir| dir.join(".spin")),
        component_ids: locked_app::component_ids(&url)?,
    };
    block_on(run(app, args.run, context))
}

/// `--namespace`: printable ASCII without spaces, so a Redis key or group name holding it
/// reads plainly in `redis-cli`.
fn parse_namespace(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 64 || !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "`{}`: a namespace is 1 to 64 visible ASCII characters, e.g. `staging` or `prod-eu`",
            text.escape_debug()
        ));
    }
    Ok(text.to_owned())
}

/// Where this plugin process serves its metrics. `spin up` passes `--metrics-addr` to both of
/// this host's plugins when an app has timer and Redis stream triggers, and each is a process
/// of its own: the timer plugin takes the address, the stream plugin the next port, so neither
/// fails to bind.
fn plugin_metrics_addr(
    app: &App,
    trigger_type: &str,
    address: Option<std::net::SocketAddr>,
) -> Option<std::net::SocketAddr> {
    let has = |name: &str| {
        app.triggers
            .iter()
            .any(|trigger| trigger.config.type_name() == name)
    };
    let mut address = address?;
    if trigger_type == "redis-stream" && has("timer") && address.port() != 0 {
        address.set_port(address.port().checked_add(1)?);
        tracing::info!(
            %address,
            "this app's timer triggers run in the trigger-timer plugin, which serves the metrics \
             address given; this plugin's (Redis stream triggers) are on the next port"
        );
    }
    Some(address)
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

/// Spin's launch metadata: every flag this trigger takes, so `spin up` can route them.
fn launch_metadata(command: &clap::Command) -> String {
    let mut flags = Vec::new();
    for arg in command.get_arguments().filter(|arg| !arg.is_positional()) {
        let mut flag = serde_json::Map::new();
        if let Some(short) = arg.get_short() {
            flag.insert("short".into(), format!("-{short}").into());
        }
        if let Some(long) = arg.get_long() {
            flag.insert("long".into(), format!("--{long}").into());
        }
        flags.push(serde_json::Value::Object(flag));
        // Aliases such as `--test` route to this trigger too.
        for alias in arg.get_all_aliases().unwrap_or_default() {
            flags.push(serde_json::json!({ "long": format!("--{alias}") }));
        }
    }
    serde_json::json!({ "all_flags": flags }).to_string()
}

/// Applies the options, prepares every component, then runs once or until a signal.
async fn run(app: App, args: RunArgs, context: RunContext) -> anyhow::Result<()> {
    let spin = &args.spin;
    let mut runtime_config = match &spin.runtime_config_file {
        Some(file) => RuntimeConfig::load(file)?,
        None => RuntimeConfig::default(),
    };
    let mut providers = Providers::from_process(VariableSource::merge_all(&args.variables)?);
    providers.configured = std::mem::take(&mut runtime_config.variable_providers);
    let variables = app.resolve_variables(&providers)?;
    if spin.experimental_wasi_otel {
        tracing::debug!(
            "--experimental-wasi-otel: this host provides no wasi:otel imports yet; a component importing them is refused at start, naming them"
        );
    }

    let state_dir = runtime_config::resolve_dir(
        spin.state_dir.as_deref().map(UserPath::from_text).as_ref(),
        runtime_config.state_dir.as_ref(),
        context.default_state_dir,
    )
    .context("--state-dir")?;
    let state = StateOptions {
        state_dir: state_dir.clone(),
        key_value_stores: std::mem::take(&mut runtime_config.key_value_stores),
        sqlite_databases: std::mem::take(&mut runtime_config.sqlite_databases),
        key_values: spin.key_values.clone(),
        sqlite_statements: sqlite_statements(&spin.sqlite_statements)?,
    };
    let log_dir = runtime_config::resolve_dir(
        spin.log_dir.as_deref().map(UserPath::from_text).as_ref(),
        runtime_config.log_dir.as_ref(),
        state_dir.map(|dir| dir.join("logs")),
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

    let mut options = EngineOptions {
        handler_timeout: args.handler_timeout,
        max_instance_memory: args
            .max_memory
            .or(spin.max_instance_memory)
            .or(runtime_config.max_instance_memory)
            .unwrap_or(EngineOptions::default().max_instance_memory),
        max_table_elements: args.max_table_elements,
        tls_ca_file: args.tls_ca_file,
        pooling: !spin.disable_pooling,
        debug_info: spin.debug_info,
        allow_transient_write: spin.allow_transient_write,
        output,
        state,
        namespace: args.namespace,
        telemetry: TelemetryOptions {
            metrics_addr: args.metrics_addr,
            otlp: OtlpSignals::from_env()?,
        },
        ..EngineOptions::default()
    };
    if let Some(dir) = context.working_dir {
        options.cache_dir = Some(dir.join("compiled-components"));
    }
    if let Some(dir) = args.cache_dir {
        options.cache_dir = Some(dir);
    }
    if let Some(file) = &spin.cache {
        options.cache_dir = engine::cache_dir_from_config_file(file, options.cache_dir)?;
    }
    if args.disable_cache {
        options.cache_dir = None;
    }
    let runtime = Runtime::new(&app, &variables, options)
        .with_context(|| format!("preparing {}", app.origin.display()))?;
    if args.once {
        return runtime.run_once().await;
    }
    let shutdown = shutdown_signal();
    tracing::info!(app = %app.name, "running; Ctrl-C to stop");
    runtime.run_until(shutdown, args.shutdown_timeout).await
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
