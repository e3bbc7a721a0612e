//! Loading a Spin app: manifest, variables, stores, and one pre-instantiated component per
//! component id. Everything that can be wrong with an app is found here, before the listener
//! opens, with a message that names the component and the thing at fault.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use streamgate_spin_app::allowed_hosts::{AllowedHosts, Rules};
use streamgate_spin_app::manifest::{AppManifest, HttpRoute};
use streamgate_spin_app::routing::Router;
use streamgate_spin_app::variables::Resolver;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::SpinHost;
use crate::key_value::KeyValueStores;
use crate::outbound_http::{OutboundHttpClient, OutboundTimeouts};
use crate::redis::RedisClients;
use crate::runtime_config::RuntimeConfig;
use crate::sqlite::SqliteDatabases;
use crate::state::{ComponentContext, RequestState, Services};

pub struct LoadedComponent {
    pub context: Arc<ComponentContext>,
    pub pre: ProxyPre<RequestState>,
}

pub struct App {
    pub base: String,
    pub router: Router,
    pub components: HashMap<String, LoadedComponent>,
    pub services: Arc<Services>,
}

pub struct LoadOptions<'a> {
    pub manifest: &'a Path,
    pub state_dir: &'a Path,
    pub runtime_config: Option<&'a Path>,
    /// Where the listener is, for routing relative self-requests back into the app.
    pub listen: SocketAddr,
    pub outbound_timeouts: OutboundTimeouts,
    /// Whose rules read `allowed_outbound_hosts`: released Spin 4.0.2's unless asked otherwise.
    pub allowed_hosts_rules: Rules,
}

