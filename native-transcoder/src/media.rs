//! The media origin: `GET`/`HEAD /media/<video>/<path>?hdnts=<token>` serves
//! `<media-dir>/media/<video>/<path>`, only with a valid playback token on each request (see
//! docs/native-transcoder.md, "Media origin").
//!
//! - Token: `streamgate_core::edge_token::verify_with_leeway` under the raw bytes of
//!   `playback_secret` (and `playback_secret_previous`), against the request's canonical path,
//!   allowing the configured clock skew with the app that signed it (`--token-leeway-secs`); the
//!   matching ACL entry must end at a path-segment boundary (`/media/ab*` does not open
//!   `/media/abc/…`).
//! - Paths: every segment is percent-decoded and must be a plain name (`[A-Za-z0-9._-]`, not
//!   starting with `.`), so `..`, `%2e%2e`, `%2f`, backslashes, NUL, empty segments (`//`) and
//!   hidden names are refused with 400 before the file system is touched; the file is then
//!   canonicalized and must lie inside the video's directory (no symlink leaves it).
//! - Only a published ladder is served: `media/<video>/` exists only after the worker renamed a
//!   complete work directory into place (`ladder.json` is its marker); `.tmp-*` work directories
//!   can never be named (a video id has no `.`). Only media file types are served.
//! - Files up to 8 MiB (every segment) are found, opened and read in one blocking call; larger
//!   ones are streamed in 64 KiB reads. One `Range: bytes=…` is honoured (206 / 416).
//! - Caching: a published file never changes under its name (a ladder is renamed into place
//!   once and never replaced; a new upload is a new random video id), so init and media
//!   segments are `immutable` for a year; validators are a strong `ETag` (size + mtime) and
//!   `Last-Modified`, checked only after the token (a 304 is never an answer to a bad token).
//! - One exception to the token: `GET /posters/<video>.jpg` is a published video's poster,
//!   public like its title (see `Media::public_poster`).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token;
use tokio::io::AsyncSeekExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PlaybackKeys;
use crate::fsutil::is_safe_id;
use crate::server::{empty, error_response, Body};

/// The public posters' path prefix (see `Media::public_poster`).
pub const POSTERS: &str = "/posters/";
/// Marker the worker writes into a work directory before renaming it into place.
const LADDER_MARKER: &str = "ladder.json";
const CHUNK: usize = 64 * 1024;
/// Init and media segments: their names never get other bytes (see the module comment), so a
/// browser never revalidates them. `private`: the URL carries one viewer's token, and a shared
/// cache that does not check it would hand the bytes on past the token's `exp` (keyed on the
/// full URL) or to anyone (keyed without the query); a CDN that checks EdgeAuth at the edge is
/// configured to cache them itself (docs/operations.md, "Behind a CDN").
const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// Playlists, if a ladder holds any: always revalidated.
const REVALIDATE: &str = "private, no-cache";
/// Headers a player's script may read on a cross-origin media response.
pub const EXPOSE_HEADERS: &str = "Content-Length, Content-Range, Accept-Ranges, Content-Type, ETag";

#[derive(Clone)]
pub struct Media {
    root: PathBuf,
    keys: Option<PlaybackKeys>,
    max_age: u64,
    /// Clock skew allowed between the signer (the Spin app) and this machine, in seconds.
    leeway_secs: i64,
    /// KiB of whole-read files held by responses not yet sent (see [`WHOLE_READ_BUDGET_KIB`]).
    whole_reads: Arc<Semaphore>,
}

type Reply = Result<Response<Body>, ApiError>;

/// The type of `<dir>/<name>` in a published ladder. The audio track's init and media segments
/// (`audio/…`, written by the worker) are `audio/mp4`: MPEG registered `iso.segment` only
/// under `video/`.
fn content_type(dir: Option<&str>, name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    let audio = dir == Some(crate::ladder::AUDIO_TRACK);
    Some(match ext.as_str() {
        "m4s" | "mp4" if audio => "audio/mp4",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "m3u8" => "application/vnd.apple.mpegurl",
        _ => return None,
    })
}

/// How long a client may keep `name` (see [`IMMUTABLE`]).
fn cache_control(name: &str, max_age: u64) -> String {
    match name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()) {
        Some(e) if e == "m4s" || e == "mp4" => IMMUTABLE.to_string(),
        Some(e) if e == "m3u8" => REVALIDATE.to_string(),
        _ => format!("private, max-age={max_age}"),
    }
}

