//! Manifests Spin's own loader refuses and accepts (`tests/spin-loader/`, see its README),
//! loaded as `streamgate-host up` loads an app before serving: parsed, then every component's
//! `allowed_outbound_hosts` checked with the variables' defaults.

use std::path::{Path, PathBuf};

use streamgate_spin_app::allowed_hosts::Rules;
use streamgate_spin_app::manifest;
use streamgate_spin_app::variables::Resolver;

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/spin-loader")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

/// What the host does with a manifest before it serves, as one error string.
fn load(path: &Path, rules: Rules) -> Result<(), String> {
    let manifest = manifest::load(path).map_err(|e| e.to_string())?;
    let variables = Resolver::for_manifest(
        &manifest,
        // Required variables get a value, as `SPIN_VARIABLE_*` would give them: only what Spin
        // checks when it loads the app is under test here.
        |_| Some("provided.example.com".into()),
    )
    .map_err(|e| e.to_string())?;
    streamgate_spin_app::validate_components(&manifest, &variables, rules).map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!("\ncaused by: {s}"));
            source = s.source();
        }
        message
    })
}

#[test]
fn manifests_released_spin_refuses_are_refused() {
    for path in cases("reject") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let err = match load(&path, Rules::Released) {
            Ok(()) => panic!("{name}: Spin 4.0.2 refuses it, the host loaded it"),
            Err(err) => err,
        };
        let expected = std::fs::read_to_string(path.with_extension("err"))
            .unwrap_or_else(|e| panic!("{name}: its .err file: {e}"));
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                err.contains(line),
                "{name}: the error should contain {line:?}; it is:\n{err}"
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let main_accepts = text.starts_with("# spin-main: accepts");
        assert_eq!(
            load(&path, Rules::Main).is_ok(),
            main_accepts,
            "{name}: under Spin main's rules"
        );
    }
}

#[test]
fn manifests_released_spin_accepts_are_accepted() {
    for path in cases("accept") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for rules in [Rules::Released, Rules::Main] {
            if let Err(err) = load(&path, rules) {
                panic!("{name} ({rules:?}): Spin loads it, the host refused it:\n{err}");
            }
        }
    }
}

/// The app itself loads on released Spin (issue 11): no allowed host empty or malformed with
/// the defaults.
#[test]
fn streamgate_spin_toml_loads_under_released_rules() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    load(&path, Rules::Released).unwrap_or_else(|e| panic!("spin.toml: {e}"));
}
