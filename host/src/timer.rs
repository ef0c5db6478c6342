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

use anyhow::{Context, bail};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::Engine;
use crate::limits::Limits;
use crate::redis_address::render_address;
use crate::telemetry::{CallInfo, EventReporter, SkipReason, in_trace};
use crate::trigger_type::{BuildContext, RunTrigger, TriggerFuture, TriggerSpec, TriggerType};
use crate::validation::{ManifestError, Validation};

mod component;
pub mod config;
pub mod coordination;
pub mod cron;

use component::unix_millis;
pub use component::{Tick, TimerComponent};
pub use config::{TimerConfig, TimerSchedule};
use coordination::{Claim, Coordinator};
use cron::CronSchedule;

/// One `[[trigger.timer]]`, resolved.
struct Schedule {
    trigger_id: String,
    component: Arc<TimerComponent>,
    config: TimerConfig,
    limits: Limits,
    /// With `coordination`: how this host agrees with the others on who runs each tick.
    coordinator: Option<Arc<Coordinator>>,
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

    /// One: a tick that comes while the last one runs is skipped.
    fn live_instances(_config: &TimerConfig) -> usize {
        1
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
            schedules.push(Arc::new(Schedule {
                trigger_id: spec.id.to_owned(),
                component: trigger.component,
                config: spec.config.clone(),
                limits: trigger.limits,
                coordinator,
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
    let dispatcher = Dispatcher {
        schedule,
        engine,
        tracker,
        busy: Arc::new(AtomicBool::new(false)),
        shutdown: shutdown.clone(),
    };
    match dispatcher.schedule.config.schedule.clone() {
        TimerSchedule::Interval { .. } => run_interval(&dispatcher, start, shutdown).await,
        TimerSchedule::Cron(cron) => run_cron(&dispatcher, &cron, shutdown).await,
    }
}

/// Tick `n` is due at `start + n * interval`. Coordinated hosts must agree on the ticks, so
/// their grid is anchored to the Unix epoch instead of each host's start.
async fn run_interval(
    dispatcher: &Dispatcher,
    (mut start, mut start_wall): (Instant, SystemTime),
    shutdown: CancellationToken,
) {
    let Some(interval) = dispatcher.schedule.config.effective_interval() else {
        return;
    };
    if dispatcher.schedule.coordinator.is_some() {
        let since_epoch = start_wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let into_period =
            Duration::from_nanos((since_epoch.as_nanos() % interval.as_nanos().max(1)) as u64);
        start -= into_period;
        start_wall -= into_period;
    }
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
            schedule: dispatcher.schedule.description.clone(),
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
        let scheduled_at = SystemTime::from(after);
        dispatcher.fire(Tick {
            scheduled_at,
            fired_at: SystemTime::now(),
            sequence,
            schedule: dispatcher.schedule.description.clone(),
        });
    }
}

/// Runs a schedule's ticks: one at a time (a tick due while the last runs is skipped and
/// logged), each on the tracker so that shutdown waits for it; with coordination, only the
/// ticks this host wins.
#[derive(Clone)]
struct Dispatcher {
    schedule: Arc<Schedule>,
    engine: Arc<Engine>,
    tracker: TaskTracker,
    busy: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Dispatcher {
    fn fire(&self, tick: Tick) {
        let reporter = &self.schedule.reporter;
        reporter.received(1);
        reporter.late(
            tick.fired_at
                .duration_since(tick.scheduled_at)
                .unwrap_or_default(),
        );
        if self.busy.load(Ordering::Acquire) {
            self.log_skip(tick.sequence);
            return;
        }
        let dispatcher = self.clone();
        self.tracker.spawn(async move {
            match dispatcher.schedule.coordinator.clone() {
                None => {
                    dispatcher.run(tick).await;
                }
                Some(coordinator) => dispatcher.coordinated(&coordinator, tick).await,
            }
        });
    }

    fn log_skip(&self, sequence: u64) {
        self.schedule.reporter.skipped(SkipReason::Overlap);
        tracing::warn!(
            trigger = %self.schedule.trigger_id,
            component = %self.schedule.component.id(),
            sequence,
            "previous run still going; skipping this tick"
        );
    }

    /// Runs the tick here, unless the previous one still runs; returns whether it ran.
    async fn run(&self, tick: Tick) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            self.log_skip(tick.sequence);
            return false;
        }
        let schedule = &self.schedule;
        let component = &schedule.component;
        let sequence = tick.sequence;
        let call = schedule.reporter.start(CallInfo::default());
        let result = in_trace(component.fire(&self.engine, tick, &schedule.limits), &call).await;
        call.finish(result.as_ref().err());
        if let Err(error) = result {
            crate::telemetry::log_failure(
                &error,
                component.id(),
                "timer handler failed",
                |reason| {
                    tracing::error!(
                        trigger = %schedule.trigger_id,
                        component = %component.id(),
                        sequence,
                        "timer handler failed: {reason}"
                    )
                },
            );
        }
        self.busy.store(false, Ordering::Release);
        true
    }

    /// Runs the tick if this host wins it (see [`Self::win`]), keeping the lease from a task of
    /// its own while the handler runs; then marks it done, or releases it if it could not run.
    async fn coordinated(&self, coordinator: &Arc<Coordinator>, tick: Tick) {
        let scheduled_ms = unix_millis(tick.scheduled_at);
        let trigger = &self.schedule.trigger_id;
        if !self.win(coordinator, scheduled_ms, tick.sequence).await {
            return;
        }
        let renewal = tokio::spawn(coordination::keep_lease(
            coordinator.clone(),
            self.schedule.reporter.clone(),
            trigger.clone(),
            scheduled_ms,
        ));
        let ran = self.run(tick).await;
        renewal.abort();
        let (settled, what) = if ran {
            (
                coordinator.finish(scheduled_ms).await,
                "marking this tick done",
            )
        } else {
            (
                coordinator.release(scheduled_ms).await,
                "releasing a tick this host could not run",
            )
        };
        if let Err(error) = settled {
            tracing::warn!(
                trigger = %trigger,
                scheduled_ms,
                "{what}: {}",
                crate::error_text::one_line(&error)
            );
        }
    }

    /// Whether this host is to run the tick: it claims it; if another host holds it, it looks
    /// again once the holder's lease could have run out, and wins it if the holder went away.
    /// A busy host, an unreachable server, a done tick, or shutdown: not this host.
    async fn win(&self, coordinator: &Coordinator, scheduled_ms: u64, sequence: u64) -> bool {
        let trigger = &self.schedule.trigger_id;
        let mut first_generation = None;
        loop {
            // A host still running the previous tick leaves this one to a host that is free.
            if self.busy.load(Ordering::Acquire) {
                self.log_skip(sequence);
                return false;
            }
            let claim = match coordinator.claim(scheduled_ms).await {
                Ok(claim) => claim,
                Err(error) => {
                    self.schedule.reporter.skipped(SkipReason::Coordination);
                    tracing::warn!(
                        trigger = %trigger,
                        scheduled_ms,
                        "coordination unavailable, so this tick is skipped on this host: {}",
                        crate::error_text::one_line(&error)
                    );
                    return false;
                }
            };
            match (claim, &first_generation) {
                ((Claim::Won, _), None) => return true,
                ((Claim::Won, generation), Some(first)) if generation == *first => {
                    tracing::warn!(
                        trigger = %trigger,
                        scheduled_ms,
                        "the host holding this tick went away before it finished; running it here"
                    );
                    return true;
                }
                ((Claim::Won, _), Some(_)) => {
                    tracing::warn!(
                        trigger = %trigger,
                        scheduled_ms,
                        "the coordination server lost its data (restarted?); not running this tick again"
                    );
                    let _ = coordinator.finish(scheduled_ms).await;
                    return false;
                }
                ((Claim::Done, _), _) => return false,
                ((Claim::Held { generation }, _), _) => {
                    first_generation.get_or_insert(generation);
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(coordination::LEASE + Duration::from_millis(250)) => {}
                    }
                }
            }
        }
    }
}
