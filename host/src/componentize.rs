//! Core Wasm modules loaded the way Spin loads them.
//!
//! Spin accepts a component's `source` as either a component or a core module (an app built for
//! `wasm32-wasip1`, as Spin's own conformance suite ships them) and turns a module into a
//! component when it loads it (`spin-componentize`). We follow its decision, with the adapters
//! that wasmtime publishes:
//!
//! - a module whose `component-type` section says it was made by wit-bindgen 0.5 up to (not
//!   including) 1.0 (every Spin SDK since 2.0) gets the WASI preview-1 *reactor* adapter, as in
//!   Spin. Other wit-bindgen versions are refused in Spin's words;
//! - a module with no such version is either a Spin 1.x module (wit-bindgen 0.2's ABI, exports
//!   like `handle-http-request`) or a plain WASI command (`_start`). Spin adapts the first with an
//!   adapter of its own that is not published, and the second with the command adapter, which
//!   gives a `wasi:cli/run` program no HTTP trigger can call: both are refused here with what to
//!   do instead, rather than failing later on an export that is not there.

use std::borrow::Cow;

use anyhow::{anyhow, bail, Context as _};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{ExternalKind, Parser, Payload};
use wit_component::ComponentEncoder;

/// What a `source` file holds, read from its header's layer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Component,
    CoreModule,
}

impl Binary {
    pub fn of(bytes: &[u8]) -> anyhow::Result<Binary> {
        if Parser::is_component(bytes) {
            Ok(Binary::Component)
        } else if Parser::is_core_wasm(bytes) {
            Ok(Binary::CoreModule)
        } else if bytes.starts_with(b"\0asm") {
            bail!(
                "is a WebAssembly binary of an unknown version or layer (header {:02x?})",
                &bytes[..bytes.len().min(8)]
            )
        } else {
            bail!("is not a WebAssembly component or module (no `\\0asm` header)")
        }
    }
}

/// Identifies the conversion, for the compile cache: a different adapter is a different result.
pub fn conversion_id() -> String {
    use sha2::{Digest, Sha256};
    format!(
        "reactor-adapter-{:x}",
        Sha256::digest(WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)
    )
}

/// `bytes` as a component: unchanged when it is one, converted when it is a core module.
pub fn to_component(bytes: &[u8]) -> anyhow::Result<Cow<'_, [u8]>> {
    match Binary::of(bytes)? {
        Binary::Component => Ok(Cow::Borrowed(bytes)),
        Binary::CoreModule => componentize(bytes).map(Cow::Owned),
    }
}

// wit-bindgen has named its realloc export both ways.
const REALLOC_EXPORTS: &[&str] = &["cabi_realloc", "canonical_abi_realloc"];
// The exports of Spin 1.x's wit-bindgen 0.2 ABI.
const SPIN1_EXPORTS: &[&str] = &["handle-http-request", "handle-redis-message"];

#[derive(Default)]
struct ModuleFacts {
    realloc_export: bool,
    start_export: bool,
    spin1_export: Option<String>,
}

fn facts(module: &[u8]) -> anyhow::Result<ModuleFacts> {
    let mut facts = ModuleFacts::default();
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::ExportSection(reader) = payload? {
            for export in reader {
                let export = export?;
                if export.kind != ExternalKind::Func {
                    continue;
                }
                if REALLOC_EXPORTS.contains(&export.name) {
                    facts.realloc_export = true;
                } else if export.name == "_start" {
                    facts.start_export = true;
                } else if SPIN1_EXPORTS.contains(&export.name) {
                    facts.spin1_export = Some(export.name.to_string());
                }
            }
        }
    }
    Ok(facts)
}

/// The wit-bindgen version recorded in the module's `component-type` sections, if any, and
/// whether there was such a section at all.
fn bindgen_version(module: &[u8]) -> anyhow::Result<(bool, Option<String>)> {
    let (stripped, bindgen) = wit_component::metadata::decode(module)?;
    let version = bindgen
        .producers
        .as_ref()
        .and_then(|p| p.get("processed-by"))
        .and_then(|field| {
            field
                .iter()
                .find(|(tool, _)| tool.starts_with("wit-bindgen"))
                .map(|(_, version)| version.clone())
        });
    Ok((stripped.is_some(), version))
}

