//! What an operator may do to a running trigger (pause, resume, run now) and see of it (its next
//! fire, its last result): the contract a trigger type fulfils to be controlled, which the admin
//! endpoint serves. Timers fulfil it.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A future a control returns.
pub type ControlFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// One trigger, as an operator controls it.
pub trait TriggerControl: Send + Sync {
    /// The trigger's id.
    fn id(&self) -> &str;

    /// Its state now: paused, when it fires next, how its last run went.
    fn status(&self) -> ControlFuture<'_, TriggerStatus>;

    /// Pauses it (`true`: its ticks are skipped, counted with reason `paused`) or resumes it;
    /// where the pause lives (this process, or Redis for every host) is the trigger's.
    fn set_paused(&self, paused: bool) -> ControlFuture<'_, ()>;

    /// Runs it once now, on this host, paused or not. An error says why it cannot (not started
    /// or still catching up, its overlap policy would skip the run, or the host is stopping).
    fn run_now(&self) -> Result<(), RunNowRefused>;
}

/// Why a run-now was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunNowRefused {
    /// The trigger has not started running, or is catching up on missed ticks.
    #[error("the trigger has not started yet, or is still catching up on missed ticks")]
    NotStarted,
    /// Its previous run still goes and its overlap policy would skip this one.
    #[error("the previous run is still going and the trigger's `overlap` policy skips this run")]
    Busy,
    /// The host is shutting down.
    #[error("the host is shutting down")]
    Stopping,
}

/// A trigger's state, as the admin endpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerStatus {
    /// The trigger's id.
    pub trigger: String,
    /// Its component.
    pub component: String,
    /// Its schedule in words (`every 10s`).
    pub schedule: String,
    /// Whether it is paused; `pause_scope` says where the pause lives.
    pub paused: bool,
    /// `process` (this host only), or `redis` (every host coordinated with it).
    pub pause_scope: String,
    /// When its next tick is due, in ms since the Unix epoch, if it fires again.
    pub next_due_ms: Option<u64>,
    /// How the last tick this host ran went, if it ran one.
    pub last_run: Option<LastRun>,
}

/// How a tick's run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// When the tick was due, in ms since the Unix epoch.
    pub scheduled_ms: u64,
    /// When its last attempt ended, in ms since the Unix epoch.
    pub finished_ms: u64,
    /// How many attempts it took.
    pub attempts: u32,
    /// `ok`, or `failed` (its last attempt failed).
    pub outcome: String,
    /// The last attempt's error, on one line, when it failed.
    pub error: Option<String>,
}
