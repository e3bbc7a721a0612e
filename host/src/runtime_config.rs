//! The subset of Spin's runtime config file (`--runtime-config-file`) this host understands:
//! `[key_value_store.<label>]` with `type = "spin"` and a `path`, or `type = "redis"` and a `url`
//! (Spin's Redis-backed store, shared by every process that names the same Redis), and
//! `[sqlite_database.<label>]` with `type = "spin"` and a `path`. Other types are refused with
//! Spin's words.
//! A relative key-value `path` is relative to the runtime config file, a relative SQLite `path`
//! to the working directory, as in Spin 4.0.2 (`crates/runtime-config`: `key_value_config_resolver`
//! gets the file's directory, `sqlite_config_resolver` the current directory).
//! Without an entry, the `default` label of each lives in the state directory under the file
//! name Spin uses; any other label must be configured, as in Spin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreEntry>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, StoreEntry>,
}

/// One store's table. Its fields depend on its type, so other keys are collected and refused
/// once the type is known to be one this host implements (an unknown type is reported first).
#[derive(Debug, Deserialize)]
struct StoreEntry {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
    /// `type = "redis"`: the Redis URL (`redis://[user:password@]host:port[/db]`).
    url: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

impl StoreEntry {
    /// Refuses any field the type does not take.
    fn only(&self, table: &str, label: &str, allowed: &[&str]) -> anyhow::Result<()> {
        let present = [("path", self.path.is_some()), ("url", self.url.is_some())];
        let unknown = present
            .iter()
            .filter(|(name, set)| *set && !allowed.contains(name))
            .map(|(name, _)| name.to_string())
            .chain(self.other.keys().cloned())
            .next();
        match unknown {
            Some(field) => bail!("runtime config [{table}.{label}]: unknown field `{field}`"),
            None => Ok(()),
        }
    }
}

/// Where a key-value store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyValueLocation {
    /// `type = "spin"`: a SQLite file, Spin's layout.
    File(PathBuf),
    /// `type = "redis"`: a Redis database, Spin's layout (each key as a plain Redis string).
    Redis(String),
}

pub struct RuntimeConfig {
    key_value: BTreeMap<String, KeyValueLocation>,
    sqlite: BTreeMap<String, PathBuf>,
}

impl RuntimeConfig {
    pub fn load(file: Option<&Path>, state_dir: &Path) -> anyhow::Result<Self> {
        let mut key_value = BTreeMap::from([(
            "default".to_string(),
            KeyValueLocation::File(state_dir.join("sqlite_key_value.db")),
        )]);
        let mut sqlite = BTreeMap::from([("default".to_string(), state_dir.join("sqlite_db.db"))]);
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading runtime config {}", file.display()))?;
            let parsed: File = toml::from_str(&text)
                .with_context(|| format!("parsing runtime config {}", file.display()))?;
            // As in Spin: key-value paths relative to the runtime config file, SQLite paths
            // relative to the working directory.
            let file_dir = file.parent().unwrap_or(Path::new("."));
            let working_dir = std::env::current_dir().context("reading the working directory")?;
            for (label, entry) in parsed.key_value_store {
                match entry.kind.as_str() {
                    "spin" => entry.only("key_value_store", &label, &["path"])?,
                    "redis" => entry.only("key_value_store", &label, &["url"])?,
                    _ => {}
                }
                let location = match entry.kind.as_str() {
                    "spin" => {
                        let Some(path) = entry.path else {
                            bail!("runtime config [key_value_store.{label}]: `path` is required");
                        };
                        KeyValueLocation::File(file_dir.join(path))
                    }
                    "redis" => {
                        let Some(url) = entry.url else {
                            bail!("runtime config [key_value_store.{label}]: missing field `url`");
                        };
                        redis::Client::open(url.as_str()).with_context(|| {
                            format!("runtime config [key_value_store.{label}]: Invalid Redis URL")
                        })?;
                        KeyValueLocation::Redis(url)
                    }
                    // Spin's words (spin-factor-key-value `RuntimeConfigResolver`).
                    other => bail!(
                        "runtime config [key_value_store.{label}]: the store type '{other}' was not registered with the config resolver"
                    ),
                };
                key_value.insert(label, location);
            }
            for (label, entry) in parsed.sqlite_database {
                match entry.kind.as_str() {
                    "spin" => {}
                    "libsql" => bail!(
                        "runtime config [sqlite_database.{label}]: type \"libsql\" is not supported by this host (only \"spin\")"
                    ),
                    // Spin's words (spin-sqlite `RuntimeConfigResolver`).
                    other => bail!(
                        "runtime config [sqlite_database.{label}]: Unknown database kind: {other}"
                    ),
                }
                entry.only("sqlite_database", &label, &["path"])?;
                let Some(path) = entry.path else {
                    bail!("runtime config [sqlite_database.{label}]: `path` is required");
                };
                // As in Spin: relative to the working directory, not to this file.
                sqlite.insert(label, working_dir.join(path));
            }
        }
        Ok(Self { key_value, sqlite })
    }

    pub fn key_value_path(&self, label: &str) -> Option<KeyValueLocation> {
        self.key_value.get(label).cloned()
    }

    pub fn sqlite_path(&self, label: &str) -> Option<PathBuf> {
        self.sqlite.get(label).cloned()
    }
}
