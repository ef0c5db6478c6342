//! The timer trigger: where a timer fires.
//!
//! Each `[[trigger.timer]]` gets a schedule: an interval anchored to the host's start time (tick
//! `n` is due at `start + n * interval`, so a slow handler never shifts later ticks), or a cron
//! expression in a time zone (see [`cron`]). Each due tick goes to [`dispatch`], which applies
//! the trigger's policies (config's [`TimerPolicy`]): `jitter`, `overlap` (by default a tick
//! that comes while the previous run still goes is skipped and logged), coordination with other
//! hosts, and `max_attempts`. Every attempt runs in a fresh instance; a guest error or trap is
//! logged with the component id and the schedule carries on. With `catch_up`, ticks missed
//! while no host ran are run first ([`catch_up`]); `start_at` and `end_at` bound the ticks.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::control::TriggerControl;
use crate::engine::Engine;
use crate::limits::Limits;
use crate::redis_address::render_address;
use crate::telemetry::{CallInfo, EventReporter, in_trace};
use crate::trigger_type::{BuildContext, RunTrigger, TriggerFuture, TriggerSpec, TriggerType};
use crate::validation::{ManifestError, Validation};

mod catch_up;
mod component;
pub mod config;
mod controls;
pub mod coordination;
pub mod cron;
mod dispatch;
mod jitter;

use catch_up::Ledger;
pub use component::{Tick, TimerComponent};
pub use config::{Overlap, TimerConfig, TimerPolicy, TimerSchedule};
use coordination::Coordinator;
use cron::CronSchedule;
use dispatch::Dispatcher;

/// One `[[trigger.timer]]`, resolved.
struct Schedule {
    trigger_id: String,
    component: Arc<TimerComponent>,
    config: TimerConfig,
    limits: Limits,
    /// With `coordination`: how this host agrees with the others on who runs each tick.
    coordinator: Option<Arc<Coordinator>>,
    /// With `catch_up`: where the last completed tick is kept.
    ledger: Option<Arc<Ledger>>,
    /// Its pause, next tick and last run, for the admin endpoint.
    state: controls::ScheduleState,
    /// The schedule in words, for the ticks.
    description: Arc<str>,
    reporter: EventReporter,
}

/// Every timer trigger of an app.
pub struct TimerTrigger {
    /// Shared with each schedule's loop: a tick's dispatch clones only the `Arc`.
    schedules: Vec<Arc<Schedule>>,
    /// Each component once, in manifest order, for `--once`.
    components: Vec<Arc<TimerComponent>>,
}

impl TriggerType for TimerTrigger {
    const NAME: &'static str = "timer";
    type RawSettings = config::RawTimerSettings;
    type Settings = config::TimerSettings;
    type RawConfig = config::RawTimerConfig;
    type Config = TimerConfig;

    fn validate_settings(
        raw: Self::RawSettings,
        validation: &Validation,
    ) -> Result<config::TimerSettings, ManifestError> {
        config::validate_settings(raw, validation)
    }

    fn validate(
        raw: Self::RawConfig,
        settings: &config::TimerSettings,
        location: &str,
        validation: &Validation,
    ) -> Result<TimerConfig, ManifestError> {
        config::validate(raw, settings, location, validation)
    }

    /// One, or `max_in_flight` with `overlap = "allow"`.
    fn live_instances(config: &TimerConfig) -> usize {
        config.policy.overlap.max_in_flight()
    }

