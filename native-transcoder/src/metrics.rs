//! Prometheus metrics of the native side (docs/operations.md, "Metrics").
//!
//! One process-wide registry: the origin and the worker are separate processes, so each
//! exposes only what it moved (the other role's families are listed with no samples). Labels
//! are closed sets (actions, outcomes, route classes, status codes, error codes, rung names):
//! never a video id, a wallet or a path, so a scrape stays small however many videos exist.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use streamgate_core::api_error::ApiError;

use crate::server::{error_response, full, Body};

type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn seconds_buckets() -> Histogram {
    // 1 ms .. ~33 s: origin requests.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn job_buckets() -> Histogram {
    // 0.5 s .. ~68 min: a transcode of a short clip to a long source's.
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    // Worker.
    pub jobs: Counters,
    pub job_duration: Histograms,
    pub encode_duration: Histograms,
    pub job_retries: Counter,
    pub dead_letters: Counters,
    pub queue_length: Gauge,
    pub queue_lag: Gauge,
    pub queue_pending: Gauge,
    pub queue_oldest_pending_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub dead_letter_length: Gauge,
    pub queue_scrape_errors: Counter,
    // Both.
    pub event_deliveries: Counters,
    pub media_free_bytes: Gauge,
    // Origin.
    pub outbox_events: Gauge,
    pub upload_bytes: Counter,
    pub uploads_completed: Counter,
    pub requests: Counters,
    pub request_duration: Histograms,
    pub response_bytes: Counters,
    pub token_refusals: Counters,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("streamgate");
        let m = Metrics {
            jobs: Counters::default(),
            job_duration: Histograms::new_with_constructor(job_buckets),
            encode_duration: Histograms::new_with_constructor(job_buckets),
            job_retries: Counter::default(),
            dead_letters: Counters::default(),
            queue_length: Gauge::default(),
            queue_lag: Gauge::default(),
            queue_pending: Gauge::default(),
            queue_oldest_pending_age: Gauge::default(),
            dead_letter_length: Gauge::default(),
            queue_scrape_errors: Counter::default(),
            event_deliveries: Counters::default(),
            media_free_bytes: Gauge::default(),
            outbox_events: Gauge::default(),
            upload_bytes: Counter::default(),
            uploads_completed: Counter::default(),
            requests: Counters::default(),
            request_duration: Histograms::new_with_constructor(seconds_buckets),
            response_bytes: Counters::default(),
            token_refusals: Counters::default(),
            registry: Registry::default(),
        };
        r.register(
            "jobs",
            "Jobs the worker finished handling, by action (transcode, delete) and outcome \
             (succeeded, refused, retried, dead_lettered, handed_back)",
            m.jobs.clone(),
        );
        r.register_with_unit(
            "job_duration",
            "Wall time of one job attempt, by action and outcome",
            Unit::Seconds,
            m.job_duration.clone(),
        );
        r.register_with_unit(
            "encode_duration",
            "Wall time of the ladder encode, observed once per rung it produced (the rungs \
             are encoded together by one ffmpeg), by rung name",
            Unit::Seconds,
            m.encode_duration.clone(),
        );
        r.register(
            "job_retries",
            "Job attempts started on a redelivered entry (attempt 2 and later)",
            m.job_retries.clone(),
        );
        r.register(
            "dead_letters",
            "Entries moved to streamgate:jobs:dead, by reason (malformed, attempts_exhausted)",
            m.dead_letters.clone(),
        );
        r.register(
            "queue_length",
            "Entries in streamgate:jobs (XLEN), read at scrape time",
            m.queue_length.clone(),
        );
        r.register(
            "queue_lag",
            "Entries of streamgate:jobs not yet delivered to the transcoders group (XINFO GROUPS lag)",
            m.queue_lag.clone(),
        );
        r.register(
            "queue_pending",
            "Entries delivered to a worker and not yet acknowledged (XPENDING)",
            m.queue_pending.clone(),
        );
        r.register_with_unit(
            "queue_oldest_pending_age",
            "Age of the oldest unacknowledged entry (0 when none)",
            Unit::Seconds,
            m.queue_oldest_pending_age.clone(),
        );
        r.register(
            "dead_letter_queue_length",
            "Entries in streamgate:jobs:dead (XLEN)",
            m.dead_letter_length.clone(),
        );
        r.register(
            "queue_scrape_errors",
            "Scrapes whose Redis reads failed (the queue gauges keep their last values)",
            m.queue_scrape_errors.clone(),
        );
        r.register(
            "event_deliveries",
            "Signed event delivery attempts to the app, by event kind and outcome \
             (accepted, rejected, retry)",
            m.event_deliveries.clone(),
        );
        r.register_with_unit(
            "media_dir_free",
            "Free space of the media directory's file system (statvfs f_bavail), at scrape time",
            Unit::Bytes,
            m.media_free_bytes.clone(),
        );
        r.register(
            "outbox_events",
            "Events written to the origin's outbox and not yet accepted by the app",
            m.outbox_events.clone(),
        );
        r.register_with_unit(
            "upload",
            "Upload body bytes written to disk by tus PATCH requests",
            Unit::Bytes,
            m.upload_bytes.clone(),
        );
        r.register(
            "uploads_completed",
            "Uploads whose last byte arrived (the source is handed to the app)",
            m.uploads_completed.clone(),
        );
        r.register(
            "origin_requests",
            "Origin requests answered, by route class (uploads, media, metrics, other) and status code",
            m.requests.clone(),
        );
        r.register_with_unit(
            "origin_request_duration",
            "Time to the response head of origin requests, by route class",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        r.register_with_unit(
            "origin_response",
            "Response body bytes the origin sent (Content-Length of each answer; HEAD sends none), \
             by route class",
            Unit::Bytes,
            m.response_bytes.clone(),
        );
        r.register(
            "token_refusals",
            "Requests refused for their upload or playback token, by surface (upload, media) and \
             reason (the error code)",
            m.token_refusals.clone(),
        );
        // Closed label sets start at zero, so rate() and increase() see the first event.
        for reason in ["malformed", "attempts_exhausted"] {
            let _ = m
                .dead_letters
                .get_or_create(&vec![("reason", reason.to_string())]);
        }
        Metrics { registry: r, ..m }
    }

    pub fn job(&self, action: &str, outcome: &'static str, elapsed: Duration) {
        let labels = vec![("action", action.to_string()), ("outcome", outcome.into())];
        self.jobs.get_or_create(&labels).inc();
        self.job_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn token_refused(&self, surface: &'static str, reason: &'static str) {
        self.token_refusals
            .get_or_create(&vec![
                ("surface", surface.into()),
                ("reason", reason.into()),
            ])
            .inc();
    }

    pub fn event_delivery(&self, kind: &str, outcome: &'static str) {
        // Kinds are the fixed set of docs/pipeline.md; anything else is folded so a bug cannot
        // grow the label set.
        let kind = match kind {
            "upload.completed"
            | "transcode.started"
            | "transcode.progress"
            | "transcode.completed"
            | "transcode.failed"
            | "media.deleted" => kind,
            _ => "other",
        };
        self.event_deliveries
            .get_or_create(&vec![("kind", kind.into()), ("outcome", outcome.into())])
            .inc();
    }

    pub fn request(&self, route: &'static str, status: u16, body_bytes: u64, elapsed: Duration) {
        self.requests
            .get_or_create(&vec![
                ("route", route.into()),
                ("status", status.to_string()),
            ])
            .inc();
        let route = vec![("route", route.to_string())];
        self.request_duration
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
        self.response_bytes.get_or_create(&route).inc_by(body_bytes);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The route label of an origin request path: a closed set, never the path itself.
pub fn route_class(path: &str) -> &'static str {
    if path == "/uploads" || path.starts_with("/uploads/") {
        "uploads"
    } else if path.starts_with("/media/") {
        "media"
    } else if path == "/metrics" {
        "metrics"
    } else {
        "other"
    }
}

/// Reads the media directory's free space into its gauge.
pub fn sample_free_space(media_dir: &Path) {
    if let Ok(free) = crate::fsutil::available_bytes(media_dir) {
        METRICS
            .media_free_bytes
            .set(i64::try_from(free).unwrap_or(i64::MAX));
    }
}

/// The exposition as an HTTP answer.
pub fn response() -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(METRICS.encode())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Whether `Authorization: Bearer <token>` matches `expected`, in time independent of where
/// they differ.
pub fn bearer_matches(req: &Request<Incoming>, expected: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/metrics` on the public listener: only with the configured bearer token; without one
/// configured it is not there at all (404), so the media path never exposes it by accident.
pub fn public_endpoint(req: &Request<Incoming>, token: Option<&str>) -> Response<Body> {
    let Some(token) = token else {
        return error_response(&ApiError::not_found("no such resource on the media origin"));
    };
    if !bearer_matches(req, token) {
        let mut r = error_response(&ApiError::new(
            401,
            "metrics_token_required",
            "send Authorization: Bearer <STREAMGATE_METRICS_TOKEN> to read /metrics",
        ));
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return r;
    }
    response()
}

/// A listener that answers `GET /metrics` (and nothing else) for a private address; `before`
/// runs before each scrape to refresh the gauges read at scrape time.
pub async fn serve_private<F, Fut>(
    addr: SocketAddr,
    media_dir: PathBuf,
    before: F,
) -> Result<tokio::task::JoinHandle<()>>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    let bound = listener.local_addr()?;
    // Not on stdout: its first line is the readiness line scripts wait for.
    tracing::info!(%bound, "metrics on http://{bound}/metrics");
    Ok(tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        accept::serve_forever(listener, |stream, peer, connections| {
            let (before, media_dir) = (before.clone(), media_dir.clone());
            let service = service_fn(move |req: Request<Incoming>| {
                let (before, media_dir) = (before.clone(), media_dir.clone());
                async move {
                    let response = if req.uri().path() != "/metrics" {
                        error_response(&ApiError::not_found("only /metrics is served here"))
                    } else if req.method() != http::Method::GET {
                        error_response(&ApiError::method_not_allowed("GET"))
                    } else {
                        sample_free_space(&media_dir);
                        before().await;
                        response()
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            connections.spawn(
                builder.serve_connection(TokioIo::new(stream), service),
                peer,
                (),
            );
        })
        .await;
    }))
}
