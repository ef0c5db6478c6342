//! What a stream consumer says to Redis: connecting and joining the group, what to read or
//! claim next and the entries a reply holds, settling
//! (acknowledging, dead-lettering), resetting idle times and recording attempts, and reading
//! what Redis answers about its group.

use std::time::{Duration, Instant};

use anyhow::Context;
use redis::AsyncTypedCommands;
use redis::aio::MultiplexedConnection;

use super::connection_state::ConnectionState;
use super::consumer::{Consumer, HandlerTasks};
use super::handling::Settlement;
use super::held_entries::{Attempt, HeldEntries};
use super::reply::{RawEntry, parse_claim_reply, parse_delivery_counts, parse_read_reply};
use super::{CONNECT_TIMEOUT, READ_BLOCK, RESPONSE_TIMEOUT, SHORT_BLOCK};
use crate::telemetry::StreamGauges;

/// Adds an entry to the dead-letter stream (`KEYS[2]`) and acknowledges it in the stream
/// (`KEYS[1]`, group `ARGV[1]`, id `ARGV[2]`, fields from `ARGV[3]`). A script stops at the first
/// failing call: when the `XADD` fails (a dead-letter key of another type, a server out of
/// memory) the entry is not acknowledged and stays pending, never lost from both streams.
const DEAD_LETTER_SCRIPT: &str = "redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n\
                                  return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])";

