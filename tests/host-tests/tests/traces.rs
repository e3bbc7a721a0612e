//! Traces as Spin exports them: with OTEL_EXPORTER_OTLP_ENDPOINT set, the host sends its spans
//! to an OTLP/HTTP receiver (here a real listener decoding the protobuf requests), continues the
//! caller's W3C trace, and carries it into the guest's outbound requests. Without it, every
//! request still has a valid traceparent for the guest and an `x-request-id` for the client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host_tests::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One HTTP/1.1 request as a small server reads it: path, headers (names lower-case), body.
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request from a keep-alive connection; `None` when the peer closes it.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        headers,
        body,
    })
}

/// Serves every connection of `listener` on a thread of its own, answering with `answer`.
fn serve<F>(listener: TcpListener, answer: F)
where
    F: Fn(Received) -> (String, Vec<u8>) + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                while let Some(request) = read_request(&mut reader) {
                    let (content_type, body) = answer(request);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if writer.write_all(head.as_bytes()).is_err()
                        || writer.write_all(&body).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

/// An OTLP/HTTP receiver: decodes each `POST /v1/traces` as an `ExportTraceServiceRequest`
/// and keeps the spans, with their resource's `service.name`.
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        serve(listener, move |request| {
            assert_eq!(request.path, "/v1/traces");
            assert_eq!(
                request.headers.get("content-type").map(String::as_str),
                Some("application/x-protobuf")
            );
            let export = ExportTraceServiceRequest::decode(request.body.as_slice())
                .expect("an OTLP ExportTraceServiceRequest");
            let mut sink = sink.lock().unwrap();
            for resource_spans in export.resource_spans {
                let service = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|r| string_attribute(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        sink.push((service.clone(), span));
                    }
                }
            }
            // An empty ExportTraceServiceResponse: full success.
            ("application/x-protobuf".into(), Vec::new())
        });
        Collector { port, spans }
    }

    /// Waits (bounded) for a span of `kind` in trace `trace_id`.
    fn span(&self, trace_id: &str, kind: SpanKind) -> (String, Span) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|(_, s)| hex(&s.trace_id) == trace_id && s.kind == kind as i32)
                .cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind:?} span of trace {trace_id} reached the collector"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An upstream the guest calls, keeping the `traceparent` of each request it gets.
