//! Where a tick is dispatched: after its jitter, admitted by the overlap policy, won from the
//! other hosts when coordinated, run with its retries, and recorded for `catch_up`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Schedule;
use super::catch_up::Ledger;
use super::component::{Tick, unix_millis};
use super::config::Overlap;
use super::coordination::{self, Claim, Coordinator};
use super::jitter::jitter_offset;
use crate::control::{LastRun, RunNowRefused};
use crate::engine::Engine;
use crate::rate_limit::{RateLimit, Take};
use crate::telemetry::{CallInfo, SkipReason, in_trace};

/// Runs a schedule's ticks as its overlap policy says, each on the tracker so that shutdown
/// waits for it; with coordination, only the ticks this host wins.
#[derive(Clone)]
pub(super) struct Dispatcher {
    pub(super) schedule: Arc<Schedule>,
    engine: Arc<Engine>,
    tracker: TaskTracker,
    /// One permit per run that may go at once: `max_in_flight` with `overlap = "allow"`, else 1.
    slots: Arc<Semaphore>,
    /// With `overlap = "buffer_one"`: whether a tick waits for the running one.
    buffered: Arc<AtomicBool>,
    shutdown: CancellationToken,
    /// With `catch_up`: where completed ticks are recorded.
    pub(super) ledger: Option<Arc<Ledger>>,
    /// With `max_per_second`: runs started per second on this host.
    rate: Option<Arc<RateLimit>>,
}

impl Dispatcher {
    pub(super) fn new(
        schedule: Arc<Schedule>,
        engine: Arc<Engine>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        ledger: Option<Arc<Ledger>>,
    ) -> Self {
        let slots = schedule.config.policy.overlap.max_in_flight();
        let rate = schedule
            .config
            .policy
            .max_per_second
            .map(|per_second| Arc::new(RateLimit::per_host(per_second)));
        Dispatcher {
            rate,
            schedule,
            engine,
            tracker,
            slots: Arc::new(Semaphore::new(slots)),
            buffered: Arc::new(AtomicBool::new(false)),
            shutdown,
            ledger,
        }
    }

