//! Redis: the message a handler receives, payload decoding, and outbound [`Connection`]s.

use std::fmt;

use crate::__private::imports::fermyon::spin2_0_0::redis as wit;
use crate::__private::raw_redis::fermyon::spin::redis_types;
use crate::__private::redis::exports::spin_trigger::sdk0_2_0::redis_handler as rich;
use crate::__private::redis_batch::exports::spin_trigger::sdk0_3_0::redis_batch_handler as batch;
use crate::__private::{HandlerResult, block_on};

/// A Redis message with its metadata, for handlers that take it as their argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published on.
    pub channel: String,
    /// The body, as published.
    pub payload: Vec<u8>,
    /// The pattern that matched, when the trigger subscribes by pattern (`orders.*`).
    pub pattern: Option<String>,
    /// The stream entry, when a `redis-stream` trigger read the message from a stream; then
    /// `channel` is the stream and `payload` the entry's field `payload` (empty if it has none).
    pub entry: Option<StreamEntry>,
}

/// A stream entry, as a `redis-stream` trigger read it.
///
/// ```no_run
/// use spin_trigger_sdk::redis::Message;
///
/// #[spin_trigger_sdk::redis_component]
/// fn on_entry(message: Message) -> anyhow::Result<()> {
///     if let Some(entry) = &message.entry {
///         let order = entry.field("order").unwrap_or_default();
///         println!("{} {} attempt {}: {}", message.channel, entry.id, entry.attempt, String::from_utf8_lossy(order));
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// The id Redis gave the entry (`1700000000000-0`).
    pub id: String,
    /// The entry's fields, in the order they were added.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Which attempt at handling the entry this is, from 1. A handler that fails is called
    /// again, up to the trigger's `max_attempts`; then the entry goes to the dead-letter stream.
    pub attempt: u32,
}

impl StreamEntry {
    /// The value of the first field called `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_slice())
    }
}

impl Message {
    /// The payload as UTF-8 text.
    pub fn text(&self) -> Result<&str, PayloadError> {
        std::str::from_utf8(&self.payload).map_err(|error| PayloadError::utf8(&error))
    }

    /// The payload decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, PayloadError> {
        decode_json(&self.payload)
    }
}

/// A JSON payload, decoded into `T` before the handler runs.
///
/// ```no_run
/// # use spin_trigger_sdk::redis::Json;
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// #[spin_trigger_sdk::redis_component]
/// fn on_order(Json(order): Json<Order>) {
///     println!("order {}", order.id);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why a payload could not be decoded into the handler's argument type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError(String);

impl PayloadError {
    fn utf8(error: &std::str::Utf8Error) -> Self {
        PayloadError(format!("the payload is not valid UTF-8: {error}"))
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PayloadError {}

fn decode_json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(payload).map_err(|error| {
        PayloadError(format!(
            "the payload is not valid JSON for `{}`: {error}",
            std::any::type_name::<T>()
        ))
    })
}

/// A type a handler can take the payload as. Implemented for `Vec<u8>`, `bytes::Bytes`,
/// `String`, [`Json<T>`], and `()` for handlers that take no argument.
#[diagnostic::on_unimplemented(
    message = "a Redis handler cannot take its payload as `{Self}`",
    label = "take `Vec<u8>`, `bytes::Bytes`, `String`, `Json<T>` or `spin_trigger_sdk::redis::Message`"
)]
pub trait FromPayload: Sized {
    /// Decodes the payload.
    fn from_payload(payload: Vec<u8>) -> Result<Self, PayloadError>;
}

impl FromPayload for Vec<u8> {
    fn from_payload(payload: Vec<u8>) -> Result<Self, PayloadError> {
        Ok(payload)
    }
}

impl FromPayload for bytes::Bytes {
    fn from_payload(payload: Vec<u8>) -> Result<Self, PayloadError> {
        Ok(payload.into())
    }
}

impl FromPayload for String {
    fn from_payload(payload: Vec<u8>) -> Result<Self, PayloadError> {
        String::from_utf8(payload).map_err(|error| PayloadError::utf8(&error.utf8_error()))
    }
}

impl<T: serde::de::DeserializeOwned> FromPayload for Json<T> {
    fn from_payload(payload: Vec<u8>) -> Result<Self, PayloadError> {
        decode_json(&payload).map(Json)
    }
}

impl FromPayload for () {
    fn from_payload(_payload: Vec<u8>) -> Result<Self, PayloadError> {
        Ok(())
    }
}

