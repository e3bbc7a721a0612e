//! Real parts for the tests: the real binary, a private redis-server, ffmpeg-made clips, and an
//! HTTP receiver standing in for the Spin app's `/internal/v1/events` (it checks signatures with
//! core's verify and records what it accepted).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use streamgate_core::{edge_token, event_signature, keys};
pub use test_support::{wait_until, Redis};

pub const SECRET: &str = "test-events-secret-0123456789abcdef";
pub const OLD_SECRET: &str = "old-events-secret-0123456789abcdef";

pub use streamgate_core::now;

/// The wallet test upload URLs are issued to.
pub const OWNER: &str = "0x1111111111111111111111111111111111111111";

pub fn upload_token(video: &str, secret: &str, start: i64, expires: i64) -> String {
    edge_token::sign(
        &edge_token::EdgeToken {
            start,
            expires,
            acl: vec![format!("/uploads/{video}*")],
            // The wallet the app issued the URL to (the origin's per-wallet quota).
            data: Some(OWNER.into()),
        },
        &keys::derive(secret, "upload"),
    )
}

pub fn valid_token(video: &str) -> String {
    upload_token(video, SECRET, now() - 10, now() + 3600)
}

// ---------------------------------------------------------------- events receiver

#[derive(Clone, Default)]
pub struct Receiver {
    pub events: Arc<Mutex<Vec<Value>>>,
    /// Every signed request seen, accepted or not (for retry assertions).
    pub attempts: Arc<Mutex<Vec<Value>>>,
    pub port: u16,
}

impl Receiver {
    /// `status` decides the answer for each correctly signed event (200 = accepted + recorded).
    pub fn start(status: impl Fn(&Value, usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = Receiver {
            port,
            ..Default::default()
        };
        let status = Arc::new(status);
        let this = me.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let this = this.clone();
                let status = status.clone();
                std::thread::spawn(move || this.serve(stream, &*status));
            }
        });
        me
    }

    pub fn accepting() -> Receiver {
        Receiver::start(|_, _| 200)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/internal/v1/events", self.port)
    }

    fn serve(&self, mut stream: TcpStream, status: &dyn Fn(&Value, usize) -> u16) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let headers = read_headers(&mut reader);
        let signature = header_of(&headers, event_signature::HEADER);
        let mut body = vec![0; content_length(&headers)];
        reader.read_exact(&mut body).unwrap();
        let key = keys::derive(SECRET, "events");
        let code = match event_signature::verify(signature, &[&key], &body, now()) {
            Err(_) => 401,
            Ok(_) => {
                let event: Value = serde_json::from_slice(&body).unwrap();
                let n = {
                    let mut attempts = self.attempts.lock().unwrap();
                    attempts.push(event.clone());
                    attempts.len()
                };
                let code = status(&event, n);
                if code == 200 {
                    self.events.lock().unwrap().push(event);
                }
                code
            }
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let _ = stream.shutdown(Shutdown::Both);
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }

    pub fn wait_for(&self, kind: &str, video: &str, timeout: Duration) -> Value {
        wait_until(&format!("a {kind} event for {video}"), timeout, || {
            self.of_type(kind)
                .into_iter()
                .find(|e| e["video_id"] == video)
        })
    }
}

// ---------------------------------------------------------------- processes

pub struct Proc {
    pub child: Child,
    pub first_line: String,
}

