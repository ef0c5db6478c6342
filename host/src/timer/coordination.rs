//! One fire per tick across hosts: hosts running the same app agree through Redis
//! (`coordination = "redis://..."`) that each scheduled tick — trigger id × scheduled time — runs
//! on exactly one of them.
//!
//! Every host, at every tick, runs one script on the key `spin-trigger:timer:<app>:<trigger>:
//! <scheduled ms>`: absent, it is set to the host's lease (`won`: this host runs the tick);
//! `done`, the tick ran (`done`); else another host holds it (`held`). The winner renews its lease
//! while the handler runs and marks the key `done` after. A host that saw `held` looks again once
//! the lease could have run out: if the holder died the key is gone, and one of the others wins
//! it and runs the tick again (at least once: at most one extra run per death).
//!
//! The lease is renewed from a task of its own, never the handler's, so a handler that holds its
//! thread (a long SQLite statement) cannot let it lapse; a lease found lost is logged as a
//! possibly duplicated run. A host still busy with the previous tick does not claim the next,
//! and a tick won but not run is released for another host, never marked done.
//!
//! An operator's pause (`<prefix>:paused`, set through the admin endpoint) is read by the same
//! script, so every host skips the trigger's ticks while it exists.
//!
//! A Redis outage skips ticks (logged), so a tick never runs on every host at once; coordination
//! resumes when Redis is back (the connection reconnects by itself). A Redis that lost its data
//! (restarted without persistence) could make a tick look unclaimed: each script also reads a
//! generation key, set once per Redis dataset, and a second look that finds a new generation
//! does not run the tick again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::OnceCell;
use tokio::time::MissedTickBehavior;

use crate::allowed_hosts::redact;
use crate::redis_client::RedisTls;
use crate::telemetry::EventReporter;

/// How long a winner's claim lasts without renewal: a host that dies holding a tick delays that
/// tick's second run by about this much.
pub const LEASE: Duration = Duration::from_secs(3);
/// A difference between this host's clock and the coordination server's worth reporting.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(1);
/// How long a `done` mark stays: longer than any second look.
const DONE_RETENTION: Duration = Duration::from_secs(600);

/// Claims a tick: `KEYS[1]` the tick, `KEYS[2]` the generation, `KEYS[3]` the trigger's pause;
/// `ARGV[1]` the holder, `ARGV[2]` the lease in ms, `ARGV[3]` a generation to set if none is.
/// Returns `{state, generation}`; `paused` while the pause key exists.
const CLAIM: &str = r"
local generation = redis.call('GET', KEYS[2])
if not generation then
  generation = ARGV[3]
  redis.call('SET', KEYS[2], generation)
end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'paused', generation} end
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'won', generation}
end
if current == 'done' then return {'done', generation} end
return {'held', generation}
";

/// Extends the lease on `KEYS[1]` while `ARGV[1]` holds it: 1, else 0 (the lease was lost).
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives up `KEYS[1]` while `ARGV[1]` holds it, so that another host may run the tick.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Raises `KEYS[1]`, the last completed tick's scheduled ms, to `ARGV[1]` unless it is higher.
const RECORD_COMPLETED: &str = r"
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
";

/// How often the winner renews its lease: four times per lease, each renewal given at most
/// this long, so that the lease outlives two slow or lost replies in a row.
pub const RENEWAL: Duration = Duration::from_millis(LEASE.as_millis() as u64 / 4);

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This host runs the tick.
    Won,
    /// The tick already ran.
    Done,
    /// Another host holds it; the Redis dataset's generation, for the second look.
    Held { generation: String },
    /// An operator paused the trigger, for every host.
    Paused,
}

/// One timer's coordination through one Redis server.
pub struct Coordinator {
    client: redis::Client,
    /// The address with any password hidden, for logs.
    pub shown: String,
    connection: OnceCell<redis::aio::ConnectionManager>,
    /// `spin-trigger:timer:<app>:<trigger>`.
    prefix: String,
    /// This host's name in the claims: host name, process id and a random suffix.
    holder: String,
}

