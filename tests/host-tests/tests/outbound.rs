//! Outbound HTTP and Redis: allowed hosts (from templates), denial, self-requests, connection
//! reuse, and a publish seen by a real redis-server subscriber.

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use host_tests::*;

/// A real HTTP/1.1 upstream on loopback that counts the TCP connections it accepts.
struct Upstream {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let port = tcp_peer(move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            serve_keep_alive(stream)
        });
        Upstream { port, connections }
    }
}

fn serve_keep_alive(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Skip headers; the probe sends GETs without bodies.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let body = format!(
            "upstream saw {}",
            request_line.split_whitespace().nth(1).unwrap_or("?")
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn fetch(host: &Host, prefix: &str, url: &str) -> Value {
    let reply = host.post(&format!("{prefix}/?op=http"), &json!({"url": url}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn allowed_hosts_come_from_templates_and_everything_else_is_denied() {
    let upstream = Upstream::start();
    let elsewhere = Upstream::start();
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path())
        .var("upstream_port", upstream.port.to_string())
        .start();

    let ok = fetch(
        &host,
        "",
        &format!("http://127.0.0.1:{}/hello", upstream.port),
    );
    assert_eq!(ok, json!({"status": 200, "body": "upstream saw /hello"}));

    // Same host, another port: not in allowed_outbound_hosts.
    let denied = fetch(&host, "", &format!("http://127.0.0.1:{}/", elsewhere.port));
    assert_eq!(denied, json!({"err": "Http(ErrorCode::HttpRequestDenied)"}));
    assert_eq!(
        elsewhere.connections.load(Ordering::SeqCst),
        0,
        "no connection was attempted"
    );
    assert!(
        host.logs_eventually("Outbound network destination not allowed"),
        "{}",
        host.log()
    );

    // A component with no allowed_outbound_hosts reaches nothing.
    let restricted = fetch(
        &host,
        "/restricted",
        &format!("http://127.0.0.1:{}/", upstream.port),
    );
    assert_eq!(
        restricted,
        json!({"err": "Http(ErrorCode::HttpRequestDenied)"})
    );
}

#[test]
fn outbound_connections_are_reused() {
    let upstream = Upstream::start();
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path())
        .var("upstream_port", upstream.port.to_string())
        .start();
    for i in 0..10 {
        let out = fetch(
            &host,
            "",
            &format!("http://127.0.0.1:{}/{i}", upstream.port),
        );
        assert_eq!(out["status"], 200);
    }
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "ten sequential requests from ten instances share one pooled connection"
    );
}

#[test]
fn relative_urls_are_routed_back_into_the_app_when_self_is_allowed() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    let out = fetch(&host, "", "/users/5?op=headers");
    assert_eq!(out["status"], 200);
    let inner: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["headers"]["spin-matched-route"], "/users/:id");
    assert_eq!(inner["headers"]["spin-path-match-id"], "5");

    let denied = fetch(&host, "/restricted", "/users/5?op=headers");
    assert_eq!(denied, json!({"err": "Http(ErrorCode::HttpRequestDenied)"}));
}

#[test]
fn redis_publish_reaches_a_real_subscriber() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = probe_app_with_redis(state.path(), &redis).start();

    let mut conn = redis.client().get_connection().unwrap();
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe("streamgate-test").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let published = host.post(
        "/?op=redis",
        &json!({"address": redis.url(), "action": "publish", "channel": "streamgate-test", "payload": "hello from wasm"}),
    );
    assert_eq!(published.json(), json!({"ok": null}));
    let message = pubsub
        .get_message()
        .expect("the subscriber receives the message");
    assert_eq!(message.get_channel_name(), "streamgate-test");
    assert_eq!(message.get_payload::<String>().unwrap(), "hello from wasm");
}

#[test]
fn redis_execute_appends_to_a_stream_and_disallowed_addresses_are_refused() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = probe_app_with_redis(state.path(), &redis).start();
    let exec = |command: &str, args: Value| host.probe_redis_execute(&redis.url(), command, args);
    let id = exec("XADD", json!(["jobs", "*", "video", "v1"]));
    let id = id["ok"][0]
        .as_str()
        .expect("XADD returns the entry id")
        .to_string();
    assert!(id.contains('-'), "stream id {id}");
    assert_eq!(exec("XLEN", json!(["jobs"])), json!({"ok": [1]}));
    // Arrays are flattened, as in Spin.
    let range = exec("XRANGE", json!(["jobs", "-", "+"]));
    assert_eq!(range, json!({"ok": [id, "video", "v1"]}));
    assert_eq!(
        exec("SET", json!(["k", "v"])),
        json!({"ok": [{"status": "OK"}]})
    );

    let mut direct = redis.client().get_connection().unwrap();
    let len: i64 = redis::cmd("XLEN").arg("jobs").query(&mut direct).unwrap();
    assert_eq!(len, 1, "the entry is really in redis");

    let refused = host.post(
        "/restricted/?op=redis",
        &json!({"address": redis.url(), "action": "publish", "channel": "c", "payload": "p"}),
    );
    assert_eq!(refused.json(), json!({"err": "Error::InvalidAddress"}));
}

#[test]
fn redis_typed_commands_read_and_write_real_keys() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = probe_app_with_redis(state.path(), &redis).start();
    let op = |action: &str, key: &str, payload: &str, args: Value| {
        host.post(
            "/?op=redis",
            &json!({"address": redis.url(), "action": action, "channel": key,
                    "payload": payload, "args": args}),
        )
        .json()
    };
    assert_eq!(op("get", "greeting", "", json!([])), json!({"ok": null}));
    assert_eq!(
        op("set", "greeting", "hello", json!([])),
        json!({"ok": null})
    );
    assert_eq!(op("get", "greeting", "", json!([])), json!({"ok": "hello"}));
    assert_eq!(op("incr", "counter", "", json!([])), json!({"ok": 1}));
    assert_eq!(op("incr", "counter", "", json!([])), json!({"ok": 2}));
    assert_eq!(
        op("sadd", "viewers", "", json!(["b", "a", "b"])),
        json!({"ok": 2}),
        "a set counts what it added"
    );
    assert_eq!(
        op("smembers", "viewers", "", json!([])),
        json!({"ok": ["a", "b"]})
    );
    assert_eq!(
        op("srem", "viewers", "", json!(["a", "z"])),
        json!({"ok": 1})
    );

    // What the component wrote is in Redis, as any client sees it.
    let mut direct = redis.client().get_connection().unwrap();
    let greeting: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut direct)
        .unwrap();
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("viewers")
        .query(&mut direct)
        .unwrap();
    assert_eq!(
        (greeting.as_str(), members),
        ("hello", vec!["b".to_string()])
    );

    assert_eq!(
        op("del", "", "", json!(["greeting", "counter", "missing"])),
        json!({"ok": 2})
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("greeting")
        .query(&mut direct)
        .unwrap();
    assert_eq!(exists, 0);
    // A type error is the WIT error, not a trap.
    assert_eq!(
        op("incr", "viewers", "", json!([])),
        json!({"err": "Error::Other(\"WRONGTYPE: Operation against a key holding the wrong kind of value\")"})
    );
}
