//! The playlist routes through the real host and the real playlists component, on a database
//! written the way older releases left it: the first playlist request brings the schema up to
//! date itself (it skips the per-request migration check), a video stored with muxed
//! audio+video renditions still plays, and one with a separate audio track gets an HLS audio
//! group and a DASH audio adaptation set. Tokens are made with `streamgate-core`'s EdgeAuth
//! code, as the playback component makes them.

use host_tests::*;
use rusqlite::Connection;
use streamgate_core::edge_token::{self, EdgeToken};

const PLAYBACK_SECRET: &str = "manifest-test-playback-secret-0123456789";
const OWNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

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
        version, 5,
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

/// The `hdnts` value of every URI in a playlist (HLS lines and `#EXT-X-MAP`/`#EXT-X-MEDIA`
/// attributes, DASH attributes), XML-unescaped.
fn stamped_tokens(body: &str) -> Vec<String> {
    body.split("hdnts=")
        .skip(1)
        .map(|rest| {
            rest.split(['"', '\n'])
                .next()
                .unwrap()
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn playlists_stamp_a_viewing_token_for_the_video_plus_pauses_within_the_session() {
    let state = tempfile::tempdir().unwrap();
    let db_path = state.path().join("sqlite_db.db");
    lay_down_version_1(&db_path, "long01"); // one track, 4 s + 1.5 s: 6 s rounded up
    let config = HostConfig::new("spin.toml", state.path())
        .var("session_secret", "manifest-test-session-secret-0123456789")
        .var("events_secret", "manifest-test-events-secret-0123456789")
        .var("playback_secret", PLAYBACK_SECRET)
        .var("media_base_url", "http://cdn.test")
        .var("playback_session_max_secs", "3600")
        .var("playback_pause_allowance_secs", "600");
    let host = config.start();
    let key = PLAYBACK_SECRET.as_bytes();
    let acl = vec![
        "/stream/long01/*".to_string(),
        "/media/long01/*".to_string(),
    ];
    let viewer = Some(OWNER.to_string());
    let present = |start: i64, expires: i64| {
        let t = EdgeToken {
            start,
            expires,
            acl: acl.clone(),
            data: viewer.clone(),
        };
        edge_token::sign(&t, key)
    };
    // Every URI of a playlist carries one viewing token: the presented st, acl and data, and
    // its own exp. Returns it, and the time just after the answer (the clock may tick meanwhile).
    let served = |path: &str, token: &str, start: i64| -> (EdgeToken, i64) {
        let reply = host.get(&format!("{path}?hdnts={token}"));
        let after = now();
        assert_eq!(reply.status, 200, "{path}: {}\n{}", reply.body, host.log());
        let stamped = stamped_tokens(&reply.body);
        assert!(!stamped.is_empty(), "{}", reply.body);
        assert!(
            stamped.iter().all(|t| *t == stamped[0]),
            "one token: {}",
            reply.body
        );
        let v = edge_token::verify(
            &stamped[0],
            &[key],
            "/media/long01/360p/seg_00001.m4s",
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", stamped[0]));
        assert_eq!((v.start, &v.acl, &v.data), (start, &acl, &viewer));
        (v, after)
    };

    // An entry token as the playback API issues it (admitted 2 s ago, 300 s to start): the
    // viewing token lasts the video (6 s) plus the pause allowance (600 s) from now.
    for path in [
        "/stream/long01/master.m3u8",
        "/stream/long01/360p.m3u8",
        "/stream/long01/manifest.mpd",
    ] {
        let (before, st) = (now(), now() - 2);
        let (v, after) = served(path, &present(st, st + 300), st);
        assert!(
            (before + 606..=after + 606).contains(&v.expires),
            "{path}: exp {} is not now + 606",
            v.expires
        );
    }

    // Near the end of the session, re-presenting a viewing token renews it only up to
    // st + playback_session_max_secs.
    let st = now() - 3300;
    let (renewed, _) = served("/stream/long01/360p.m3u8", &present(st, now() + 60), st);
    assert_eq!(renewed.expires, st + 3600);
    let again = edge_token::sign(&renewed, key);
    let (v, _) = served("/stream/long01/master.m3u8", &again, st);
    assert_eq!(v.expires, st + 3600);

    // Never shorter than the token presented.
    let st = now() - 2;
    let (v, _) = served("/stream/long01/360p.m3u8", &present(st, st + 5000), st);
    assert_eq!(v.expires, st + 5000);
    drop(host);

    // A setting that is not a number of seconds is the operator's error, named.
    let host = config
        .var("playback_pause_allowance_secs", "half an hour")
        .start();
    let reply = host.get(&format!(
        "/stream/long01/master.m3u8?hdnts={}",
        present(now() - 2, now() + 300)
    ));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["code"], "server_misconfigured");
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("playback_pause_allowance_secs"),
        "{}",
        reply.body
    );
}
