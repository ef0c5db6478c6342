//! `catch_up`: which ticks were missed while no host ran, and where the last completed tick is
//! kept so that a host starting later knows.
//!
//! Every tick a timer with `catch_up` completes (its handler returned, or failed its last
//! attempt) is recorded as the latest completed one: in the state directory
//! (`timers/<trigger>.last`) without coordination, in Redis (`spin-trigger:timer:<app>:
//! <trigger>:last`) with it. At start, the ticks due after it, and no longer ago than the window,
//! are the missed ones. A timer with no record yet records the time it starts, so its first
//! start has nothing to catch up and its second knows where to begin.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use tokio_util::sync::CancellationToken;

use super::component::{Tick, unix_millis};
use super::dispatch::Dispatcher;
use crate::timer::config::TimerSchedule;
use crate::timer::coordination::Coordinator;

/// How many missed ticks are worked out at once; more are worked out after these ran.
pub(super) const CHUNK: usize = 1_000;

/// Where the last completed tick is kept.
pub(super) enum Ledger {
    /// A file in the state directory, holding the tick's scheduled ms; the latest written is
    /// also kept here, so that ticks completing out of order (`overlap = "allow"`) never lower
    /// it.
    File {
        path: PathBuf,
        latest: tokio::sync::Mutex<Option<u64>>,
    },
    /// The coordination server, shared by every host.
    Redis(Arc<Coordinator>),
}

impl Ledger {
    /// The file for `trigger_id` in the state directory `dir`. The id is kept as it is where it
    /// is a safe file name, and written in hex otherwise.
    pub(super) fn in_state_dir(dir: &Path, trigger_id: &str) -> Self {
        let safe = !trigger_id.is_empty()
            && trigger_id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        let name = if safe {
            trigger_id.to_owned()
        } else {
            let hex: String = trigger_id.bytes().map(|b| format!("{b:02x}")).collect();
            format!("x-{hex}")
        };
        Ledger::File {
            path: dir.join("timers").join(format!("{name}.last")),
            latest: tokio::sync::Mutex::new(None),
        }
    }

    /// Where it is, for logs.
    pub(super) fn describe(&self) -> String {
        match self {
            Ledger::File { path, .. } => path.display().to_string(),
            Ledger::Redis(coordinator) => coordinator.shown.clone(),
        }
    }

    /// The scheduled ms of the last completed tick, if one is recorded.
    pub(super) async fn last(&self) -> anyhow::Result<Option<u64>> {
        match self {
            Ledger::File { path, .. } => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_last(&path)).await?
            }
            Ledger::Redis(coordinator) => coordinator.last_completed().await,
        }
    }

    /// Records that the tick at `scheduled_ms` completed, unless a later one is recorded; with
    /// `only_if_none`, only when nothing is.
    pub(super) async fn record(&self, scheduled_ms: u64, only_if_none: bool) -> anyhow::Result<()> {
        match self {
            Ledger::File { path, latest } => {
                let mut latest = latest.lock().await;
                if latest.is_none() {
                    // What an earlier run recorded (unreadable: as if nothing were).
                    *latest = self.last().await.ok().flatten();
                }
                if latest.is_some_and(|latest| only_if_none || latest >= scheduled_ms) {
                    return Ok(());
                }
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    write_atomically(&path, &scheduled_ms.to_string())
                })
                .await??;
                *latest = Some(scheduled_ms);
                Ok(())
            }
            Ledger::Redis(coordinator) => {
                coordinator
                    .record_completed(scheduled_ms, only_if_none)
                    .await
            }
        }
    }
}

/// The time in ms the file at `path` holds; `None` when there is no file.
fn read_last(path: &Path) -> anyhow::Result<Option<u64>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{} does not hold a time in ms: {text:?}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `text` to a file beside `path`, then renames it over `path`, so that a host killed
/// while writing leaves the old record or the new, never half of one.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let what = || format!("recording the last completed tick in {}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(what)?;
    }
    // Named for this process: hosts sharing a state directory never write into one another's.
    let partial = path.with_extension(format!(
        "last.{}-{:08x}.partial",
        std::process::id(),
        super::coordination::rand_u32()
    ));
    let mut file = std::fs::File::create(&partial).with_context(what)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).with_context(what)?;
    // On disk before it replaces the record: a crash leaves the old record or the new.
    file.sync_all().with_context(what)?;
    std::fs::rename(&partial, path).with_context(what)
}

