//! Loading whole manifests, end to end. The manifests live in `fixtures/`; the snippets
//! appended to `fixtures/minimal.toml` stay inline because each is the point of its assertion.
//! Error messages follow spin's crates/manifest/tests/ui/invalid/*.err.

use std::path::Path;

use super::*;

fn parse_ok(text: &str) -> AppManifest {
    parse(text, Path::new("/app")).unwrap_or_else(|e| panic!("should parse: {e}"))
}

fn parse_err(text: &str) -> String {
    match parse(text, Path::new("/app")) {
        Ok(_) => panic!("should have been rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A minimal valid manifest with extra TOML appended.
fn with(extra: &str) -> String {
    format!("{}{extra}", include_str!("fixtures/minimal.toml"))
}

const GOOD: &str = include_str!("fixtures/full.toml");

#[test]
fn parses_a_full_manifest() {
    let m = parse_ok(GOOD);
    assert_eq!(m.name, "streamgate");
    assert_eq!(m.version, "1.2.3");
    assert_eq!(m.dir, Path::new("/app"));
    assert_eq!(m.http_base, "/");

    assert_eq!(
        m.variables["api_host"],
        VariableDecl {
            default: Some("example.com".into()),
            required: false,
            secret: false,
            description: None,
        }
    );
    assert_eq!(
        m.variables["api_key"],
        VariableDecl {
            default: None,
            required: true,
            secret: true,
            description: Some("the key".into()),
        }
    );

    // Trigger and inline component IDs as normalize.rs generates them.
    assert_eq!(
        m.http_triggers,
        [
            HttpTrigger {
                id: "api-http-trigger".into(),
                route: HttpRoute::Route("/api/...".into()),
                component: "api".into(),
            },
            HttpTrigger {
                id: "admin-handler".into(),
                route: HttpRoute::Route("/admin".into()),
                component: "admin-handler-component".into(),
            },
            HttpTrigger {
                id: "http-trigger1".into(),
                route: HttpRoute::Private,
                component: "http-trigger1-component".into(),
            },
            // `api-http-trigger` is taken, so the counter is used.
            HttpTrigger {
                id: "http-trigger2".into(),
                route: HttpRoute::Route("/api2/:id".into()),
                component: "api".into(),
            },
        ]
    );
    let ids: Vec<&str> = m.components.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "admin-handler-component",
            "api",
            "http-trigger1-component",
            "unused"
        ]
    );

    let api = &m.components["api"];
    assert_eq!(api.id, "api");
    assert_eq!(api.description, "the API");
    assert_eq!(api.source, Path::new("/app/target/api.wasm"));
    assert_eq!(
        api.allowed_outbound_hosts,
        [
            "https://{{ api_host }}",
            "redis://localhost:6379",
            "http://example.org:8080",
            "https://example.org:8080",
            "http://self",
        ]
    );
    assert_eq!(api.key_value_stores, ["default", "my-store", "snake_store"]);
    assert_eq!(api.sqlite_databases, ["default"]);
    assert_eq!(api.ai_models, ["llama2-chat"]);
    assert_eq!(api.variables["api_url"], "https://{{ api_host }}/v1");
    assert_eq!(api.variables["key"], "{{ api_key }}");
    assert_eq!(api.environment["RUST_LOG"], "info");
    assert_eq!(
        api.files,
        [
            FilesMount::Pattern("static/**/*".into()),
            FilesMount::Placement {
                source: "assets".into(),
                destination: "/assets".into()
            },
        ]
    );
    assert_eq!(api.exclude_files, ["**/secret"]);

    let admin = &m.components["admin-handler-component"];
    assert_eq!(admin.source, Path::new("/app/admin.wasm"));
    assert_eq!(admin.allowed_outbound_hosts, ["https://admin.example.com"]);

    let routes: Vec<(String, String)> = m.http_routes().collect();
    assert_eq!(
        routes,
        [
            ("api".to_string(), "/api/...".to_string()),
            ("admin-handler-component".to_string(), "/admin".to_string()),
            ("api".to_string(), "/api2/:id".to_string()),
        ]
    );
}

/// The HTTP part of spin's crates/manifest/tests/ui/normalization.toml(.norm).
#[test]
fn normalization_matches_spin() {
    let m = parse_ok(include_str!("fixtures/normalization.toml"));
    let pairs: Vec<(&str, &str)> = m
        .http_triggers
        .iter()
        .map(|t| (t.id.as_str(), t.component.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("hello-http-trigger", "hello"),
            ("admin-handler", "admin-handler-component"),
            ("http-trigger1", "http-trigger1-component"),
        ]
    );
    assert_eq!(
        m.components["http-trigger1-component"].source,
        Path::new("/app/other.wasm")
    );
}

#[test]
fn inline_ids_fall_back_to_counter() {
    let m = parse_ok(include_str!("fixtures/inline-ids.toml"));
    // `snake_id-component` is not kebab-case; `taken-component` exists; and
    // `inline-component1` exists too, so the counter moves on.
    assert_eq!(m.http_triggers[0].component, "inline-component2");
    assert_eq!(m.http_triggers[1].component, "inline-component3");
}

#[test]
fn load_resolves_against_the_manifest_directory() {
    let dir = std::env::temp_dir().join(format!("spin-app-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spin.toml");
    std::fs::write(&path, with("")).unwrap();
    let m = load(&path).unwrap();
    assert_eq!(m.dir, dir);
    assert_eq!(m.components["web"].source, dir.join("web.wasm"));

    std::fs::write(&path, "spin_manifest_version = 3").unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("spin.toml"), "{err}");
    assert!(err.contains("invalid manifest version: 3"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let err = load(&dir.join("missing.toml")).unwrap_err().to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

// --- Errors; messages from spin's crates/manifest/tests/ui/invalid/*.err ---

#[test]
fn empty_manifest() {
    let err = parse_err("");
    assert!(
        err.contains("missing field `spin_manifest_version`"),
        "{err}"
    );
}

#[test]
fn bad_versions() {
    assert_eq!(
        parse_err("spin_manifest_version = \"0\""),
        "invalid manifest version: \"0\""
    );
    assert_eq!(
        parse_err("spin_manifest_version = 3"),
        "invalid manifest version: 3"
    );
    assert!(parse_err("spin_manifest_version = \"1\"").contains("not supported"));
}

#[test]
fn bad_component_id() {
    let err = parse_err(include_str!("fixtures/invalid/bad-component-id.toml"));
    assert!(err.contains("line 6, column 12"), "{err}");
    assert!(
        err.contains("words must be separated with '-', not '_'"),
        "{err}"
    );
    for (id, reason) in [
        ("Mixed-Case", "must be all lowercase or all UPPERCASE"),
        ("a--b", "words must not be empty"),
        ("a-1b", "must start with an ASCII letter"),
    ] {
        let err = parse_err(&with(&format!("[component.{id}]\nsource = \"x.wasm\"")));
        assert!(err.contains(reason), "{id}: {err}");
    }
    // All-UPPERCASE words and digits after the first letter are fine in component IDs.
    parse_ok(&with("[component.ABC-d1]\nsource = \"x.wasm\""));
}

#[test]
fn bad_component_reference() {
    let err = parse_err(include_str!(
        "fixtures/invalid/bad-component-reference.toml"
    ));
    assert!(err.contains("line 8, column 13"), "{err}");
    assert!(
        err.contains("'-'-separated words must start with an ASCII letter; got '1'"),
        "{err}"
    );
}

#[test]
fn bad_variable_names() {
    let err = parse_err(&with("[variables]\n\"bad+name\" = { required = true }"));
    assert!(
        err.contains("'_'-separated words may only contain alphanumeric ASCII; got '+'"),
        "{err}"
    );
    let err = parse_err(&with("[variables]\nUPPER = { required = true }"));
    assert!(
        err.contains("Lower-case identifiers must be all lowercase"),
        "{err}"
    );
    let err = parse_err(&with("[variables]\n\"kebab-name\" = { required = true }"));
    assert!(
        err.contains("words must be separated with '_', not '-'"),
        "{err}"
    );
    let err = parse_err(&with("[component.web.variables]\n\"bad-name\" = \"x\""));
    assert!(
        err.contains("words must be separated with '_', not '-'"),
        "{err}"
    );
}

#[test]
fn variables_must_be_required_xor_default() {
    let err = parse_err(&with(
        "[variables]\nx = { required = true, default = \"d\" }",
    ));
    assert_eq!(
        err,
        "invalid variable definition for `x`: must be `required` OR have a `default`"
    );
    let err = parse_err(&with("[variables]\nx = { secret = true }"));
    assert!(
        err.contains("must be `required` OR have a `default`"),
        "{err}"
    );
    let err = parse_err(&with("[variables]\nx = { default = \"d\", typo = 1 }"));
    assert!(err.contains("unknown field `typo`"), "{err}");
}

#[test]
fn trigger_with_missing_component() {
    let err = parse_err(&with(
        "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"nope\"",
    ));
    assert!(err.contains("component `nope`"), "{err}");
    assert!(err.contains("not defined"), "{err}");

    let err = parse_err(&with("[[trigger.http]]\nroute = \"/x\""));
    assert!(
        err.contains("Triggers must specify either component or static_response"),
        "{err}"
    );
}

#[test]
fn trigger_fields() {
    let err = parse_err(&with("[[trigger.http]]\ncomponent = \"web\""));
    assert!(err.contains("missing field `route`"), "{err}");

    let err = parse_err(&with(
        "[[trigger.http]]\nroute = { private = false }\ncomponent = \"web\"",
    ));
    assert!(
        err.contains(
            "route must be a string pattern or '{ private = true }': 'web' has { private = false }"
        ),
        "{err}"
    );
    let err = parse_err(&with("[[trigger.http]]\nroute = 5\ncomponent = \"web\""));
    assert!(err.contains("route must be a string pattern"), "{err}");

    let err = parse_err(&with(
        "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nrouet = \"/y\"",
    ));
    assert!(err.contains("unknown field `rouet`"), "{err}");

    let err = parse_err(&with(
        "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nexecutor = { type = \"wagi\" }",
    ));
    assert!(err.contains("WAGI"), "{err}");
    parse_ok(&with(
        "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"web\"\nexecutor = { type = \"spin\" }",
    ));

    let err = parse_err(&with(
        "[[trigger.http]]\nroute = \"/x\"\nstatic_response = { body = \"hi\" }",
    ));
    assert!(err.contains("static_response"), "{err}");
}

#[test]
fn other_trigger_types_are_rejected() {
    let err = parse_err(&with(
        "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"web\"",
    ));
    assert!(err.contains("trigger type `redis`"), "{err}");
    let err = parse_err("spin_manifest_version = 2\n[application]\nname = \"a\"\n");
    assert!(err.contains("missing field `trigger`"), "{err}");
}

#[test]
fn http_base() {
    parse_ok(&with("[application.trigger.http]\nbase = \"/\""));
    let err = parse_err(&with("[application.trigger.http]\nbase = \"/api\""));
    assert!(
        err.contains("The base must be prepended to each [[trigger.http]]'s 'route'"),
        "{err}"
    );
    let err = parse_err(&with("[application.trigger.http]\nother = 1"));
    assert!(err.contains("unknown field `other`"), "{err}");
}

#[test]
fn unknown_fields_are_rejected_like_spin() {
    let err = parse_err(&with("[component.web.nope]\nx = 1"));
    assert!(err.contains("unknown field `nope`"), "{err}");
    let err = parse_err(&with("typo = 1"));
    assert!(err.contains("unknown field `typo`"), "{err}");
    let err = parse_err(
        "spin_manifest_version = 2\n[application]\nname = \"a\"\nnmae = \"b\"\n[trigger]\n",
    );
    assert!(err.contains("unknown field `nmae`"), "{err}");
}

#[test]
fn non_local_sources_are_rejected() {
    let err = parse_err(
        &with("[component.remote]\nsource = { url = \"https://example.com/x.wasm\", digest = \"sha256:00\" }"),
    );
    assert!(err.contains("invalid component `remote`"), "{err}");
    assert!(err.contains("not supported"), "{err}");
    let err = parse_err(&with(
        "[component.reg]\nsource = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
    ));
    assert!(err.contains("registry sources"), "{err}");
}

#[test]
fn labels_must_be_kebab_or_snake() {
    // `with` appends after `[component.web]`, so the key lands in that table.
    let err = parse_err(&with("key_value_stores = [\"b@dlabel\"]"));
    assert!(err.contains("expected kebab-case or snake_case"), "{err}");
    let err = parse_err(&with("sqlite_databases = [\"camelCase\"]"));
    assert!(err.contains("expected kebab-case or snake_case"), "{err}");
}
