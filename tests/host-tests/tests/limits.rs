//! The host's limits against clients and guests that take too much: slow request heads and
//! bodies, guests that loop or allocate without end, more requests than instances, more
//! connections than one client may hold. Real host binary, real probe component.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use host_tests::*;

/// Starts the probe app with extra `up` flags.
fn probe_with(state: &std::path::Path, flags: &[&str]) -> Host {
    probe_app(state).args(flags).start()
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read and
/// how long it took.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after {limit:?}: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_request_head_that_never_ends_is_cut_off() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--header-read-timeout-secs", "1"]);

    // Half a head, then nothing; and a connection that never sends anything.
    let opened = Instant::now();
    let mut partial = TcpStream::connect(host.addr).unwrap();
    partial
        .write_all(b"GET /exact HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut silent = TcpStream::connect(host.addr).unwrap();

    for stream in [&mut partial, &mut silent] {
        let (seen, _) = read_until_closed(stream, Duration::from_secs(10));
        assert!(
            seen.is_empty(),
            "nothing is answered to half a head: {seen:?}"
        );
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(4),
            "closed after {took:?}"
        );
    }
    // A client that keeps its head short is served as ever, and a keep-alive connection idle
    // for longer than the limit is closed too.
    let mut client = TcpStream::connect(host.addr).unwrap();
    client
        .write_all(b"GET /exact HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (seen, took) = read_until_closed(&mut client, Duration::from_secs(10));
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        took < Duration::from_secs(4),
        "idle keep-alive closed after {took:?}"
    );
}

#[test]
fn a_request_body_that_stalls_fails_the_read_and_closes_the_connection() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--body-idle-timeout-secs", "1"]);

    let mut stalled = TcpStream::connect(host.addr).unwrap();
    stalled
        .write_all(b"POST /exact HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .unwrap();
    let (seen, took) = read_until_closed(&mut stalled, Duration::from_secs(10));
    // The component saw a body error and answered; the host closed the connection after it
    // rather than wait for the other 90 bytes.
    assert!(seen.starts_with("HTTP/1.1 "), "an answer: {seen:?}");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "answered and closed after {took:?}"
    );
    // A body that keeps coming, however slowly, is read whole.
    let mut slow = TcpStream::connect(host.addr).unwrap();
    slow.write_all(
        b"POST /exact HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    for byte in b"abcd" {
        std::thread::sleep(Duration::from_millis(400));
        slow.write_all(&[*byte]).unwrap();
    }
    let (seen, _) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // And the host serves on.
    assert_eq!(host.get("/exact").status, 200);
}

#[test]
fn a_guest_that_never_stops_gets_a_json_504_within_the_deadline() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--request-timeout-secs", "2"]);

    std::thread::scope(|s| {
        // More looping guests than the machine has cores: without interruption they would hold
        // every worker thread.
        let loops: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    (host.get_headed("/?op=loop"), started.elapsed())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // While they spin, the host serves everyone else.
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(host.get("/exact").status, 200);
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "a request beside the loops took {:?}",
                started.elapsed()
            );
        }
        for handle in loops {
            let (reply, took) = handle.join().unwrap();
            assert_eq!(reply.status, 504, "{}", reply.body);
            assert_eq!(
                reply.header("content-type").unwrap_or_default(),
                "application/json"
            );
            assert_eq!(reply.json()["code"], "timeout", "{}", reply.body);
            assert!(
                took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
                "stopped after {took:?}"
            );
        }
    });

    // A guest that waits rather than computes is stopped the same way.
    let started = Instant::now();
    let reply = host.get_headed("/?op=sleep&ms=20000");
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(reply.json()["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(4));

    assert_eq!(host.get("/exact").status, 200, "the host keeps serving");
    assert!(
        host.logs_eventually("component `probe` (route /...) did not answer within 2s"),
        "{}",
        host.log()
    );
}

#[test]
fn a_guest_that_allocates_without_end_is_stopped_at_its_cap() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--max-instance-memory-mib", "32"]);

    // Under the cap, a guest has what it asks for.
    let fits = host.get("/?op=alloc&limit_mib=16");
    assert_eq!(fits.status, 200, "{}", fits.body);
    assert_eq!(fits.json()["held_mib"], 16);

    let started = Instant::now();
    let reply = host.get_headed("/?op=alloc");
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(
        reply.header("content-type").unwrap_or_default(),
        "application/json"
    );
    assert_eq!(reply.json()["code"], "internal_error", "{}", reply.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        host.logs_eventually(
            "component `probe` (route /...) was refused memory beyond its 32 MiB cap"
        ),
        "{}",
        host.log()
    );

    // The host, and the next instance in the same pool slot, are fine.
    assert_eq!(host.get("/exact").status, 200);
    assert_eq!(host.get("/?op=alloc&limit_mib=16").status, 200);
}

/// Sends `n` requests for `path` at once and returns their replies.
fn at_once(host: &Host, path: &str, n: usize) -> Vec<HeadedReply> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| host.get_headed(path))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn requests_beyond_the_pool_wait_their_turn_and_instantiation_never_fails() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(
        state.path(),
        &[
            "--max-concurrent-requests",
            "4",
            "--queue-timeout-ms",
            "20000",
        ],
    );
    let replies = at_once(&host, "/?op=sleep&ms=400", 12);
    let mut spans = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let v = reply.json();
        spans.push((
            v["start_ms"].as_u64().unwrap(),
            v["end_ms"].as_u64().unwrap(),
        ));
    }
    // Never more than four guests at once: at any guest's start, count who else was running.
    for (start, _) in &spans {
        let running = spans
            .iter()
            .filter(|(s, e)| s <= start && start < e)
            .count();
        assert!(running <= 4, "{running} guests ran at once: {spans:?}");
    }
}

