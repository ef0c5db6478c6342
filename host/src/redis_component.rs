//! A component that handles Redis messages, in whichever Redis world it exports: Spin's v1
//! and v3 worlds, and this project's 0.1.0, 0.2.0, 0.3.0 (batches) and 0.5.0 (the handler
//! decides each entry's outcome) ones. The Redis trigger and the Redis
//! Streams trigger both dispatch through it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use wasmtime::Store;

use crate::engine::{AcceptedWorld, Engine, PreparedComponent};
use crate::host_api::InstanceState;
use crate::limits::Limits;

mod bindings {
    pub mod spin_v1 {
        wasmtime::component::bindgen!({
            world: "fermyon:spin/redis-trigger",
            path: "wit",
            exports: { default: async },
        });
    }
    pub mod spin3 {
        wasmtime::component::bindgen!({
            world: "spin-trigger:sdk/spin3-redis-trigger@0.1.0",
            path: "wit",
            exports: { default: async },
            with: {
                "spin:redis/redis@3.0.0": crate::host_api::spin3_bindings::spin::redis::redis,
                "spin:variables/variables@3.0.0": crate::host_api::spin3_bindings::spin::variables::variables,
            },
        });
    }
    /// Ours, version 0.5.0: the handler decides what becomes of the message.
    pub mod sdk_0_5 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/redis@0.5.0");
    }
    /// Ours, version 0.5.0, in batches: a decision per message that was not simply handled.
    pub mod sdk_batch_0_5 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/redis-batch@0.5.0");
    }
    /// Ours, version 0.2.0: the message may carry a stream entry.
    pub mod sdk_0_2 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/redis@0.2.0");
    }
    /// Ours, version 0.3.0: a batch of messages per call.
    pub mod sdk_batch_0_3 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/redis-batch@0.3.0");
    }
    /// Ours, version 0.1.0: what components built before streams export.
    pub mod sdk_0_1 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/redis@0.1.0");
    }
}

use bindings::sdk_0_1::exports::spin_trigger::sdk0_1_0::redis_handler as redis_handler_0_1;
use bindings::sdk_0_2::exports::spin_trigger::sdk0_2_0::redis_handler;
use bindings::sdk_0_5::exports::spin_trigger::sdk0_5_0::redis_handler as redis_handler_0_5;
use bindings::sdk_batch_0_3::exports::spin_trigger::sdk0_3_0::redis_batch_handler;
use bindings::sdk_batch_0_5::exports::spin_trigger::sdk0_5_0::redis_batch_handler as redis_batch_handler_0_5;

/// `message` as the message record of the bindings module `$wit` (0.2.0's, 0.3.0's and
/// 0.5.0's records have the same fields).
macro_rules! to_wit {
    ($wit:ident, $message:expr) => {{
        let message: &Message = $message;
        $wit::Message {
            channel: message.channel.clone(),
            payload: message.payload.clone(),
            pattern: message.pattern.clone(),
            entry: message.entry.as_ref().map(|entry| $wit::StreamEntry {
                id: entry.id.clone(),
                fields: entry.fields.clone(),
                attempt: entry.attempt,
            }),
        }
    }};
}

/// Which Redis world a component exports.
#[derive(Clone, Copy)]
enum RedisWorld {
    /// Ours, 0.5.0, in batches: a decision per message out.
    SdkBatch0_5,
    /// Ours, 0.5.0: the whole message in, its outcome out.
    Sdk0_5,
    /// Ours, 0.3.0: a batch of messages in, the ones that failed out.
    SdkBatch0_3,
    /// Ours: the whole message (with any stream entry) in, an error message out.
    Sdk0_2,
    /// Ours as it was before streams: the same, without the stream entry.
    Sdk0_1,
    /// Spin's v3 world (spin-sdk 6 and later): `handle-message` is an `async func`.
    Spin3,
    /// Spin's v1 world: the payload in; what our SDK's payload-only handlers export.
    SpinV1,
}

/// The Redis worlds this host runs, in the order it looks for them.
const REDIS_WORLDS: &[AcceptedWorld<RedisWorld>] = &[
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-batch-handler@0.5.0",
        description: "this project's Redis batch world with outcomes",
        world: RedisWorld::SdkBatch0_5,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-handler@0.5.0",
        description: "this project's Redis world with outcomes",
        world: RedisWorld::Sdk0_5,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-batch-handler@0.3.0",
        description: "this project's Redis batch world",
        world: RedisWorld::SdkBatch0_3,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-handler@0.2.0",
        description: "this project's Redis world",
        world: RedisWorld::Sdk0_2,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/redis-handler@0.1.0",
        description: "this project's Redis world before streams",
        world: RedisWorld::Sdk0_1,
    },
    AcceptedWorld {
        export: "spin:redis/inbound-redis@3.0.0",
        description: "Spin's v3 Redis world, spin-sdk 6 and later",
        world: RedisWorld::Spin3,
    },
    AcceptedWorld {
        export: "fermyon:spin/inbound-redis",
        description: "Spin's v1 Redis world",
        world: RedisWorld::SpinV1,
    },
];

