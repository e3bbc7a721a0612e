//! The Spin application model, as Spin 3.x/4.x reads it, independent of any Wasm runtime.
//!
//! The embedded host (`streamgate-host`) loads a `spin.toml` with [`manifest`], routes requests
//! with [`routing`], resolves `{{ name }}` templates and variables with [`variables`] and checks
//! outbound destinations with [`allowed_hosts`]. Keeping these here means their semantics are
//! unit-tested natively without compiling wasmtime.

pub mod allowed_hosts;
pub mod manifest;
pub mod routing;
pub mod variables;

use allowed_hosts::{AllowedHosts, AllowedHostsError, Rules};
use manifest::AppManifest;
use variables::Resolver;

/// A component Spin's loader would refuse, with the reason in Spin's words.
#[derive(Debug, thiserror::Error)]
#[error("Failed to load component `{component}`: `allowed_outbound_hosts` is malformed: {source}")]
pub struct ComponentError {
    /// The component's ID.
    pub component: String,
    /// What is wrong with its `allowed_outbound_hosts`.
    #[source]
    pub source: AllowedHostsError,
}

/// What Spin's loader (`crates/loader/src/local.rs`, `load_component`) checks of every
/// component after parsing, whether a trigger uses it or not: its `allowed_outbound_hosts`,
/// literal entries as written and templated ones with the variables' *defaults*
/// ([`AllowedHosts::validate`]). `spin up`, `spin registry push` and SpinKube's shim all load
/// the app this way, so an app that fails here does not start anywhere.
pub fn validate_components(
    manifest: &AppManifest,
    variables: &Resolver,
    rules: Rules,
) -> Result<(), ComponentError> {
    for (id, component) in &manifest.components {
        AllowedHosts::validate(&component.allowed_outbound_hosts, variables, rules).map_err(
            |source| ComponentError {
                component: id.clone(),
                source,
            },
        )?;
    }
    Ok(())
}