impl Consumer {
    /// Creates the group (and the stream) unless it exists; a new group reads the stream from
    /// its first entry, so entries added before any host started are handled too.
    pub(super) async fn join_group(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> anyhow::Result<()> {
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
    pub(super) fn read_command(
        &self,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> redis::Cmd {
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
        command
    }

    /// `XAUTOCLAIM`: up to `count` entries idle longer than `claim_idle`, from `cursor`.
    pub(super) fn claim_command(&self, cursor: &str, count: usize) -> redis::Cmd {
        let mut command = redis::cmd("XAUTOCLAIM");
        command
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(count);
        command
    }

    /// Tells Redis how entries ended: one `XACK` for those handled; for each that failed its
    /// last attempt (or could not be read), [`DEAD_LETTER_SCRIPT`] adding it (its fields, the
    /// error, the attempt count, where it came from) to the dead-letter stream and
    /// acknowledging it, so that it is in one place or the other, never both or neither.
    /// Returns how many replies these commands have, in the order [`Self::log_settled`] reads
    /// them.
    pub(super) fn settle(&self, pipe: &mut redis::Pipeline, finished: &[Settlement]) -> usize {
        let mut replies = 0;
        let handled: Vec<&str> = finished
            .iter()
            .filter_map(|done| match done {
                Settlement::Handled(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if !handled.is_empty() {
            pipe.xack(&self.stream, &self.group, &handled);
            replies += 1;
        }
        for done in finished {
            let dead = match done {
                Settlement::Failed(dead) => dead,
                Settlement::Delayed(delayed) => {
                    self.delay_command(pipe, delayed);
                    replies += 1;
                    continue;
                }
                Settlement::Handled(_) | Settlement::Abandoned(_) => continue,
            };
            let attempts = dead.attempts.to_string();
            let command = pipe
                .cmd("EVAL")
                .arg(DEAD_LETTER_SCRIPT)
                .arg(2)
                .arg(&self.stream)
                .arg(&self.dead_letter)
                .arg(&self.group)
                .arg(&dead.id);
            for (name, value) in &dead.fields {
                command.arg(name).arg(value);
            }
            command
                .arg("error")
                .arg(&dead.error)
                .arg("attempts")
                .arg(&attempts)
                .arg("source_stream")
                .arg(&self.stream)
                .arg("source_id")
                .arg(&dead.id);
            replies += 1;
        }
        replies
    }

    /// Logs how the entries ended, with the replies to [`Self::settle`]'s commands: a settle
    /// Redis refused is reported, and the entry stays pending (read again by this consumer
    /// after a reconnection, or claimed by another) instead of holding the loop.
    pub(super) fn log_settled(
        &self,
        finished: &[Settlement],
        mut replies: impl Iterator<Item = redis::RedisResult<redis::Value>>,
    ) {
        let handled = finished
            .iter()
            .filter(|done| matches!(done, Settlement::Handled(_)))
            .count();
        if handled > 0
            && let Some(Err(error)) = replies.next()
        {
            tracing::error!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                entries = handled,
                "could not acknowledge handled entries; they stay pending and will be handled again: {error}"
            );
        }
        for done in finished {
            match done {
                Settlement::Handled(_) => {}
                Settlement::Failed(dead) => match replies.next() {
                    Some(Err(error)) => {
                        tracing::error!(
                            trigger = %self.trigger_id,
                            stream = %self.stream,
                            entry = %dead.id,
                            dead_letter = %self.dead_letter,
                            "could not move the entry to the dead-letter stream, so it stays pending, unacknowledged: {error} (entry's error: {})",
                            dead.error
                        );
                    }
                    _ if dead.attempts == 0 => tracing::warn!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %dead.id,
                        dead_letter = %self.dead_letter,
                        "moved an entry no handler can be given to the dead-letter stream: {}",
                        dead.error
                    ),
                    _ => tracing::warn!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %dead.id,
                        dead_letter = %self.dead_letter,
                        "gave up after {} attempts; moved the entry to the dead-letter stream: {}",
                        dead.attempts,
                        dead.error
                    ),
                },
                Settlement::Delayed(delayed) => match replies.next() {
                    Some(Err(error)) => tracing::error!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %delayed.id,
                        delayed = %self.delayed,
                        "could not add the entry to the delayed set, so it stays pending, unacknowledged: {error}"
                    ),
                    Some(Ok(redis::Value::Int(0))) => tracing::warn!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %delayed.id,
                        "the handler asked to retry the entry later, but another consumer has \
                         claimed it since (this one was away longer than claim_idle): that one \
                         decides what becomes of it"
                    ),
                    _ => tracing::info!(
                        trigger = %self.trigger_id,
                        stream = %self.stream,
                        entry = %delayed.id,
                        attempts = delayed.attempts,
                        "the handler asked to retry the entry after {:?}; it waits in `{}`",
                        delayed.delay,
                        self.delayed
                    ),
                },
                Settlement::Abandoned(id) => tracing::warn!(
                    trigger = %self.trigger_id,
                    stream = %self.stream,
                    entry = %id,
                    "shut down before retrying: the entry stays pending for another consumer to claim"
                ),
            }
        }
    }

    /// `XCLAIM ... JUSTID` of every entry this consumer holds, to itself, with no minimum idle
    /// time: their idle time starts again (their delivery count does not change), so no other
    /// consumer claims an entry this one is still handling, retrying or gathering for a batch.
    pub(super) fn refresh_idle(&self, pipe: &mut redis::Pipeline, held: &HeldEntries) {
        let command = pipe
            .cmd("XCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0);
        for id in &held.in_flight {
            command.arg(id);
        }
        for entry in &held.filling {
            command.arg(&entry.id);
        }
        command.arg("JUSTID").ignore();
    }

    /// `XCLAIM ... RETRYCOUNT <attempt> JUSTID` of each entry about to be tried again: its
    /// delivery count becomes the attempt, so a consumer that claims it after this host died
    /// goes on counting from there, and `max_attempts` holds across hosts.
    pub(super) fn record_attempts(&self, pipe: &mut redis::Pipeline, attempts: &[Attempt]) {
        for (id, attempt) in attempts {
            pipe.cmd("XCLAIM")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(id)
                .arg("RETRYCOUNT")
                .arg(attempt)
                .arg("JUSTID")
                .ignore();
        }
    }

    /// Sets each entry's delivery count from the group's pending list: for entries delivered
    /// before (read again from this consumer's pending list, or claimed), which Redis counted
    /// once more on this delivery. One `XPENDING <id> <id> 1` per entry, in one pipeline: a
    /// range over them all could be filled by other entries this consumer has pending, and
    /// leave some without their count.
    pub(super) async fn note_deliveries(
        &self,
        connection: &mut MultiplexedConnection,
        entries: &mut [RawEntry],
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for entry in entries.iter() {
            pipe.cmd("XPENDING")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1);
        }
        let replies: Vec<redis::Value> = pipe
            .query_async(connection)
            .await
            .with_context(|| format!("reading delivery counts of stream `{}`", self.stream))?;
        for (entry, reply) in entries.iter_mut().zip(replies) {
            let counts = parse_delivery_counts(reply)
                .with_context(|| format!("reading delivery counts of stream `{}`", self.stream))?;
            if let Some(&count) = counts.get(&entry.id) {
                entry.deliveries = count.max(1);
            }
        }
        Ok(())
    }

    /// Sets the backlog gauges from an `XINFO GROUPS` reply. A reply that cannot be read leaves
    /// them as they were: a metric is not worth losing the connection over.
    /// Sets the backlog gauges from `XINFO GROUPS` (pending, lag) and `XPENDING`'s summary,
    /// whose smallest id dates the oldest pending entry.
    pub(super) fn note_backlog(
        &self,
        gauges: &StreamGauges,
        groups: Option<redis::Value>,
        pending: Option<redis::Value>,
    ) {
        if let Some(summary) = pending.and_then(|reply| {
            redis::from_redis_value::<(u64, Option<String>, redis::Value, redis::Value)>(reply).ok()
        }) {
            let added_ms = summary
                .1
                .and_then(|id| id.split('-').next()?.parse::<u64>().ok());
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let age = added_ms.map_or(0, |added| now_ms.saturating_sub(added));
            gauges.oldest_pending_age.set(age as f64 / 1000.0);
        }
        let groups = groups.and_then(|reply| {
            redis::from_redis_value::<redis::streams::StreamInfoGroupsReply>(reply).ok()
        });
        let Some(group) = groups
            .into_iter()
            .flat_map(|reply| reply.groups)
            .find(|group| group.name == self.group)
        else {
            return;
        };
        gauges.pending.set(group.pending as i64);
        if let Some(lag) = group.lag {
            gauges.lag.set(lag as i64);
        }
    }

    pub(super) fn log_claimed(&self, claimed: &[RawEntry]) {
        if !claimed.is_empty() {
            tracing::info!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                claimed = claimed.len(),
                "claimed entries left unacknowledged longer than {:?}",
                self.claim_idle
            );
        }
    }

    /// Connects to the server and joins the group.
    pub(super) async fn connect(
        &self,
        tasks: &HandlerTasks,
    ) -> anyhow::Result<MultiplexedConnection> {
        let client = tasks.engine.redis_tls().client(&self.address)?;
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
    pub(super) fn next_read(
        &self,
        state: &mut ConnectionState,
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
    pub(super) fn entries_of(
        &self,
        reply: redis::Value,
        claiming: bool,
        state: &mut ConnectionState,
        held: &HeldEntries,
    ) -> anyhow::Result<Vec<RawEntry>> {
        if claiming {
            let (next, claimed) = parse_claim_reply(reply)
                .with_context(|| format!("claiming idle entries of stream `{}`", self.stream))?;
            state.claim_cursor = (next != "0-0").then_some(next);
            self.log_claimed(&claimed);
            return Ok(claimed
                .into_iter()
                .filter(|entry| {
                    !held.in_flight.contains(&entry.id)
                        && !held
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
