//! The Redis Streams trigger: where a stream entry is dispatched (the read loop here; handing
//! entries to handlers and retrying them in `handling.rs`; what it sends Redis in `commands.rs`).
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
//! dead-letter stream and acknowledged, both in one script, so that a failed `XADD` leaves it
//! pending instead of losing it. Attempts are counted in Redis, as the entry's delivery count
//! (each retry writes its attempt there), so they go on from where a dead host left them; an
//! entry delivered more than `max_attempts` times without being settled (its handler killed
//! its host each time) is dead-lettered without being run again. An entry whose fields cannot be given to a handler (a field
//! name that is not UTF-8) is dead-lettered at once, with the reason. On start and every half
//! `claim_idle`, `XAUTOCLAIM` takes over entries another consumer left unacknowledged longer than
//! `claim_idle` (a consumer that died); a live consumer resets the idle time of the entries it
//! holds every third of `claim_idle` (`XCLAIM ... JUSTID`), so however long a handler and its
//! retries take, no other consumer claims them while it lives. A lost connection is logged and re-established with
//! capped exponential backoff; entries whose acknowledgement was lost are read again from this
//! consumer's own pending list. At shutdown the consumer stops reading and lets what it read
//! finish and be acknowledged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::allowed_hosts::redact;
use crate::engine::Engine;
use crate::limits::Limits;
use crate::redis_address::{RawAddressSettings, render_address, validate_address_settings};
use crate::redis_component::{RedisComponent, StreamEntry};
use crate::telemetry::{ConnectionHealth, EventReporter, StreamGauges};
use crate::template::Template;
use crate::trigger::{
    BuildContext, RunTrigger, TriggerFuture, TriggerSpec, TriggerType, TypeComponents,
};
use crate::validation::{ManifestError, Validation};
use reply::{RawEntry, parse_claim_reply, parse_read_reply};

mod commands;
pub mod config;
mod handling;
mod reply;

pub use config::StreamConfig;

