//! `spin-trigger-host`: runs the timer and Redis triggers of a Spin app.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use spin_trigger_host::variables::{self, Providers};
use spin_trigger_host::{EngineOptions, ResolvedVariables, Runtime, builder, manifest};

#[derive(Parser)]
#[command(name = "spin-trigger-host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every timer trigger of an app until Ctrl-C / SIGTERM.
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
    /// How long to wait for handlers in flight at shutdown.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "spin_trigger_host=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let manifest_path = if args.manifest.is_dir() {
        args.manifest.join("spin.toml")
    } else {
        args.manifest
    };
    let app = manifest::load(&manifest_path)?;
    let cli_variables: BTreeMap<String, String> = args.variables.into_iter().collect();
    let variables = ResolvedVariables::resolve(&app, &Providers::from_process(cli_variables))?;
    if args.build {
        builder::build_components(&app).await?;
    }
    let mut options = EngineOptions::default();
    if let Some(dir) = args.cache_dir {
        options.cache_dir = Some(dir);
    }
    if args.no_cache {
        options.cache_dir = None;
    }
    let runtime = Runtime::new(&app, &variables, options)
        .with_context(|| format!("preparing {}", manifest_path.display()))?;
    if args.once {
        return runtime.run_once().await;
    }
    tracing::info!(app = %app.name, "running; Ctrl-C to stop");
    runtime
        .run_until(shutdown_signal(), args.shutdown_timeout)
        .await;
    Ok(())
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
