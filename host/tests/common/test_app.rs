//! One builder for the apps the tests run: a `spin.toml` written table by table into a temp
//! dir, and the host started on it as a user starts it.
//!
//! ```ignore
//! let app = TestApp::new("limits")
//!     .settings("redis", &format!("address = \"{url}\""))
//!     .trigger("redis", "watcher", "channel = \"requests\"\nhandler_timeout = \"300ms\"")
//!     .component("watcher", &guest("redis-message-guest"), "")
//!     .write();
//! let host = app.start();
//! ```

use std::path::Path;
use std::time::Duration;

use super::host_process::{HostProcess, Run, run_host, run_host_for, write_app};

/// A manifest under construction. Each method adds one table; `fields` are TOML lines
/// (`key = value`, one per line) written into it as they are.
#[derive(Debug, Clone)]
pub struct TestApp {
    name: String,
    variables: Vec<String>,
    settings: Vec<String>,
    triggers: Vec<String>,
    components: Vec<String>,
}

impl TestApp {
    /// `spin_manifest_version = 2`, `[application] name = "<name>"`.
    pub fn new(name: &str) -> Self {
        TestApp {
            name: name.to_owned(),
            variables: Vec::new(),
            settings: Vec::new(),
            triggers: Vec::new(),
            components: Vec::new(),
        }
    }

    /// A `[variables]` entry: `decl` as written, e.g. `{ default = "hi" }`.
    pub fn variable(mut self, name: &str, decl: &str) -> Self {
        self.variables.push(format!("{name} = {decl}"));
        self
    }

    /// `[application.trigger.<trigger_type>]` with `fields`.
    pub fn settings(mut self, trigger_type: &str, fields: &str) -> Self {
        self.settings
            .push(format!("[application.trigger.{trigger_type}]\n{fields}"));
        self
    }

    /// `[application.trigger.<trigger_type>] address = "<url>"`, for the Redis trigger types.
    pub fn redis_address(self, trigger_type: &str, url: &str) -> Self {
        self.settings(trigger_type, &format!("address = \"{url}\""))
    }

    /// A `[[trigger.<trigger_type>]]` running `component`, with `fields`.
    pub fn trigger(mut self, trigger_type: &str, component: &str, fields: &str) -> Self {
        self.triggers.push(format!(
            "[[trigger.{trigger_type}]]\ncomponent = \"{component}\"\n{fields}"
        ));
        self
    }

    /// `[component.<id>]` with `source` (a built guest's path) and `fields`.
    pub fn component(mut self, id: &str, source: &str, fields: &str) -> Self {
        self.components
            .push(format!("[component.{id}]\nsource = \"{source}\"\n{fields}"));
        self
    }

    /// A component replying through outbound Redis at `url`, with the variables the test
    /// guests read: `redis_address` and `reply_channel = "replies"`.
    pub fn replying_component(self, id: &str, source: &str, url: &str) -> Self {
        self.replying_component_to(id, source, url, url)
    }

    /// [`replying_component`](Self::replying_component), its `allowed_outbound_hosts` being
    /// `allowed` rather than `url`.
    pub fn replying_component_to(self, id: &str, source: &str, url: &str, allowed: &str) -> Self {
        self.component(
            id,
            source,
            &format!(
                "allowed_outbound_hosts = [\"{allowed}\"]\n\
                 variables = {{ redis_address = \"{url}\", reply_channel = \"replies\" }}"
            ),
        )
    }

    /// The manifest's text.
    pub fn manifest(&self) -> String {
        let mut text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"{}\"\n",
            self.name
        );
        let mut table = |block: &str| {
            text.push('\n');
            text.push_str(block.trim_end());
            text.push('\n');
        };
        for settings in &self.settings {
            table(settings);
        }
        if !self.variables.is_empty() {
            table(&format!("[variables]\n{}", self.variables.join("\n")));
        }
        for block in self.triggers.iter().chain(&self.components) {
            table(block);
        }
        text
    }

    /// Writes `spin.toml` into a temp dir of its own.
    pub fn write(&self) -> AppDir {
        AppDir(write_app(&self.manifest()))
    }
}

/// A timer (`state-timer-guest`) counting its ticks in a default key-value store kept in the
/// Redis database at `url` (`[key_value_store.default] type = "redis"`); returns the app and
/// the path of its runtime config, which it writes beside `spin.toml`.
pub fn redis_store_counter_app(url: &str) -> (AppDir, String) {
    let app = TestApp::new("redis-store")
        .trigger("timer", "counter", "interval_secs = 1")
        .component(
            "counter",
            &super::guest("state-timer-guest"),
            "key_value_stores = [\"default\"]",
        )
        .write();
    let config = app.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n"),
    )
    .expect("writing the runtime config");
    let config = config.display().to_string();
    (app, config)
}

/// A written app: its directory lives as long as this does.
pub struct AppDir(tempfile::TempDir);

impl AppDir {
    /// The app's directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The manifest's path, as `-f` takes it.
    pub fn manifest(&self) -> String {
        self.path().join("spin.toml").display().to_string()
    }

    /// `up -f <manifest>` followed by `extra`.
    fn up_args<'a>(&'a self, manifest: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["up", "-f", manifest];
        args.extend_from_slice(extra);
        args
    }

    /// Starts `up` in the background.
    pub fn start(&self) -> HostProcess {
        self.start_with(&[], &[])
    }

    /// Starts `up` in the background with `extra` arguments and environment.
    pub fn start_with(&self, extra: &[&str], env: &[(&str, &str)]) -> HostProcess {
        let manifest = self.manifest();
        HostProcess::start(&self.up_args(&manifest, extra), env)
    }

    /// Starts `up` and waits until its triggers run.
    pub fn start_ready(&self) -> HostProcess {
        let host = self.start();
        host.wait_until_ready();
        host
    }

    /// Runs `up` with `extra` arguments to completion (`--once`, start-up errors).
    pub fn run(&self, extra: &[&str]) -> Run {
        let manifest = self.manifest();
        run_host(&self.up_args(&manifest, extra))
    }

    /// [`run`](Self::run) with `env` set for the host too.
    pub fn run_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let manifest = self.manifest();
        super::run_host_with_env(&self.up_args(&manifest, extra), env)
    }

    /// Runs `up` for `window` once its triggers run, then stops it with SIGTERM.
    pub fn run_for(&self, window: Duration) -> Run {
        let manifest = self.manifest();
        run_host_for(&self.up_args(&manifest, &[]), window)
    }
}
