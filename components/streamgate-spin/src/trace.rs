//! The request's W3C trace context, and the components' structured log lines that carry its
//! trace id (docs/operations.md, "Following one request"). The embedded host always hands a
//! component a valid `traceparent`; Spin may not, and then the component starts the trace.

use streamgate_core::trace::{TraceContext, HEADER};

use crate::request::ApiRequest;

/// A new trace from the host's random source. Without randomness (which the host always has)
/// the trace is constant rather than the request refused: a trace id is for the logs only.
pub fn fresh() -> TraceContext {
    TraceContext::fresh(crate::random_bytes::<24>().unwrap_or([0; 24]))
}

/// The same trace, a new span: what this component passes on to the next hop.
pub fn child(parent: &TraceContext) -> TraceContext {
    parent.child(crate::random_bytes::<8>().unwrap_or([0; 8]))
}

/// The request's `traceparent` if it is a valid one, else a fresh trace.
pub fn of_request(request: &ApiRequest) -> TraceContext {
    request
        .header(HEADER)
        .and_then(TraceContext::parse)
        .unwrap_or_else(fresh)
}

/// Writes one JSON log line to stderr (which the host passes through to its own): `timestamp`,
/// `level`, `component`, `message`, `trace_id`, then `fields` (an object); the first two as the
/// host's and the native side's JSON lines have them, so one collector rule reads them all.
pub fn log(
    level: &str,
    component: &str,
    message: &str,
    trace: &TraceContext,
    fields: serde_json::Value,
) {
    let mut line = serde_json::Map::new();
    line.insert(
        "timestamp".into(),
        streamgate_core::siwe::rfc3339_utc(crate::now()).into(),
    );
    line.insert("level".into(), level.into());
    line.insert("component".into(), component.into());
    line.insert("message".into(), message.into());
    line.insert("trace_id".into(), trace.trace_id().into());
    if let serde_json::Value::Object(fields) = fields {
        line.extend(fields);
    }
    eprintln!("{}", serde_json::Value::Object(line));
}
