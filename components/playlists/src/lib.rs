//! `GET /stream/{id}/master.m3u8`, `/stream/{id}/{rendition}.m3u8`, `/stream/{id}/manifest.mpd`:
//! playlists rendered from the video's stored renditions. The signed token (`hdnts`) is checked
//! here first: missing, tampered, expired or another video's token is 403; an unknown video 404;
//! a video not ready 409. Every URI rendered carries a viewing token: the presented one renewed
//! for the video's length plus a pause allowance, within the session limit counted from the
//! admission (`edge_token::viewing_token`, docs/playback.md).

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token::{self, EdgeToken, ViewingPolicy};
use streamgate_core::playlist::{self, template, Links};
use streamgate_spin::playback_keys::PlaybackKeys;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::{config, now, response, video_schema};

#[http_component]
fn handle(req: IncomingRequest) -> Response {
    let request = ApiRequest::head(&req);
    let outcome = match request.method {
        Method::Get | Method::Head => serve(&request),
        Method::Options => Ok(cors(Response::builder().status(204).build())),
        _ => Err(ApiError::method_not_allowed("GET, HEAD, OPTIONS")),
    };
    match outcome {
        Ok(response) => response,
        Err(e) => cors(response::error(&e)),
    }
}

/// Browser players (hls.js, dash.js) fetch playlists cross-origin.
fn cors(mut response: Response) -> Response {
    response.set_header("access-control-allow-origin", "*");
    response.set_header("access-control-allow-methods", "GET, HEAD, OPTIONS");
    response
}

/// The `hdnts` query value, percent-decoded: clients may encode the token's `/`, `=` and `*`.
fn token(query: &str) -> String {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("hdnts="))
        .map(|raw| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}

fn serve(request: &ApiRequest) -> Result<Response, ApiError> {
    let segments: Vec<&str> = request.path.split('/').skip(1).collect();
    let ["stream", id, file] = segments.as_slice() else {
        return Err(ApiError::not_found("no such stream resource"));
    };
    let presented = token(&request.query);
    let keys = PlaybackKeys::load()?;
    let now = now();
    // Same host (and clock) as the playback API that signed it: no leeway.
    let presented = edge_token::verify(&presented, &keys.all(), &request.path, now)
        .map_err(|e| ApiError::new(403, e.code(), e.to_string()))?;
    let settings = streamgate_core::settings::Playlists::load(&config::Spin)?;
    let policy = settings.viewing;
    let media_base = settings.media_base_url;
    let content_type = if file.ends_with(".mpd") {
        "application/dash+xml"
    } else {
        "application/vnd.apple.mpegurl"
    };
    // The playlist kept when the tracks were stored, stamped with this viewer's token; rendered
    // from the tracks for a video stored before templates, or when the operator turned them
    // off (`playlist_templates`, also how `scripts/bench playlists` measures the difference).
    let kept = if settings.templates {
        video_schema::ready_template(id, file)?
    } else {
        None
    };
    let body = match kept {
        Some(kept) => {
            let token = renewed(&presented, now, kept.duration, policy, &keys);
            template::stamp(file, &kept.body, &media_base, &token)
        }
        None => render(id, file, &presented, now, policy, &keys, &media_base)?,
    };
    Ok(cors(
        Response::builder()
            .status(200)
            .header("content-type", content_type)
            // The URIs carry a viewer's token, renewed on each read: caches may keep the
            // playlist only for that viewer, briefly.
            .header("cache-control", "private, max-age=60")
            .body(body)
            .build(),
    ))
}

/// The presented token renewed for a video of `duration` seconds, signed.
fn renewed(
    presented: &EdgeToken,
    now: i64,
    duration: f64,
    policy: ViewingPolicy,
    keys: &PlaybackKeys,
) -> String {
    let viewing = edge_token::viewing_token(presented, now, duration, policy);
    edge_token::sign(&viewing, &keys.current)
}

/// The playlist `file` rendered from the video's stored tracks.
fn render(
    id: &str,
    file: &str,
    presented: &EdgeToken,
    now: i64,
    policy: ViewingPolicy,
    keys: &PlaybackKeys,
    media_base: &str,
) -> Result<String, ApiError> {
    let (renditions, audio) = video_schema::ready_tracks(id)?;
    let duration = playlist::duration_secs(&renditions, &audio);
    let token = renewed(presented, now, duration, policy, keys);
    let token = token.as_str();
    let links = Links {
        video_id: id,
        media_base,
        token,
    };
    Ok(if file == template::MASTER {
        playlist::hls_master(&renditions, &audio, token)
    } else if file == template::MPD {
        playlist::dash_mpd(&renditions, &audio, &links)
    } else if let Some(name) = file.strip_suffix(".m3u8") {
        let (init, segments) = playlist::track_media(&renditions, &audio, name)
            .ok_or_else(|| ApiError::not_found(format!("no rendition or audio track `{name}`")))?;
        playlist::hls_media(init, segments, &links)
    } else {
        return Err(ApiError::not_found("no such stream resource"));
    })
}
