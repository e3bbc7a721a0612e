//! A slow-loris flood against the real app: one client holds hundreds of stalled connections
//! (half heads, stalled bodies on a real API route, silence) while another keeps calling
//! `/health` and a real API route. The second client must see no 5xx but a JSON 503
//! `overloaded` (and by the host's design, none at all), and everything recovers once the flood
//! stops. Loopback only, bounded in connections and time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bench_flood::{Flood, FloodConfig, Stall};
use host_tests::*;

const FLOODER: &str = "127.0.0.2";
const FLOOD_CONNECTIONS: usize = 400;

fn app(state: &std::path::Path) -> Host {
    real_app(state)
        .var("rate_limit_nonce_per_ip", "1000000/60")
        // Short enough that the test sees the host shed stalled connections several times.
        .args(&[
            "--header-read-timeout-secs",
            "2",
            "--body-idle-timeout-secs",
            "2",
        ])
        .start()
}

/// What the good client saw.
#[derive(Default)]
struct Seen {
    statuses: std::collections::BTreeMap<u16, usize>,
    latencies: Vec<Duration>,
    bad: Vec<String>,
}

impl Seen {
    fn record(&mut self, what: &str, reply: HeadedReply, took: Duration) {
        *self.statuses.entry(reply.status).or_default() += 1;
        self.latencies.push(took);
        if reply.status >= 500 {
            let overloaded = reply.status == 503
                && reply.header("content-type") == Some("application/json")
                && reply.json()["code"] == "overloaded";
            if !overloaded {
                self.bad
                    .push(format!("{what}: {} {}", reply.status, reply.body));
            }
        }
    }

    fn p99(&mut self) -> Duration {
        self.latencies.sort();
        self.latencies[self.latencies.len() * 99 / 100]
    }
}

/// `/health` and a real API route (a nonce: a rate-limit window in key-value and a row in
/// SQLite), for `period`.
fn good_client(host: &Host, period: Duration) -> Seen {
    let mut seen = Seen::default();
    let until = Instant::now() + period;
    while Instant::now() < until {
        let started = Instant::now();
        let reply = host.get_headed("/health");
        seen.record("GET /health", reply, started.elapsed());
        let started = Instant::now();
        let reply = host.request_headed("POST", "/api/v1/auth/nonce", Some(&json!({})));
        seen.record("POST /api/v1/auth/nonce", reply, started.elapsed());
    }
    seen
}

#[test]
fn a_slow_loris_flood_from_one_client_does_not_reach_another() {
    let state = tempfile::tempdir().unwrap();
    let host = app(state.path());
    let flooder: IpAddr = FLOODER.parse().unwrap();

    let mut before = good_client(&host, Duration::from_secs(2));
    assert!(before.bad.is_empty(), "{:?}", before.bad);

    let flood = Flood::start(FloodConfig {
        target: host.addr,
        source: Some(flooder),
        connections: FLOOD_CONNECTIONS,
        stalls: vec![Stall::Head, Stall::Body, Stall::Idle],
        path: "/api/v1/auth/verify".into(),
        reopen_after: Duration::from_millis(250),
    });
    // Let the flood open its connections.
    let opened = Instant::now();
    while flood.open() < FLOOD_CONNECTIONS * 9 / 10 && opened.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        flood.open() >= FLOOD_CONNECTIONS / 2,
        "the flood holds {} connections",
        flood.open()
    );

    // Long enough for the host to cut the stalled heads and bodies (2 s) a few times over.
    let mut during = good_client(&host, Duration::from_secs(7));
    let stats = flood.stop();
    let (p99_before, p99_during) = (before.p99(), during.p99());
    eprintln!(
        "good client before: {:?} p99 {p99_before:?}; during the flood: {:?} p99 {p99_during:?}; flood: {}",
        before.statuses,
        during.statuses,
        stats.to_json()
    );
    assert!(
        during.bad.is_empty(),
        "the good client saw 5xx other than a JSON 503 overloaded: {:?}",
        during.bad
    );
    // The flood holds at most its 64 connections (--max-connections-per-client) and so at
    // most 64 of the pool's 128 slots: the good client never even waits in the queue.
    assert_eq!(
        during.statuses.get(&503),
        None,
        "the good client was refused: {:?}",
        during.statuses
    );
    assert!(
        p99_during < Duration::from_secs(1),
        "good client p99 {p99_during:?} during the flood"
    );
    // The host shed the flood rather than serving it: its connections over the cap were
    // answered 503 and closed, and the stalled ones it kept were closed at their timeouts.
    assert!(stats.closed_by_server > 0, "{}", stats.to_json());
    assert!(
        stats.answers.get(&503).copied().unwrap_or(0) > 0,
        "{}",
        stats.to_json()
    );

    // Recovery: the flooding client itself is served again once its connections are gone.
    let recovered = Instant::now();
    loop {
        let mut stream = bench_flood::connect(host.addr, Some(flooder)).unwrap();
        use std::io::{Read, Write};
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(10),
            "the former flooder is still refused: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = good_client(&host, Duration::from_secs(1));
    assert!(after.bad.is_empty(), "{:?}", after.bad);
    assert_eq!(
        after.statuses.keys().copied().collect::<Vec<_>>(),
        vec![200]
    );
}