fn upstream() -> (u16, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    serve(listener, move |request| {
        sink.lock()
            .unwrap()
            .push(request.headers.get("traceparent").cloned());
        ("text/plain".into(), b"upstream".to_vec())
    });
    (port, seen)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// A request with the given trace headers; answers status, `x-request-id` and body.
fn send(
    host: &Host,
    method: &str,
    path: &str,
    trace: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Option<String>, String) {
    let mut request = ureq::request(method, &host.url(path)).timeout(Duration::from_secs(30));
    for (name, value) in trace {
        request = request.set(name, value);
    }
    let response = match body {
        Some(body) => request.send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match response {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let request_id = response.header("x-request-id").map(str::to_string);
    (status, request_id, response.into_string().unwrap())
}

/// Exports quickly, so a test waits a fraction of a second for its spans, not five.
fn traced(config: HostConfig, endpoint: String) -> HostConfig {
    let mut config = config;
    config
        .env
        .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint));
    config
        .env
        .push(("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()));
    config
}

#[test]
fn the_server_span_continues_the_callers_trace_and_the_guests_outbound_call_carries_it() {
    let collector = Collector::start();
    let (upstream_port, upstream_seen) = upstream();
    let state = tempfile::tempdir().unwrap();
    let host = traced(
        probe_app(state.path()).var("upstream_port", upstream_port.to_string()),
        format!("http://127.0.0.1:{}", collector.port),
    )
    .start();

    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let (status, request_id, body) = send(
        &host,
        "POST",
        "/users/7?op=http",
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
        Some(&json!({"url": format!("http://127.0.0.1:{upstream_port}/chain")})),
    );
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply, json!({"status": 200, "body": "upstream"}));
    assert_eq!(request_id.as_deref(), Some(TRACE_ID));

    let (service, server) = collector.span(TRACE_ID, SpanKind::Server);
    assert_eq!(service, "spin", "service.name defaults to Spin's");
    assert_eq!(
        hex(&server.parent_span_id),
        CALLER_SPAN,
        "the server span is a child of the caller's span"
    );
    assert_eq!(server.name, "POST /users/:id");
    let attributes = &server.attributes;
    assert_eq!(
        string_attribute(attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string_attribute(attributes, "http.route").as_deref(),
        Some("/users/:id")
    );
    assert_eq!(
        int_attribute(attributes, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        string_attribute(attributes, "spin.component_id").as_deref(),
        Some("probe")
    );
    assert_eq!(
        string_attribute(attributes, "url.path").as_deref(),
        Some("/users/7")
    );
    assert_eq!(
        string_attribute(attributes, "url.query").as_deref(),
        Some("op=http")
    );

    // The guest's call to the upstream is a client span under the server span, and the
    // upstream got that span's context as its traceparent.
    let (_, client) = collector.span(TRACE_ID, SpanKind::Client);
    assert_eq!(hex(&client.parent_span_id), hex(&server.span_id));
    assert_eq!(
        int_attribute(&client.attributes, "server.port"),
        Some(i64::from(upstream_port))
    );
    assert_eq!(
        int_attribute(&client.attributes, "http.response.status_code"),
        Some(200)
    );
    let seen = upstream_seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![Some(format!("00-{TRACE_ID}-{}-01", hex(&client.span_id)))]
    );

    // A request with no trace context starts a trace of its own: its server span is a root,
    // and x-request-id is that trace's id.
    let (status, request_id, _) = send(&host, "GET", "/exact", &[], None);
    assert_eq!(status, 200);
    let request_id = request_id.expect("x-request-id");
    let (_, root) = collector.span(&request_id, SpanKind::Server);
    assert!(root.parent_span_id.is_empty(), "{:?}", root.parent_span_id);
    assert_eq!(root.name, "GET /exact");
}

#[test]
fn an_unreachable_collector_never_fails_or_delays_a_request() {
    // A collector that accepts connections and never answers: the worst case, worse than a
    // refused connection.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    std::thread::spawn(move || {
        for stream in silent.incoming().flatten() {
            holder.lock().unwrap().push(stream);
        }
    });
    let state = tempfile::tempdir().unwrap();
    let mut config = traced(probe_app(state.path()), format!("http://127.0.0.1:{port}"));
    config
        .env
        .push(("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "300".into()));
    let host = config.start();

    let started = Instant::now();
    for i in 0..40 {
        let traceparent = format!("00-{TRACE_ID}-{:016x}-01", i + 1);
        let (status, request_id, body) = send(
            &host,
            "GET",
            "/exact",
            &[("traceparent", &traceparent)],
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(request_id.as_deref(), Some(TRACE_ID));
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "40 requests took {:?}",
        started.elapsed()
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "the host did try to export"
    );
    assert!(
        host.logs_eventually("trace export to http://127.0.0.1"),
        "{}",
        host.log()
    );
    // Several exports failed by now (every 100 ms, each timing out after 300 ms): still one
    // warning for the outage.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        host.log().matches("trace export to").count(),
        1,
        "{}",
        host.log()
    );
}

#[test]
fn without_tracing_the_guest_still_gets_a_valid_traceparent_and_the_client_a_request_id() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    let guest_saw = |reply: &str| -> (Option<String>, Option<String>) {
        let v: Value = serde_json::from_str(reply).unwrap();
        (
            v["traceparent"].as_str().map(str::to_string),
            v["tracestate"].as_str().map(str::to_string),
        )
    };
    let valid = |traceparent: &str| -> String {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00");
        assert!(
            parts[1].len() == 32 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()),
            "{traceparent}"
        );
        assert_ne!(parts[1], "0".repeat(32));
        assert!(
            parts[2].len() == 16 && parts[2] != "0".repeat(16),
            "{traceparent}"
        );
        parts[1].to_string()
    };

    // A valid one reaches the guest as the caller sent it, with its tracestate.
    let caller = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let (status, request_id, body) = send(
        &host,
        "GET",
        "/exact?op=trace",
        &[("traceparent", &caller), ("tracestate", "vendor=1")],
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        guest_saw(&body),
        (Some(caller.clone()), Some("vendor=1".into()))
    );
    assert_eq!(request_id.as_deref(), Some(TRACE_ID));

    // Invalid ones (all-zero trace id, wrong length, upper case, not hex) are replaced, and
    // their tracestate dropped with them.
    for invalid in [
        format!("00-{}-{CALLER_SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
        format!("00-{}-{CALLER_SPAN}-01", &TRACE_ID[..30]),
        format!("00-{}-{CALLER_SPAN}-01", TRACE_ID.to_uppercase()),
        "not-a-traceparent".to_string(),
    ] {
        let (status, request_id, body) = send(
            &host,
            "GET",
            "/exact?op=trace",
            &[("traceparent", &invalid), ("tracestate", "vendor=1")],
            None,
        );
        assert_eq!(status, 200, "{body}");
        let (traceparent, tracestate) = guest_saw(&body);
        let traceparent = traceparent.expect("a traceparent");
        assert_ne!(traceparent, invalid);
        let trace_id = valid(&traceparent);
        assert_eq!(tracestate, None, "{invalid}");
        assert_eq!(request_id.as_deref(), Some(trace_id.as_str()), "{invalid}");
    }

    // None at all: each request gets a trace of its own.
    let (_, first, body) = send(&host, "GET", "/exact?op=trace", &[], None);
    let trace_id = valid(&guest_saw(&body).0.expect("a traceparent"));
    assert_eq!(first.as_deref(), Some(trace_id.as_str()));
    let (_, second, _) = send(&host, "GET", "/exact?op=trace", &[], None);
    assert_ne!(first, second);

    // The host's own answers carry one too, and the request log line names it.
    let (status, request_id, _) = send(&host, "GET", "/.well-known/spin/health", &[], None);
    assert_eq!(status, 200);
    let request_id = request_id.expect("x-request-id");
    assert_eq!(request_id.len(), 32);
    assert!(
        host.logs_eventually(&format!("request_id={request_id}")),
        "{}",
        host.log()
    );
}
