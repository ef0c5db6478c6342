//! `fermyon:spin/redis@2.0.0` and `spin:redis/redis@3.0.0`: outbound Redis for guests.
//!
//! A connection may be opened only to an address the component's `allowed_outbound_hosts`
//! allows; anything else gets `error::invalid-address`, and the host logs which host it refused.
//! Connections live in the instance's resource table, so they close when the instance ends.
//! Each command is a span, a child of the handler's, named by the command.

use std::sync::Arc;

use opentelemetry::KeyValue;
use wasmtime::component::Resource;

use crate::allowed_hosts::{Address, redact};
use crate::call_trace::server_attributes;
use crate::host_api::InstanceState;
use crate::host_api::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};

/// Connections one instance may hold open at once.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;

/// An open outbound connection, held in the instance's resource table.
pub struct OutboundConnection {
    connection: redis::aio::MultiplexedConnection,
    /// The server's address and port (never its credentials), for the commands' spans.
    server: Arc<[KeyValue]>,
}

fn other(error: impl std::fmt::Display) -> Error {
    Error::Other(error.to_string())
}

fn from_redis(error: redis::RedisError) -> Error {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType || error.code() == Some("WRONGTYPE") {
        Error::TypeError
    } else {
        other(error)
    }
}

impl InstanceState {
    /// Whether this instance may open a connection to `address`: the component's
    /// `allowed_outbound_hosts` allow it, and it holds fewer than the maximum.
    fn check_redis_open(&self, address: &str) -> Result<(), Error> {
        let parsed = Address::parse(address).map_err(|_| Error::InvalidAddress)?;
        if !self.allowed_hosts.allows(&parsed) {
            tracing::warn!(
                component = %self.component_id,
                host = %parsed,
                "outbound Redis connection refused: {} is not in the component's allowed_outbound_hosts",
                redact(address)
            );
            return Err(Error::InvalidAddress);
        }
        if self.open_redis_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(Error::TooManyConnections);
        }
        Ok(())
    }

    /// Keeps a new connection in the instance's resource table.
    fn keep_redis_connection(
        &mut self,
        connection: redis::aio::MultiplexedConnection,
        address: &str,
    ) -> Result<Resource<OutboundConnection>, Error> {
        let server = url::Url::parse(address)
            .ok()
            .and_then(|url| {
                let host = url.host_str()?.to_owned();
                Some(server_attributes(&host, url.port()))
            })
            .unwrap_or_default()
            .into();
        let resource = self
            .table
            .push(OutboundConnection { connection, server })
            .map_err(other)?;
        self.open_redis_connections += 1;
        Ok(resource)
    }

    /// A handle on a guest's connection; the multiplexed connection is cheap to clone, so no
    /// borrow of the table is held across an await.
    fn redis_connection(
        &self,
        resource: &Resource<OutboundConnection>,
    ) -> Result<commands::GuestConnection, Error> {
        self.table
            .get(resource)
            .map(|entry| commands::GuestConnection {
                connection: entry.connection.clone(),
                server: entry.server.clone(),
            })
            .map_err(other)
    }

    fn drop_redis_connection(
        &mut self,
        resource: Resource<OutboundConnection>,
    ) -> wasmtime::Result<()> {
        self.table.delete(resource)?;
        self.open_redis_connections = self.open_redis_connections.saturating_sub(1);
        Ok(())
    }
}

/// The commands, once for both versions of the interface: each runs on a clone of the guest's
/// connection, so no borrow of the instance is held across an await.
mod commands {
    use std::sync::Arc;

    use opentelemetry::KeyValue;
    use redis::AsyncCommands;
    use redis::aio::MultiplexedConnection as Connection;

    use crate::call_trace::OutboundSpan;

    /// A guest's connection, cloned out of the instance, with its server for the spans.
    pub struct GuestConnection {
        pub(super) connection: Connection,
        pub(super) server: Arc<[KeyValue]>,
    }

    impl GuestConnection {
        /// The span of one command on this connection, named by the command (never its
        /// arguments, which may be secrets).
        fn span(&self, command: impl FnOnce() -> String) -> OutboundSpan {
            OutboundSpan::start(|| {
                let command = command();
                let mut attributes = self.server.to_vec();
                attributes.push(KeyValue::new("db.system.name", "redis"));
                attributes.push(KeyValue::new("db.operation.name", command.clone()));
                (command, attributes)
            })
        }
    }

    use super::{Error, RedisParameter, RedisResult, flatten, from_redis};
    use crate::redis_client::RedisTls;

    pub async fn connect(address: &str, tls: &RedisTls) -> Result<Connection, Error> {
        let client = tls.client(address).map_err(|_| Error::InvalidAddress)?;
        client
            .get_multiplexed_async_connection_with_config(&crate::redis_client::guest_call_config())
            .await
            .map_err(from_redis)
    }

    pub async fn publish(
        mut c: GuestConnection,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let span = c.span(|| "PUBLISH".to_owned());
        span.finish(
            c.connection
                .publish::<_, _, ()>(channel, payload)
                .await
                .map_err(from_redis),
        )
    }

