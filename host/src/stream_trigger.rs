//! The Redis Streams trigger: where a stream entry is dispatched.
//!
//! Each `[[trigger.redis-stream]]` makes this process one consumer in a consumer group: Redis
//! hands each entry of the stream to one consumer of the group, so several hosts in one group
//! share the work. The group is created (with the stream, `MKSTREAM`) when missing, reading from
//! the start of the stream. Entries are read with `XREADGROUP`, never more than there are free
//! handler slots (`max_in_flight`), so a host holds at most that many unacknowledged entries: if
//! it dies, at most that many are handled twice.
//!
//! Each entry runs in a fresh instance. Success: `XACK`. A failure or trap: retried with backoff,
//! up to `max_attempts`; then the entry, with the error and the attempt count, is added to the
//! dead-letter stream and acknowledged, both in one `MULTI`. On start and every half
//! `claim_idle`, `XAUTOCLAIM` takes over entries another consumer left unacknowledged longer than
//! `claim_idle` (a consumer that died). A lost connection is logged and re-established with
//! capped exponential backoff; entries whose acknowledgement was lost are read again from this
//! consumer's own pending list. At shutdown the consumer stops reading and lets what it read
//! finish and be acknowledged.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use redis::AsyncTypedCommands;
use redis::aio::MultiplexedConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::allowed_hosts::redact;
use crate::app::App;
use crate::engine::{Engine, PreparedComponent, log_failure};
use crate::manifest::{ManifestError, Validation};
use crate::redis_trigger::config::{RawAddressSettings, validate_address_settings};
use crate::redis_trigger::{Message, RedisComponent, StreamEntry};
use crate::trigger::{RunTrigger, TriggerConfig, TriggerFuture, TriggerType};
use crate::variables::{ResolvedVariables, Template};

pub mod config;

pub use config::StreamConfig;

/// How long one `XREADGROUP` waits for new entries; shutdown is noticed between reads, never
/// in the middle of one (entries it returned would otherwise stay pending, unhandled).
const READ_BLOCK: Duration = Duration::from_millis(500);
/// How long a reply may take beyond the read's own block time before the connection counts
/// as lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Waits between attempts at a failing entry: 100 ms, doubling, at most 5 s.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// Claims are checked at least this far apart, however short `claim_idle` is.
const MIN_CLAIM_INTERVAL: Duration = Duration::from_millis(100);

/// Every `[[trigger.redis-stream]]` of an app.
pub struct StreamTrigger {
    consumers: Vec<Arc<Consumer>>,
}

/// One `[[trigger.redis-stream]]`, resolved: this process's consumer in a group.
struct Consumer {
    trigger_id: String,
    component: Arc<RedisComponent>,
    address: String,
    /// The address as logs show it: any password redacted.
    shown_address: String,
    stream: String,
    group: String,
    consumer: String,
    dead_letter: String,
    max_in_flight: usize,
    max_attempts: u32,
    claim_idle: Duration,
}

impl TriggerType for StreamTrigger {
    const NAME: &'static str = "redis-stream";
    type RawSettings = RawAddressSettings;
    /// The application's default server.
    type Settings = Option<Template>;
    type RawConfig = config::RawStreamConfig;
    type Config = StreamConfig;

    fn validate_settings(
        raw: Self::RawSettings,
        validation: &Validation,
    ) -> Result<Option<Template>, ManifestError> {
        validate_address_settings(raw, "application.trigger.redis-stream", validation)
    }

    fn validate(
        raw: Self::RawConfig,
        address: &Option<Template>,
        location: &str,
        validation: &Validation,
    ) -> Result<StreamConfig, ManifestError> {
        config::validate(raw, address.as_ref(), location, validation)
    }

    fn live_instances(config: &StreamConfig) -> usize {
        config.max_in_flight
    }

    fn config_of(config: &TriggerConfig) -> Option<&StreamConfig> {
        match config {
            TriggerConfig::RedisStream(config) => Some(config),
            _ => None,
        }
    }

    fn build(
        app: &App,
        variables: &ResolvedVariables,
        prepared: &BTreeMap<String, Arc<PreparedComponent>>,
    ) -> anyhow::Result<Self> {
        StreamTrigger::new(app, variables, prepared)
    }
}

impl RunTrigger for StreamTrigger {
    fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> TriggerFuture<'_, ()> {
        Box::pin(self.run(engine, shutdown, tracker))
    }
}

