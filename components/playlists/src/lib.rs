//! `GET /stream/{id}/master.m3u8`, `/stream/{id}/{rendition}.m3u8`, `/stream/{id}/manifest.mpd`:
//! playlists rendered from the video's stored renditions. The signed token (`hdnts`) is checked
//! here first: missing, tampered, expired or another video's token is 403; an unknown video 404;
//! a video not ready 409. Every URI rendered carries a viewing token: the presented one renewed
//! for the video's length plus a pause allowance, within the session limit counted from the
//! admission (`edge_token::viewing_token`, docs/playback.md).

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use streamgate_core::api_error::ApiError;
use streamgate_core::edge_token;
use streamgate_core::playlist::{self, Links};
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

    let (renditions, audio) = video_schema::ready_tracks(id)?;
    let duration = playlist::duration_secs(&renditions, &audio);
    let viewing = edge_token::viewing_token(&presented, now, duration, policy);
    let token = edge_token::sign(&viewing, &keys.current);
    let token = token.as_str();
    let links = Links {
        video_id: id,
        media_base: &settings.media_base_url,
        token,
    };

    let (content_type, body) = if *file == "master.m3u8" {
        (
            "application/vnd.apple.mpegurl",
            playlist::hls_master(&renditions, &audio, token),
        )
    } else if *file == "manifest.mpd" {
        (
            "application/dash+xml",
            playlist::dash_mpd(&renditions, &audio, &links),
        )
    } else if let Some(name) = file.strip_suffix(".m3u8") {
        let (init, segments) = renditions
            .iter()
            .find(|r| r.name == name)
            .map(|r| (&r.init, &r.segments))
            .or_else(|| {
                audio
                    .iter()
                    .find(|a| a.name == name)
                    .map(|a| (&a.init, &a.segments))
            })
            .ok_or_else(|| ApiError::not_found(format!("no rendition or audio track `{name}`")))?;
        (
            "application/vnd.apple.mpegurl",
            playlist::hls_media(init, segments, &links),
        )
    } else {
        return Err(ApiError::not_found("no such stream resource"));
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
