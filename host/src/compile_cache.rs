//! Compiled components, cached on disk so a restart does not pay Cranelift again.
//!
//! Keyed by the source file's SHA-256 and the engine's compatibility hash (wasmtime version and
//! every setting that affects code), so a changed `.wasm`, host or configuration compiles
//! afresh. The cache lives in the user's own cache directory; loading a cached artifact trusts
//! its contents, exactly as wasmtime's own cache does, so it must not be writable by others.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::componentize::{self, Binary};

/// `$STREAMGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/streamgate-host`, else `~/.cache/streamgate-host`.
/// `None` (no cache) when none can be found.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STREAMGATE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("streamgate-host"))
}

/// Keyed by the file as it is on disk, so a cached core module skips its conversion too; the
/// conversion's own identity (the adapter) is part of a module's key.
fn key(engine: &Engine, wasm: &[u8], binary: Binary) -> String {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    env!("CARGO_PKG_VERSION").hash(&mut compat);
    if binary == Binary::CoreModule {
        componentize::conversion_id().hash(&mut compat);
    }
    format!("{:x}-{:016x}", Sha256::digest(wasm), compat.finish())
}

/// The compiled component for `source`, from the cache when possible. Cache failures are
/// logged and fall back to compiling: the cache is an optimisation, never a reason not to start.
/// A core module is turned into a component first, as Spin does (see `componentize`).
pub fn load(engine: &Engine, source: &Path, cache: Option<&Path>) -> anyhow::Result<Component> {
    let original = std::fs::read(source)?;
    let binary = Binary::of(&original)?;
    let Some(dir) = cache else {
        let wasm = componentize::to_component(&original)?;
        return Component::new(engine, &wasm).map_err(anyhow::Error::from);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, &original, binary)));
    if path.exists() {
        // SAFETY: the file was written by `Engine::precompile_component` of an engine with the
        // same compatibility hash (it is in the name), in a directory only this user writes.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!("ignoring unusable cached component {}: {e}", path.display()),
        }
    }
    let wasm = componentize::to_component(&original)?;
    let compiled = engine
        .precompile_component(&wasm)
        .map_err(anyhow::Error::from)?;
    if let Err(e) = store(dir, &path, &compiled) {
        tracing::warn!(
            "could not cache the compiled component in {}: {e}",
            dir.display()
        );
    }
    // SAFETY: these bytes were just produced by this engine.
    unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)
}

/// Written to a temporary name and renamed, so a concurrent start never reads half a file.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("c")
    ));
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, path)
}
