//! Fixtures for the host's end-to-end tests: the real `streamgate-host` binary (built once by
//! `scripts/test`, never per test), the real `.wasm` components, and a private `redis-server`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn host_binary() -> PathBuf {
    let path = std::env::var_os("STREAMGATE_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/streamgate-host"));
    assert!(
        path.exists(),
        "{} does not exist: build the host first (scripts/test does: cargo build --release -p streamgate-host)",
        path.display()
    );
    path
}

pub use streamgate_core::now;
pub use test_support::{free_port, Redis};

/// A peer on a free loopback port that runs `handle` on each connection it accepts, each in a
/// thread of its own; for peers real software cannot be made to be on demand (an upstream that
/// stalls, a chain with no contract code anywhere).
pub fn tcp_peer(handle: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}

/// How to start the host.
pub struct HostConfig {
    pub manifest: PathBuf,
    pub env: Vec<(String, String)>,
    pub state_dir: PathBuf,
    pub runtime_config: Option<PathBuf>,
    /// More `up` flags (limits, say).
    pub args: Vec<String>,
    /// The host's working directory (the test's own when `None`).
    pub current_dir: Option<PathBuf>,
}

impl HostConfig {
    pub fn new(manifest: impl AsRef<Path>, state_dir: &Path) -> Self {
        Self {
            manifest: workspace().join(manifest),
            env: Vec::new(),
            state_dir: state_dir.to_path_buf(),
            runtime_config: None,
            args: Vec::new(),
            current_dir: None,
        }
    }

    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((
            format!("SPIN_VARIABLE_{}", name.to_uppercase()),
            value.into(),
        ));
        self
    }

    /// The app's queue: `redis_address` as the app's ACL user (credentials in the URL) and
    /// `redis_host`, which the metadata component's `allowed_outbound_hosts` names.
    pub fn redis(self, redis: &Redis) -> Self {
        self.var("redis_address", redis.app_url())
            .var("redis_host", redis.host())
    }

    /// Adds `up` flags, e.g. `["--request-timeout-secs", "2"]`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn runtime_config(mut self, path: PathBuf) -> Self {
        self.runtime_config = Some(path);
        self
    }

    /// Runs the host in `dir` (relative SQLite paths in a runtime config resolve against it).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_path_buf());
        self
    }

    fn command(&self, port: u16) -> Command {
        let mut cmd = Command::new(host_binary());
        cmd.arg("up")
            .arg("--from")
            .arg(&self.manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(rc) = &self.runtime_config {
            cmd.arg("--runtime-config-file").arg(rc);
        }
        cmd.args(&self.args);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs the host expecting it to refuse to start; returns its exit status and stderr.
    pub fn start_expecting_failure(&self) -> (std::process::ExitStatus, String) {
        let out = self
            .command(free_port())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn host")
            .wait_with_output()
            .expect("host output");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn start(&self) -> Host {
        let port = free_port();
        let mut child = self
            .command(port)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn host");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("host stdout");
        assert!(
            first.starts_with("Serving http://"),
            "host did not start: {first:?}; stderr:\n{}",
            log.lock().unwrap()
        );
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
        });
        Host {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }
}

/// A running host; killed on drop.
pub struct Host {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// A reply with its headers, for tests of what the host answers itself.
pub struct HeadedReply {
    pub status: u16,
    /// Every header, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HeadedReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

impl Host {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let reply = self.request_headed(method, path, body);
        Reply {
            status: reply.status,
            body: reply.body,
        }
    }

    /// A request whose reply keeps its headers.
    pub fn request_headed(&self, method: &str, path: &str, body: Option<&Value>) -> HeadedReply {
        let request = agent().request(method, &self.url(path));
        let result = match body {
            Some(body) => request.send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_string();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect();
        let body = response.into_string().expect("response body");
        HeadedReply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    pub fn get_headed(&self, path: &str) -> HeadedReply {
        self.request_headed("GET", path, None)
    }

    /// Runs one Redis command through the probe component's outbound Redis `execute` at
    /// `address`, and gives the component's JSON answer (`{"ok": [...]}` or `{"err": ...}`).
    pub fn probe_redis_execute(&self, address: &str, command: &str, args: Value) -> Value {
        self.post(
            "/?op=redis",
            &json!({"address": address, "action": "execute", "command": command, "args": args}),
        )
        .json()
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.request("POST", path, Some(body))
    }

    /// Everything the host has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the host logs a line containing `needle` within a few seconds (the host logs
    /// through a background writer, so a line can trail the response it describes).
    pub fn logs_eventually(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM, as a process manager would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit after `terminate`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "host did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The probe app with its required variable set and the `other` key-value store configured.
pub fn probe_app(state: &Path) -> HostConfig {
    let rc = state.join("runtime-config.toml");
    std::fs::write(
        &rc,
        "[key_value_store.other]\ntype = \"spin\"\npath = \"other-kv.db\"\n",
    )
    .expect("runtime config");
    HostConfig::new("tests/apps/probe/spin.toml", state)
        .var("api_token", "t0ken")
        .runtime_config(rc)
}

/// The probe app allowed to reach `redis` (its manifest names `redis://127.0.0.1:{{ redis_port }}`).
pub fn probe_app_with_redis(state: &Path, redis: &Redis) -> HostConfig {
    probe_app(state).var("redis_port", redis.port.to_string())
}

/// The real app (`spin.toml`) with the secrets it needs to start and nothing else set.
pub fn real_app(state: &Path) -> HostConfig {
    HostConfig::new("spin.toml", state)
        .var(
            "session_secret",
            "a-test-session-secret-of-32-bytes-or-more",
        )
        .var("events_secret", "a-test-events-secret-of-32-bytes-or-more")
        .var(
            "playback_secret",
            "a-test-playback-secret-of-32-bytes-or-more",
        )
}
