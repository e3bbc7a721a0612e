//! `/internal/v1/events` against hostile callers and unlucky senders, through the real host, the
//! real metadata component and a real redis-server: a request whose signature header can never
//! verify is refused before its body is read, a body over the events limit is refused at its
//! size, a genuine event still goes through, and one event delivered many times at once takes
//! effect once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use host_tests::*;
use streamgate_core::{event_signature, keys, session};

const SESSION_SECRET: &str = "events-test-session-secret-0123456789abcd";
const EVENTS_SECRET: &str = "events-test-events-secret-0123456789abcde";
const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// The body limit of the events route (components/metadata/src/events.rs).
const EVENT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// How long the host gives a component waiting for a body that does not come, set far above
/// what an early refusal may take, so a host (or component) that waits for the body fails.
const BODY_IDLE_SECS: u64 = 30;

struct App {
    host: Host,
    redis: Redis,
    _state: tempfile::TempDir,
}

/// The app with this file's secrets; each test adds its queue and limits.
fn events_host(state: &tempfile::TempDir) -> HostConfig {
    HostConfig::new("spin.toml", state.path())
        .var("session_secret", SESSION_SECRET)
        .var("events_secret", EVENTS_SECRET)
        .var(
            "playback_secret",
            "events-test-playback-secret-0123456789abc",
        )
}

fn app() -> App {
    let redis = Redis::start();
    let state = tempfile::tempdir().unwrap();
    let host = events_host(&state)
        .redis(&redis)
        .args(&["--body-idle-timeout-secs", &BODY_IDLE_SECS.to_string()])
        .start();
    App {
        host,
        redis,
        _state: state,
    }
}

