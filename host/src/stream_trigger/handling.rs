//! Handing entries to handlers: gathering batches, one handler task per batch (or entry), and
//! the retries of what failed, with backoff, up to `max_attempts`; each task reports how its
//! entries ended to the read loop, which tells Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::MAX_RETRY_AFTER;
use super::consumer::{Consumer, HandlerTasks};
use super::delayed::MAX_DELAYED_FIELDS;
use super::held_entries::{HeldEntries, RetryStart};
use super::reply::{Fields, RawEntry};
use crate::redis_component::{Message, Outcome, StreamEntry};
use crate::telemetry::{CallInfo, in_trace, log_failure};

/// How an entry ended, as its handler task reports it; each frees the entry's slot once the reading loop
/// has told Redis.
pub(super) enum Settlement {
    /// Handled: acknowledge it.
    Handled(String),
    /// Failed `max_attempts` times, or unreadable: add it to the dead-letter stream and
    /// acknowledge it.
    Failed(DeadLetter),
    /// Shutdown came before a retry: leave it pending for a consumer that stays.
    Abandoned(String),
    /// Its handler asked for it to be tried again later: add it to the delayed set and
    /// acknowledge it, freeing its slot while it waits.
    Delayed(Delayed),
}

/// An entry on its way to the delayed set: its fields, the attempts made at it so far, and
/// how long it waits before it is added to the stream again.
pub(super) struct Delayed {
    pub(super) id: String,
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) attempts: u32,
    pub(super) delay: Duration,
}

impl Settlement {
    pub(super) fn id(&self) -> &str {
        match self {
            Settlement::Handled(id) | Settlement::Abandoned(id) => id,
            Settlement::Failed(dead) => &dead.id,
            Settlement::Delayed(delayed) => &delayed.id,
        }
    }
}

/// An entry on its way to the dead-letter stream: its fields as bytes, why, and after how many
/// attempts (0: it could not be handed to a handler at all).
pub(super) struct DeadLetter {
    pub(super) id: String,
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) error: String,
    pub(super) attempts: u32,
}

impl DeadLetter {
    fn failed(entry: StreamEntry, error: String) -> Self {
        DeadLetter {
            fields: bytes_fields(entry.fields),
            id: entry.id,
            error,
            attempts: entry.attempt,
        }
    }
}

