//! `fermyon:spin/redis@2.0.0`: outbound Redis through the `redis` crate, subject to the
//! component's `allowed_outbound_hosts`, as Spin does it.
//!
//! Multiplexed connections are kept per address: a request that opens `redis://127.0.0.1:6390`
//! reuses the same TCP connection as the one before it, until a command finds it broken (Redis
//! restarted, say); then it leaves the pool and the next `open` connects again.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, Value};
use streamgate_spin_app::allowed_hosts::parse_outbound_url;
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::bindings::redis::{self as wit, Error, RedisParameter, RedisResult};
use crate::outbound_http::log_denied;
use crate::state::RequestState;

type Pool = Arc<Mutex<HashMap<String, MultiplexedConnection>>>;

/// The resource behind `redis.connection`: a pooled connection, and how to take it out of the
/// pool when it breaks.
#[derive(Clone)]
pub struct OpenConnection {
    conn: MultiplexedConnection,
    address: String,
    pool: Pool,
}

impl OpenConnection {
    /// Runs one command. A connection that Redis dropped (a restart, a failover, its user
    /// deleted) never comes back, so it leaves the pool: the next `open` of the address connects
    /// afresh, as Spin, which connects on every `open`, would.
    async fn run<T: FromRedisValue>(mut self, command: &redis::Cmd) -> redis::RedisResult<T> {
        let result = command.query_async(&mut self.conn).await;
        if let Err(e) = &result {
            if e.is_unrecoverable_error() {
                tracing::warn!(error = %e, "outbound Redis connection lost; the next open reconnects");
                self.pool.lock().await.remove(&self.address);
            }
        }
        result
    }
}

#[derive(Default)]
pub struct RedisClients {
    connections: Pool,
}

impl RedisClients {
    async fn connect(&self, address: &str) -> Result<OpenConnection, Error> {
        let mut connections = self.connections.lock().await;
        let conn = match connections.get(address) {
            Some(conn) => conn.clone(),
            None => {
                let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
                let conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| Error::Other(e.to_string()))?;
                connections.insert(address.to_string(), conn.clone());
                conn
            }
        };
        Ok(OpenConnection {
            conn,
            address: address.to_string(),
            pool: self.connections.clone(),
        })
    }
}

fn other(e: redis::RedisError) -> Error {
    match e.kind() {
        redis::ErrorKind::TypeError => Error::TypeError,
        _ => Error::Other(e.to_string()),
    }
}

impl RequestState {
    fn redis(&self, connection: &Resource<OpenConnection>) -> wasmtime::Result<OpenConnection> {
        Ok(self.table.get(connection)?.clone())
    }
}

/// One command on `conn`; a Redis error is the WIT `error`. (Takes the connection, not the
/// request state, which must not be held across the await.)
async fn query<T: FromRedisValue>(
    conn: OpenConnection,
    command: &redis::Cmd,
) -> wasmtime::Result<Result<T, Error>> {
    Ok(conn.run(command).await.map_err(other))
}

/// `execute`'s reply flattened the way Spin flattens it: arrays and sets are spliced in,
/// maps and pub/sub frames are a type error.
struct Flattened(Vec<RedisResult>);

impl FromRedisValue for Flattened {
    fn from_redis_value(value: &Value) -> redis::RedisResult<Self> {
        fn append(out: &mut Vec<RedisResult>, value: &Value) -> redis::RedisResult<()> {
            let unsupported = |what: &str| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::TypeError,
                    "Could not convert Redis response",
                    format!("Redis {what} type is not supported"),
                )))
            };
            match value {
                Value::Nil => out.push(RedisResult::Nil),
                Value::Int(v) => out.push(RedisResult::Int64(*v)),
                Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes.clone())),
                Value::SimpleString(s) => out.push(RedisResult::Status(s.clone())),
                Value::Okay => out.push(RedisResult::Status("OK".to_string())),
                Value::Double(v) => out.push(RedisResult::Binary(v.to_string().into_bytes())),
                Value::Boolean(v) => out.push(RedisResult::Int64(i64::from(*v))),
                Value::BigNumber(v) => out.push(RedisResult::Binary(v.to_string().into_bytes())),
                Value::Array(items) | Value::Set(items) => {
                    for item in items {
                        append(out, item)?;
                    }
                }
                Value::Map(_) => return unsupported("Map"),
                Value::Attribute { .. } => return unsupported("Attribute"),
                Value::VerbatimString { .. } => return unsupported("verbatim string"),
                Value::Push { .. } => return unsupported("Pub/Sub"),
                Value::ServerError(e) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::ResponseError,
                        "Server error",
                        format!("{e:?}"),
                    )))
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        append(&mut out, value)?;
        Ok(Flattened(out))
    }
}

impl wit::Host for RequestState {}

impl wit::HostConnection for RequestState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        // Spin's `check_url(address, "redis")`: the user and password are percent-encoded
        // before parsing and ignored by the check, so `redis://user:pass@host:port` is allowed
        // by a `redis://host:port` entry (an entry cannot carry a password).
        let Some(url) = parse_outbound_url(&address, "redis") else {
            return Ok(Err(Error::InvalidAddress));
        };
        if !self.component.allowed_hosts.allows(&url) {
            log_denied(&self.component.id, &url);
            return Ok(Err(Error::InvalidAddress));
        }
        match self.services.redis.connect(&address).await {
            Ok(conn) => Ok(Ok(self.table.push(conn)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn publish(
        &mut self,
        connection: Resource<OpenConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sent: redis::RedisResult<i64> = self
            .redis(&connection)?
            .run(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await;
        Ok(sent.map(|_| ()).map_err(other))
    }

    async fn get(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        query(self.redis(&connection)?, redis::cmd("GET").arg(key)).await
    }

    async fn set(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        query(
            self.redis(&connection)?,
            redis::cmd("SET").arg(key).arg(value),
        )
        .await
    }

    async fn incr(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        query(self.redis(&connection)?, redis::cmd("INCR").arg(key)).await
    }

    async fn del(
        &mut self,
        connection: Resource<OpenConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        query(self.redis(&connection)?, redis::cmd("DEL").arg(keys)).await
    }

    async fn sadd(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        query(
            self.redis(&connection)?,
            redis::cmd("SADD").arg(key).arg(values),
        )
        .await
    }

    async fn smembers(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        query(self.redis(&connection)?, redis::cmd("SMEMBERS").arg(key)).await
    }

    async fn srem(
        &mut self,
        connection: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        query(
            self.redis(&connection)?,
            redis::cmd("SREM").arg(key).arg(values),
        )
        .await
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let conn = self.redis(&connection)?;
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let reply: redis::RedisResult<Flattened> = conn.run(&cmd).await;
        Ok(reply.map(|f| f.0).map_err(other))
    }

    async fn drop(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
