//! A timer as an operator controls it ([`TriggerControl`]): paused in this process, or in Redis
//! for every host when coordinated; run now; when its next tick is due and how its last run went.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use super::Schedule;
use super::component::unix_millis;
use super::dispatch::Dispatcher;
use crate::control::{ControlFuture, LastRun, RunNowRefused, TriggerControl, TriggerStatus};

/// What a running schedule shows an operator, and its pause when it is not coordinated.
#[derive(Default)]
pub(super) struct ScheduleState {
    /// Paused in this process (a coordinated timer's pause is in Redis).
    paused: AtomicBool,
    /// When the next tick is due, in ms since the Unix epoch; 0 when none is known.
    next_due_ms: AtomicU64,
    last_run: Mutex<Option<LastRun>>,
    /// Set once the schedule runs on time (catching up done), for run-now; cleared when the
    /// trigger is dropped, since the dispatcher holds the schedule that holds this.
    dispatcher: Mutex<Option<Dispatcher>>,
}

impl ScheduleState {
    /// Whether an operator paused the timer in this process.
    pub(super) fn paused_here(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Records when the next tick is due (`None`: it fires no more).
    pub(super) fn set_next_due(&self, due: Option<SystemTime>) {
        let ms = due.map_or(0, |due| unix_millis(due).max(1));
        self.next_due_ms.store(ms, Ordering::Release);
    }

    /// Records how a tick's run went.
    pub(super) fn record_run(&self, run: LastRun) {
        *self
            .last_run
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(run);
    }

    /// Keeps the running schedule's dispatcher, for run-now.
    pub(super) fn started(&self, dispatcher: Dispatcher) {
        *self.running() = Some(dispatcher);
    }

    /// Drops the dispatcher (and with it the cycle through the schedule).
    pub(super) fn stopped(&self) {
        *self.running() = None;
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<Dispatcher>> {
        self.dispatcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TriggerControl for Schedule {
    fn id(&self) -> &str {
        &self.trigger_id
    }

    fn status(&self) -> ControlFuture<'_, TriggerStatus> {
        Box::pin(async move {
            let (paused, pause_scope) = match &self.coordinator {
                Some(coordinator) => (coordinator.paused().await?, "redis".to_owned()),
                None => (self.state.paused_here(), "process".to_owned()),
            };
            let next_due_ms = match self.state.next_due_ms.load(Ordering::Acquire) {
                0 => None,
                ms => Some(ms),
            };
            let last_run = self
                .state
                .last_run
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            Ok(TriggerStatus {
                trigger: self.trigger_id.clone(),
                component: self.component.id().to_owned(),
                schedule: self.description.to_string(),
                paused,
                pause_scope,
                next_due_ms,
                last_run,
            })
        })
    }

    fn set_paused(&self, paused: bool) -> ControlFuture<'_, ()> {
        Box::pin(async move {
            match &self.coordinator {
                Some(coordinator) => coordinator.set_paused(paused).await?,
                None => self.state.paused.store(paused, Ordering::Release),
            }
            tracing::info!(
                trigger = %self.trigger_id,
                scope = if self.coordinator.is_some() { "every host" } else { "this host" },
                "timer {} by an operator",
                if paused { "paused" } else { "resumed" }
            );
            Ok(())
        })
    }

    fn run_now(&self) -> Result<(), RunNowRefused> {
        self.state
            .running()
            .as_ref()
            .ok_or(RunNowRefused::NotStarted)?
            .run_now()
    }
}
