//! `scripts/up --native-only`: the native side for `spin up` (a private Redis with its users, the
//! origin, a worker; no embedded host), and what it hands to Spin: `<state dir>/spin.env`, mode
//! 600, with every secret, none of which reaches its output.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use host_tests::*;

/// The `export NAME=value` lines of spin.env (values are hex or URLs: `%q` leaves them bare).
fn exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn native_only_writes_spin_env_and_prints_no_secret() {
    let state = tempfile::tempdir().unwrap();
    let output_path = state.path().join("up.out");
    let output = std::fs::File::create(&output_path).unwrap();
    let redis_port = free_port();
    let mut up = Command::new(workspace().join("scripts/up"))
        .arg("--native-only")
        .env("SG_SKIP_BUILD", "1")
        .env("STATE_DIR", state.path())
        .env("REDIS_PORT", redis_port.to_string())
        .env("MEDIA_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LISTEN", format!("127.0.0.1:{}", free_port()))
        .env_remove("SPIN_VARIABLE_REDIS_ADDRESS")
        .env_remove("SPIN_VARIABLE_REDIS_HOST")
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .expect("scripts/up");
    let read_output = || std::fs::read_to_string(&output_path).unwrap_or_default();
    let started = Instant::now();
    while !read_output().contains("the app is expected on") {
        if let Some(status) = up.try_wait().unwrap() {
            panic!(
                "scripts/up --native-only exited ({status}):\n{}",
                read_output()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not ready after 60 s:\n{}",
            read_output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let spin_env = state.path().join("spin.env");
    let mode = std::fs::metadata(&spin_env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "spin.env holds secrets");
    let vars = exports(&std::fs::read_to_string(&spin_env).unwrap());
    let value = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("spin.env sets {name}: {vars:?}"))
    };
    let printed = read_output();
    for secret in [
        "SPIN_VARIABLE_SESSION_SECRET",
        "SPIN_VARIABLE_EVENTS_SECRET",
        "SPIN_VARIABLE_PLAYBACK_SECRET",
        "SPIN_VARIABLE_REDIS_ADDRESS",
    ] {
        let v = value(secret);
        assert!(v.len() >= 32, "{secret}");
        assert!(printed.contains(secret), "names {secret}: {printed}");
        assert!(
            !printed.contains(&v),
            "{secret}'s value is printed: {printed}"
        );
    }
    assert_eq!(
        value("SPIN_VARIABLE_REDIS_HOST"),
        format!("127.0.0.1:{redis_port}")
    );
    assert!(printed.contains(&format!("SPIN_VARIABLE_REDIS_HOST=127.0.0.1:{redis_port}")));
    assert!(printed.contains("spin up --listen"), "{printed}");

    // The app's URL is the app's Redis user: it may append a job, and nothing else.
    let client = redis::Client::open(value("SPIN_VARIABLE_REDIS_ADDRESS")).unwrap();
    let mut conn = client
        .get_connection()
        .expect("the app's Redis URL authenticates");
    let id: String = redis::cmd("XADD")
        .arg("streamgate:jobs")
        .arg("*")
        .arg("action")
        .arg("noop")
        .query(&mut conn)
        .expect("XADD as streamgate-app");
    assert!(id.contains('-'));
    let refused: redis::RedisResult<i64> =
        redis::cmd("XLEN").arg("streamgate:jobs").query(&mut conn);
    assert!(refused.is_err(), "the app's user may only XADD");

    // SIGTERM stops the worker, the origin and Redis.
    let kill = Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "exits with the signal's status");
    let stopping = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_ok() {
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "Redis still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut rest = String::new();
    let _ = std::fs::File::open(&output_path)
        .unwrap()
        .read_to_string(&mut rest);
    assert!(rest.contains("stopping the worker"), "{rest}");
}
