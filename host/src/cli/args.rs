//! The command line's arguments: `up`'s, the plugin's (as `spin up` passes them), and the
//! options both take, Spin's common trigger options among them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::variables::VariableSource;

#[derive(Parser)]
#[command(name = "spin-trigger-host", version, about)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Run every trigger of an app (timer, Redis, Redis Streams) until Ctrl-C / SIGTERM.
    Up(Box<UpArgs>),
    /// Control a running host's timers through its admin endpoint (`up --admin-addr`).
    Ctl(CtlArgs),
}

/// `ctl`: which host, and what to do.
#[derive(Args)]
pub(super) struct CtlArgs {
    /// The host's admin endpoint, as `up --admin-addr` serves it.
    #[arg(long, env = "SPIN_TRIGGER_ADMIN_ADDR", value_name = "ADDRESS:PORT")]
    pub(super) admin_addr: std::net::SocketAddr,
    #[command(flatten)]
    pub(super) token: AdminTokenArgs,
    #[command(subcommand)]
    pub(super) action: CtlAction,
}

/// What `ctl` does.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub(super) enum CtlAction {
    /// List each timer: its schedule, whether it is paused, its next tick and its last run.
    List,
    /// Pause a timer: its ticks are skipped (on every host, when it is coordinated).
    Pause {
        /// The trigger's id.
        trigger: String,
    },
    /// Resume a paused timer.
    Resume {
        /// The trigger's id.
        trigger: String,
    },
    /// Run a timer once now, on that host, paused or not.
    Run {
        /// The trigger's id.
        trigger: String,
    },
}

/// Where the admin endpoint's bearer token comes from.
#[derive(Args)]
pub(super) struct AdminTokenArgs {
    /// A file holding the admin endpoint's bearer token (at least 16 characters); else the
    /// token is SPIN_TRIGGER_ADMIN_TOKEN's value.
    #[arg(long, env = "SPIN_TRIGGER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub(super) admin_token_file: Option<PathBuf>,
}

/// The environment variable holding the admin token when no file is given.
pub(super) const ADMIN_TOKEN_VARIABLE: &str = "SPIN_TRIGGER_ADMIN_TOKEN";

#[derive(Args)]
pub(super) struct UpArgs {
    /// The app's manifest, or a directory containing spin.toml.
    #[arg(
        short = 'f',
        long = "from",
        visible_alias = "file",
        default_value = "spin.toml"
    )]
    pub(super) manifest: PathBuf,
    /// Run each component's build command first.
    #[arg(long)]
    pub(super) build: bool,
    /// Run the triggers this host runs and leave out the others (such as HTTP), saying which,
    /// instead of refusing the app.
    #[arg(long)]
    pub(super) skip_unsupported_triggers: bool,
    #[command(flatten)]
    pub(super) run: RunArgs,
}

/// What both entry points accept.
#[derive(Args)]
pub(super) struct RunArgs {
    /// Run each timer component once and exit; non-zero if any failed.
    #[arg(long, visible_alias = "test")]
    pub(super) once: bool,
    /// Set an application variable: `name=value`, `name=@file` (the file's text), or every
    /// pair in `@file.json` / `@file.toml` (repeatable; the last value wins; above the runtime
    /// config's providers, SPIN_VARIABLE_<NAME> and defaults).
    #[arg(
        long = "variable",
        value_name = "KEY=VALUE | KEY=@FILE | @FILE.json | @FILE.toml"
    )]
    pub(super) variables: Vec<VariableSource>,
    /// Where compiled components are cached between runs.
    #[arg(long, env = "SPIN_TRIGGER_CACHE_DIR")]
    pub(super) cache_dir: Option<PathBuf>,
    /// Compile every component afresh and cache nothing.
    #[arg(
        long = "disable-cache",
        visible_alias = "no-cache",
        env = "DISABLE_WASMTIME_CACHE",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "cache"
    )]
    pub(super) disable_cache: bool,
    /// How long to wait for handlers in flight at shutdown; past it, exit non-zero naming the
    /// components still running.
    #[arg(long, default_value = "10s", value_parser = crate::limits::parse_duration)]
    pub(super) shutdown_timeout: Duration,
    /// How long one handler call may run before its instance is stopped (a trigger's
    /// `handler_timeout` overrides it).
    #[arg(long, default_value = "30s", value_parser = crate::limits::parse_duration)]
    pub(super) handler_timeout: Duration,
    /// How large one instance's memory may grow, e.g. 256MiB (default; a trigger's
    /// `max_memory` overrides it).
    #[arg(long, value_parser = crate::limits::parse_memory_size, conflicts_with = "max_instance_memory")]
    pub(super) max_memory: Option<usize>,
    /// How many elements one instance's tables may hold.
    #[arg(long, default_value = "20000", value_parser = crate::limits::parse_table_elements)]
    pub(super) max_table_elements: usize,
    /// A CA certificate (PEM) to check `rediss://` servers against instead of the public roots.
    #[arg(long, env = "SPIN_TRIGGER_TLS_CA_FILE")]
    pub(super) tls_ca_file: Option<PathBuf>,
    /// How the host's own log lines (stderr) are written: `text`, or `json` (one object per
    /// line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = LOG_FORMAT_VARIABLE)]
    pub(super) log_format: LogFormat,
    /// Serve Prometheus metrics (`/metrics`) and health probes (`/healthz`, `/readyz`) on this
    /// address, e.g. 127.0.0.1:9090; off unless given.
    #[arg(long, env = "SPIN_TRIGGER_METRICS_ADDR", value_name = "ADDRESS:PORT")]
    pub(super) metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the admin endpoint on this address (pause, resume and run-now for timers, as
    /// `spin-trigger-host ctl` asks), e.g. 127.0.0.1:9091; off unless given. Every request
    /// needs the bearer token of --admin-token-file or SPIN_TRIGGER_ADMIN_TOKEN.
    #[arg(long, env = "SPIN_TRIGGER_ADMIN_ADDR", value_name = "ADDRESS:PORT")]
    pub(super) admin_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(super) admin_token: AdminTokenArgs,
    /// Set this apart for each deployment of one app that shares a Redis server (staging,
    /// production): the timers' coordination keys and the stream triggers' default consumer
    /// group carry it, so one deployment neither suppresses the other's ticks nor takes its
    /// entries. Unset: the app's name alone, as before.
    #[arg(long, env = "SPIN_TRIGGER_NAMESPACE", value_name = "NAME", value_parser = parse_namespace)]
    pub(super) namespace: Option<String>,
    #[command(flatten)]
    pub(super) spin: SpinTriggerOptions,
}