    pub async fn get(mut c: GuestConnection, key: String) -> Result<Option<Vec<u8>>, Error> {
        let span = c.span(|| "GET".to_owned());
        span.finish(c.connection.get(key).await.map_err(from_redis))
    }

    pub async fn set(mut c: GuestConnection, key: String, value: Vec<u8>) -> Result<(), Error> {
        let span = c.span(|| "SET".to_owned());
        span.finish(c.connection.set(key, value).await.map_err(from_redis))
    }

    pub async fn incr(mut c: GuestConnection, key: String) -> Result<i64, Error> {
        let span = c.span(|| "INCRBY".to_owned());
        span.finish(c.connection.incr(key, 1).await.map_err(from_redis))
    }

    pub async fn del(mut c: GuestConnection, keys: Vec<String>) -> Result<u32, Error> {
        let span = c.span(|| "DEL".to_owned());
        span.finish(c.connection.del(keys).await.map_err(from_redis))
    }

    pub async fn sadd(
        mut c: GuestConnection,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let span = c.span(|| "SADD".to_owned());
        span.finish(c.connection.sadd(key, values).await.map_err(from_redis))
    }

    pub async fn smembers(mut c: GuestConnection, key: String) -> Result<Vec<String>, Error> {
        let span = c.span(|| "SMEMBERS".to_owned());
        span.finish(c.connection.smembers(key).await.map_err(from_redis))
    }

    pub async fn srem(
        mut c: GuestConnection,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let span = c.span(|| "SREM".to_owned());
        span.finish(c.connection.srem(key, values).await.map_err(from_redis))
    }

    pub async fn execute(
        mut c: GuestConnection,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let span = c.span(|| command_name(&command));
        span.finish(execute_on(&mut c.connection, &command, arguments).await)
    }

    /// A command's name for its span: the guest's word, upper-cased, when it reads as a Redis
    /// command name (letters, digits, `_`, `.`, `|`, at most 32), else `COMMAND`: the guest
    /// does not choose what the spans say.
    pub(super) fn command_name(command: &str) -> String {
        let plain = !command.is_empty()
            && command.len() <= 32
            && command
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '|'));
        if plain {
            command.to_ascii_uppercase()
        } else {
            "COMMAND".to_owned()
        }
    }

    async fn execute_on(
        c: &mut Connection,
        command: &str,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let mut cmd = redis::cmd(command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(value) => cmd.arg(value),
                RedisParameter::Binary(bytes) => cmd.arg(bytes),
            };
        }
        let value: redis::Value = cmd.query_async(c).await.map_err(from_redis)?;
        let mut results = Vec::new();
        flatten(value, &mut results)?;
        Ok(results)
    }
}

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn open(&mut self, address: String) -> Result<Resource<OutboundConnection>, Error> {
        self.check_redis_open(&address)?;
        let connection = commands::connect(&address, &self.redis_tls).await?;
        self.keep_redis_connection(connection, &address)
    }

    async fn publish(
        &mut self,
        this: Resource<OutboundConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        commands::publish(self.redis_connection(&this)?, channel, payload).await
    }

    async fn get(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        commands::get(self.redis_connection(&this)?, key).await
    }

    async fn set(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        commands::set(self.redis_connection(&this)?, key, value).await
    }

    async fn incr(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<i64, Error> {
        commands::incr(self.redis_connection(&this)?, key).await
    }

    async fn del(
        &mut self,
        this: Resource<OutboundConnection>,
        keys: Vec<String>,
    ) -> Result<u32, Error> {
        commands::del(self.redis_connection(&this)?, keys).await
    }

    async fn sadd(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        commands::sadd(self.redis_connection(&this)?, key, values).await
    }

    async fn smembers(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        commands::smembers(self.redis_connection(&this)?, key).await
    }

    async fn srem(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        commands::srem(self.redis_connection(&this)?, key, values).await
    }

    async fn execute(
        &mut self,
        this: Resource<OutboundConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        commands::execute(self.redis_connection(&this)?, command, arguments).await
    }

    async fn drop(&mut self, this: Resource<OutboundConnection>) -> wasmtime::Result<()> {
        self.drop_redis_connection(this)
    }
}

/// `spin:redis/redis@3.0.0`: the same commands behind `async func`s. Each call borrows the
/// instance only between awaits, through the accessor.
mod v3_impl {
    use wasmtime::component::{Accessor, Resource};

    use super::{Error, OutboundConnection, RedisParameter, RedisResult, commands};
    use crate::host_api::InstanceState;
    use crate::host_api::Spin3;
    use crate::host_api::spin3_bindings::spin::redis::redis as v3;

    impl From<Error> for v3::Error {
        fn from(error: Error) -> Self {
            match error {
                Error::InvalidAddress => v3::Error::InvalidAddress,
                Error::TooManyConnections => v3::Error::TooManyConnections,
                Error::TypeError => v3::Error::TypeError,
                Error::Other(message) => v3::Error::Other(message),
            }
        }
    }

