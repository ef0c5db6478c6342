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

use anyhow::{Context, anyhow};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::allowed_hosts::redact;
use crate::app::App;
use crate::engine::{AcceptedWorld, Engine, InstanceState, PreparedComponent, log_failure};
use crate::variables::ResolvedVariables;

mod bindings {
    pub mod raw {
        wasmtime::component::bindgen!({
            world: "fermyon:spin/redis-trigger",
            path: "wit",
            exports: { default: async },
        });
    }
    pub mod spin3 {
        wasmtime::component::bindgen!({
            world: "spin-trigger:sdk/spin3-redis-trigger",
            path: "wit",
            exports: { default: async },
            with: {
                "spin:redis/redis@3.0.0": crate::host_api::spin3_bindings::spin::redis::redis,
                "spin:variables/variables@3.0.0": crate::host_api::spin3_bindings::spin::variables::variables,
            },
        });
    }
    pub mod rich {
        wasmtime::component::bindgen!({
            world: "spin-trigger:sdk/redis",
            path: "wit",
            exports: { default: async },
            with: {
                "fermyon:spin/variables@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::variables,
                "fermyon:spin/redis@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::redis,
            },
        });
    }
}

use bindings::rich::exports::spin_trigger::sdk::redis_handler;

/// Which Redis world a component exports.
#[derive(Clone, Copy)]
enum RedisWorld {
    /// Ours: the whole message in, an error message out.
    Rich,
    /// Spin's v3 world (spin-sdk 6 and later): `handle-message` is an `async func`.
    Spin3,
    /// Spin's v1 world: the payload in; what our SDK's payload-only handlers export.
    Raw,
}

/// The Redis worlds this host runs, in the order it looks for them.
const REDIS_WORLDS: &[AcceptedWorld<RedisWorld>] = &[
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-handler@0.1.0",
        description: "this project's Redis world",
        world: RedisWorld::Rich,
    },
    AcceptedWorld {
        export: "spin:redis/inbound-redis@3.0.0",
        description: "Spin's v3 Redis world, spin-sdk 6 and later",
        world: RedisWorld::Spin3,
    },
    AcceptedWorld {
        export: "fermyon:spin/inbound-redis",
        description: "Spin's v1 Redis world",
        world: RedisWorld::Raw,
    },
];

/// Messages waiting for one trigger's component; when full, reading from the server waits.
const QUEUE_CAPACITY: usize = 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One message, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: String,
    pub payload: Vec<u8>,
    /// The subscription pattern that matched, for pattern subscriptions.
    pub pattern: Option<String>,
}

/// A component ready to handle messages, in whichever Redis world it exports.
pub struct RedisComponent {
    prepared: Arc<PreparedComponent>,
    export: RedisExport,
}

enum RedisExport {
    Raw(bindings::raw::RedisTriggerPre<InstanceState>),
    Rich(bindings::rich::RedisPre<InstanceState>),
    Spin3(bindings::spin3::Spin3RedisTriggerPre<InstanceState>),
}

impl RedisComponent {
    /// Picks the world from what the component exports.
    pub fn new(prepared: Arc<PreparedComponent>) -> anyhow::Result<Self> {
        let pre = prepared.pre.clone();
        let export = match prepared.select_world("Redis", REDIS_WORLDS)? {
            RedisWorld::Rich => RedisExport::Rich(bindings::rich::RedisPre::new(pre)?),
            RedisWorld::Spin3 => {
                RedisExport::Spin3(bindings::spin3::Spin3RedisTriggerPre::new(pre)?)
            }
            RedisWorld::Raw => RedisExport::Raw(bindings::raw::RedisTriggerPre::new(pre)?),
        };
        Ok(RedisComponent { prepared, export })
    }

    pub fn id(&self) -> &str {
        &self.prepared.id
    }

    /// Handles one message in a fresh instance. A trap or a handler error is an `Err`.
    pub async fn handle(&self, engine: &Engine, message: &Message) -> anyhow::Result<()> {
        let mut store = engine.new_store(&self.prepared)?;
        match &self.export {
            RedisExport::Raw(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .fermyon_spin_inbound_redis()
                    .call_handle_message(&mut store, &message.payload)
                    .await?
                    .map_err(|_| anyhow!("handler returned an error (see its stderr above)"))?;
            }
            RedisExport::Rich(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let wit_message = redis_handler::Message {
                    channel: message.channel.clone(),
                    payload: message.payload.clone(),
                    pattern: message.pattern.clone(),
                };
                instance
                    .spin_trigger_sdk_redis_handler()
                    .call_handle_message(&mut store, &wit_message)
                    .await?
                    .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
            }
            RedisExport::Spin3(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let payload = message.payload.clone();
                // An `async func` export runs as a component-model task, inside the store's
                // event loop, so that the guest's own async imports can make progress.
                let result = store
                    .run_concurrent(async |accessor| {
                        instance
                            .spin_redis_inbound_redis()
                            .call_handle_message(accessor, payload)
                            .await
                    })
                    .await??;
                result.map_err(|error| {
                    anyhow!("handler returned an error: {}", spin3_error(&error))
                })?;
            }
        }
        Ok(())
    }
}

