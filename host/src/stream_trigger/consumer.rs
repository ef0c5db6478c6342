//! A consumer's read loop: where a stream entry is read, claimed and settled. Each turn settles
//! what handlers finished and reads (or claims) more in one round trip; entries go to
//! `handling.rs`; what to send Redis, and what its replies hold, come from `commands.rs`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection_state::{ConnectionState, refresh_interval};
use super::handling::Settlement;
use super::held_entries::{Attempt, HeldEntries};
use super::{MAX_BACKOFF, MIN_BACKOFF};
use crate::engine::Engine;
use crate::limits::Limits;
use crate::rate_limit::{RateLimit, Take};
use crate::redis_component::RedisComponent;
use crate::telemetry::{ConnectionHealth, EventReporter, StreamGauges};

/// One `[[trigger.redis-stream]]`, resolved: this process's consumer in a group.
pub(super) struct Consumer {
    pub(super) trigger_id: String,
    pub(super) component: Arc<RedisComponent>,
    pub(super) address: String,
    /// The address as logs show it: any password redacted.
    pub(super) shown_address: String,
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) dead_letter: String,
    /// The sorted set where entries wait to be tried again after a delay their handler asked
    /// for: `<stream>.delayed`.
    pub(super) delayed: String,
    pub(super) max_in_flight: usize,
    pub(super) max_attempts: u32,
    /// The waits between attempts at a failed entry: `retry_backoff` doubling to
    /// `max_retry_backoff`.
    pub(super) retry_backoff: crate::retry_backoff::RetryBackoff,
    pub(super) claim_idle: Duration,
    /// Entries per handler call: 1 unless the component takes batches.
    pub(super) batch_size: usize,
    /// How long a batch that is not full waits for more entries.
    pub(super) batch_wait: Duration,
    pub(super) limits: Limits,
    pub(super) reporter: EventReporter,
    /// Its connection, as `/readyz` and the metrics see it.
    pub(super) health: Arc<ConnectionHealth>,
    /// The group's pending count and lag, read now and then while metrics are on.
    pub(super) backlog: Option<StreamGauges>,
    /// `max_per_second`: entries read per second, at most.
    pub(super) rate: Option<Arc<RateLimit>>,
}

/// What a consumer's handler tasks need: the engine, the shutdown signal, and the tracker the
/// runtime waits on.
#[derive(Clone)]
pub(super) struct HandlerTasks {
    pub(super) engine: Arc<Engine>,
    pub(super) shutdown: CancellationToken,
    pub(super) tracker: TaskTracker,
}

/// What one turn's pipeline holds, to read its replies by.
struct Sent {
    /// The settled entries, which lead the pipeline (`settling` replies of theirs).
    finished: Vec<Settlement>,
    finished_batches: usize,
    settling: usize,
    /// The attempts recorded (no replies), and the retries waiting for them.
    attempts: Vec<Attempt>,
    retries_waiting: Vec<oneshot::Sender<()>>,
    /// Whether an `XINFO GROUPS` follows.
    backlog: bool,
    /// Whether a move of the delayed set's due entries follows.
    moving: bool,
    /// Whether the read is a claim scan's page.
    claiming: bool,
    /// Whether the entries read have waited already, so go out at once.
    waited: bool,
    /// How many entries the read asked for.
    wanted: usize,
}

/// How a connection ended: the error, and whether the consumer had joined its group on it (a
/// connection that worked starts the backoff again from its shortest wait).
struct Lost {
    error: anyhow::Error,
    joined: bool,
}

/// What one turn of the loop does besides settling: whether it reads, resets idle times, and
/// how many slots are free and taken.
struct Turn {
    reading: bool,
    refresh: bool,
    free: usize,
    busy: usize,
    /// With `max_per_second`: the most entries this turn may read.
    budget: Option<usize>,
}