    /// A tick is due: it fires after its jitter, in a task of its own.
    pub(super) fn fire(&self, tick: Tick) {
        let reporter = &self.schedule.reporter;
        reporter.received(1);
        let jitter = jitter_offset(
            &self.schedule.trigger_id,
            unix_millis(tick.scheduled_at),
            self.schedule.config.policy.jitter,
        );
        reporter.late(
            tick.fired_at
                .duration_since(tick.scheduled_at + jitter)
                .unwrap_or_default(),
        );
        // Skipped here rather than in a task, unless the skip is to be recorded for `catch_up`.
        if self.schedule.coordinator.is_none()
            && self.ledger.is_none()
            && self.schedule.state.paused_here()
        {
            self.skip_paused(tick.sequence);
            return;
        }
        if jitter.is_zero() && self.would_skip() {
            // Said here rather than in a task: a schedule far faster than its handler would
            // otherwise spawn a task per skipped tick.
            self.log_skip(tick.sequence);
            return;
        }
        let dispatcher = self.clone();
        self.tracker.spawn(async move {
            if !jitter.is_zero() {
                let wait = (tick.scheduled_at + jitter)
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                tokio::select! {
                    _ = dispatcher.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            dispatcher.dispatch(tick).await;
        });
    }

    /// Runs the tick here, or (coordinated) where it is won; returns when it has run or been
    /// left to another host. A paused timer skips it, and with `catch_up` records it as done:
    /// a tick skipped by an operator's pause is not a tick missed while no host ran.
    pub(super) async fn dispatch(&self, tick: Tick) {
        match self.schedule.coordinator.clone() {
            None if self.schedule.state.paused_here() => {
                self.skip_paused(tick.sequence);
                self.record_completed(unix_millis(tick.scheduled_at)).await;
            }
            None => {
                self.run(tick, true).await;
            }
            Some(coordinator) => self.coordinated(&coordinator, tick).await,
        }
    }

    /// The task tracker the runtime waits on at shutdown.
    pub(super) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Whether an operator has the timer paused: in this process, or (coordinated) in Redis,
    /// where a server that cannot be read counts as not paused.
    async fn paused(&self) -> bool {
        match &self.schedule.coordinator {
            None => self.schedule.state.paused_here(),
            Some(coordinator) => coordinator.paused().await.unwrap_or(false),
        }
    }

    fn skip_paused(&self, sequence: u64) {
        self.schedule.reporter.skipped(SkipReason::Paused);
        tracing::debug!(
            trigger = %self.schedule.trigger_id,
            sequence,
            "paused; skipping this tick"
        );
    }

    /// An operator's run-now: a tick due now, run on this host (paused or not, never claimed
    /// from the others, never recorded for `catch_up`: its time is not the schedule's), unless
    /// the overlap policy would skip it or the host is stopping.
    pub(super) fn run_now(&self) -> Result<(), RunNowRefused> {
        if self.shutdown.is_cancelled() {
            return Err(RunNowRefused::Stopping);
        }
        if self.would_skip() {
            return Err(RunNowRefused::Busy);
        }
        let now = SystemTime::now();
        let tick = Tick {
            scheduled_at: now,
            fired_at: now,
            sequence: 0,
            schedule: self.schedule.description.clone(),
            attempt: 1,
            late: false,
        };
        tracing::info!(trigger = %self.schedule.trigger_id, "running a tick now, as an operator asked");
        self.schedule.reporter.received(1);
        let dispatcher = self.clone();
        self.tracker.spawn(async move {
            dispatcher.run(tick, false).await;
        });
        Ok(())
    }

    /// Whether a tick coming now would be skipped: every run slot is taken and, with
    /// `buffer_one`, a tick already waits.
    fn would_skip(&self) -> bool {
        self.slots.available_permits() == 0
            && (self.schedule.config.policy.overlap != Overlap::BufferOne
                || self.buffered.load(Ordering::Acquire))
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

    /// A run slot for the tick: at once if one is free; with `buffer_one`, once the running
    /// tick ends, if no other tick waits; else none, and the tick is skipped.
    async fn admit(&self, sequence: u64) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            if let Some(rate) = &self.rate
                && let Take::Wait(_) = rate.take_up_to(1).await
            {
                self.schedule.reporter.skipped(SkipReason::RateLimit);
                tracing::debug!(
                    trigger = %self.schedule.trigger_id,
                    sequence,
                    "over max_per_second; skipping this tick"
                );
                return None;
            }
            return Some(permit);
        }
        if self.schedule.config.policy.overlap == Overlap::BufferOne
            && !self.buffered.swap(true, Ordering::AcqRel)
        {
            // Cleared however the wait ends, this future dropped included.
            let _waiting = ClearOnDrop(&self.buffered);
            let permit = tokio::select! {
                _ = self.shutdown.cancelled() => None,
                permit = self.slots.clone().acquire_owned() => permit.ok(),
            };
            // Paused while it waited: it does not run.
            if permit.is_some() && self.paused().await {
                self.skip_paused(sequence);
                return None;
            }
            return permit;
        }
        self.log_skip(sequence);
        None
    }

    /// Runs the tick here once admitted, each attempt in a fresh instance, up to
    /// `max_attempts` (or until an operator pauses the timer); with `on_schedule`, records it
    /// for `catch_up` once it ran. A tick whose retries shutdown cut short is not recorded, so
    /// that it is caught up, or (coordinated) run by another host.
    async fn run(&self, mut tick: Tick, on_schedule: bool) -> RunOutcome {
        let Some(_slot) = self.admit(tick.sequence).await else {
            return RunOutcome::NotRun;
        };
        let schedule = &self.schedule;
        let policy = &schedule.config.policy;
        let mut last_error = None;
        let mut outcome = RunOutcome::Ran;
        for attempt in 1..=policy.max_attempts {
            if attempt > 1 && self.paused().await {
                tracing::info!(
                    trigger = %schedule.trigger_id,
                    sequence = tick.sequence,
                    "paused: attempt {attempt} of {} at this tick will not be made",
                    policy.max_attempts
                );
                break;
            }
            tick.attempt = attempt;
            tick.fired_at = SystemTime::now();
            let call = schedule.reporter.start(CallInfo::default());
            let result = in_trace(
                schedule
                    .component
                    .fire(&self.engine, tick.clone(), &schedule.limits),
                &call,
            )
            .await;
            call.finish(result.as_ref().err());
            let Err(error) = result else {
                last_error = None;
                break;
            };
            self.log_failure(&error, &tick);
            last_error = Some(crate::error_text::one_line(&error));
            if attempt == policy.max_attempts {
                break;
            }
            let backoff = policy.backoff_after(attempt);
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    tracing::warn!(
                        trigger = %schedule.trigger_id,
                        sequence = tick.sequence,
                        "shutting down: attempt {} of {} at this tick will not be made",
                        attempt + 1,
                        policy.max_attempts
                    );
                    outcome = RunOutcome::Interrupted;
                    break;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
        }
        schedule.state.record_run(LastRun {
            scheduled_ms: unix_millis(tick.scheduled_at),
            finished_ms: unix_millis(SystemTime::now()),
            attempts: tick.attempt,
            outcome: if last_error.is_some() { "failed" } else { "ok" }.to_owned(),
            error: last_error,
        });
        if on_schedule && outcome == RunOutcome::Ran {
            self.record_completed(unix_millis(tick.scheduled_at)).await;
        }
        outcome
    }

    fn log_failure(&self, error: &anyhow::Error, tick: &Tick) {
        let schedule = &self.schedule;
        let component = schedule.component.id();
        let max_attempts = schedule.config.policy.max_attempts;
        let retried = if tick.attempt < max_attempts {
            format!(
                "; trying again in {}",
                humantime::format_duration(schedule.config.policy.backoff_after(tick.attempt))
            )
        } else {
            String::new()
        };
        crate::telemetry::log_failure(error, component, "timer handler failed", |reason| {
            tracing::error!(
                trigger = %schedule.trigger_id,
                component = %component,
                sequence = tick.sequence,
                attempt = tick.attempt,
                max_attempts,
                late = tick.late,
                "timer handler failed: {reason}{retried}"
            )
        });
    }

    /// With `catch_up`: records the tick as the latest completed one.
    async fn record_completed(&self, scheduled_ms: u64) {
        let Some(ledger) = &self.ledger else { return };
        if let Err(error) = ledger.record(scheduled_ms, false).await {
            tracing::warn!(
                trigger = %self.schedule.trigger_id,
                scheduled_ms,
                "recording the last completed tick for catch_up: {}",
                crate::error_text::one_line(&error)
            );
        }
    }

    /// Runs the tick if this host wins it (see [`Self::win`]), keeping the lease from a task of
    /// its own while the handler runs; then marks it done, or releases it if it could not run.
    async fn coordinated(&self, coordinator: &Arc<Coordinator>, tick: Tick) {
        let scheduled_ms = unix_millis(tick.scheduled_at);
        let trigger = &self.schedule.trigger_id;
        if !self.win(coordinator, scheduled_ms, tick.sequence).await {
            return;
        }
        // Aborted however this ends, this future dropped included: a lease never outlives it.
        let renewal = AbortOnDrop(tokio::spawn(coordination::keep_lease(
            coordinator.clone(),
            self.schedule.reporter.clone(),
            trigger.clone(),
            scheduled_ms,
        )));
        let outcome = self.run(tick, true).await;
        drop(renewal);
        let (settled, what) = if outcome == RunOutcome::Ran {
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
    /// A host that would skip the tick, an unreachable server, a done tick, or shutdown: not
    /// this host.
    async fn win(&self, coordinator: &Coordinator, scheduled_ms: u64, sequence: u64) -> bool {
        let trigger = &self.schedule.trigger_id;
        let mut first_generation = None;
        loop {
            // A host whose overlap policy would skip this tick leaves it to a host that is free.
            if self.would_skip() {
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
                ((Claim::Paused, _), _) => {
                    self.skip_paused(sequence);
                    self.record_completed(scheduled_ms).await;
                    return false;
                }
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

/// How a tick's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunOutcome {
    /// It ran: its handler returned, failed its last attempt, or was paused between attempts.
    Ran,
    /// It did not start (its overlap policy or rate limit skipped it, or shutdown came).
    NotRun,
    /// Shutdown came between its attempts.
    Interrupted,
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
