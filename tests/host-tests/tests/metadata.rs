//! The metadata API and the events endpoint, through the real host, the real metadata
//! component and a real redis-server. Session tokens and event signatures are made with
//! `streamgate-core`, the code the services themselves use: wallet sign-in has its own tests
//! (tests/node), here the subject is what happens to videos, and who sees them.

use host_tests::*;
use rusqlite::Connection;
use std::sync::atomic::{AtomicU32, Ordering};
use streamgate_core::{edge_token, event_signature, keys, session};

/// Unique ids for the events [`App::events`] sends.
static EVENT_IDS: AtomicU32 = AtomicU32::new(1);

const SESSION_SECRET: &str = "metadata-test-session-secret-0123456789";
const EVENTS_SECRET: &str = "metadata-test-events-secret-0123456789";
const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const BOB: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const NFT: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

struct App {
    host: Host,
    redis: Redis,
    state: tempfile::TempDir,
}

fn app() -> App {
    app_with(&[])
}

/// The app with extra Spin variables, on a fresh state directory.
fn app_with(vars: &[(&str, &str)]) -> App {
    app_in(tempfile::tempdir().unwrap(), vars)
}

/// The app on `state` (which may hold a database laid down beforehand).
fn app_in(state: tempfile::TempDir, vars: &[(&str, &str)]) -> App {
    let redis = Redis::start();
    let mut config = HostConfig::new("spin.toml", state.path())
        .var("session_secret", SESSION_SECRET)
        .var("events_secret", EVENTS_SECRET)
        .var(
            "playback_secret",
            "metadata-test-playback-secret-0123456789",
        )
        .redis(&redis);
    for (name, value) in vars {
        config = config.var(name, *value);
    }
    let host = config.start();
    App { host, redis, state }
}

fn token(address: &str) -> String {
    token_at(address, now(), 3600)
}

/// A session token for `address`, issued at `issued` and living `lifetime` seconds.
fn token_at(address: &str, issued: i64, lifetime: i64) -> String {
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    let mut jti = [0u8; 16];
    jti[..8].copy_from_slice(&issued.to_le_bytes());
    jti[8] = address.as_bytes()[3];
    session::issue_session(
        &keys,
        address.parse().unwrap(),
        31337,
        issued,
        lifetime,
        jti,
    )
    .unwrap()
    .token
}

impl App {
    /// A call as `who` (a fresh session of that wallet) or anonymous.
    fn call(&self, method: &str, path: &str, who: Option<&str>, body: Option<Value>) -> Reply {
        let authorization = who.map(|who| format!("Bearer {}", token(who)));
        self.send(method, path, authorization.as_deref(), body).0
    }

