//! `bench-viewers --base http://127.0.0.1:PORT --video ID --tokens FILE [--viewers 1000]
//!   [--ramp-secs 30] [--watch-secs 60] [--seek-fraction 0.2] [--per-source 50]
//!   [--timeout-secs 10] [--pid host=PID] [--pid origin=PID]`
//!
//! N simulated HLS viewers, as a player makes the load: each arrives at a random moment of the
//! ramp, takes a session from the pool in `--tokens` (one bearer token a line), calls
//! playback, fetches the master playlist, one variant's media playlist, its init segment and
//! its first segment (playback start), then each next segment when about one segment of
//! buffer is left (with jitter), until its watch time is over; some seek once to a random
//! segment, and a viewer that reaches the end starts again from the first segment. A segment
//! that arrives after the moment playback needed it is a stall (the player rebuffers; its clock
//! moves on by the stall). Each viewer has its own keep-alive connections (one to the host,
//! one to the origin), bound to one of several loopback source addresses so that no address
//! holds more than `--per-source` connections to one server (the host caps connections per
//! client address, 64 by default, and the cap stays in force).
//!
//! Prints a report: requests and errors by step and status, playback-start latency (playback
//! call → first segment's last byte), segment fetch times, stalls, and the CPU and memory of
//! each `--pid` process (from /proc), sampled every second.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

struct Config {
    base: Url,
    video: String,
    tokens: Vec<String>,
    viewers: usize,
    ramp: Duration,
    watch: Duration,
    seek_fraction: f64,
    per_source: usize,
    timeout: Duration,
    pids: Vec<(String, u32)>,
}

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    requests: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    start_ms: Option<f64>,
    segment_ms: Vec<f64>,
    seek_ms: Vec<f64>,
    stalls: u64,
    stall_ms: f64,
    loops: u64,
    segments: u64,
    bytes: u64,
}

enum Fail {
    Status(StatusCode),
    Io(String),
    Timeout,
}

impl Seen {
    fn fail(&mut self, step: &'static str, fail: Fail) {
        let what = match fail {
            Fail::Status(s) => s.as_u16().to_string(),
            Fail::Io(e) => e,
            Fail::Timeout => "timeout".into(),
        };
        *self.errors.entry(format!("{step} {what}")).or_default() += 1;
    }
}

/// One request over the viewer's client; returns the body (or, for segments, only its length,
/// read to the last byte without keeping it).
async fn fetch(
    (client, cfg): (&HttpClient, &Config),
    seen: &mut Seen,
    step: &'static str,
    method: Method,
    url: &Url,
    token: Option<&str>,
    keep_body: bool,
) -> Option<(Bytes, u64)> {
    *seen.requests.entry(step).or_default() += 1;
    let uri: Uri = match url.as_str().parse() {
        Ok(u) => u,
        Err(e) => {
            seen.fail(step, Fail::Io(format!("bad url {url}: {e}")));
            return None;
        }
    };
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Empty::new()).expect("a request from a parsed URI");
    let work = async {
        let res = client
            .request(req)
            .await
            .map_err(|e| Fail::Io(error_kind(&e)))?;
        let status = res.status();
        let mut body = res.into_body();
        let mut kept = Vec::new();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Fail::Io(format!("body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                len += data.len() as u64;
                if keep_body {
                    kept.extend_from_slice(&data);
                }
            }
        }
        if !status.is_success() {
            return Err(Fail::Status(status));
        }
        Ok((Bytes::from(kept), len))
    };
    match tokio::time::timeout(cfg.timeout, work).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(f)) => {
            seen.fail(step, f);
            None
        }
        Err(_) => {
            seen.fail(step, Fail::Timeout);
            None
        }
    }
}

/// A client error in a few words that group well (connect refused, reset, closed early).
fn error_kind(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return format!("io {:?}", io.kind());
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return "closed before the answer".into();
            }
        }
        source = s.source();
    }
    if e.is_connect() {
        "connect".into()
    } else {
        format!("{e}")
    }
}