/// With `catch_up`: runs the ticks due after the last completed one (and within the window) up
/// to now, one at a time, oldest first, marked late, each on the tracker (so shutdown lets it
/// finish). Ticks coming due meanwhile are the schedule's, not caught up: a handler slower than
/// its interval cannot keep the timer catching up. Returns the time caught up to (`None`
/// without `catch_up` or a record); the outer `None` at shutdown.
pub(super) async fn run_missed(
    dispatcher: &Dispatcher,
    shutdown: &CancellationToken,
) -> Option<Option<SystemTime>> {
    let schedule = &dispatcher.schedule;
    let (Some(window), Some(ledger)) = (schedule.config.policy.catch_up, &dispatcher.ledger) else {
        return Some(None);
    };
    let trigger = &schedule.trigger_id;
    let until = SystemTime::now();
    let mut after = match ledger.last().await {
        // A record from the future (a clock set ahead) would stop catching up for good.
        Ok(Some(last)) => (UNIX_EPOCH + Duration::from_millis(last)).min(until),
        Ok(None) => {
            // Nothing ran yet: catching up starts from now, next time.
            if let Err(error) = ledger.record(unix_millis(until), true).await {
                tracing::warn!(trigger = %trigger, "catch_up: {}", crate::error_text::one_line(&error));
            }
            return Some(None);
        }
        Err(error) => {
            tracing::warn!(
                trigger = %trigger,
                "catch_up: not catching up, since the last completed tick could not be read from {}: {}",
                ledger.describe(),
                crate::error_text::one_line(&error)
            );
            return Some(None);
        }
    };
    after = after.max(until.checked_sub(window).unwrap_or(UNIX_EPOCH));
    let interval = schedule.config.effective_interval();
    loop {
        let missed = due_between(&schedule.config.schedule, interval, after, until, CHUNK);
        let Some(last) = missed.last() else {
            return Some(Some(until));
        };
        tracing::info!(
            trigger = %trigger,
            ticks = missed.len(),
            "catching up on ticks missed while no host ran, oldest first"
        );
        after = *last;
        for scheduled_at in missed {
            if shutdown.is_cancelled() {
                return None;
            }
            if !schedule.config.policy.active_at(scheduled_at) {
                continue;
            }
            schedule.reporter.received(1);
            let tick = Tick {
                scheduled_at,
                fired_at: SystemTime::now(),
                sequence: 0,
                schedule: schedule.description.clone(),
                attempt: 1,
                late: true,
            };
            let task = dispatcher.clone();
            let _ = dispatcher
                .tracker()
                .spawn(async move { task.dispatch(tick).await })
                .await;
        }
    }
}

/// Up to `limit` times `schedule` names strictly after `after` and at or before `until`, oldest
/// first. An interval's ticks are whole intervals from the Unix epoch, as a timer with
/// `catch_up` or `coordination` fires them.
pub(super) fn due_between(
    schedule: &TimerSchedule,
    interval: Option<Duration>,
    after: SystemTime,
    until: SystemTime,
    limit: usize,
) -> Vec<SystemTime> {
    let mut due = Vec::new();
    match (schedule, interval) {
        (TimerSchedule::Cron(cron), _) => {
            let until = chrono::DateTime::<chrono::Utc>::from(until);
            let mut at = chrono::DateTime::<chrono::Utc>::from(after);
            while due.len() < limit {
                match cron.next_after(at) {
                    Some(next) if next <= until => {
                        due.push(SystemTime::from(next));
                        at = next;
                    }
                    _ => break,
                }
            }
        }
        (TimerSchedule::Interval { .. }, Some(interval)) => {
            let nanos = |time: SystemTime| {
                time.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            };
            let step = interval.as_nanos().max(1);
            let until = nanos(until);
            let mut tick = (nanos(after) / step + 1) * step;
            while tick <= until && due.len() < limit {
                // Within `until`, which a SystemTime held, so this fits in a u64 of nanoseconds.
                due.push(UNIX_EPOCH + Duration::from_nanos(tick as u64));
                tick += step;
            }
        }
        (TimerSchedule::Interval { .. }, None) => {}
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn interval(ms: u64) -> (TimerSchedule, Option<Duration>) {
        let interval = Duration::from_millis(ms);
        (
            TimerSchedule::Interval {
                interval,
                speedup: 1.0,
            },
            Some(interval),
        )
    }

    #[test]
    fn an_intervals_missed_ticks_are_whole_intervals_after_the_last_up_to_now() {
        let (schedule, every) = interval(1000);
        assert_eq!(
            due_between(&schedule, every, at(5_000), at(8_500), 100),
            [at(6_000), at(7_000), at(8_000)]
        );
        assert_eq!(
            due_between(&schedule, every, at(5_400), at(8_000), 100),
            [at(6_000), at(7_000), at(8_000)],
            "a tick due exactly at the end is missed too; the last one is not"
        );
        assert_eq!(
            due_between(&schedule, every, at(5_000), at(9_000), 2),
            [at(6_000), at(7_000)],
            "oldest first, at most the limit"
        );
        assert!(due_between(&schedule, every, at(5_000), at(5_999), 100).is_empty());
    }

    #[test]
    fn a_cron_schedules_missed_ticks_are_the_times_it_names() {
        let cron = crate::timer::cron::CronSchedule::parse("0 */15 * * * *", None).unwrap();
        let schedule = TimerSchedule::Cron(Box::new(cron));
        let minutes = |m: u64| at(m * 60_000);
        assert_eq!(
            due_between(&schedule, None, minutes(14), minutes(46), 100),
            [minutes(15), minutes(30), minutes(45)]
        );
    }

    #[tokio::test]
    async fn the_file_ledger_keeps_the_latest_tick_and_a_first_start_point() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::in_state_dir(dir.path(), "every/second");
        let Ledger::File { path, .. } = &ledger else {
            unreachable!()
        };
        assert!(path.ends_with("timers/x-65766572792f7365636f6e64.last"));
        assert_eq!(ledger.last().await.unwrap(), None);
        ledger.record(2_000, true).await.unwrap();
        ledger.record(1_000, true).await.unwrap();
        assert_eq!(ledger.last().await.unwrap(), Some(2_000));
        ledger.record(4_000, false).await.unwrap();
        ledger.record(3_000, false).await.unwrap();
        assert_eq!(
            ledger.last().await.unwrap(),
            Some(4_000),
            "a tick completing after a later one does not lower the record"
        );
        std::fs::write(path, "garbage").unwrap();
        let error = Ledger::in_state_dir(dir.path(), "every/second")
            .last()
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("does not hold a time in ms"));
    }
}