fn bad_path() -> ApiError {
    ApiError::new(
        400,
        "invalid_path",
        "the media path must be /media/<video>/<file> with plain names only",
    )
}

/// Percent-decodes one path segment; `None` for bytes that are not UTF-8. A broken escape is
/// left as it is, and its `%` then fails [`is_plain_name`].
fn percent_decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A file name the origin may serve: plain ASCII, no separators, not hidden, not `.`/`..`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `/media/<video>/<a>/<b>` → (video, [a, b]), every segment decoded and checked.
pub fn parse_path(raw: &str) -> Result<(String, Vec<String>), ApiError> {
    let rest = raw.strip_prefix("/media/").ok_or_else(bad_path)?;
    let mut segments = Vec::new();
    for part in rest.split('/') {
        let decoded = percent_decode(part).ok_or_else(bad_path)?;
        if !is_plain_name(&decoded) {
            return Err(bad_path());
        }
        segments.push(decoded);
    }
    if segments.len() < 2 || segments.len() > 8 || !is_safe_id(&segments[0]) {
        return Err(bad_path());
    }
    let video = segments.remove(0);
    Ok((video, segments))
}

/// `Range: bytes=a-b | a- | -n` against a file of `len` bytes. `None` means "send it all"
/// (no Range, another unit, several ranges, or a syntax error, which RFC 9110 lets a server
/// ignore); `Some(Err(()))` means unsatisfiable (416).
#[allow(clippy::result_unit_err)]
pub fn parse_range(value: Option<&str>, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value?.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if a.is_empty() {
        let n = num(b)?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(n), len - 1)));
    }
    let start = num(a)?;
    let end = if b.is_empty() { None } else { Some(num(b)?) };
    if let Some(end) = end {
        if end < start {
            return None;
        }
    }
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end.map_or(len - 1, |e| e.min(len - 1)))))
}

/// Whether an `If-None-Match` / `If-Range` list names `etag` (weak comparison for the former).
fn etag_listed(value: &str, etag: &str) -> bool {
    value.trim() == "*"
        || value
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag)
}

/// A response body that reads `remaining` bytes of an open file in 64 KiB chunks. Each chunk
/// is read into a buffer of its own that becomes the frame, so the bytes are not copied again
/// on their way to the socket (hyper cannot sendfile: the body is always bytes in memory).
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = this.remaining.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::with_capacity(want);
        match tokio_util::io::poll_read_buf(Pin::new(&mut this.file), cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    // The file shrank under us: end with an error rather than a short body
                    // that claims to be complete.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than when the response started",
                    ))));
                }
                // The allocation may hold more than asked for; a file that grew since the
                // response started must not add bytes past its Content-Length.
                let n = n.min(want);
                buf.truncate(n);
                this.remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Files up to this size are read whole, in the same blocking call that opens them; larger ones
/// are streamed in [`CHUNK`]s. Above the largest segment the worker writes (1080p, 4 s: ~2.5 MB).
const WHOLE_READ_MAX: u64 = 8 * 1024 * 1024;
/// What all whole-read responses not yet sent may hold at once. A streamed response holds one
/// 64 KiB chunk at a time however slowly its client reads; a whole-read one holds the file until
/// the last byte left, so when the origin falls behind (the viewers bench at 14 000: 17 000
/// connections, RSS 3.4 GB) they would pile up. Past this, files stream.
const WHOLE_READ_BUDGET_KIB: usize = 128 * 1024;

/// An opened media file: its metadata, and its bytes or the file to stream them from.
struct Opened {
    meta: std::fs::Metadata,
    content: Content,
}

enum Content {
    /// The file's bytes and their share of the budget, given back when the body is dropped.
    Whole(Bytes, OwnedSemaphorePermit),
    Stream(std::fs::File),
}