/// Runs a payload handler for Spin's raw world: used by `#[redis_component]`. The raw world's
/// error carries no message, so the message goes to stderr, where the host shows it with the
/// component id.
#[doc(hidden)]
pub fn raw_redis_export<A, F>(
    payload: Vec<u8>,
    handler: impl FnOnce(A) -> F,
) -> Result<(), redis_types::Error>
where
    A: FromPayload,
    F: std::future::Future,
    F::Output: HandlerResult,
{
    let outcome = match A::from_payload(payload) {
        Ok(argument) => block_on(handler(argument)).into_message_result(),
        Err(error) => Err(error.to_string()),
    };
    outcome.map_err(|message| {
        eprintln!("{message}");
        redis_types::Error::Error
    })
}

/// A [`Message`] from either world's message record (0.2.0's and 0.3.0's have the same fields).
macro_rules! from_wit {
    ($message:expr) => {{
        let message = $message;
        Message {
            channel: message.channel,
            payload: message.payload,
            pattern: message.pattern,
            entry: message.entry.map(|entry| StreamEntry {
                id: entry.id,
                fields: entry.fields,
                attempt: entry.attempt,
            }),
        }
    }};
}

/// Runs a whole-message handler for the richer world: used by `#[redis_component]`.
#[doc(hidden)]
pub fn rich_redis_export<F>(
    message: rich::Message,
    handler: impl FnOnce(Message) -> F,
) -> Result<(), rich::Error>
where
    F: std::future::Future,
    F::Output: HandlerResult,
{
    block_on(handler(from_wit!(message)))
        .into_message_result()
        .map_err(|message| rich::Error { message })
}

/// The messages of one batch, for a `#[redis_component]` handler that takes a `Batch`: a
/// `[[trigger.redis-stream]]` hands it up to `batch_size` entries (default 100) in one call.
///
/// Returning `Ok` acknowledges every entry except those marked with [`Batch::fail`], which are
/// tried again, one attempt each, and go to the dead-letter stream with their own error after
/// their last attempt. Returning `Err` (or panicking) fails every entry of the batch.
///
/// ```no_run
/// use spin_trigger_sdk::redis::Batch;
///
/// #[spin_trigger_sdk::redis_component]
/// fn on_orders(batch: Batch) -> anyhow::Result<()> {
///     for message in &batch {
///         if message.payload.is_empty() {
///             batch.fail(message, "an empty order");
///             continue;
///         }
///         println!("order {}", String::from_utf8_lossy(&message.payload));
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Batch {
    messages: Vec<Message>,
    failures: std::rc::Rc<std::cell::RefCell<Vec<(u32, String)>>>,
}

impl Batch {
    /// The batch's messages, in stream order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Marks `message` (one of this batch's, or a clone of one) as failed with `error`: it is
    /// tried again, and the others are acknowledged. A message is found by its stream entry's
    /// id, else by its contents; one that is not in this batch marks nothing and says so on
    /// stderr.
    pub fn fail(&self, message: &Message, error: impl fmt::Display) {
        let same_entry = |candidate: &Message| match (&candidate.entry, &message.entry) {
            (Some(candidate), Some(entry)) => candidate.id == entry.id,
            _ => candidate == message,
        };
        let index = self
            .messages
            .iter()
            .position(|candidate| std::ptr::eq(candidate, message))
            .or_else(|| self.messages.iter().position(same_entry));
        match index {
            Some(index) => self.fail_at(index, error),
            None => eprintln!(
                "Batch::fail: the message is not one of this batch's, so nothing was marked \
                 failed ({error})"
            ),
        }
    }

    /// Marks the message at `index` as failed with `error`; an index past the end is ignored.
    pub fn fail_at(&self, index: usize, error: impl fmt::Display) {
        if index < self.messages.len() {
            self.failures
                .borrow_mut()
                .push((index as u32, error.to_string()));
        }
    }
}

impl std::ops::Deref for Batch {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        &self.messages
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a Message;
    type IntoIter = std::slice::Iter<'a, Message>;

    fn into_iter(self) -> Self::IntoIter {
        self.messages.iter()
    }
}

/// The batch world's export: the host's messages as a [`Batch`], the handler's result and the
/// messages it marked failed back. Used by `#[redis_component]`.
#[doc(hidden)]
pub fn batch_redis_export<F>(
    messages: Vec<batch::Message>,
    handler: impl FnOnce(Batch) -> F,
) -> Result<Vec<batch::EntryFailure>, batch::Error>
where
    F: std::future::Future,
    F::Output: HandlerResult,
{
    let messages = messages
        .into_iter()
        .map(|message| from_wit!(message))
        .collect();
    let failures = std::rc::Rc::default();
    let batch = Batch {
        messages,
        failures: std::rc::Rc::clone(&failures),
    };
    block_on(handler(batch))
        .into_message_result()
        .map_err(|message| batch::Error { message })?;
    Ok(failures
        .take()
        .into_iter()
        .map(|(index, message)| batch::EntryFailure { index, message })
        .collect())
}

