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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

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

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("Failed to read Spin app manifest from {}: {source}", path.display())]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest file failed to parse or validate; wraps the reason with the file name.
    #[error("Failed to load Spin app from {}: {source}", path.display())]
    InFile {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<ManifestError>,
    },
    /// TOML syntax or schema error (position included).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// `spin_manifest_version` is neither `"1"` nor `2`.
    #[error("invalid manifest version: {0}")]
    InvalidVersion(String),
    /// `spin_manifest_version = "1"`.
    #[error(
        "spin_manifest_version = \"1\" manifests are not supported by this host; \
         convert the manifest to version 2 (`spin doctor` can do this)"
    )]
    UnsupportedV1,
    /// An application variable is invalid.
    #[error("invalid variable definition for `{name}`: {reason}")]
    InvalidVariable {
        /// The variable name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `[application.trigger.http]` is invalid.
    #[error("invalid [application.trigger.http]: {0}")]
    InvalidHttpApplicationConfig(String),
    /// A `[[trigger.http]]` entry is invalid or unsupported.
    #[error("invalid `http` trigger config for trigger `{trigger}`: {reason}")]
    InvalidTrigger {
        /// The trigger ID (possibly generated).
        trigger: String,
        /// What is wrong.
        reason: String,
    },
    /// A trigger names a component that is not defined.
    #[error(
        "trigger `{trigger}` uses component `{component}`, which is not defined \
         (there is no [component.{component}] table)"
    )]
    MissingComponent {
        /// The trigger ID (possibly generated).
        trigger: String,
        /// The missing component ID.
        component: String,
    },
    /// A component is invalid or uses an unsupported feature.
    #[error("invalid component `{component}`: {reason}")]
    InvalidComponent {
        /// The component ID.
        component: String,
        /// What is wrong.
        reason: String,
    },
    /// A trigger type other than `http`.
    #[error(
        "trigger type `{0}` is not supported by this host: only [[trigger.http]] triggers can run"
    )]
    UnsupportedTriggerType(String),
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

    let raw: RawManifest = toml::from_str(text)?;
    build(raw, dir)
}

// ---------------------------------------------------------------------------------------
// Identifiers (spin-serde `id.rs`): one or more words separated by a delimiter; each word
// starts with an ASCII letter, is alphanumeric, and is all lowercase or all UPPERCASE.

/// Checks an ID; `lower_only` additionally rejects UPPERCASE words.
fn check_id(id: &str, delim: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    // Using the other common separator is by far the most likely mistake: say so directly.
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for word in id.split(delim) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower_only && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// A component ID (kebab-case). Deserialising validates, so TOML errors point at the key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
struct KebabId(String);

impl TryFrom<String> for KebabId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        check_id(&id, '-', false).map(|()| Self(id))
    }
}

/// A variable name (lower snake_case).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
struct LowerSnakeId(String);

impl TryFrom<String> for LowerSnakeId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        check_id(&id, '_', true).map(|()| Self(id))
    }
}

/// A key-value store or SQLite database label: kebab-case or snake_case.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
struct Label(String);