/// A whole-read response body: one frame, and the budget permit until the body is dropped.
struct WholeBody {
    bytes: Option<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl hyper::body::Body for WholeBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.bytes.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// [`Media::open`]'s work, on a blocking-pool thread.
fn open_blocking(
    video_dir: PathBuf,
    segments: &[String],
    read_whole: bool,
    budget: Arc<Semaphore>,
) -> Result<Opened, ApiError> {
    use std::io::Read;
    let missing = || ApiError::not_found("no such media file");
    // A published ladder only (the worker renames a complete directory into place).
    if !video_dir.join(LADDER_MARKER).try_exists().unwrap_or(false) {
        return Err(missing());
    }
    let base = std::fs::canonicalize(&video_dir).map_err(|_| missing())?;
    let mut wanted = video_dir;
    for s in segments {
        wanted.push(s);
    }
    let real = std::fs::canonicalize(&wanted).map_err(|_| missing())?;
    if !real.starts_with(&base) || real == base {
        tracing::warn!(path = %wanted.display(), "a media path resolves outside its video");
        return Err(missing());
    }
    let mut file = std::fs::File::open(&real).map_err(|_| missing())?;
    let meta = file.metadata().map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    let kib = u32::try_from(meta.len().div_ceil(1024)).unwrap_or(u32::MAX);
    let permit = match budget.try_acquire_many_owned(kib) {
        Ok(permit) if read_whole && meta.len() <= WHOLE_READ_MAX => permit,
        _ => {
            return Ok(Opened {
                meta,
                content: Content::Stream(file),
            })
        }
    };
    // Exactly the length the headers will announce: a file that grew since is cut there, one
    // that shrank is an error rather than a short body that claims to be complete.
    let mut buf = vec![0; meta.len() as usize];
    file.read_exact(&mut buf).map_err(|e| {
        tracing::warn!(error = %e, "cannot read a media file");
        ApiError::new(500, "read_failed", "the media file cannot be read")
    })?;
    Ok(Opened {
        meta,
        content: Content::Whole(Bytes::from(buf), permit),
    })
}

impl Media {
    /// `media_dir` is the media root (`<media-dir>`); files come from `<media-dir>/media/`.
    /// Without keys every media request is refused with 503. Tokens are accepted from
    /// `st - leeway_secs` until `exp + leeway_secs`.
    pub fn new(
        media_dir: &Path,
        keys: Option<PlaybackKeys>,
        max_age: u64,
        leeway_secs: u64,
    ) -> Media {
        Media {
            root: media_dir.join("media"),
            keys,
            max_age,
            leeway_secs: i64::try_from(leeway_secs).unwrap_or(i64::MAX),
            whole_reads: Arc::new(Semaphore::new(WHOLE_READ_BUDGET_KIB)),
        }
    }

    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let mut response = match self.dispatch(&req).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = error_response(&e);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if e.status == 405 {
                    r.headers_mut().insert(
                        header::ALLOW,
                        HeaderValue::from_static("GET, HEAD, OPTIONS"),
                    );
                }
                r
            }
        };
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        // Lets players (hls.js, dash.js) measure download times for their bandwidth estimate.
        headers.insert("Timing-Allow-Origin", HeaderValue::from_static("*"));
        if req.method() == Method::HEAD {
            // Same headers as GET, no body.
            *response.body_mut() = empty();
        }
        response
    }

    async fn dispatch(&self, req: &Request<hyper::body::Incoming>) -> Reply {
        let raw = req.uri().path();
        if req.method() == Method::OPTIONS {
            // CORS preflight: it carries no credentials by definition, and answering it grants
            // nothing: the GET that follows still needs its token.
            return Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS")
                .header(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Range, If-Range, If-None-Match, Accept, Origin",
                )
                .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
                .body(empty())
                .expect("valid response"));
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::method_not_allowed("GET, HEAD, OPTIONS"));
        }
        if let Some(rest) = raw.strip_prefix(POSTERS) {
            return self.public_poster(req, rest).await;
        }
        let (video, segments) = parse_path(raw)?;
        let canonical = format!("/media/{video}/{}", segments.join("/"));
        self.check_token(req.uri().query(), &canonical)?;

        let (name, dirs) = segments.split_last().expect("at least one file segment");
        let Some(mime) = content_type(dirs.last().map(String::as_str), name) else {
            return Err(ApiError::not_found("no such media file"));
        };
        let opened = self.open(req, &video, &segments).await?;
        let cache = cache_control(name, self.max_age);
        self.respond(req.headers(), opened, mime, &cache).await
    }

    /// `/posters/<video>.jpg`: a published video's poster, without a token. A poster is public
    /// like the title (browse and the watch page show it before anyone signs in, as every
    /// video platform does); nothing else is: the name is one video id and the fixed suffix,
    /// nothing is decoded, and the only file it can open is that video's `poster.jpg`.
    async fn public_poster(&self, req: &Request<hyper::body::Incoming>, rest: &str) -> Reply {
        let missing = || ApiError::not_found("no such poster");
        let video = rest.strip_suffix(".jpg").ok_or_else(missing)?;
        if !is_safe_id(video) {
            return Err(missing());
        }
        // A deleted video's files may outlive it for a moment: its poster is gone at once.
        let media_dir = self.root.parent().unwrap_or(&self.root);
        if tokio::fs::try_exists(crate::config::tombstone(media_dir, video))
            .await
            .unwrap_or(true)
        {
            return Err(missing());
        }
        let opened = self
            .open(req, video, &["poster.jpg".to_string()])
            .await
            .map_err(|_| missing())?;
        // The same bytes for everyone: shared caches may keep it.
        let cache = format!("public, max-age={}", self.max_age);
        self.respond(req.headers(), opened, "image/jpeg", &cache)
            .await
    }

    fn check_token(&self, query: Option<&str>, path: &str) -> Result<(), ApiError> {
        let Some(keys) = &self.keys else {
            return Err(ApiError::new(
                503,
                "server_misconfigured",
                "the media origin has no playback key: set STREAMGATE_PLAYBACK_SECRET \
                 (or SPIN_VARIABLE_PLAYBACK_SECRET)",
            ));
        };
        // The token was signed on another machine: allow skew.
        check_edge_token(
            query,
            "hdnts",
            &keys.refs(),
            path,
            self.leeway_secs,
            "media",
        )
        .map(|_| ())
    }

    /// Finds, checks and opens the file, and reads it whole when it is at most
    /// [`WHOLE_READ_MAX`] bytes (every segment of the ladders we make), all in one trip to the
    /// blocking pool: each `tokio::fs` call is a trip of its own (a wake-up of a pool thread and
    /// one back), and the ~10 trips a 300 kB segment took were half the origin's CPU under the
    /// viewers bench (docs/benchmarks.md). A HEAD, or a conditional GET that may well be
    /// answered 304, sends no body or likely none: its file is opened to be streamed, which
    /// reads nothing until the body is polled, rather than read whole for nothing.
    async fn open(
        &self,
        req: &Request<hyper::body::Incoming>,
        video: &str,
        segments: &[String],
    ) -> Result<Opened, ApiError> {
        let read_whole = req.method() == Method::GET
            && !req.headers().contains_key(header::IF_NONE_MATCH)
            && !req.headers().contains_key(header::IF_MODIFIED_SINCE);
        let video_dir = self.root.join(video);
        let segments = segments.to_vec();
        let budget = self.whole_reads.clone();
        tokio::task::spawn_blocking(move || open_blocking(video_dir, &segments, read_whole, budget))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "a media file read did not finish");
                Err(ApiError::new(
                    500,
                    "read_failed",
                    "the media file cannot be read",
                ))
            })
    }

    async fn respond(
        &self,
        headers: &HeaderMap,
        opened: Opened,
        mime: &'static str,
        cache_control: &str,
    ) -> Reply {
        let Opened { meta, content } = opened;
        let len = meta.len();
        let modified = meta.modified().ok();
        let mtime = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        // Size + mtime, not the inode: the same file copied to another origin (rsync keeps
        // mtimes) keeps its validator, so a CDN's revalidation against either gets a 304.
        let etag = format!("\"{len:x}-{:x}\"", mtime.as_nanos());
        let last_modified = modified.map(httpdate::fmt_http_date);
        let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let builder = |status: StatusCode| {
            let b = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, mime)
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::ETAG, &etag)
                .header(header::CACHE_CONTROL, cache_control);
            match &last_modified {
                Some(date) => b.header(header::LAST_MODIFIED, date),
                None => b,
            }
        };

        // The token was checked before this: a 304 only ever answers an authorised request.
        // If-Modified-Since counts only without If-None-Match (RFC 9110 13.1.3); HTTP dates
        // have whole seconds.
        let not_modified = match header_str(header::IF_NONE_MATCH) {
            Some(v) => etag_listed(v, &etag),
            None => header_str(header::IF_MODIFIED_SINCE)
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
                .is_some_and(|since| modified.is_some() && mtime.as_secs() <= since.as_secs()),
        };
        if not_modified {
            return Ok(builder(StatusCode::NOT_MODIFIED)
                .body(empty())
                .expect("valid response"));
        }
        // If-Range with a validator that no longer matches: send the whole (changed) file.
        let range_allowed = match header_str(header::IF_RANGE) {
            None => true,
            Some(v) => v.trim() == etag,
        };
        let range = if range_allowed {
            parse_range(header_str(header::RANGE), len)
        } else {
            None
        };
        let io = |e: std::io::Error| {
            tracing::warn!(error = %e, "cannot read a media file");
            ApiError::new(500, "read_failed", "the media file cannot be read")
        };
        let (status, start, count) = match range {
            None => (StatusCode::OK, 0, len),
            Some(Err(())) => {
                let mut r = error_response(&ApiError::new(
                    416,
                    "range_not_satisfiable",
                    format!("the requested range is outside the file ({len} bytes)"),
                ));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
                );
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return Ok(r);
            }
            Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        };
        let mut b = builder(status).header(header::CONTENT_LENGTH, count);
        if status == StatusCode::PARTIAL_CONTENT {
            b = b.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{len}", start + count - 1),
            );
        }
        let body = match content {
            // Already in memory: the range is a view of it, no copy.
            Content::Whole(bytes, permit) => {
                let (start, end) = (start as usize, (start + count) as usize);
                WholeBody {
                    bytes: Some(bytes.slice(start..end)).filter(|b| !b.is_empty()),
                    _permit: permit,
                }
                .boxed()
            }
            Content::Stream(file) => {
                let mut file = tokio::fs::File::from_std(file);
                if start > 0 {
                    file.seek(SeekFrom::Start(start)).await.map_err(io)?;
                }
                FileBody {
                    file,
                    remaining: count,
                }
                .boxed()
            }
        };
        Ok(b.body(body).expect("valid response"))
    }
}

