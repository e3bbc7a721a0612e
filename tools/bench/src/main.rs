//! `bench [health|verify|transcode|playback|playlists|flood|other|all] [seconds per wrk run, default 10]`
//! `bench viewers [N, default 1000]`
//!
//! The benchmarks of `scripts/bench` (which installs and builds what they need, then runs this
//! from the repository's root), each a ratio against a baseline measured in the same run on the
//! same machine; docs/benchmarks.md says what each measures and prints, and scripts/bench lists
//! the environment variables that tune them. Every process a benchmark starts is stopped when
//! it ends, fails or is interrupted, and its files live in a temporary directory removed then.

mod flood;
mod other;
mod support;
mod transcode;
mod wrk;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use support::{
    built, env_or, free_port, is_executable, log, run, start_host, wait_for, wait_for_rpc, Result,
};
use wrk::Wrk;

const USAGE: &str = "usage: bench [health|verify|transcode|playback|playlists|flood|other|all] [seconds per wrk run, default 10]\n       bench viewers [N, default 1000]";

/// What a run was asked for: the mode, its arguments and the BENCH_* environment.
pub struct Settings {
    pub work: PathBuf,
    pub wrk: Wrk,
    pub rounds: u64,
    verify_count: String,
    verify_concurrency: String,
    transcode_seconds: String,
    transcode_baseline: String,
    playback_runs: String,
    pub flood_connections: String,
    pub other_url: String,
    pub other_routes: Vec<String>,
    viewers: u64,
}

fn main() -> ExitCode {
    support::install_signal_handlers();
    let outcome = main_inner();
    if let Some(signal) = support::interrupted() {
        return ExitCode::from(128 + signal as u8);
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

fn main_inner() -> Result<(), (u8, String)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let modes = [
        "health",
        "verify",
        "transcode",
        "playback",
        "playlists",
        "flood",
        "other",
        "viewers",
        "all",
    ];
    let (which, rest) = match args.first() {
        Some(first) if modes.contains(&first.as_str()) => (first.as_str(), &args[1..]),
        _ => ("all", &args[..]),
    };
    let number = |default: u64| -> Result<u64, (u8, String)> {
        match rest.first() {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| (2, format!("not a number: {v}\n{USAGE}"))),
        }
    };
    let (seconds, viewer_count) = if which == "viewers" {
        (10, number(1000)?)
    } else {
        (number(10)?, 1000)
    };
    let rounds = env_or("BENCH_ROUNDS", "3");
    let settings = Settings {
        work: PathBuf::new(),
        wrk: Wrk {
            threads: env_or("BENCH_THREADS", "2"),
            connections: env_or("BENCH_CONNECTIONS", "32"),
            seconds,
        },
        rounds: rounds
            .parse()
            .map_err(|_| (2, format!("BENCH_ROUNDS is not a number: {rounds}")))?,
        verify_count: env_or("BENCH_VERIFY_COUNT", "2000"),
        verify_concurrency: env_or("BENCH_VERIFY_CONCURRENCY", "4"),
        transcode_seconds: env_or("BENCH_TRANSCODE_SECONDS", "20"),
        transcode_baseline: env_or("BENCH_TRANSCODE_BASELINE", "parallel"),
        playback_runs: env_or("BENCH_PLAYBACK_RUNS", "300"),
        flood_connections: env_or("BENCH_FLOOD_CONNECTIONS", "600"),
        other_url: env_or("BENCH_OTHER_URL", ""),
        other_routes: env_or("BENCH_OTHER_ROUTES", "/health /ready")
            .split_whitespace()
            .map(String::from)
            .collect(),
        viewers: viewer_count,
    };
    if which == "other" && settings.other_url.is_empty() {
        return Err((2, "bench other needs BENCH_OTHER_URL: the base URL of a second server of this app (e.g. spin up's http://127.0.0.1:3000)".into()));
    }
    support::secrets().map_err(|e| (1, e))?;
    let work = tempfile::Builder::new()
        .prefix("bench.")
        .tempdir()
        .map_err(|e| (1, format!("no temporary directory: {e}")))?;
    let settings = Settings {
        work: work.path().to_path_buf(),
        ..settings
    };
    let ran = match which {
        "health" => health(&settings),
        "verify" => verify(&settings),
        "transcode" => transcode::run(&settings),
        "playback" => playback(&settings),
        "playlists" => playlists(&settings),
        "flood" => flood::run(&settings),
        "other" => other::run(&settings),
        "viewers" => viewers(&settings),
        _ => health(&settings)
            .and_then(|()| verify(&settings))
            .and_then(|()| transcode::run(&settings))
            .and_then(|()| playback(&settings))
            .and_then(|()| flood::run(&settings)),
    };
    ran.map_err(|e| (1, e))
}

