//! What the end-to-end test crates (tests/host-tests, native-transcoder's tests) share: a private
//! `redis-server` per test (with the ACL users `scripts/up` gives it), free loopback ports, and
//! waiting for a condition with a deadline.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it answers `Some`, for at most `timeout`; panics naming `what` after that.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Redis users of infra/redis/users.acl.template (what `scripts/up` runs with).
pub const ADMIN_USER: &str = "streamgate-admin";
pub const APP_USER: &str = "streamgate-app";
pub const WORKER_USER: &str = "streamgate-worker";

/// A private redis-server on a free port, with its own empty data directory and no
/// persistence, and the users of `infra/redis/users.acl.template` with fresh random passwords
/// (the default user is off, as under `scripts/up`); killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    admin_password: String,
    app_password: String,
    worker_password: String,
    dir: tempfile::TempDir,
}

/// 32 random bytes from the kernel, as hex (what `scripts/lib.sh` `sg_secrets` makes).
fn random_password() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes from /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ACL file for these passwords: the repository's template, its comment lines dropped and
/// each `@<USER>_PASSWORD_SHA256@` replaced, as `scripts/lib.sh` `sg_redis_acl` renders it.
pub fn render_acl(admin: &str, app: &str, worker: &str) -> String {
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/redis/users.acl.template");
    let template = std::fs::read_to_string(&template)
        .unwrap_or_else(|e| panic!("{}: {e}", template.display()));
    let mut out = String::new();
    for line in template.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let line = line
            .replace("@ADMIN_PASSWORD_SHA256@", &sha256_hex(admin))
            .replace("@APP_PASSWORD_SHA256@", &sha256_hex(app))
            .replace("@WORKER_PASSWORD_SHA256@", &sha256_hex(worker));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn spawn_redis_server(dir: &Path, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--aclfile")
        .arg(dir.join("users.acl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test and scripts/up install it)")
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("a directory for redis-server");
        let (admin_password, app_password, worker_password) =
            (random_password(), random_password(), random_password());
        let acl = dir.path().join("users.acl");
        std::fs::write(
            &acl,
            render_acl(&admin_password, &app_password, &worker_password),
        )
        .expect("write users.acl");
        std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(0o600))
            .expect("users.acl mode 600");
        let port = free_port();
        let child = spawn_redis_server(dir.path(), port);
        let redis = Redis {
            child,
            port,
            admin_password,
            app_password,
            worker_password,
            dir,
        };
        redis.wait_ready();
        redis
    }

    fn wait_ready(&self) {
        wait_until("redis-server", Duration::from_secs(10), || {
            let mut conn = self.client().get_connection().ok()?;
            redis::cmd("PING").query::<String>(&mut conn).ok()
        });
    }

    /// Kills the server and starts it again on the same port with the same users (and, there
    /// being no persistence, no data): every client's connection breaks.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis_server(self.dir.path(), self.port);
        self.wait_ready();
    }

    /// `127.0.0.1:<port>`: what an `allowed_outbound_hosts` entry names (the Spin variable
    /// `redis_host`).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The address with no credentials: the server answers NOAUTH to every command on it.
    pub fn url_without_password(&self) -> String {
        format!("redis://{}", self.host())
    }

    fn url_for(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@{}", self.host())
    }

    /// The admin user's URL (every command, every key): for tests that look into Redis.
    pub fn url(&self) -> String {
        self.url_for(ADMIN_USER, &self.admin_password)
    }

    /// The app's URL (XADD on the job stream only): the Spin variable `redis_address`.
    pub fn app_url(&self) -> String {
        self.url_for(APP_USER, &self.app_password)
    }

    /// A worker's URL (the job stream's consumer commands): `native-transcoder work`'s
    /// STREAMGATE_REDIS_URL.
    pub fn worker_url(&self) -> String {
        self.url_for(WORKER_USER, &self.worker_password)
    }

    /// The admin client.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a redis client")
    }

    /// A fresh blocking connection as the admin user.
    pub fn conn(&self) -> redis::Connection {
        self.client().get_connection().expect("a redis connection")
    }

    /// How many entries of `stream` the consumer group `group` has read and not acknowledged
    /// (the count of `XPENDING`'s summary form; 0 when the reply has no count).
    pub fn pending(&self, stream: &str, group: &str) -> i64 {
        let reply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .query::<redis::Value>(&mut self.conn())
            .expect("XPENDING");
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
