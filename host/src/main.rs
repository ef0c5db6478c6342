//! `spin-trigger-host`: runs the timer, Redis and Redis Streams triggers of a Spin app.
//!
//! Two entry points share one run path:
//! - `spin-trigger-host up -f spin.toml`: standalone, from a manifest;
//! - as a Spin plugin (`trigger-timer` or `trigger-redis-stream`, launched by `spin up` with
//!   `SPIN_LOCKED_URL`): that type's triggers of the locked app, answering
//!   `--launch-metadata-only` and `--help-args-only` as Spin expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use spin_trigger_host::variables::{self, Providers};
use spin_trigger_host::{
    App, EngineOptions, ResolvedVariables, Runtime, builder, locked_app, manifest,
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
    #[command(flatten)]
    run: RunArgs,
}

/// What both entry points accept.
#[derive(Args)]
struct RunArgs {
    /// Run each timer component once and exit; non-zero if any failed.
    #[arg(long, visible_alias = "test")]
    once: bool,
    /// Set an application variable (highest priority, above SPIN_VARIABLE_<NAME> and defaults).
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = variables::parse_cli_pair)]
    variables: Vec<(String, String)>,
    /// Where compiled components are cached between runs.
    #[arg(long, env = "SPIN_TRIGGER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and cache nothing.
    #[arg(long)]
    no_cache: bool,
    /// How long to wait for handlers in flight at shutdown; past it, exit non-zero naming the
    /// components still running.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// How long one handler call may run before its instance is stopped (a trigger's
    /// `handler_timeout` overrides it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    handler_timeout: Duration,
    /// How large one instance's memory may grow, e.g. 256MiB (a trigger's `max_memory`
    /// overrides it).
    #[arg(long, default_value = "256MiB", value_parser = spin_trigger_host::manifest::parse_memory_size)]
    max_memory: usize,
    /// How many elements one instance's tables may hold.
    #[arg(long, default_value_t = 20_000)]
    max_table_elements: usize,
    /// A CA certificate (PEM) to check `rediss://` servers against instead of the public roots.
    #[arg(long, env = "SPIN_TRIGGER_TLS_CA_FILE")]
    tls_ca_file: Option<PathBuf>,
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "spin_trigger_host=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted())
        .init();
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
            eprintln!("Error: {}", spin_trigger_host::errors::one_line(&error));
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
    let app = manifest::load(&manifest_path)?;
    if args.build {
        builder::build_components(&app).await?;
    }
    run(app, args.run, None).await
}

/// The plugin entry point: `trigger-<type>` runs that type's triggers of the locked app; any
/// other name (as in tests) runs every trigger type this host knows.
fn plugin(
    program: &str,
    trigger_type: Option<&str>,
    locked_url: Option<String>,
) -> anyhow::Result<()> {
    let command = PluginArgs::command().name(program.to_owned());
    let args = PluginArgs::from_arg_matches_mut(&mut command.clone().get_matches())?;
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
    let local_app_dir = std::env::var_os("SPIN_LOCAL_APP_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    let mut app = locked_app::load(&url, local_app_dir.as_deref())?;
    if let Some(trigger_type) = trigger_type {
        app.retain_trigger_type(trigger_type);
    }
    let working_dir = std::env::var_os("SPIN_WORKING_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    block_on(run(app, args.run, working_dir))
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

/// Resolves variables, prepares every component, then runs once or until a signal.
async fn run(app: App, args: RunArgs, working_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let cli_variables: BTreeMap<String, String> = args.variables.into_iter().collect();
    let variables = ResolvedVariables::resolve(&app, &Providers::from_process(cli_variables))?;
    let mut options = EngineOptions {
        handler_timeout: args.handler_timeout,
        max_instance_memory: args.max_memory,
        max_table_elements: args.max_table_elements,
        tls_ca_file: args.tls_ca_file,
        ..EngineOptions::default()
    };
    if let Some(dir) = working_dir {
        options.cache_dir = Some(dir.join("compiled-components"));
    }
    if let Some(dir) = args.cache_dir {
        options.cache_dir = Some(dir);
    }
    if args.no_cache {
        options.cache_dir = None;
    }
    let runtime = Runtime::new(&app, &variables, options)
        .with_context(|| format!("preparing {}", app.origin.display()))?;
    if args.once {
        return runtime.run_once().await;
    }
    tracing::info!(app = %app.name, "running; Ctrl-C to stop");
    runtime
        .run_until(shutdown_signal(), args.shutdown_timeout)
        .await
}

/// Completes at Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
