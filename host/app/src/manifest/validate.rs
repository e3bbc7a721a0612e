//! Validation and normalisation of the parsed schema into an [`AppManifest`]: what Spin's
//! loader (`crates/loader/src/local.rs`) and HTTP trigger (`crates/http/src/config.rs`)
//! check between reading the file and starting the app.

use std::collections::BTreeMap;
use std::path::Path;

use super::compat::convert_allowed_http_hosts;
use super::ids::{KebabId, LowerSnakeId};
use super::normalize::{assign_trigger_ids, inline_component_id};
use super::schema::{ComponentSpec, RawComponent, RawManifest, RawRoute};
use super::{AppManifest, ComponentConfig, HttpRoute, HttpTrigger, ManifestError, VariableDecl};

pub(super) fn build(raw: RawManifest, dir: &Path) -> Result<AppManifest, ManifestError> {
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