/// The URIs of a playlist (lines that are not tags), resolved against its own URL.
fn uris(text: &str, base: &Url) -> Vec<Url> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| base.join(l).ok())
        .collect()
}

struct Media {
    init: Option<Url>,
    segments: Vec<(Url, Duration)>,
}

fn media(text: &str, base: &Url) -> Media {
    let mut init = None;
    let mut segments = Vec::new();
    let mut duration = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            init = rest
                .split("URI=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|u| base.join(u).ok());
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest.split(',').next().and_then(|d| d.parse::<f64>().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            if let (Some(d), Ok(u)) = (duration.take(), base.join(line)) {
                segments.push((u, Duration::from_secs_f64(d)));
            }
        }
    }
    Media { init, segments }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn viewer(cfg: Arc<Config>, n: usize, source: IpAddr, start_at: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(source));
    connector.set_nodelay(true);
    // A browser keeps a connection per server open across a viewing session.
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(1)
        .build(connector);
    let token = cfg.tokens[n % cfg.tokens.len()].clone();
    tokio::time::sleep_until(start_at.into()).await;
    let end = Instant::now() + cfg.watch;

    let t0 = Instant::now();
    let playback = cfg
        .base
        .join(&format!("api/v1/videos/{}/playback", cfg.video))
        .unwrap();
    let Some((body, _)) = fetch(
        (&client, &cfg),
        &mut seen,
        "playback",
        Method::POST,
        &playback,
        Some(&token),
        true,
    )
    .await
    else {
        return seen;
    };
    let hls = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("hls").and_then(|h| h.as_str()).map(str::to_owned))
        .and_then(|h| Url::parse(&h).ok());
    let Some(master_url) = hls else {
        seen.fail("playback", Fail::Io("no hls URL in the answer".into()));
        return seen;
    };
    let Some((master, _)) = fetch(
        (&client, &cfg),
        &mut seen,
        "master",
        Method::GET,
        &master_url,
        None,
        true,
    )
    .await
    else {
        return seen;
    };
    let variants = uris(&String::from_utf8_lossy(&master), &master_url);
    if variants.is_empty() {
        seen.fail("master", Fail::Io("no variant".into()));
        return seen;
    }
    // Players start on different renditions (bandwidth estimates differ); spread evenly.
    let media_url = variants[fastrand::usize(..variants.len())].clone();
    let Some((text, _)) = fetch(
        (&client, &cfg),
        &mut seen,
        "media",
        Method::GET,
        &media_url,
        None,
        true,
    )
    .await
    else {
        return seen;
    };
    let playlist = media(&String::from_utf8_lossy(&text), &media_url);
    if playlist.segments.is_empty() {
        seen.fail("media", Fail::Io("no segment".into()));
        return seen;
    }
    if let Some(init) = &playlist.init {
        if fetch(
            (&client, &cfg),
            &mut seen,
            "init",
            Method::GET,
            init,
            None,
            false,
        )
        .await
        .is_none()
        {
            return seen;
        }
    }
    let (first, first_len) = (&playlist.segments[0].0, playlist.segments[0].1);
    let s0 = Instant::now();
    let Some((_, bytes)) = fetch(
        (&client, &cfg),
        &mut seen,
        "segment",
        Method::GET,
        first,
        None,
        false,
    )
    .await
    else {
        return seen;
    };
    let arrived = Instant::now();
    seen.segment_ms.push(ms(arrived - s0));
    seen.segments += 1;
    seen.bytes += bytes;
    seen.start_ms = Some(ms(arrived - t0));

    // Playback runs until `buffered_until`: the moment the last fetched segment has played.
    let mut buffered_until = arrived + first_len;
    let mut prev_dur = first_len;
    let mut next = 1usize;
    let seek_at = (fastrand::f64() < cfg.seek_fraction)
        .then(|| t0 + cfg.watch.mul_f64(0.2 + 0.6 * fastrand::f64()));
    let mut seeked = false;
    loop {
        let mut seek = false;
        if !seeked && seek_at.is_some_and(|at| Instant::now() >= at) {
            seeked = true;
            seek = true;
            next = fastrand::usize(..playlist.segments.len());
        } else if next >= playlist.segments.len() {
            // At the end the viewer watches again from the start, as a looping player does:
            // the first segment is due when the last one has played.
            next = 0;
            seen.loops += 1;
        }
        if !seek {
            // A player keeps about one segment of buffer: it asks for the next one when that
            // much is left, a little earlier or later (timers, bandwidth estimates).
            let lead = prev_dur.mul_f64(0.75 + 0.25 * fastrand::f64());
            let when = buffered_until.checked_sub(lead).unwrap_or(buffered_until);
            let wake = seek_at.filter(|_| !seeked).map_or(when, |s| s.min(when));
            if wake >= end {
                break;
            }
            tokio::time::sleep_until(wake.into()).await;
            if wake < when {
                continue; // the seek comes first
            }
        } else if Instant::now() >= end {
            break;
        }
        let (url, dur) = &playlist.segments[next];
        let started = Instant::now();
        let got = fetch(
            (&client, &cfg),
            &mut seen,
            "segment",
            Method::GET,
            url,
            None,
            false,
        )
        .await;
        let arrived = Instant::now();
        match got {
            Some((_, bytes)) => {
                seen.segment_ms.push(ms(arrived - started));
                seen.segments += 1;
                seen.bytes += bytes;
                if seek {
                    seen.seek_ms.push(ms(arrived - started));
                    buffered_until = arrived + *dur;
                } else if arrived > buffered_until {
                    seen.stalls += 1;
                    seen.stall_ms += ms(arrived - buffered_until);
                    buffered_until = arrived + *dur;
                } else {
                    buffered_until += *dur;
                }
                prev_dur = *dur;
                next += 1;
            }
            None => {
                // A player retries a failed segment after a moment; playback drains meanwhile.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if Instant::now() >= end {
            break;
        }
    }
    seen
}

