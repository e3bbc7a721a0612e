//! Videos and their gates: create (with a resumable upload URL), read, list, change the gate,
//! delete; and `/internal/v1/events`, where the native side reports uploads and transcodes.

mod events;
mod queue;
mod store;

use serde::{Deserialize, Serialize};
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token::{self, EdgeToken};
use streamgate_core::keys;
use streamgate_core::pipeline::Job;
use streamgate_core::session::Session;
use streamgate_core::settings::{JobTransport, Videos};
use streamgate_core::siwe::rfc3339_utc;
use streamgate_core::video::{self, GateRule, VideoStatus};
use streamgate_spin::config::Spin;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::secrets::Rotating;
use streamgate_spin::{now, random_bytes, response, trace};

const BODY_LIMIT: usize = 64 * 1024;
const UPLOAD_TOKEN_SECS: i64 = 24 * 60 * 60;
/// The `component` of this component's log lines.
const COMPONENT: &str = "metadata";

#[http_component]
async fn handle(req: IncomingRequest) -> Response {
    let head = ApiRequest::head(&req);
    // Only a POST is an event: any other method gets its 405 below without this check.
    let limit = if head.path == "/internal/v1/events" && head.method == Method::Post {
        // Before a byte of the body: a request whose signature header can never verify is
        // refused here, so an unsigned caller cannot make the app read an event-sized body.
        if let Err(e) = events::check_header(&head) {
            return response::error(&e);
        }
        events::BODY_LIMIT
    } else {
        BODY_LIMIT
    };
    let request = match head.read_body(req, limit).await {
        Ok(request) => request,
        Err(e) => return response::error(&e),
    };
    let path = request.path.clone();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let outcome = match (&request.method, segments.as_slice()) {
        // Paths are as documented (docs/openapi.yaml), without a trailing slash: `videos/` is
        // not the list, nor a video with an empty id.
        _ if path.ends_with('/') => Err(ApiError::not_found(format!(
            "no such endpoint: `{path}` (paths take no trailing slash)"
        ))),
        (Method::Post, ["api", "v1", "videos"]) => create(&request),
        (Method::Get, ["api", "v1", "videos"]) => list(&request),
        (Method::Get, ["api", "v1", "videos", id]) => get(&request, id),
        (Method::Delete, ["api", "v1", "videos", id]) => delete(&request, id),
        (Method::Put, ["api", "v1", "videos", id, "gate"]) => update_gate(&request, id),
        (Method::Post, ["internal", "v1", "events"]) => events::receive(&request),
        (_, ["api", "v1", "videos"]) => Err(ApiError::method_not_allowed("GET, POST")),
        (_, ["api", "v1", "videos", _]) => Err(ApiError::method_not_allowed("GET, DELETE")),
        (_, ["api", "v1", "videos", _, "gate"]) => Err(ApiError::method_not_allowed("PUT")),
        (_, ["internal", "v1", "events"]) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    outcome.unwrap_or_else(|e| response::error(&e))
}

fn signed_in(request: &ApiRequest) -> Result<Session, ApiError> {
    let kv = streamgate_spin::session::key_value()?;
    let keys = streamgate_spin::session::keys()?;
    streamgate_spin::session::authenticate(request.header("authorization"), &keys, &kv, now())
}

/// Who reads, on routes anyone may call: anonymous without an `Authorization` header; with one,
/// it must be a valid session (401 otherwise, as on the authenticated routes: a client whose
/// token expired hears so instead of silently seeing less). Answers the checksummed address.
fn reader(request: &ApiRequest) -> Result<Option<String>, ApiError> {
    if request.header("authorization").is_none() {
        return Ok(None);
    }
    Ok(Some(signed_in(request)?.address.to_checksum(None)))
}

fn pending_quota(settings: &Videos) -> store::PendingQuota {
    store::PendingQuota {
        max: settings.max_pending_uploads_per_wallet,
        window_secs: UPLOAD_TOKEN_SECS,
    }
}

fn too_many_pending(
    db: &spin_sdk::sqlite3::Connection,
    owner: &str,
    quota: &store::PendingQuota,
    now: i64,
) -> Result<ApiError, ApiError> {
    // Without action a slot frees itself when the oldest pending upload URL expires.
    let wait =
        store::oldest_pending_expiry(db, owner, quota, now)?.map_or(1, |at| (at - now).max(1));
    Ok(video::too_many_pending(quota.max, wait as u64))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVideo {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    gate: Vec<GateRule>,
}

#[derive(Serialize)]
struct Upload {
    url: String,
    expires_at: String,
    protocol: &'static str,
}

#[derive(Serialize)]
struct Created {
    id: String,
    status: &'static str,
    upload: Upload,
}

fn create(request: &ApiRequest) -> Result<Response, ApiError> {
    let session = signed_in(request)?;
    let body: CreateVideo = request.json()?;
    video::validate_text(&body.title, body.description.as_deref())?;
    let settings = Videos::load(&Spin)?;
    let gate = video::validate_gate(body.gate, &settings.chain_rpc_urls)?;
    let upload_key = keys::derive(&Rotating::load("events_secret")?.current, "upload");
    let media_base = &settings.media_base_url;

    let quota = pending_quota(&settings);

    let id = streamgate_core::nonce::generate_nonce(random_bytes()?);
    let now = now();
    let owner = session.address.to_checksum(None);
    let db = store::open()?;
    let inserted = store::insert_video(
        &db,
        &id,
        &owner,
        body.title.trim(),
        body.description.as_deref(),
        &gate,
        &quota,
        now,
    )?;
    if !inserted {
        return Err(too_many_pending(&db, &owner, &quota, now)?);
    }
    trace::log(
        "INFO",
        COMPONENT,
        "video created",
        &trace::of_request(request),
        serde_json::json!({ "video_id": id, "owner": owner }),
    );

    let expires = now + UPLOAD_TOKEN_SECS;
    // The owner rides in the token (`data`), signed: the origin keeps per-wallet upload quotas
    // without asking this app.
    let token = edge_token::sign(
        &EdgeToken {
            start: now,
            expires,
            acl: vec![format!("/uploads/{id}*")],
            data: Some(owner),
        },
        &upload_key,
    );
    Ok(response::json(
        201,
        &Created {
            upload: Upload {
                url: format!(
                    "{}/uploads/{id}?token={token}",
                    media_base.trim_end_matches('/')
                ),
                expires_at: rfc3339_utc(expires),
                protocol: "tus",
            },
            id,
            status: VideoStatus::AwaitingUpload.as_str(),
        },
    ))
}

fn get(request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let reader = reader(request)?;
    let db = store::open()?;
    let mut video = store::video_for(&db, id, reader.as_deref())?;
    video.with_public_poster(&media_base_url());
    Ok(response::json(200, &video))
}

/// The media origin's base URL, for public poster URLs; empty (no poster URLs) if unset.
fn media_base_url() -> String {
    Videos::public_media_base_url(&Spin)
}

/// The first non-empty value of `name`, percent-decoded (and `+` as a space) as a browser's
/// `URLSearchParams` or a form encodes it: `owner=0x%41…` is `owner=0xA…`.
fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

#[derive(Serialize)]
struct Page {
    items: Vec<store::Video>,
    next_cursor: Option<String>,
}

fn list(request: &ApiRequest) -> Result<Response, ApiError> {
    let query = video::ListQuery::parse(|name| query_param(&request.query, name))?;
    let reader = reader(request)?;
    let (query, own) = query.for_reader(reader.as_deref())?;
    let db = store::open()?;
    let (mut items, more) = store::list(&db, &query)?;
    if !own {
        items.iter_mut().for_each(store::Video::hide_owner_details);
    }
    let media_base = media_base_url();
    items
        .iter_mut()
        .for_each(|v| v.with_public_poster(&media_base));
    let next_cursor = more
        .then(|| {
            items
                .last()
                .map(|v| video::encode_cursor(v.created_at, &v.id))
        })
        .flatten();
    Ok(response::json(200, &Page { items, next_cursor }))
}

/// The video, if the caller owns it: 404 if there is none or it is someone else's and not ready
/// (such a video is invisible to them, as for reads), 403 if it is someone else's ready video.
fn owned(
    db: &spin_sdk::sqlite3::Connection,
    session: &Session,
    id: &str,
) -> Result<store::Video, ApiError> {
    let caller = session.address.to_checksum(None);
    let video = store::video(db, id)?;
    if !store::is_owner(&video, Some(&caller)) {
        if video.status != VideoStatus::Ready.as_str() {
            return Err(store::unknown(id));
        }
        return Err(ApiError::new(
            403,
            "not_owner",
            "only the video's owner may do this",
        ));
    }
    Ok(video)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateUpdate {
    gate: Vec<GateRule>,
}

fn update_gate(request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let session = signed_in(request)?;
    let body: GateUpdate = request.json()?;
    let db = store::open()?;
    let video = owned(&db, &session, id)?;
    let settings = Videos::load(&Spin)?;
    let gate = video::validate_gate(body.gate, &settings.chain_rpc_urls)?;
    store::replace_gate(&db, &video, &gate, now())?;
    Ok(response::json(200, &store::video(&db, id)?))
}

fn delete(request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let session = signed_in(request)?;
    let db = store::open()?;
    owned(&db, &session, id)?;
    // The media goes first: if the queue is down the video stays, and the owner can retry.
    let now = now();
    let request_trace = trace::of_request(request);
    let job = Job::delete(id, now).with_trace(&trace::child(&request_trace));
    let stream_id = queue::enqueue(&job, &JobTransport::load(&Spin)?)?;
    trace::log(
        "INFO",
        COMPONENT,
        "job enqueued",
        &request_trace,
        serde_json::json!({ "video_id": id, "action": job.action(), "stream_id": stream_id }),
    );
    store::record_job(&db, &job, &stream_id, now)?;
    store::delete_video(&db, id)?;
    Ok(response::no_content())
}