    impl From<v3::RedisParameter> for RedisParameter {
        fn from(parameter: v3::RedisParameter) -> Self {
            match parameter {
                v3::RedisParameter::Int64(value) => RedisParameter::Int64(value),
                v3::RedisParameter::Binary(bytes) => RedisParameter::Binary(bytes),
            }
        }
    }

    impl From<RedisResult> for v3::RedisResult {
        fn from(result: RedisResult) -> Self {
            match result {
                RedisResult::Nil => v3::RedisResult::Nil,
                RedisResult::Status(status) => v3::RedisResult::Status(status),
                RedisResult::Int64(value) => v3::RedisResult::Int64(value),
                RedisResult::Binary(bytes) => v3::RedisResult::Binary(bytes),
            }
        }
    }

    /// The guest's connection, cloned out of the instance.
    fn connection<T: Send>(
        accessor: &Accessor<T, Spin3>,
        this: &Resource<OutboundConnection>,
    ) -> Result<super::commands::GuestConnection, v3::Error> {
        accessor.with(|mut access| access.get().redis_connection(this).map_err(Into::into))
    }

    impl v3::Host for InstanceState {}

    impl v3::HostConnection for InstanceState {
        fn drop(&mut self, this: Resource<OutboundConnection>) -> wasmtime::Result<()> {
            self.drop_redis_connection(this)
        }
    }

    impl<T: Send> v3::HostConnectionWithStore<T> for Spin3 {
        async fn open(
            accessor: &Accessor<T, Self>,
            address: String,
        ) -> Result<Resource<OutboundConnection>, v3::Error> {
            let tls = accessor.with(|mut access| {
                let state = access.get();
                state.check_redis_open(&address)?;
                Ok::<_, Error>(state.redis_tls.clone())
            })?;
            let connection = commands::connect(&address, &tls).await?;
            Ok(accessor
                .with(|mut access| access.get().keep_redis_connection(connection, &address))?)
        }

        async fn publish(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            channel: String,
            payload: Vec<u8>,
        ) -> Result<(), v3::Error> {
            Ok(commands::publish(connection(accessor, &this)?, channel, payload).await?)
        }

        async fn get(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
        ) -> Result<Option<Vec<u8>>, v3::Error> {
            Ok(commands::get(connection(accessor, &this)?, key).await?)
        }

        async fn set(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
            value: Vec<u8>,
        ) -> Result<(), v3::Error> {
            Ok(commands::set(connection(accessor, &this)?, key, value).await?)
        }

        async fn incr(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
        ) -> Result<i64, v3::Error> {
            Ok(commands::incr(connection(accessor, &this)?, key).await?)
        }

        async fn del(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            keys: Vec<String>,
        ) -> Result<u32, v3::Error> {
            Ok(commands::del(connection(accessor, &this)?, keys).await?)
        }

        async fn sadd(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
            values: Vec<String>,
        ) -> Result<u32, v3::Error> {
            Ok(commands::sadd(connection(accessor, &this)?, key, values).await?)
        }

        async fn smembers(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
        ) -> Result<Vec<String>, v3::Error> {
            Ok(commands::smembers(connection(accessor, &this)?, key).await?)
        }

        async fn srem(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            key: String,
            values: Vec<String>,
        ) -> Result<u32, v3::Error> {
            Ok(commands::srem(connection(accessor, &this)?, key, values).await?)
        }

        async fn execute(
            accessor: &Accessor<T, Self>,
            this: Resource<OutboundConnection>,
            command: String,
            arguments: Vec<v3::RedisParameter>,
        ) -> Result<Vec<v3::RedisResult>, v3::Error> {
            let arguments = arguments.into_iter().map(Into::into).collect();
            let results =
                commands::execute(connection(accessor, &this)?, command, arguments).await?;
            Ok(results.into_iter().map(Into::into).collect())
        }
    }
}

/// Spin's reading of a reply: arrays flattened into a list of scalars.
fn flatten(value: redis::Value, out: &mut Vec<RedisResult>) -> Result<(), Error> {
    match value {
        redis::Value::Nil => out.push(RedisResult::Nil),
        redis::Value::Int(number) => out.push(RedisResult::Int64(number)),
        redis::Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes)),
        redis::Value::SimpleString(status) => out.push(RedisResult::Status(status)),
        redis::Value::Okay => out.push(RedisResult::Status("OK".to_owned())),
        redis::Value::Array(values) | redis::Value::Set(values) => {
            for value in values {
                flatten(value, out)?;
            }
        }
        other => return Err(Error::Other(format!("unsupported Redis reply: {other:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::commands::command_name;

    #[test]
    fn a_span_is_named_by_the_command_only_when_it_reads_as_one() {
        assert_eq!(command_name("xadd"), "XADD");
        assert_eq!(command_name("JSON.SET"), "JSON.SET");
        assert_eq!(command_name("GET secret"), "COMMAND");
        assert_eq!(command_name(&"A".repeat(33)), "COMMAND");
        assert_eq!(command_name(""), "COMMAND");
    }
}
