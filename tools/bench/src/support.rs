//! What every benchmark shares: children that are stopped however the run ends, readiness
//! probes, free ports, the log line of scripts/lib.sh, and the host's secrets.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::Duration;

pub type Result<T, E = String> = std::result::Result<T, E>;

/// `==> message` in bold on stderr, as `sg_log` of scripts/lib.sh writes it.
pub fn log(message: &str) {
    eprintln!("\x1b[1m==> {message}\x1b[0m");
}

/// An environment variable, or `default` when it is unset or empty (the shell's `${X:-default}`).
pub fn env_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

// Every running child's pid, so that the signal handler can stop them: a Ctrl-C reaches the
// children of a terminal's process group anyway, but a SIGTERM sent to this process alone
// would leave a host or an anvil running.
const SLOTS: usize = 32;
static PIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
    for slot in &PIDS {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe; the pid is one of our children.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: stop every child. The waits on them then end, the run fails
/// and its work directory is removed; [`interrupted`] says which signal it was.
pub fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to atomics and calls kill(2).
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// The signal that ended the run, if one did.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

fn check_interrupted() -> Result<()> {
    match interrupted() {
        Some(s) => Err(format!("stopped by signal {s}")),
        None => Ok(()),
    }
}

/// A child process, stopped with SIGTERM (as the shell's `kill`) and waited for when dropped.
pub struct Proc {
    child: Child,
    slot: usize,
    name: String,
}

impl Proc {
    pub fn spawn(command: &mut Command, name: &str) -> Result<Proc> {
        check_interrupted()?;
        let child = command
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        let pid = child.id() as i32;
        let slot = PIDS
            .iter()
            .position(|s| {
                s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .unwrap_or(SLOTS);
        let proc = Proc {
            child,
            slot,
            name: name.to_string(),
        };
        if slot == SLOTS {
            return Err("more than 32 children at once".into());
        }
        // A signal between the spawn and the registration: this child too.
        check_interrupted()?;
        Ok(proc)
    }

    /// Waits for it to exit on its own; an error unless it exited with status 0.
    pub fn wait(mut self) -> Result<()> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("{}: {e}", self.name))?;
        check_interrupted()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} failed ({status})", self.name))
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
        if self.slot < SLOTS {
            PIDS[self.slot].store(0, Ordering::SeqCst);
        }
    }
}

/// Runs a command in the foreground, its output going where ours goes.
pub fn run(command: &mut Command, name: &str) -> Result<()> {
    Proc::spawn(command, name)?.wait()
}

/// Runs a command in the foreground and returns what it wrote on stdout (stderr is ours).
pub fn output(command: &mut Command, name: &str) -> Result<String> {
    let mut proc = Proc::spawn(command.stdout(Stdio::piped()), name)?;
    let mut out = String::new();
    if let Some(mut stdout) = proc.child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    proc.wait()?;
    Ok(out)
}

/// A command whose stdout and stderr both go to `log` (the shell's `>log 2>&1`).
pub fn logged(command: &mut Command, log: &Path) -> Result<()> {
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    command.stdout(file).stderr(err);
    Ok(())
}

pub fn sleep(seconds: u64) -> Result<()> {
    thread::sleep(Duration::from_secs(seconds));
    check_interrupted()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// GET `url`: its status and body whatever the status, or `None` when nothing answered.
pub fn get(url: &str) -> Option<(u16, Vec<u8>)> {
    let response = match agent().get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = response.status();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).ok()?;
    Some((status, body))
}

/// Up to 30 s for `url` to answer below 400: a first start compiles the components (later
/// starts load them from a cache).
pub fn wait_for(url: &str) -> Result<()> {
    for _ in 0..600 {
        check_interrupted()?;
        if matches!(get(url), Some((status, _)) if status < 400) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing answered at {url}"))
}

/// Up to 30 s for a JSON-RPC `eth_chainId` answer at `url`.
pub fn wait_for_rpc(url: &str) -> Result<()> {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    for _ in 0..600 {
        check_interrupted()?;
        let answer = agent()
            .post(url)
            .set("content-type", "application/json")
            .send_string(body);
        if answer.is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no JSON-RPC answer at {url}"))
}

/// The 1-minute load average (`os.getloadavg()[0]`), and the first three fields of /proc/loadavg.
pub fn load_average() -> (f64, String) {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let one = fields
        .first()
        .and_then(|f| f.parse().ok())
        .unwrap_or(f64::NAN);
    (
        one,
        fields.iter().take(3).copied().collect::<Vec<_>>().join(" "),
    )
}

/// The host's required secrets, made for this run only, unless the environment sets them (as
/// `sg_secrets` of scripts/lib.sh does for a fresh state directory). Called before any thread.
pub fn secrets() -> Result<()> {
    for name in [
        "SPIN_VARIABLE_SESSION_SECRET",
        "SPIN_VARIABLE_PLAYBACK_SECRET",
        "SPIN_VARIABLE_EVENTS_SECRET",
    ] {
        if std::env::var(name).is_ok_and(|v| !v.is_empty()) {
            continue;
        }
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::env::set_var(name, hex);
    }
    Ok(())
}

/// The median, averaging the middle two of an even count (Python's `statistics.median`).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A streamgate-host serving spin.toml on 127.0.0.1:`port`, at `warn`, its state in
/// `WORK/NAME-state` and its log in `WORK/NAME-host.log`, with more environment `env`; returned
/// once its /health answers.
pub fn start_host(work: &Path, name: &str, port: u16, env: &[(&str, String)]) -> Result<Proc> {
    let mut command = Command::new("target/release/streamgate-host");
    command
        .args([
            "up",
            "--from",
            "spin.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(work.join(format!("{name}-state")))
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)));
    logged(&mut command, &work.join(format!("{name}-host.log")))?;
    let host = Proc::spawn(&mut command, "streamgate-host")?;
    wait_for(&format!("http://127.0.0.1:{port}/health"))?;
    Ok(host)
}

/// An error unless `path` is an executable built by cargo (`package` names the crate).
pub fn built(path: &str, package: &str) -> Result<()> {
    if is_executable(path) {
        Ok(())
    } else {
        Err(format!(
            "{path} is not built (cargo build --release -p {package})"
        ))
    }
}

pub fn is_executable(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