/// One message, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published on (the stream's key, for a stream entry).
    pub channel: String,
    /// What was published (a stream entry's `payload` field).
    pub payload: Vec<u8>,
    /// The subscription pattern that matched, for pattern subscriptions.
    pub pattern: Option<String>,
    /// The stream entry, for a message a `redis-stream` trigger read; then `channel` is the
    /// stream and `payload` the entry's field `payload`.
    pub entry: Option<StreamEntry>,
}

/// A stream entry, with the attempt at handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, Vec<u8>)>,
    /// From 1.
    pub attempt: u32,
}

/// The field whose value payload-only handlers get, so one component serves channels and
/// streams alike.
pub const PAYLOAD_FIELD: &str = "payload";

impl StreamEntry {
    /// The value of the entry's field `payload`, if it has one.
    pub fn payload(&self) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(name, _)| name == PAYLOAD_FIELD)
            .map(|(_, value)| value.as_slice())
    }
}

/// What becomes of a message its handler did not simply handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler failed, with this error: the host's backoff and `max_attempts` decide.
    Failed(String),
    /// The handler asked for it to be tried again after this long.
    RetryAfter(std::time::Duration),
    /// The handler asked for it to go to the dead-letter stream now, for this reason.
    DeadLetter(String),
}

impl Outcome {
    /// The outcome as a failure, for a message that cannot be tried again later (pub/sub).
    fn into_failure(self) -> anyhow::Error {
        match self {
            Outcome::Failed(error) => anyhow!("handler returned an error: {error}"),
            Outcome::RetryAfter(delay) => anyhow!(
                "handler asked to retry after {delay:?}, but a pub/sub message is not kept to \
                 be tried again (a `redis-stream` trigger's entries are)"
            ),
            Outcome::DeadLetter(reason) => anyhow!(
                "handler asked to dead-letter the message ({reason}), but a pub/sub trigger has \
                 no dead-letter stream (a `redis-stream` trigger has)"
            ),
        }
    }
}

/// A component ready to handle messages, in whichever Redis world it exports.
pub struct RedisComponent {
    prepared: Arc<PreparedComponent>,
    export: RedisExport,
}

enum RedisExport {
    SdkBatch0_5(bindings::sdk_batch_0_5::RedisBatchPre<InstanceState>),
    Sdk0_5(bindings::sdk_0_5::RedisPre<InstanceState>),
    SdkBatch0_3(bindings::sdk_batch_0_3::RedisBatchPre<InstanceState>),
    SpinV1(bindings::spin_v1::RedisTriggerPre<InstanceState>),
    Sdk0_2(bindings::sdk_0_2::RedisPre<InstanceState>),
    Sdk0_1(bindings::sdk_0_1::RedisPre<InstanceState>),
    Spin3(bindings::spin3::Spin3RedisTriggerPre<InstanceState>),
}

impl RedisComponent {
    /// Picks the world from what the component exports.
    pub fn new(prepared: Arc<PreparedComponent>) -> anyhow::Result<Self> {
        let pre = prepared.pre.clone();
        let export = match prepared.select_world("Redis", REDIS_WORLDS)? {
            RedisWorld::SdkBatch0_5 => {
                RedisExport::SdkBatch0_5(bindings::sdk_batch_0_5::RedisBatchPre::new(pre)?)
            }
            RedisWorld::Sdk0_5 => RedisExport::Sdk0_5(bindings::sdk_0_5::RedisPre::new(pre)?),
            RedisWorld::SdkBatch0_3 => {
                RedisExport::SdkBatch0_3(bindings::sdk_batch_0_3::RedisBatchPre::new(pre)?)
            }
            RedisWorld::Sdk0_2 => RedisExport::Sdk0_2(bindings::sdk_0_2::RedisPre::new(pre)?),
            RedisWorld::Sdk0_1 => RedisExport::Sdk0_1(bindings::sdk_0_1::RedisPre::new(pre)?),
            RedisWorld::Spin3 => {
                RedisExport::Spin3(bindings::spin3::Spin3RedisTriggerPre::new(pre)?)
            }
            RedisWorld::SpinV1 => {
                RedisExport::SpinV1(bindings::spin_v1::RedisTriggerPre::new(pre)?)
            }
        };
        Ok(RedisComponent { prepared, export })
    }