impl StreamTrigger {
    /// Resolves every stream trigger's settings and picks each component's Redis world.
    pub fn new(
        app: &App,
        variables: &ResolvedVariables,
        prepared: &BTreeMap<String, Arc<PreparedComponent>>,
    ) -> anyhow::Result<Self> {
        let default_consumer = format!(
            "{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        );
        let mut components: BTreeMap<String, Arc<RedisComponent>> = BTreeMap::new();
        let mut consumers = Vec::new();
        for (trigger, config) in app.triggers_of::<StreamTrigger>() {
            let component = match components.get(&trigger.component) {
                Some(component) => component.clone(),
                None => {
                    let prepared = prepared.get(&trigger.component).with_context(|| {
                        format!("component `{}` was not prepared", trigger.component)
                    })?;
                    let component = Arc::new(RedisComponent::new(prepared.clone())?);
                    components.insert(trigger.component.clone(), component.clone());
                    component
                }
            };
            let render = |template: &crate::variables::Template, what: &str| {
                variables.render(template).with_context(|| {
                    format!(
                        "Redis stream trigger `{}`: rendering its {what}",
                        trigger.id
                    )
                })
            };
            let address = render(&config.address, "address")?;
            redis::Client::open(address.as_str()).with_context(|| {
                format!(
                    "Redis stream trigger `{}`: invalid address {}",
                    trigger.id,
                    redact(&address)
                )
            })?;
            let stream = render(&config.stream, "stream")?;
            let group = match &config.group {
                Some(group) => render(group, "group")?,
                None => app.name.clone(),
            };
            let consumer = match &config.consumer {
                Some(consumer) => render(consumer, "consumer")?,
                None => default_consumer.clone(),
            };
            let dead_letter = match &config.dead_letter {
                Some(dead_letter) => render(dead_letter, "dead_letter")?,
                None => format!("{stream}.dead"),
            };
            if dead_letter == stream {
                bail!(
                    "Redis stream trigger `{}`: the dead-letter stream is the stream itself (`{stream}`); name another",
                    trigger.id
                );
            }
            consumers.push(Arc::new(Consumer {
                trigger_id: trigger.id.clone(),
                component,
                shown_address: redact(&address),
                address,
                stream,
                group,
                consumer,
                dead_letter,
                max_in_flight: config.max_in_flight,
                max_attempts: config.max_attempts,
                claim_idle: config.claim_idle,
            }));
        }
        Ok(StreamTrigger { consumers })
    }

    /// Serves every stream until `shutdown` is cancelled. Handlers run on `tracker`.
    pub async fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        for consumer in &self.consumers {
            let consumer = consumer.clone();
            let running = Running {
                engine: engine.clone(),
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                slots: Arc::new(Semaphore::new(consumer.max_in_flight)),
                in_flight: Arc::new(Mutex::new(HashSet::new())),
            };
            tracker.spawn(consumer.run(running));
        }
        shutdown.cancelled().await;
    }
}