pub async fn load(engine: &Engine, options: LoadOptions<'_>) -> anyhow::Result<App> {
    let manifest = streamgate_spin_app::manifest::load(options.manifest)
        .with_context(|| format!("loading {}", options.manifest.display()))?;

    let variables =
        Resolver::for_manifest(&manifest, streamgate_spin_app::variables::env_provider())?;

    // As Spin's loader does before anything runs: every component, used by a trigger or not.
    streamgate_spin_app::validate_components(&manifest, &variables, options.allowed_hosts_rules)?;

    let runtime_config = RuntimeConfig::load(options.runtime_config, options.state_dir)?;
    let (key_value, sqlite) = open_stores(&manifest, &runtime_config).await?;

    let services = Arc::new(Services {
        key_value,
        sqlite,
        redis: RedisClients::default(),
        outbound_http: Arc::new(OutboundHttpClient::new(
            options.listen,
            options.outbound_timeouts,
        )),
        variables,
    });

    let linker = linker(engine)?;
    let mut components = HashMap::new();
    for trigger in &manifest.http_triggers {
        if components.contains_key(&trigger.component) {
            continue;
        }
        let component = &manifest.components[&trigger.component];
        let allowed_hosts = allowed_hosts(
            &component.id,
            &component.allowed_outbound_hosts,
            &services.variables,
            options.allowed_hosts_rules,
        )?;
        let context = Arc::new(ComponentContext {
            id: component.id.clone(),
            key_value_stores: component.key_value_stores.iter().cloned().collect(),
            sqlite_databases: component.sqlite_databases.iter().cloned().collect(),
            allowed_hosts,
            environment: component
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
        let pre = prepare(engine, &linker, &component.id, &component.source)?;
        components.insert(component.id.clone(), LoadedComponent { context, pre });
    }

    let routes = manifest
        .http_triggers
        .iter()
        .filter_map(|t| match &t.route {
            HttpRoute::Route(route) => Some((t.component.clone(), route.clone())),
            HttpRoute::Private => None,
        });
    let router = Router::build(&manifest.http_base, routes)?;
    for duplicate in router.duplicates() {
        tracing::error!(
            "Duplicate route `{}`: component `{}` replaces `{}`",
            duplicate.route,
            duplicate.effective_id,
            duplicate.replaced_id
        );
    }
    if router.contains_reserved_route() {
        tracing::error!(
            "Routes under {} are reserved for the host and will never reach a component",
            streamgate_spin_app::routing::WELL_KNOWN_PREFIX
        );
    }

    Ok(App {
        base: manifest.http_base.clone(),
        router,
        components,
        services,
    })
}

/// A malformed entry stops start-up. An entry whose variables cannot be resolved does not:
/// as in Spin, that component is then refused every outbound connection, and we say why.
fn allowed_hosts(
    component: &str,
    entries: &[String],
    variables: &Resolver,
    rules: Rules,
) -> anyhow::Result<AllowedHosts> {
    AllowedHosts::validate(entries, variables, rules)
        .with_context(|| format!("component `{component}`: allowed_outbound_hosts"))?;
    Ok(AllowedHosts::resolve(entries, variables, rules).unwrap_or_else(|e| {
        tracing::error!(
            component,
            "allowed_outbound_hosts could not be resolved, so all outbound connections are refused: {e}"
        );
        AllowedHosts::default()
    }))
}

/// Every interface the host implements, in one linker shared by all components.
fn linker(engine: &Engine) -> anyhow::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    SpinHost::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

fn prepare(
    engine: &Engine,
    linker: &Linker<RequestState>,
    id: &str,
    source: &Path,
) -> anyhow::Result<ProxyPre<RequestState>> {
    if !source.exists() {
        bail!(
            "component `{id}`: source {} does not exist. Build the components first (scripts/up or scripts/test build them; or `spin build`)",
            source.display()
        );
    }
    let cache = crate::compile_cache::default_dir();
    let component = crate::compile_cache::load(engine, source, cache.as_deref())
        .map_err(|e| anyhow::anyhow!("component `{id}` ({}): {e:#}", source.display()))?;
    crate::engine::check_fits(&component)
        .map_err(|e| anyhow::anyhow!("component `{id}` ({}): {e:#}", source.display()))?;
    // An import we do not implement surfaces here, with wasmtime naming the interface; say
    // which component and that this host is the reason, rather than a generic link error.
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}` ({}) imports an interface this host does not implement: {e}",
            source.display()
        )
    })?;
    ProxyPre::new(pre).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}` ({}) does not export wasi:http/incoming-handler@0.2.x: {e}",
            source.display()
        )
    })
}

/// Opens every store some component names. A label no store is configured for stops start-up,
/// as it does in Spin.
async fn open_stores(
    manifest: &AppManifest,
    config: &RuntimeConfig,
) -> anyhow::Result<(KeyValueStores, SqliteDatabases)> {
    let mut key_value = KeyValueStores::default();
    let mut sqlite = SqliteDatabases::default();
    let mut kv_labels: HashSet<(String, String)> = HashSet::new();
    let mut db_labels: HashSet<(String, String)> = HashSet::new();
    for component in manifest.components.values() {
        kv_labels.extend(
            component
                .key_value_stores
                .iter()
                .map(|l| (l.clone(), component.id.clone())),
        );
        db_labels.extend(
            component
                .sqlite_databases
                .iter()
                .map(|l| (l.clone(), component.id.clone())),
        );
    }
    for (label, component) in kv_labels {
        if key_value.contains(&label) {
            continue;
        }
        let location = config.key_value_path(&label).with_context(|| {
            format!("component `{component}` uses key-value store `{label}`, which is not defined; define it in the runtime config file ([key_value_store.{label}])")
        })?;
        key_value.insert(&label, location).await?;
    }
    for (label, component) in db_labels {
        if sqlite.contains(&label) {
            continue;
        }
        let path = config.sqlite_path(&label).with_context(|| {
            format!("component `{component}` uses SQLite database `{label}`, which is not defined; define it in the runtime config file ([sqlite_database.{label}])")
        })?;
        sqlite.insert(&label, &path)?;
    }
    Ok((key_value, sqlite))
}