/// The edge token in the query parameter `param` (missing = empty), checked against `path` under
/// `keys` with `leeway_secs` of clock skew; a refusal is counted under `kind` (`media`,
/// `upload`) and answers 403 with the token error's code. The ACL's segment-boundary rule is
/// edge_token's own (one video's token never opens another whose id it prefixes).
pub(crate) fn check_edge_token(
    query: Option<&str>,
    param: &str,
    keys: &[&[u8]],
    path: &str,
    leeway_secs: i64,
    kind: &'static str,
) -> Result<edge_token::EdgeToken, ApiError> {
    let token = query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == param)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    edge_token::verify_with_leeway(&token, keys, path, streamgate_core::now(), leeway_secs).map_err(
        |e| {
            crate::metrics::METRICS.token_refused(kind, e.code());
            ApiError::new(403, e.code(), format!("{kind} refused: {e}"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain_names_only() {
        let ok = parse_path("/media/vid_1/720p/seg_00001.m4s").unwrap();
        assert_eq!(
            ok,
            ("vid_1".into(), vec!["720p".into(), "seg_00001.m4s".into()])
        );
        assert_eq!(
            parse_path("/media/vid_1/poster%2Ejpg").unwrap().1,
            vec!["poster.jpg".to_string()]
        );
        for bad in [
            "/media/vid_1/../vid_2/poster.jpg",
            "/media/vid_1/%2e%2e/vid_2/poster.jpg",
            "/media/vid_1/%2E%2E%2Fvid_2%2Fposter.jpg",
            "/media/vid_1/720p%2fseg.m4s",
            "/media/vid_1/720p%5cseg.m4s",
            "/media/vid_1/720p\\seg.m4s",
            "/media/vid_1//etc/passwd",
            "/media/vid_1/poster.jpg%00.m4s",
            "/media/vid_1/.hidden",
            "/media/vid_1/./poster.jpg",
            "/media/vid_1/%zz",
            "/media/vid_1",
            "/media/vid_1/",
            "/media/.tmp-vid_1-abc/720p/init.mp4",
            "/media//etc/passwd",
            "/mediax/vid_1/poster.jpg",
        ] {
            assert!(parse_path(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Some(Ok((0, 3))));
        assert_eq!(parse_range(Some("bytes=4-"), 10), Some(Ok((4, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Some(Ok((7, 9))));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Some(Ok((0, 9))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Some(Ok((5, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Some(Err(())));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Some(Err(())));
        assert_eq!(parse_range(Some("bytes=0-"), 0), Some(Err(())));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), None);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), None);
        assert_eq!(parse_range(Some("items=0-1"), 10), None);
        assert_eq!(parse_range(Some("bytes=a-b"), 10), None);
    }

    #[test]
    fn content_types() {
        let video = Some("720p");
        assert_eq!(
            content_type(video, "seg_00001.m4s"),
            Some("video/iso.segment")
        );
        assert_eq!(content_type(video, "init.mp4"), Some("video/mp4"));
        assert_eq!(
            content_type(Some("audio"), "seg_00001.m4s"),
            Some("audio/mp4")
        );
        assert_eq!(content_type(Some("audio"), "init.mp4"), Some("audio/mp4"));
        assert_eq!(content_type(None, "poster.jpg"), Some("image/jpeg"));
        assert_eq!(
            content_type(video, "index.m3u8"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(content_type(None, "ladder.json"), None);
        assert_eq!(content_type(video, "noext"), None);
    }
}
