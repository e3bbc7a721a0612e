//! Application and component variables: templates, defaults, required values, errors.

use host_tests::*;

fn var(host: &Host, name: &str) -> Value {
    host.get(&format!("/?op=var&name={name}")).json()
}

#[test]
fn templates_defaults_and_environment() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    assert_eq!(var(&host, "message"), json!({"ok": "hello, world"}));
    assert_eq!(var(&host, "token"), json!({"ok": "t0ken"}));
    drop(host);

    // The environment overrides an application variable's default.
    let host = probe_app(state.path()).var("greeting", "bonjour").start();
    assert_eq!(var(&host, "message"), json!({"ok": "bonjour, world"}));
}

#[test]
fn names_a_component_does_not_declare_are_undefined_and_bad_names_invalid() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    // `greeting` is an application variable, but not one of the component's own.
    let undefined = var(&host, "greeting")["err"].as_str().unwrap().to_string();
    assert!(undefined.starts_with("Error::Undefined("), "{undefined}");
    let invalid = var(&host, "Bad-Name")["err"].as_str().unwrap().to_string();
    assert!(invalid.starts_with("Error::InvalidName("), "{invalid}");
    // The restricted component declares no variables at all.
    let none = host.get("/restricted/?op=var&name=message").json();
    assert!(none["err"]
        .as_str()
        .unwrap()
        .starts_with("Error::Undefined("));
}

#[test]
fn a_required_variable_without_a_value_stops_startup() {
    let state = tempfile::tempdir().unwrap();
    let (status, stderr) =
        HostConfig::new("tests/apps/probe/spin.toml", state.path()).start_expecting_failure();
    assert!(!status.success());
    assert!(stderr.contains("api_token"), "names the variable: {stderr}");
    assert!(
        stderr.contains("SPIN_VARIABLE_"),
        "says how to set it: {stderr}"
    );
}
