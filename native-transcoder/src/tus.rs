//! tus 1.0 core protocol + the creation extension (<https://tus.io/protocols/resumable-upload>),
//! as docs/pipeline.md ("Upload URL") specifies it.
//!
//! Durability: bytes are appended to `uploads/<video>/<upload>.part` and synced before a PATCH
//! answers, and the offset reported is the file's length, so what a client is told it sent is
//! on disk. Only a file whose length equals Upload-Length is renamed to `sources/<video>`, so a
//! crash never leaves something that looks complete. Every step after the rename is redone by
//! `recover` at start-up, so a crash between steps loses no `upload.completed` event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use serde::{Deserialize, Serialize};
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token::EdgeToken;
use streamgate_core::trace::TraceContext;
use tokio::io::AsyncWriteExt;

use crate::config::{self, Keys};
use crate::events::{Event, EventData, Outbox};
use crate::fsutil::{self, is_safe_id};
use crate::server::{empty, error_response, Body};

pub const TUS_VERSION: &str = "1.0.0";
/// How long a request waits for another request on the same video before answering 423, which
/// tus clients retry. A PATCH still receiving its body is asked to stop at once (see `Slot`), so
/// this bounds only a step that cannot stop midway (a creation, a sync, publishing the source).
const LOCK_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadInfo {
    video_id: String,
    upload_id: String,
    length: u64,
    #[serde(default)]
    metadata: Option<String>,
    created_at: i64,
    #[serde(default)]
    complete: bool,
}

/// What the origin accepts, per upload and per wallet (flags of `native-transcoder serve`).
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Largest upload.
    pub max_bytes: u64,
    /// A PATCH body that sends nothing for this long is cut (its bytes so far are kept).
    pub body_idle_timeout: Duration,
    /// Bytes one wallet may declare (Upload-Length) per UTC day.
    pub max_bytes_per_day: u64,
    /// Free space the media store keeps after an upload's declared length: below it a
    /// creation is refused with 507.
    pub min_free_bytes: u64,
    /// An incomplete upload older than this (the upload token's lifetime) is removed, and so
    /// is a deleted video's tombstone.
    pub abandoned_after: Duration,
}

#[derive(Clone)]
pub struct Uploads {
    media_dir: PathBuf,
    keys: Keys,
    policy: UploadPolicy,
    outbox: Outbox,
    /// Serialises the per-wallet ledgers' read-modify-write.
    quota: Arc<Mutex<()>>,
    /// One lock per video: creation, HEAD and PATCH of a video's upload never interleave.
    locks: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

/// A video's upload lock, and who asked for it last. A client that paused, or whose connection
/// died without a FIN, leaves its PATCH waiting for body bytes that never come (until
/// `body_idle_timeout`); when the same client comes back (HEAD, then PATCH), that stale PATCH
/// must not make it wait, as in tusd: every request for the upload takes a ticket, and a PATCH
/// stops reading its body as soon as a later ticket exists, keeps the bytes it has, and lets
/// the newer request in. The newest request wins.
#[derive(Default)]
struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    latest: tokio::sync::watch::Sender<u64>,
}

/// Held while a request works on an upload: the lock, and a way to learn that a later request
/// for the same upload is waiting (it then should stop and release the lock).
struct Held {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    /// Keeps the slot in `Uploads::locks` (it is pruned when nobody holds it), and so the
    /// sender `latest` listens to.
    _slot: Arc<Slot>,
    ticket: u64,
    latest: tokio::sync::watch::Receiver<u64>,
}

impl Held {
    /// Resolves once a later request for this upload has arrived.
    async fn superseded(&mut self) {
        let mine = self.ticket;
        if self.latest.wait_for(|&t| t != mine).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

type Reply = Result<Response<Body>, ApiError>;

fn tus(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("Tus-Resumable", TUS_VERSION)
}

/// The request's trace context (its valid `traceparent`, else a fresh trace).
fn request_trace<B>(req: &Request<B>) -> TraceContext {
    crate::trace::continue_or_fresh(header_str(req.headers(), streamgate_core::trace::HEADER))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    match header_str(headers, name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            ApiError::new(
                400,
                "invalid_header",
                format!("{name} must be a non-negative integer"),
            )
        }),
    }
}

