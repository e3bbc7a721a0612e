//! The manifest routes through the real host and the real manifest component, on a database
//! written the way older releases left it: the first manifest request brings the schema up to
//! date itself (it skips the per-request migration check), a video stored with muxed
//! audio+video renditions still plays, and one with a separate audio track gets an HLS audio
//! group and a DASH audio adaptation set. Tokens are made with `streamgate-core`'s EdgeAuth
//! code, as the playback component makes them.

use host_tests::*;
use rusqlite::Connection;
use streamgate_core::edge_token::{self, EdgeToken};

const PLAYBACK_SECRET: &str = "manifest-test-playback-secret-0123456789";
const OWNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(video: &str) -> String {
    let t = EdgeToken {
        start: now() - 5,
        expires: now() + 300,
        acl: vec![format!("/stream/{video}/*"), format!("/media/{video}/*")],
        data: None,
    };
    edge_token::sign(&t, PLAYBACK_SECRET.as_bytes())
}

fn track_json(name: &str, codecs: &str) -> String {
    serde_json::json!({"name": name, "width": 640, "height": 360, "bandwidth": 900_000,
        "average_bandwidth": 800_000, "frame_rate": 30.0, "codecs": codecs,
        "init": format!("{name}/init.mp4"),
        "segments": [{"uri": format!("{name}/seg_00001.m4s"), "duration": 4.0},
                     {"uri": format!("{name}/seg_00002.m4s"), "duration": 1.5}]})
    .to_string()
}

/// The schema as release 1 of the metadata tables created it (no `audio_tracks`), with one
/// ready video whose only rendition muxes audio and video.
fn lay_down_version_1(path: &std::path::Path, video: &str) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE schema_migrations (scope TEXT NOT NULL, version INTEGER NOT NULL,
            applied_at INTEGER NOT NULL, PRIMARY KEY (scope, version));
         INSERT INTO schema_migrations VALUES ('metadata', 1, 0);
         CREATE TABLE videos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
            description TEXT, status TEXT NOT NULL, error TEXT, progress INTEGER, source TEXT,
            poster TEXT, duration REAL, gate_version INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
         CREATE TABLE gate_rules (video_id TEXT NOT NULL, version INTEGER NOT NULL,
            position INTEGER NOT NULL, rule TEXT NOT NULL, PRIMARY KEY (video_id, version, position));
         CREATE TABLE renditions (video_id TEXT NOT NULL, position INTEGER NOT NULL,
            name TEXT NOT NULL, rendition TEXT NOT NULL, PRIMARY KEY (video_id, position));",
    )
    .unwrap();
    insert_video(&db, video, "ready");
    db.execute(
        "INSERT INTO renditions VALUES (?1, 0, '360p', ?2)",
        (video, track_json("360p", "avc1.64001e,mp4a.40.2")),
    )
    .unwrap();
}

fn insert_video(db: &Connection, id: &str, status: &str) {
    db.execute(
        "INSERT INTO videos (id, owner, title, status, created_at, updated_at)
         VALUES (?1, ?2, 'clip', ?3, 1, 1)",
        (id, OWNER, status),
    )
    .unwrap();
}

fn get(host: &Host, path: &str, video: &str) -> Reply {
    host.get(&format!("{path}?hdnts={}", token(video)))
}