    /// The component's id.
    pub fn id(&self) -> &str {
        &self.prepared.id
    }

    /// Whether it handles messages in batches (our 0.3.0 and 0.5.0 batch worlds).
    pub fn takes_batches(&self) -> bool {
        matches!(
            self.export,
            RedisExport::SdkBatch0_3(_) | RedisExport::SdkBatch0_5(_)
        )
    }

    /// Whether its handler may decide an outcome other than handled or failed (our 0.5.0
    /// worlds): only then does its consumer move entries back from the delayed set.
    pub fn decides_outcomes(&self) -> bool {
        matches!(
            self.export,
            RedisExport::Sdk0_5(_) | RedisExport::SdkBatch0_5(_)
        )
    }

    /// Handles a batch of messages in one fresh instance held to `limits`: `Ok` with the index
    /// and [`Outcome`] of each message the handler did not simply handle, in index order;
    /// `Err` when the whole call failed (a trap, the handler's error, the deadline). A
    /// component that takes one message at a time gets `messages[0]` alone.
    pub async fn handle_batch(
        &self,
        engine: &Engine,
        messages: &[Message],
        limits: &Limits,
    ) -> anyhow::Result<Vec<(usize, Outcome)>> {
        let first = messages.first().context("an empty batch")?;
        let mut outcomes = limits
            .run(async {
                let mut store = engine.new_store(&self.prepared, limits)?;
                let result = match &self.export {
                    RedisExport::SdkBatch0_5(pre) => {
                        call_sdk_batch_0_5(pre, &mut store, messages).await
                    }
                    RedisExport::SdkBatch0_3(pre) => {
                        call_sdk_batch_0_3(pre, &mut store, messages).await
                    }
                    RedisExport::Sdk0_5(pre) => call_sdk_0_5(pre, &mut store, first)
                        .await
                        .map(|outcome| outcome.map(|outcome| (0, outcome)).into_iter().collect()),
                    RedisExport::SpinV1(pre) => call_spin_v1(pre, &mut store, first)
                        .await
                        .map(|()| Vec::new()),
                    RedisExport::Sdk0_2(pre) => call_sdk_0_2(pre, &mut store, first)
                        .await
                        .map(|()| Vec::new()),
                    RedisExport::Sdk0_1(pre) => call_sdk_0_1(pre, &mut store, first)
                        .await
                        .map(|()| Vec::new()),
                    RedisExport::Spin3(pre) => call_spin3(pre, &mut store, first)
                        .await
                        .map(|()| Vec::new()),
                };
                store.data().limits.explain(result)
            })
            .await?;
        outcomes.retain(|(index, _)| {
            let inside = *index < messages.len();
            if !inside {
                tracing::warn!(
                    index,
                    batch = messages.len(),
                    "a batch handler named a message past the end of its batch; ignored"
                );
            }
            inside
        });
        outcomes.sort_by_key(|(index, _)| *index);
        outcomes.dedup_by_key(|(index, _)| *index);
        Ok(outcomes)
    }

    /// Handles one message in a fresh instance held to `limits`. A trap, a handler error or
    /// the deadline passing is an `Err`, and so is an outcome other than handled: a message
    /// handled this way is not kept for later.
    pub async fn handle(
        &self,
        engine: &Engine,
        message: &Message,
        limits: &Limits,
    ) -> anyhow::Result<()> {
        let outcomes = self
            .handle_batch(engine, std::slice::from_ref(message), limits)
            .await?;
        match outcomes.into_iter().next() {
            None => Ok(()),
            Some((_, outcome)) => Err(outcome.into_failure()),
        }
    }
}

/// Ours, 0.5.0: the whole message in; `None` when handled, else its outcome.
async fn call_sdk_0_5(
    pre: &bindings::sdk_0_5::RedisPre<InstanceState>,
    store: &mut Store<InstanceState>,
    message: &Message,
) -> anyhow::Result<Option<Outcome>> {
    use redis_handler_0_5::Outcome as Wit;
    let instance = pre.instantiate_async(&mut *store).await?;
    let wit_message = to_wit!(redis_handler_0_5, message);
    let result = instance
        .spin_trigger_sdk0_5_0_redis_handler()
        .call_handle_message(store, &wit_message)
        .await?;
    Ok(match result {
        Ok(Wit::Handled) => None,
        Ok(Wit::RetryAfter(ms)) => Some(Outcome::RetryAfter(Duration::from_millis(ms))),
        Ok(Wit::DeadLetter(reason)) => Some(Outcome::DeadLetter(reason)),
        Err(error) => Some(Outcome::Failed(error.message)),
    })
}