impl Uploads {
    pub fn new(media_dir: PathBuf, keys: Keys, policy: UploadPolicy, outbox: Outbox) -> Self {
        Uploads {
            media_dir,
            keys,
            policy,
            outbox,
            quota: Arc::default(),
            locks: Arc::default(),
        }
    }

    fn video_dir(&self, video: &str) -> PathBuf {
        self.media_dir.join("uploads").join(video)
    }

    fn source(&self, video: &str) -> PathBuf {
        self.media_dir.join("sources").join(video)
    }

    fn info_path(&self, video: &str, upload: &str) -> PathBuf {
        self.video_dir(video).join(format!("{upload}.json"))
    }

    fn part_path(&self, video: &str, upload: &str) -> PathBuf {
        self.video_dir(video).join(format!("{upload}.part"))
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let mut response = match self.dispatch(req).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = error_response(&e);
                if e.status == 412 {
                    r.headers_mut()
                        .insert("Tus-Version", HeaderValue::from_static(TUS_VERSION));
                }
                if e.status == 413 {
                    r.headers_mut()
                        .insert("Tus-Max-Size", HeaderValue::from(self.policy.max_bytes));
                }
                r
            }
        };
        response
            .headers_mut()
            .insert("Tus-Resumable", HeaderValue::from_static(TUS_VERSION));
        response
    }

    async fn dispatch(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_string();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (video, upload) = match parts.as_slice() {
            ["uploads", v] if is_safe_id(v) => (v.to_string(), None),
            ["uploads", v, u] if is_safe_id(v) && is_safe_id(u) => {
                (v.to_string(), Some(u.to_string()))
            }
            _ => return Err(ApiError::not_found("no such upload")),
        };

        // tus: OPTIONS is answered without Tus-Resumable or a token, for discovery and CORS
        // preflights (browsers cannot add either to a preflight).
        if req.method() == Method::OPTIONS {
            return Ok(tus(StatusCode::NO_CONTENT)
                .header("Tus-Version", TUS_VERSION)
                .header("Tus-Extension", "creation")
                .header("Tus-Max-Size", self.policy.max_bytes)
                .header(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "POST, HEAD, PATCH, OPTIONS",
                )
                .header(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset, \
                     Upload-Defer-Length, Upload-Concat, Content-Type, X-HTTP-Method-Override, \
                     X-Requested-With",
                )
                .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
                .body(empty())
                .expect("valid response"));
        }

        match header_str(req.headers(), "Tus-Resumable") {
            Some(TUS_VERSION) => {}
            _ => {
                return Err(ApiError::new(
                    412,
                    "unsupported_tus_version",
                    "this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0",
                ))
            }
        }
        let token = self.check_token(&req, &path)?;
        if config::tombstone(&self.media_dir, &video).exists() {
            return Err(ApiError::new(
                410,
                "video_deleted",
                "this video was deleted, so its upload URL no longer works; create a new video",
            ));
        }

        // tus clients behind proxies that drop PATCH send POST + X-HTTP-Method-Override.
        let method = match header_str(req.headers(), "X-HTTP-Method-Override") {
            Some(m) => Method::from_bytes(m.trim().as_bytes())
                .map_err(|_| ApiError::new(400, "invalid_header", "bad X-HTTP-Method-Override"))?,
            None => req.method().clone(),
        };
        match (method, upload) {
            (Method::POST, None) => self.create(&req, &video, &token).await,
            (Method::HEAD, Some(upload)) => self.head(&video, &upload).await,
            (Method::PATCH, Some(upload)) => self.patch(req, &video, &upload).await,
            (_, None) => Err(ApiError::method_not_allowed("POST, OPTIONS")),
            (_, Some(_)) => Err(ApiError::method_not_allowed("HEAD, PATCH, OPTIONS")),
        }
    }

    fn check_token(&self, req: &Request<Incoming>, path: &str) -> Result<EdgeToken, ApiError> {
        // No clock-skew leeway for upload URLs (--token-leeway-secs is the media origin's).
        crate::media::check_edge_token(
            req.uri().query(),
            "token",
            &self.keys.upload_refs(),
            path,
            0,
            "upload",
        )
    }

    async fn lock(&self, video: &str) -> Result<Held, ApiError> {
        let slot = {
            let mut locks = self.locks.lock().unwrap();
            if locks.len() > 10_000 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(video.to_string()).or_default().clone()
        };
        // Taking a ticket before waiting tells a PATCH holding the lock to stop (see `Slot`).
        let mut ticket = 0;
        slot.latest.send_modify(|t| {
            *t += 1;
            ticket = *t;
        });
        let latest = slot.latest.subscribe();
        tokio::time::timeout(LOCK_WAIT, slot.lock.clone().lock_owned())
            .await
            .map(|guard| Held {
                _guard: guard,
                _slot: slot.clone(),
                ticket,
                latest,
            })
            .map_err(|_| {
                ApiError::new(
                    423,
                    "upload_busy",
                    "another request is writing this upload; retry shortly",
                )
                .with_retry_after(1)
            })
    }

    async fn create(&self, req: &Request<Incoming>, video: &str, token: &EdgeToken) -> Reply {
        let headers = req.headers();
        if headers.contains_key("Upload-Defer-Length") {
            return Err(ApiError::new(
                400,
                "defer_length_unsupported",
                "Upload-Defer-Length is not supported: send Upload-Length",
            ));
        }
        let length = parse_u64(headers, "Upload-Length")?.ok_or_else(|| {
            ApiError::new(
                400,
                "missing_upload_length",
                "send the file size in Upload-Length",
            )
        })?;
        if length > self.policy.max_bytes {
            return Err(ApiError::new(
                413,
                "upload_too_large",
                format!(
                    "the file is {length} bytes; this server accepts at most {} bytes",
                    self.policy.max_bytes
                ),
            ));
        }
        let metadata = header_str(headers, "Upload-Metadata").map(str::to_string);
        if metadata.as_ref().is_some_and(|m| m.len() > 4096) {
            return Err(ApiError::new(
                400,
                "invalid_header",
                "Upload-Metadata is too long",
            ));
        }

        // The wallet the app issued the URL to (the token's signed `data`); a URL without
        // one cannot be charged to anyone and is refused (fail closed).
        let owner = token
            .data
            .as_deref()
            .filter(|o| is_safe_id(o))
            .ok_or_else(|| {
                ApiError::new(
                    403,
                    "invalid_token",
                    "this upload URL names no owner; create the video again for a new URL",
                )
            })?
            .to_string();

        let _guard = self.lock(video).await?;
        if self.source(video).exists() {
            return Err(ApiError::new(
                409,
                "upload_complete",
                "this video already has a complete upload",
            ));
        }
        self.check_free_space(length)?;
        self.charge(&owner, length)?;
        let dir = self.video_dir(video);
        let media_dir = self.media_dir.clone();
        let info = UploadInfo {
            video_id: video.to_string(),
            upload_id: fsutil::random_hex(16),
            length,
            metadata,
            created_at: streamgate_core::now(),
            complete: false,
        };
        let info_clone = info.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // A new creation replaces any incomplete upload of the same video.
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(&dir)?;
            let part = dir.join(format!("{}.part", info_clone.upload_id));
            std::fs::File::create(&part)?.sync_all()?;
            fsutil::write_atomic(
                &dir.join(format!("{}.json", info_clone.upload_id)),
                &serde_json::to_vec(&info_clone).expect("serialises"),
            )?;
            fsutil::sync_dir(&media_dir.join("uploads"))
        })
        .await
        .expect("the creation task does not panic")
        .map_err(internal)?;

        if length == 0 {
            self.finish(&info, &request_trace(req))
                .await
                .map_err(internal)?;
        }
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let location = format!("/uploads/{video}/{}{query}", info.upload_id);
        tracing::info!(video, upload = %info.upload_id, length, "upload created");
        Ok(tus(StatusCode::CREATED)
            .header(header::LOCATION, location)
            .header("Upload-Offset", 0)
            .body(empty())
            .expect("valid response"))
    }

    /// 507 when the media store would keep less than `min_free_bytes` after this upload.
    fn check_free_space(&self, length: u64) -> Result<(), ApiError> {
        let free = fsutil::available_bytes(&self.media_dir).map_err(internal)?;
        let needed = length.saturating_add(self.policy.min_free_bytes);
        if free < needed {
            tracing::warn!(
                free,
                length,
                min_free = self.policy.min_free_bytes,
                "refusing an upload: the media store is nearly full"
            );
            return Err(insufficient_storage());
        }
        Ok(())
    }

    /// Adds `length` to the wallet's bytes of the current UTC day, or 429 past the quota. The
    /// declared length is charged at creation (a replaced or abandoned upload still counts):
    /// the quota bounds what a wallet can make the origin store, not what it finished.
    fn charge(&self, owner: &str, length: u64) -> Result<(), ApiError> {
        let _ledgers = self.quota.lock().unwrap();
        let now = streamgate_core::now();
        let today = now.div_euclid(86_400);
        let path = self.media_dir.join("quota").join(format!("{owner}.json"));
        let mut ledger = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<DayLedger>(&b).ok())
            .filter(|l| l.day == today)
            .unwrap_or(DayLedger {
                day: today,
                bytes: 0,
            });
        let total = ledger.bytes.saturating_add(length);
        if total > self.policy.max_bytes_per_day {
            let until_tomorrow = ((today + 1) * 86_400 - now).max(1) as u64;
            return Err(ApiError::new(
                429,
                "upload_quota_exceeded",
                format!(
                    "this wallet has uploaded {} of its {} bytes today; this upload ({length} \
                     bytes) would pass the daily quota: try again after midnight UTC",
                    ledger.bytes, self.policy.max_bytes_per_day
                ),
            )
            .with_retry_after(until_tomorrow));
        }
        ledger.bytes = total;
        std::fs::create_dir_all(path.parent().unwrap()).map_err(internal)?;
        fsutil::write_atomic(&path, &serde_json::to_vec(&ledger).expect("serialises"))
            .map_err(internal)
    }

    fn load(&self, video: &str, upload: &str) -> Result<UploadInfo, ApiError> {
        let text = std::fs::read(self.info_path(video, upload))
            .map_err(|_| ApiError::not_found("no such upload (it may have been replaced)"))?;
        serde_json::from_slice(&text).map_err(internal)
    }

    /// The durable offset: the `.part` file's length, or the full length once complete.
    fn offset(&self, info: &UploadInfo) -> Result<u64, ApiError> {
        if info.complete {
            return Ok(info.length);
        }
        match std::fs::metadata(self.part_path(&info.video_id, &info.upload_id)) {
            Ok(m) => Ok(m.len()),
            Err(_) if self.source(&info.video_id).exists() => Ok(info.length),
            Err(_) => Err(ApiError::not_found("no such upload")),
        }
    }

    async fn head(&self, video: &str, upload: &str) -> Reply {
        let _guard = self.lock(video).await?;
        let info = self.load(video, upload)?;
        let offset = self.offset(&info)?;
        let mut r = tus(StatusCode::OK)
            .header("Upload-Offset", offset)
            .header("Upload-Length", info.length)
            .header(header::CACHE_CONTROL, "no-store");
        if let Some(m) = &info.metadata {
            r = r.header("Upload-Metadata", m.as_str());
        }
        Ok(r.body(empty()).expect("valid response"))
    }

    async fn patch(&self, req: Request<Incoming>, video: &str, upload: &str) -> Reply {
        let headers = req.headers();
        let content_type = header_str(headers, "Content-Type").unwrap_or("");
        if content_type.split(';').next().map(str::trim) != Some("application/offset+octet-stream")
        {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                "a PATCH must have Content-Type: application/offset+octet-stream",
            ));
        }
        let claimed = parse_u64(headers, "Upload-Offset")?.ok_or_else(|| {
            ApiError::new(
                400,
                "missing_upload_offset",
                "send Upload-Offset with a PATCH",
            )
        })?;
        let declared = req.body().size_hint().exact();
        let trace = request_trace(&req);

        let mut held = self.lock(video).await?;
        let info = self.load(video, upload)?;
        let offset = self.offset(&info)?;
        if claimed != offset {
            return Err(ApiError::new(
                409,
                "offset_mismatch",
                format!(
                    "Upload-Offset is {claimed} but the server has {offset} bytes; HEAD to resume"
                ),
            ));
        }
        let remaining = info.length - offset;
        if declared.is_some_and(|n| n > remaining) {
            return Err(ApiError::new(
                413,
                "upload_too_large",
                format!(
                    "this PATCH would go past Upload-Length ({} bytes)",
                    info.length
                ),
            ));
        }
        if info.complete || remaining == 0 {
            if declared.unwrap_or(0) > 0 {
                return Err(ApiError::new(
                    409,
                    "upload_complete",
                    "this upload is complete",
                ));
            }
            return Ok(tus(StatusCode::NO_CONTENT)
                .header("Upload-Offset", offset)
                .body(empty())
                .expect("valid response"));
        }

        let part = self.part_path(video, upload);
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .await
            .map_err(|_| ApiError::not_found("no such upload"))?;
        let mut body = req.into_body();
        let mut written = 0u64;
        let mut failure: Option<ApiError> = None;
        loop {
            let next = tokio::select! {
                // Checked first, so a body that keeps coming cannot hold off a newer request.
                biased;
                () = held.superseded() => {
                    failure = Some(ApiError::new(
                        400,
                        "upload_interrupted",
                        "a later request for this upload took over; the bytes stored so far \
                         are kept: HEAD for the offset",
                    ));
                    break;
                }
                next = tokio::time::timeout(
                    self.policy.body_idle_timeout,
                    http_body_util::BodyExt::frame(&mut body),
                ) => next,
            };
            let frame = match next {
                Err(_) => {
                    failure = Some(ApiError::new(
                        408,
                        "body_timeout",
                        "the upload body stalled",
                    ));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    // The client went away mid-PATCH: keep what arrived, it is the resume point.
                    failure = Some(ApiError::new(
                        400,
                        "body_interrupted",
                        format!("the upload body was cut: {e}"),
                    ));
                    break;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = remaining - written;
            let take = (data.len() as u64).min(room) as usize;
            if let Err(e) = file.write_all(&data[..take]).await {
                failure = Some(storage_error(e));
                break;
            }
            written += take as u64;
            crate::metrics::METRICS.upload_bytes.inc_by(take as u64);
            if take < data.len() {
                failure = Some(ApiError::new(
                    413,
                    "upload_too_large",
                    format!("this PATCH goes past Upload-Length ({} bytes)", info.length),
                ));
                break;
            }
        }
        file.flush().await.map_err(storage_error)?;
        file.sync_data().await.map_err(storage_error)?;
        drop(file);
        let offset = self.offset(&info)?;
        tracing::debug!(video, upload, written, offset, "patch applied");
        // Every byte is stored: the upload is complete whatever happened to the request that
        // brought the last one (a body cut after it, or running past Upload-Length), since a
        // client that HEADs now is told offset = length and stops.
        if offset == info.length {
            self.finish(&info, &trace).await.map_err(internal)?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(tus(StatusCode::NO_CONTENT)
            .header("Upload-Offset", offset)
            .body(empty())
            .expect("valid response"))
    }

    /// Publishes a complete upload: rename into `sources/`, persist the event, mark complete.
    /// Each step is idempotent, so `recover` can redo whatever a crash interrupted. The event
    /// continues `trace`, the trace of the request that brought the last byte, so the app's
    /// transcode job and the worker's logs are that trace too.
    async fn finish(&self, info: &UploadInfo, trace: &TraceContext) -> anyhow::Result<()> {
        if config::tombstone(&self.media_dir, &info.video_id).exists() {
            // Deleted while its last bytes arrived: nothing is published.
            let _ = std::fs::remove_dir_all(self.video_dir(&info.video_id));
            tracing::info!(video = %info.video_id, "upload of a deleted video discarded");
            return Ok(());
        }
        let part = self.part_path(&info.video_id, &info.upload_id);
        let source = self.source(&info.video_id);
        let info_path = self.info_path(&info.video_id, &info.upload_id);
        let media_dir = self.media_dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if part.exists() {
                std::fs::File::open(&part)?.sync_all()?;
                std::fs::rename(&part, &source)?;
                fsutil::sync_dir(&media_dir.join("sources"))?;
                fsutil::sync_dir(part.parent().unwrap())?;
            }
            Ok(())
        })
        .await??;
        self.outbox.enqueue(
            Event::new(
                format!("upload.completed:{}:{}", info.video_id, info.upload_id),
                &info.video_id,
                EventData::UploadCompleted {
                    size: info.length,
                    source: format!("sources/{}", info.video_id),
                },
            )
            .with_trace(&crate::trace::child(trace)),
        )?;
        let done = UploadInfo {
            complete: true,
            ..info.clone()
        };
        fsutil::write_atomic(&info_path, &serde_json::to_vec(&done)?)?;
        tracing::info!(video = %info.video_id, upload = %info.upload_id, size = info.length,
            trace_id = %trace.trace_id(), "upload complete");
        crate::metrics::METRICS.uploads_completed.inc();
        Ok(())
    }

    /// Finishes uploads a crash interrupted after their last byte was written.
    pub async fn recover(&self) -> anyhow::Result<usize> {
        let mut todo = Vec::new();
        let root = self.media_dir.join("uploads");
        for video in std::fs::read_dir(&root)? {
            let video = video?.path();
            if !video.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&video)? {
                let file = file?.path();
                if file.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let Ok(info) = serde_json::from_slice::<UploadInfo>(&std::fs::read(&file)?) else {
                    continue;
                };
                if info.complete {
                    continue;
                }
                let part = self.part_path(&info.video_id, &info.upload_id);
                let full = match std::fs::metadata(&part) {
                    Ok(m) => m.len() == info.length,
                    Err(_) => self.source(&info.video_id).exists(),
                };
                if full {
                    todo.push(info);
                }
            }
        }
        let n = todo.len();
        for info in todo {
            // The request that brought the last byte is gone: a trace of its own.
            self.finish(&info, &crate::trace::fresh()).await?;
        }
        Ok(n)
    }
}

