//! The host as a process: traps, concurrency, graceful shutdown, and start-up refusals.

use std::time::Duration;

use host_tests::*;

#[test]
fn a_trapping_component_fails_only_its_own_request() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    for _ in 0..3 {
        let trapped = host.get_headed("/?op=trap");
        assert_eq!(trapped.status, 500);
        assert_eq!(
            trapped.header("content-type").unwrap_or_default(),
            "application/json"
        );
        assert_eq!(trapped.json()["code"], "internal_error", "{}", trapped.body);
        let next = host.get("/exact");
        assert_eq!(next.status, 200, "the host still serves after a trap");
    }
    // The log names the component and the route (as the manifest writes it).
    assert!(
        host.logs_eventually("component `probe` (route /...) trapped"),
        "{}",
        host.log()
    );
}

#[test]
fn fifty_concurrent_requests_are_served_concurrently() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    let spans: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let host = &host;
                s.spawn(move || {
                    let reply = host.get("/?op=sleep&ms=1000");
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    let v = reply.json();
                    (
                        v["start_ms"].as_u64().unwrap(),
                        v["end_ms"].as_u64().unwrap(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(spans.len(), 50);
    // Every request started before any finished: all fifty were in flight at once.
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        last_start < first_end,
        "requests were serialised: last start {last_start} >= first end {first_end}"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits() {
    let state = tempfile::tempdir().unwrap();
    let mut host = probe_app(state.path()).start();
    std::thread::scope(|s| {
        let slow = s.spawn(|| host.get("/?op=sleep&ms=1500"));
        // Let the slow request reach the component.
        std::thread::sleep(Duration::from_millis(400));
        host.terminate();
        let reply = slow.join().unwrap();
        assert_eq!(
            reply.status, 200,
            "the in-flight request completed: {}",
            reply.body
        );
    });
    let status = host.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(
        std::net::TcpStream::connect(host.addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn an_unimplemented_import_stops_startup_naming_the_interface() {
    let state = tempfile::tempdir().unwrap();
    let (status, stderr) =
        HostConfig::new("tests/apps/uses-llm/spin.toml", state.path()).start_expecting_failure();
    assert!(!status.success());
    assert!(stderr.contains("fermyon:spin/llm@2.0.0"), "{stderr}");
    assert!(stderr.contains("uses-llm"), "names the component: {stderr}");
}

#[test]
fn environment_from_the_manifest_reaches_the_component() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    assert_eq!(
        host.get("/?op=env&name=PROBE_ENV").json(),
        json!({"value": "from-manifest"})
    );
    assert_eq!(
        host.get("/?op=env&name=HOME").json(),
        json!({"value": null}),
        "the host's own environment does not leak in"
    );
}