impl Consumer {
    /// Reads and dispatches until shutdown, reconnecting whenever the connection is lost; then
    /// lets what it read finish and settles it with Redis.
    pub(super) async fn run(self: Arc<Self>, tasks: HandlerTasks) {
        let mut held = HeldEntries::new();
        let mut backoff = MIN_BACKOFF;
        loop {
            let Err(lost) = self.serve(&tasks, &mut held).await else {
                return;
            };
            self.health.lost();
            if lost.joined {
                backoff = MIN_BACKOFF;
            }
            let what = if lost.joined {
                "lost the connection to the Redis server; reconnecting"
            } else {
                "cannot read the stream; retrying"
            };
            tracing::warn!(
                trigger = %self.trigger_id,
                address = %self.shown_address,
                stream = %self.stream,
                "{what} in {backoff:?} (cause: {})",
                crate::error_text::one_line(&lost.error)
            );
            // At shutdown, only entries read and not yet settled are worth reconnecting for.
            let nothing_to_settle = held.in_flight.is_empty();
            tokio::select! {
                _ = tasks.shutdown.cancelled(), if nothing_to_settle => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: joins the group, then turns until shutdown with nothing in
    /// flight (`Ok`) or a Redis error (`Err`).
    async fn serve(
        self: &Arc<Self>,
        tasks: &HandlerTasks,
        held: &mut HeldEntries,
    ) -> Result<(), Lost> {
        let mut connection = self.connect(tasks).await.map_err(|error| Lost {
            error,
            joined: false,
        })?;
        self.health.connected();
        let mut state = ConnectionState::new(self.claim_idle);
        // Entries gathering for a batch on the last connection are this consumer's pending
        // ones: they come back with its own pending entries, delivered once more, which is not
        // an attempt: their counts are kept to be put back.
        for entry in held.filling.drain(..) {
            held.unattempted.insert(entry.id, entry.deliveries);
        }
        held.filling_since = None;
        loop {
            match self.turn(&mut connection, &mut state, held, tasks).await {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => return Ok(()),
                Err(error) => {
                    return Err(Lost {
                        error,
                        joined: true,
                    });
                }
            }
        }
    }

    /// One turn: settle the entries handlers finished and read more, in one round trip; its own
    /// pending entries first, then new ones, with a claim scan now and then. Waits instead when
    /// there is nothing to do. `Break` at shutdown once nothing is in flight.
    async fn turn(
        self: &Arc<Self>,
        connection: &mut MultiplexedConnection,
        state: &mut ConnectionState,
        held: &mut HeldEntries,
        tasks: &HandlerTasks,
    ) -> anyhow::Result<ControlFlow<()>> {
        held.collect_finished();
        let stopping = tasks.shutdown.is_cancelled();
        // What was read is handled at shutdown, full batch or not; otherwise a batch goes once
        // its `batch_wait` is up, even while nothing more is read.
        self.dispatch_filled(Vec::new(), stopping, held, tasks);
        let busy = held.busy();
        let free = self.max_in_flight - busy;
        if stopping && held.in_flight.is_empty() {
            return Ok(ControlFlow::Break(()));
        }
        // Reading waits while this consumer's own pending entries are still being handled,
        // and stops at shutdown.
        let waiting_for_own = state.own_pending && busy > 0;
        let reading = !(stopping || waiting_for_own);
        // Wait for a handler to finish when there is nothing to do, and, while entries are
        // waiting in the stream, until half the slots are free: one round trip then settles and
        // reads several.
        let wait = if reading {
            free == 0
                || (state.backlog
                    && free < self.max_in_flight.div_ceil(2)
                    && held.filling.is_empty())
        } else {
            held.finished.is_empty()
        };
        let holding = !held.in_flight.is_empty() || !held.filling.is_empty();
        let refresh = holding && Instant::now() >= state.next_refresh;
        // A retry's attempt is written at once, so a host that dies during it leaves the count
        // for the next.
        let recording = !held.attempts_to_record.is_empty();
        if wait && !refresh && !recording {
            let next_refresh = tokio::time::Instant::from_std(state.next_refresh);
            tokio::select! {
                Some(done) = held.done.recv() => held.take_done(done),
                Some(retry) = held.retries.recv() => held.take_retry(retry),
                // Once stopping, the cancelled token is always ready: waiting on it would spin.
                _ = tasks.shutdown.cancelled(), if !stopping => {}
                _ = tokio::time::sleep_until(next_refresh), if holding => {}
            }
            return Ok(ControlFlow::Continue(()));
        }
        // With `max_per_second`, a read takes at most what the limit grants now; with nothing
        // granted, the turn waits for it (settling what finishes meanwhile).
        let mut budget = None;
        let mut wanted = (free * self.batch_size).saturating_sub(held.filling.len());
        // A read that will likely block on a quiet stream takes one token, not a burst's worth:
        // tokens held through the block would add to the bucket's refill.
        if self.rate.is_some() && busy == 0 && !state.backlog && !state.own_pending {
            wanted = wanted.min(1);
        }
        if let Some(rate) = self
            .rate
            .as_ref()
            .filter(|_| reading && !wait && wanted > 0)
        {
            // A shared limit asks its server, which may be slow or away: shutdown does not wait.
            let take = tokio::select! {
                take = rate.take_up_to(wanted) => take,
                _ = tasks.shutdown.cancelled() => {
                    return Ok(ControlFlow::Continue(()));
                }
            };
            match take {
                Take::Granted(granted) => budget = Some(granted),
                // Finished entries are settled, and idle times reset, while the limit holds
                // reading back: a wait of up to a second per token must not leave them
                // unacknowledged long enough for another consumer to claim them.
                Take::Wait(pause) if !refresh && !recording && held.finished.is_empty() => {
                    let pause = self.capped_pause(pause, state, held, holding);
                    tokio::select! {
                        Some(done) = held.done.recv() => held.take_done(done),
                        Some(retry) = held.retries.recv() => held.take_retry(retry),
                        _ = tasks.shutdown.cancelled() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                    return Ok(ControlFlow::Continue(()));
                }
                Take::Wait(_) => budget = Some(0),
            }
        }
        // A round trip made only to reset idle times reads nothing.
        let turn = Turn {
            reading: reading && !wait && budget != Some(0),
            refresh,
            free,
            busy,
            budget,
        };
        self.round_trip(connection, state, held, tasks, turn)
            .await?;
        Ok(ControlFlow::Continue(()))
    }

    /// How long a turn held back by the rate limit sleeps: until a token comes, but no later
    /// than the next reset of idle times or the end of a gathering batch's `batch_wait`.
    fn capped_pause(
        &self,
        pause: Duration,
        state: &ConnectionState,
        held: &HeldEntries,
        holding: bool,
    ) -> Duration {
        let now = Instant::now();
        let mut pause = pause;
        if holding {
            pause = pause.min(state.next_refresh.saturating_duration_since(now));
        }
        if let Some(since) = held.filling_since {
            pause = pause.min(self.batch_wait.saturating_sub(since.elapsed()));
        }
        pause
    }

    /// Settles what finished, records attempts, resets idle times when due, reads the group's
    /// backlog when due, and reads (or claims) more: one pipeline. A failed round trip leaves
    /// what it was to settle for the next connection (acknowledging twice is harmless).
    async fn round_trip(
        self: &Arc<Self>,
        connection: &mut MultiplexedConnection,
        state: &mut ConnectionState,
        held: &mut HeldEntries,
        tasks: &HandlerTasks,
        turn: Turn,
    ) -> anyhow::Result<()> {
        let (pipe, sent) = self.pipeline(state, held, &turn);
        // An empty pipeline (only abandoned entries at shutdown) has nothing to send.
        let replies: Vec<redis::RedisResult<redis::Value>> = if pipe.is_empty() {
            Vec::new()
        } else {
            match pipe.query_async(connection).await {
                Ok(replies) => replies,
                Err(error) => {
                    held.finished = sent.finished;
                    held.finished_batches = sent.finished_batches;
                    held.attempts_to_record = sent.attempts;
                    held.retries_waiting = sent.retries_waiting;
                    return Err(error).with_context(|| format!("reading stream `{}`", self.stream));
                }
            }
        };
        // Their attempts are in Redis now: the retries may run.
        for recorded in sent.retries_waiting {
            let _ = recorded.send(());
        }
        let mut replies = replies.into_iter();
        self.log_settled(&sent.finished, replies.by_ref().take(sent.settling));
        for done in &sent.finished {
            held.in_flight.remove(done.id());
        }
        held.batches -= sent.finished_batches;
        if sent.moving {
            self.log_moved(replies.next());
        }
        if let Some(gauges) = self.backlog.as_ref().filter(|_| sent.backlog) {
            let (groups, pending) = (replies.next(), replies.next());
            self.note_backlog(
                gauges,
                groups.and_then(Result::ok),
                pending.and_then(Result::ok),
            );
        }
        let Some(reply) = replies.next().filter(|_| turn.reading) else {
            return Ok(());
        };
        let reply = reply.with_context(|| format!("reading stream `{}`", self.stream))?;
        let mut entries = self.entries_of(reply, sent.claiming, state, held)?;
        if let (Some(rate), Some(_)) = (&self.rate, turn.budget) {
            rate.give_back(sent.wanted.saturating_sub(entries.len()))
                .await;
        }
        state.backlog = entries.len() == sent.wanted;
        if sent.waited {
            self.note_deliveries(connection, &mut entries).await?;
            held.restore_unattempted(&mut entries);
        }
        let carried = super::delayed::carry_attempts(&mut entries, &self.group, self.max_attempts);
        held.attempts_to_record.extend(carried);
        if !state.own_pending {
            // Those not read again by now went to another consumer.
            held.unattempted.clear();
        }
        self.reporter.received(entries.len() as u64);
        self.dispatch_filled(entries, sent.waited, held, tasks);
        Ok(())
    }

    /// One turn's pipeline, and what it holds, to read the replies by. Takes the finished
    /// entries and the attempts to record out of `held`.
    fn pipeline(
        &self,
        state: &mut ConnectionState,
        held: &mut HeldEntries,
        turn: &Turn,
    ) -> (redis::Pipeline, Sent) {
        let finished = std::mem::take(&mut held.finished);
        let finished_batches = std::mem::take(&mut held.finished_batches);
        let attempts = std::mem::take(&mut held.attempts_to_record);
        let retries_waiting = std::mem::take(&mut held.retries_waiting);
        let mut pipe = redis::pipe();
        // Each command's reply is looked at on its own: one failed settle is that entry's
        // problem, not the connection's.
        pipe.ignore_errors();
        let settling = self.settle(&mut pipe, &finished);
        if turn.refresh {
            state.next_refresh = Instant::now() + refresh_interval(self.claim_idle);
            self.refresh_idle(&mut pipe, held);
        }
        self.record_attempts(&mut pipe, &attempts);
        // Due entries of the delayed set go back to the stream before the read, which may
        // take them at once.
        let moving = state.delayed_due();
        if moving {
            self.move_due_command(&mut pipe);
        }
        let wanted = turn.free * self.batch_size - held.filling.len();
        let wanted = turn.budget.map_or(wanted, |budget| wanted.min(budget));
        // A batch gathering blocks the read only until its `batch_wait` is up.
        let block = held
            .filling_since
            .map(|since| self.batch_wait.saturating_sub(since.elapsed()));
        let read = turn
            .reading
            .then(|| self.next_read(state, wanted, turn.busy, block));
        let claiming = turn.reading && state.claim_cursor.is_some();
        let backlog = self.backlog.is_some() && state.backlog_due();
        if backlog {
            pipe.cmd("XINFO").arg("GROUPS").arg(&self.stream);
            pipe.cmd("XPENDING").arg(&self.stream).arg(&self.group);
        }
        if let Some(read) = read {
            pipe.add_command(read);
        }
        let sent = Sent {
            finished,
            finished_batches,
            attempts,
            retries_waiting,
            settling,
            backlog,
            moving,
            claiming,
            // Claimed entries and this consumer's own pending ones go out at once: they have
            // waited already, and its own pending ones are read again until none is held.
            waited: claiming || (turn.reading && state.own_pending),
            wanted,
        };
        (pipe, sent)
    }
}
