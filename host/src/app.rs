//! The resolved app model: what the runtime needs, whichever file it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::variables::{Template, VariableDecl};

/// A loaded, validated application. Component sources are absolute paths; variable values are
/// still templates, resolved at start-up by [`crate::variables::ResolvedVariables`].
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    /// The file the app was loaded from, for messages.
    pub origin: PathBuf,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    pub variables: BTreeMap<String, VariableDecl>,
    pub components: BTreeMap<String, Component>,
    pub timer: TimerSettings,
    pub timer_triggers: Vec<TimerTrigger>,
    pub redis: RedisSettings,
    pub redis_triggers: Vec<RedisTrigger>,
    pub stream: StreamSettings,
    pub stream_triggers: Vec<StreamTrigger>,
}

/// One `[component.<id>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: String,
    /// Absolute path of the `.wasm` component.
    pub source: PathBuf,
    /// The component's variables: name to a template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables the guest sees; it sees none of the host's.
    pub environment: BTreeMap<String, String>,
    /// Spin's `allowed_outbound_hosts` entries; rendered and parsed at start-up.
    pub allowed_outbound_hosts: Vec<Template>,
    /// What the guest sees of the host's files, read-only.
    pub files: Vec<FileMount>,
    /// Glob patterns, relative to the app directory, of files `files` globs must leave out.
    pub exclude_files: Vec<String>,
    pub build: Option<BuildStep>,
}

/// One `files` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// `{ source = "assets", destination = "/assets" }`: a directory or a file at a guest path.
    Path {
        host_path: PathBuf,
        guest_path: String,
    },
    /// `"static/**/*"`: every matching file, at its path relative to `base_dir`, under `/`.
    Glob { base_dir: PathBuf, pattern: String },
}

/// How to build a component (`[component.<id>.build]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// Absolute directory to run them in.
    pub workdir: PathBuf,
}

/// `[application.trigger.timer]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimerSettings {
    /// Divides every interval: `speedup = 2` runs timers twice as often.
    pub speedup: f64,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings { speedup: 1.0 }
    }
}

/// One `[[trigger.timer]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerTrigger {
    pub id: String,
    pub component: String,
    /// The interval as written, before `speedup`.
    pub interval: Duration,
}

/// `[application.trigger.redis]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisSettings {
    /// The server triggers use unless they set their own `address`.
    pub address: Option<Template>,
}

/// One `[[trigger.redis]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    pub id: String,
    pub component: String,
    /// The channel, or a glob pattern (`orders.*`) to subscribe by pattern.
    pub channel: Template,
    /// The server; validation guarantees this or the application default is set.
    pub address: Template,
    /// How many messages the component handles at once: 1 (the default) keeps publish order.
    pub max_in_flight: usize,
}

/// `[application.trigger.redis-stream]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSettings {
    /// The server stream triggers use unless they set their own `address`.
    pub address: Option<Template>,
}

/// One `[[trigger.redis-stream]]`: a consumer in a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTrigger {
    pub id: String,
    pub component: String,
    /// The stream key.
    pub stream: Template,
    /// The server; validation guarantees this or the application default is set.
    pub address: Template,
    /// The consumer group; `None`: the application's name.
    pub group: Option<Template>,
    /// This process's consumer name in the group; `None`: the host name and process id.
    pub consumer: Option<Template>,
    /// How many entries the component handles at once.
    pub max_in_flight: usize,
    /// How many times an entry is tried before it goes to the dead-letter stream.
    pub max_attempts: u32,
    /// Where entries that failed `max_attempts` times go; `None`: `<stream>.dead`.
    pub dead_letter: Option<Template>,
    /// How long an entry may stay unacknowledged by its consumer before another claims it.
    pub claim_idle: Duration,
}

impl App {
    /// The interval at which a trigger fires, `speedup` applied.
    pub fn effective_interval(&self, trigger: &TimerTrigger) -> Duration {
        trigger.interval.div_f64(self.timer.speedup)
    }

    /// Keeps only the triggers of `trigger_type`: a plugin Spin launches as `trigger-timer` runs
    /// the timer triggers and leaves the rest to Spin.
    pub fn retain_trigger_type(&mut self, trigger_type: &str) {
        if trigger_type != "timer" {
            self.timer_triggers.clear();
        }
        if trigger_type != "redis" {
            self.redis_triggers.clear();
        }
        if trigger_type != "redis-stream" {
            self.stream_triggers.clear();
        }
    }

    /// How many instances the app's triggers may have live at once: one per timer trigger (a
    /// tick that comes while the last one runs is skipped) plus each Redis trigger's
    /// `max_in_flight`, and each stream trigger's.
    pub fn max_live_instances(&self) -> usize {
        self.timer_triggers.len()
            + self
                .redis_triggers
                .iter()
                .map(|trigger| trigger.max_in_flight)
                .sum::<usize>()
            + self
                .stream_triggers
                .iter()
                .map(|trigger| trigger.max_in_flight)
                .sum::<usize>()
    }

    /// The component a trigger names; validation guarantees it exists.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}
