//! Signed events to the Spin app's `/internal/v1/events` (docs/pipeline.md, "Events").
//!
//! Delivery is at-least-once: the sender retries with exponential backoff until the app answers
//! 2xx, or a 4xx that retrying cannot fix (anything but 401, 408, 429). The receiver is
//! idempotent by event id, so ids here are deterministic where a retry after a crash must be
//! recognised as the same event.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use streamgate_core::event_signature;

use crate::fsutil;
use crate::metrics::METRICS;

pub use streamgate_core::pipeline::{Event, EventData};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// A 4xx that a retry cannot change (e.g. the video was deleted meanwhile).
    Rejected(u16, String),
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct EventSender {
    url: Uri,
    key: [u8; 32],
    client: Client<HttpConnector, Full<Bytes>>,
}

impl EventSender {
    pub fn new(url: &str, key: [u8; 32]) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("the events URL {url:?} is not a valid URL"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            // The Spin app and the native side talk over a private network or loopback; TLS
            // termination, when wanted, belongs to the proxy in front of the app.
            bail!("the events URL must be an http:// URL with a host, got {url:?}");
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(EventSender {
            url: uri,
            key,
            client,
        })
    }

    /// One attempt. `Ok(status)` whatever the status; `Err` when no answer came.
    pub async fn send_once(&self, event: &Event) -> Result<(StatusCode, String)> {
        let body = serde_json::to_vec(event).expect("events serialise");
        let signature = event_signature::sign(&self.key, streamgate_core::now(), &body);
        let mut request = Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(event_signature::HEADER, signature);
        // In the header too, so the host (and any proxy) logs the request under the same trace.
        if let Some(trace) = event.trace() {
            request = request.header(streamgate_core::trace::HEADER, trace.to_string());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .context("the events endpoint did not answer in time")?
            .context("cannot reach the events endpoint")?;
        let status = response.status();
        let text = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Ok((status, text))
    }

    /// Sends until the app accepts the event or refuses it for good.
    pub async fn deliver(&self, event: &Event) -> Delivery {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.send_once(event).await {
                Ok((status, _)) if status.is_success() => {
                    METRICS.event_delivery(event.kind(), "accepted");
                    return Delivery::Accepted;
                }
                Ok((status, text)) if is_permanent(status) => {
                    METRICS.event_delivery(event.kind(), "rejected");
                    log_rejection(event, status, &text);
                    return Delivery::Rejected(status.as_u16(), text);
                }
                Ok((status, text)) => {
                    METRICS.event_delivery(event.kind(), "retry");
                    tracing::warn!(event = %event.id, kind = event.kind(), %status, body = %text,
                        retry_in_ms = backoff.as_millis() as u64, "event not accepted yet");
                }
                Err(e) => {
                    METRICS.event_delivery(event.kind(), "retry");
                    tracing::warn!(event = %event.id, kind = event.kind(), error = %format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64, "event not delivered yet");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// A 404 is the app saying the video no longer exists: deleted while its media was being
/// made or removed. For `media.deleted` that is the expected answer (the app deletes the video
/// first, then queues the removal of its media), and for the other events a deletion that
/// overtook them; neither is a fault of this side or the app's, so neither is an ERROR an
/// operator would chase. Any other refusal for good is.
fn log_rejection(event: &Event, status: StatusCode, text: &str) {
    if status == StatusCode::NOT_FOUND {
        let reason = "the video no longer exists (deleted in the meantime); nothing to apply";
        if matches!(event.data, EventData::MediaDeleted {}) {
            tracing::info!(event = %event.id, kind = event.kind(), %status, body = %text, reason,
                "the app has already forgotten the deleted video; not retrying");
        } else {
            tracing::warn!(event = %event.id, kind = event.kind(), %status, body = %text, reason,
                "the events endpoint refused the event; not retrying");
        }
        return;
    }
    tracing::error!(event = %event.id, kind = event.kind(), %status, body = %text,
        "the events endpoint refused the event; not retrying");
}

fn is_permanent(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
        )
}

/// Events that must survive a restart of the sender (the origin's `upload.completed`): written
/// to `<media>/outbox/<id>.json` before delivery starts, removed once accepted, moved to
/// `outbox/rejected/` when refused for good.
#[derive(Clone)]
pub struct Outbox {
    dir: PathBuf,
    sender: EventSender,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Outbox {
    pub fn new(dir: PathBuf, sender: EventSender) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the outbox {}", dir.display()))?;
        Ok(Outbox {
            dir,
            sender,
            in_flight: Arc::default(),
        })
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_safe(id)))
    }

    /// Persists the event, then delivers it in the background.
    pub fn enqueue(&self, event: Event) -> Result<()> {
        let path = self.file(&event.id);
        fsutil::write_atomic(&path, &serde_json::to_vec(&event)?)
            .with_context(|| format!("cannot write the pending event {}", path.display()))?;
        self.spawn(event, path);
        Ok(())
    }

    /// Re-sends what a previous run left undelivered.
    pub fn resume(&self) -> Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read(&path)?;
            match serde_json::from_slice::<Event>(&text) {
                Ok(event) => {
                    self.spawn(event, path);
                    n += 1;
                }
                Err(e) => tracing::error!(file = %path.display(), error = %e,
                    "an outbox file is not an event; leaving it for inspection"),
            }
        }
        Ok(n)
    }

