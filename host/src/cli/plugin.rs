//! Running as a Spin trigger plugin: `spin up` launches `trigger-timer` or
//! `trigger-redis-stream` with `SPIN_LOCKED_URL`, and asks each for its flags first
//! (`--launch-metadata-only`, `--help-args-only`); `spin registry push` asks for a component
//! composed with its trigger dependencies (`--precompose-only`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};

use super::args::PluginArgs;
use super::{RunContext, block_on, run};
use crate::{App, locked_app};

/// The plugin entry point: `trigger-<type>` runs that type's triggers of the locked app; any
/// other name (as in tests) runs every trigger type this host knows.
pub(super) fn plugin(
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
    if args.precompose_only {
        return precompose(&url, args.precompose_component_id.as_deref());
    }
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

/// `--precompose-only`: the component's bytes on stdout, as Spin's own triggers write them. A
/// component without trigger dependencies is written unchanged; one with them is an error until
/// this host composes them (Spin's own triggers compose HTTP middleware).
fn precompose(url: &str, component_id: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let id = component_id.context("got --precompose-only but no --precompose-component-id")?;
    let bytes = locked_app::precompose(url, id)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .context("writing the component to stdout")
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
