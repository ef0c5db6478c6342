//! The timer trigger: where a timer fires.
//!
//! Each `[[trigger.timer]]` gets a schedule: an interval anchored to the host's start time (tick
//! `n` is due at `start + n * interval`, so a slow handler never shifts later ticks), or a cron
//! expression in a time zone (see [`cron`]). If the trigger's previous
//! run is still going when a tick comes, that tick is skipped and logged rather than queued.
//! Every tick runs in a fresh instance; a guest error or trap is logged with the component id and
//! the schedule carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{AcceptedWorld, Engine, PreparedComponent};
use crate::host_api::InstanceState;
use crate::limits::Limits;
use crate::trigger::{
    BuildContext, RunTrigger, TriggerFuture, TriggerSpec, TriggerType, TypeComponents,
};
use crate::validation::{ManifestError, Validation};

pub mod config;
pub mod cron;

pub use config::TimerConfig;
use cron::CronSchedule;

mod bindings {
    pub mod raw {
        wasmtime::component::bindgen!({
            world: "fermyon:example/spin-timer",
            path: "wit",
            exports: { default: async },
            with: { "fermyon:spin/variables@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::variables },
        });
    }
    pub mod rich {
        wasmtime::component::bindgen!({
            world: "spin-trigger:sdk/timer@0.1.0",
            path: "wit",
            exports: { default: async },
            with: {
                "fermyon:spin/variables@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::variables,
                "fermyon:spin/redis@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::redis,
            },
        });
    }
}

use bindings::rich::exports::spin_trigger::sdk0_1_0::timer_handler;

/// Which timer world a component exports.
#[derive(Clone, Copy)]
enum TimerWorld {
    /// Ours: the tick in, an error message out.
    Rich,
    /// Spin's timer example world, `handle-timer-request: func()`.
    Raw,
}

/// The timer worlds this host runs, in the order it looks for them.
const TIMER_WORLDS: &[AcceptedWorld<TimerWorld>] = &[
    AcceptedWorld {
        export: "spin-trigger:sdk/timer-handler@0.1.0",
        description: "this project's timer world",
        world: TimerWorld::Rich,
    },
    AcceptedWorld {
        export: "handle-timer-request",
        description: "Spin's timer world",
        world: TimerWorld::Raw,
    },
];

/// One firing, as the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub scheduled_at: SystemTime,
    pub fired_at: SystemTime,
    pub sequence: u64,
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// A component ready to handle ticks, in whichever timer world it exports.
pub struct TimerComponent {
    prepared: Arc<PreparedComponent>,
    export: TimerExport,
}

enum TimerExport {
    Raw(bindings::raw::SpinTimerPre<InstanceState>),
    Rich(bindings::rich::TimerPre<InstanceState>),
}

impl TimerComponent {
    /// Picks the world from what the component exports.
    pub fn new(prepared: Arc<PreparedComponent>) -> anyhow::Result<Self> {
        let export = match prepared.select_world("timer", TIMER_WORLDS)? {
            TimerWorld::Rich => {
                TimerExport::Rich(bindings::rich::TimerPre::new(prepared.pre.clone())?)
            }
            TimerWorld::Raw => {
                TimerExport::Raw(bindings::raw::SpinTimerPre::new(prepared.pre.clone())?)
            }
        };
        Ok(TimerComponent { prepared, export })
    }

    pub fn id(&self) -> &str {
        &self.prepared.id
    }

    /// Runs one tick in a fresh instance held to `limits`. A trap, a handler error or the
    /// deadline passing is an `Err`.
    pub async fn fire(&self, engine: &Engine, tick: Tick, limits: &Limits) -> anyhow::Result<()> {
        limits.run(self.call(engine, tick, limits)).await
    }