/// Ours, 0.5.0, in batches: the batch in; a decision for each message not simply handled out.
async fn call_sdk_batch_0_5(
    pre: &bindings::sdk_batch_0_5::RedisBatchPre<InstanceState>,
    store: &mut Store<InstanceState>,
    messages: &[Message],
) -> anyhow::Result<Vec<(usize, Outcome)>> {
    use redis_batch_handler_0_5::Decision;
    let instance = pre.instantiate_async(&mut *store).await?;
    let wit_messages: Vec<redis_batch_handler_0_5::Message> = messages
        .iter()
        .map(|message| to_wit!(redis_batch_handler_0_5, message))
        .collect();
    let decisions = instance
        .spin_trigger_sdk0_5_0_redis_batch_handler()
        .call_handle_batch(store, &wit_messages)
        .await?
        .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
    Ok(decisions
        .into_iter()
        .map(|entry| {
            let outcome = match entry.decision {
                Decision::Failed(error) => Outcome::Failed(error),
                Decision::RetryAfter(ms) => Outcome::RetryAfter(Duration::from_millis(ms)),
                Decision::DeadLetter(reason) => Outcome::DeadLetter(reason),
            };
            (entry.index as usize, outcome)
        })
        .collect())
}

/// Spin's v1 world: the payload in; the handler's error carries no message.
async fn call_spin_v1(
    pre: &bindings::spin_v1::RedisTriggerPre<InstanceState>,
    store: &mut Store<InstanceState>,
    message: &Message,
) -> anyhow::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    instance
        .fermyon_spin_inbound_redis()
        .call_handle_message(store, &message.payload)
        .await?
        .map_err(|_| anyhow!("handler returned an error (see its stderr above)"))
}

/// Ours, 0.2.0: the whole message, with any stream entry.
async fn call_sdk_0_2(
    pre: &bindings::sdk_0_2::RedisPre<InstanceState>,
    store: &mut Store<InstanceState>,
    message: &Message,
) -> anyhow::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let wit_message = to_wit!(redis_handler, message);
    instance
        .spin_trigger_sdk0_2_0_redis_handler()
        .call_handle_message(store, &wit_message)
        .await?
        .map_err(|error| anyhow!("handler returned an error: {}", error.message))
}

/// Ours, 0.3.0: the batch in; the index and error of each message that failed out.
async fn call_sdk_batch_0_3(
    pre: &bindings::sdk_batch_0_3::RedisBatchPre<InstanceState>,
    store: &mut Store<InstanceState>,
    messages: &[Message],
) -> anyhow::Result<Vec<(usize, Outcome)>> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let wit_messages: Vec<redis_batch_handler::Message> = messages
        .iter()
        .map(|message| to_wit!(redis_batch_handler, message))
        .collect();
    let failures = instance
        .spin_trigger_sdk0_3_0_redis_batch_handler()
        .call_handle_batch(store, &wit_messages)
        .await?
        .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
    Ok(failures
        .into_iter()
        .map(|failure| (failure.index as usize, Outcome::Failed(failure.message)))
        .collect())
}

/// Ours, 0.1.0: the message without a stream entry.
async fn call_sdk_0_1(
    pre: &bindings::sdk_0_1::RedisPre<InstanceState>,
    store: &mut Store<InstanceState>,
    message: &Message,
) -> anyhow::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let wit_message = redis_handler_0_1::Message {
        channel: message.channel.clone(),
        payload: message.payload.clone(),
        pattern: message.pattern.clone(),
    };
    instance
        .spin_trigger_sdk0_1_0_redis_handler()
        .call_handle_message(store, &wit_message)
        .await?
        .map_err(|error| anyhow!("handler returned an error: {}", error.message))
}

/// Spin's v3 world: `handle-message` is an `async func`, run as a component-model task inside
/// the store's event loop, so that the guest's own async imports can make progress.
async fn call_spin3(
    pre: &bindings::spin3::Spin3RedisTriggerPre<InstanceState>,
    store: &mut Store<InstanceState>,
    message: &Message,
) -> anyhow::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let payload = message.payload.clone();
    let result = store
        .run_concurrent(async |accessor| {
            instance
                .spin_redis_inbound_redis()
                .call_handle_message(accessor, payload)
                .await
        })
        .await??;
    result.map_err(|error| anyhow!("handler returned an error: {}", spin3_error(&error)))
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