impl Proc {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_native-transcoder"));
        cmd.args(args)
            .env_remove("STREAMGATE_EVENTS_SECRET_PREVIOUS")
            .env("STREAMGATE_EVENTS_SECRET", SECRET)
            // Quiet unless asked: STREAMGATE_TEST_LOG=info shows the services' logs.
            .env(
                "RUST_LOG",
                std::env::var("STREAMGATE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the native-transcoder binary runs");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        assert!(!first_line.is_empty(), "native-transcoder exited at start");
        Proc { child, first_line }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn sigterm(&self) {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_until("the process to exit", timeout, || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Origin {
    pub proc: Proc,
    pub addr: String,
}

impl Origin {
    pub fn start(media: &Path, events_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Origin {
        let media = media.to_str().unwrap();
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--media-dir", media];
        args.extend(["--events-url", events_url]);
        args.extend(extra);
        let proc = Proc::spawn(&args, env);
        let addr = proc
            .first_line
            .trim()
            .rsplit("http://")
            .next()
            .unwrap()
            .to_string();
        Origin { proc, addr }
    }
}

/// A worker on `redis` as the worker's ACL user (its URL in the environment, as `scripts/up`
/// gives it).
pub fn start_worker(media: &Path, redis: &Redis, events_url: &str, extra: &[&str]) -> Proc {
    let media = media.to_str().unwrap();
    let mut args = vec!["work", "--media-dir", media];
    args.extend(["--events-url", events_url]);
    args.extend(extra);
    Proc::spawn(&args, &[("STREAMGATE_REDIS_URL", &redis.worker_url())])
}

// ---------------------------------------------------------------- media

/// A test clip: testsrc2 picture + sine audio, H.264/AAC in MP4.
pub fn make_clip(path: &Path, seconds: u32, size: &str, audio: bool) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440"]);
    }
    cmd.args([
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ])
    .args(["-pix_fmt", "yuv420p"]);
    if audio {
        cmd.args(["-c:a", "aac"]);
    }
    let status = cmd
        .args(["-f", "mp4"])
        .arg(path)
        .status()
        .expect("ffmpeg must be installed (scripts/up installs it)");
    assert!(status.success());
}

/// The duration of one CMAF segment as ffprobe reads it (init + media segment concatenated, as a
/// player feeds them to its decoder): its video frames over the frame rate. (The container's
/// duration would count from 0, since each fragment carries its absolute decode time.)
/// Packets of the first stream of `kind` ("v" or "a") in an fMP4 segment joined to its init
/// segment, read by ffprobe; 0 when the segment has no such stream.
pub fn segment_packets(init: &Path, segment: &Path, kind: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let joined = dir.path().join("joined.mp4");
    let mut bytes = std::fs::read(init).unwrap();
    bytes.extend(std::fs::read(segment).unwrap());
    std::fs::write(&joined, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args(["-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .arg(&joined)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe cannot read {}",
        segment.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or(0)
}

/// A video segment's duration from its frame count.
pub fn segment_duration(init: &Path, segment: &Path, fps: f64) -> f64 {
    let frames = segment_packets(init, segment, "v");
    assert!(frames > 0, "{} has no video frames", segment.display());
    frames as f64 / fps
}

/// An AAC segment's duration: 1024 samples per packet.
pub fn audio_segment_duration(init: &Path, segment: &Path, sample_rate: u32) -> f64 {
    let packets = segment_packets(init, segment, "a");
    assert!(packets > 0, "{} has no audio", segment.display());
    packets as f64 * 1024.0 / sample_rate as f64
}

pub fn media_dirs(media: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(media.join("media"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------- raw HTTP client

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// As received (media is binary).
    pub body: Vec<u8>,
}

/// The header block of a request or a response, up to its blank line.
fn read_headers(reader: &mut impl BufRead) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            return headers;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.to_string(), v.trim().to_string()));
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn content_length(headers: &[(String, String)]) -> usize {
    header_of(headers, "content-length").map_or(0, |v| v.parse().unwrap())
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    /// The body as JSON, `Null` if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One request on a fresh connection. Written by hand so a test can also send half a body and
/// hang up, which no ordinary client does on purpose.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PATCH" || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_reply(stream, method == "HEAD")
}

fn read_reply(stream: TcpStream, head: bool) -> Reply {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = read_headers(&mut reader);
    let no_body = head || status == 204 || status == 304;
    let mut body = vec![0; if no_body { 0 } else { content_length(&headers) }];
    reader.read_exact(&mut body).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends a PATCH announcing `declared` bytes, sends only `data`, and hangs up.
pub fn patch_and_hang_up(addr: &str, path: &str, offset: u64, declared: usize, data: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let req = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(data).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.shutdown(Shutdown::Both).unwrap();
}

/// Sends a PATCH with a chunked body (no length announced, as tus clients streaming a file do),
/// one chunk per slice; with `finish` false it hangs up before the closing chunk. Answers the
/// reply when `finish`, else `None`.
pub fn patch_chunked(
    addr: &str,
    path: &str,
    offset: u64,
    chunks: &[&[u8]],
    finish: bool,
) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let req = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).unwrap();
    for chunk in chunks {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        // The server may answer and close before reading everything (a body past its length).
        if stream.write_all(chunk).is_err() || stream.write_all(b"\r\n").is_err() {
            break;
        }
    }
    if finish {
        let _ = stream.write_all(b"0\r\n\r\n");
        return Some(read_reply(stream, false));
    }
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.shutdown(Shutdown::Both).unwrap();
    None
}
