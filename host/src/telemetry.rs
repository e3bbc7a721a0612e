//! Traces, as Spin's `spin-telemetry` does them: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, a server span per request, a client span per
//! guest outbound HTTP request (its `traceparent` injected), exported over OTLP/HTTP protobuf by
//! a batch processor. Unset, nothing is recorded or exported.
//!
//! Whether or not traces are exported, every request carries a W3C trace context: the caller's
//! when its `traceparent` is valid, else one the host makes. The guest sees it as `traceparent`
//! (so a component can carry it into jobs) and the client gets its trace id back as
//! `x-request-id`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
pub const REQUEST_ID: &str = "x-request-id";

/// The tracer, when traces are exported; set once at start-up.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Spin's rule: traces are on when either endpoint variable is set and not empty, unless
/// `OTEL_SDK_DISABLED` is set and not empty.
fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// What `init` set up; flushes what is left on `shutdown`.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Reads the `OTEL_*` variables and, when traces are on, starts the exporter. A configuration
/// the host cannot honour (gRPC, JSON, an https endpoint) stops start-up with what to change;
/// an unreachable collector is only ever a warning, later.
pub fn init() -> anyhow::Result<Telemetry> {
    let endpoint =
        set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let Some(endpoint) = endpoint.filter(|_| set("OTEL_SDK_DISABLED").is_none()) else {
        return Ok(Telemetry { provider: None });
    };
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    match protocol.as_str() {
        "http/protobuf" => {}
        // Spin refuses http/json too; gRPC would need a second HTTP/2 stack (tonic) in the host.
        "grpc" | "http/json" => anyhow::bail!(
            "OTLP protocol `{protocol}` is not supported by streamgate-host: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (collectors take it on port 4318)"
        ),
        other => tracing::warn!(
            "`{other}` is not a valid OTLP protocol, defaulting to http/protobuf"
        ),
    }
    if !endpoint.starts_with("http://") {
        anyhow::bail!(
            "OTLP endpoint `{endpoint}`: streamgate-host exports over plain http:// only; send spans to a collector or agent beside it"
        );
    }
    let timeout = set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| set("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);

    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(ExportClient::new(timeout))
        .build()?;

    // service.name as Spin sets it: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES, else "spin".
    let service_name = opentelemetry::Key::from_static_str("service.name");
    let detected = opentelemetry_sdk::Resource::builder().build();
    let mut resource = opentelemetry_sdk::Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if detected
        .get(&service_name)
        .is_none_or(|name| name.as_str() == "unknown_service")
    {
        resource = resource.with_service_name("spin");
    }
    // The batch processor runs on a thread of its own and drops spans when its queue is full:
    // a request never waits for the collector.
    let provider = SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build();
    use opentelemetry::trace::TracerProvider as _;
    let _ = TRACER.set(provider.tracer("streamgate-host"));
    tracing::info!("exporting traces over OTLP/HTTP to {endpoint}");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

impl Telemetry {
    /// Sends the spans still queued, waiting a few seconds at most.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // Blocking: it waits for the export thread, whose sends run on this runtime.
        let _ = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        })
        .await;
    }
}

/// One request's trace context, and its server span when traces are exported.
pub struct RequestTrace {
    /// The server span, in a context its outbound children start from.
    span: Option<Context>,
    trace_id: TraceId,
}

/// Reads the request's W3C trace context and starts its server span. The request's
/// `traceparent` is then the caller's when it was valid (with its `tracestate`); otherwise it
/// is replaced by the server span's context, or a fresh one when nothing is recorded, and any
/// `tracestate` is dropped with it (W3C: a `tracestate` means nothing without its
/// `traceparent`).
pub fn start<B>(req: &mut hyper::Request<B>, client: SocketAddr) -> RequestTrace {
    let parent = if well_formed(req.headers()) {
        TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()))
    } else {
        Context::new()
    };
    let caller = parent.span().span_context().clone();
    let span = tracer().map(|tracer| {
        let mut attributes = vec![
            KeyValue::new("http.request.method", req.method().as_str().to_owned()),
            KeyValue::new("network.peer.address", client.ip().to_string()),
            KeyValue::new("network.peer.port", i64::from(client.port())),
            KeyValue::new("network.protocol.name", "http"),
            KeyValue::new("url.path", req.uri().path().to_owned()),
            KeyValue::new("url.query", req.uri().query().unwrap_or("").to_owned()),
            KeyValue::new("url.scheme", "http"),
        ];
        if let Some(forwarded) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new("client.address", forwarded.to_owned()));
        }
        let span = tracer
            .span_builder(req.method().as_str().to_owned())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        parent.with_span(span)
    });
    let context = if caller.is_valid() {
        caller.clone()
    } else if let Some(span) = &span {
        span.span().span_context().clone()
    } else {
        let ids = RandomIdGenerator::default();
        SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::default(),
            true,
            TraceState::NONE,
        )
    };
    if !caller.is_valid() {
        let headers = req.headers_mut();
        headers.remove(TRACESTATE);
        if let Ok(value) = http::HeaderValue::from_str(&traceparent(&context)) {
            headers.insert(TRACEPARENT, value);
        }
    }
    RequestTrace {
        span,
        trace_id: context.trace_id(),
    }
}