/// Cumulative CPU ticks, resident memory (kB), threads and open descriptors of a process.
fn proc_sample(pid: u32) -> Option<(u64, u64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let threads = f.get(17)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some((ticks, rss, threads, fds))
}

/// Busy and total jiffies of the whole machine (/proc/stat's first line).
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

#[derive(Default, Clone)]
struct ProcStats {
    first_ticks: u64,
    last_ticks: u64,
    peak_cpu: f64,
    peak_rss_kb: u64,
    peak_threads: u64,
    peak_fds: u64,
    seen: bool,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn parse_args() -> Config {
    let mut base = None;
    let mut video = None;
    let mut tokens = Vec::new();
    let mut cfg_viewers = 1000;
    let mut ramp = 30.0;
    let mut watch = 60.0;
    let mut seek_fraction = 0.2;
    let mut per_source = 50;
    let mut timeout = 10.0;
    let mut pids = vec![("bench-viewers".to_string(), std::process::id())];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let fail = |e: &dyn std::fmt::Display| -> ! {
            eprintln!("bench-viewers: {} {value:?}: {e}", args[i]);
            std::process::exit(2)
        };
        match args[i].as_str() {
            "--base" => base = Some(Url::parse(&value).unwrap_or_else(|e| fail(&e))),
            "--video" => video = Some(value.clone()),
            "--tokens" => {
                tokens = std::fs::read_to_string(&value)
                    .unwrap_or_else(|e| fail(&e))
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--viewers" => cfg_viewers = value.parse().unwrap_or_else(|e| fail(&e)),
            "--ramp-secs" => ramp = value.parse().unwrap_or_else(|e| fail(&e)),
            "--watch-secs" => watch = value.parse().unwrap_or_else(|e| fail(&e)),
            "--seek-fraction" => seek_fraction = value.parse().unwrap_or_else(|e| fail(&e)),
            "--per-source" => per_source = value.parse().unwrap_or_else(|e| fail(&e)),
            "--timeout-secs" => timeout = value.parse().unwrap_or_else(|e| fail(&e)),
            "--pid" => {
                let (name, pid) = value
                    .split_once('=')
                    .unwrap_or_else(|| fail(&"expected NAME=PID"));
                pids.push((name.to_owned(), pid.parse().unwrap_or_else(|e| fail(&e))));
            }
            other => fail(&format!("unknown flag {other}")),
        }
        i += 2;
    }
    let (Some(mut base), Some(video)) = (base, video) else {
        eprintln!("bench-viewers: --base and --video are required");
        std::process::exit(2)
    };
    if tokens.is_empty() {
        eprintln!("bench-viewers: --tokens names no session token");
        std::process::exit(2)
    }
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Config {
        base,
        video,
        tokens,
        viewers: cfg_viewers,
        ramp: Duration::from_secs_f64(ramp),
        watch: Duration::from_secs_f64(watch),
        seek_fraction,
        per_source: per_source.max(1),
        timeout: Duration::from_secs_f64(timeout),
        pids,
    }
}

#[tokio::main]
async fn main() {
    let cfg = Arc::new(parse_args());
    let sources = cfg.viewers.div_ceil(cfg.per_source);
    if sources > 250 * 250 {
        eprintln!("bench-viewers: too many source addresses ({sources})");
        std::process::exit(2)
    }
    // 127.1.x.y: every 127/8 address is the loopback, and none of these is 127.0.0.1.
    let source = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8));
    let tck: f64 = std::env::var("CLK_TCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0);

    // Sampling every second, from before the first viewer to after the last.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let pids = cfg.pids.clone();
    let sampler = tokio::spawn(async move {
        let mut stats: Vec<ProcStats> = vec![ProcStats::default(); pids.len()];
        let mut prev: Vec<Option<u64>> = vec![None; pids.len()];
        let (m0_busy, m0_total) = machine_cpu();
        let mut m_prev = (m0_busy, m0_total);
        let mut machine_peak = 0.0f64;
        let started = Instant::now();
        let mut last = Instant::now();
        loop {
            let now = Instant::now();
            let dt = (now - last).as_secs_f64().max(1e-3);
            last = now;
            for (i, (_, pid)) in pids.iter().enumerate() {
                if let Some((ticks, rss, threads, fds)) = proc_sample(*pid) {
                    let s = &mut stats[i];
                    if !s.seen {
                        s.first_ticks = ticks;
                        s.seen = true;
                    }
                    s.last_ticks = ticks;
                    if let Some(p) = prev[i] {
                        s.peak_cpu = s.peak_cpu.max((ticks - p) as f64 / tck / dt * 100.0);
                    }
                    prev[i] = Some(ticks);
                    s.peak_rss_kb = s.peak_rss_kb.max(rss);
                    s.peak_threads = s.peak_threads.max(threads);
                    s.peak_fds = s.peak_fds.max(fds);
                }
            }
            let m = machine_cpu();
            if m.1 > m_prev.1 {
                machine_peak =
                    machine_peak.max((m.0 - m_prev.0) as f64 / (m.1 - m_prev.1) as f64 * 100.0);
            }
            m_prev = m;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop_rx.changed() => break,
            }
        }
        let (m1_busy, m1_total) = machine_cpu();
        let machine_mean = (m1_busy - m0_busy) as f64 / (m1_total - m0_total).max(1) as f64 * 100.0;
        (stats, started.elapsed(), machine_mean, machine_peak)
    });

    let t0 = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(cfg.viewers);
    for n in 0..cfg.viewers {
        let at = t0 + cfg.ramp.mul_f64(fastrand::f64());
        tasks.push(tokio::spawn(viewer(
            cfg.clone(),
            n,
            source(n % sources),
            at,
        )));
    }
    let mut all = Seen::default();
    let mut starts = Vec::new();
    let (mut stalled_viewers, mut failed_starts) = (0u64, 0u64);
    for t in tasks {
        let s = t.await.expect("a viewer task panicked");
        for (k, v) in s.requests {
            *all.requests.entry(k).or_default() += v;
        }
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
        match s.start_ms {
            Some(v) => starts.push(v),
            None => failed_starts += 1,
        }
        all.segment_ms.extend(s.segment_ms);
        all.seek_ms.extend(s.seek_ms);
        all.stalls += s.stalls;
        all.loops += s.loops;
        all.stall_ms += s.stall_ms;
        all.segments += s.segments;
        all.bytes += s.bytes;
        if s.stalls > 0 {
            stalled_viewers += 1;
        }
    }
    let _ = stop_tx.send(true);
    let (stats, wall, machine_mean, machine_peak) = sampler.await.expect("the sampler panicked");

    let sort = |v: &mut Vec<f64>| v.sort_by(|a, b| a.total_cmp(b));
    sort(&mut starts);
    sort(&mut all.segment_ms);
    sort(&mut all.seek_ms);
    let requests: u64 = all.requests.values().sum();
    let errors: u64 = all.errors.values().sum();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} viewers from {sources} source addresses (≤ {} each), arriving over {:.0} s, each watching {:.0} s; {:.0}% seek once; {} sessions; wall {:.1} s",
        cfg.viewers,
        cfg.per_source,
        cfg.ramp.as_secs_f64(),
        cfg.watch.as_secs_f64(),
        cfg.seek_fraction * 100.0,
        cfg.tokens.len(),
        wall.as_secs_f64()
    );
    println!(
        "requests {requests} ({}), errors {errors}; {} segments, {:.1} MB, {:.0} req/s over the run",
        all.requests.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        all.segments,
        all.bytes as f64 / 1e6,
        requests as f64 / wall.as_secs_f64()
    );
    for (k, v) in &all.errors {
        println!("  error {k}: {v}");
    }
    println!(
        "playback start (playback call → first segment's last byte): {} started, {failed_starts} failed; p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        starts.len(),
        quantile(&starts, 0.5),
        quantile(&starts, 0.99),
        starts.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "segment fetch: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms; seeks {} (fetch p99 {:.1} ms); {} replays from the start",
        quantile(&all.segment_ms, 0.5),
        quantile(&all.segment_ms, 0.99),
        all.segment_ms.last().copied().unwrap_or(f64::NAN),
        all.seek_ms.len(),
        quantile(&all.seek_ms, 0.99),
        all.loops
    );
    println!(
        "stalls (a segment later than its playback deadline): {stalled_viewers} viewers stalled, {} stalls, {:.1} s of rebuffering in all",
        all.stalls,
        all.stall_ms / 1000.0
    );
    println!(
        "{:14} {:>9} {:>9} {:>10} {:>8} {:>6}",
        "process", "CPU mean", "CPU peak", "RSS peak", "threads", "fds"
    );
    for ((name, pid), s) in cfg.pids.iter().zip(&stats) {
        if !s.seen {
            println!("{name:14} (pid {pid}: not readable in /proc)");
            continue;
        }
        let mean = (s.last_ticks - s.first_ticks) as f64 / tck / wall.as_secs_f64() * 100.0;
        println!(
            "{name:14} {mean:8.0}% {:8.0}% {:8.1} MB {:>8} {:>6}",
            s.peak_cpu,
            s.peak_rss_kb as f64 / 1024.0,
            s.peak_threads,
            s.peak_fds
        );
    }
    println!(
        "machine CPU busy: mean {machine_mean:.0}%, peak {machine_peak:.0}% (of all cores); load average at the end {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
