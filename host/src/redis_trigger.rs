//! The Redis trigger: where a message is dispatched.
//!
//! One pub/sub connection per server address subscribes to every channel (or pattern, for a
//! channel holding a glob like `orders.*`) of the triggers on that server. Each message goes to
//! every trigger whose channel or pattern it matched, through a bounded queue per trigger; a
//! trigger handles up to `max_in_flight` messages at once (default 1: publish order). Each message
//! runs in a fresh instance; a guest error or trap is logged with the component id and channel,
//! and the next message is handled normally. A lost connection is logged and re-established with
//! capped exponential backoff, resubscribing; the trigger never exits because of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::allowed_hosts::redact;
use crate::engine::Engine;
use crate::limits::Limits;
use crate::rate_limit::RateLimit;
use crate::redis_address::render_address;
use crate::redis_client::RedisTls;
use crate::redis_component::{Message, RedisComponent};
use crate::telemetry::{CallInfo, ConnectionHealth, EventReporter, in_trace, log_failure};
use crate::trigger_type::{BuildContext, RunTrigger, TriggerFuture, TriggerSpec, TriggerType};

pub mod config;

pub use config::RedisConfig;

/// Messages waiting for one trigger's component; when full, reading from the server waits.
const QUEUE_CAPACITY: usize = 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One `[[trigger.redis]]`, resolved.
struct Subscription {
    trigger_id: String,
    component: Arc<RedisComponent>,
    /// The channel, or the pattern when `is_pattern`.
    channel: String,
    is_pattern: bool,
    max_in_flight: usize,
    limits: Limits,
    reporter: EventReporter,
    /// Messages waiting in its queue, when it has one and metrics are on.
    queue_depth: Option<Gauge>,
    /// `max_per_second`: messages started per second, at most.
    rate: Option<Arc<RateLimit>>,
}

impl Subscription {
    /// Handles one message, once its `max_per_second` lets it start (a message that waits holds
    /// up those behind it, which wait in the server's output buffer); a failure is logged with
    /// the trigger, component and channel. At shutdown a waiting message is not started.
    async fn handle(&self, engine: &Engine, message: &Message, shutdown: &CancellationToken) {
        if let Some(rate) = &self.rate
            && !rate.wait_for_one(shutdown).await
        {
            return;
        }
        let call = self.reporter.start(CallInfo {
            destination: Some(&message.channel),
            ..CallInfo::default()
        });
        let result = in_trace(self.component.handle(engine, message, &self.limits), &call).await;
        call.finish(result.as_ref().err());
        if let Err(error) = result {
            let component = self.component.id();
            log_failure(&error, component, "Redis handler failed", |reason| {
                tracing::error!(
                    trigger = %self.trigger_id,
                    component = %component,
                    channel = %message.channel,
                    "Redis handler failed: {reason}"
                )
            });
        }
    }

    fn matches(&self, message: &Message) -> bool {
        if self.is_pattern {
            message.pattern.as_deref() == Some(self.channel.as_str())
        } else {
            message.pattern.is_none() && message.channel == self.channel
        }
    }
}

/// A channel holding a glob character is subscribed to by pattern (`PSUBSCRIBE`).
fn is_glob(channel: &str) -> bool {
    channel.contains(['*', '?', '['])
}

/// Every Redis trigger of an app, grouped by server.
pub struct RedisTrigger {
    /// Server address (as resolved) to the subscriptions on it.
    servers: BTreeMap<String, Vec<Arc<Subscription>>>,
    /// Each server's connection, as `/readyz` and the metrics see it.
    health: BTreeMap<String, Arc<ConnectionHealth>>,
}

impl TriggerType for RedisTrigger {
    crate::redis_address::redis_trigger_validation!("redis", config::RawRedisConfig, RedisConfig);