/// Removes incomplete uploads older than `abandoned_after` (their URL has expired, so nobody can
/// finish them) and tombstones older than that (no URL they guard still works). Answers how
/// many of each were removed.
pub fn sweep(media_dir: &Path, abandoned_after: Duration, now: i64) -> (usize, usize) {
    let horizon = now - abandoned_after.as_secs() as i64;
    let mut uploads = 0;
    for video in std::fs::read_dir(media_dir.join("uploads"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = video.path();
        let infos: Vec<UploadInfo> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|f| f.path().extension().and_then(|e| e.to_str()) == Some("json"))
            .filter_map(|f| serde_json::from_slice(&std::fs::read(f.path()).ok()?).ok())
            .collect();
        // Only a directory whose every upload is incomplete and old: a complete one is the
        // record `recover` and HEAD rely on.
        let abandoned =
            !infos.is_empty() && infos.iter().all(|i| !i.complete && i.created_at < horizon);
        if abandoned && std::fs::remove_dir_all(&dir).is_ok() {
            tracing::info!(dir = %dir.display(), "removed an abandoned upload");
            uploads += 1;
        }
    }
    let mut tombstones = 0;
    for entry in std::fs::read_dir(media_dir.join("deleted"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let at = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if at < horizon && std::fs::remove_file(entry.path()).is_ok() {
            tombstones += 1;
        }
    }
    (uploads, tombstones)
}

/// One wallet's upload bytes on one UTC day (`quota/<address>.json`).
#[derive(Debug, Serialize, Deserialize)]
struct DayLedger {
    day: i64,
    bytes: u64,
}

fn insufficient_storage() -> ApiError {
    ApiError::new(
        507,
        "insufficient_storage",
        "the media store is too full to take this upload now; retry later",
    )
    .with_retry_after(300)
}

/// A failed write: 507 when the disk is full (the client may retry later), else 500.
fn storage_error(e: std::io::Error) -> ApiError {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        tracing::error!(error = %e, "the media store is full");
        return insufficient_storage();
    }
    internal(e)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "upload storage error");
    ApiError::new(
        500,
        "storage_error",
        "the upload could not be stored; retry",
    )
}