    /// A call with this `Authorization` header (or none); the answer and its `Retry-After`.
    fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (Reply, Option<String>) {
        let mut request = ureq::request(method, &self.host.url(path));
        if let Some(authorization) = authorization {
            request = request.set("authorization", authorization);
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
        let retry_after = response.header("retry-after").map(str::to_string);
        let reply = Reply {
            status: response.status(),
            body: response.into_string().unwrap(),
        };
        (reply, retry_after)
    }

    fn created_id(&self, who: &str, title: &str) -> String {
        self.create(who, title)["id"].as_str().unwrap().to_string()
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

    /// The video as its owner (Alice, in these tests) sees it.
    fn status(&self, id: &str) -> Value {
        let reply = self.call("GET", &format!("/api/v1/videos/{id}"), Some(ALICE), None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// Sends events as the native side does, in order, each expected to be applied.
    fn events(&self, id: &str, events: &[(&str, Value)]) {
        for (kind, data) in events {
            let reply = self.event(
                EVENTS_SECRET,
                now(),
                &json!({"id": format!("ev-{}", EVENT_IDS.fetch_add(1, Ordering::Relaxed)),
                        "type": kind, "video_id": id, "data": data}),
            );
            assert_eq!(reply.status, 200, "{kind}: {}", reply.body);
        }
    }

    /// The video made ready through the events the native side sends.
    fn make_ready(&self, id: &str) {
        let rendition = json!({"name": "360p", "width": 640, "height": 360, "bandwidth": 900_000,
            "average_bandwidth": 800_000, "frame_rate": 30.0, "codecs": "avc1.64001e",
            "init": "360p/init.mp4", "segments": [{"uri": "360p/seg_00001.m4s", "duration": 4.0}]});
        self.events(
            id,
            &[
                (
                    "upload.completed",
                    json!({"size": 10, "source": format!("sources/{id}")}),
                ),
                ("transcode.started", json!({"attempt": 1})),
                (
                    "transcode.completed",
                    json!({"renditions": [rendition], "duration": 4.0}),
                ),
            ],
        );
    }

    /// The ids one list call answers, or its refusal (status and body).
    fn list_ids(&self, query: &str, who: Option<&str>) -> Result<Vec<String>, (u16, Value)> {
        let reply = self.call("GET", &format!("/api/v1/videos?{query}"), who, None);
        if reply.status != 200 {
            return Err((reply.status, reply.json()));
        }
        Ok(reply.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect())
    }
}

/// What a caller hears of a video it may not see is what it hears of one that does not exist:
/// the same status and code, the same sentence but for the id.
fn assert_hidden(app: &App, id: &str, who: Option<&str>) {
    let hidden = app.call("GET", &format!("/api/v1/videos/{id}"), who, None);
    let unknown_id = "nosuchvideo00000";
    let unknown = app.call("GET", &format!("/api/v1/videos/{unknown_id}"), who, None);
    assert_eq!(
        (unknown.status, unknown.json()["code"].clone()),
        (404, json!("not_found"))
    );
    assert_eq!(
        (hidden.status, hidden.body.replace(id, "<id>")),
        (unknown.status, unknown.body.replace(unknown_id, "<id>")),
        "{who:?} cannot tell video {id} from an unknown id"
    );
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
    let verified = edge_token::verify(token, &[&upload_key], &format!("/uploads/{id}"), now())
        .expect("the upload token verifies for its own path");
    assert_eq!(
        verified.data.as_deref(),
        Some(ALICE),
        "the token names the owner, for the origin's per-wallet quotas"
    );
    assert!(edge_token::verify(token, &[&upload_key], "/uploads/another-video", now()).is_err());

    let video = app.status(id);
    assert_eq!(video["owner"], ALICE);
    assert_eq!(video["title"], "My clip");
    assert_eq!(video["gate"][0]["min_balance"], "1");
}

#[test]
fn only_the_owner_changes_the_gate_or_deletes() {
    let app = app();
    let id = app.created_id(ALICE, "Alice's");
    let new_gate = json!({"gate": [{"chain_id": 31337, "contract": NFT, "standard": "erc1155", "token_id": "5"}]});
    let bob_sets_gate = || {
        app.call(
            "PUT",
            &format!("/api/v1/videos/{id}/gate"),
            Some(BOB),
            Some(new_gate.clone()),
        )
    };
    // Not ready yet: to Bob the video does not exist, for writes as for reads.
    let by_bob = bob_sets_gate();
    assert_eq!(
        (by_bob.status, by_bob.json()["code"].clone()),
        (404, json!("not_found")),
        "{}",
        by_bob.body
    );
    let bob_delete = app.call("DELETE", &format!("/api/v1/videos/{id}"), Some(BOB), None);
    assert_eq!(bob_delete.status, 404, "{}", bob_delete.body);
    // Ready, it is public: Bob may see it, not change it.
    app.make_ready(&id);
    let by_bob = bob_sets_gate();
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
        app.call("GET", &format!("/api/v1/videos/{id}"), Some(ALICE), None)
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
    let id = app.created_id(ALICE, "Pipeline");
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
fn a_failure_from_an_older_worker_without_a_code_is_stored_as_transcode_failed() {
    let app = app();
    let id = app.created_id(ALICE, "Not a video");
    app.events(
        &id,
        &[
            (
                "upload.completed",
                json!({"size": 5, "source": format!("sources/{id}")}),
            ),
            ("transcode.started", json!({"attempt": 1})),
            // A retryable failure changes nothing a reader sees.
            (
                "transcode.failed",
                json!({"error": "the worker stopped", "final": false}),
            ),
        ],
    );
    let video = app.status(&id);
    assert_eq!(video["status"], "transcoding");
    assert!(video.get("error_code").is_none() && video.get("error").is_none());

    // What workers sent before codes: a sentence and `final`, nothing else.
    app.events(
        &id,
        &[(
            "transcode.failed",
            json!({"error": "the upload is not a video: no video stream", "final": true}),
        )],
    );
    let video = app.status(&id);
    assert_eq!(video["status"], "failed");
    assert_eq!(video["error_code"], "transcode_failed");
    assert_eq!(video["error"], "the upload is not a video: no video stream");
}

#[test]
fn event_data_the_native_side_never_sends_is_refused_422_and_changes_nothing() {
    // The app reads an event's data as streamgate_core::pipeline::EventData, the type the
    // native side builds its events from: what that type refuses is refused here.
    let app = app();
    let id = app.created_id(ALICE, "Strict events");
    let send = |n: u32, kind: &str, data: Option<Value>| {
        let mut event = json!({"id": format!("strict-{n}"), "type": kind, "video_id": id});
        if let Some(data) = data {
            event["data"] = data;
        }
        app.event(EVENTS_SECRET, now(), &event)
    };
    let refused = |n: u32, kind: &str, data: Option<Value>| {
        let reply = send(n, kind, data.clone());
        assert_eq!(
            (reply.status, reply.json()["code"].clone()),
            (422, json!("invalid_event")),
            "{kind} {data:?}: {}",
            reply.body
        );
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("`{kind}` event data: ")),
            "{}",
            reply.body
        );
    };
    let source = format!("sources/{id}");
    // An upload without its size, or with a size that is no byte count.
    refused(1, "upload.completed", Some(json!({"source": source})));
    refused(
        2,
        "upload.completed",
        Some(json!({"size": -1, "source": source})),
    );
    assert_eq!(app.status(&id)["status"], "awaiting_upload");
    assert!(app.jobs().is_empty());

    app.events(
        &id,
        &[("upload.completed", json!({"size": 5, "source": source}))],
    );
    // A start without its attempt, or without data at all.
    refused(3, "transcode.started", Some(json!({})));
    refused(4, "transcode.started", None);
    // Progress that is not a whole percentage (before: clamped and floored).
    refused(5, "transcode.progress", Some(json!({"percent": 42.5})));
    refused(6, "transcode.progress", Some(json!({"percent": -3})));
    // A failure without its sentence or without `final` (before: a default sentence, not final).
    refused(
        7,
        "transcode.failed",
        Some(json!({"code": "io_error", "final": true})),
    );
    refused(
        8,
        "transcode.failed",
        Some(json!({"code": "io_error", "error": "x"})),
    );
    let video = app.status(&id);
    assert_eq!(video["status"], "queued");
    assert!(video.get("progress").is_none(), "{video}");

    // What the native side sends still goes through, and a refused id is not taken: the same
    // id with its data is applied.
    assert_eq!(
        send(3, "transcode.started", Some(json!({"attempt": 1}))).json()["status"],
        "applied"
    );
    assert_eq!(
        send(5, "transcode.progress", Some(json!({"percent": 42}))).json()["status"],
        "applied"
    );
    let video = app.status(&id);
    assert_eq!(
        (video["status"].clone(), video["progress"].clone()),
        (json!("transcoding"), json!(42))
    );
}

#[test]
fn a_failed_video_and_its_reason_are_its_owners_alone() {
    let app = app();
    let failed = app.created_id(ALICE, "Broken upload");
    let sentence = "This file is not in a video format we accept (MP4, MOV, Matroska, WebM, \
                    MPEG-TS). Export it as MP4 and upload it again.";
    app.events(
        &failed,
        &[
            (
                "upload.completed",
                json!({"size": 5, "source": format!("sources/{failed}")}),
            ),
            ("transcode.started", json!({"attempt": 1})),
            ("transcode.progress", json!({"percent": 12})),
            (
                "transcode.failed",
                json!({"code": "unsupported_format", "error": sentence, "final": true}),
            ),
        ],
    );
    let ready = app.created_id(ALICE, "Fine clip");
    app.make_ready(&ready);
    let pending = app.created_id(ALICE, "Still uploading");

    // The owner sees why, in the video and in her own list.
    let video = app.status(&failed);
    assert_eq!(
        (
            video["status"].clone(),
            video["error_code"].clone(),
            video["error"].clone()
        ),
        (
            json!("failed"),
            json!("unsupported_format"),
            json!(sentence)
        )
    );
    let mine = app
        .call(
            "GET",
            &format!("/api/v1/videos?owner={ALICE}"),
            Some(ALICE),
            None,
        )
        .json();
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{mine}");
    let listed = items.iter().find(|v| v["id"] == failed.as_str()).unwrap();
    assert_eq!(listed["error_code"], "unsupported_format");
    assert_eq!(listed["error"], sentence);
    assert_eq!(
        app.list_ids(&format!("owner={ALICE}&status=failed"), Some(ALICE))
            .unwrap(),
        vec![failed.clone()]
    );
    assert_eq!(
        app.list_ids(
            &format!("owner={}&status=awaiting_upload", ALICE.to_lowercase()),
            Some(ALICE)
        )
        .unwrap(),
        vec![pending.clone()],
        "her address in any case"
    );

    // Anyone else, signed in or not: the failed and the pending video do not exist.
    for who in [None, Some(BOB)] {
        assert_hidden(&app, &failed, who);
        assert_hidden(&app, &pending, who);
        for query in ["", "status=ready", &format!("owner={ALICE}"), "limit=100"] {
            assert_eq!(
                app.list_ids(query, who).unwrap(),
                vec![ready.clone()],
                "{who:?} lists `{query}`: the ready video only"
            );
        }
        for status in ["failed", "awaiting_upload", "queued", "transcoding"] {
            let (refused, body) = app
                .list_ids(&format!("owner={ALICE}&status={status}"), who)
                .unwrap_err();
            assert_eq!(
                (refused, body["code"].clone()),
                (400, json!("invalid_query")),
                "{who:?} asks for `{status}`"
            );
        }
        let public = app.call("GET", &format!("/api/v1/videos/{ready}"), who, None);
        assert_eq!(public.status, 200);
        assert!(public.json().get("error_code").is_none());
    }
    // The owner's session does not show others' work in progress either, nor hers without
    // `owner=`: only her own list does.
    assert_eq!(app.list_ids("", Some(ALICE)).unwrap(), vec![ready.clone()]);
    let bobs = app.created_id(BOB, "Bob's draft");
    assert_hidden(&app, &bobs, Some(ALICE));
    assert!(app
        .list_ids(&format!("owner={BOB}"), Some(ALICE))
        .unwrap()
        .is_empty());

    // A token that is presented must be valid: 401, not a quiet anonymous answer.
    let expired = format!("Bearer {}", token_at(ALICE, now() - 7200, 3600));
    for (authorization, code) in [
        (expired.as_str(), "token_expired"),
        ("Bearer not-a-jwt", "invalid_token"),
        ("Basic YWxpY2U6cGFzcw==", "invalid_token"),
    ] {
        for path in [
            format!("/api/v1/videos/{failed}"),
            format!("/api/v1/videos/{ready}"),
            format!("/api/v1/videos?owner={ALICE}"),
        ] {
            let (reply, _) = app.send("GET", &path, Some(authorization), None);
            assert_eq!(
                (reply.status, reply.json()["code"].clone()),
                (401, json!(code)),
                "{authorization} on {path}: {}",
                reply.body
            );
        }
    }
}

#[test]
fn lists_page_with_cursors_and_filter() {
    let app = app();
    let mut ids: Vec<String> = (0..5)
        .map(|i| app.created_id(ALICE, &format!("A{i}")))
        .collect();
    let bobs = app.created_id(BOB, "B");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/videos?owner={ALICE}&limit=2&cursor={c}"),
            None => format!("/api/v1/videos?owner={ALICE}&limit=2"),
        };
        let page = app.call("GET", &path, Some(ALICE), None).json();
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

    let pending = app
        .list_ids(
            &format!("owner={ALICE}&status=awaiting_upload&limit=100"),
            Some(ALICE),
        )
        .unwrap();
    assert_eq!(pending.len(), 5);
    let none = app
        .call("GET", "/api/v1/videos?status=ready", None, None)
        .json();
    assert_eq!(none["items"], json!([]), "nothing is ready yet");
    // Ready videos page for everyone.
    for id in &ids[..3] {
        app.make_ready(id);
    }
    let public = app.list_ids("limit=2", None).unwrap();
    let rest = app.call("GET", "/api/v1/videos?limit=2", None, None).json()["next_cursor"]
        .as_str()
        .map(|c| app.list_ids(&format!("limit=2&cursor={c}"), None).unwrap())
        .unwrap_or_default();
    let mut seen: Vec<String> = public.into_iter().chain(rest).collect();
    seen.sort();
    let mut expected = ids[..3].to_vec();
    expected.sort();
    assert_eq!(seen, expected, "the three ready videos, over two pages");
    assert_eq!(
        app.call("GET", "/api/v1/videos?cursor=nonsense", None, None)
            .json()["code"],
        "invalid_cursor"
    );
}

#[test]
fn list_query_values_are_percent_decoded_and_a_trailing_slash_is_no_route() {
    let app = app();
    let id = app.created_id(ALICE, "Encoded");
    app.create(BOB, "Not hers");
    // Every byte escaped, as a client that encodes everything sends it.
    let escaped = |text: &str| -> String { text.bytes().map(|b| format!("%{b:02X}")).collect() };
    assert_eq!(
        app.list_ids(
            &format!(
                "owner={}&status={}",
                escaped(ALICE),
                escaped("awaiting_upload")
            ),
            Some(ALICE)
        ),
        Ok(vec![id.clone()])
    );
    assert_eq!(
        app.list_ids("limit=%32", Some(ALICE)).map(|ids| ids.len()),
        Ok(0),
        "nothing is ready"
    );
    // Decoded, a bad value is still a clear 400.
    let (status, body) = app.list_ids("owner=0x%ZZ", None).unwrap_err();
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // Paths are as documented: with a trailing slash they are no route (JSON 404), not the
    // list or a video with an empty id.
    for (method, path) in [
        ("GET", "/api/v1/videos/".to_string()),
        ("POST", "/api/v1/videos/".to_string()),
        ("GET", format!("/api/v1/videos/{id}/")),
        ("DELETE", format!("/api/v1/videos/{id}/")),
    ] {
        let reply = app.call(method, &path, Some(ALICE), None);
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
        assert_eq!(reply.json()["code"], "not_found", "{method} {path}");
        assert!(reply.json()["error"].is_string(), "{method} {path}");
    }
    // The video is still there.
    assert_eq!(
        app.call("GET", &format!("/api/v1/videos/{id}"), Some(ALICE), None)
            .status,
        200
    );
}

#[test]
fn a_wallet_may_have_only_so_many_videos_awaiting_upload() {
    let app = app_with(&[("max_pending_uploads_per_wallet", "2")]);
    let first = app.created_id(ALICE, "One");
    let second = app.created_id(ALICE, "Two");

    let create = |who: &str| {
        app.send(
            "POST",
            "/api/v1/videos",
            Some(&format!("Bearer {}", token(who))),
            Some(json!({"title": "One more"})),
        )
    };
    let (refused, retry_after) = create(ALICE);
    assert_eq!(
        (refused.status, refused.json()["code"].clone()),
        (429, json!("too_many_pending_uploads")),
        "{}",
        refused.body
    );
    let sentence = refused.json()["error"].as_str().unwrap().to_string();
    assert!(
        sentence.contains("finish") && sentence.contains("delete"),
        "the answer says what to do: {sentence}"
    );
    // Without action, a slot frees when the oldest pending upload URL expires (24 h).
    let wait: i64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((86_000..=86_400).contains(&wait), "Retry-After {wait}");
    let mine = |status: &str| {
        app.list_ids(&format!("owner={ALICE}&status={status}"), Some(ALICE))
            .unwrap()
    };
    assert_eq!(
        mine("awaiting_upload").len(),
        2,
        "the refused one was not stored"
    );

    // The limit is per wallet.
    app.create(BOB, "Bob's");

    // An upload that completes frees its slot...
    app.events(
        &first,
        &[(
            "upload.completed",
            json!({"size": 10, "source": format!("sources/{first}")}),
        )],
    );
    let third = app.created_id(ALICE, "Three");
    assert_eq!(create(ALICE).0.status, 429);
    // ...so does a deleted video...
    let deleted = app.call(
        "DELETE",
        &format!("/api/v1/videos/{second}"),
        Some(ALICE),
        None,
    );
    assert_eq!(deleted.status, 204);
    let fourth = app.created_id(ALICE, "Four");
    assert_eq!(create(ALICE).0.status, 429);

    // ...and one whose upload URL expired: abandoned, it no longer counts (its creation is
    // moved back a day and a second, as if the creator had walked away then).
    let db = Connection::open(app.state.path().join("sqlite_db.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let moved = db
        .execute(
            "UPDATE videos SET created_at = created_at - 86401 WHERE id = ?1",
            [&third],
        )
        .unwrap();
    assert_eq!(moved, 1);
    let (reply, _) = create(ALICE);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(create(ALICE).0.status, 429);
    let pending = mine("awaiting_upload");
    assert_eq!(
        pending.len(),
        3,
        "the abandoned one is still listed to its owner"
    );
    assert!(pending.contains(&third) && pending.contains(&fourth));
}

#[test]
fn concurrent_creations_cannot_pass_the_pending_upload_limit_together() {
    let app = app_with(&[("max_pending_uploads_per_wallet", "3")]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..12)
            .map(|i| {
                let app = &app;
                scope.spawn(move || {
                    app.call(
                        "POST",
                        "/api/v1/videos",
                        Some(ALICE),
                        Some(json!({"title": format!("Race {i}")})),
                    )
                    .status
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((created, refused), (3, 9), "{statuses:?}");
    assert_eq!(
        app.list_ids(&format!("owner={ALICE}&limit=100"), Some(ALICE))
            .unwrap()
            .len(),
        3
    );
}

/// The metadata tables at schema version 2 (before failure codes), holding one video that
/// failed with a sentence only; `column_added` as if a migration to version 3 had crashed
/// after adding the column and before recording itself.
fn lay_down_version_2(path: &std::path::Path, column_added: bool) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE schema_migrations (scope TEXT NOT NULL, version INTEGER NOT NULL,
            applied_at INTEGER NOT NULL, PRIMARY KEY (scope, version));
         INSERT INTO schema_migrations VALUES ('metadata', 1, 0), ('metadata', 2, 0);
         CREATE TABLE videos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
            description TEXT, status TEXT NOT NULL, error TEXT, progress INTEGER, source TEXT,
            poster TEXT, duration REAL, gate_version INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
         CREATE TABLE gate_rules (video_id TEXT NOT NULL, version INTEGER NOT NULL,
            position INTEGER NOT NULL, rule TEXT NOT NULL, PRIMARY KEY (video_id, version, position));
         CREATE TABLE renditions (video_id TEXT NOT NULL, position INTEGER NOT NULL,
            name TEXT NOT NULL, rendition TEXT NOT NULL, PRIMARY KEY (video_id, position));
         CREATE TABLE jobs (video_id TEXT NOT NULL, stream_id TEXT NOT NULL,
            action TEXT NOT NULL, enqueued_at INTEGER NOT NULL);
         CREATE TABLE applied_events (id TEXT PRIMARY KEY, video_id TEXT NOT NULL,
            type TEXT NOT NULL, received_at INTEGER NOT NULL);
         CREATE TABLE audio_tracks (video_id TEXT NOT NULL, position INTEGER NOT NULL,
            name TEXT NOT NULL, track TEXT NOT NULL, PRIMARY KEY (video_id, position));",
    )
    .unwrap();
    if column_added {
        db.execute_batch("ALTER TABLE videos ADD COLUMN error_code TEXT")
            .unwrap();
    }
    db.execute(
        "INSERT INTO videos (id, owner, title, status, error, gate_version, created_at, updated_at)
         VALUES ('oldfail1', ?1, 'clip', 'failed', 'no video stream', 1, 1, 1)",
        [ALICE],
    )
    .unwrap();
}

#[test]
fn an_older_database_gains_failure_codes_even_after_a_crash_mid_migration() {
    for column_added in [false, true] {
        let state = tempfile::tempdir().unwrap();
        lay_down_version_2(&state.path().join("sqlite_db.db"), column_added);
        let app = app_in(state, &[]);

        // Many first requests at once: whichever migrates, they all get a whole schema.
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..6)
                .map(|_| {
                    scope.spawn(|| {
                        app.call("GET", "/api/v1/videos/oldfail1", Some(ALICE), None)
                            .status
                    })
                })
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let log = app.host.log();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "column already there: {column_added}: {statuses:?}\n{log}"
        );
        let video = app.status("oldfail1");
        assert_eq!(
            (video["error_code"].clone(), video["error"].clone()),
            (json!("transcode_failed"), json!("no video stream")),
            "a video that failed before codes reads as transcode_failed"
        );
        assert_hidden(&app, "oldfail1", Some(BOB));
        let db = Connection::open(app.state.path().join("sqlite_db.db")).unwrap();
        let version: i64 = db
            .query_row(
                "SELECT MAX(version) FROM schema_migrations WHERE scope = 'metadata'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, 5, "brought up to the latest schema");
        // New failures land in the migrated schema.
        let id = app.created_id(ALICE, "After the migration");
        app.events(
            &id,
            &[(
                "transcode.failed",
                json!({"code": "source_too_long", "error": "The video is longer than 4 hours.", "final": true}),
            )],
        );
        assert_eq!(app.status(&id)["error_code"], "source_too_long");
    }
}
