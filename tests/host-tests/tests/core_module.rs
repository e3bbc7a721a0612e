//! Components given as core Wasm modules (built for wasm32-wasip1), turned into components at
//! load time as Spin does; and sources that are no Wasm at all.

use std::path::{Path, PathBuf};

use host_tests::*;

const APP: &str = "tests/apps/probe-wasip1/spin.toml";

fn wasip1_probe() -> PathBuf {
    let path = workspace().join("target/wasm32-wasip1/release/probe.wasm");
    assert!(
        path.exists(),
        "{} does not exist: scripts/test builds it (cargo build --release --target wasm32-wasip1 -p probe)",
        path.display()
    );
    path
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn cached_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_wasip1_module_is_served_after_conversion_and_cached_by_its_own_bytes() {
    let module = wasip1_probe();
    let header = std::fs::read(&module).unwrap();
    assert_eq!(
        &header[4..8],
        &[1, 0, 0, 0],
        "the wasip1 build is a core module (version 1, layer 0), not a component"
    );
    let state = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = HostConfig::new(APP, state.path());
        config.env.push((
            "STREAMGATE_CACHE_DIR".into(),
            cache.path().display().to_string(),
        ));
        config
    };

    for round in ["converted and compiled", "from the cache"] {
        let host = config().start();
        let echo = host.get("/some/path?op=headers");
        assert_eq!(echo.status, 200, "{round}: {}", echo.body);
        assert_eq!(echo.json()["path"], "/some/path", "{round}");
        // Host interfaces through the component's imports, and WASI through the adapter.
        let set = host.post(
            "/?op=kv",
            &json!({"store": "default", "action": "set", "key": "k", "value": round}),
        );
        assert_eq!(set.json(), json!({"ok": null}), "{round}: {}", set.body);
        let get = host.post(
            "/?op=kv",
            &json!({"store": "default", "action": "get", "key": "k"}),
        );
        assert_eq!(get.json(), json!({"ok": round}), "{round}");
        let rows = host.post(
            "/?op=sqlite",
            &json!({"db": "default", "sql": "SELECT 40 + 2 AS answer", "params": []}),
        );
        assert_eq!(rows.status, 200, "{round}: {}", rows.body);
        assert!(rows.body.contains("42"), "{round}: {}", rows.body);
        assert_eq!(
            host.get("/?op=env&name=PROBE_ENV").json(),
            json!({"value": "from-manifest"}),
            "{round}: the manifest's environment reaches the module through the adapter"
        );
        // One artefact, named by the module as it is on disk (not by the converted bytes, which
        // would need a conversion before every cache look-up).
        let cached = cached_files(cache.path());
        assert_eq!(cached.len(), 1, "{round}: {cached:?}");
        assert!(
            cached[0].starts_with(&sha256_hex(&module)),
            "{round}: {cached:?}"
        );
    }
}

/// Writes an app whose one component's source is `bytes`.
fn app_with_source(dir: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(dir.join("broken.wasm"), bytes).unwrap();
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        r#"spin_manifest_version = 2

[application]
name = "broken"

[[trigger.http]]
route = "/..."
component = "broken-one"

[component.broken-one]
source = "broken.wasm"
"#,
    )
    .unwrap();
    manifest
}

#[test]
fn a_source_that_is_not_wasm_or_a_broken_module_stops_startup_naming_the_component() {
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "text",
            b"this is not wasm".to_vec(),
            "is not a WebAssembly component or module",
        ),
        (
            "truncated module",
            b"\0asm\x01\0\0\0\x01\xff\xff".to_vec(),
            "not a valid core Wasm module",
        ),
        (
            // (module (func (export "_start"))): a WASI command, not an HTTP component.
            "command module",
            vec![
                0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 7, 10, 1, 6,
                b'_', b's', b't', b'a', b'r', b't', 0, 0, 10, 4, 1, 2, 0, 0x0b,
            ],
            "WASI command module",
        ),
        (
            "truncated wasip1 probe",
            std::fs::read(wasip1_probe()).unwrap()[..4096].to_vec(),
            "not a valid core Wasm module",
        ),
    ];
    for (what, bytes, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let manifest = app_with_source(dir.path(), &bytes);
        let (status, stderr) = HostConfig::new(&manifest, dir.path()).start_expecting_failure();
        assert!(!status.success(), "{what}");
        assert!(
            stderr.contains("component `broken-one`"),
            "{what}: names the component: {stderr}"
        );
        assert!(
            stderr.contains("broken.wasm"),
            "{what}: names the file: {stderr}"
        );
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}