#[test]
fn an_older_database_is_migrated_by_the_first_manifest_request_and_both_audio_layouts_play() {
    let state = tempfile::tempdir().unwrap();
    let db_path = state.path().join("sqlite_db.db");
    lay_down_version_1(&db_path, "legacy01");
    let host = HostConfig::new("spin.toml", state.path())
        .var("session_secret", "manifest-test-session-secret-0123456789")
        .var("events_secret", "manifest-test-events-secret-0123456789")
        .var("playback_secret", PLAYBACK_SECRET)
        .var("media_base_url", "http://cdn.test")
        .start();

    // The first request of any component: its statement names `audio_tracks`, which version 1
    // lacks; the route migrates and answers.
    let master = get(&host, "/stream/legacy01/master.m3u8", "legacy01");
    assert_eq!(master.status, 200, "{}\n{}", master.body, host.log());
    assert!(
        master
            .body
            .contains("CODECS=\"avc1.64001e,mp4a.40.2\"\n360p.m3u8?hdnts="),
        "a muxed rendition is announced as before: {}",
        master.body
    );
    assert!(!master.body.contains("#EXT-X-MEDIA"), "{}", master.body);
    let db = Connection::open(&db_path).unwrap();
    let version: i64 = db
        .query_row(
            "SELECT MAX(version) FROM schema_migrations WHERE scope = 'metadata'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        version, 2,
        "the manifest request brought the schema up to date"
    );
    let mpd = get(&host, "/stream/legacy01/manifest.mpd", "legacy01");
    assert_eq!(mpd.status, 200);
    assert_eq!(
        mpd.body.matches("<AdaptationSet ").count(),
        1,
        "{}",
        mpd.body
    );

    // A video with audio as its own track, as the worker now writes it.
    insert_video(&db, "split01", "ready");
    db.execute(
        "INSERT INTO renditions VALUES ('split01', 0, '360p', ?1)",
        [track_json("360p", "avc1.64001e")],
    )
    .unwrap();
    let audio = serde_json::json!({"name": "audio", "bandwidth": 140_000, "average_bandwidth": 130_000,
        "codecs": "mp4a.40.2", "channels": 2, "sample_rate": 48_000, "init": "audio/init.mp4",
        "segments": [{"uri": "audio/seg_00001.m4s", "duration": 4.010667},
                     {"uri": "audio/seg_00002.m4s", "duration": 1.48}]});
    db.execute(
        "INSERT INTO audio_tracks VALUES ('split01', 0, 'audio', ?1)",
        [audio.to_string()],
    )
    .unwrap();
    let master = get(&host, "/stream/split01/master.m3u8", "split01");
    assert_eq!(master.status, 200, "{}", master.body);
    assert!(master.body.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio.m3u8?hdnts="), "{}", master.body);
    assert!(
        master.body.contains("BANDWIDTH=1040000,AVERAGE-BANDWIDTH=930000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\"\n360p.m3u8?hdnts="),
        "{}",
        master.body
    );
    let audio_playlist = get(&host, "/stream/split01/audio.m3u8", "split01");
    assert_eq!(audio_playlist.status, 200, "{}", audio_playlist.body);
    assert!(audio_playlist
        .body
        .contains("#EXT-X-MAP:URI=\"http://cdn.test/media/split01/audio/init.mp4?hdnts="));
    assert!(audio_playlist
        .body
        .contains("#EXTINF:4.010667,\nhttp://cdn.test/media/split01/audio/seg_00001.m4s?hdnts="));
    let video_playlist = get(&host, "/stream/split01/360p.m3u8", "split01");
    assert_eq!(video_playlist.status, 200);
    assert!(!video_playlist.body.contains("audio/"));
    let mpd = get(&host, "/stream/split01/manifest.mpd", "split01");
    assert_eq!(
        mpd.body.matches("<AdaptationSet ").count(),
        2,
        "{}",
        mpd.body
    );
    assert!(mpd
        .body
        .contains("contentType=\"audio\" mimeType=\"audio/mp4\""));

    // The refusals around them.
    let code = |r: Reply| {
        (
            r.status,
            r.json()["code"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        code(get(&host, "/stream/split01/none.m3u8", "split01")),
        (404, "not_found".into())
    );
    assert_eq!(
        code(get(&host, "/stream/gone01/master.m3u8", "gone01")),
        (404, "not_found".into())
    );
    assert_eq!(
        code(get(&host, "/stream/split01/audio.m3u8", "legacy01")),
        (403, "token_wrong_path".into())
    );
    insert_video(&db, "busy01", "transcoding");
    assert_eq!(
        code(get(&host, "/stream/busy01/master.m3u8", "busy01")),
        (409, "not_ready".into())
    );
}
