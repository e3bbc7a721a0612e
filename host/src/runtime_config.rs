//! The subset of Spin's runtime config file (`--runtime-config-file`) this host understands:
//! `[key_value_store.<label>]` and `[sqlite_database.<label>]` with `type = "spin"` and a `path`.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEntry {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
}

pub struct RuntimeConfig {
    key_value: BTreeMap<String, PathBuf>,
    sqlite: BTreeMap<String, PathBuf>,
}

impl RuntimeConfig {
    pub fn load(file: Option<&Path>, state_dir: &Path) -> anyhow::Result<Self> {
        let mut key_value =
            BTreeMap::from([("default".to_string(), state_dir.join("sqlite_key_value.db"))]);
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
            for (table, entries, target, base) in [
                (
                    "key_value_store",
                    parsed.key_value_store,
                    &mut key_value,
                    file_dir,
                ),
                (
                    "sqlite_database",
                    parsed.sqlite_database,
                    &mut sqlite,
                    working_dir.as_path(),
                ),
            ] {
                for (label, entry) in entries {
                    if entry.kind != "spin" {
                        bail!(
                            "runtime config [{table}.{label}]: type \"{}\" is not supported by this host (only \"spin\")",
                            entry.kind
                        );
                    }
                    let Some(path) = entry.path else {
                        bail!("runtime config [{table}.{label}]: `path` is required");
                    };
                    target.insert(label, base.join(path));
                }
            }
        }
        Ok(Self { key_value, sqlite })
    }

    pub fn key_value_path(&self, label: &str) -> Option<PathBuf> {
        self.key_value.get(label).cloned()
    }

    pub fn sqlite_path(&self, label: &str) -> Option<PathBuf> {
        self.sqlite.get(label).cloned()
    }
}