/// An answer read off a raw connection: status, body, and how long it took to come.
struct Answer {
    status: u16,
    body: String,
    took: Duration,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Reads one response (head and a `Content-Length` body) without waiting for the connection
/// to close: the host may keep reading the unread body for a while after it answered.
fn read_answer(stream: &mut TcpStream, started: Instant, limit: Duration) -> Answer {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|l| l.trim().parse::<usize>().unwrap())
                .expect("a content-length");
            if seen.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return Answer {
                    status,
                    body: String::from_utf8_lossy(&seen[end + 4..end + 4 + length]).into_owned(),
                    took: started.elapsed(),
                };
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!(
                "closed before a whole answer: {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no whole answer after {:?} ({e}); read so far: {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// Sends a POST head to the events route that announces `content_length` bytes, then `body`
/// (possibly nothing) and no more; answers what the host says.
fn post_head(app: &App, signature: Option<&str>, content_length: usize, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(app.host.addr).unwrap();
    let mut head = format!(
        "POST /internal/v1/events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n",
        app.host.addr
    );
    if let Some(signature) = signature {
        head.push_str(&format!("StreamGate-Signature: {signature}\r\n"));
    }
    head.push_str("\r\n");
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_answer(
        &mut stream,
        started,
        Duration::from_secs(BODY_IDLE_SECS + 10),
    )
}

/// A genuine event as the native side signs it.
fn signed(at: i64, body: &str) -> String {
    event_signature::sign(&keys::derive(EVENTS_SECRET, "events"), at, body.as_bytes())
}

fn alice() -> String {
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    let token = session::issue_session(&keys, ALICE.parse().unwrap(), 31337, now(), 3600, [7; 16])
        .unwrap()
        .token;
    format!("Bearer {token}")
}

fn create_video(app: &App) -> String {
    let response = ureq::post(&app.host.url("/api/v1/videos"))
        .set("authorization", &alice())
        .send_string(&json!({"title": "Events", "gate": []}).to_string())
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// The video as its owner sees it.
fn video(app: &App, id: &str) -> Value {
    let response = ureq::get(&app.host.url(&format!("/api/v1/videos/{id}")))
        .set("authorization", &alice())
        .call()
        .unwrap();
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

#[test]
fn an_event_whose_signature_header_cannot_verify_is_refused_before_its_body() {
    let app = app();
    let fresh_tag = "ab".repeat(32);
    let cases = [
        ("no signature header", None, "bad_event_signature"),
        (
            "garbage",
            Some("garbage".to_string()),
            "bad_event_signature",
        ),
        (
            "a timestamp but no tag",
            Some(format!("t={}", now())),
            "bad_event_signature",
        ),
        (
            "a tag too short to be an HMAC",
            Some(format!("t={},v1=deadbeef", now())),
            "bad_event_signature",
        ),
        (
            "a stale timestamp",
            Some(format!("t={},v1={fresh_tag}", now() - 3600)),
            "stale_event",
        ),
        (
            "a timestamp far in the past",
            Some(format!("t={},v1={fresh_tag}", i64::MIN)),
            "stale_event",
        ),
    ];
    // A body announced (under the events limit, and over it), not one byte sent: the answer
    // must not wait for it.
    for ((what, signature, code), announced) in cases
        .into_iter()
        .flat_map(|case| [(case.clone(), 1_000_000), (case, 10_000_000)])
    {
        let what = format!("{what}, {announced} bytes announced");
        let answer = post_head(&app, signature.as_deref(), announced, b"");
        assert_eq!(answer.status, 401, "{what}: {}", answer.body);
        assert_eq!(answer.json()["code"], code, "{what}");
        assert!(answer.json()["error"].is_string(), "{what}");
        assert!(
            answer.took < Duration::from_secs(3),
            "{what}: refused after {:?}; the body-idle timeout is {BODY_IDLE_SECS} s, so the body was waited for",
            answer.took
        );
    }
    // The host is still serving.
    assert_eq!(app.host.get("/health").status, 200);
}

#[test]
fn an_event_body_over_the_limit_is_refused_at_its_size() {
    let app = app();
    // A header that looks right (fresh, a tag of the right length) gets as far as the body,
    // whose announced size is already over the limit: 413 at once, nothing read.
    let looks_right = format!("t={},v1={}", now(), "ab".repeat(32));
    let answer = post_head(&app, Some(&looks_right), EVENT_BODY_LIMIT + 1, b"");
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.json()["code"], "payload_too_large");
    assert!(
        answer.took < Duration::from_secs(3),
        "refused after {:?}",
        answer.took
    );

    // The same without a length up front (chunked): refused once the body passes the limit.
    let mut stream = TcpStream::connect(app.host.addr).unwrap();
    let head = format!(
        "POST /internal/v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nStreamGate-Signature: {looks_right}\r\n\r\n"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b' '; 256 * 1024];
    let mut sent = 0;
    while sent <= EVENT_BODY_LIMIT {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&framed).is_err() {
            break; // the host has answered and stopped reading
        }
        sent += chunk.len();
    }
    let answer = read_answer(&mut stream, started, Duration::from_secs(20));
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.json()["code"], "payload_too_large");
    assert_eq!(app.host.get("/health").status, 200);
}

#[test]
fn a_genuine_event_still_goes_through_and_a_forged_one_of_the_right_shape_does_not() {
    let app = app();
    let id = create_video(&app);
    let body = json!({"id": "ev-1", "type": "upload.completed", "video_id": id,
                      "data": {"size": 10, "source": format!("sources/{id}")}})
    .to_string();

    let forged = format!("t={},v1={}", now(), "ab".repeat(32));
    let answer = post_head(&app, Some(&forged), body.len(), body.as_bytes());
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.json()["code"], "bad_event_signature");

    let answer = post_head(
        &app,
        Some(&signed(now(), &body)),
        body.len(),
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["status"], "applied");
    assert_eq!(video(&app, &id)["status"], "queued");
}

