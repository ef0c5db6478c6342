//! Redis: the message a handler receives, payload decoding, and outbound [`Connection`]s.

use std::fmt;

use crate::__private::imports::fermyon::spin2_0_0::redis as wit;
use crate::__private::raw_redis::fermyon::spin::redis_types;
use crate::__private::redis::exports::spin_trigger::sdk0_5_0::redis_handler as rich;
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

/// A [`Message`] from either world's message record (they have the same fields).
macro_rules! from_wit {
    ($message:expr) => {{
        let message = $message;
        $crate::redis::Message {
            channel: message.channel,
            payload: message.payload,
            pattern: message.pattern,
            entry: message.entry.map(|entry| $crate::redis::StreamEntry {
                id: entry.id,
                fields: entry.fields,
                attempt: entry.attempt,
            }),
        }
    }};
}

mod batch;
pub use batch::{Batch, batch_redis_export};

/// What becomes of a stream entry, as a `#[redis_component]` handler taking a [`Message`]
/// decides by returning `Outcome` (or `Result<Outcome, E>`). Returning `()` or `Ok(())` is
/// [`Outcome::Handled`]; an error is a failure, tried again after the trigger's backoff.
///
/// ```no_run
/// use std::time::Duration;
/// use spin_trigger_sdk::redis::{Message, Outcome};
///
/// #[spin_trigger_sdk::redis_component]
/// fn on_order(message: Message) -> anyhow::Result<Outcome> {
///     let order: serde_json::Value = match message.json() {
///         Ok(order) => order,
///         // Never worth another attempt: to the dead-letter stream now.
///         Err(error) => return Ok(Outcome::DeadLetter(error.to_string())),
///     };
///     if order["warehouse"] == "closed" {
///         // Not now: the entry waits in Redis, holding no handler slot, and comes back.
///         return Ok(Outcome::RetryAfter(Duration::from_secs(30)));
///     }
///     Ok(Outcome::Handled)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: the entry is acknowledged.
    Handled,
    /// Try the entry again after this long (milliseconds count; at most 12 hours). It is
    /// acknowledged and waits in the stream's delayed set in Redis (`<stream>.delayed`), so the
    /// delay outlives the host; then it comes back at the end of the stream, with a new id and
    /// its attempt counted on. On its last attempt (`max_attempts`) it goes to the dead-letter
    /// stream instead. A pub/sub message is not kept: there it is logged as a failure.
    RetryAfter(std::time::Duration),
    /// Send the entry to the dead-letter stream now, with this reason as its `error`. On
    /// pub/sub, logged as a failure.
    DeadLetter(String),
}

impl Outcome {
    fn into_wit(self) -> rich::Outcome {
        match self {
            Outcome::Handled => rich::Outcome::Handled,
            Outcome::RetryAfter(delay) => rich::Outcome::RetryAfter(millis(delay)),
            Outcome::DeadLetter(reason) => rich::Outcome::DeadLetter(reason),
        }
    }
}

/// A delay in whole milliseconds, as the worlds carry it.
fn millis(delay: std::time::Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

/// What a handler taking a [`Message`] may return: `()`, `Result<(), E>`, [`Outcome`] or
/// `Result<Outcome, E>`, with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a return type of a Redis handler taking a `Message`",
    label = "return `()`, `Result<(), E>`, `Outcome` or `Result<Outcome, E>` where `E: Display`"
)]
#[doc(hidden)]
pub trait MessageResult {
    /// The handler's outcome, its error rendered to a message.
    fn into_outcome(self) -> Result<Outcome, String>;
}

impl MessageResult for () {
    fn into_outcome(self) -> Result<Outcome, String> {
        Ok(Outcome::Handled)
    }
}

impl<E: fmt::Display> MessageResult for Result<(), E> {
    fn into_outcome(self) -> Result<Outcome, String> {
        self.into_message_result().map(|()| Outcome::Handled)
    }
}

impl MessageResult for Outcome {
    fn into_outcome(self) -> Result<Outcome, String> {
        Ok(self)
    }
}

impl<E: fmt::Display> MessageResult for Result<Outcome, E> {
    fn into_outcome(self) -> Result<Outcome, String> {
        // `{:#}` shows anyhow's whole context chain on one line.
        self.map_err(|error| format!("{error:#}"))
    }
}

/// Runs a whole-message handler for the richer world: used by `#[redis_component]`.
#[doc(hidden)]
pub fn rich_redis_export<F>(
    message: rich::Message,
    handler: impl FnOnce(Message) -> F,
) -> Result<rich::Outcome, rich::Error>
where
    F: std::future::Future,
    F::Output: MessageResult,
{
    block_on(handler(from_wit!(message)))
        .into_outcome()
        .map(Outcome::into_wit)
        .map_err(|message| rich::Error { message })
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