/// Why an outbound Redis operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The address is not a valid Redis URL, or the component's `allowed_outbound_hosts` does
    /// not allow it.
    InvalidAddress,
    /// The component has too many connections open.
    TooManyConnections,
    /// A value was not of the expected type.
    TypeError,
    /// Any other failure, with the host's message.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidAddress => f.write_str(
                "invalid Redis address, or one the component's allowed_outbound_hosts does not allow",
            ),
            Error::TooManyConnections => f.write_str("too many Redis connections"),
            Error::TypeError => f.write_str("the Redis value is not of the expected type"),
            Error::Other(message) => write!(f, "Redis error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::InvalidAddress => Error::InvalidAddress,
            wit::Error::TooManyConnections => Error::TooManyConnections,
            wit::Error::TypeError => Error::TypeError,
            wit::Error::Other(message) => Error::Other(message),
        }
    }
}

/// An argument of [`Connection::execute`].
pub use wit::RedisParameter as Parameter;
/// A value [`Connection::execute`] returns.
pub use wit::RedisResult as Value;

/// A connection to a Redis server, allowed by the component's `allowed_outbound_hosts`. Closed
/// when dropped, and at the latest when the instance ends.
///
/// ```no_run
/// use spin_trigger_sdk::redis::Connection;
///
/// let redis = Connection::open("redis://127.0.0.1:6379")?;
/// redis.set("greeting", b"hello")?;
/// assert_eq!(redis.get("greeting")?, Some(b"hello".to_vec()));
/// redis.publish("greetings", "hello")?;
/// # Ok::<(), spin_trigger_sdk::redis::Error>(())
/// ```
pub struct Connection(wit::Connection);

impl Connection {
    /// Opens a connection to `address` (`redis://host:port`, `rediss://` for TLS).
    pub fn open(address: &str) -> Result<Self, Error> {
        Ok(Connection(wit::Connection::open(address)?))
    }

    /// Publishes `payload` on `channel`.
    pub fn publish(&self, channel: &str, payload: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.0.publish(channel, payload.as_ref())?)
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.get(key)?)
    }

    /// Sets `key` to `value`, overwriting any previous value.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.0.set(key, value.as_ref())?)
    }

    /// Increments the integer at `key` (0 if missing) and returns the new value.
    pub fn incr(&self, key: &str) -> Result<i64, Error> {
        Ok(self.0.incr(key)?)
    }

    /// Deletes `keys`; returns how many existed.
    pub fn del(&self, keys: &[&str]) -> Result<u32, Error> {
        Ok(self.0.del(&owned(keys))?)
    }

    /// Adds `values` to the set at `key`; returns how many were new.
    pub fn sadd(&self, key: &str, values: &[&str]) -> Result<u32, Error> {
        Ok(self.0.sadd(key, &owned(values))?)
    }

    /// The members of the set at `key`.
    pub fn smembers(&self, key: &str) -> Result<Vec<String>, Error> {
        Ok(self.0.smembers(key)?)
    }

    /// Removes `values` from the set at `key`; returns how many were members.
    pub fn srem(&self, key: &str, values: &[&str]) -> Result<u32, Error> {
        Ok(self.0.srem(key, &owned(values))?)
    }

    /// Runs any Redis command.
    ///
    /// ```no_run
    /// use spin_trigger_sdk::redis::{Connection, Parameter, Value};
    ///
    /// let redis = Connection::open("redis://127.0.0.1:6379")?;
    /// let reply = redis.execute("APPEND", &[Parameter::Binary(b"log".to_vec()), Parameter::Binary(b"!".to_vec())])?;
    /// assert!(matches!(reply.as_slice(), [Value::Int64(_)]));
    /// # Ok::<(), spin_trigger_sdk::redis::Error>(())
    /// ```
    pub fn execute(&self, command: &str, arguments: &[Parameter]) -> Result<Vec<Value>, Error> {
        Ok(self.0.execute(command, arguments)?)
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Message {
        Message {
            channel: "orders".into(),
            payload: b"x".to_vec(),
            pattern: None,
            entry: Some(StreamEntry {
                id: id.into(),
                fields: vec![("payload".into(), b"x".to_vec())],
                attempt: 1,
            }),
        }
    }

    #[test]
    fn failing_a_clone_of_a_message_marks_the_message() {
        let batch = Batch {
            messages: vec![entry("1-0"), entry("1-1"), entry("1-2")],
            failures: std::rc::Rc::default(),
        };
        let clone = batch.messages()[1].clone();
        batch.fail(&clone, "bad");
        batch.fail(&batch.messages()[2], "worse");
        batch.fail(&entry("9-9"), "not in this batch");
        assert_eq!(
            *batch.failures.borrow(),
            [(1, "bad".to_owned()), (2, "worse".to_owned())]
        );
    }
}