/// Sends one signed event body on its own connection (as a retrying sender would, again and
/// again); answers the status and the body.
fn deliver(app: &App, body: &str, signature: &str) -> (u16, Value) {
    let response = ureq::post(&app.host.url("/internal/v1/events"))
        .set("content-type", "application/json")
        .set("streamgate-signature", signature)
        .send_string(body);
    let response = match response {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("event: {e}"),
    };
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

/// Ten deliveries of the same signed event at once (each retried while told `job_pending`):
/// every one is acknowledged, exactly one as `applied`.
fn deliver_ten_at_once(app: &App, body: &str) {
    let signature = signed(now(), body);
    let barrier = std::sync::Barrier::new(10);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    // As the sender does: a delivery that finds the video's job being handed
                    // to the queue by another is told to retry.
                    for _ in 0..50 {
                        let answer = deliver(app, body, &signature);
                        if answer.0 != 503 || answer.1["code"] != "job_pending" {
                            return answer;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    panic!("the job stayed pending");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "every delivery is acknowledged: {answers:?}"
    );
    let applied = answers
        .iter()
        .filter(|(_, body)| body["status"] == "applied")
        .count();
    let duplicate = answers
        .iter()
        .filter(|(_, body)| body["status"] == "duplicate")
        .count();
    assert_eq!(
        (applied, duplicate),
        (1, 9),
        "one delivery applies the event, the others find it applied: {answers:?}"
    );
}

#[test]
fn an_event_delivered_many_times_at_once_takes_effect_once() {
    let app = app();
    let id = create_video(&app);
    let jobs = || -> usize {
        redis::cmd("XLEN")
            .arg("streamgate:jobs")
            .query(&mut app.redis.conn())
            .unwrap()
    };

    // The upload's completion, ten times at once: one job queued.
    let uploaded = json!({"id": "ev-upload", "type": "upload.completed", "video_id": id,
                          "data": {"size": 10, "source": format!("sources/{id}")}})
    .to_string();
    deliver_ten_at_once(&app, &uploaded);
    assert_eq!(video(&app, &id)["status"], "queued");
    assert_eq!(jobs(), 1, "one transcode job for one upload");
    // Later, one at a time, it is a duplicate as before.
    assert_eq!(
        deliver(&app, &uploaded, &signed(now(), &uploaded)).1["status"],
        "duplicate"
    );

    let started =
        json!({"id": "ev-started", "type": "transcode.started", "video_id": id, "data": {"attempt": 1}})
            .to_string();
    assert_eq!(
        deliver(&app, &started, &signed(now(), &started)).1["status"],
        "applied"
    );

    // The completion of a long video (many statements to apply), ten times at once: its
    // tracks are stored once, and the video is ready.
    let track = |name: &str| {
        (1..=400)
            .map(|n| json!({"uri": format!("{name}/seg_{n:05}.m4s"), "duration": 4.0}))
            .collect::<Vec<_>>()
    };
    let renditions: Vec<Value> = [("1080p", 1080), ("720p", 720), ("480p", 480), ("360p", 360)]
        .iter()
        .map(|(name, h)| {
            json!({"name": name, "width": h * 16 / 9, "height": h, "bandwidth": 1_000_000,
                   "average_bandwidth": 900_000, "frame_rate": 30.0, "codecs": "avc1.64001f",
                   "init": format!("{name}/init.mp4"), "segments": track(name)})
        })
        .collect();
    let audio = json!([{"name": "audio", "bandwidth": 140_000, "average_bandwidth": 130_000,
        "codecs": "mp4a.40.2", "channels": 2, "sample_rate": 48_000, "init": "audio/init.mp4",
        "segments": track("audio")}]);
    let completed = json!({"id": "ev-completed", "type": "transcode.completed", "video_id": id,
        "data": {"renditions": renditions, "audio": audio, "poster": "poster.jpg", "duration": 1600.0}})
    .to_string();
    deliver_ten_at_once(&app, &completed);
    let ready = video(&app, &id);
    assert_eq!(ready["status"], "ready");
    let names: Vec<&str> = ready["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1080p", "720p", "480p", "360p"]);
    assert_eq!(ready["audio"].as_array().unwrap().len(), 1);
    assert_eq!(ready["progress"], 100);
    assert_eq!(jobs(), 1, "no further job");
}

/// The jobs waiting in the metadata database's outbox for `video`: (action, source).
fn outbox(state: &std::path::Path, video: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(state.join("sqlite_db.db")).unwrap();
    let mut statement = db
        .prepare("SELECT action, source FROM job_outbox WHERE video_id = ? ORDER BY id")
        .unwrap();
    statement
        .query_map([video], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_job_the_queue_refuses_waits_in_the_outbox_and_goes_with_the_redelivery() {
    let mut app = app();
    let id = create_video(&app);
    let uploaded = json!({"id": "ev-upload", "type": "upload.completed", "video_id": id,
                          "data": {"size": 10, "source": format!("sources/{id}")}})
    .to_string();
    // The queue is down. (The connection ends with the server; its error is the expected
    // outcome.)
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query::<()>(&mut app.redis.conn());
    let (status, body) = deliver(&app, &uploaded, &signed(now(), &uploaded));
    assert_eq!(status, 503, "{body}");
    assert!(
        body["code"].is_string() && body["error"].is_string(),
        "{body}"
    );
    // The event took effect and its job is kept for the queue.
    assert_eq!(video(&app, &id)["status"], "queued");
    assert_eq!(
        outbox(app._state.path(), &id),
        [("transcode".to_string(), format!("sources/{id}"))]
    );
    // Still down: a re-delivery finds the event applied, and is refused again, the job kept.
    let (status, body) = deliver(&app, &uploaded, &signed(now(), &uploaded));
    assert_eq!(status, 503, "{body}");
    assert_eq!(outbox(app._state.path(), &id).len(), 1);

    // The queue is back: the next re-delivery hands the job over, once.
    app.redis.restart();
    let (status, body) = deliver(&app, &uploaded, &signed(now(), &uploaded));
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("duplicate")),
        "{body}"
    );
    let jobs = |app: &App| -> Vec<redis::Value> {
        redis::cmd("XRANGE")
            .arg("streamgate:jobs")
            .arg("-")
            .arg("+")
            .query(&mut app.redis.conn())
            .unwrap()
    };
    assert_eq!(jobs(&app).len(), 1, "one transcode job: {:?}", jobs(&app));
    assert!(
        format!("{:?}", jobs(&app)).contains(&format!("sources/{id}")),
        "{:?}",
        jobs(&app)
    );
    assert!(outbox(app._state.path(), &id).is_empty());
    let (status, _) = deliver(&app, &uploaded, &signed(now(), &uploaded));
    assert_eq!(status, 200);
    assert_eq!(jobs(&app).len(), 1, "no second job for the same upload");
}

#[test]
fn a_queue_that_never_answers_holds_up_no_other_request() {
    // Fault injection: a "Redis" that accepts connections and never answers, which a real
    // redis-server cannot be made to do on demand. The queue call waits on it until the
    // host's request deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>> = Default::default();
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in silent.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let state = tempfile::tempdir().unwrap();
    let host = events_host(&state)
        .var("redis_address", format!("redis://127.0.0.1:{port}"))
        .var("redis_host", format!("127.0.0.1:{port}"))
        .args(&["--request-timeout-secs", "8"])
        .start();
    let app = App {
        host,
        redis: Redis::start(),
        _state: state,
    };
    let id = create_video(&app);
    let uploaded = json!({"id": "ev-upload", "type": "upload.completed", "video_id": id,
                          "data": {"size": 10, "source": format!("sources/{id}")}})
    .to_string();
    std::thread::scope(|scope| {
        let delivery = scope.spawn(|| deliver(&app, &uploaded, &signed(now(), &uploaded)));
        // Wait until the queue call is under way.
        let started = Instant::now();
        while held.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the queue was never called"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        // Meanwhile the app's SQL is free: the list and the video answer at once, and the
        // event has taken effect.
        let asked = Instant::now();
        let list = app.host.get("/api/v1/videos");
        assert_eq!(list.status, 200);
        let queued = video(&app, &id);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "reads waited {:?} on the queue call",
            asked.elapsed()
        );
        assert_eq!(queued["status"], "queued");
        assert!(!delivery.is_finished(), "the queue call was still hanging");
        let (status, body) = delivery.join().unwrap();
        assert!(status >= 500, "{status} {body}");
        assert!(body["code"].is_string(), "{body}");
    });
    assert_eq!(outbox(app._state.path(), &id).len(), 1, "the job is kept");
}