impl TryFrom<String> for Label {
    type Error = String;
    fn try_from(label: String) -> Result<Self, String> {
        if check_id(&label, '-', false).is_ok() || check_id(&label, '_', false).is_ok() {
            Ok(Self(label))
        } else {
            Err(format!("expected kebab-case or snake_case; got {label:?}"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The v2 schema, as far as this host needs it. Tables are `deny_unknown_fields` like Spin's,
// so a misspelt key is an error here exactly when it is one for `spin up`. Fields Spin
// accepts but that do not affect running the app are parsed (so their types are checked)
// and dropped.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[allow(dead_code)] // checked by the version probe
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<LowerSnakeId, RawVariable>,
    // Required, as in Spin's schema.
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<KebabId, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // accepted for compatibility, not used
struct RawApplication {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    targets: Vec<toml::Value>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

/// `[trigger]`: trigger type to its list of triggers. Only `http` is kept; other types are
/// recorded so they can be reported. (A derived `flatten` would lose TOML error positions.)
#[derive(Default)]
struct RawTriggers {
    http: Vec<RawHttpTrigger>,
    other_types: Vec<String>,
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
struct RawHttpTrigger {
    #[serde(default)]
    id: String,
    #[serde(default)]
    component: Option<ComponentSpec>,
    #[serde(default)]
    components: toml::Table,
    #[serde(default)]
    dependencies: toml::Table,
    route: RawRoute,
    #[serde(default)]
    static_response: Option<toml::Value>,
    #[serde(default)]
    executor: Option<toml::Table>,
}

/// `component = "id"` or `component = { source = ... }`.
#[derive(Deserialize)]
#[serde(try_from = "toml::Value")]
enum ComponentSpec {
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
enum RawRoute {
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
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    variables: BTreeMap<LowerSnakeId, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<FilesMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    allowed_http_hosts: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<Label>,
    #[serde(default)]
    sqlite_databases: Vec<Label>,
    #[serde(default)]
    ai_models: Vec<String>,
    #[serde(default)]
    targets: Option<Vec<toml::Value>>,
    #[serde(default)]
    build: Option<RawBuild>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    dependencies: toml::Table,
    #[serde(default)]
    profile: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `spin build` settings: irrelevant when running
struct RawBuild {
    command: toml::Value,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Validation and normalisation.

fn build(raw: RawManifest, dir: &Path) -> Result<AppManifest, ManifestError> {
    if let Some(kind) = raw.trigger.other_types.first() {
        return Err(ManifestError::UnsupportedTriggerType(kind.clone()));
    }

    let http_base = http_base(raw.application.trigger.get("http"))?;

    let mut variables = BTreeMap::new();
    for (LowerSnakeId(name), v) in raw.variables {
        // crates/loader `locked_variable`: exactly one of the two.
        if v.required == v.default.is_some() {
            return Err(ManifestError::InvalidVariable {
                name,
                reason: "must be `required` OR have a `default`".into(),
            });
        }
        variables.insert(
            name,
            VariableDecl {
                default: v.default,
                required: v.required,
                secret: v.secret,
                description: v.description,
            },
        );
    }

    let mut raw_components: BTreeMap<String, RawComponent> = raw
        .component
        .into_iter()
        .map(|(KebabId(id), c)| (id, c))
        .collect();

    let mut triggers = raw.trigger.http;
    assign_trigger_ids(&mut triggers);

    let mut http_triggers = Vec::with_capacity(triggers.len());
    for trigger in triggers {
        let id = trigger.id;
        let invalid = |reason: String| ManifestError::InvalidTrigger {
            trigger: id.clone(),
            reason,
        };
        if !trigger.components.is_empty() {
            return Err(invalid(
                "`components` is not supported by this host; use `component`".into(),
            ));
        }
        if !trigger.dependencies.is_empty() {
            return Err(invalid(
                "trigger `dependencies` are not supported by this host".into(),
            ));
        }
        if let Some(executor) = &trigger.executor {
            check_executor(executor).map_err(invalid)?;
        }
        // crates/http/src/config.rs `lookup_key`
        let component = match (trigger.component, trigger.static_response.is_some()) {
            (None, false) => {
                return Err(invalid(format!(
                    "Triggers must specify either component or static_response - {id} has neither"
                )))
            }
            (Some(_), true) => {
                return Err(invalid(format!(
                    "Triggers must specify either component or static_response - {id} has both"
                )))
            }
            (None, true) => {
                return Err(invalid(
                    "`static_response` is not supported by this host".into(),
                ))
            }
            (Some(ComponentSpec::Reference(KebabId(c))), false) => {
                if !raw_components.contains_key(&c) {
                    return Err(ManifestError::MissingComponent {
                        trigger: id.clone(),
                        component: c,
                    });
                }
                c
            }
            (Some(ComponentSpec::Inline(c)), false) => {
                let inline_id = inline_component_id(&id, &raw_components);
                raw_components.insert(inline_id.clone(), *c);
                inline_id
            }
        };
        let route = match trigger.route {
            RawRoute::Route(route) => HttpRoute::Route(route),
            RawRoute::Private { private: true } => HttpRoute::Private,
            // Spin's router rejects this when the trigger starts; same message.
            RawRoute::Private { private: false } => {
                return Err(invalid(format!(
                    "route must be a string pattern or '{{ private = true }}': \
                     '{component}' has {{ private = false }}"
                )))
            }
        };
        http_triggers.push(HttpTrigger {
            id,
            route,
            component,
        });
    }

    let components = raw_components
        .into_iter()
        .map(|(id, c)| {
            let config = component_config(&id, c, dir)?;
            Ok((id, config))
        })
        .collect::<Result<_, ManifestError>>()?;

    Ok(AppManifest {
        name: raw.application.name,
        version: raw.application.version,
        description: raw.application.description,
        dir: dir.to_owned(),
        variables,
        http_base,
        http_triggers,
        components,
    })
}

/// `[application.trigger.http]` may only contain `base`, and Spin's HTTP trigger refuses any
/// base but `/` ("The base must be prepended to each [[trigger.http]]'s 'route'").
fn http_base(table: Option<&toml::Table>) -> Result<String, ManifestError> {
    let invalid = ManifestError::InvalidHttpApplicationConfig;
    let Some(table) = table else {
        return Ok("/".into());
    };
    if let Some(key) = table.keys().find(|k| *k != "base") {
        return Err(invalid(format!("unknown field `{key}`, expected `base`")));
    }
    match table.get("base") {
        None => Ok("/".into()),
        Some(toml::Value::String(base)) if base == "/" => Ok("/".into()),
        Some(toml::Value::String(_)) => Err(invalid(
            "This application is using the deprecated trigger 'base' field. \
             The base must be prepended to each [[trigger.http]]'s 'route'."
                .into(),
        )),
        Some(_) => Err(invalid("`base` must be a string".into())),
    }
}

/// `executor = { type = "http" }` (alias `"spin"`) is the default; WAGI is not supported.
fn check_executor(executor: &toml::Table) -> Result<(), String> {
    match executor.get("type").and_then(toml::Value::as_str) {
        Some("http" | "spin") => match executor.keys().find(|k| *k != "type") {
            Some(key) => Err(format!("unknown field `{key}` in `executor`")),
            None => Ok(()),
        },
        Some("wagi") => Err("the WAGI executor is not supported by this host".into()),
        Some(other) => Err(format!(
            "unknown executor type `{other}`, expected `http` or `wagi`"
        )),
        None => Err("`executor` must have a `type`".into()),
    }
}

/// normalize.rs `normalize_trigger_ids` (for the `http` type): triggers without an `id` get
/// `<component>-http-trigger` when they reference a component and that ID is free, else
/// the first free `http-trigger<N>` (one counter across the type's triggers).
fn assign_trigger_ids(triggers: &mut [RawHttpTrigger]) {
    // Includes "" for unnamed triggers, exactly as Spin collects it.
    let mut taken: HashSet<String> = triggers.iter().map(|t| t.id.clone()).collect();
    let mut counter = 1;
    for trigger in triggers.iter_mut().filter(|t| t.id.is_empty()) {
        if let Some(ComponentSpec::Reference(KebabId(component))) = &trigger.component {
            let candidate = format!("{component}-http-trigger");
            if taken.insert(candidate.clone()) {
                trigger.id = candidate;
                continue;
            }
        }
        trigger.id = loop {
            let id = format!("http-trigger{counter}");
            if taken.insert(id.clone()) {
                break id;
            }
            counter += 1;
        };
    }
}

/// normalize.rs `normalize_inline_components`: `<trigger id>-component` if that is a valid,
/// unused component ID, else the first unused `inline-component<N>`.
fn inline_component_id(trigger_id: &str, components: &BTreeMap<String, RawComponent>) -> String {
    let natural = format!("{trigger_id}-component");
    if check_id(&natural, '-', false).is_ok() && !components.contains_key(&natural) {
        return natural;
    }
    (1..)
        .map(|n| format!("inline-component{n}"))
        .find(|id| !components.contains_key(id))
        .expect("some counter value is free")
}

fn component_config(
    id: &str,
    c: RawComponent,
    dir: &Path,
) -> Result<ComponentConfig, ManifestError> {
    let invalid = |reason: String| ManifestError::InvalidComponent {
        component: id.to_owned(),
        reason,
    };
    let source = match &c.source {
        toml::Value::String(path) => dir.join(path),
        toml::Value::Table(t) if t.contains_key("url") => {
            return Err(invalid(
                "`source = { url = ..., digest = ... }` is not supported by this host; \
                 download the Wasm file and use `source = \"path/to/file.wasm\"`"
                    .into(),
            ))
        }
        toml::Value::Table(t) if t.contains_key("package") => {
            return Err(invalid(
                "registry sources (`source = { package = ..., version = ... }`) are not \
                 supported by this host; use `source = \"path/to/file.wasm\"`"
                    .into(),
            ))
        }
        _ => return Err(invalid(
            "`source` must be a file path, `{ url, digest }` or `{ registry, package, version }`"
                .into(),
        )),
    };

    let mut allowed_outbound_hosts = c.allowed_outbound_hosts;
    allowed_outbound_hosts.extend(
        convert_allowed_http_hosts(&c.allowed_http_hosts)
            .map_err(|e| invalid(format!("`allowed_http_hosts` is malformed: {e}")))?,
    );

    Ok(ComponentConfig {
        id: id.to_owned(),
        description: c.description,
        source,
        allowed_outbound_hosts,
        key_value_stores: c.key_value_stores.into_iter().map(|l| l.0).collect(),
        sqlite_databases: c.sqlite_databases.into_iter().map(|l| l.0).collect(),
        ai_models: c.ai_models,
        variables: c
            .variables
            .into_iter()
            .map(|(LowerSnakeId(k), v)| (k, v))
            .collect(),
        environment: c.environment,
        files: c.files,
        exclude_files: c.exclude_files,
    })
}

/// The deprecated `allowed_http_hosts` in `allowed_outbound_hosts` syntax
/// (crates/manifest/src/compat: `convert_allowed_http_to_allowed_hosts`, without database
/// access, which only applies to v1 manifests).
fn convert_allowed_http_hosts(hosts: &[String]) -> Result<Vec<String>, String> {
    if hosts.iter().any(|h| h == "insecure:allow-all") {
        return Ok(vec![
            "http://*:*".into(),
            "https://*:*".into(),
            "http://self".into(),
        ]);
    }
    let mut converted = Vec::new();
    let mut errors = Vec::new();
    for text in hosts {
        match parse_allowed_http_host(text) {
            Ok((domain, _)) if domain == "self" => converted.push("http://self".into()),
            Ok((domain, port)) => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                converted.push(format!("http://{domain}{port}"));
                converted.push(format!("https://{domain}{port}"));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(converted)
    } else {
        Err(format!(
            "One or more allowed_http_hosts entries was invalid:\n{}",
            errors.join("\n")
        ))
    }
}

/// An `allowed_http_hosts` entry: `host`, `host:port` or `http(s)://host[:port][/]`.
fn parse_allowed_http_host(text: &str) -> Result<(String, Option<u16>), String> {
    // `Url::parse("localhost:3001")` would read `localhost` as a scheme, so only strings
    // containing `//` are parsed as URLs; the rest get an `http://` prefix first.
    let url = if text.contains("//") {
        let url = url::Url::parse(text)
            .map_err(|e| format!("{text} isn't a valid HTTP host URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text} isn't a valid host or host:port string"));
        }
        url
    } else {
        url::Url::parse(&format!("http://{text}"))
            .map_err(|_| format!("{text} isn't a valid host or host:port string"))?
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("{text} doesn't contain a host name"))?;
    if url.path().len() > 1 {
        return Err(format!(
            "{text} contains a path, should be host and optional port only"
        ));
    }
    Ok((host.to_owned(), url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> AppManifest {
        parse(text, Path::new("/app")).unwrap_or_else(|e| panic!("should parse: {e}"))
    }

    fn parse_err(text: &str) -> String {
        match parse(text, Path::new("/app")) {
            Ok(_) => panic!("should have been rejected:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// A minimal valid manifest with extra TOML appended.
    fn with(extra: &str) -> String {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"app\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
             [component.web]\nsource = \"web.wasm\"\n{extra}"
        )
    }

    const GOOD: &str = r#"
spin_manifest_version = 2

[application]
name = "streamgate"
version = "1.2.3"
description = "test app"
authors = ["someone@example.com"]

[application.trigger.http]
base = "/"

[application.tool.lint]
lint_level = "savage"

[variables]
api_host = { default = "example.com" }
api_key = { required = true, secret = true, description = "the key" }

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
id = "admin-handler"
route = "/admin"
component = { source = "admin.wasm", allowed_outbound_hosts = ["https://admin.example.com"] }

[[trigger.http]]
route = { private = true }
component = { source = "internal.wasm" }

[[trigger.http]]
route = "/api2/:id"
component = "api"
executor = { type = "http" }

[component.api]
source = "target/api.wasm"
description = "the API"
allowed_outbound_hosts = ["https://{{ api_host }}", "redis://localhost:6379"]
allowed_http_hosts = ["example.org:8080", "self"]
key_value_stores = ["default", "my-store", "snake_store"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
variables = { api_url = "https://{{ api_host }}/v1", key = "{{ api_key }}" }
environment = { RUST_LOG = "info" }
files = ["static/**/*", { source = "assets", destination = "/assets" }]
exclude_files = ["**/secret"]
dependencies_inherit_configuration = true

[component.api.build]
command = "cargo build --target wasm32-wasip2 --release"
workdir = "api"
watch = ["src/**/*.rs"]

[component.api.dependencies]
"a:b/c" = { path = "dep.wasm" }

[component.api.tool.clean]
command = "cargo clean"

[component.unused]
source = "unused.wasm"
"#;

    #[test]
    fn parses_a_full_manifest() {
        let m = parse_ok(GOOD);
        assert_eq!(m.name, "streamgate");
        assert_eq!(m.version, "1.2.3");
        assert_eq!(m.dir, Path::new("/app"));
        assert_eq!(m.http_base, "/");

        assert_eq!(
            m.variables["api_host"],
            VariableDecl {
                default: Some("example.com".into()),
                required: false,
                secret: false,
                description: None,
            }
        );
        assert_eq!(
            m.variables["api_key"],
            VariableDecl {
                default: None,
                required: true,
                secret: true,
                description: Some("the key".into()),
            }
        );

        // Trigger and inline component IDs as normalize.rs generates them.
        assert_eq!(
            m.http_triggers,
            [
                HttpTrigger {
                    id: "api-http-trigger".into(),
                    route: HttpRoute::Route("/api/...".into()),
                    component: "api".into(),
                },
                HttpTrigger {
                    id: "admin-handler".into(),
                    route: HttpRoute::Route("/admin".into()),
                    component: "admin-handler-component".into(),
                },
                HttpTrigger {
                    id: "http-trigger1".into(),
                    route: HttpRoute::Private,
                    component: "http-trigger1-component".into(),
                },
                // `api-http-trigger` is taken, so the counter is used.
                HttpTrigger {
                    id: "http-trigger2".into(),
                    route: HttpRoute::Route("/api2/:id".into()),
                    component: "api".into(),
                },
            ]
        );
        let ids: Vec<&str> = m.components.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            [
                "admin-handler-component",
                "api",
                "http-trigger1-component",
                "unused"
            ]
        );

        let api = &m.components["api"];
        assert_eq!(api.id, "api");
        assert_eq!(api.description, "the API");
        assert_eq!(api.source, Path::new("/app/target/api.wasm"));
        assert_eq!(
            api.allowed_outbound_hosts,
            [
                "https://{{ api_host }}",
                "redis://localhost:6379",
                "http://example.org:8080",
                "https://example.org:8080",
                "http://self",
            ]
        );
        assert_eq!(api.key_value_stores, ["default", "my-store", "snake_store"]);
        assert_eq!(api.sqlite_databases, ["default"]);
        assert_eq!(api.ai_models, ["llama2-chat"]);
        assert_eq!(api.variables["api_url"], "https://{{ api_host }}/v1");
        assert_eq!(api.variables["key"], "{{ api_key }}");
        assert_eq!(api.environment["RUST_LOG"], "info");
        assert_eq!(
            api.files,
            [
                FilesMount::Pattern("static/**/*".into()),
                FilesMount::Placement {
                    source: "assets".into(),
                    destination: "/assets".into()
                },
            ]
        );
        assert_eq!(api.exclude_files, ["**/secret"]);

        let admin = &m.components["admin-handler-component"];
        assert_eq!(admin.source, Path::new("/app/admin.wasm"));
        assert_eq!(admin.allowed_outbound_hosts, ["https://admin.example.com"]);

        let routes: Vec<(String, String)> = m.http_routes().collect();
        assert_eq!(
            routes,
            [
                ("api".to_string(), "/api/...".to_string()),
                ("admin-handler-component".to_string(), "/admin".to_string()),
                ("api".to_string(), "/api2/:id".to_string()),
            ]
        );
    }

    /// The HTTP part of spin's crates/manifest/tests/ui/normalization.toml(.norm).
    #[test]
    fn normalization_matches_spin() {
        let m = parse_ok(
            r#"
spin_manifest_version = 2
[application]
name = "minimal-v2"
[[trigger.http]]
route = "/hello"
component = "hello"
[[trigger.http]]
id = "admin-handler"
route = "/admin"
component = { source = "admin.wasm" }
[[trigger.http]]
route = "/other"
component = { source = "other.wasm" }
[component.hello]
source = "hello.wasm"
"#,
        );
        let pairs: Vec<(&str, &str)> = m
            .http_triggers
            .iter()
            .map(|t| (t.id.as_str(), t.component.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("hello-http-trigger", "hello"),
                ("admin-handler", "admin-handler-component"),
                ("http-trigger1", "http-trigger1-component"),
            ]
        );
        assert_eq!(
            m.components["http-trigger1-component"].source,
            Path::new("/app/other.wasm")
        );
    }

    #[test]
    fn inline_ids_fall_back_to_counter() {
        let m = parse_ok(
            r#"
spin_manifest_version = 2
[application]
name = "app"
[[trigger.http]]
id = "snake_id"
route = "/a"
component = { source = "a.wasm" }
[[trigger.http]]
id = "taken"
route = "/b"
component = { source = "b.wasm" }
[component.taken-component]
source = "c.wasm"
[component.inline-component1]
source = "d.wasm"
"#,
        );
        // `snake_id-component` is not kebab-case; `taken-component` exists; and
        // `inline-component1` exists too, so the counter moves on.
        assert_eq!(m.http_triggers[0].component, "inline-component2");
        assert_eq!(m.http_triggers[1].component, "inline-component3");
    }

    #[test]
    fn load_resolves_against_the_manifest_directory() {
        let dir = std::env::temp_dir().join(format!("spin-app-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spin.toml");
        std::fs::write(&path, with("")).unwrap();
        let m = load(&path).unwrap();
        assert_eq!(m.dir, dir);
        assert_eq!(m.components["web"].source, dir.join("web.wasm"));

        std::fs::write(&path, "spin_manifest_version = 3").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("spin.toml"), "{err}");
        assert!(err.contains("invalid manifest version: 3"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        let err = load(&dir.join("missing.toml")).unwrap_err().to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }

    // --- Errors; messages from spin's crates/manifest/tests/ui/invalid/*.err ---

    #[test]
    fn empty_manifest() {
        let err = parse_err("");
        assert!(
            err.contains("missing field `spin_manifest_version`"),
            "{err}"
        );
    }

    #[test]
    fn bad_versions() {
        assert_eq!(
            parse_err("spin_manifest_version = \"0\""),
            "invalid manifest version: \"0\""
        );
        assert_eq!(
            parse_err("spin_manifest_version = 3"),
            "invalid manifest version: 3"
        );
        assert!(parse_err("spin_manifest_version = \"1\"").contains("not supported"));
    }

    #[test]
    fn bad_component_id() {
        let err = parse_err(
            "spin_manifest_version = 2\n\n[application]\nname = \"minimal-v2\"\n\n[component.bad_id]",
        );
        assert!(err.contains("line 6, column 12"), "{err}");
        assert!(
            err.contains("words must be separated with '-', not '_'"),
            "{err}"
        );
        for (id, reason) in [
            ("Mixed-Case", "must be all lowercase or all UPPERCASE"),
            ("a--b", "words must not be empty"),
            ("a-1b", "must start with an ASCII letter"),
        ] {
            let err = parse_err(&with(&format!("[component.{id}]\nsource = \"x.wasm\"")));
            assert!(err.contains(reason), "{id}: {err}");
        }
        // All-UPPERCASE words and digits after the first letter are fine in component IDs.
        parse_ok(&with("[component.ABC-d1]\nsource = \"x.wasm\""));
    }

    #[test]
    fn bad_component_reference() {
        let err = parse_err(
            "spin_manifest_version = 2\n\n[application]\nname = \"minimal-v2\"\n\n\
             [[trigger.http]]\nroute = \"/\"\ncomponent = \"1-2-3\"",
        );
        assert!(err.contains("line 8, column 13"), "{err}");
        assert!(
            err.contains("'-'-separated words must start with an ASCII letter; got '1'"),
            "{err}"
        );
    }

    #[test]
    fn bad_variable_names() {
        let err = parse_err(&with("[variables]\n\"bad+name\" = { required = true }"));
        assert!(
            err.contains("'_'-separated words may only contain alphanumeric ASCII; got '+'"),
            "{err}"
        );
        let err = parse_err(&with("[variables]\nUPPER = { required = true }"));
        assert!(
            err.contains("Lower-case identifiers must be all lowercase"),
            "{err}"
        );
        let err = parse_err(&with("[variables]\n\"kebab-name\" = { required = true }"));
        assert!(
            err.contains("words must be separated with '_', not '-'"),
            "{err}"
        );
        let err = parse_err(&with("[component.web.variables]\n\"bad-name\" = \"x\""));
        assert!(
            err.contains("words must be separated with '_', not '-'"),
            "{err}"
        );
    }

    #[test]
    fn variables_must_be_required_xor_default() {
        let err = parse_err(&with(
            "[variables]\nx = { required = true, default = \"d\" }",
        ));
        assert_eq!(
            err,
            "invalid variable definition for `x`: must be `required` OR have a `default`"
        );
        let err = parse_err(&with("[variables]\nx = { secret = true }"));
        assert!(
            err.contains("must be `required` OR have a `default`"),
            "{err}"
        );
        let err = parse_err(&with("[variables]\nx = { default = \"d\", typo = 1 }"));
        assert!(err.contains("unknown field `typo`"), "{err}");
    }

    #[test]
    fn trigger_with_missing_component() {
        let err = parse_err(&with(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"nope\"",
        ));
        assert!(err.contains("component `nope`"), "{err}");
        assert!(err.contains("not defined"), "{err}");

        let err = parse_err(&with("[[trigger.http]]\nroute = \"/x\""));
        assert!(
            err.contains("Triggers must specify either component or static_response"),
            "{err}"
        );
    }

    #[test]
    fn trigger_fields() {
        let err = parse_err(&with("[[trigger.http]]\ncomponent = \"web\""));
        assert!(err.contains("missing field `route`"), "{err}");

        let err = parse_err(&with(
            "[[trigger.http]]\nroute = { private = false }\ncomponent = \"web\"",
        ));
        assert!(
            err.contains("route must be a string pattern or '{ private = true }': 'web' has { private = false }"),
            "{err}"
        );
        let err = parse_err(&with("[[trigger.http]]\nroute = 5\ncomponent = \"web\""));
        assert!(err.contains("route must be a string pattern"), "{err}");

        let err = parse_err(&with(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nrouet = \"/y\"",
        ));
        assert!(err.contains("unknown field `rouet`"), "{err}");

        let err = parse_err(&with(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nexecutor = { type = \"wagi\" }",
        ));
        assert!(err.contains("WAGI"), "{err}");
        parse_ok(&with(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nexecutor = { type = \"spin\" }",
        ));

        let err = parse_err(&with(
            "[[trigger.http]]\nroute = \"/x\"\nstatic_response = { body = \"hi\" }",
        ));
        assert!(err.contains("static_response"), "{err}");
    }

    #[test]
    fn other_trigger_types_are_rejected() {
        let err = parse_err(&with(
            "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"web\"",
        ));
        assert!(err.contains("trigger type `redis`"), "{err}");
        let err = parse_err("spin_manifest_version = 2\n[application]\nname = \"a\"\n");
        assert!(err.contains("missing field `trigger`"), "{err}");
    }

    #[test]
    fn http_base() {
        parse_ok(&with("[application.trigger.http]\nbase = \"/\""));
        let err = parse_err(&with("[application.trigger.http]\nbase = \"/api\""));
        assert!(
            err.contains("The base must be prepended to each [[trigger.http]]'s 'route'"),
            "{err}"
        );
        let err = parse_err(&with("[application.trigger.http]\nother = 1"));
        assert!(err.contains("unknown field `other`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected_like_spin() {
        let err = parse_err(&with("[component.web.nope]\nx = 1"));
        assert!(err.contains("unknown field `nope`"), "{err}");
        let err = parse_err(&with("typo = 1"));
        assert!(err.contains("unknown field `typo`"), "{err}");
        let err = parse_err(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\nnmae = \"b\"\n[trigger]\n",
        );
        assert!(err.contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn non_local_sources_are_rejected() {
        let err = parse_err(
            &with("[component.remote]\nsource = { url = \"https://example.com/x.wasm\", digest = \"sha256:00\" }"),
        );
        assert!(err.contains("invalid component `remote`"), "{err}");
        assert!(err.contains("not supported"), "{err}");
        let err = parse_err(&with(
            "[component.reg]\nsource = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
        ));
        assert!(err.contains("registry sources"), "{err}");
    }

    #[test]
    fn labels_must_be_kebab_or_snake() {
        // `with` appends after `[component.web]`, so the key lands in that table.
        let err = parse_err(&with("key_value_stores = [\"b@dlabel\"]"));
        assert!(err.contains("expected kebab-case or snake_case"), "{err}");
        let err = parse_err(&with("sqlite_databases = [\"camelCase\"]"));
        assert!(err.contains("expected kebab-case or snake_case"), "{err}");
    }

    #[test]
    fn allowed_http_hosts_conversion() {
        assert_eq!(
            convert_allowed_http_hosts(&["insecure:allow-all".into(), "x".into()]).unwrap(),
            ["http://*:*", "https://*:*", "http://self"]
        );
        assert_eq!(
            convert_allowed_http_hosts(&[
                "spin.fermyon.dev".into(),
                "https://example.com:443".into(),
                "http://localhost:3001/".into(),
            ])
            .unwrap(),
            [
                "http://spin.fermyon.dev",
                "https://spin.fermyon.dev",
                "http://example.com",
                "https://example.com",
                "http://localhost:3001",
                "https://localhost:3001",
            ]
        );
        let err = convert_allowed_http_hosts(&["example.com/path".into()]).unwrap_err();
        assert!(err.contains("contains a path"), "{err}");
        let err = convert_allowed_http_hosts(&["ftp://example.com".into()]).unwrap_err();
        assert!(
            err.contains("isn't a valid host or host:port string"),
            "{err}"
        );
    }

    #[test]
    fn id_rules_match_spin_serde() {
        // spin-serde / manifest v2.rs `test_valid_snake_ids` / `test_invalid_snake_ids`.
        for valid in ["default", "mixed_CASE_words", "letters1_then2_numbers345"] {
            assert!(check_id(valid, '_', false).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "kebab-case",
            "_leading_underscore",
            "trailing_underscore_",
            "double__underscore",
            "1initial_number",
            "unicode_snowpeople☃☃☃",
            "mIxEd_case",
            "MiXeD_case",
        ] {
            assert!(check_id(invalid, '_', false).is_err(), "{invalid}");
        }
        assert!(check_id("mixed_CASE_words", '_', true).is_err());
    }
}
