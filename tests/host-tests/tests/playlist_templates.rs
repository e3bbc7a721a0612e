//! Kept playlists (issue 15 item 3): each playlist of a video is rendered once, when the
//! metadata component stores its tracks, and stamped with the viewer's token per request.
//! Through the real host, the real metadata and playlists components and a real redis-server:
//! a ladder whose write was refused is never served, what is served is the ladder stored, the
//! same bytes as rendering from the tracks (`playlist_templates = off`) but for the tokens, and
//! a deleted video's kept playlists go with it.

use host_tests::*;
use rusqlite::Connection;
use serde_json::json;
use streamgate_core::edge_token::{self, EdgeToken};
use streamgate_core::{event_signature, keys, session};

const SESSION_SECRET: &str = "templates-test-session-secret-0123456789";
const EVENTS_SECRET: &str = "templates-test-events-secret-0123456789";
const PLAYBACK_SECRET: &str = "templates-test-playback-secret-0123456789";
const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

fn start(state: &std::path::Path, redis: &Redis, templates: &str) -> Host {
    HostConfig::new("spin.toml", state)
        .var("session_secret", SESSION_SECRET)
        .var("events_secret", EVENTS_SECRET)
        .var("playback_secret", PLAYBACK_SECRET)
        .var("media_base_url", "http://cdn.test/")
        .var("playlist_templates", templates)
        .redis(redis)
        .start()
}

fn session_token() -> String {
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    session::issue_session(&keys, ALICE.parse().unwrap(), 31337, now(), 3600, [7; 16])
        .unwrap()
        .token
}

fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<String>) -> Reply {
    let mut request = ureq::request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_string(&body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    Reply {
        status: response.status(),
        body: response.into_string().unwrap(),
    }
}

fn event(host: &Host, n: u32, id: &str, kind: &str, data: serde_json::Value) -> Reply {
    let body = json!({"id": format!("tpl-{id}-{n}"), "type": kind, "video_id": id, "data": data})
        .to_string();
    let signature = event_signature::sign(
        &keys::derive(EVENTS_SECRET, "events"),
        now(),
        body.as_bytes(),
    );
    send(
        "POST",
        &host.url("/internal/v1/events"),
        &[
            ("content-type", "application/json"),
            ("streamgate-signature", &signature),
        ],
        Some(body),
    )
}

fn track(name: &str, prefix: &str, segments: usize) -> serde_json::Value {
    json!({"name": name, "width": 640, "height": 360, "bandwidth": 900_000,
        "average_bandwidth": 800_000, "frame_rate": 30.0, "codecs": "avc1.64001e",
        "init": format!("{name}/{prefix}init.mp4"),
        "segments": (1..=segments)
            .map(|i| json!({"uri": format!("{name}/{prefix}seg_{i:05}.m4s"), "duration": 4.0}))
            .collect::<Vec<_>>()})
}

fn audio(prefix: &str) -> serde_json::Value {
    json!({"name": "audio", "bandwidth": 128_000, "average_bandwidth": 120_000,
        "codecs": "mp4a.40.2", "channels": 2, "sample_rate": 48_000,
        "init": format!("audio/{prefix}init.mp4"),
        "segments": [{"uri": format!("audio/{prefix}seg_00001.m4s"), "duration": 4.0},
                     {"uri": format!("audio/{prefix}seg_00002.m4s"), "duration": 4.0},
                     {"uri": format!("audio/{prefix}seg_00003.m4s"), "duration": 4.0}]})
}

fn playlist(host: &Host, id: &str, file: &str) -> Reply {
    let t = EdgeToken {
        start: now() - 5,
        expires: now() + 300,
        acl: vec![format!("/stream/{id}/*"), format!("/media/{id}/*")],
        data: None,
    };
    let token = edge_token::sign(&t, PLAYBACK_SECRET.as_bytes());
    host.get(&format!("/stream/{id}/{file}?hdnts={token}"))
}

/// The body with every stamped token replaced by `T` (tokens differ by the second they were
/// signed in).
fn without_tokens(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("hdnts=") {
        out.push_str(&rest[..at + "hdnts=".len()]);
        out.push('T');
        rest = &rest[at + "hdnts=".len()..];
        let end = rest.find(['"', '\n']).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn kept_files(state: &std::path::Path, id: &str) -> Vec<String> {
    let db = Connection::open(state.join("sqlite_db.db")).unwrap();
    let mut statement = db
        .prepare("SELECT file FROM playlist_templates WHERE video_id = ?1 ORDER BY file")
        .unwrap();
    statement
        .query_map([id], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn only_the_stored_ladder_is_ever_served_and_it_matches_the_direct_render() {
    let state = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let host = start(state.path(), &redis, "on");
    let bearer = format!("Bearer {}", session_token());
    let created = send(
        "POST",
        &host.url("/api/v1/videos"),
        &[("authorization", &bearer)],
        Some(json!({"title": "kept", "gate": []}).to_string()),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let uploaded = event(
        &host,
        1,
        &id,
        "upload.completed",
        json!({"size": 10, "source": format!("sources/{id}")}),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);

    // Ladder A arrives while the video is still queued: refused, and its transaction (tracks
    // and kept playlists alike) rolled back.
    let ladder_a = json!({"renditions": [track("1080p", "a_", 5), track("360p", "a_", 5)],
        "duration": 20.0});
    let refused = event(&host, 2, &id, "transcode.completed", ladder_a);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(kept_files(state.path(), &id).is_empty());
    assert_eq!(playlist(&host, &id, "master.m3u8").status, 409);

    // Ladder B is the one stored.
    let started = event(&host, 3, &id, "transcode.started", json!({"attempt": 1}));
    assert_eq!(started.status, 200, "{}", started.body);
    let ladder_b = json!({"renditions": [track("360p", "b_", 3), track("240p", "b_", 3)],
        "audio": [audio("b_")], "duration": 12.0});
    let done = event(&host, 4, &id, "transcode.completed", ladder_b);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        kept_files(state.path(), &id),
        [
            "240p.m3u8",
            "360p.m3u8",
            "audio.m3u8",
            "manifest.mpd",
            "master.m3u8"
        ]
    );

    let files = [
        "master.m3u8",
        "manifest.mpd",
        "360p.m3u8",
        "240p.m3u8",
        "audio.m3u8",
    ];
    let mut kept = Vec::new();
    for file in files {
        let reply = playlist(&host, &id, file);
        assert_eq!(reply.status, 200, "{file}: {}\n{}", reply.body, host.log());
        assert!(!reply.body.contains("1080p"), "{file}: {}", reply.body);
        assert!(!reply.body.contains("a_"), "{file}: {}", reply.body);
        assert!(!reply.body.contains('\u{1}'), "{file}: {}", reply.body);
        kept.push(reply.body);
    }
    assert!(kept[2].contains("http://cdn.test/media/"));
    assert!(kept[2].contains(&format!("/media/{id}/360p/b_seg_00003.m4s?hdnts=st=")));
    assert!(kept[1].contains(&format!("/media/{id}/audio/b_seg_00002.m4s?hdnts=st=")));
    assert_eq!(playlist(&host, &id, "1080p.m3u8").status, 404);

    // The same database rendered from the tracks on every request: the same playlists.
    let direct = start(state.path(), &redis, "off");
    for (file, kept) in files.iter().zip(&kept) {
        let reply = playlist(&direct, &id, file);
        assert_eq!(reply.status, 200, "{file}: {}", reply.body);
        assert_eq!(without_tokens(&reply.body), without_tokens(kept), "{file}");
    }
    drop(direct);

    // Deleted: the kept playlists go with the tracks.
    let deleted = send(
        "DELETE",
        &host.url(&format!("/api/v1/videos/{id}")),
        &[("authorization", &bearer)],
        None,
    );
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(kept_files(state.path(), &id).is_empty());
    assert_eq!(playlist(&host, &id, "master.m3u8").status, 404);
}

#[test]
fn a_misconfigured_switch_is_a_clear_503() {
    let state = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let host = start(state.path(), &redis, "sometimes");
    let reply = playlist(&host, "nosuch", "master.m3u8");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["code"], "server_misconfigured");
}