impl Settings {
    fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }
}

/// Benchmark 1, /health: the embedded host vs the native hyper baseline, with wrk.
fn health(s: &Settings) -> Result<()> {
    let (host_port, base_port) = (free_port()?, free_port()?);
    let _host = start_host(&s.work, "health", host_port, &[])?;
    let mut baseline = Command::new("target/release/health-baseline");
    baseline.arg(format!("127.0.0.1:{base_port}"));
    support::logged(&mut baseline, &s.path("baseline.log"))?;
    let _baseline = support::Proc::spawn(&mut baseline, "health-baseline")?;
    let host_url = format!("http://127.0.0.1:{host_port}/health");
    let base_url = format!("http://127.0.0.1:{base_port}/health");
    wait_for(&base_url)?;

    s.wrk.warm(&host_url)?;
    s.wrk.warm(&base_url)?;

    log(&format!(
        "wrk -t{} -c{} -d{}s, /health",
        s.wrk.threads, s.wrk.connections, s.wrk.seconds
    ));
    let host = s.wrk.measure(&host_url)?;
    let base = s.wrk.measure(&base_url)?;

    println!("{:32} {:>12} {:>8}", "", "req/s", "p99 ms");
    println!(
        "{:32} {:12.0} {:8.2}",
        "embedded host (Wasm /health)", host.rps, host.p99_ms
    );
    println!(
        "{:32} {:12.0} {:8.2}",
        "native hyper baseline", base.rps, base.p99_ms
    );
    let ratio = host.rps / base.rps;
    let met = if ratio >= 0.40 { "met" } else { "NOT met" };
    println!("health throughput ratio (host/native): {ratio:.2}  (target >= 0.40: {met})");
    Ok(())
}

/// Benchmark 2, SIWE verify: POST /api/v1/auth/verify through the embedded host vs the same core
/// calls natively (tools/bench-verify), both against one anvil chain. Rate limits are raised out of
/// the way; everything else is the app's configuration.
fn verify(s: &Settings) -> Result<()> {
    // Installed by sg_setup (sg_node_setup: the npm packages of tests/node).
    let anvil = "tests/node/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    let tool = "target/release/bench-verify";
    if !is_executable(anvil) {
        return Err(format!(
            "anvil is not installed at {anvil} (tests/node: npm ci)"
        ));
    }
    built(tool, "bench-verify")?;
    let (anvil_port, host_port) = (free_port()?, free_port()?);
    let mut chain = Command::new(anvil);
    chain.args([
        "--host",
        "127.0.0.1",
        "--port",
        &anvil_port.to_string(),
        "--silent",
    ]);
    support::logged(&mut chain, &s.path("anvil.log"))?;
    let _anvil = support::Proc::spawn(&mut chain, "anvil")?;
    let rpc = format!("http://127.0.0.1:{anvil_port}");
    wait_for_rpc(&rpc)?;

    let limit = "1000000/60".to_string();
    let _host = start_host(
        &s.work,
        "verify",
        host_port,
        &[
            (
                "SPIN_VARIABLE_SIWE_DOMAIN",
                format!("127.0.0.1:{host_port}"),
            ),
            (
                "SPIN_VARIABLE_SIWE_URI",
                format!("http://127.0.0.1:{host_port}"),
            ),
            ("SPIN_VARIABLE_CHAIN_RPC_URLS", format!("31337={rpc}")),
            (
                "SPIN_VARIABLE_CHAIN_RPC_HTTP_HOST",
                format!("127.0.0.1:{anvil_port}"),
            ),
            ("SPIN_VARIABLE_RATE_LIMIT_NONCE_PER_IP", limit.clone()),
            ("SPIN_VARIABLE_RATE_LIMIT_VERIFY_PER_IP", limit.clone()),
            ("SPIN_VARIABLE_RATE_LIMIT_VERIFY_PER_ADDRESS", limit),
        ],
    )?;
    let host = format!("http://127.0.0.1:{host_port}");

    log(&format!(
        "SIWE verify: {} verifications, {} workers, host vs native",
        s.verify_count, s.verify_concurrency
    ));
    run(
        Command::new(tool).args([&host, &rpc, &s.verify_count, &s.verify_concurrency]),
        "bench-verify",
    )
}

