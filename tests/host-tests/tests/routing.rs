//! Spin's HTTP trigger routing and request headers, observed from inside the component.

use host_tests::*;

fn routed(host: &Host, path: &str) -> Value {
    let reply = host.get(path);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

#[test]
fn most_specific_route_wins_like_spin() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    // (request path, spin-matched-route, spin-path-info)
    let table = [
        ("/exact", "/exact", ""),
        ("/exact/sub", "/exact/sub", ""),
        ("/exact/other", "/...", "/exact/other"),
        ("/users/7", "/users/:id", ""),
        ("/users/7/posts", "/users/:id/posts/...", ""),
        ("/users/7/posts/9", "/users/:id/posts/...", "/9"),
        ("/users/7/posts/9/", "/users/:id/posts/...", "/9/"),
        ("/files/special", "/files/special", ""),
        ("/files/special/x", "/files/...", "/special/x"),
        ("/files/a/b.txt", "/files/...", "/a/b.txt"),
        ("/files", "/files/...", ""),
        ("/files/", "/files/...", "/"),
        ("/", "/...", "/"),
        ("/nothing/here", "/...", "/nothing/here"),
    ];
    for (path, route, path_info) in table {
        let seen = routed(&host, path);
        let headers = &seen["headers"];
        assert_eq!(headers["spin-matched-route"], route, "route for {path}");
        assert_eq!(headers["spin-path-info"], path_info, "path info for {path}");
        assert_eq!(seen["path"], path, "the component sees the original path");
    }
}

#[test]
fn spin_headers_describe_the_match() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    let seen = routed(&host, "/users/42/posts/a/b?x=1&y=2");
    let h = &seen["headers"];
    assert_eq!(h["spin-full-url"], host.url("/users/42/posts/a/b?x=1&y=2"));
    assert_eq!(h["spin-matched-route"], "/users/:id/posts/...");
    assert_eq!(h["spin-component-route"], "/users/:id/posts");
    assert_eq!(h["spin-raw-component-route"], "/users/:id/posts/...");
    assert_eq!(h["spin-path-info"], "/a/b");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-path-match-id"], "42");
    let client = h["spin-client-addr"].as_str().unwrap();
    assert!(client.starts_with("127.0.0.1:"), "client addr {client}");
    assert_eq!(seen["query"], "x=1&y=2");
}

#[test]
fn unknown_route_is_404_and_health_answers_from_wasm() {
    let state = tempfile::tempdir().unwrap();
    let host = real_app(state.path()).start();
    let health = host.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let ready = host.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["status"], "ready");
    for path in [
        "/nope",
        "/healthz",
        "/health/extra",
        "/api/v1/unknown",
        "/.well-known/spin/nope",
    ] {
        let reply = host.get_headed(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.header("content-type").unwrap_or_default(),
            "application/json",
            "{path}"
        );
        assert_eq!(reply.json()["code"], "not_found", "{path}: {}", reply.body);
        assert!(reply.json()["error"].is_string(), "{path}: {}", reply.body);
    }
    assert_eq!(host.get("/.well-known/spin/health").status, 200);
}