/// What a consumer's reading loop and its handlers share.
#[derive(Clone)]
struct Running {
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// One permit per entry being handled: `max_in_flight` of them.
    slots: Arc<Semaphore>,
    /// The ids of the entries being handled, which a claim must leave alone.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// One entry as read from the stream: `None` fields for an entry deleted since it was read.
struct RawEntry {
    id: String,
    fields: Option<Vec<(String, Vec<u8>)>>,
}

impl Consumer {
    /// Reads and dispatches until shutdown, reconnecting whenever the connection is lost.
    async fn run(self: Arc<Self>, running: Running) {
        let mut backoff = MIN_BACKOFF;
        while !running.shutdown.is_cancelled() {
            let Err(error) = self.serve(&running, &mut backoff).await else {
                break;
            };
            tracing::warn!(
                trigger = %self.trigger_id,
                address = %self.shown_address,
                stream = %self.stream,
                "lost the connection to the Redis server; reconnecting in {backoff:?} (cause: {})",
                crate::errors::one_line(&error)
            );
            // Entries being handled finish first: reading this consumer's pending entries
            // again must not hand out one that is still running.
            let all = self.max_in_flight as u32;
            let _ = running.slots.acquire_many(all).await;
            tokio::select! {
                _ = running.shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: joins the group, then reads (its own pending entries first, then
    /// new ones) and claims, until shutdown (`Ok`) or a Redis error (`Err`).
    async fn serve(
        self: &Arc<Self>,
        running: &Running,
        backoff: &mut Duration,
    ) -> anyhow::Result<()> {
        let client = redis::Client::open(self.address.as_str())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(READ_BLOCK + RESPONSE_TIMEOUT));
        let mut reader = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connecting")?;
        // Acknowledgements go over a connection of their own, so that they never queue
        // behind a blocked read.
        let acks = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connecting")?;
        self.join_group(&mut reader).await?;
        tracing::info!(
            trigger = %self.trigger_id,
            address = %self.shown_address,
            stream = %self.stream,
            group = %self.group,
            consumer = %self.consumer,
            "reading stream"
        );
        *backoff = MIN_BACKOFF;

        let claim_interval = (self.claim_idle / 2).max(MIN_CLAIM_INTERVAL);
        let mut next_claim = Instant::now();
        // `Some(cursor)` while a claim scan is under way.
        let mut claim_cursor: Option<String> = None;
        // This consumer's own pending entries (a lost acknowledgement, or a restart under a
        // fixed consumer name) come first.
        let mut own_pending = true;
        loop {
            // Wait for a free slot; from here only this loop takes slots, so every one free
            // now stays free until it hands them out.
            let first = tokio::select! {
                biased;
                _ = running.shutdown.cancelled() => return Ok(()),
                permit = running.slots.clone().acquire_owned() => permit.context("handler slots closed")?,
            };
            if running.shutdown.is_cancelled() {
                return Ok(());
            }
            let free = 1 + running.slots.available_permits();
            if claim_cursor.is_none() && Instant::now() >= next_claim {
                claim_cursor = Some("0-0".to_owned());
                next_claim = Instant::now() + claim_interval;
            }
            let entries = if let Some(cursor) = &claim_cursor {
                let (next, claimed) = self.claim(&mut reader, cursor, free).await?;
                claim_cursor = (next != "0-0").then_some(next);
                let in_flight = lock(&running.in_flight);
                claimed
                    .into_iter()
                    .filter(|entry| !in_flight.contains(&entry.id))
                    .collect()
            } else if own_pending {
                let entries = self.read(&mut reader, "0", free, None).await?;
                own_pending = !entries.is_empty();
                entries
            } else {
                self.read(&mut reader, ">", free, Some(READ_BLOCK)).await?
            };
            let mut first = Some(first);
            for entry in entries {
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => running
                        .slots
                        .clone()
                        .try_acquire_owned()
                        .context("no free handler slot for an entry read")?,
                };
                self.dispatch(entry, slot, &acks, running);
            }
        }
    }

    /// Creates the group (and the stream) unless it exists; a new group reads the stream from
    /// its first entry, so entries added before any host started are handled too.
    async fn join_group(&self, connection: &mut MultiplexedConnection) -> anyhow::Result<()> {
        let created = connection
            .xgroup_create_mkstream(&self.stream, &self.group, "0")
            .await;
        match created {
            Ok(()) => {
                tracing::info!(stream = %self.stream, group = %self.group, "created consumer group");
                Ok(())
            }
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            Err(error) => Err(error).with_context(|| {
                format!(
                    "creating consumer group `{}` on stream `{}`",
                    self.group, self.stream
                )
            }),
        }
    }

    /// `XREADGROUP`: up to `count` entries after `id` (`>`: never delivered; `0`: this
    /// consumer's pending ones).
    async fn read(
        &self,
        connection: &mut MultiplexedConnection,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> anyhow::Result<Vec<RawEntry>> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            command.arg("BLOCK").arg(block.as_millis() as u64);
        }
        command.arg("STREAMS").arg(&self.stream).arg(id);
        let reply: redis::Value = command
            .query_async(connection)
            .await
            .with_context(|| format!("reading stream `{}`", self.stream))?;
        parse_read_reply(reply).with_context(|| format!("reading stream `{}`", self.stream))
    }

    /// `XAUTOCLAIM`: up to `count` entries idle longer than `claim_idle`, from `cursor`; returns
    /// the next cursor (`0-0`: the scan is complete) and the entries now this consumer's.
    async fn claim(
        &self,
        connection: &mut MultiplexedConnection,
        cursor: &str,
        count: usize,
    ) -> anyhow::Result<(String, Vec<RawEntry>)> {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(connection)
            .await
            .with_context(|| format!("claiming idle entries of stream `{}`", self.stream))?;
        let (next, claimed) = parse_claim_reply(reply)
            .with_context(|| format!("claiming idle entries of stream `{}`", self.stream))?;
        if !claimed.is_empty() {
            tracing::info!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                claimed = claimed.len(),
                "claimed entries another consumer left unacknowledged longer than {:?}",
                self.claim_idle
            );
        }
        Ok((next, claimed))
    }

