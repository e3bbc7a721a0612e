//! The v2 schema (Spin's `schema/v2.rs`), as far as this host needs it. Tables are
//! `deny_unknown_fields` like Spin's, so a misspelt key is an error here exactly when it is
//! one for `spin up`. Fields Spin accepts but that do not affect running the app are parsed
//! (so their types are checked) and dropped.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::ids::{KebabId, Label, LowerSnakeId};
use super::FilesMount;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    #[allow(dead_code)] // checked by the version probe
    pub(super) spin_manifest_version: toml::Value,
    pub(super) application: RawApplication,
    #[serde(default)]
    pub(super) variables: BTreeMap<LowerSnakeId, RawVariable>,
    // Required, as in Spin's schema.
    pub(super) trigger: RawTriggers,
    #[serde(default)]
    pub(super) component: BTreeMap<KebabId, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // accepted for compatibility, not used
pub(super) struct RawApplication {
    pub(super) name: String,
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) authors: Vec<String>,
    #[serde(default)]
    pub(super) targets: Vec<toml::Value>,
    #[serde(default)]
    pub(super) trigger: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub(super) tool: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariable {
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) required: bool,
    #[serde(default)]
    pub(super) default: Option<String>,
    #[serde(default)]
    pub(super) secret: bool,
}

/// `[trigger]`: trigger type to its list of triggers. Only `http` is kept; other types are
/// recorded so they can be reported. (A derived `flatten` would lose TOML error positions.)
#[derive(Default)]
pub(super) struct RawTriggers {
    pub(super) http: Vec<RawHttpTrigger>,
    pub(super) other_types: Vec<String>,
}

impl<'de> Deserialize<'de> for RawTriggers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TriggersVisitor;
        impl<'de> Visitor<'de> for TriggersVisitor {
            type Value = RawTriggers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of trigger types, e.g. [[trigger.http]]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTriggers, A::Error> {
                let mut triggers = RawTriggers::default();
                while let Some(kind) = map.next_key::<String>()? {
                    if kind == "http" {
                        triggers.http = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        triggers.other_types.push(kind);
                    }
                }
                Ok(triggers)
            }
        }
        deserializer.deserialize_map(TriggersVisitor)
    }
}

/// An HTTP trigger: Spin's generic trigger fields (`id`, `component`, `components`,
/// `dependencies`) plus `HttpTriggerConfig` (`route`, `static_response`, `executor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpTrigger {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) component: Option<ComponentSpec>,
    #[serde(default)]
    pub(super) components: toml::Table,
    #[serde(default)]
    pub(super) dependencies: toml::Table,
    pub(super) route: RawRoute,
    #[serde(default)]
    pub(super) static_response: Option<toml::Value>,
    #[serde(default)]
    pub(super) executor: Option<toml::Table>,
}

/// `component = "id"` or `component = { source = ... }`.
#[derive(Deserialize)]
#[serde(try_from = "toml::Value")]
pub(super) enum ComponentSpec {
    Reference(KebabId),
    Inline(Box<RawComponent>),
}

impl TryFrom<toml::Value> for ComponentSpec {
    type Error = String;
    fn try_from(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(id) => KebabId::try_from(id).map(Self::Reference),
            other => RawComponent::deserialize(other)
                .map(|c| Self::Inline(Box::new(c)))
                .map_err(|e| e.message().to_owned()),
        }
    }
}

/// `route = "/path"` or `route = { private = true }`.
#[derive(Deserialize)]
#[serde(try_from = "toml::Value")]
pub(super) enum RawRoute {
    Route(String),
    Private { private: bool },
}

impl TryFrom<toml::Value> for RawRoute {
    type Error = String;
    fn try_from(value: toml::Value) -> Result<Self, String> {
        const EXPECTED: &str = "route must be a string pattern or '{ private = true }'";
        match value {
            toml::Value::String(route) => Ok(Self::Route(route)),
            toml::Value::Table(table) => match table.get("private") {
                Some(toml::Value::Boolean(private)) if table.len() == 1 => {
                    Ok(Self::Private { private: *private })
                }
                _ => Err(EXPECTED.to_owned()),
            },
            _ => Err(EXPECTED.to_owned()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // several fields are accepted for compatibility only
pub(super) struct RawComponent {
    pub(super) source: toml::Value,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) variables: BTreeMap<LowerSnakeId, String>,
    #[serde(default)]
    pub(super) environment: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) files: Vec<FilesMount>,
    #[serde(default)]
    pub(super) exclude_files: Vec<String>,
    #[serde(default)]
    pub(super) allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub(super) allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub(super) key_value_stores: Vec<Label>,
    #[serde(default)]
    pub(super) sqlite_databases: Vec<Label>,
    #[serde(default)]
    pub(super) ai_models: Vec<String>,
    #[serde(default)]
    pub(super) targets: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub(super) build: Option<RawBuild>,
    #[serde(default)]
    pub(super) tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub(super) dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub(super) dependencies: toml::Table,
    #[serde(default)]
    pub(super) profile: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `spin build` settings: irrelevant when running
pub(super) struct RawBuild {
    pub(super) command: toml::Value,
    #[serde(default)]
    pub(super) workdir: Option<String>,
    #[serde(default)]
    pub(super) watch: Vec<String>,
}
