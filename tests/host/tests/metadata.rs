//! The metadata API and the events endpoint, through the real host, the real metadata
//! component and a real redis-server. Session tokens and event signatures are made with
//! `streamgate-core`, the code the services themselves use: wallet sign-in has its own tests
//! (tests/node), here the subject is what happens to videos.

use host_tests::*;
use streamgate_core::{edge_token, event_signature, keys, session};

const SESSION_SECRET: &str = "metadata-test-session-secret-0123456789";
const EVENTS_SECRET: &str = "metadata-test-events-secret-0123456789";
const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const BOB: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const NFT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

struct App {
    host: Host,
    redis: Redis,
    _state: tempfile::TempDir,
}

fn app() -> App {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = HostConfig::new("spin.toml", state.path())
        .var("session_secret", SESSION_SECRET)
        .var("events_secret", EVENTS_SECRET)
        .var(
            "playback_secret",
            "metadata-test-playback-secret-0123456789",
        )
        .redis(&redis)
        .start();
    App {
        host,
        redis,
        _state: state,
    }
}

fn token(address: &str) -> String {
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut jti = [0u8; 16];
    jti[..8].copy_from_slice(&now.to_le_bytes());
    jti[8] = address.as_bytes()[3];
    session::issue_session(&keys, address.parse().unwrap(), 31337, now, 3600, jti)
        .unwrap()
        .token
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl App {
    fn call(&self, method: &str, path: &str, who: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = ureq::request(method, &self.host.url(path));
        if let Some(who) = who {
            request = request.set("authorization", &format!("Bearer {}", token(who)));
        }
        let result = match body {
            Some(b) => request.send_string(&b.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        Reply {
            status: response.status(),
            body: response.into_string().unwrap(),
        }
    }

    fn create(&self, who: &str, title: &str) -> Value {
        let reply = self.call(
            "POST",
            "/api/v1/videos",
            Some(who),
            Some(json!({"title": title, "gate": [{"chain_id": 31337, "contract": NFT, "standard": "erc721"}]})),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()
    }

    fn event(&self, secret: &str, at: i64, body: &Value) -> Reply {
        let body = body.to_string();
        let key = keys::derive(secret, "events");
        let response = ureq::post(&self.host.url("/internal/v1/events"))
            .set("content-type", "application/json")
            .set(
                "streamgate-signature",
                &event_signature::sign(&key, at, body.as_bytes()),
            )
            .send_string(&body);
        let response = match response {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("event: {e}"),
        };
        Reply {
            status: response.status(),
            body: response.into_string().unwrap(),
        }
    }

    fn jobs(&self) -> Vec<std::collections::HashMap<String, String>> {
        let mut conn = self.redis.client().get_connection().unwrap();
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg("streamgate:jobs")
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .unwrap();
        entries
            .into_iter()
            .map(|(_, fields)| fields.into_iter().collect())
            .collect()
    }

    fn status(&self, id: &str) -> Value {
        self.call("GET", &format!("/api/v1/videos/{id}"), None, None)
            .json()
    }
}

#[test]
fn creating_a_video_needs_a_session_and_a_valid_gate() {
    let app = app();
    let anonymous = app.call("POST", "/api/v1/videos", None, Some(json!({"title": "x"})));
    assert_eq!(
        (anonymous.status, anonymous.json()["code"].clone()),
        (401, json!("missing_token"))
    );

    let bad_gates = [
        (
            json!([{"chain_id": 1, "contract": NFT, "standard": "erc721"}]),
            "chain_not_supported",
        ),
        (
            json!([{"chain_id": 31337, "contract": NFT.to_lowercase(), "standard": "erc721"}]),
            "invalid_gate",
        ),
        (
            json!([{"chain_id": 31337, "contract": NFT, "standard": "erc1155"}]),
            "invalid_gate",
        ),
        (
            json!([{"chain_id": 31337, "contract": NFT, "standard": "erc777"}]),
            "invalid_json",
        ),
        (
            json!([{"chain_id": 31337, "contract": NFT, "standard": "erc721", "token_id": "0x1"}]),
            "invalid_gate",
        ),
    ];
    for (gate, code) in bad_gates {
        let reply = app.call(
            "POST",
            "/api/v1/videos",
            Some(ALICE),
            Some(json!({"title": "x", "gate": gate})),
        );
        assert_eq!(reply.json()["code"], code, "{gate}: {}", reply.body);
        assert!(reply.status == 422 || reply.status == 400);
    }
    let empty_title = app.call(
        "POST",
        "/api/v1/videos",
        Some(ALICE),
        Some(json!({"title": "  "})),
    );
    assert_eq!(empty_title.status, 422);

    let created = app.create(ALICE, "My clip");
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "awaiting_upload");
    assert_eq!(created["upload"]["protocol"], "tus");
    // The upload URL carries a token for this video's upload path only.
    let url = created["upload"]["url"].as_str().unwrap();
    let (path, token) = url.split_once("?token=").unwrap();
    assert!(path.ends_with(&format!("/uploads/{id}")), "{url}");
    let upload_key = keys::derive(EVENTS_SECRET, "upload");
    assert!(edge_token::verify(token, &[&upload_key], &format!("/uploads/{id}"), now()).is_ok());
    assert!(edge_token::verify(token, &[&upload_key], "/uploads/another-video", now()).is_err());

    let video = app.status(id);
    assert_eq!(video["owner"], ALICE);
    assert_eq!(video["title"], "My clip");
    assert_eq!(video["gate"][0]["min_balance"], "1");
}

#[test]
fn only_the_owner_changes_the_gate_or_deletes() {
    let app = app();
    let id = app.create(ALICE, "Alice's")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_gate = json!({"gate": [{"chain_id": 31337, "contract": NFT, "standard": "erc1155", "token_id": "5"}]});
    let by_bob = app.call(
        "PUT",
        &format!("/api/v1/videos/{id}/gate"),
        Some(BOB),
        Some(new_gate.clone()),
    );
    assert_eq!(
        (by_bob.status, by_bob.json()["code"].clone()),
        (403, json!("not_owner"))
    );
    assert_eq!(
        app.status(&id)["gate"][0]["standard"],
        "erc721",
        "unchanged"
    );
    let bob_delete = app.call("DELETE", &format!("/api/v1/videos/{id}"), Some(BOB), None);
    assert_eq!(bob_delete.status, 403);

    let by_alice = app.call(
        "PUT",
        &format!("/api/v1/videos/{id}/gate"),
        Some(ALICE),
        Some(new_gate),
    );
    assert_eq!(by_alice.status, 200, "{}", by_alice.body);
    assert_eq!(
        by_alice.json()["gate"],
        json!([{"chain_id": 31337, "contract": NFT, "standard": "erc1155", "token_id": "5", "min_balance": "1"}])
    );
    let public = app.call(
        "PUT",
        &format!("/api/v1/videos/{id}/gate"),
        Some(ALICE),
        Some(json!({"gate": []})),
    );
    assert_eq!(public.json()["gate"], json!([]));

    let deleted = app.call("DELETE", &format!("/api/v1/videos/{id}"), Some(ALICE), None);
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.call("GET", &format!("/api/v1/videos/{id}"), None, None)
            .status,
        404
    );
    let jobs = app.jobs();
    assert!(
        jobs.iter()
            .any(|j| j["action"] == "delete" && j["video_id"] == id),
        "{jobs:?}"
    );
}

#[test]
fn signed_events_move_a_video_forward_and_queue_exactly_one_job() {
    let app = app();
    let id = app.create(ALICE, "Pipeline")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uploaded = json!({"id": "ev-upload-1", "type": "upload.completed", "video_id": id,
                          "data": {"size": 1234, "source": format!("sources/{id}")}});

    // Forged, stale and unsigned events change nothing.
    assert_eq!(
        app.event("not-the-secret-0123456789abcdef0123", now(), &uploaded)
            .json()["code"],
        "bad_event_signature"
    );
    assert_eq!(
        app.event(EVENTS_SECRET, now() - 3600, &uploaded).json()["code"],
        "stale_event"
    );
    let unsigned =
        ureq::post(&app.host.url("/internal/v1/events")).send_string(&uploaded.to_string());
    assert!(matches!(unsigned, Err(ureq::Error::Status(401, _))));
    assert_eq!(app.status(&id)["status"], "awaiting_upload");
    assert!(app.jobs().is_empty());

    assert_eq!(app.event(EVENTS_SECRET, now(), &uploaded).status, 200);
    assert_eq!(app.status(&id)["status"], "queued");
    // The sender retries until it hears back: a repeat is acknowledged and changes nothing.
    assert_eq!(
        app.event(EVENTS_SECRET, now(), &uploaded).json()["status"],
        "duplicate"
    );
    let mut again = uploaded.clone();
    again["id"] = json!("ev-upload-2");
    assert_eq!(app.event(EVENTS_SECRET, now(), &again).status, 200);
    let jobs = app.jobs();
    assert_eq!(jobs.len(), 1, "one job per upload: {jobs:?}");
    assert_eq!(jobs[0]["action"], "transcode");
    assert_eq!(jobs[0]["video_id"], id);
    assert_eq!(jobs[0]["source"], format!("sources/{id}"));

    let send = |n: u32, kind: &str, data: Value| {
        let reply = app.event(
            EVENTS_SECRET,
            now(),
            &json!({"id": format!("ev-{n}"), "type": kind, "video_id": id, "data": data}),
        );
        assert_eq!(reply.status, 200, "{kind}: {}", reply.body);
    };
    send(3, "transcode.started", json!({"attempt": 1}));
    send(4, "transcode.progress", json!({"percent": 40}));
    send(5, "transcode.progress", json!({"percent": 25}));
    let video = app.status(&id);
    assert_eq!(
        (video["status"].clone(), video["progress"].clone()),
        (json!("transcoding"), json!(40)),
        "progress never goes back"
    );

    let rendition = |name: &str, h: u32| {
        json!({"name": name, "width": h * 16 / 9, "height": h, "bandwidth": 1_000_000,
        "average_bandwidth": 900_000, "frame_rate": 30.0, "codecs": "avc1.64001f",
        "init": format!("{name}/init.mp4"),
        "segments": [{"uri": format!("{name}/seg_00001.m4s"), "duration": 4.0}, {"uri": format!("{name}/seg_00002.m4s"), "duration": 2.5}]})
    };
    let unsafe_path = json!({"renditions": [{"name": "x", "width": 1, "height": 1, "bandwidth": 1, "average_bandwidth": 1,
        "frame_rate": 30.0, "codecs": "avc1", "init": "../../etc/passwd", "segments": [{"uri": "a.m4s", "duration": 1.0}]}]});
    let refused = app.event(EVENTS_SECRET, now(), &json!({"id": "ev-bad", "type": "transcode.completed", "video_id": id, "data": unsafe_path}));
    assert_eq!(refused.json()["code"], "invalid_renditions");
    let audio = |name: &str| {
        json!({"name": name, "bandwidth": 140_000, "average_bandwidth": 130_000, "codecs": "mp4a.40.2",
        "channels": 2, "sample_rate": 48_000, "init": format!("{name}/init.mp4"),
        "segments": [{"uri": format!("{name}/seg_00001.m4s"), "duration": 4.011}, {"uri": format!("{name}/seg_00002.m4s"), "duration": 2.489}]})
    };
    // An audio track named like a rendition would shadow its media playlist.
    let clash = json!({"renditions": [rendition("720p", 720)], "audio": [audio("720p")]});
    let refused = app.event(
        EVENTS_SECRET,
        now(),
        &json!({"id": "ev-clash", "type": "transcode.completed", "video_id": id, "data": clash}),
    );
    assert_eq!(
        refused.json()["code"],
        "invalid_renditions",
        "{}",
        refused.body
    );
    assert_eq!(
        app.status(&id)["status"],
        "transcoding",
        "a refused event changes nothing"
    );
    send(
        6,
        "transcode.completed",
        json!({"renditions": [rendition("720p", 720), rendition("360p", 360)], "audio": [audio("audio")],
               "poster": "poster.jpg", "duration": 6.5}),
    );
    let ready = app.status(&id);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["renditions"].as_array().unwrap().len(), 2);
    assert_eq!(ready["renditions"][0]["name"], "720p");
    assert_eq!(
        ready["audio"],
        json!([{"name": "audio", "bandwidth": 140_000, "average_bandwidth": 130_000,
                "codecs": "mp4a.40.2", "channels": 2, "sample_rate": 48_000}]),
        "the audio track is listed, without its segment list"
    );

    // Nothing moves a ready video back.
    send(7, "transcode.started", json!({"attempt": 2}));
    send(
        8,
        "transcode.failed",
        json!({"error": "late failure", "final": true}),
    );
    assert_eq!(app.status(&id)["status"], "ready");
}

#[test]
fn a_final_failure_is_stored_with_its_reason() {
    let app = app();
    let id = app.create(ALICE, "Not a video")["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (n, kind, data) in [
        (
            1,
            "upload.completed",
            json!({"size": 5, "source": format!("sources/{id}")}),
        ),
        (2, "transcode.started", json!({"attempt": 1})),
        (
            3,
            "transcode.failed",
            json!({"error": "the upload is not a video: no video stream", "final": true}),
        ),
    ] {
        let reply = app.event(
            EVENTS_SECRET,
            now(),
            &json!({"id": format!("f-{n}"), "type": kind, "video_id": id, "data": data}),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let video = app.status(&id);
    assert_eq!(video["status"], "failed");
    assert_eq!(video["error"], "the upload is not a video: no video stream");
}

#[test]
fn lists_page_with_cursors_and_filter() {
    let app = app();
    let mut ids: Vec<String> = (0..5)
        .map(|i| {
            app.create(ALICE, &format!("A{i}"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let bobs = app.create(BOB, "B")["id"].as_str().unwrap().to_string();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/videos?owner={ALICE}&limit=2&cursor={c}"),
            None => format!("/api/v1/videos?owner={ALICE}&limit=2"),
        };
        let page = app.call("GET", &path, None, None).json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|v| v["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(
        got, expected,
        "every one of Alice's videos exactly once, none of Bob's"
    );
    assert!(!seen.contains(&bobs));
    ids.push(bobs);

    let all = app
        .call(
            "GET",
            "/api/v1/videos?status=awaiting_upload&limit=100",
            None,
            None,
        )
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), ids.len());
    let none = app
        .call("GET", "/api/v1/videos?status=ready", None, None)
        .json();
    assert_eq!(none["items"], json!([]));
    assert_eq!(
        app.call("GET", "/api/v1/videos?cursor=nonsense", None, None)
            .json()["code"],
        "invalid_cursor"
    );
}