    /// Resolves every trigger's address and channel and picks each component's world.
    fn build(
        triggers: &[TriggerSpec<'_, Self::Config>],
        context: &BuildContext<'_>,
    ) -> anyhow::Result<Self> {
        let variables = context.variables;
        let telemetry = context.engine.telemetry();
        let (triggers, _) = context.resolve::<Self, _>(triggers, RedisComponent::new)?;
        let mut servers: BTreeMap<String, Vec<Arc<Subscription>>> = BTreeMap::new();
        for trigger in triggers {
            let spec = trigger.spec;
            let what = format!("Redis trigger `{}`", spec.id);
            let address = render_address(variables, &spec.config.address, &what)?;
            let channel = variables
                .render(&spec.config.channel)
                .with_context(|| format!("{what}: rendering its channel"))?;
            let rate = RateLimit::for_trigger(
                spec.config.max_per_second,
                &address,
                context.engine.redis_tls(),
                context.deployment,
                spec.id,
            )?;
            servers
                .entry(address)
                .or_default()
                .push(Arc::new(Subscription {
                    trigger_id: spec.id.to_owned(),
                    component: trigger.component,
                    is_pattern: is_glob(&channel),
                    channel,
                    max_in_flight: spec.config.max_in_flight,
                    limits: trigger.limits,
                    reporter: trigger.reporter,
                    queue_depth: telemetry.queue_depth(Self::NAME, spec.id),
                    rate,
                }));
        }
        let health = servers
            .iter()
            .map(|(address, subscriptions)| {
                let triggers: Vec<&str> = subscriptions
                    .iter()
                    .map(|subscription| subscription.trigger_id.as_str())
                    .collect();
                let connection =
                    telemetry.connection(Self::NAME, &triggers.join(","), &redact(address));
                (address.clone(), connection)
            })
            .collect();
        Ok(RedisTrigger { servers, health })
    }
}

impl RunTrigger for RedisTrigger {
    /// Serves every server until `shutdown` is cancelled. Handlers run on `tracker`.
    fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> TriggerFuture<'_, ()> {
        Box::pin(async move {
            for (address, subscriptions) in &self.servers {
                let dispatch = match &subscriptions[..] {
                    [only] if only.max_in_flight == 1 => Dispatch::Inline(only.clone()),
                    _ => Dispatch::Queued(
                        subscriptions
                            .iter()
                            .map(|subscription| {
                                let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
                                let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
                                for _ in 0..subscription.max_in_flight {
                                    tracker.spawn(handle_messages(
                                        subscription.clone(),
                                        receiver.clone(),
                                        engine.clone(),
                                        shutdown.clone(),
                                    ));
                                }
                                (subscription.clone(), sender)
                            })
                            .collect(),
                    ),
                };
                let subscriber = Subscriber {
                    health: self.health[address].clone(),
                    address: address.clone(),
                    shown_address: redact(address),
                    subscriptions: subscriptions.clone(),
                    dispatch,
                    engine: engine.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    shutdown: shutdown.clone(),
                };
                // Tracked, so that shutdown waits for a handler it runs inline.
                tracker.spawn_blocking(move || subscriber.run());
            }
            shutdown.cancelled().await;
        })
    }
}

/// Where a server's subscriber puts each message.
enum Dispatch {
    /// The server's only trigger handles one message at a time (the default): the subscriber
    /// runs the handler itself and reads the next message when it returns. No queue, and no
    /// hop between threads per message.
    Inline(Arc<Subscription>),
    /// Each matching trigger's queue, drained by its `max_in_flight` workers.
    Queued(Vec<(Arc<Subscription>, mpsc::Sender<Message>)>),
}

/// One server's subscription: a thread of its own, with a blocking connection that it reads
/// only once the last message is handled or queued. So when handlers fall behind, a burst waits
/// in the server's output buffer (bounded by its `client-output-buffer-limit`) rather than in
/// this process's memory, and no hop through an async driver task is paid per message.
struct Subscriber {
    address: String,
    /// The address as logs show it: any password redacted.
    shown_address: String,
    subscriptions: Vec<Arc<Subscription>>,
    dispatch: Dispatch,
    health: Arc<ConnectionHealth>,
    engine: Arc<Engine>,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

impl Subscriber {
    /// Subscribes and keeps doing so across lost connections until shutdown.
    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        while !self.shutdown.is_cancelled() {
            let mut connection = match connect(&self.address, self.engine.redis_tls()) {
                Ok(connection) => connection,
                Err(error) => {
                    self.wait_to_retry(&error, &mut backoff);
                    continue;
                }
            };
            // Dropping the `PubSub` unsubscribes: subscribe and read through the same one.
            let mut pubsub = connection.as_pubsub();
            if let Err(error) = subscribe(&mut pubsub, &self.subscriptions) {
                self.wait_to_retry(&error, &mut backoff);
                continue;
            }
            // Reads time out now and then to notice shutdown; subscribing did not, so that a
            // slow confirmation on a loaded machine is not taken for a lost connection (while
            // the server already counts this connection as subscribed, and sends it messages).
            if let Err(error) = pubsub.set_read_timeout(Some(SHUTDOWN_POLL)) {
                self.wait_to_retry(
                    &anyhow::Error::from(error).context("setting a read timeout"),
                    &mut backoff,
                );
                continue;
            }
            tracing::info!(address = %self.shown_address, "subscribed");
            self.health.connected();
            backoff = MIN_BACKOFF;
            loop {
                if self.shutdown.is_cancelled() {
                    return;
                }
                let received = match pubsub.get_message() {
                    Ok(received) => received,
                    // The read timeout: a chance to notice shutdown.
                    Err(error) if error.is_timeout() => continue,
                    Err(error) => {
                        self.health.lost();
                        tracing::warn!(
                            address = %self.shown_address,
                            "lost the connection to the Redis server; reconnecting (cause: {error})"
                        );
                        break;
                    }
                };
                let message = Message {
                    channel: received.get_channel_name().to_owned(),
                    payload: received.get_payload_bytes().to_vec(),
                    pattern: received.get_pattern::<Option<String>>().ok().flatten(),
                    entry: None,
                };
                if self.dispatch(message).is_err() {
                    return;
                }
            }
        }
    }

