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