    /// Handles one entry on a task of its own, holding `slot` until it is acknowledged.
    fn dispatch(
        self: &Arc<Self>,
        entry: RawEntry,
        slot: OwnedSemaphorePermit,
        acks: &MultiplexedConnection,
        running: &Running,
    ) {
        let Some(fields) = entry.fields else {
            // Deleted from the stream since it was added: nothing to handle.
            let (consumer, mut acks) = (self.clone(), acks.clone());
            running.tracker.spawn(async move {
                consumer.acknowledge(&mut acks, &entry.id).await;
                drop(slot);
            });
            return;
        };
        lock(&running.in_flight).insert(entry.id.clone());
        let (consumer, mut acks, running) = (self.clone(), acks.clone(), running.clone());
        running.tracker.clone().spawn(async move {
            let entry = StreamEntry {
                id: entry.id,
                fields,
                attempt: 1,
            };
            consumer.handle(entry.clone(), &mut acks, &running).await;
            lock(&running.in_flight).remove(&entry.id);
            drop(slot);
        });
    }

    /// Tries the entry up to `max_attempts` times; acknowledges it on success, dead-letters it
    /// after the last failure. At shutdown a failed entry is left pending, for a consumer that
    /// stays to claim.
    async fn handle(
        &self,
        mut entry: StreamEntry,
        acks: &mut MultiplexedConnection,
        running: &Running,
    ) {
        let mut wait = MIN_RETRY_WAIT;
        loop {
            let message = Message {
                channel: self.stream.clone(),
                payload: entry.payload().unwrap_or_default().to_vec(),
                pattern: None,
                entry: Some(entry.clone()),
            };
            let error = match self.component.handle(&running.engine, &message).await {
                Ok(()) => return self.acknowledge(acks, &entry.id).await,
                Err(error) => error,
            };
            let component = self.component.id();
            let mut reason = String::new();
            log_failure(&error, component, "Redis stream handler failed", |text| {
                reason = text.to_owned();
                tracing::error!(
                    trigger = %self.trigger_id,
                    component = %component,
                    stream = %self.stream,
                    entry = %entry.id,
                    attempt = entry.attempt,
                    max_attempts = self.max_attempts,
                    "Redis stream handler failed: {text}"
                )
            });
            if entry.attempt >= self.max_attempts {
                return self.dead_letter(acks, &entry, &reason).await;
            }
            tokio::select! {
                _ = running.shutdown.cancelled() => {
                    tracing::warn!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %entry.id,
                        "shutting down before retrying: the entry stays pending for another consumer to claim"
                    );
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_RETRY_WAIT);
            entry.attempt += 1;
        }
    }

    async fn acknowledge(&self, acks: &mut MultiplexedConnection, id: &str) {
        if let Err(error) = acks.xack(&self.stream, &self.group, &[id]).await {
            tracing::warn!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                entry = %id,
                "could not acknowledge the entry; it will be handled again (cause: {error})"
            );
        }
    }

