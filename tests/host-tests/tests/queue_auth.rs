//! Queue trust, through the real host and the real metadata component: the private Redis
//! requires a password (the users of infra/redis/users.acl.template, as under `scripts/up`).
//! The app's credentialed `redis_address` passes an allow-list that names only
//! `redis://{{ redis_host }}`, as in Spin; without the password, with a wrong one, or with a user
//! that may not append jobs, the metadata component answers a clear 503 `queue_unavailable`
//! (never a 500) and changes nothing; and the app's user can append jobs and nothing else.

use host_tests::*;
use streamgate_core::{event_signature, keys, session};

const SESSION_SECRET: &str = "queue-auth-test-session-secret-0123456789";
const EVENTS_SECRET: &str = "queue-auth-test-events-secret-0123456789";
const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

fn token(address: &str) -> String {
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    let now = now();
    let mut jti = [0u8; 16];
    jti[..8].copy_from_slice(&now.to_le_bytes());
    session::issue_session(&keys, address.parse().unwrap(), 31337, now, 3600, jti)
        .unwrap()
        .token
}

/// The app from spin.toml with `redis_address` and `redis_host` as given.
fn app(state: &std::path::Path, redis_address: &str, redis_host: &str) -> Host {
    HostConfig::new("spin.toml", state)
        .var("session_secret", SESSION_SECRET)
        .var("events_secret", EVENTS_SECRET)
        .var(
            "playback_secret",
            "queue-auth-test-playback-secret-0123456789",
        )
        .var("redis_address", redis_address)
        .var("redis_host", redis_host)
        .start()
}

