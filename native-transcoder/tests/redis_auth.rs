//! Queue trust: the private Redis runs with the users of infra/redis/users.acl.template, as
//! under `scripts/up`. A worker without the worker's password does not start (a clear error,
//! the password never printed), and the worker's user can do what the worker does and nothing
//! more. (The other worker tests run the whole job lifecycle as this user.)

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use redis::Commands;

/// Runs `native-transcoder work` with `redis_url` in STREAMGATE_REDIS_URL; it must exit by
/// itself within 20 s. Returns (exited successfully, stderr).
fn work_expecting_exit(redis_url: &str) -> (bool, String) {
    let media = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_native-transcoder"))
        .args(["work", "--media-dir"])
        .arg(media.path())
        .args(["--events-url", "http://127.0.0.1:9/internal/v1/events"])
        .env("STREAMGATE_EVENTS_SECRET", SECRET)
        .env("STREAMGATE_REDIS_URL", redis_url)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the native-transcoder binary runs");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the worker did not exit: stdout {:?}, stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("worker ready"),
        "it must not report ready"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_worker_without_the_password_does_not_start() {
    let redis = Redis::start();

    // No credentials at all: Redis answers NOAUTH.
    let (ok, stderr) = work_expecting_exit(&redis.url_without_password());
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("refused the worker") && stderr.contains("NOAUTH"),
        "{stderr}"
    );
    assert!(stderr.contains("STREAMGATE_REDIS_URL"), "{stderr}");

    // The worker's user with a wrong password: refused, and the password is not printed.
    let wrong = "not-the-worker-password-4f1d";
    let (ok, stderr) = work_expecting_exit(&format!(
        "redis://streamgate-worker:{wrong}@{}",
        redis.host()
    ));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("refused the worker"), "{stderr}");
    assert!(!stderr.contains(wrong), "the password leaked: {stderr}");
    assert!(stderr.contains("streamgate-worker:***@"), "{stderr}");

    // The app's credentials are not the worker's: the app's user cannot create the group.
    let (ok, stderr) = work_expecting_exit(&redis.app_url());
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("refused the worker") && stderr.contains("NOPERM"),
        "{stderr}"
    );

    // Nothing was created on the way.
    let mut admin = redis.conn();
    let exists: bool = admin.exists("streamgate:jobs").unwrap();
    assert!(!exists, "no stream or group was created");
}

#[test]
fn the_worker_user_reaches_only_the_job_keys() {
    let redis = Redis::start();
    let mut worker = redis::Client::open(redis.worker_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let denied = |r: redis::RedisResult<redis::Value>| {
        let e = r.expect_err("refused");
        assert!(e.to_string().contains("NOPERM"), "{e}");
    };

    // What the worker does.
    let () = redis::cmd("XGROUP")
        .arg(&["CREATE", "streamgate:jobs", "transcoders", "0", "MKSTREAM"])
        .query(&mut worker)
        .unwrap();
    let _: String = worker
        .xadd("streamgate:jobs:dead", "*", &[("error", "x")])
        .unwrap();
    let _: i64 = worker
        .hset("streamgate:jobs:errors", "1-0", "boom")
        .unwrap();

    // What it must not: feed jobs, read or write other keys, drop the group, run admin
    // commands, publish.
    denied(
        redis::cmd("XADD")
            .arg(&["streamgate:jobs", "*", "action", "transcode"])
            .query(&mut worker),
    );
    denied(redis::cmd("GET").arg("streamgate:other").query(&mut worker));
    denied(
        redis::cmd("HSET")
            .arg(&["session:x", "a", "b"])
            .query(&mut worker),
    );
    denied(
        redis::cmd("XGROUP")
            .arg(&["DESTROY", "streamgate:jobs", "transcoders"])
            .query(&mut worker),
    );
    denied(redis::cmd("DEL").arg("streamgate:jobs").query(&mut worker));
    denied(redis::cmd("KEYS").arg("*").query(&mut worker));
    denied(redis::cmd("CONFIG").arg(&["GET", "*"]).query(&mut worker));
    denied(redis::cmd("PUBLISH").arg(&["c", "m"]).query(&mut worker));

    // Without credentials nothing runs at all.
    let mut anonymous = redis::Client::open(redis.url_without_password())
        .unwrap()
        .get_connection()
        .unwrap();
    let e = redis::cmd("PING")
        .query::<String>(&mut anonymous)
        .expect_err("NOAUTH");
    assert!(e.to_string().contains("NOAUTH"), "{e}");
}
