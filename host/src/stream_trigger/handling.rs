//! Handing entries to handlers: gathering batches, one handler task per batch (or entry), and
//! the retries of what failed, with backoff, up to `max_attempts`; each task reports how its
//! entries ended to the read loop, which tells Redis.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::reply::{Fields, RawEntry};
use super::{
    Attempt, Consumer, DeadLetter, Done, MAX_RETRY_WAIT, MIN_RETRY_WAIT, Reader, Running,
    bytes_fields,
};
use crate::redis_component::{Message, StreamEntry};
use crate::telemetry::{CallInfo, log_failure};

impl Consumer {
    /// Adds `entries` to the batch gathering and hands on the full batches; the rest waits for
    /// more until `batch_wait` is up (or `now`, at shutdown, or with no `batch_wait`).
    pub(super) fn dispatch_filled(
        self: &Arc<Self>,
        entries: Vec<RawEntry>,
        now: bool,
        reader: &mut Reader,
        running: &Running,
    ) {
        reader.filling.extend(entries);
        if reader.filling.is_empty() {
            reader.filling_since = None;
            return;
        }
        let since = *reader.filling_since.get_or_insert_with(Instant::now);
        let due = now || since.elapsed() >= self.batch_wait;
        let ready = if due {
            reader.filling.len()
        } else {
            reader.filling.len() / self.batch_size * self.batch_size
        };
        let ready: Vec<RawEntry> = reader.filling.drain(..ready).collect();
        if reader.filling.is_empty() {
            reader.filling_since = None;
        }
        if !ready.is_empty() {
            self.dispatch(ready, reader, running);
        }
    }

    /// Hands the entries to handler tasks, `batch_size` to a task (one, for a component that
    /// takes one entry at a time); each task's ends come back through the reader.
    fn dispatch(self: &Arc<Self>, entries: Vec<RawEntry>, reader: &mut Reader, running: &Running) {
        let mut live = Vec::with_capacity(entries.len());
        for entry in entries {
            reader.in_flight.insert(entry.id.clone());
            match entry.fields {
                // Delivered that often and never settled: each time, its host died or was
                // killed while handling it. Running it again would likely do the same.
                Fields::Read(fields) if entry.deliveries > self.max_attempts => {
                    self.reporter.dead_lettered();
                    reader.batches += 1;
                    let attempts = entry.deliveries - 1;
                    reader.take_done(vec![Done::Failed(DeadLetter {
                        error: format!(
                            "delivered {} times and never settled: each of its {attempts} \
                             attempts ended with its host (max_attempts = {})",
                            entry.deliveries, self.max_attempts
                        ),
                        fields: bytes_fields(fields),
                        id: entry.id,
                        attempts,
                    })]);
                }
                // Its attempt is its delivery count: what earlier hosts tried counts too.
                Fields::Read(fields) => live.push(StreamEntry {
                    id: entry.id,
                    fields,
                    attempt: entry.deliveries,
                }),
                // Deleted from the stream since it was added: nothing to handle.
                Fields::Deleted => {
                    reader.batches += 1;
                    reader.take_done(vec![Done::Handled(entry.id)]);
                }
                // No handler can be given it; retrying cannot change that.
                Fields::Unreadable { raw, reason } => {
                    self.reporter.dead_lettered();
                    reader.batches += 1;
                    reader.take_done(vec![Done::Failed(DeadLetter {
                        id: entry.id,
                        fields: raw,
                        error: format!("unreadable entry: {reason}"),
                        attempts: 0,
                    })]);
                }
            }
        }
        let mut live = live.into_iter().peekable();
        while live.peek().is_some() {
            let batch: Vec<StreamEntry> = live.by_ref().take(self.batch_size).collect();
            reader.batches += 1;
            let (consumer, running_task, done, retries) = (
                self.clone(),
                running.clone(),
                reader.done_sender.clone(),
                reader.retry_sender.clone(),
            );
            running.tracker.spawn(async move {
                let _ = done.send(consumer.handle(batch, &running_task, &retries).await);
            });
        }
    }

    /// Handles the entries in one call (each in a call of its own, for a component that takes
    /// one at a time), then tries those that failed again, together, up to `max_attempts`,
    /// waiting between attempts. Each retry's attempt is reported to `retries`, to be kept
    /// in Redis as the entry's delivery count.
    async fn handle(
        &self,
        mut entries: Vec<StreamEntry>,
        running: &Running,
        retries: &mpsc::UnboundedSender<Vec<Attempt>>,
    ) -> Vec<Done> {
        let mut ends = Vec::with_capacity(entries.len());
        let mut wait = MIN_RETRY_WAIT;
        loop {
            let failures = self.call(&entries, running).await;
            let mut retry = Vec::new();
            let mut failures = failures.into_iter().peekable();
            for (index, entry) in entries.into_iter().enumerate() {
                let error = match failures.peek() {
                    Some((failed, _)) if *failed == index => failures.next().map(|(_, why)| why),
                    _ => None,
                };
                let Some(error) = error else {
                    ends.push(Done::Handled(entry.id));
                    continue;
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
                    ends.push(Done::Failed(DeadLetter::failed(entry, error)));
                } else {
                    retry.push(entry);
                }
            }
            if retry.is_empty() {
                return ends;
            }
            let _ = retries.send(
                retry
                    .iter()
                    .map(|entry| (entry.id.clone(), entry.attempt + 1))
                    .collect(),
            );
            tokio::select! {
                _ = running.shutdown.cancelled() => {
                    ends.extend(retry.into_iter().map(|entry| Done::Abandoned(entry.id)));
                    return ends;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_RETRY_WAIT);
            for entry in &mut retry {
                entry.attempt += 1;
                self.reporter.retried();
            }
            entries = retry;
        }
    }

    /// One call with `entries` (several only for a component taking batches): the index and
    /// error of each entry that failed, in order.
    async fn call(&self, entries: &[StreamEntry], running: &Running) -> Vec<(usize, String)> {
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
        let result = self
            .component
            .handle_batch(&running.engine, &messages, &self.limits)
            .await;
        match result {
            Ok(mut failures) => {
                let failed = (!failures.is_empty()).then(|| {
                    anyhow::anyhow!("{} of {} entries failed", failures.len(), entries.len())
                });
                call.finish(failed.as_ref());
                failures.sort_by_key(|(index, _)| *index);
                failures.dedup_by_key(|(index, _)| *index);
                failures
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
                    .map(|index| (index, why.clone()))
                    .collect()
            }
        }
    }
}
