//! `fermyon:spin/key-value@2.0.0`, stored the way Spin stores it: by default a SQLite file
//! (`.spin/sqlite_key_value.db`) with one `spin_key_value` table keyed by (store, key); with
//! `type = "redis"` in the runtime config, a Redis database where each key is a plain Redis
//! string (`GET`/`SET`/`DEL`/`EXISTS`/`KEYS *`, as Spin's `key-value-redis` does), so a store can
//! move between Spin and this host, and every process naming the same Redis shares it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::FromRedisValue;
use rusqlite::OptionalExtension as _;
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::bindings::key_value::{self, Error};
use crate::runtime_config::KeyValueLocation;
use crate::sqlite_file::SqliteFile;
use crate::state::RequestState;

/// A store a guest has opened: the resource behind `key-value.store`.
pub struct OpenStore {
    store: Arc<KeyValueStore>,
}

pub struct KeyValueStore {
    label: String,
    backend: Backend,
}

enum Backend {
    File(SqliteFile),
    Redis(RedisStore),
}

/// A Redis-backed store: one multiplexed connection, made on first use (as Spin does) and made
/// again after Redis dropped it.
struct RedisStore {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl RedisStore {
    async fn run<T: FromRedisValue>(&self, command: redis::Cmd) -> Result<T, Error> {
        let mut connection = {
            let mut slot = self.connection.lock().await;
            match &*slot {
                Some(connection) => connection.clone(),
                None => {
                    let connection = self
                        .client
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(other)?;
                    *slot = Some(connection.clone());
                    connection
                }
            }
        };
        let result = command.query_async(&mut connection).await;
        if let Err(e) = &result {
            if e.is_unrecoverable_error() {
                tracing::warn!(error = %e, "key-value Redis connection lost; the next call reconnects");
                *self.connection.lock().await = None;
            }
        }
        result.map_err(other)
    }
}

impl KeyValueStore {
    async fn open(label: &str, location: KeyValueLocation) -> anyhow::Result<Self> {
        let backend = match location {
            KeyValueLocation::File(path) => Backend::File(Self::open_file(&path).await?),
            KeyValueLocation::Redis(url) => Backend::Redis(RedisStore {
                client: redis::Client::open(url.as_str()).map_err(|e| {
                    anyhow::anyhow!("key-value store `{label}`: Invalid Redis URL: {e}")
                })?,
                connection: Mutex::new(None),
            }),
        };
        Ok(Self {
            label: label.to_string(),
            backend,
        })
    }

    async fn open_file(path: &Path) -> anyhow::Result<SqliteFile> {
        let file = SqliteFile::open(path)?;
        file.run(|conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS spin_key_value (
                    store TEXT NOT NULL,
                    key   TEXT NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (store, key)
                )",
            )
        })
        .await
        .map_err(anyhow::Error::msg)??;
        Ok(file)
    }

    /// Runs one query of a file-backed store for this store's label; every failure is the
    /// guest-visible `other`.
    async fn query<T, F>(&self, file: &SqliteFile, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    {
        let label = self.label.clone();
        file.run(move |conn| f(conn, &label).map_err(other))
            .await
            .map_err(other)?
    }

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        match &self.backend {
            Backend::File(file) => {
                self.query(file, move |conn, label| {
                    conn.query_row(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        (label, &key),
                        |row| row.get::<_, Vec<u8>>(0),
                    )
                    .optional()
                })
                .await
            }
            Backend::Redis(redis) => redis.run(redis::cmd("GET").arg(key).clone()).await,
        }
    }

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        match &self.backend {
            Backend::File(file) => {
                self.query(file, move |conn, label| {
                    conn.execute(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                        (label, &key, &value),
                    )
                    .map(|_| ())
                })
                .await
            }
            Backend::Redis(redis) => {
                redis
                    .run(redis::cmd("SET").arg(key).arg(value).clone())
                    .await
            }
        }
    }

    async fn delete(&self, key: String) -> Result<(), Error> {
        match &self.backend {
            Backend::File(file) => {
                self.query(file, move |conn, label| {
                    conn.execute(
                        "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        (label, &key),
                    )
                    .map(|_| ())
                })
                .await
            }
            Backend::Redis(redis) => redis
                .run::<i64>(redis::cmd("DEL").arg(key).clone())
                .await
                .map(|_| ()),
        }
    }

    async fn exists(&self, key: String) -> Result<bool, Error> {
        match &self.backend {
            Backend::File(file) => {
                self.query(file, move |conn, label| {
                    conn.query_row(
                        "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                        (label, &key),
                        |row| row.get::<_, bool>(0),
                    )
                })
                .await
            }
            Backend::Redis(redis) => redis.run(redis::cmd("EXISTS").arg(key).clone()).await,
        }
    }

    async fn get_keys(&self) -> Result<Vec<String>, Error> {
        match &self.backend {
            Backend::File(file) => {
                self.query(file, |conn, label| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key",
                    )?;
                    let keys = stmt.query_map([label], |row| row.get::<_, String>(0))?;
                    keys.collect()
                })
                .await
            }
            Backend::Redis(redis) => {
                let mut keys: Vec<String> = redis.run(redis::cmd("KEYS").arg("*").clone()).await?;
                keys.sort();
                Ok(keys)
            }
        }
    }
}

/// Every key-value store the app can open, by label.
#[derive(Default)]
pub struct KeyValueStores {
    stores: HashMap<String, Arc<KeyValueStore>>,
}

impl KeyValueStores {
    pub async fn insert(&mut self, label: &str, location: KeyValueLocation) -> anyhow::Result<()> {
        let store = KeyValueStore::open(label, location).await?;
        self.stores.insert(label.to_string(), Arc::new(store));
        Ok(())
    }

    pub fn contains(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }

    fn get(&self, label: &str) -> Option<Arc<KeyValueStore>> {
        self.stores.get(label).cloned()
    }
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl RequestState {
    fn open_store(&self, store: &Resource<OpenStore>) -> wasmtime::Result<Arc<KeyValueStore>> {
        Ok(self.table.get(store)?.store.clone())
    }
}

impl key_value::Host for RequestState {}

impl key_value::HostStore for RequestState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        // Like Spin: a label the component does not list is access-denied, whether or not
        // such a store exists.
        if !self.component.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(store) = self.services.key_value.get(&label) else {
            return Ok(Err(Error::NoSuchStore));
        };
        Ok(Ok(self.table.push(OpenStore { store })?))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let result = self.open_store(&store)?.get(key).await;
        crate::metrics::METRICS.key_value("get", result.is_ok());
        Ok(result)
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let result = self.open_store(&store)?.set(key, value).await;
        crate::metrics::METRICS.key_value("set", result.is_ok());
        Ok(result)
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let result = self.open_store(&store)?.delete(key).await;
        crate::metrics::METRICS.key_value("delete", result.is_ok());
        Ok(result)
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let result = self.open_store(&store)?.exists(key).await;
        crate::metrics::METRICS.key_value("exists", result.is_ok());
        Ok(result)
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let result = self.open_store(&store)?.get_keys().await;
        crate::metrics::METRICS.key_value("get_keys", result.is_ok());
        Ok(result)
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