/// The environment variable that sets `--log-format`.
pub(super) const LOG_FORMAT_VARIABLE: &str = "SPIN_TRIGGER_LOG_FORMAT";

/// How the host's own log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LogFormat {
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
    pub(super) fn requested(args: &[String], variable: Option<String>) -> LogFormat {
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
pub(super) struct SpinTriggerOptions {
    /// Where components' stdout and stderr are also written, as <component>_stdout.txt and
    /// _stderr.txt (default: logs/ in the state directory; "" for none).
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR")]
    pub(super) log_dir: Option<String>,
    /// Empty the components' log files before starting.
    #[arg(long)]
    pub(super) truncate_logs: bool,
    /// A wasmtime cache config file: its [cache] `directory` holds the compiled components,
    /// and `enabled = false` turns the cache off.
    #[arg(long = "cache", env = "WASMTIME_CACHE_FILE")]
    pub(super) cache: Option<PathBuf>,
    /// Allocate each instance on demand instead of from the pooling allocator.
    #[arg(long)]
    pub(super) disable_pooling: bool,
    /// Generate native debug info for guest code, for gdb or lldb.
    #[arg(long)]
    pub(super) debug_info: bool,
    /// Show only this component's output on the terminal (repeatable).
    #[arg(long = "follow", value_name = "COMPONENT")]
    pub(super) follow: Vec<String>,
    /// Show no component's output on the terminal (log files are still written).
    #[arg(short = 'q', long, aliases = ["sh", "shush"], conflicts_with = "follow")]
    pub(super) quiet: bool,
    /// Spin's runtime config file: state_dir, log_dir, max_instance_memory, variables
    /// providers, key-value stores and SQLite databases are applied; a section this host does
    /// not provide is an error naming it.
    #[arg(long, env = "RUNTIME_CONFIG_FILE")]
    pub(super) runtime_config_file: Option<PathBuf>,
    /// The app's state directory (default: .spin/ beside spin.toml; "" for none).
    #[arg(long)]
    pub(super) state_dir: Option<String>,
    /// Let components write to their `files`, in a copy made for this run.
    #[arg(long)]
    pub(super) allow_transient_write: bool,
    /// Link wasi:otel's tracing, so components' own spans join the handler's trace (exported
    /// with the host's, over OTLP).
    #[arg(long)]
    pub(super) experimental_wasi_otel: bool,
    /// Set key=value in the default key-value store before start (repeatable).
    #[arg(long = "key-value", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub(super) key_values: Vec<(String, String)>,
    /// Run a statement (or @file.sql) against the default SQLite database before start
    /// (repeatable, in order).
    #[arg(long = "sqlite", value_name = "STATEMENT")]
    pub(super) sqlite_statements: Vec<String>,
    /// How large one instance's memory may grow, in bytes (as --max-memory).
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY", value_parser = crate::limits::parse_memory_bytes)]
    pub(super) max_instance_memory: Option<usize>,
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
pub(super) struct PluginArgs {
    #[command(flatten)]
    pub(super) run: RunArgs,
    /// Print the flags this trigger takes, as JSON on stderr, and exit (for `spin up`).
    #[arg(long, hide = true)]
    pub(super) launch_metadata_only: bool,
    /// Print help for this trigger's flags and exit (for `spin up --help`).
    #[arg(long, hide = true)]
    pub(super) help_args_only: bool,
    /// Write the component `--precompose-component-id` names, composed with its trigger
    /// dependencies, to stdout and exit (for `spin registry push`, from Spin 4.1 on).
    #[arg(long, hide = true)]
    pub(super) precompose_only: bool,
    /// The component `--precompose-only` writes.
    #[arg(long, hide = true, value_name = "ID")]
    pub(super) precompose_component_id: Option<String>,
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