/// Benchmark 4, playback: start latency for a cached gate, and signed playlists vs /health with
/// wrk. The node script starts (and stops) every part itself, each on a free port.
fn playback(s: &Settings) -> Result<()> {
    log(&format!(
        "playback: {} playback starts; wrk -t{} -c{} -d{}s on master, media playlist, /health, {} rounds",
        s.playback_runs,
        s.wrk.threads,
        s.wrk.connections,
        s.wrk.seconds,
        env_or("BENCH_ROUNDS", "3")
    ));
    run(
        Command::new("node")
            .arg("tests/node/bench/playback.js")
            .env("BENCH_PLAYBACK_RUNS", &s.playback_runs)
            .env("BENCH_SECONDS", s.wrk.seconds.to_string())
            .env("BENCH_CONNECTIONS", &s.wrk.connections)
            .env("BENCH_THREADS", &s.wrk.threads),
        "node tests/node/bench/playback.js",
    )
}

/// Kept playlists vs rendering per request (issue 15 item 3): two hosts of one app on one
/// state directory, `playlist_templates` on and off, wrk on master, media playlist and MPD of a
/// 40 s and a 2 h video in interleaved rounds. Not in `all`.
fn playlists(s: &Settings) -> Result<()> {
    log(&format!(
        "playlists: wrk -t{} -c{} -d{}s on master, media playlist and MPD of a 40 s and a 2 h video, kept vs rendered, {} rounds",
        s.wrk.threads, s.wrk.connections, s.wrk.seconds, s.rounds
    ));
    run(
        Command::new("node")
            .arg("tests/node/bench/playlists.js")
            .env("BENCH_SECONDS", s.wrk.seconds.to_string())
            .env("BENCH_ROUNDS", s.rounds.to_string())
            .env("BENCH_CONNECTIONS", &s.wrk.connections)
            .env("BENCH_THREADS", &s.wrk.threads),
        "node tests/node/bench/playlists.js",
    )
}

/// Benchmark 7, viewers: N simulated players on the real stack. The generator holds about two
/// sockets per viewer (host and origin) and the host and the origin one each, so the descriptor
/// limit is raised to the hard limit first (the stack inherits it).
fn viewers(s: &Settings) -> Result<()> {
    built("target/release/bench-viewers", "bench-viewers")?;
    let need = s.viewers * 2 + 1024;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct; sysconf takes no pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        if limit.rlim_max != libc::RLIM_INFINITY && limit.rlim_max < need {
            eprintln!(
                "warning: ulimit -Hn is {}, below the ~{need} descriptors {} viewers need; sockets may run out",
                limit.rlim_max, s.viewers
            );
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(format!(
                "ulimit -n {}: {}",
                limit.rlim_max,
                std::io::Error::last_os_error()
            ));
        }
    }
    // SAFETY: as above.
    let clock_ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let soft = if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        limit.rlim_cur.to_string()
    };
    log(&format!(
        "viewers: {} viewers over {} s, each watching {} s (ulimit -n {soft}; load average {})",
        s.viewers,
        env_or("BENCH_VIEWERS_RAMP_SECS", "30"),
        env_or("BENCH_VIEWERS_WATCH_SECS", "60"),
        support::load_average().1
    ));
    run(
        Command::new("node")
            .arg("tests/node/bench/viewers.js")
            .env("CLK_TCK", clock_ticks.to_string())
            .env("BENCH_VIEWERS", s.viewers.to_string()),
        "node tests/node/bench/viewers.js",
    )
}