fn call(
    host: &Host,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Option<String>) {
    let request = ureq::request(method, &host.url(path))
        .set("authorization", &format!("Bearer {}", token(ALICE)));
    let result = match body {
        Some(b) => request.send_string(&b.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let retry_after = response.header("retry-after").map(str::to_string);
    (
        response.status(),
        response.into_string().unwrap(),
        retry_after,
    )
}

fn event(host: &Host, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let key = keys::derive(EVENTS_SECRET, "events");
    let response = ureq::post(&host.url("/internal/v1/events"))
        .set("content-type", "application/json")
        .set(
            "streamgate-signature",
            &event_signature::sign(&key, now(), body.as_bytes()),
        )
        .send_string(&body);
    let response = match response {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("event: {e}"),
    };
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

fn create(host: &Host) -> String {
    let (status, body, _) = call(
        host,
        "POST",
        "/api/v1/videos",
        Some(json!({"title": "clip"})),
    );
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn video_status(host: &Host, id: &str) -> String {
    let (status, body, _) = call(host, "GET", &format!("/api/v1/videos/{id}"), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stream_len(redis: &Redis) -> i64 {
    redis::cmd("XLEN")
        .arg("streamgate:jobs")
        .query(&mut redis.conn())
        .unwrap()
}

/// The queue refuses `address`: a delete and an upload's completion each answer 503
/// `queue_unavailable` with Retry-After, naming neither the address nor its password; the delete
/// leaves the video as it was, the completion is applied with its job kept in the outbox.
fn assert_refused(host: &Host, redis: &Redis, secret_in_address: Option<&str>, what: &str) {
    let id = create(host);

    let (status, body, retry_after) = call(host, "DELETE", &format!("/api/v1/videos/{id}"), None);
    assert_eq!(status, 503, "{what}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["code"], "queue_unavailable", "{what}: {body}");
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert!(retry_after.is_some(), "{what}: a 503 says when to retry");
    if let Some(secret) = secret_in_address {
        assert!(
            !body.contains(secret),
            "{what}: the answer shows the password: {body}"
        );
    }
    assert_eq!(
        video_status(host, &id),
        "awaiting_upload",
        "{what}: not deleted"
    );

    let completed = json!({"id": format!("ev-upload-{id}"), "type": "upload.completed",
                           "video_id": id, "data": {"size": 1234, "source": format!("sources/{id}")}});
    let (status, body) = event(host, &completed);
    assert_eq!(
        (status, &body["code"]),
        (503, &json!("queue_unavailable")),
        "{what}: {body}"
    );
    // The event is applied and its job waits in the outbox (docs/pipeline.md): the sender's
    // re-delivery hands it over once the queue takes it; until then it is refused the same way.
    assert_eq!(
        video_status(host, &id),
        "queued",
        "{what}: the event is applied, its job kept in the outbox"
    );
    let (status, body) = event(host, &completed);
    assert_eq!(
        (status, &body["code"]),
        (503, &json!("queue_unavailable")),
        "{what}: a re-delivery cannot hand the job over either: {body}"
    );
    assert_eq!(stream_len(redis), 0, "{what}: no job reached the stream");
    assert!(!host.log().contains("panicked"), "{what}: {}", host.log());
}

#[test]
fn the_app_queues_jobs_with_its_password_through_a_host_only_allow_list() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = app(state.path(), &redis.app_url(), &redis.host());
    let id = create(&host);
    let completed = json!({"id": "ev-upload-ok", "type": "upload.completed", "video_id": id,
                           "data": {"size": 1234, "source": format!("sources/{id}")}});
    let (status, body) = event(&host, &completed);
    assert_eq!(status, 200, "{body}");
    assert_eq!(video_status(&host, &id), "queued");
    let jobs: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&["streamgate:jobs", "-", "+"])
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].1.contains(&("video_id".to_string(), id.clone())));
}

#[test]
fn without_the_password_the_app_answers_503_queue_unavailable() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();

    // No credentials: every command answers NOAUTH.
    let host = app(state.path(), &redis.url_without_password(), &redis.host());
    assert_refused(&host, &redis, None, "no password");
    drop(host);

    // The app's user with a wrong password: the connection is refused (WRONGPASS).
    let wrong = "wrong-app-password-8c2e";
    let host = app(
        state.path(),
        &format!("redis://streamgate-app:{wrong}@{}", redis.host()),
        &redis.host(),
    );
    assert_refused(&host, &redis, Some(wrong), "wrong password");
    drop(host);

    // A user that may not append jobs (the worker's): NOPERM.
    let worker_url = redis.worker_url();
    let worker_password = worker_url
        .trim_start_matches("redis://streamgate-worker:")
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let host = app(state.path(), &worker_url, &redis.host());
    assert_refused(&host, &redis, Some(&worker_password), "the worker's user");
}

#[test]
fn an_address_outside_redis_host_is_refused_and_logged_without_its_password() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let app_url = redis.app_url();
    let password = app_url
        .trim_start_matches("redis://streamgate-app:")
        .split('@')
        .next()
        .unwrap()
        .to_string();
    // redis_host names another port: the credentialed address is not allowed.
    let host = app(state.path(), &app_url, "127.0.0.1:1");
    assert_refused(
        &host,
        &redis,
        Some(&password),
        "not in allowed_outbound_hosts",
    );
    let denied = format!(
        "Outbound network destination not allowed: redis://{}",
        redis.host()
    );
    assert!(host.logs_eventually(&denied), "{}", host.log());
    assert!(
        !host.log().contains(&password),
        "the log shows the password:\n{}",
        host.log()
    );
}

#[test]
fn the_app_user_appends_jobs_and_nothing_else() {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    // The probe component, allowed `redis://127.0.0.1:{{ redis_port }}`, given the app's
    // credentialed URL: the allow-list check ignores the user and password, Redis does not.
    let host = probe_app_with_redis(state.path(), &redis).start();
    let exec =
        |command: &str, args: Value| host.probe_redis_execute(&redis.app_url(), command, args);
    let added = exec("XADD", json!(["streamgate:jobs", "*", "video_id", "v1"]));
    assert!(added["ok"][0].is_string(), "{added}");
    for (command, args) in [
        ("XRANGE", json!(["streamgate:jobs", "-", "+"])),
        ("XLEN", json!(["streamgate:jobs"])),
        ("XADD", json!(["streamgate:jobs:dead", "*", "a", "b"])),
        ("XADD", json!(["other", "*", "a", "b"])),
        ("DEL", json!(["streamgate:jobs"])),
        ("SET", json!(["k", "v"])),
        ("KEYS", json!(["*"])),
        ("PUBLISH", json!(["c", "m"])),
        ("FLUSHALL", json!([])),
    ] {
        let refused = exec(command, args.clone());
        assert!(
            refused["err"]
                .as_str()
                .is_some_and(|e| e.contains("NOPERM")),
            "{command} {args}: {refused}"
        );
    }
    assert_eq!(stream_len(&redis), 1, "only the one job");
}

#[test]
fn the_queue_comes_back_after_redis_restarts() {
    let mut redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = app(state.path(), &redis.app_url(), &redis.host());
    let completed = |id: &str| {
        json!({"id": format!("ev-upload-{id}"), "type": "upload.completed", "video_id": id,
               "data": {"size": 1234, "source": format!("sources/{id}")}})
    };
    let first = create(&host);
    assert_eq!(event(&host, &completed(&first)).0, 200);

    // The host's pooled connection dies with the server. The first call after that may fail
    // (503, retried by the sender), the next one reconnects: it must not stay broken.
    redis.restart();
    let second = create(&host);
    let (status, body) = event(&host, &completed(&second));
    if status != 200 {
        assert_eq!(
            (status, &body["code"]),
            (503, &json!("queue_unavailable")),
            "{body}"
        );
        let (status, body) = event(&host, &completed(&second));
        assert_eq!(status, 200, "the retry reconnects: {body}");
    }
    assert_eq!(video_status(&host, &second), "queued");
    assert_eq!(stream_len(&redis), 1, "the job reached the restarted Redis");
}