    /// Builds the schedules from the app and its prepared components.
    fn build(
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self> {
        let (triggers, components) = context.resolve::<Self, _>(triggers, TimerComponent::new)?;
        let mut schedules = Vec::new();
        for trigger in triggers {
            let spec = trigger.spec;
            let coordinator = match &spec.config.coordination {
                Some(address) => {
                    let what = format!("timer `{}`: coordination", spec.id);
                    let address = render_address(context.variables, address, &what)?;
                    Some(Arc::new(Coordinator::new(
                        &address,
                        context.engine.redis_tls(),
                        context.deployment,
                        spec.id,
                    )?))
                }
                None => None,
            };
            let ledger = match (&spec.config.policy.catch_up, &coordinator) {
                (None, _) => None,
                (Some(_), Some(coordinator)) => Some(Ledger::Redis(coordinator.clone())),
                (Some(_), None) => {
                    let dir = context.engine.state_dir().with_context(|| {
                        format!(
                            "timer `{}`: `catch_up` keeps the last completed tick in the state directory, and this run has none (`--state-dir \"\"`): give it one, or set `coordination` to keep it in Redis",
                            spec.id
                        )
                    })?;
                    Some(Ledger::in_state_dir(dir, spec.id))
                }
            };
            schedules.push(Arc::new(Schedule {
                trigger_id: spec.id.to_owned(),
                component: trigger.component,
                config: spec.config.clone(),
                limits: trigger.limits,
                coordinator,
                ledger: ledger.map(Arc::new),
                state: Default::default(),
                description: spec.config.describe().into(),
                reporter: trigger.reporter,
            }));
        }
        Ok(TimerTrigger {
            schedules,
            components,
        })
    }
}

impl Drop for TimerTrigger {
    /// Each running schedule's dispatcher holds the schedule that holds it (for run-now): the
    /// cycle is broken here, so a runtime dropped frees its engine.
    fn drop(&mut self) {
        for schedule in &self.schedules {
            schedule.state.stopped();
        }
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
                match &schedule.config.schedule {
                    TimerSchedule::Interval { .. } => tracing::info!(
                        trigger = %schedule.trigger_id,
                        component = %schedule.component.id(),
                        interval = ?schedule.config.effective_interval().unwrap_or_default(),
                        "timer scheduled"
                    ),
                    TimerSchedule::Cron(cron) => tracing::info!(
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

    /// Every timer: pause, resume, run now, next tick and last run.
    fn controls(&self) -> Vec<Arc<dyn TriggerControl>> {
        self.schedules
            .iter()
            .map(|schedule| schedule.clone() as Arc<dyn TriggerControl>)
            .collect()
    }
}

impl TimerTrigger {
    /// Runs each timer component once, in order; fails naming every component that failed.
    pub async fn run_once(&self, engine: &Engine) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        for component in &self.components {
            // The limits (and schedule) of the first trigger that runs it.
            let schedule = self
                .schedules
                .iter()
                .find(|schedule| Arc::ptr_eq(&schedule.component, component))
                .context("a timer component without a trigger")?;
            let limits = schedule.limits;
            let now = SystemTime::now();
            let tick = Tick {
                scheduled_at: now,
                fired_at: now,
                sequence: 0,
                schedule: schedule.description.clone(),
                attempt: 1,
                late: false,
            };
            schedule.reporter.received(1);
            let call = schedule.reporter.start(CallInfo::default());
            let result = in_trace(component.fire(engine, tick, &limits), &call).await;
            call.finish(result.as_ref().err());
            if let Err(error) = result {
                tracing::error!(
                    component = %component.id(),
                    "timer handler failed: {}",
                    crate::error_text::one_line(&error)
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
    schedule: Arc<Schedule>,
    engine: Arc<Engine>,
    start: (Instant, SystemTime),
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    if let Some(coordinator) = &schedule.coordinator {
        tracing::info!(
            trigger = %schedule.trigger_id,
            server = %coordinator.shown,
            "ticks coordinated with the other hosts running this app"
        );
    }
    let dispatcher = Dispatcher::new(
        schedule.clone(),
        engine,
        tracker,
        shutdown.clone(),
        schedule.ledger.clone(),
    );
    // Ticks missed while no host ran first; run-now is taken once they are done.
    let Some(caught_up) = catch_up::run_missed(&dispatcher, &shutdown).await else {
        return;
    };
    schedule.state.started(dispatcher.clone());
    match dispatcher.schedule.config.schedule.clone() {
        TimerSchedule::Interval { .. } => {
            run_interval(&dispatcher, start, caught_up, shutdown).await
        }
        TimerSchedule::Cron(cron) => run_cron(&dispatcher, &cron, caught_up, shutdown).await,
    }
}

/// Tick `n` is due at `start + n * interval`. Coordinated hosts must agree on the ticks, so
/// their grid is anchored to the Unix epoch instead of each host's start, as is that of a timer
/// with `catch_up`, whose missed ticks must be the ones it would have fired; its first tick is
/// the first after those `catch_up` ran (`caught_up`), so none falls between the two.
async fn run_interval(
    dispatcher: &Dispatcher,
    (mut start, mut start_wall): (Instant, SystemTime),
    caught_up: Option<SystemTime>,
    shutdown: CancellationToken,
) {
    let Some(interval) = dispatcher.schedule.config.effective_interval() else {
        return;
    };
    if !wait_for_start(dispatcher, &shutdown).await {
        return;
    }
    let schedule = &dispatcher.schedule;
    if schedule.coordinator.is_some() || schedule.config.policy.catch_up.is_some() {
        // From where catching up ended (or now): the ticks until then have run.
        let (now, now_wall) = (Instant::now(), SystemTime::now());
        start_wall = caught_up.unwrap_or(now_wall).min(now_wall);
        start = now
            .checked_sub(now_wall.duration_since(start_wall).unwrap_or_default())
            .unwrap_or(now);
        let since_epoch = start_wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let into_period =
            Duration::from_nanos((since_epoch.as_nanos() % interval.as_nanos().max(1)) as u64);
        start -= into_period;
        start_wall -= into_period;
    }
    let start_tokio = tokio::time::Instant::from_std(start);
    let mut ticks = tokio::time::interval_at(start_tokio + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    schedule.state.set_next_due(Some(start_wall + interval));
    loop {
        let due = tokio::select! {
            _ = shutdown.cancelled() => return,
            due = ticks.tick() => due,
        };
        let since_start = due.duration_since(start_tokio);
        let tick = Tick {
            scheduled_at: start_wall + since_start,
            fired_at: SystemTime::now(),
            sequence: (since_start.as_nanos() / interval.as_nanos()) as u64,
            schedule: schedule.description.clone(),
            attempt: 1,
            late: false,
        };
        schedule
            .state
            .set_next_due(Some(tick.scheduled_at + interval));
        if !fire_within_bounds(dispatcher, tick) {
            return;
        }
    }
}

/// With `start_at` in the future: waits for it (in steps of at most a minute, so that a wall
/// clock set forward is noticed). `false` at shutdown.
async fn wait_for_start(dispatcher: &Dispatcher, shutdown: &CancellationToken) -> bool {
    let Some(start_at) = dispatcher.schedule.config.policy.start_at else {
        return true;
    };
    dispatcher.schedule.state.set_next_due(Some(start_at));
    while let Ok(wait) = start_at.duration_since(SystemTime::now()) {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
        }
    }
    true
}

/// Fires `tick` unless it is due before `start_at` or after `end_at`; `false` once past
/// `end_at`, when the timer is done.
fn fire_within_bounds(dispatcher: &Dispatcher, tick: Tick) -> bool {
    let policy = &dispatcher.schedule.config.policy;
    if policy.end_at.is_some_and(|end| tick.scheduled_at > end) {
        dispatcher.schedule.state.set_next_due(None);
        tracing::info!(
            trigger = %dispatcher.schedule.trigger_id,
            "past the timer's `end_at`: it fires no more"
        );
        return false;
    }
    if policy.active_at(tick.scheduled_at) {
        dispatcher.fire(tick);
    }
    true
}

/// Each fire at the next time the expression names, on the wall clock: sleeping in steps of at
/// most a minute, so that a wall clock set forward or back is noticed. The first is the first
/// time after those `catch_up` ran (`caught_up`), or after now.
async fn run_cron(
    dispatcher: &Dispatcher,
    cron: &CronSchedule,
    caught_up: Option<SystemTime>,
    shutdown: CancellationToken,
) {
    if !wait_for_start(dispatcher, &shutdown).await {
        return;
    }
    let now = SystemTime::now();
    let mut after = chrono::DateTime::<chrono::Utc>::from(caught_up.unwrap_or(now).min(now));
    let mut sequence = 0;
    loop {
        let Some(next) = cron.next_after(after) else {
            tracing::warn!(
                trigger = %dispatcher.schedule.trigger_id,
                cron = cron.expression(),
                "the cron schedule names no time from now on; this timer will not fire"
            );
            dispatcher.schedule.state.set_next_due(None);
            return;
        };
        let scheduled_at = SystemTime::from(next);
        dispatcher.schedule.state.set_next_due(Some(scheduled_at));
        while let Ok(wait) = scheduled_at.duration_since(SystemTime::now()) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
            }
        }
        sequence += 1;
        // More than one time passed while this loop slept: the wall clock was stepped forward
        // (a host that booted before its clock was set) or the host was suspended. The latest
        // of them fires once, never each in a burst.
        let now = chrono::Utc::now();
        after = cron.time_to_fire(next, now);
        if after != next {
            tracing::warn!(
                trigger = %dispatcher.schedule.trigger_id,
                cron = cron.expression(),
                "the wall clock jumped forward past several scheduled times (from {next} to {now}); \
                 firing only the latest, {after}"
            );
        }
        let tick = Tick {
            scheduled_at: SystemTime::from(after),
            fired_at: SystemTime::now(),
            sequence,
            schedule: dispatcher.schedule.description.clone(),
            attempt: 1,
            late: false,
        };
        if !fire_within_bounds(dispatcher, tick) {
            return;
        }
    }
}