    /// Logs why subscribing failed and waits `backoff` (unless shutdown comes), doubling it.
    fn wait_to_retry(&self, error: &anyhow::Error, backoff: &mut Duration) {
        self.health.lost();
        tracing::warn!(
            address = %self.shown_address,
            "cannot subscribe: {}; retrying in {backoff:?}",
            crate::error_text::one_line(error)
        );
        sleep_unless_shutdown(*backoff, &self.shutdown);
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    fn dispatch(&self, message: Message) -> Result<(), HandlersStopped> {
        match &self.dispatch {
            Dispatch::Inline(subscription) => {
                if subscription.matches(&message) {
                    subscription.reporter.received(1);
                    self.runtime.block_on(subscription.handle(
                        &self.engine,
                        &message,
                        &self.shutdown,
                    ));
                }
                Ok(())
            }
            Dispatch::Queued(queues) => {
                let matches =
                    |(subscription, _): &(Arc<Subscription>, _)| subscription.matches(&message);
                // The last (usually the only) matching trigger takes the message itself.
                let Some(last) = queues.iter().rposition(matches) else {
                    return Ok(());
                };
                for (subscription, queue) in queues[..last].iter().filter(|entry| matches(entry)) {
                    enqueue(&self.runtime, subscription, queue, message.clone())?;
                }
                let (subscription, queue) = &queues[last];
                enqueue(&self.runtime, subscription, queue, message)
            }
        }
    }
}

/// The trigger's handlers have stopped (at shutdown).
struct HandlersStopped;

/// Queues a message for a trigger's handlers. While the queue is full it waits until half of it
/// is free: the subscriber thread then wakes once per half queue, not once per message handled.
fn enqueue(
    runtime: &tokio::runtime::Handle,
    subscription: &Subscription,
    queue: &mpsc::Sender<Message>,
    message: Message,
) -> Result<(), HandlersStopped> {
    subscription.reporter.received(1);
    if let Some(depth) = &subscription.queue_depth {
        // Counted before this message goes in: what it waits behind.
        depth.set((queue.max_capacity() - queue.capacity()) as i64);
    }
    match queue.try_send(message) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(HandlersStopped),
        Err(mpsc::error::TrySendError::Full(message)) => {
            let mut permits = runtime
                .block_on(queue.reserve_many(QUEUE_CAPACITY / 2))
                .map_err(|_| HandlersStopped)?;
            // The unused permits go back as they drop, leaving the room for what follows.
            permits.next().ok_or(HandlersStopped)?.send(message);
            Ok(())
        }
    }
}

/// How long a blocked read waits before checking for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

fn connect(address: &str, tls: &RedisTls) -> anyhow::Result<redis::Connection> {
    let client = tls.client(address)?;
    let connection = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .context("connecting")?;
    // Subscribing waits up to this long for each confirmation; reads then poll (see `run`).
    connection
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .context("setting a read timeout")?;
    Ok(connection)
}

/// Subscribes to every channel and pattern of the server's triggers.
fn subscribe(
    pubsub: &mut redis::PubSub<'_>,
    subscriptions: &[Arc<Subscription>],
) -> anyhow::Result<()> {
    for subscription in subscriptions {
        if subscription.is_pattern {
            pubsub
                .psubscribe(&subscription.channel)
                .with_context(|| format!("subscribing to pattern `{}`", subscription.channel))?;
        } else {
            pubsub
                .subscribe(&subscription.channel)
                .with_context(|| format!("subscribing to channel `{}`", subscription.channel))?;
        }
    }
    Ok(())
}

fn sleep_unless_shutdown(wait: Duration, shutdown: &CancellationToken) {
    let deadline = std::time::Instant::now() + wait;
    while !shutdown.is_cancelled() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SHUTDOWN_POLL));
    }
}

/// One of a trigger's `max_in_flight` workers: takes the next message from the trigger's queue
/// and handles it, until shutdown. Several workers share one queue, so a slow message holds up
/// only its own worker.
async fn handle_messages(
    subscription: Arc<Subscription>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
) {
    loop {
        let message = {
            let mut queue = queue.lock().await;
            let message = tokio::select! {
                // Once shutdown begins, no new message starts.
                biased;
                _ = shutdown.cancelled() => return,
                message = queue.recv() => message,
            };
            if let Some(depth) = &subscription.queue_depth {
                depth.set(queue.len() as i64);
            }
            message
        };
        let Some(message) = message else { return };
        subscription.handle(&engine, &message, &shutdown).await;
    }
}
