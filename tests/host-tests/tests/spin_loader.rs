//! The host loads an app as released Spin 4.0.2 does (host/app/tests/spin_loader.rs has the
//! manifest cases); Spin main's leniency is behind `--spin-main-allowed-hosts`.

use host_tests::*;

const APP: &str = "tests/apps/optional-endpoint/spin.toml";

#[test]
fn an_allowed_host_emptied_by_its_default_stops_startup_as_on_released_spin() {
    let state = tempfile::tempdir().unwrap();
    let (status, stderr) = HostConfig::new(APP, state.path()).start_expecting_failure();
    assert!(!status.success());
    for needle in [
        "Failed to load component `probe`",
        "`allowed_outbound_hosts` is malformed",
        "using default variable value(s) with template \"https://{{ tls_host }}\" results in invalid config \"https://\"",
    ] {
        assert!(stderr.contains(needle), "says {needle:?}: {stderr}");
    }
}

#[test]
fn spin_main_rules_skip_the_empty_entry_when_asked() {
    let state = tempfile::tempdir().unwrap();
    let host = HostConfig::new(APP, state.path())
        .args(&["--spin-main-allowed-hosts"])
        .start();
    assert_eq!(host.get("/exact").status, 200);
}