    fn spawn(&self, event: Event, path: PathBuf) {
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if !in_flight.insert(event.id.clone()) {
                return;
            }
            METRICS.outbox_events.set(in_flight.len() as i64);
        }
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this.sender.deliver(&event).await;
            let done = match outcome {
                Delivery::Accepted => std::fs::remove_file(&path),
                Delivery::Rejected(status, _) => {
                    if status == 404 && matches!(event.data, EventData::UploadCompleted { .. }) {
                        // The video was deleted before its upload finished: nothing will
                        // ever transcode or delete this source.
                        if let Some(root) = this.dir.parent() {
                            let _ =
                                std::fs::remove_file(root.join("sources").join(&event.video_id));
                        }
                    }
                    let rejected = this.dir.join("rejected");
                    std::fs::create_dir_all(&rejected).and_then(|_| {
                        std::fs::rename(&path, rejected.join(path.file_name().unwrap()))
                    })
                }
            };
            if let Err(e) = done {
                tracing::error!(file = %path.display(), error = %e, "cannot retire an outbox file");
            }
            tracing::info!(event = %event.id, kind = event.kind(), ?outcome, "event delivered");
            let mut in_flight = this.in_flight.lock().unwrap();
            in_flight.remove(&event.id);
            METRICS.outbox_events.set(in_flight.len() as i64);
        });
    }

    /// Number of events not yet delivered (for tests and shutdown logs).
    pub fn pending(&self) -> usize {
        self.in_flight.lock().unwrap().len()
    }
}

fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::captured::Captured;
    use std::io::{Read, Write};

    /// An events endpoint answering every event `status` with the app's error shape, as the
    /// worker tests' receiver does (the app itself needs the Spin host).
    fn endpoint_answering(status: u16) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/internal/v1/events",
            listener.local_addr().unwrap()
        );
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as it announces.
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |l| l.trim().parse().unwrap());
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                let body = r#"{"error":"no video `v1`","code":"not_found"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    /// Delivers one `kind` event to an endpoint answering `status`; what was logged.
    fn logged(data: EventData, status: u16) -> String {
        let url = endpoint_answering(status);
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let outcome = tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let sender = EventSender::new(&url, [7; 32]).unwrap();
                    let event = Event::new(format!("{}:v1:1", data.kind()), "v1", data);
                    sender.deliver(&event).await
                })
        });
        assert!(
            matches!(outcome, Delivery::Rejected(s, _) if s == status),
            "{outcome:?}"
        );
        let log = captured.bytes();
        String::from_utf8(log).unwrap()
    }

    /// The level of the line that gives the reason a video is gone, if one does.
    fn reason_level(log: &str) -> Option<&str> {
        log.lines()
            .find(|line| line.contains("no longer exists"))
            .and_then(|line| line.split_whitespace().nth(1))
    }

    #[test]
    fn a_404_for_a_video_that_is_gone_is_no_error_and_says_why() {
        let log = logged(EventData::MediaDeleted {}, 404);
        assert!(!log.contains("ERROR"), "{log}");
        assert_eq!(reason_level(&log), Some("INFO"), "{log}");

        let log = logged(EventData::TranscodeCompleted(serde_json::json!({})), 404);
        assert!(!log.contains("ERROR"), "{log}");
        assert_eq!(reason_level(&log), Some("WARN"), "{log}");

        // Any other refusal for good is still an error.
        let log = logged(EventData::TranscodeCompleted(serde_json::json!({})), 422);
        assert!(log.contains("ERROR"), "{log}");
    }
}