/// A v3 handler error as a log line: the message, where the error carries one.
fn spin3_error(error: &bindings::spin3::spin::redis::redis::Error) -> String {
    use bindings::spin3::spin::redis::redis::Error;
    match error {
        Error::Other(message) => message.clone(),
        Error::InvalidAddress => "invalid address".to_owned(),
        Error::TooManyConnections => "too many connections".to_owned(),
        Error::TypeError => "type error".to_owned(),
    }
}

/// One `[[trigger.redis]]`, resolved.
struct Subscription {
    trigger_id: String,
    component: Arc<RedisComponent>,
    /// The channel, or the pattern when `is_pattern`.
    channel: String,
    is_pattern: bool,
    max_in_flight: usize,
}

impl Subscription {
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
}

impl RedisTrigger {
    /// Resolves every trigger's address and channel and picks each component's world.
    pub fn new(
        app: &App,
        variables: &ResolvedVariables,
        prepared: &BTreeMap<String, Arc<PreparedComponent>>,
    ) -> anyhow::Result<Self> {
        let mut components: BTreeMap<String, Arc<RedisComponent>> = BTreeMap::new();
        let mut servers: BTreeMap<String, Vec<Arc<Subscription>>> = BTreeMap::new();
        for trigger in &app.redis_triggers {
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
            let address = variables.render(&trigger.address).with_context(|| {
                format!("Redis trigger `{}`: rendering its address", trigger.id)
            })?;
            let channel = variables.render(&trigger.channel).with_context(|| {
                format!("Redis trigger `{}`: rendering its channel", trigger.id)
            })?;
            redis::Client::open(address.as_str()).with_context(|| {
                format!(
                    "Redis trigger `{}`: invalid address {}",
                    trigger.id,
                    redact(&address)
                )
            })?;
            servers
                .entry(address)
                .or_default()
                .push(Arc::new(Subscription {
                    trigger_id: trigger.id.clone(),
                    component,
                    is_pattern: is_glob(&channel),
                    channel,
                    max_in_flight: trigger.max_in_flight,
                }));
        }
        Ok(RedisTrigger { servers })
    }

    /// Serves every server until `shutdown` is cancelled. Handlers are spawned on `tracker`.
    pub async fn run(
        &self,
        engine: Arc<Engine>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        let mut servers = tokio::task::JoinSet::new();
        for (address, subscriptions) in &self.servers {
            servers.spawn(serve(
                address.clone(),
                subscriptions.clone(),
                engine.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        while servers.join_next().await.is_some() {}
    }
}

/// Subscribes on one server and keeps doing so across lost connections until shutdown.
async fn serve(
    address: String,
    subscriptions: Vec<Arc<Subscription>>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let shown_address = redact(&address);
    let mut queues = Vec::new();
    for subscription in &subscriptions {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run_handlers(
            subscription.clone(),
            receiver,
            engine.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        queues.push((subscription.clone(), sender));
    }
    let mut backoff = MIN_BACKOFF;
    while !shutdown.is_cancelled() {
        match subscribe(&address, &subscriptions).await {
            Ok(pubsub) => {
                tracing::info!(address = %shown_address, "subscribed");
                backoff = MIN_BACKOFF;
                let mut messages = pubsub.into_on_message();
                loop {
                    let received = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        received = messages.next() => received,
                    };
                    let Some(received) = received else { break };
                    let message = Message {
                        channel: received.get_channel_name().to_owned(),
                        payload: received.get_payload_bytes().to_vec(),
                        pattern: received.get_pattern::<Option<String>>().ok().flatten(),
                    };
                    for (subscription, queue) in &queues {
                        if subscription.matches(&message) {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = queue.send(message.clone()) => {}
                            }
                        }
                    }
                }
                tracing::warn!(address = %shown_address, "lost the connection to the Redis server; reconnecting");
            }
            Err(error) => tracing::warn!(
                address = %shown_address,
                "cannot subscribe: {}; retrying in {backoff:?}",
                crate::errors::one_line(&error)
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects and subscribes to every channel and pattern of the server's triggers.
async fn subscribe(
    address: &str,
    subscriptions: &[Arc<Subscription>],
) -> anyhow::Result<redis::aio::PubSub> {
    let client = redis::Client::open(address)?;
    let mut pubsub = client.get_async_pubsub().await.context("connecting")?;
    for subscription in subscriptions {
        if subscription.is_pattern {
            pubsub
                .psubscribe(&subscription.channel)
                .await
                .with_context(|| format!("subscribing to pattern `{}`", subscription.channel))?;
        } else {
            pubsub
                .subscribe(&subscription.channel)
                .await
                .with_context(|| format!("subscribing to channel `{}`", subscription.channel))?;
        }
    }
    Ok(pubsub)
}

/// Runs one trigger's handlers, at most `max_in_flight` at once, in the order messages came.
async fn run_handlers(
    subscription: Arc<Subscription>,
    mut queue: mpsc::Receiver<Message>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let in_flight = Arc::new(Semaphore::new(subscription.max_in_flight));
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = queue.recv() => message,
        };
        let Some(message) = message else { return };
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let subscription = subscription.clone();
        let engine = engine.clone();
        tracker.spawn(async move {
            if let Err(error) = subscription.component.handle(&engine, &message).await {
                let component = subscription.component.id();
                log_failure(&error, component, "Redis handler failed", |reason| {
                    tracing::error!(
                        trigger = %subscription.trigger_id,
                        component = %component,
                        channel = %message.channel,
                        "Redis handler failed: {reason}"
                    )
                });
            }
            drop(permit);
        });
    }
}