/// Spin adapts what wit-bindgen 0.5 to 0.x made; `0.51.0` and `0.5` pass, `1.0.0`, `0.4.0` and
/// `0.51.0-rc` do not.
fn adaptable(version: &str) -> bool {
    let mut parts = version.split('.');
    let (Some(Ok(major)), Some(Ok(minor))) = (
        parts.next().map(str::parse::<u8>),
        parts.next().map(str::parse::<u8>),
    ) else {
        return false;
    };
    if major != 0 || minor < 5 {
        return false;
    }
    match (parts.next(), parts.next()) {
        (None, _) => true,
        (Some(patch), None) => patch.parse::<u32>().is_ok(),
        _ => false,
    }
}

fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    let facts = facts(module).context("not a valid core Wasm module")?;
    let (has_bindgen_section, version) = bindgen_version(module)
        .context("its component-type section (wit-bindgen's metadata) cannot be read")?;
    match version {
        Some(v) if adaptable(&v) => {}
        Some(v) => bail!("cannot adapt modules created with wit-bindgen version {v}"),
        None => {
            if let Some(export) = facts.spin1_export {
                bail!(
                    "is a core module built for Spin 1.x (wit-bindgen 0.2's ABI, it exports `{export}`); \
                     Spin adapts those with an adapter of its own that this host does not have: \
                     rebuild it with a current Spin SDK"
                );
            }
            if facts.start_export && !(has_bindgen_section || facts.realloc_export) {
                bail!(
                    "is a WASI command module (it exports `_start`), not an HTTP component: \
                     build it as a library (`crate-type = [\"cdylib\"]` with the Spin SDK's `#[http_component]`)"
                );
            }
            bail!(
                "is a core module with no wit-bindgen metadata saying how it was built, so it \
                 cannot be adapted (Spin would take it for a Spin 1.x module): rebuild it with a current Spin SDK"
            );
        }
    }
    ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| anyhow!("turning the core module into a component (WASI preview-1 reactor adapter, as Spin does) failed: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_bindgen_versions_spin_adapts() {
        for v in ["0.5", "0.5.0", "0.51.0", "0.43.0"] {
            assert!(adaptable(v), "{v}");
        }
        for v in [
            "0.4.0",
            "1.0.0",
            "0.2.0",
            "0.51.0-rc",
            "0.51.0.1",
            "x.y",
            "",
        ] {
            assert!(!adaptable(v), "{v}");
        }
    }

    #[test]
    fn the_header_tells_module_from_component() {
        assert_eq!(Binary::of(b"\0asm\x01\0\0\0").unwrap(), Binary::CoreModule);
        assert_eq!(Binary::of(b"\0asm\x0d\0\x01\0").unwrap(), Binary::Component);
        let err = Binary::of(b"#!/bin/sh\n").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly"), "{err}");
        let err = Binary::of(b"\0asm\x07\0\x05\0").unwrap_err().to_string();
        assert!(err.contains("unknown version"), "{err}");
    }

    #[test]
    fn a_truncated_module_is_an_error_not_a_panic() {
        let err = to_component(b"\0asm\x01\0\0\0\x01\xff\xff")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid core Wasm module"), "{err}");
    }

    #[test]
    fn a_module_without_bindgen_metadata_is_refused_with_a_reason() {
        // (module (func (export "_start")))
        let command = [
            0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, // header
            1, 4, 1, 0x60, 0, 0, // type section: () -> ()
            3, 2, 1, 0, // function section
            7, 10, 1, 6, b'_', b's', b't', b'a', b'r', b't', 0, 0, // export "_start"
            10, 4, 1, 2, 0, 0x0b, // code
        ];
        let err = to_component(&command).unwrap_err().to_string();
        assert!(err.contains("WASI command module"), "{err}");
    }
}
