//! Every secret and previous secret has the Spin side's 32-byte minimum: a shorter one stops
//! `serve` and `work` at start-up with a sentence naming the variable (never the value).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SHORT: &str = "short-secret-0123456789abcdef"; // 29 bytes
const PLAYBACK: &str = "test-playback-secret-0123456789abcdef";

/// Runs the binary with `args` and only `env` among the StreamGate variables; it must exit by
/// itself within 20 s. Returns (exited successfully, stderr).
fn run_expecting_exit(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let media = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_native-transcoder"));
    cmd.args(args)
        .arg("--media-dir")
        .arg(media.path())
        .args(["--events-url", "http://127.0.0.1:9/internal/v1/events"]);
    for (name, _) in std::env::vars() {
        if name.starts_with("STREAMGATE_") || name.starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the native-transcoder binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("it did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The arguments, the environment, and what the error must name.
type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn a_short_secret_or_previous_secret_stops_start_up() {
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let cases: [Case; 5] = [
        (
            &serve,
            vec![("STREAMGATE_EVENTS_SECRET", SHORT)],
            "STREAMGATE_EVENTS_SECRET or",
        ),
        (
            &serve,
            vec![
                ("STREAMGATE_EVENTS_SECRET", SECRET),
                ("STREAMGATE_EVENTS_SECRET_PREVIOUS", SHORT),
            ],
            "STREAMGATE_EVENTS_SECRET_PREVIOUS",
        ),
        (
            &serve,
            vec![
                ("STREAMGATE_EVENTS_SECRET", SECRET),
                ("STREAMGATE_PLAYBACK_SECRET", SHORT),
            ],
            "STREAMGATE_PLAYBACK_SECRET or",
        ),
        (
            &serve,
            vec![
                ("STREAMGATE_EVENTS_SECRET", SECRET),
                ("STREAMGATE_PLAYBACK_SECRET", PLAYBACK),
                ("STREAMGATE_PLAYBACK_SECRET_PREVIOUS", SHORT),
            ],
            "STREAMGATE_PLAYBACK_SECRET_PREVIOUS",
        ),
        // The worker reads the events secret before it touches Redis.
        (
            &["work", "--redis", "redis://127.0.0.1:9"],
            vec![
                ("STREAMGATE_EVENTS_SECRET", SECRET),
                ("SPIN_VARIABLE_EVENTS_SECRET_PREVIOUS", SHORT),
            ],
            "STREAMGATE_EVENTS_SECRET_PREVIOUS",
        ),
    ];
    for (args, env, names) in cases {
        let (ok, stderr) = run_expecting_exit(args, &env);
        assert!(!ok, "{args:?} {env:?} started: {stderr}");
        assert!(
            stderr.contains(names) && stderr.contains("at least 32 bytes"),
            "{args:?} {env:?}: {stderr}"
        );
        assert!(!stderr.contains(SHORT), "the secret leaked: {stderr}");
    }
}
