//! `fermyon:spin/redis@2.0.0`: outbound Redis for guests.
//!
//! A connection may be opened only to an address the component's `allowed_outbound_hosts`
//! allows; anything else gets `error::invalid-address`, and the host logs which host it refused.
//! Connections live in the instance's resource table, so they close when the instance ends.

use wasmtime::component::Resource;

use crate::allowed_hosts::{Address, redact};
use crate::engine::InstanceState;
use crate::host_api::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};

/// Connections one instance may hold open at once.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;

/// An open outbound connection, held in the instance's resource table.
pub struct OutboundConnection {
    connection: redis::aio::MultiplexedConnection,
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
    /// A handle on a guest's connection; the multiplexed connection is cheap to clone, so no
    /// borrow of the table is held across an await.
    fn connection(
        &self,
        resource: &Resource<OutboundConnection>,
    ) -> Result<redis::aio::MultiplexedConnection, Error> {
        self.table
            .get(resource)
            .map(|entry| entry.connection.clone())
            .map_err(other)
    }
}

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn open(&mut self, address: String) -> Result<Resource<OutboundConnection>, Error> {
        let parsed = Address::parse(&address).map_err(|_| Error::InvalidAddress)?;
        if !self.allowed_hosts.allows(&parsed) {
            tracing::warn!(
                component = %self.component_id,
                host = %parsed,
                "outbound Redis connection refused: {} is not in the component's allowed_outbound_hosts",
                redact(&address)
            );
            return Err(Error::InvalidAddress);
        }
        if self.open_redis_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(Error::TooManyConnections);
        }
        let client = redis::Client::open(address.as_str()).map_err(|_| Error::InvalidAddress)?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(from_redis)?;
        let resource = self
            .table
            .push(OutboundConnection { connection })
            .map_err(other)?;
        self.open_redis_connections += 1;
        Ok(resource)
    }

    async fn publish(
        &mut self,
        this: Resource<OutboundConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::publish::<_, _, ()>(&mut connection, channel, payload)
            .await
            .map_err(from_redis)
    }

    async fn get(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::get(&mut connection, key)
            .await
            .map_err(from_redis)
    }

    async fn set(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::set(&mut connection, key, value)
            .await
            .map_err(from_redis)
    }

    async fn incr(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<i64, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::incr(&mut connection, key, 1)
            .await
            .map_err(from_redis)
    }

    async fn del(
        &mut self,
        this: Resource<OutboundConnection>,
        keys: Vec<String>,
    ) -> Result<u32, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::del(&mut connection, keys)
            .await
            .map_err(from_redis)
    }

    async fn sadd(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::sadd(&mut connection, key, values)
            .await
            .map_err(from_redis)
    }

    async fn smembers(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::smembers(&mut connection, key)
            .await
            .map_err(from_redis)
    }

    async fn srem(
        &mut self,
        this: Resource<OutboundConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut connection = self.connection(&this)?;
        redis::AsyncCommands::srem(&mut connection, key, values)
            .await
            .map_err(from_redis)
    }

    async fn execute(
        &mut self,
        this: Resource<OutboundConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let mut connection = self.connection(&this)?;
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(value) => cmd.arg(value),
                RedisParameter::Binary(bytes) => cmd.arg(bytes),
            };
        }
        let value: redis::Value = cmd.query_async(&mut connection).await.map_err(from_redis)?;
        let mut results = Vec::new();
        flatten(value, &mut results)?;
        Ok(results)
    }

    async fn drop(&mut self, this: Resource<OutboundConnection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.open_redis_connections = self.open_redis_connections.saturating_sub(1);
        Ok(())
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