/// Fields as the dead-letter stream takes them.
fn bytes_fields(fields: Vec<(String, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .into_iter()
        .map(|(name, value)| (name.into_bytes(), value))
        .collect()
}

impl Consumer {
    /// Adds `entries` to the batch gathering and hands on the full batches; the rest waits for
    /// more until `batch_wait` is up (or `now`, at shutdown, or with no `batch_wait`).
    pub(super) fn dispatch_filled(
        self: &Arc<Self>,
        entries: Vec<RawEntry>,
        now: bool,
        held: &mut HeldEntries,
        tasks: &HandlerTasks,
    ) {
        held.filling.extend(entries);
        if held.filling.is_empty() {
            held.filling_since = None;
            return;
        }
        let since = *held.filling_since.get_or_insert_with(Instant::now);
        let due = now || since.elapsed() >= self.batch_wait;
        let ready = if due {
            held.filling.len()
        } else {
            held.filling.len() / self.batch_size * self.batch_size
        };
        let ready: Vec<RawEntry> = held.filling.drain(..ready).collect();
        if held.filling.is_empty() {
            held.filling_since = None;
        }
        if !ready.is_empty() {
            self.dispatch(ready, held, tasks);
        }
    }

    /// Hands the entries to handler tasks, `batch_size` to a task (one, for a component that
    /// takes one entry at a time); each task's ends come back through `held`. Entries no
    /// handler should run are settled here.
    fn dispatch(
        self: &Arc<Self>,
        entries: Vec<RawEntry>,
        held: &mut HeldEntries,
        tasks: &HandlerTasks,
    ) {
        let mut live = Vec::with_capacity(entries.len());
        for entry in entries {
            held.in_flight.insert(entry.id.clone());
            match self.runnable(entry) {
                Ok(entry) => live.push(entry),
                Err(settlement) => {
                    held.batches += 1;
                    held.take_done(vec![settlement]);
                }
            }
        }
        let mut live = live.into_iter().peekable();
        while live.peek().is_some() {
            let batch: Vec<StreamEntry> = live.by_ref().take(self.batch_size).collect();
            held.batches += 1;
            let (consumer, task_context, done, retries) = (
                self.clone(),
                tasks.clone(),
                held.done_sender.clone(),
                held.retry_sender.clone(),
            );
            tasks.tracker.spawn(async move {
                let _ = done.send(consumer.handle(batch, &task_context, &retries).await);
            });
        }
    }

    /// The entry as a handler gets it, or how it is settled without one: dead-lettered when it
    /// cannot be read or was delivered past `max_attempts`, acknowledged when it was deleted.
    fn runnable(&self, entry: RawEntry) -> Result<StreamEntry, Settlement> {
        match entry.fields {
            // Delivered that often and never settled: each time, its host died or was killed
            // while handling it. Running it again would likely do the same.
            Fields::Read(fields) if entry.deliveries > self.max_attempts => {
                self.reporter.dead_lettered();
                let attempts = entry.deliveries - 1;
                Err(Settlement::Failed(DeadLetter {
                    error: format!(
                        "delivered {} times and never settled: each of its {attempts} \
                         attempts ended with its host (max_attempts = {})",
                        entry.deliveries, self.max_attempts
                    ),
                    fields: bytes_fields(fields),
                    id: entry.id,
                    attempts,
                }))
            }
            // Its attempt is its delivery count: what earlier hosts tried counts too.
            Fields::Read(fields) => Ok(StreamEntry {
                id: entry.id,
                fields,
                attempt: entry.deliveries,
            }),
            // Deleted from the stream since it was added, or another group's retry: nothing to
            // handle.
            Fields::Deleted | Fields::ForAnotherGroup => Err(Settlement::Handled(entry.id)),
            // No handler can be given it; retrying cannot change that.
            Fields::Unreadable { raw, reason } => {
                self.reporter.dead_lettered();
                Err(Settlement::Failed(DeadLetter {
                    id: entry.id,
                    fields: raw,
                    error: format!("unreadable entry: {reason}"),
                    attempts: 0,
                }))
            }
        }
    }

    /// Handles the entries in one call (each in a call of its own, for a component that takes
    /// one at a time), then tries those that failed again, together, up to `max_attempts`,
    /// waiting between attempts. Each retry's attempt is reported to `retries`, to be kept
    /// in Redis as the entry's delivery count, and the retry runs once it is kept.
    async fn handle(
        &self,
        mut entries: Vec<StreamEntry>,
        tasks: &HandlerTasks,
        retries: &mpsc::UnboundedSender<RetryStart>,
    ) -> Vec<Settlement> {
        let mut ends = Vec::with_capacity(entries.len());
        loop {
            let failures = self.call(&entries, tasks).await;
            let mut retry = self.sort_outcomes(entries, failures, &mut ends);
            if retry.is_empty() {
                return ends;
            }
            // The wait after the attempt just made: attempts made on another host count too.
            let made = retry.iter().map(|entry| entry.attempt).min().unwrap_or(1);
            let wait = self.retry_backoff.after(made);
            let waited = tokio::select! {
                _ = tasks.shutdown.cancelled() => false,
                _ = tokio::time::sleep(wait) => true,
            };
            if !waited {
                return abandon(ends, retry);
            }
            for entry in &mut retry {
                entry.attempt += 1;
                self.reporter.retried();
            }
            // Written as the attempt starts, not before the wait: a host stopped or killed while
            // waiting leaves the count at the attempts it made. And the attempt runs only once
            // it is written: a host killed while running it leaves the count with it.
            let (recorded, written) = oneshot::channel();
            let _ = retries.send(RetryStart {
                attempts: retry
                    .iter()
                    .map(|entry| (entry.id.clone(), entry.attempt))
                    .collect(),
                recorded,
            });
            // A shutdown that comes while the attempt is written may leave the count one
            // ahead of the runs: fewer attempts later, never more than `max_attempts`.
            let written = tokio::select! {
                _ = tasks.shutdown.cancelled() => false,
                result = written => result.is_ok(),
            };
            if !written {
                return abandon(ends, retry);
            }
            entries = retry;
        }
    }

    /// Sorts one call's entries by their outcome: handled ones, those out of attempts, those
    /// their handler delayed or dead-lettered go to `ends`; the failed ones to try again are
    /// returned. `outcomes` are the indexes of the entries not simply handled, in order.
    fn sort_outcomes(
        &self,
        entries: Vec<StreamEntry>,
        outcomes: Vec<(usize, Outcome)>,
        ends: &mut Vec<Settlement>,
    ) -> Vec<StreamEntry> {
        let mut retry = Vec::new();
        let mut outcomes = outcomes.into_iter().peekable();
        for (index, entry) in entries.into_iter().enumerate() {
            let outcome = match outcomes.peek() {
                Some((at, _)) if *at == index => outcomes.next().map(|(_, outcome)| outcome),
                _ => None,
            };
            let error = match outcome {
                None => {
                    ends.push(Settlement::Handled(entry.id));
                    continue;
                }
                Some(Outcome::Failed(error)) => error,
                Some(Outcome::RetryAfter(delay)) if entry.fields.len() <= MAX_DELAYED_FIELDS => {
                    ends.push(self.delay(entry, delay));
                    continue;
                }
                // Too big for the delayed set's scripts: a failure, retried in its slot.
                Some(Outcome::RetryAfter(delay)) => format!(
                    "asked to be retried after {delay:?}, but its {} fields are more than the \
                     delayed set takes ({MAX_DELAYED_FIELDS}): tried again after the trigger's \
                     backoff instead",
                    entry.fields.len()
                ),
                Some(Outcome::DeadLetter(reason)) => {
                    let error = format!("dead-lettered by its handler: {reason}");
                    ends.push(self.dead_letter_now(entry, error));
                    continue;
                }
            };
            tracing::error!(
                trigger = %self.trigger_id,
                component = %self.component.id(),
                stream = %self.stream,
                entry = %entry.id,
                attempt = entry.attempt,
                max_attempts = self.max_attempts,
                "Redis stream handler failed: {error}"
            );
            if entry.attempt >= self.max_attempts {
                self.reporter.dead_lettered();
                ends.push(Settlement::Failed(DeadLetter::failed(entry, error)));
            } else {
                retry.push(entry);
            }
        }
        retry
    }

    /// An entry whose handler asked for it to be tried again after `delay`: to the delayed set,
    /// or, on its last attempt, to the dead-letter stream.
    fn delay(&self, entry: StreamEntry, delay: Duration) -> Settlement {
        if entry.attempt >= self.max_attempts {
            let error = format!(
                "asked to be retried after {delay:?} on its last attempt (max_attempts = {})",
                self.max_attempts
            );
            return self.dead_letter_now(entry, error);
        }
        if delay > MAX_RETRY_AFTER {
            tracing::warn!(
                trigger = %self.trigger_id,
                entry = %entry.id,
                "a retry after {delay:?} waits {MAX_RETRY_AFTER:?}, the longest there is"
            );
        }
        self.reporter.retried();
        Settlement::Delayed(Delayed {
            fields: bytes_fields(entry.fields),
            id: entry.id,
            attempts: entry.attempt,
            delay: delay.min(MAX_RETRY_AFTER),
        })
    }

    /// An entry its handler's outcome sends to the dead-letter stream, without another
    /// attempt, with `error` saying why.
    fn dead_letter_now(&self, entry: StreamEntry, error: String) -> Settlement {
        tracing::warn!(
            trigger = %self.trigger_id,
            component = %self.component.id(),
            stream = %self.stream,
            entry = %entry.id,
            attempt = entry.attempt,
            "the entry goes to the dead-letter stream: {error}"
        );
        self.reporter.dead_lettered();
        Settlement::Failed(DeadLetter::failed(entry, error))
    }

    /// One call with `entries` (several only for a component taking batches): the index and
    /// outcome of each entry its handler did not simply handle, in order.
    async fn call(&self, entries: &[StreamEntry], tasks: &HandlerTasks) -> Vec<(usize, Outcome)> {
        let messages: Vec<Message> = entries
            .iter()
            .map(|entry| Message {
                channel: self.stream.clone(),
                payload: entry.payload().unwrap_or_default().to_vec(),
                pattern: None,
                entry: Some(entry.clone()),
            })
            .collect();
        let first = entries.first();
        let traceparent = first
            .and_then(|entry| entry.fields.iter().find(|(name, _)| name == "traceparent"))
            .and_then(|(_, value)| std::str::from_utf8(value).ok());
        let call = self.reporter.start(CallInfo {
            destination: Some(&self.stream),
            // A batch's span names its first entry, and its size.
            message_id: first.map(|entry| entry.id.as_str()),
            attempt: first.map(|entry| entry.attempt),
            traceparent,
        });
        let result = in_trace(
            self.component
                .handle_batch(&tasks.engine, &messages, &self.limits),
            &call,
        )
        .await;
        match result {
            Ok(outcomes) => {
                let mut errors = outcomes.iter().filter_map(|(_, outcome)| match outcome {
                    Outcome::Failed(error) => Some(error),
                    _ => None,
                });
                // The span's error: the handler's own, for a call with one entry.
                let failed = errors.next().map(|first| match errors.count() {
                    _ if entries.len() == 1 => {
                        anyhow::anyhow!("handler returned an error: {first}")
                    }
                    more => anyhow::anyhow!(
                        "{} of {} entries failed (the first: {first})",
                        more + 1,
                        entries.len()
                    ),
                });
                call.finish(failed.as_ref());
                outcomes
            }
            Err(error) => {
                call.finish(Some(&error));
                let mut why = String::new();
                log_failure(
                    &error,
                    self.component.id(),
                    "Redis stream handler failed",
                    |text| why = text.to_owned(),
                );
                (0..entries.len())
                    .map(|index| (index, Outcome::Failed(why.clone())))
                    .collect()
            }
        }
    }
}

/// The ends of a handler task stopped before a retry: the entries to retry stay pending, for a
/// consumer that stays.
fn abandon(mut ends: Vec<Settlement>, retry: Vec<StreamEntry>) -> Vec<Settlement> {
    ends.extend(
        retry
            .into_iter()
            .map(|entry| Settlement::Abandoned(entry.id)),
    );
    ends
}