    async fn call(&self, engine: &Engine, tick: Tick, limits: &Limits) -> anyhow::Result<()> {
        let mut store = engine.new_store(&self.prepared, limits)?;
        match &self.export {
            TimerExport::Raw(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                instance.call_handle_timer_request(&mut store).await?;
            }
            TimerExport::Rich(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let wit_tick = timer_handler::Tick {
                    scheduled_at_ms: unix_millis(tick.scheduled_at),
                    fired_at_ms: unix_millis(tick.fired_at),
                    sequence: tick.sequence,
                };
                instance
                    .spin_trigger_sdk0_1_0_timer_handler()
                    .call_handle_tick(&mut store, wit_tick)
                    .await?
                    .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
            }
        }
        Ok(())
    }
}

/// One `[[trigger.timer]]`, resolved.
#[derive(Clone)]
struct Schedule {
    trigger_id: String,
    component: Arc<TimerComponent>,
    config: TimerConfig,
    limits: Limits,
}

/// Every timer trigger of an app.
pub struct TimerTrigger {
    schedules: Vec<Schedule>,
    /// Each component once, in manifest order, for `--once`.
    components: Vec<Arc<TimerComponent>>,
}

impl TriggerType for TimerTrigger {
    const NAME: &'static str = "timer";
    type RawSettings = config::RawTimerSettings;
    /// `speedup`.
    type Settings = f64;
    type RawConfig = config::RawTimerConfig;
    type Config = TimerConfig;

    fn validate_settings(
        raw: Self::RawSettings,
        validation: &Validation,
    ) -> Result<f64, ManifestError> {
        config::validate_settings(raw, validation)
    }

    fn validate(
        raw: Self::RawConfig,
        speedup: &f64,
        location: &str,
        validation: &Validation,
    ) -> Result<TimerConfig, ManifestError> {
        config::validate(raw, *speedup, location, validation)
    }

    /// One: a tick that comes while the last one runs is skipped.
    fn live_instances(_config: &TimerConfig) -> usize {
        1
    }

    /// Builds the schedules from the app and its prepared components.
    fn build(
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self> {
        let BuildContext {
            prepared, engine, ..
        } = context;
        let mut components = TypeComponents::new();
        let mut schedules = Vec::new();
        for trigger in triggers {
            let config = trigger.config;
            let component = components.get(trigger.component, prepared, TimerComponent::new)?;
            schedules.push(Schedule {
                trigger_id: trigger.id.to_owned(),
                component,
                config: config.clone(),
                limits: engine.limits(trigger.limits),
            });
        }
        Ok(TimerTrigger {
            schedules,
            components: components.into_ordered(),
        })
    }
}

impl RunTrigger for TimerTrigger {
    /// Runs every schedule until `shutdown` is cancelled. Handlers are spawned on `tracker`, so
    /// the caller can wait for those in flight.
    fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> TriggerFuture<'_, ()> {
        Box::pin(async move {
            let start = Instant::now();
            let start_wall = SystemTime::now();
            let mut loops = tokio::task::JoinSet::new();
            for schedule in &self.schedules {
                match &schedule.config {
                    TimerConfig::Interval { .. } => tracing::info!(
                        trigger = %schedule.trigger_id,
                        component = %schedule.component.id(),
                        interval = ?schedule.config.effective_interval().unwrap_or_default(),
                        "timer scheduled"
                    ),
                    TimerConfig::Cron(cron) => tracing::info!(
                        trigger = %schedule.trigger_id,
                        component = %schedule.component.id(),
                        cron = cron.expression(),
                        time_zone = %cron.time_zone(),
                        "timer scheduled"
                    ),
                }
                loops.spawn(run_schedule(
                    schedule.clone(),
                    engine.clone(),
                    (start, start_wall),
                    shutdown.clone(),
                    tracker.clone(),
                ));
            }
            // The loops end only at shutdown.
            while loops.join_next().await.is_some() {}
        })
    }

    fn run_once<'a>(&'a self, engine: &'a Engine) -> TriggerFuture<'a, anyhow::Result<()>> {
        Box::pin(self.run_once(engine))
    }
}

impl TimerTrigger {
    /// Runs each timer component once, in order; fails naming every component that failed.
    pub async fn run_once(&self, engine: &Engine) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        for component in &self.components {
            // The limits of the first trigger that runs it.
            let (trigger_id, limits) = self
                .schedules
                .iter()
                .find(|schedule| Arc::ptr_eq(&schedule.component, component))
                .map(|schedule| (schedule.trigger_id.as_str(), schedule.limits))
                .context("a timer component without a trigger")?;
            let now = SystemTime::now();
            let tick = Tick {
                scheduled_at: now,
                fired_at: now,
                sequence: 0,
            };
            let started = Instant::now();
            let result = component.fire(engine, tick, &limits).await;
            engine.report(trigger_id, component.id(), &result, started);
            if let Err(error) = result {
                tracing::error!(
                    component = %component.id(),
                    "timer handler failed: {}",
                    crate::errors::one_line(&error)
                );
                failed.push(format!("`{}`", component.id()));
            }
        }
        if !failed.is_empty() {
            bail!("timer component(s) failed: {}", failed.join(", "));
        }
        Ok(())
    }
}