/// W3C's rules for `traceparent`, which the propagator applies only in part (it takes a
/// trace id of 30 digits, say): one header; `version-traceid-parentid-flags` in lower-case hex
/// of 2, 32, 16 and 2 digits; version `ff` invalid; version `00` with nothing after the flags.
/// A later version may append fields, which are ignored.
fn well_formed(headers: &http::HeaderMap) -> bool {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest = parts.next();
    hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && (version != "00" || rest.is_none())
}

fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

impl RequestTrace {
    /// The trace id, as the `x-request-id` response header and the log line give it.
    pub fn request_id(&self) -> String {
        self.trace_id.to_string()
    }

    /// The server span's context, for the guest's outbound requests; `None` when not exported.
    pub fn context(&self) -> Option<Context> {
        self.span.clone()
    }

    /// The route and component the request reached (Spin names the span `METHOD route`).
    pub fn routed(&self, method: &http::Method, route: &str, component: &str) {
        if let Some(cx) = &self.span {
            let span = cx.span();
            span.update_name(format!("{method} {route}"));
            span.set_attribute(KeyValue::new("http.route", route.to_owned()));
            span.set_attribute(KeyValue::new("spin.component_id", component.to_owned()));
        }
    }

    /// Ends the server span with the response's status; a 5xx is an error, as the HTTP
    /// semantic conventions say for a server.
    pub fn finish(self, status: u16) {
        if let Some(cx) = self.span {
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
            span.end();
        }
    }
}

/// A client span for one outbound request of a guest, its context injected as `traceparent`
/// (replacing any the guest set, as Spin does). Only the scheme, host and port are recorded:
/// an RPC URL can carry an API key in its path or query.
pub fn outbound(parent: &Context, request: &mut http::Request<impl Sized>) -> Context {
    let Some(tracer) = tracer() else {
        return parent.clone();
    };
    let uri = request.uri();
    let mut attributes = vec![KeyValue::new(
        "http.request.method",
        request.method().as_str().to_owned(),
    )];
    if let Some(scheme) = uri.scheme_str() {
        attributes.push(KeyValue::new("url.scheme", scheme.to_owned()));
    }
    if let Some(host) = uri.host() {
        attributes.push(KeyValue::new("server.address", host.to_owned()));
    }
    if let Some(port) = uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    }) {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    let span = tracer
        .span_builder(request.method().as_str().to_owned())
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    let cx = parent.with_span(span);
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
    cx
}

/// Ends an outbound client span with the status, or the error the guest sees.
pub fn outbound_done(cx: &Context, outcome: Result<u16, String>) {
    let span = cx.span();
    match outcome {
        Ok(status) => {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        Err(error) => {
            span.set_attribute(KeyValue::new("error.type", error.clone()));
            span.set_status(Status::error(error));
        }
    }
    span.end();
}

/// Sends export requests through the host's hyper client. The batch processor calls it from a
/// thread of its own, outside any runtime, so each send is spawned on the host's runtime.
struct ExportClient {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    /// Whether the last export failed: one warning per outage, not one per batch.
    failing: AtomicBool,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ExportClient {
    fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            runtime: tokio::runtime::Handle::current(),
            timeout,
            failing: AtomicBool::new(false),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let endpoint = request.uri().clone();
        let sent = self
            .runtime
            .spawn(async move {
                let send = async {
                    let response = client.request(request.map(Full::new)).await?;
                    let (head, body) = response.into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok::<_, HttpError>(http::Response::from_parts(head, body))
                };
                tokio::time::timeout(timeout, send)
                    .await
                    .map_err(|_| HttpError::from(format!("no answer within {timeout:?}")))?
            })
            .await
            .map_err(HttpError::from)
            .and_then(|r| r);
        let problem = match &sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("answered {}", response.status())),
            Err(e) => Some(e.to_string()),
        };
        match problem {
            Some(problem) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "trace export to {endpoint} failed ({problem}); spans are dropped until the collector answers"
                    );
                }
            }
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("trace export to {endpoint} works again");
                }
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(traceparent: Option<&str>) -> hyper::Request<()> {
        let mut builder = hyper::Request::builder().uri("/x");
        if let Some(tp) = traceparent {
            builder = builder.header(TRACEPARENT, tp).header(TRACESTATE, "a=b");
        }
        builder.body(()).unwrap()
    }

    fn client() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn a_valid_traceparent_is_kept_with_its_tracestate() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut req = request(Some(tp));
        let trace = start(&mut req, client());
        assert_eq!(req.headers()[TRACEPARENT], tp);
        assert_eq!(req.headers()[TRACESTATE], "a=b");
        assert_eq!(trace.request_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn an_invalid_or_missing_traceparent_is_replaced_by_a_fresh_one() {
        for tp in [
            None,
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("garbage"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ] {
            let mut req = request(tp);
            let trace = start(&mut req, client());
            let given = req.headers()[TRACEPARENT].to_str().unwrap().to_string();
            let parts: Vec<&str> = given.split('-').collect();
            assert_eq!(parts.len(), 4, "{given}");
            assert_eq!(parts[1], trace.request_id());
            assert_eq!(parts[1].len(), 32);
            assert_ne!(parts[1], "0".repeat(32));
            assert!(req.headers().get(TRACESTATE).is_none());
        }
    }
}