/// How long one `XREADGROUP` waits for new entries; shutdown is noticed between reads, never
/// in the middle of one (entries it returned would otherwise stay pending, unhandled).
const READ_BLOCK: Duration = Duration::from_millis(500);
/// How long a read blocks while handlers run: their ends wait at most this long to be sent.
const SHORT_BLOCK: Duration = Duration::from_millis(5);
/// How long a reply may take beyond the read's own block time before the connection counts
/// as lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Waits between attempts at a failing entry: 100 ms, doubling, at most 5 s.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// Entries per call for a component taking batches, unless its trigger sets `batch_size`.
const DEFAULT_BATCH_SIZE: usize = 100;
/// Claims are checked at least this far apart, however short `claim_idle` is.
const MIN_CLAIM_INTERVAL: Duration = Duration::from_millis(100);
/// How often, with metrics on, the group's pending count and lag are read (`XINFO GROUPS`, in
/// the round trip that reads entries).
const BACKLOG_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Entries per handler call: 1 unless the component takes batches.
    batch_size: usize,
    /// How long a batch that is not full waits for more entries.
    batch_wait: Duration,
    limits: Limits,
    reporter: EventReporter,
    /// Its connection, as `/readyz` and the metrics see it.
    health: Arc<ConnectionHealth>,
    /// The group's pending count and lag, read now and then while metrics are on.
    backlog: Option<StreamGauges>,
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

    /// Resolves every stream trigger's settings and picks each component's Redis world.
    fn build(
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self> {
        let BuildContext {
            deployment,
            variables,
            prepared,
            engine,
        } = context;
        let default_consumer = format!(
            "{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        );
        let mut components = TypeComponents::new();
        let mut consumers = Vec::new();
        for trigger in triggers {
            let config = trigger.config;
            let component = components.get(trigger.component, prepared, RedisComponent::new)?;
            let what = format!("Redis stream trigger `{}`", trigger.id);
            let address = render_address(variables, &config.address, &what)?;
            let render = |template: &Template, field: &str| {
                variables
                    .render(template)
                    .with_context(|| format!("{what}: rendering its {field}"))
            };
            let stream = render(&config.stream, "stream")?;
            let group = match &config.group {
                Some(group) => render(group, "group")?,
                None => deployment.to_string(),
            };
            let consumer = match &config.consumer {
                Some(consumer) => render(consumer, "consumer")?,
                None => default_consumer.clone(),
            };
            let dead_letter = match &config.dead_letter {
                Some(dead_letter) => render(dead_letter, "dead_letter")?,
                None => format!("{stream}.dead"),
            };
            if !component.takes_batches() && !config.batch_wait.is_zero() {
                bail!(
                    "Redis stream trigger `{}`: batch_wait is set, but component `{}` takes one \
                     entry at a time; leave batch_wait out, or make its handler take a \
                     `spin_trigger_sdk::redis::Batch`",
                    trigger.id,
                    trigger.component
                );
            }
            let batch_size = match (component.takes_batches(), config.batch_size) {
                (true, size) => size.unwrap_or(DEFAULT_BATCH_SIZE),
                (false, None | Some(1)) => 1,
                (false, Some(size)) => bail!(
                    "Redis stream trigger `{}`: batch_size = {size}, but component `{}` takes one \
                     entry at a time; leave batch_size out, or make its handler take a \
                     `spin_trigger_sdk::redis::Batch`",
                    trigger.id,
                    trigger.component
                ),
            };
            if dead_letter == stream {
                bail!(
                    "Redis stream trigger `{}`: the dead-letter stream is the stream itself (`{stream}`); name another",
                    trigger.id
                );
            }
            consumers.push(Arc::new(Consumer {
                trigger_id: trigger.id.to_owned(),
                component,
                max_in_flight: config.max_in_flight,
                max_attempts: config.max_attempts,
                claim_idle: config.claim_idle,
                batch_size,
                batch_wait: config.batch_wait,
                limits: engine.limits(trigger.limits),
                reporter: engine.reporter(Self::NAME, trigger.id, trigger.component),
                health: engine
                    .telemetry()
                    .connection(Self::NAME, trigger.id, &redact(&address)),
                backlog: engine
                    .telemetry()
                    .stream_gauges(trigger.id, &stream, &group),
                shown_address: redact(&address),
                address,
                stream,
                group,
                consumer,
                dead_letter,
            }));
        }
        Ok(StreamTrigger { consumers })
    }
}

impl RunTrigger for StreamTrigger {
    /// Serves every stream until `shutdown` is cancelled. Handlers run on `tracker`.
    fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> TriggerFuture<'_, ()> {
        Box::pin(async move {
            for consumer in &self.consumers {
                let consumer = consumer.clone();
                let running = Running {
                    engine: engine.clone(),
                    shutdown: shutdown.clone(),
                    tracker: tracker.clone(),
                };
                tracker.spawn(consumer.run(running));
            }
            shutdown.cancelled().await;
        })
    }
}

/// What a consumer's handler tasks need.
#[derive(Clone)]
struct Running {
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// How a handler task ended with its entry; each frees the entry's slot once the reading loop
/// has told Redis.
enum Done {
    /// Handled: acknowledge it.
    Handled(String),
    /// Failed `max_attempts` times, or unreadable: add it to the dead-letter stream and
    /// acknowledge it.
    Failed(DeadLetter),
    /// Shutdown came before a retry: leave it pending for a consumer that stays.
    Abandoned(String),
}

impl Done {
    fn id(&self) -> &str {
        match self {
            Done::Handled(id) | Done::Abandoned(id) => id,
            Done::Failed(dead) => &dead.id,
        }
    }
}

/// An entry on its way to the dead-letter stream: its fields as bytes, why, and after how many
/// attempts (0: it could not be handed to a handler at all).
struct DeadLetter {
    id: String,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    error: String,
    attempts: u32,
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

/// A consumer's reading loop's own state, kept across reconnections.
struct Reader {
    /// Entries handed to handler tasks whose end Redis has not been told yet.
    in_flight: HashSet<String>,
    /// Ends reported by handler tasks, not yet sent to Redis.
    finished: Vec<Done>,
    /// Handler tasks (each a batch of entries, or one entry) whose entries are not settled yet:
    /// each holds one of the `max_in_flight` slots until then.
    batches: usize,
    /// How many of those have reported their ends into `finished`.
    finished_batches: usize,
    /// Entries read for a batch that is not full yet, waiting up to `batch_wait` (since
    /// `filling_since`) for more.
    filling: Vec<RawEntry>,
    filling_since: Option<Instant>,
    done_sender: mpsc::UnboundedSender<Vec<Done>>,
    done: mpsc::UnboundedReceiver<Vec<Done>>,
    /// Handler tasks report here each attempt they are about to make again.
    retry_sender: mpsc::UnboundedSender<Vec<Attempt>>,
    retries: mpsc::UnboundedReceiver<Vec<Attempt>>,
    /// Attempts reported and not yet written to Redis as the entries' delivery counts.
    attempts_to_record: Vec<Attempt>,
}

/// An entry about to be tried again: its id and the attempt it is about to make.
type Attempt = (String, u32);

impl Reader {
    /// Takes every end reported so far, without waiting.
    fn collect_finished(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            self.take_done(done);
        }
        while let Ok(attempts) = self.retries.try_recv() {
            self.attempts_to_record.extend(attempts);
        }
    }