    /// Adds the entry, its error and attempt count to the dead-letter stream and acknowledges
    /// it, in one transaction: it is in one place or the other, never both or neither.
    async fn dead_letter(
        &self,
        acks: &mut MultiplexedConnection,
        entry: &StreamEntry,
        error: &str,
    ) {
        let mut fields: Vec<(&str, &[u8])> = entry
            .fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        let attempts = entry.attempt.to_string();
        fields.extend([
            ("error", error.as_bytes()),
            ("attempts", attempts.as_bytes()),
            ("source_stream", self.stream.as_bytes()),
            ("source_id", entry.id.as_bytes()),
        ]);
        let moved: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .xadd(&self.dead_letter, "*", &fields)
            .ignore()
            .xack(&self.stream, &self.group, &[&entry.id])
            .ignore()
            .query_async(acks)
            .await;
        match moved {
            Ok(()) => tracing::warn!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                entry = %entry.id,
                dead_letter = %self.dead_letter,
                "gave up after {} attempts; moved the entry to the dead-letter stream",
                entry.attempt
            ),
            Err(error) => tracing::warn!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                entry = %entry.id,
                "could not move the entry to the dead-letter stream; it will be handled again (cause: {error})"
            ),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `XREADGROUP`'s reply for one stream: `[[stream, [[id, [field, value, ...]], ...]]]`, or nil
/// when the block time passed with nothing new. A RESP3 reply is a map instead of the outer
/// array.
fn parse_read_reply(reply: redis::Value) -> anyhow::Result<Vec<RawEntry>> {
    use redis::Value;
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.remove(1)),
                other => bail!("unexpected stream in the reply: {other:?}"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => bail!("unexpected reply: {other:?}"),
    };
    let mut entries = Vec::new();
    for stream in streams {
        entries.extend(parse_entries(stream)?);
    }
    Ok(entries)
}

/// `XAUTOCLAIM`'s reply: `[next-cursor, [[id, [field, value, ...]], ...], [deleted-id, ...]]`.
fn parse_claim_reply(reply: redis::Value) -> anyhow::Result<(String, Vec<RawEntry>)> {
    use redis::Value;
    let Value::Array(parts) = reply else {
        bail!("unexpected reply: {reply:?}");
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(entries)) = (parts.next(), parts.next()) else {
        bail!("the reply lacks the cursor or the entries");
    };
    let cursor: String = redis::from_redis_value(cursor).context("the reply's cursor")?;
    Ok((cursor, parse_entries(entries)?))
}

/// `[[id, [field, value, ...]], ...]`; an entry deleted from the stream has nil fields.
fn parse_entries(entries: redis::Value) -> anyhow::Result<Vec<RawEntry>> {
    use redis::Value;
    let Value::Array(entries) = entries else {
        bail!("unexpected entries: {entries:?}");
    };
    entries
        .into_iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                bail!("unexpected entry: {entry:?}");
            };
            let mut parts = parts.into_iter();
            let id: String =
                redis::from_redis_value(parts.next().context("an entry without an id")?)
                    .context("an entry's id")?;
            let fields = match parts.next() {
                None | Some(Value::Nil) => None,
                Some(Value::Array(flat)) => Some(field_pairs(flat)?),
                Some(Value::Map(pairs)) => Some(
                    pairs
                        .into_iter()
                        .map(|(name, value)| {
                            Ok((
                                redis::from_redis_value(name)?,
                                redis::from_redis_value(value)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, redis::ParsingError>>()?,
                ),
                Some(other) => bail!("entry {id}: unexpected fields: {other:?}"),
            };
            Ok(RawEntry { id, fields })
        })
        .collect()
}

fn field_pairs(flat: Vec<redis::Value>) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    anyhow::ensure!(
        flat.len().is_multiple_of(2),
        "an odd number of field names and values"
    );
    let mut flat = flat.into_iter();
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        pairs.push((
            redis::from_redis_value(name).context("a field name")?,
            redis::from_redis_value(value).context("a field value")?,
        ));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_keeps_field_order_and_repeated_fields() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("orders"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![
                        bulk("b"),
                        bulk("2"),
                        bulk("a"),
                        bulk("1"),
                        bulk("b"),
                        bulk("3"),
                    ]),
                ]),
                Value::Array(vec![bulk("1-1"), Value::Nil]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(
            entries[0].fields.as_deref().unwrap(),
            [
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"1".to_vec()),
                ("b".to_owned(), b"3".to_vec())
            ]
        );
        assert!(entries[1].fields.is_none(), "a deleted entry has no fields");
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn a_claim_reply_gives_the_cursor_and_the_entries() {
        let reply = Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![Value::Array(vec![
                bulk("2-0"),
                Value::Array(vec![bulk("payload"), bulk("x")]),
            ])]),
            Value::Array(vec![]),
        ]);
        let (cursor, entries) = parse_claim_reply(reply).unwrap();
        assert_eq!(cursor, "5-0");
        assert_eq!(entries[0].id, "2-0");
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(parse_read_reply(Value::Int(3)).is_err());
        assert!(parse_claim_reply(Value::Array(vec![])).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("a")]),
        ])]);
        assert!(parse_entries(odd).is_err());
    }
}
