//! Loading a Spin application manifest (`spin.toml`, `spin_manifest_version = 2`).
//!
//! This follows what `spin up` does between reading the file and starting the HTTP trigger:
//!
//! * `crates/manifest` (`lib.rs`, `schema/v2.rs`, `schema/common.rs`, spin-serde `id.rs`):
//!   version detection, the v2 schema with its `deny_unknown_fields` tables, and the ID rules
//!   (component IDs are kebab-case, variable names lower snake_case, store/database labels
//!   either). ID errors carry the TOML position of the offending key or value.
//! * `crates/manifest/src/normalize.rs`: generated trigger IDs and IDs for inline
//!   components (`component = { source = ... }`).
//! * `crates/loader/src/local.rs`: a variable must be `required` xor have a `default`;
//!   component sources resolve against the manifest directory; the deprecated
//!   `allowed_http_hosts` is folded into `allowed_outbound_hosts`
//!   (`crates/manifest/src/compat`).
//! * `crates/trigger-http` and `crates/http/src/config.rs`: the HTTP trigger config
//!   (`route`, `component`, `executor`, `static_response`), `{ private = true }` routes and the
//!   deprecated `[application.trigger.http] base`, which must be `/` or absent.
//!
//! The embedded host only runs local Wasm files and HTTP triggers through the `http`
//! executor, so remote/registry sources, other trigger types, trigger-level component
//! tables, `static_response` and the WAGI executor are reported as unsupported rather than
//! silently ignored.
//!
//! The files follow the layout of Spin's manifest crate: `schema` holds the raw v2 tables,
//! `ids` the identifier rules, `normalize` the generated IDs, `compat` the deprecated
//! `allowed_http_hosts`, and `validate` turns the schema into an [`AppManifest`].

mod compat;
mod error;
mod ids;
mod normalize;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::ManifestError;

/// A parsed and normalised Spin application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppManifest {
    /// `[application] name`.
    pub name: String,
    /// `[application] version` (empty when absent).
    pub version: String,
    /// `[application] description` (empty when absent).
    pub description: String,
    /// Directory of `spin.toml`; component sources are resolved against it.
    pub dir: PathBuf,
    /// Application variables from `[variables]`.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[application.trigger.http] base`. Spin rejects anything but `/`, so this is `/`.
    pub http_base: String,
    /// `[[trigger.http]]` entries in file order, with generated IDs and inline components
    /// replaced by references.
    pub http_triggers: Vec<HttpTrigger>,
    /// All components, keyed by ID, including the ones declared inline in triggers.
    pub components: BTreeMap<String, ComponentConfig>,
}

impl AppManifest {
    /// `(component id, route)` for every routable (non-private) HTTP trigger, in manifest
    /// order: the input `routing::Router::build` expects.
    pub fn http_routes(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.http_triggers.iter().filter_map(|t| match &t.route {
            HttpRoute::Route(route) => Some((t.component.clone(), route.clone())),
            HttpRoute::Private => None,
        })
    }
}

/// One entry of `[variables]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VariableDecl {
    /// Value used when no provider supplies one. Exactly one of `default` and `required`.
    pub default: Option<String>,
    /// A provider must supply a value.
    pub required: bool,
    /// The value is sensitive.
    pub secret: bool,
    /// Free-text description.
    pub description: Option<String>,
}

/// One `[[trigger.http]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTrigger {
    /// The trigger ID, as written or as Spin generates it.
    pub id: String,
    /// What requests reach the component.
    pub route: HttpRoute,
    /// The ID of the handling component (always present in [`AppManifest::components`]).
    pub component: String,
}

/// The `route` of an HTTP trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpRoute {
    /// A route pattern, exactly as written (e.g. `/api/...`).
    Route(String),
    /// `route = { private = true }`: reachable only through service chaining.
    Private,
}

/// A component, from `[component.<id>]` or inline in a trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentConfig {
    /// The component ID.
    pub id: String,
    /// `description` (empty when absent).
    pub description: String,
    /// The Wasm file: `source` resolved against [`AppManifest::dir`].
    pub source: PathBuf,
    /// `allowed_outbound_hosts` as written (templates unresolved), followed by the
    /// conversion of the deprecated `allowed_http_hosts`, as Spin does.
    pub allowed_outbound_hosts: Vec<String>,
    /// `key_value_stores` labels.
    pub key_value_stores: Vec<String>,
    /// `sqlite_databases` labels.
    pub sqlite_databases: Vec<String>,
    /// `ai_models`.
    pub ai_models: Vec<String>,
    /// Component variables: name to raw template.
    pub variables: BTreeMap<String, String>,
    /// `environment`.
    pub environment: BTreeMap<String, String>,
    /// `files`, as written (relative to [`AppManifest::dir`]).
    pub files: Vec<FilesMount>,
    /// `exclude_files` glob patterns.
    pub exclude_files: Vec<String>,
}

/// One entry of a component's `files`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum FilesMount {
    /// A glob pattern or path, e.g. `"assets/**/*.png"`.
    Pattern(String),
    /// `{ source = "dir", destination = "/" }`.
    Placement {
        /// Host directory, relative to the manifest directory.
        source: String,
        /// Absolute guest path.
        destination: String,
    },
}

/// Reads and parses the manifest at `path`; component sources resolve against its directory.
pub fn load(path: &Path) -> Result<AppManifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    parse(&text, &dir).map_err(|e| ManifestError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// Parses manifest text; `dir` is the directory component sources are relative to.
pub fn parse(text: &str, dir: &Path) -> Result<AppManifest, ManifestError> {
    // Like Spin's `ManifestVersion::detect`: probe the version before applying a schema so
    // that a wrong version gets a version error rather than a pile of schema errors.
    #[derive(Deserialize)]
    struct VersionProbe {
        #[serde(alias = "spin_version")]
        spin_manifest_version: toml::Value,
    }
    let probe: VersionProbe = toml::from_str(text)?;
    match &probe.spin_manifest_version {
        toml::Value::Integer(2) => {}
        toml::Value::String(v) if v == "1" => return Err(ManifestError::UnsupportedV1),
        other => return Err(ManifestError::InvalidVersion(other.to_string())),
    }

    let raw: schema::RawManifest = toml::from_str(text)?;
    validate::build(raw, dir)
}