async fn run_schedule(
    schedule: Schedule,
    engine: Arc<Engine>,
    start: (Instant, SystemTime),
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let dispatcher = Dispatcher {
        schedule,
        engine,
        tracker,
        busy: Arc::new(AtomicBool::new(false)),
    };
    match dispatcher.schedule.config.clone() {
        TimerConfig::Interval { .. } => run_interval(&dispatcher, start, shutdown).await,
        TimerConfig::Cron(cron) => run_cron(&dispatcher, &cron, shutdown).await,
    }
}

/// Tick `n` is due at `start + n * interval`.
async fn run_interval(
    dispatcher: &Dispatcher,
    (start, start_wall): (Instant, SystemTime),
    shutdown: CancellationToken,
) {
    let Some(interval) = dispatcher.schedule.config.effective_interval() else {
        return;
    };
    let start_tokio = tokio::time::Instant::from_std(start);
    let mut ticks = tokio::time::interval_at(start_tokio + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let due = tokio::select! {
            _ = shutdown.cancelled() => return,
            due = ticks.tick() => due,
        };
        let since_start = due.duration_since(start_tokio);
        dispatcher.fire(Tick {
            scheduled_at: start_wall + since_start,
            fired_at: SystemTime::now(),
            sequence: (since_start.as_nanos() / interval.as_nanos()) as u64,
        });
    }
}

/// Each fire at the next time the expression names, on the wall clock: sleeping in steps of at
/// most a minute, so that a wall clock set forward or back is noticed.
async fn run_cron(dispatcher: &Dispatcher, cron: &CronSchedule, shutdown: CancellationToken) {
    let mut after = chrono::Utc::now();
    let mut sequence = 0;
    loop {
        let Some(next) = cron.next_after(after) else {
            tracing::warn!(
                trigger = %dispatcher.schedule.trigger_id,
                cron = cron.expression(),
                "the cron schedule names no time from now on; this timer will not fire"
            );
            return;
        };
        let scheduled_at = SystemTime::from(next);
        while let Ok(wait) = scheduled_at.duration_since(SystemTime::now()) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
            }
        }
        sequence += 1;
        after = next;
        dispatcher.fire(Tick {
            scheduled_at,
            fired_at: SystemTime::now(),
            sequence,
        });
    }
}

/// Runs a schedule's ticks: one at a time (a tick due while the last runs is skipped and
/// logged), each on the tracker so that shutdown waits for it.
struct Dispatcher {
    schedule: Schedule,
    engine: Arc<Engine>,
    tracker: TaskTracker,
    busy: Arc<AtomicBool>,
}

impl Dispatcher {
    fn fire(&self, tick: Tick) {
        let schedule = &self.schedule;
        let sequence = tick.sequence;
        if self.busy.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                trigger = %schedule.trigger_id,
                component = %schedule.component.id(),
                sequence,
                "previous run still going; skipping this tick"
            );
            return;
        }
        let component = schedule.component.clone();
        let engine = self.engine.clone();
        let busy = self.busy.clone();
        let trigger_id = schedule.trigger_id.clone();
        let schedule_limits = schedule.limits;
        self.tracker.spawn(async move {
            let started = Instant::now();
            let result = component.fire(&engine, tick, &schedule_limits).await;
            engine.report(&trigger_id, component.id(), &result, started);
            if let Err(error) = result {
                crate::engine::log_failure(
                    &error,
                    component.id(),
                    "timer handler failed",
                    |reason| {
                        tracing::error!(
                            trigger = %trigger_id,
                            component = %component.id(),
                            sequence,
                            "timer handler failed: {reason}"
                        )
                    },
                );
            }
            busy.store(false, Ordering::Release);
        });
    }
}
