//! Prometheus metrics of the host, served on the admin listener (`--admin-listen`), never on
//! the app's own: the app's routes are the guests', and a wildcard route would shadow it.
//!
//! Labels are closed sets: component ids (from the manifest), status classes, outcome words,
//! and outbound hosts as the manifest allows them (a refused destination is `denied`, so a
//! guest cannot grow the label set). Never a path, a wallet or a video id.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::Semaphore;

type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.25 ms .. ~16 s: a cached JSON answer to a request held to its deadline.
    Histogram::new(exponential_buckets(0.00025, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Counters,
    pub request_duration: Histograms,
    pub instances_in_use: Gauge,
    pub instances_max: Gauge,
    pub requests_queued: Gauge,
    pub overloaded: Counters,
    pub traps: Counters,
    pub outbound: Counters,
    pub outbound_duration: Histograms,
    pub key_value: Counters,
    pub sqlite: Counters,
    pub up_since: Gauge<f64, AtomicU64>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("streamgate_host");
        let m = Metrics {
            registry: Registry::default(),
            requests: Counters::default(),
            request_duration: Histograms::new_with_constructor(latency_buckets),
            instances_in_use: Gauge::default(),
            instances_max: Gauge::default(),
            requests_queued: Gauge::default(),
            overloaded: Counters::default(),
            traps: Counters::default(),
            outbound: Counters::default(),
            outbound_duration: Histograms::new_with_constructor(latency_buckets),
            key_value: Counters::default(),
            sqlite: Counters::default(),
            up_since: Gauge::default(),
        };
        r.register(
            "requests",
            "Requests answered, by component (`-`: answered by the host itself) and status class",
            m.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time to the response head, by component and status class",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        r.register(
            "instances_in_use",
            "Instance-pool slots held by running requests",
            m.instances_in_use.clone(),
        );
        r.register(
            "instances_max",
            "Instance-pool slots (--max-concurrent-requests)",
            m.instances_max.clone(),
        );
        r.register(
            "requests_queued",
            "Requests waiting for an instance-pool slot",
            m.requests_queued.clone(),
        );
        r.register(
            "overloaded_refusals",
            "Requests refused with 503 overloaded, by reason (pool: no slot within \
             --queue-timeout-ms; client_connections: over --max-connections-per-client)",
            m.overloaded.clone(),
        );
        r.register(
            "guest_traps",
            "Guest runs that ended in a trap, by component and kind (trap, deadline, memory, \
             no_response, after_response)",
            m.traps.clone(),
        );
        r.register(
            "outbound_requests",
            "Guests' outbound HTTP requests, by component, destination host (self for the app \
             itself, denied when not allowed) and outcome (ok, denied, timeout, refused, error)",
            m.outbound.clone(),
        );
        r.register_with_unit(
            "outbound_request_duration",
            "Time to the outbound response head, by destination host",
            Unit::Seconds,
            m.outbound_duration.clone(),
        );
        r.register(
            "key_value_operations",
            "Key-value operations, by operation and outcome (ok, error)",
            m.key_value.clone(),
        );
        r.register(
            "sqlite_statements",
            "SQLite statements executed, by outcome (ok, error)",
            m.sqlite.clone(),
        );
        r.register_with_unit(
            "start_time",
            "When the host started, in seconds since the Unix epoch",
            Unit::Seconds,
            m.up_since.clone(),
        );
        // Closed label sets start at zero, so rate() and increase() see the first event.
        for reason in ["pool", "client_connections"] {
            let _ = m
                .overloaded
                .get_or_create(&vec![("reason", reason.to_string())]);
        }
        Metrics { registry: r, ..m }
    }

    /// Zero series for a component's traps, so an alert on their increase sees the first one.
    pub fn component_loaded(&self, component: &str) {
        for kind in [
            "trap",
            "deadline",
            "memory",
            "no_response",
            "after_response",
        ] {
            let _ = self.traps.get_or_create(&vec![
                ("component", component.to_string()),
                ("kind", kind.to_string()),
            ]);
        }
    }

    pub fn request(&self, component: Option<&str>, status: u16, elapsed: Duration) {
        let labels = vec![
            ("component", component.unwrap_or("-").to_string()),
            ("status_class", format!("{}xx", status / 100)),
        ];
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn overloaded(&self, reason: &'static str) {
        self.overloaded
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub fn trap(&self, component: &str, kind: &'static str) {
        self.traps
            .get_or_create(&vec![
                ("component", component.to_string()),
                ("kind", kind.to_string()),
            ])
            .inc();
    }

    pub fn outbound(&self, component: &str, host: &str, outcome: &'static str, elapsed: Duration) {
        self.outbound
            .get_or_create(&vec![
                ("component", component.to_string()),
                ("host", host.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.outbound_duration
            .get_or_create(&vec![("host", host.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn key_value(&self, op: &'static str, ok: bool) {
        self.key_value
            .get_or_create(&vec![
                ("op", op.to_string()),
                ("outcome", if ok { "ok" } else { "error" }.to_string()),
            ])
            .inc();
    }

    pub fn sqlite(&self, ok: bool) {
        self.sqlite
            .get_or_create(&vec![(
                "outcome",
                if ok { "ok" } else { "error" }.to_string(),
            )])
            .inc();
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The admin listener: `GET /metrics` and nothing else. The pool gauges are read from the
/// semaphore at scrape time.
pub async fn serve_admin(
    addr: SocketAddr,
    slots: Arc<Semaphore>,
    max: u32,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the admin listener {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    METRICS.instances_max.set(i64::from(max));
    METRICS.up_since.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default(),
    );
    tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        accept::serve_forever(listener, |stream, peer, connections| {
            let slots = slots.clone();
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let slots = slots.clone();
                async move {
                    let (status, kind, body) = if req.uri().path() != "/metrics" {
                        (
                            http::StatusCode::NOT_FOUND,
                            "application/json",
                            r#"{"error":"only /metrics is served on the admin listener","code":"not_found"}"#.to_string(),
                        )
                    } else if req.method() != http::Method::GET {
                        (
                            http::StatusCode::METHOD_NOT_ALLOWED,
                            "application/json",
                            r#"{"error":"use GET","code":"method_not_allowed"}"#.to_string(),
                        )
                    } else {
                        let free = slots.available_permits() as i64;
                        METRICS.instances_in_use.set(i64::from(max) - free);
                        (
                            http::StatusCode::OK,
                            "text/plain; version=0.0.4; charset=utf-8",
                            METRICS.encode(),
                        )
                    };
                    let response = hyper::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, kind)
                        .body(Full::new(Bytes::from(body)))
                        .expect("valid response");
                    Ok::<_, Infallible>(response)
                }
            });
            connections.spawn(http.serve_connection(TokioIo::new(stream), service), peer, ());
        })
        .await;
    });
    Ok(bound)
}
