//! The Redis Streams trigger: where a stream entry is dispatched (the read loop in `consumer.rs`,
//! what it holds in `held_entries.rs`; handing entries to handlers and retrying them in
//! `handling.rs`; what it sends Redis in `commands.rs`; entries a handler asked to retry later,
//! waiting in Redis, in `delayed.rs`). This file turns each `[[trigger.redis-stream]]` into a
//! consumer.
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
//! its host each time) is dead-lettered without being run again. A handler of our 0.5.0 worlds
//! may also ask for an entry to be tried again after a delay (it waits in the sorted set
//! `<stream>.delayed`, acknowledged, holding no slot, and comes back to the stream's end when
//! due, its attempts carried) or to be dead-lettered at once. An entry whose fields cannot be given to a handler (a field
//! name that is not UTF-8) is dead-lettered at once, with the reason. On start and every half
//! `claim_idle`, `XAUTOCLAIM` takes over entries another consumer left unacknowledged longer than
//! `claim_idle` (a consumer that died); a live consumer resets the idle time of the entries it
//! holds every third of `claim_idle` (`XCLAIM ... JUSTID`), so however long a handler and its
//! retries take, no other consumer claims them while it lives. A lost connection is logged and re-established with
//! capped exponential backoff; entries whose acknowledgement was lost are read again from this
//! consumer's own pending list. At shutdown the consumer stops reading and lets what it read
//! finish and be acknowledged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::allowed_hosts::redact;
use crate::engine::Engine;
use crate::redis_address::render_address;
use crate::redis_component::RedisComponent;
use crate::trigger_type::{
    BuildContext, BuiltTrigger, RunTrigger, TriggerFuture, TriggerSpec, TriggerType,
};
use crate::variable_templates::Template;
use consumer::{Consumer, HandlerTasks};

mod commands;
pub mod config;
mod connection_state;
mod consumer;
mod delayed;
mod handling;
mod held_entries;
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
/// The longest a handler's `retry-after` delays an entry: a longer one is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(12 * 3600);
/// How often a consumer moves the entries of the delayed set whose time has come back to the
/// stream (in the round trip that reads entries).
const DELAYED_INTERVAL: Duration = Duration::from_millis(250);
/// The field a delayed entry carries back into the stream: the attempts made at it before.
/// The host reads it and hides it from handlers.
pub(crate) const ATTEMPTS_FIELD: &str = "spin-trigger-attempts";
/// The field a delayed entry carries back into the stream naming the group that delayed it:
/// another group reading the stream acknowledges the entry without running it again.
pub(crate) const GROUP_FIELD: &str = "spin-trigger-group";
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

impl TriggerType for StreamTrigger {
    crate::redis_address::redis_trigger_validation!(
        "redis-stream",
        config::RawStreamConfig,
        StreamConfig
    );

    /// Resolves every stream trigger's settings and picks each component's Redis world.
    fn build(
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self> {
        let default_consumer = format!(
            "{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        );
        let (triggers, _) = context.resolve::<Self, _>(triggers, RedisComponent::new)?;
        let consumers = triggers
            .into_iter()
            .map(|trigger| Consumer::resolve(trigger, context, &default_consumer).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
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
                let tasks = HandlerTasks {
                    engine: engine.clone(),
                    shutdown: shutdown.clone(),
                    tracker: tracker.clone(),
                };
                tracker.spawn(consumer.clone().run(tasks));
            }
            shutdown.cancelled().await;
        })
    }
}

impl Consumer {
    /// One trigger's consumer: its names rendered with the app's variables (the group defaults
    /// to the deployment's name, the consumer to `default_consumer`), its batch size checked
    /// against its component's handler.
    fn resolve(
        trigger: BuiltTrigger<'_, StreamConfig, RedisComponent>,
        context: &BuildContext<'_>,
        default_consumer: &str,
    ) -> anyhow::Result<Self> {
        let BuiltTrigger {
            spec,
            component,
            limits,
            reporter,
        } = trigger;
        let (config, variables, telemetry) =
            (spec.config, context.variables, context.engine.telemetry());
        let what = format!("Redis stream trigger `{}`", spec.id);
        let address = render_address(variables, &config.address, &what)?;
        let render = |template: &Template, field: &str| {
            variables
                .render(template)
                .with_context(|| format!("{what}: rendering its {field}"))
        };
        let stream = render(&config.stream, "stream")?;
        let group = match &config.group {
            Some(group) => render(group, "group")?,
            None => context.deployment.to_string(),
        };
        let consumer = match &config.consumer {
            Some(consumer) => render(consumer, "consumer")?,
            None => default_consumer.to_owned(),
        };
        let dead_letter = match &config.dead_letter {
            Some(dead_letter) => render(dead_letter, "dead_letter")?,
            None => format!("{stream}.dead"),
        };
        if dead_letter == stream {
            bail!(
                "Redis stream trigger `{}`: the dead-letter stream is the stream itself (`{stream}`); name another",
                spec.id
            );
        }
        // Where entries their handler asked to retry later wait: beside the stream.
        let delayed = format!("{stream}.delayed");
        if dead_letter == delayed {
            bail!(
                "Redis stream trigger `{}`: the dead-letter stream `{dead_letter}` is the name of the stream's delayed set; name another",
                spec.id
            );
        }
        let rate = crate::rate_limit::RateLimit::for_trigger(
            config.max_per_second,
            &address,
            context.engine.redis_tls(),
            context.deployment,
            spec.id,
        )?;
        Ok(Consumer {
            trigger_id: spec.id.to_owned(),
            rate,
            batch_size: batch_size(&spec, &component)?,
            component,
            max_in_flight: config.max_in_flight,
            max_attempts: config.max_attempts,
            retry_backoff: crate::retry_backoff::RetryBackoff {
                first: config.retry_backoff,
                max: config.max_retry_backoff,
            },
            claim_idle: config.claim_idle,
            batch_wait: config.batch_wait,
            limits,
            reporter,
            health: telemetry.connection(StreamTrigger::NAME, spec.id, &redact(&address)),
            backlog: telemetry.stream_gauges(spec.id, &stream, &group),
            shown_address: redact(&address),
            address,
            stream,
            group,
            consumer,
            dead_letter,
            delayed,
        })
    }
}

/// Entries per handler call: `batch_size` (default 100) for a component that takes batches, 1
/// for one that takes an entry at a time, which may set neither `batch_wait` nor a
/// `batch_size` other than 1.
fn batch_size(
    trigger: &TriggerSpec<'_, StreamConfig>,
    component: &RedisComponent,
) -> anyhow::Result<usize> {
    let config = trigger.config;
    let one_at_a_time = |field: &str| {
        anyhow::anyhow!(
            "Redis stream trigger `{}`: {field}, but component `{}` takes one entry at a time; \
             leave it out, or make its handler take a `spin_trigger_sdk::redis::Batch`",
            trigger.id,
            trigger.component
        )
    };
    if !component.takes_batches() && !config.batch_wait.is_zero() {
        return Err(one_at_a_time("batch_wait is set"));
    }
    match (component.takes_batches(), config.batch_size) {
        (true, size) => Ok(size.unwrap_or(DEFAULT_BATCH_SIZE)),
        (false, None | Some(1)) => Ok(1),
        (false, Some(size)) => Err(one_at_a_time(&format!("batch_size = {size}"))),
    }
}