impl Coordinator {
    /// A coordinator for `trigger_id` of `app` through `address`; connects on first use.
    pub fn new(address: &str, tls: &RedisTls, app: &str, trigger_id: &str) -> anyhow::Result<Self> {
        let client = tls
            .client(address)
            .with_context(|| format!("coordination: invalid address {}", redact(address)))?;
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        Ok(Coordinator {
            client,
            shown: redact(address),
            connection: OnceCell::new(),
            prefix: format!("spin-trigger:timer:{app}:{trigger_id}"),
            holder: format!("{host}-{}-{:08x}", std::process::id(), rand_u32()),
        })
    }

    async fn connection(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        self.connection
            .get_or_try_init(|| async {
                let mut connection =
                    redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
                        .await?;
                self.check_clock(&mut connection).await;
                Ok::<_, redis::RedisError>(connection)
            })
            .await
            .cloned()
            .with_context(|| format!("connecting to {}", self.shown))
    }

    /// Compares this host's clock with the server's (`TIME`) once, and reports a difference
    /// large enough to matter: hosts name ticks by their scheduled time, so hosts whose clocks
    /// disagree by more than a tick's spacing may claim the same tick under different names.
    async fn check_clock(&self, connection: &mut redis::aio::ConnectionManager) {
        let Ok((seconds, micros)) = redis::cmd("TIME")
            .query_async::<(u64, u64)>(connection)
            .await
        else {
            return;
        };
        let server = Duration::from_secs(seconds) + Duration::from_micros(micros);
        let local = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let skew = local.abs_diff(server);
        if skew > MAX_CLOCK_SKEW {
            tracing::warn!(
                server = %self.shown,
                "this host's clock differs from the coordination server's by {skew:?}: hosts \
                 whose clocks disagree may run a tick twice; synchronise the clocks (NTP)"
            );
        }
    }

    fn key(&self, scheduled_ms: u64) -> String {
        format!("{}:{scheduled_ms}", self.prefix)
    }

    /// Tries to claim the tick scheduled at `scheduled_ms`.
    pub async fn claim(&self, scheduled_ms: u64) -> anyhow::Result<(Claim, String)> {
        let mut connection = self.connection().await?;
        let (state, generation): (String, String) = redis::Script::new(CLAIM)
            .key(self.key(scheduled_ms))
            .key("spin-trigger:generation")
            .key(self.paused_key())
            .arg(&self.holder)
            .arg(LEASE.as_millis() as u64)
            .arg(format!("{:08x}{:08x}", rand_u32(), rand_u32()))
            .invoke_async(&mut connection)
            .await
            .with_context(|| format!("claiming a tick on {}", self.shown))?;
        let claim = match state.as_str() {
            "won" => Claim::Won,
            "done" => Claim::Done,
            "paused" => Claim::Paused,
            _ => Claim::Held {
                generation: generation.clone(),
            },
        };
        Ok((claim, generation))
    }

    /// Extends this host's lease on a tick it runs; `false` when the lease was already lost
    /// (it ran out, so another host may be running the tick too).
    pub async fn renew(&self, scheduled_ms: u64) -> anyhow::Result<bool> {
        let mut connection = self.connection().await?;
        let renewed: i64 = redis::Script::new(RENEW)
            .key(self.key(scheduled_ms))
            .arg(&self.holder)
            .arg(LEASE.as_millis() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives up a tick this host won but did not run, so that another host may.
    pub async fn release(&self, scheduled_ms: u64) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.key(scheduled_ms))
            .arg(&self.holder)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// `<prefix>:paused`: present while an operator has the trigger paused.
    fn paused_key(&self) -> String {
        format!("{}:paused", self.prefix)
    }

    /// Whether the trigger is paused, for every host.
    pub async fn paused(&self) -> anyhow::Result<bool> {
        let mut connection = self.connection().await?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(self.paused_key())
            .query_async(&mut connection)
            .await
            .with_context(|| format!("reading the pause on {}", self.shown))?;
        Ok(exists)
    }

    /// Pauses the trigger on every host, or resumes it.
    pub async fn set_paused(&self, paused: bool) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        let command = if paused {
            redis::cmd("SET").arg(self.paused_key()).arg(1).clone()
        } else {
            redis::cmd("DEL").arg(self.paused_key()).clone()
        };
        let _: redis::Value = command
            .query_async(&mut connection)
            .await
            .with_context(|| format!("setting the pause on {}", self.shown))?;
        Ok(())
    }

