//! The origin's HTTP server (hyper 1, HTTP/1.1). Routing is by path prefix so each surface is
//! its own module: `/uploads/…` is tus (`tus.rs`); `/media/…` is signed segment delivery
//! (`media.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use streamgate_core::api_error::ApiError;

use crate::config::{prepare_media_dir, Keys, PlaybackKeys};
use crate::events::{EventSender, Outbox};
use crate::job_intake::JobIntake;
use crate::media::Media;
use crate::tus::{UploadPolicy, Uploads};

/// Response bodies are boxed so a later module can stream files (segments) through the same
/// server without changing this signature.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut response = Response::new(full(e.to_json()));
    *response.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = e.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = e.allow {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

pub struct ServeConfig {
    pub listen: SocketAddr,
    pub media_dir: PathBuf,
    pub upload: UploadPolicy,
    pub keys: Keys,
    pub events_url: String,
    /// Where `POST /internal/v1/jobs` appends the jobs a Spin app hands over by HTTP (a Redis
    /// user that may append to the job stream); `None`: that route is off (404).
    pub jobs_redis_url: Option<String>,
    /// Keys for `/media/…` tokens (raw `playback_secret` bytes); `None` refuses media (503).
    pub playback_keys: Option<PlaybackKeys>,
    /// `max-age` of posters (public under `/posters/`, private under `/media/`); init and media
    /// segments never change, so they are `immutable` for a year whatever this says.
    pub media_max_age: u64,
    /// Clock skew allowed on `/media/…` tokens (seconds either side of their window).
    pub token_leeway_secs: u64,
    /// `/metrics` on this listener answers only to `Authorization: Bearer <this>`; `None`:
    /// it is not served here (404).
    pub metrics_token: Option<String>,
    /// A second listener that serves `/metrics` without a token (a private address).
    pub metrics_listen: Option<SocketAddr>,
}

struct State {
    uploads: Uploads,
    media: Media,
    jobs: JobIntake,
    media_dir: PathBuf,
    metrics_token: Option<String>,
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let mut response = if path == "/uploads" || path.starts_with("/uploads/") {
        state.uploads.handle(req).await
    } else if path.starts_with("/media/") || path.starts_with(crate::media::POSTERS) {
        state.media.handle(req).await
    } else if path == streamgate_core::job_intake::PATH {
        state.jobs.handle(req).await
    } else if path == "/metrics" {
        crate::metrics::sample_free_space(&state.media_dir);
        crate::metrics::public_endpoint(&req, state.metrics_token.as_deref())
    } else {
        error_response(&ApiError::not_found("no such resource on the media origin"))
    };
    // Browsers upload from the app's origin; tokens ride in the URL, never in cookies, so a
    // wildcard origin grants nothing a token does not.
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    // A module that sets its own list (media) keeps it.
    headers
        .entry(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .or_insert(HeaderValue::from_static(
            "Location, Upload-Offset, Upload-Length, Upload-Metadata, Tus-Resumable, \
             Tus-Version, Tus-Extension, Tus-Max-Size",
        ));
    response
}

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` resolves, then lets in-flight requests finish (30 s at most).
pub async fn serve(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    prepare_media_dir(&config.media_dir)?;
    let sender = EventSender::new(&config.events_url, config.keys.events)?;
    let outbox = Outbox::new(config.media_dir.join("outbox"), sender)?;
    let uploads = Uploads::new(
        config.media_dir.clone(),
        config.keys.clone(),
        config.upload.clone(),
        outbox.clone(),
    );
    let recovered = uploads.recover().await?;
    // Abandoned uploads and old tombstones: at start-up, then every 10 minutes.
    let (sweep_dir, abandoned_after) = (config.media_dir.clone(), config.upload.abandoned_after);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            let dir = sweep_dir.clone();
            let swept = tokio::task::spawn_blocking(move || {
                crate::tus::sweep(&dir, abandoned_after, streamgate_core::now())
            })
            .await;
            if let Ok((uploads, tombstones)) = swept {
                if uploads + tombstones > 0 {
                    tracing::info!(uploads, tombstones, "swept abandoned uploads");
                }
            }
        }
    });
    let resent = outbox.resume()?;
    if recovered + resent > 0 {
        tracing::info!(recovered, resent, "finished what the previous run left");
    }
    if config.playback_keys.is_none() {
        tracing::warn!(
            "no playback secret (STREAMGATE_PLAYBACK_SECRET): /media/… answers 503 until one is set"
        );
    }
    let media = Media::new(
        &config.media_dir,
        config.playback_keys.clone(),
        config.media_max_age,
        config.token_leeway_secs,
    );
    let jobs = JobIntake::new(config.keys.jobs.clone(), config.jobs_redis_url.as_deref())?;
    if jobs.enabled() {
        tracing::info!(
            "taking jobs from the app at {}",
            streamgate_core::job_intake::PATH
        );
    }
    let state = Arc::new(State {
        uploads,
        media,
        jobs,
        media_dir: config.media_dir.clone(),
        metrics_token: config.metrics_token.clone(),
    });
    if let Some(addr) = config.metrics_listen {
        crate::metrics::serve_private(addr, config.media_dir.clone(), || async {}).await?;
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // One line on stdout, so scripts and tests learn the port when they asked for port 0.
    println!("native-transcoder origin listening on http://{addr}");
    tracing::info!(%addr, media_dir = %config.media_dir.display(), "upload and media origin ready");

    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    accept::serve(
        listener,
        shutdown,
        DRAIN_TIMEOUT,
        |stream, peer, connections| {
            let state = state.clone();
            let service = service_fn(move |req| {
                let state = state.clone();
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_string();
                    let started = std::time::Instant::now();
                    let class = crate::metrics::route_class(&path);
                    let response = route(state, req).await;
                    crate::metrics::METRICS.request(
                        class,
                        response.status().as_u16(),
                        hyper::body::Body::size_hint(response.body())
                            .exact()
                            .unwrap_or(0),
                        started.elapsed(),
                    );
                    tracing::info!(%peer, %method, %path, status = response.status().as_u16(),
                    ms = started.elapsed().as_millis() as u64, "request");
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            connections.spawn(
                builder.serve_connection(TokioIo::new(stream), service),
                peer,
                (),
            );
        },
    )
    .await;
    let pending = outbox.pending();
    if pending > 0 {
        tracing::info!(
            pending,
            "undelivered events stay in the outbox for the next start"
        );
    }
    Ok(())
}