#[test]
fn past_the_queue_timeout_the_answer_is_a_json_503_with_retry_after() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(
        state.path(),
        &[
            "--max-concurrent-requests",
            "2",
            "--queue-timeout-ms",
            "200",
        ],
    );
    std::thread::scope(|s| {
        let busy: Vec<_> = (0..2)
            .map(|_| s.spawn(|| host.get("/?op=sleep&ms=1500")))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let reply = host.get_headed("/exact");
        let waited = started.elapsed();
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(
            reply.header("content-type").unwrap_or_default(),
            "application/json"
        );
        assert_eq!(reply.json()["code"], "overloaded", "{}", reply.body);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(
            waited >= Duration::from_millis(180) && waited < Duration::from_secs(1),
            "answered after {waited:?}"
        );
        // Routes the host answers itself need no slot.
        assert_eq!(host.get("/.well-known/spin/health").status, 200);
        for handle in busy {
            assert_eq!(handle.join().unwrap().status, 200);
        }
    });
    assert_eq!(
        host.get("/exact").status,
        200,
        "served again once slots free"
    );
}

/// A second loopback address: connections from it are another client as far as the host can
/// tell.
const OTHER_CLIENT: &str = "127.0.0.2";

#[test]
fn a_client_over_its_connection_cap_is_answered_503_and_closed_while_others_are_served() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--max-connections-per-client", "3"]);
    let other: std::net::IpAddr = OTHER_CLIENT.parse().unwrap();

    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| bench_flood::connect(host.addr, Some(other)).unwrap())
        .collect();
    // Give the host a moment to count them.
    std::thread::sleep(Duration::from_millis(200));

    let mut over = bench_flood::connect(host.addr, Some(other)).unwrap();
    over.write_all(b"GET /exact HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (seen, _) = read_until_closed(&mut over, Duration::from_secs(5));
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
    let lower = seen.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{seen}");
    assert!(lower.contains("retry-after: 1"), "{seen}");
    assert!(lower.contains("connection: close"), "{seen}");
    assert!(seen.contains(r#""code":"overloaded""#), "{seen}");

    // Another client is served as ever.
    assert_eq!(host.get("/exact").status, 200);

    // The capped client may connect again once it closes one of its connections; the ones it
    // holds keep working.
    held.pop();
    std::thread::sleep(Duration::from_millis(200));
    let mut again = bench_flood::connect(host.addr, Some(other)).unwrap();
    again
        .write_all(b"GET /exact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (seen, _) = read_until_closed(&mut again, Duration::from_secs(5));
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    held[0]
        .write_all(b"GET /exact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (seen, _) = read_until_closed(&mut held[0], Duration::from_secs(5));
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        host.logs_eventually("client 127.0.0.2 holds 3 connections"),
        "{}",
        host.log()
    );
}

/// An upstream that accepts connections and reads requests, then answers with `reply` (maybe
/// nothing) and stalls for as long as the connection lasts.
fn stalling_upstream(reply: &'static [u8]) -> u16 {
    tcp_peer(move |mut stream| {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(reply);
        // Hold the connection open, sending nothing more.
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    })
}

#[test]
fn an_upstream_that_stalls_fails_the_guests_call_within_the_outbound_timeouts() {
    // What the guest sees: the first-byte timeout as the call's error code; the body's, as the
    // error of the body stream (which spin-sdk reports by the stream's handle).
    for (reply, what, seen) in [
        (
            &b""[..],
            "no answer at all (first-byte timeout)",
            "ConnectionReadTimeout",
        ),
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789"[..],
            "a body that stops (between-bytes timeout)",
            "ResponseConversion",
        ),
    ] {
        let port = stalling_upstream(reply);
        let state = tempfile::tempdir().unwrap();
        let host = probe_app(state.path())
            .var("upstream_port", port.to_string())
            .args(&[
                "--outbound-first-byte-timeout-secs",
                "1",
                "--outbound-between-bytes-timeout-secs",
                "1",
            ])
            .start();
        let started = Instant::now();
        let reply = host.post(
            "/?op=http",
            &json!({"url": format!("http://127.0.0.1:{port}/slow")}),
        );
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        let err = reply.json()["err"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(seen), "{what}: {}", reply.body);
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{what}: the guest's call failed after {took:?}"
        );
    }
}

/// Sends `GET /exact` with one header of `bytes` bytes (written from another thread, since the
/// host may answer and close before reading it all); the status line of the answer.
fn status_line_for_a_header_of(host: &Host, bytes: usize) -> String {
    let mut stream = TcpStream::connect(host.addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let request = format!(
        "GET /exact HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    );
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(request.as_bytes());
    });
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10));
    let _ = sender.join();
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn a_request_head_over_the_limit_is_answered_431_and_closed() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &[]);
    // The default is 64 KiB: a head just under it is served, the 200 KB header that was
    // accepted before is not.
    assert_eq!(
        status_line_for_a_header_of(&host, 63 * 1024),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_line_for_a_header_of(&host, 200 * 1000),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(host.get("/exact").status, 200, "the host keeps serving");

    let state = tempfile::tempdir().unwrap();
    let host = probe_with(state.path(), &["--max-request-head-kib", "8"]);
    assert_eq!(
        status_line_for_a_header_of(&host, 7 * 1024),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_line_for_a_header_of(&host, 9 * 1024),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}