    /// `<prefix>:last`: the latest scheduled time of a tick any host completed, for `catch_up`.
    fn last_key(&self) -> String {
        format!("{}:last", self.prefix)
    }

    /// The scheduled ms of the latest tick any host completed, if one is recorded.
    pub async fn last_completed(&self) -> anyhow::Result<Option<u64>> {
        let mut connection = self.connection().await?;
        let last: Option<u64> = redis::cmd("GET")
            .arg(self.last_key())
            .query_async(&mut connection)
            .await
            .with_context(|| format!("reading the last completed tick on {}", self.shown))?;
        Ok(last)
    }

    /// Records that the tick at `scheduled_ms` completed (kept only if it is the latest); with
    /// `only_if_none`, only when no tick is recorded (the point a first start catches up from).
    pub async fn record_completed(
        &self,
        scheduled_ms: u64,
        only_if_none: bool,
    ) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        if only_if_none {
            let _: Option<String> = redis::cmd("SET")
                .arg(self.last_key())
                .arg(scheduled_ms)
                .arg("NX")
                .query_async(&mut connection)
                .await?;
        } else {
            let _: i64 = redis::Script::new(RECORD_COMPLETED)
                .key(self.last_key())
                .arg(scheduled_ms)
                .invoke_async(&mut connection)
                .await?;
        }
        Ok(())
    }

    /// Marks a tick this host ran as done.
    pub async fn finish(&self, scheduled_ms: u64) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        let _: () = redis::cmd("SET")
            .arg(self.key(scheduled_ms))
            .arg("done")
            .arg("PX")
            .arg(DONE_RETENTION.as_millis() as u64)
            .query_async(&mut connection)
            .await?;
        Ok(())
    }
}

/// A random number, from the standard library's randomly keyed hasher.
pub(super) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish() as u32
}

/// Renews this host's lease on the tick at `scheduled_ms` until aborted. A renewal that fails
/// or takes longer than [`RENEWAL`] is tried again at the next period; a lease
/// found lost (it ran out, so another host may have claimed the tick) is reported once, as a
/// possibly duplicated run.
pub async fn keep_lease(
    coordinator: Arc<Coordinator>,
    reporter: EventReporter,
    trigger: String,
    scheduled_ms: u64,
) {
    let mut period = tokio::time::interval(RENEWAL);
    period.set_missed_tick_behavior(MissedTickBehavior::Delay);
    period.tick().await;
    loop {
        period.tick().await;
        match tokio::time::timeout(RENEWAL, coordinator.renew(scheduled_ms)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                reporter.lease_lost();
                tracing::error!(
                    trigger = %trigger,
                    scheduled_ms,
                    "lost the lease on this tick while running it: another host may run it too"
                );
                return;
            }
            Ok(Err(error)) => tracing::warn!(
                trigger = %trigger,
                scheduled_ms,
                "renewing the lease on this tick: {}",
                crate::error_text::one_line(&error)
            ),
            Err(_) => tracing::warn!(
                trigger = %trigger,
                scheduled_ms,
                "renewing the lease on this tick took longer than {:?}; trying again",
                RENEWAL
            ),
        }
    }
}
