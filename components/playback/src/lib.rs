//! `POST /api/v1/videos/{id}/playback`: the gate. The viewer's session names the wallet; the
//! video's own stored rules (never anything in the request) say what it must hold; the chain
//! answers (cached briefly in key-value); on success the answer is signed HLS and DASH URLs.

mod holdings;

use serde::Serialize;
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token::{self, EdgeToken};
use streamgate_core::gate::{self, Holding};
use streamgate_core::settings;
use streamgate_core::siwe::rfc3339_utc;
use streamgate_spin::chain::HttpChainReader;
use streamgate_spin::config::Spin;
use streamgate_spin::playback_keys::PlaybackKeys;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::{now, response, video_schema};

/// The body is ignored (rules come from storage); a small limit keeps it from costing anything.
const BODY_LIMIT: usize = 4 * 1024;

#[http_component]
async fn handle(req: IncomingRequest) -> Response {
    let head = ApiRequest::head(&req);
    let path = head.path.clone();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let outcome = match (&head.method, segments.as_slice()) {
        (Method::Post, ["api", "v1", "videos", id, "playback"]) => {
            match head.read_body(req, BODY_LIMIT).await {
                Ok(request) => playback(&request, id).await,
                Err(e) => Err(e),
            }
        }
        (_, ["api", "v1", "videos", _, "playback"]) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    outcome.unwrap_or_else(|e| response::error(&e))
}

#[derive(Serialize)]
struct Playback {
    hls: String,
    dash: String,
    expires_at: String,
}

async fn playback(request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let now = now();
    let kv = streamgate_spin::session::key_value()?;
    let session = streamgate_spin::session::authenticate(
        request.header("authorization"),
        &streamgate_spin::session::keys()?,
        &kv,
        now,
    )?;
    let keys = PlaybackKeys::load()?;
    let settings = settings::Playback::load(&Spin)?;
    let db = video_schema::open()?;
    let viewer = session.address;
    let video = video_schema::ready_to_play(&db, id, &viewer)?;

    let is_owner = video.owner.eq_ignore_ascii_case(&viewer.to_checksum(None));
    if !is_owner && !video.gate.is_empty() {
        let ttl = settings.gate_cache;
        let reader = HttpChainReader::new(settings::Playback::chain_rpc_urls(&Spin)?);
        let mut outcomes = Vec::with_capacity(video.gate.len());
        for rule in &video.gate {
            // A contract wallet is asked about on the chain it signed in on, nowhere else.
            if let Err(e) = gate::session_may_use(&session, rule.chain_id) {
                outcomes.push(Err(e));
                continue;
            }
            let holding = Holding::of(rule, viewer)?;
            let outcome = holdings::holds(&kv, &reader, &holding, ttl, now).await;
            let admitted = matches!(outcome, Ok(true));
            outcomes.push(outcome);
            if admitted {
                break;
            }
        }
        gate::verdict(&outcomes)?;
    }

    let expires = now.saturating_add(settings.playback_token_secs);
    let token = edge_token::sign(
        &EdgeToken {
            start: now,
            expires,
            acl: vec![format!("/stream/{id}/*"), format!("/media/{id}/*")],
            // The only binding the EdgeAuth format allows: who the URLs were issued to, signed.
            data: Some(viewer.to_checksum(None)),
        },
        &keys.current,
    );
    let base = settings.stream_base_url.trim_end_matches('/');
    Ok(response::json(
        200,
        &Playback {
            hls: format!("{base}/stream/{id}/master.m3u8?hdnts={token}"),
            dash: format!("{base}/stream/{id}/manifest.mpd?hdnts={token}"),
            expires_at: rfc3339_utc(expires),
        },
    ))
}