    /// Takes one handler task's ends.
    fn take_done(&mut self, done: Vec<Done>) {
        self.finished.extend(done);
        self.finished_batches += 1;
    }

    /// Slots that stay taken after the finished entries are settled.
    fn busy(&self) -> usize {
        self.batches - self.finished_batches
    }
}

/// Where one connection's reading stands.
struct ReadState {
    /// How often idle entries of dead consumers are claimed.
    claim_interval: Duration,
    next_claim: Instant,
    /// `Some(cursor)` while a claim scan is under way.
    claim_cursor: Option<String>,
    /// This consumer's own pending entries (a lost acknowledgement, or a restart under a fixed
    /// consumer name) are read first, once nothing of this consumer is in flight.
    own_pending: bool,
    /// Whether the last read filled every free slot: more entries are likely waiting.
    backlog: bool,
    /// When the idle time of the entries this consumer holds is next reset.
    next_refresh: Instant,
    /// When the group's pending count and lag are next read, while metrics are on.
    next_backlog: Instant,
}

impl ReadState {
    fn new(claim_idle: Duration) -> Self {
        ReadState {
            claim_interval: (claim_idle / 2).max(MIN_CLAIM_INTERVAL),
            next_claim: Instant::now(),
            claim_cursor: None,
            own_pending: true,
            backlog: false,
            next_backlog: Instant::now(),
            next_refresh: Instant::now() + refresh_interval(claim_idle),
        }
    }
}

/// How often a consumer resets the idle time of the entries it holds: three times per
/// `claim_idle`, so one slow or lost round trip still leaves two before another consumer may
/// claim them.
fn refresh_interval(claim_idle: Duration) -> Duration {
    (claim_idle / 3).max(Duration::from_millis(10))
}

impl Consumer {
    /// Reads and dispatches until shutdown, reconnecting whenever the connection is lost; then
    /// lets what it read finish and settles it with Redis.
    async fn run(self: Arc<Self>, running: Running) {
        let (done_sender, done) = mpsc::unbounded_channel();
        let (retry_sender, retries) = mpsc::unbounded_channel();
        let mut reader = Reader {
            in_flight: HashSet::new(),
            finished: Vec::new(),
            batches: 0,
            finished_batches: 0,
            filling: Vec::new(),
            filling_since: None,
            done_sender,
            done,
            retry_sender,
            retries,
            attempts_to_record: Vec::new(),
        };
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut joined = false;
            let Err(error) = self
                .serve(&running, &mut reader, &mut backoff, &mut joined)
                .await
            else {
                return;
            };
            self.health.lost();
            let what = if joined {
                "lost the connection to the Redis server; reconnecting"
            } else {
                "cannot read the stream; retrying"
            };
            tracing::warn!(
                trigger = %self.trigger_id,
                address = %self.shown_address,
                stream = %self.stream,
                "{what} in {backoff:?} (cause: {})",
                crate::errors::one_line(&error)
            );
            // At shutdown, only entries read and not yet settled are worth reconnecting for.
            let nothing_to_settle = reader.in_flight.is_empty();
            tokio::select! {
                _ = running.shutdown.cancelled(), if nothing_to_settle => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: joins the group (`joined` says it did), then loops: settle the entries handlers
    /// finished and read more, in one round trip; its own pending entries first, then new
    /// ones, with a claim scan now and then. Ends `Ok` at shutdown once nothing is in flight,
    /// `Err` on a Redis error.
    async fn serve(
        self: &Arc<Self>,
        running: &Running,
        reader: &mut Reader,
        backoff: &mut Duration,
        joined: &mut bool,
    ) -> anyhow::Result<()> {
        let mut connection = self.connect(running).await?;
        self.health.connected();
        *joined = true;
        *backoff = MIN_BACKOFF;
        let mut state = ReadState::new(self.claim_idle);
        let batch = self.max_in_flight.div_ceil(2);
        // Entries gathering for a batch on the last connection are this consumer's pending
        // ones: they come back with its own pending entries.
        reader.filling.clear();
        reader.filling_since = None;
        loop {
            reader.collect_finished();
            let stopping = running.shutdown.is_cancelled();
            if stopping {
                // What was read is handled, full batch or not.
                self.dispatch_filled(Vec::new(), true, reader, running);
            }
            let busy = reader.busy();
            let free = self.max_in_flight - busy;
            if stopping && reader.in_flight.is_empty() {
                return Ok(());
            }
            // Reading waits while this consumer's own pending entries are still being handled,
            // and stops at shutdown.
            let waiting_for_own = state.own_pending && busy > 0;
            let reading = !(stopping || waiting_for_own);
            // Wait for a handler to finish when there is nothing to do, and, while entries are
            // waiting in the stream, until half the slots are free: one round trip then
            // settles and reads several.
            let wait = if reading {
                free == 0 || (state.backlog && free < batch && reader.filling.is_empty())
            } else {
                reader.finished.is_empty()
            };
            let holding = !reader.in_flight.is_empty() || !reader.filling.is_empty();
            let refresh = holding && Instant::now() >= state.next_refresh;
            // A retry's attempt is written at once, so a host that dies during it leaves the
            // count for the next.
            let recording = !reader.attempts_to_record.is_empty();
            if wait && !refresh && !recording {
                let next_refresh = tokio::time::Instant::from_std(state.next_refresh);
                tokio::select! {
                    Some(done) = reader.done.recv() => reader.take_done(done),
                    Some(attempts) = reader.retries.recv() => {
                        reader.attempts_to_record.extend(attempts);
                    }
                    _ = running.shutdown.cancelled(), if !stopping => {}
                    _ = tokio::time::sleep_until(next_refresh), if holding => {}
                }
                continue;
            }
            // A round trip made only to reset idle times reads nothing.
            let reading = reading && !wait;

            // Settle what finished and read (or claim) more, in one round trip.
            let finished = std::mem::take(&mut reader.finished);
            let finished_batches = std::mem::take(&mut reader.finished_batches);
            let mut pipe = redis::pipe();
            // Each command's reply is looked at on its own: one failed settle is that entry's
            // problem, not the connection's.
            pipe.ignore_errors();
            let settling = self.settle(&mut pipe, &finished);
            if refresh {
                state.next_refresh = Instant::now() + refresh_interval(self.claim_idle);
                self.refresh_idle(&mut pipe, reader);
            }
            let attempts = std::mem::take(&mut reader.attempts_to_record);
            self.record_attempts(&mut pipe, &attempts);
            let wanted = free * self.batch_size - reader.filling.len();
            // A batch gathering blocks the read only until its `batch_wait` is up.
            let block = reader
                .filling_since
                .map(|since| self.batch_wait.saturating_sub(since.elapsed()));
            let read = reading.then(|| self.next_read(&mut state, wanted, busy, block));
            let claiming = reading && state.claim_cursor.is_some();
            // Claimed entries and this consumer's own pending ones go out at once: they have
            // waited already, and its own pending ones are read again until none is held.
            let waited = claiming || (reading && state.own_pending);
            let backlog = self.backlog.as_ref().filter(|_| {
                let due = Instant::now() >= state.next_backlog;
                if due {
                    state.next_backlog = Instant::now() + BACKLOG_INTERVAL;
                }
                due
            });
            if backlog.is_some() {
                pipe.cmd("XINFO").arg("GROUPS").arg(&self.stream);
            }
            if let Some(read) = read {
                pipe.add_command(read);
            }
            // An empty pipeline (only abandoned entries at shutdown) has nothing to send.
            let replies: Vec<redis::RedisResult<redis::Value>> = if pipe.is_empty() {
                Vec::new()
            } else {
                match pipe.query_async(&mut connection).await {
                    Ok(replies) => replies,
                    Err(error) => {
                        // Settled again on the next connection; acknowledging twice is harmless.
                        reader.finished = finished;
                        reader.finished_batches = finished_batches;
                        reader.attempts_to_record = attempts;
                        return Err(error)
                            .with_context(|| format!("reading stream `{}`", self.stream));
                    }
                }
            };
            let mut replies = replies.into_iter();
            self.log_settled(&finished, replies.by_ref().take(settling));
            for done in &finished {
                reader.in_flight.remove(done.id());
            }
            reader.batches -= finished_batches;
            if let Some(gauges) = backlog {
                self.note_backlog(gauges, replies.next().and_then(Result::ok));
            }
            let Some(reply) = replies.next().filter(|_| reading) else {
                continue;
            };
            let reply = reply.with_context(|| format!("reading stream `{}`", self.stream))?;
            let mut entries = self.entries_of(reply, claiming, &mut state, reader)?;
            state.backlog = entries.len() == wanted;
            if waited {
                let held = reader.in_flight.len() + reader.filling.len();
                self.note_deliveries(&mut connection, &mut entries, held)
                    .await?;
            }
            self.reporter.received(entries.len() as u64);
            self.dispatch_filled(entries, waited, reader, running);
        }
    }

    /// Connects to the server and joins the group.
    async fn connect(&self, running: &Running) -> anyhow::Result<MultiplexedConnection> {
        let client = running.engine.redis_tls().client(&self.address)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(READ_BLOCK + RESPONSE_TIMEOUT));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connecting")?;
        self.join_group(&mut connection).await?;
        tracing::info!(
            trigger = %self.trigger_id,
            address = %self.shown_address,
            stream = %self.stream,
            group = %self.group,
            consumer = %self.consumer,
            "reading stream"
        );
        Ok(connection)
    }

    /// What to read into `free` slots: the next page of a claim scan under way, a new scan
    /// when one is due, this consumer's own pending entries, else new entries.
    fn next_read(
        &self,
        state: &mut ReadState,
        free: usize,
        busy: usize,
        gathering: Option<Duration>,
    ) -> redis::Cmd {
        if let Some(cursor) = state.claim_cursor.as_deref() {
            return self.claim_command(cursor, free);
        }
        if Instant::now() >= state.next_claim {
            state.next_claim = Instant::now() + state.claim_interval;
            state.claim_cursor = Some("0-0".to_owned());
            return self.claim_command("0-0", free);
        }
        if state.own_pending {
            return self.read_command("0", free, None);
        }
        // Block only when no handler runs: a finished one must not wait long to be settled.
        let block = if busy == 0 { READ_BLOCK } else { SHORT_BLOCK };
        // `BLOCK 0` would wait forever: at least a millisecond.
        let block = gathering.map_or(block, |left| block.min(left).max(Duration::from_millis(1)));
        self.read_command(">", free, Some(block))
    }

    /// The entries a read or claim reply holds, to dispatch; advances the claim scan and notes
    /// when this consumer's own pending entries are all read.
    fn entries_of(
        &self,
        reply: redis::Value,
        claiming: bool,
        state: &mut ReadState,
        reader: &Reader,
    ) -> anyhow::Result<Vec<RawEntry>> {
        if claiming {
            let (next, claimed) = parse_claim_reply(reply)
                .with_context(|| format!("claiming idle entries of stream `{}`", self.stream))?;
            state.claim_cursor = (next != "0-0").then_some(next);
            self.log_claimed(&claimed);
            return Ok(claimed
                .into_iter()
                .filter(|entry| {
                    !reader.in_flight.contains(&entry.id)
                        && !reader
                            .filling
                            .iter()
                            .any(|gathering| gathering.id == entry.id)
                })
                .collect());
        }
        let entries =
            parse_read_reply(reply).with_context(|| format!("reading stream `{}`", self.stream))?;
        if state.own_pending {
            state.own_pending = !entries.is_empty();
        }
        Ok(entries)
    }
}
