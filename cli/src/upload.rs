//! tus 1.0 (core + creation) against the media origin (docs/native-transcoder.md), resumable
//! across runs: the upload URL is remembered in the config dir and the origin's `HEAD` says
//! how far it got.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use base64::Engine;
use indicatif::{ProgressBar, ProgressStyle};

use crate::api::{call_error, retry_after};
use crate::error::{CliError, Result};

/// What the web studio sends per PATCH too: big enough to keep the link busy, small enough that
/// a broken connection loses little.
const CHUNK: u64 = 8 * 1024 * 1024;
/// Attempts at one chunk before giving up (the command can be run again to resume).
const ATTEMPTS: u32 = 6;
/// The longest wait for a `Retry-After` or a backoff.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub enum Head {
    /// The origin knows the upload: bytes it holds, and the length declared at creation.
    Known { offset: u64, length: u64 },
    /// The upload cannot be resumed (unknown, deleted, or its URL's token expired).
    Gone(CliError),
}

/// The tus `HEAD`. A 423 (a vanished PATCH of an earlier run still holds the upload's lock) or a
/// 5xx is waited out.
pub fn head(agent: &ureq::Agent, url: &str) -> Result<Head> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let res = agent.head(url).set("Tus-Resumable", "1.0.0").call();
        match res {
            Ok(resp) => {
                let num = |name: &str| resp.header(name).and_then(|v| v.trim().parse::<u64>().ok());
                return match (num("upload-offset"), num("upload-length")) {
                    (Some(offset), Some(length)) => Ok(Head::Known { offset, length }),
                    _ => Err(CliError::from_api(
                        resp.status(),
                        "the origin's HEAD has no Upload-Offset / Upload-Length",
                        None,
                    )),
                };
            }
            Err(ureq::Error::Status(status, resp))
                if (status == 423 || status == 429 || status >= 500) && attempt < ATTEMPTS =>
            {
                pause(retry_after(&resp), attempt);
            }
            Err(ureq::Error::Status(status @ (403 | 404 | 410), resp)) => {
                return Ok(Head::Gone(call_error(
                    "HEAD",
                    ureq::Error::Status(status, resp),
                )))
            }
            Err(e @ ureq::Error::Transport(_)) if attempt < ATTEMPTS => {
                let _ = e;
                pause(None, attempt);
            }
            Err(e) => return Err(call_error(&format!("HEAD {}", strip_query(url)), e)),
        }
    }
}

/// tus creation on the URL the API issued; answers the upload URL (absolute).
pub fn create(agent: &ureq::Agent, endpoint: &str, size: u64, filename: &str) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let metadata = format!(
        "filename {},filetype {}",
        b64.encode(filename),
        b64.encode("application/octet-stream")
    );
    let resp = agent
        .post(endpoint)
        .set("Tus-Resumable", "1.0.0")
        .set("Upload-Length", &size.to_string())
        .set("Upload-Metadata", &metadata)
        .send_bytes(&[])
        .map_err(|e| call_error(&format!("tus creation at {}", strip_query(endpoint)), e))?;
    let location = resp.header("location").ok_or_else(|| {
        CliError::from_api(
            resp.status(),
            "the origin's creation answer has no Location",
            None,
        )
    })?;
    let base = url::Url::parse(endpoint)
        .map_err(|e| CliError::local(format!("the upload URL {endpoint} is not a URL: {e}")))?;
    base.join(location).map(|u| u.to_string()).map_err(|e| {
        CliError::local(format!(
            "the origin's Location {location} is not a URL: {e}"
        ))
    })
}

/// Sends the file from `offset` to its end, in chunks, drawing `bar`. Broken connections,
/// 409 (offsets disagree), 423, 429 and 5xx are resumed from the origin's `HEAD`.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    file: &mut File,
    size: u64,
    mut offset: u64,
    bar: &ProgressBar,
    limit: Option<u64>,
) -> Result<()> {
    let mut limiter = Limiter::new(limit);
    let mut failures = 0;
    while offset < size {
        let n = CHUNK.min(size - offset);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| CliError::local(format!("cannot read the file: {e}")))?;
        let reader = Counting {
            inner: (&mut *file).take(n),
            bar,
            limiter: &mut limiter,
        };
        let res = agent
            .request("PATCH", url)
            .set("Tus-Resumable", "1.0.0")
            .set("Upload-Offset", &offset.to_string())
            .set("Content-Type", "application/offset+octet-stream")
            .set("Content-Length", &n.to_string())
            .send(reader);
        let retry_wait = match res {
            Ok(resp) => {
                match resp
                    .header("upload-offset")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    Some(o) => offset = o,
                    None => offset += n,
                }
                bar.set_position(offset);
                failures = 0;
                continue;
            }
            Err(ureq::Error::Status(status, resp))
                if status == 409 || status == 423 || status == 429 || status >= 500 =>
            {
                retry_after(&resp)
            }
            Err(ureq::Error::Transport(_)) => None,
            Err(e) => return Err(call_error(&format!("PATCH {}", strip_query(url)), e)),
        };
        failures += 1;
        if failures >= ATTEMPTS {
            return Err(CliError::network(
                "the upload keeps failing",
                format!("gave up at byte {offset} of {size} after {ATTEMPTS} attempts"),
            )
            .with_hint("run the same command again: it resumes from where the origin got to"));
        }
        pause(retry_wait, failures);
        match head(agent, url)? {
            Head::Known { offset: o, .. } => {
                offset = o;
                bar.set_position(offset);
            }
            Head::Gone(e) => return Err(e),
        }
    }
    Ok(())
}

fn pause(retry_after: Option<u64>, attempt: u32) {
    let backoff = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
    let wait = retry_after.map(Duration::from_secs).unwrap_or(backoff);
    std::thread::sleep(wait.min(MAX_WAIT));
}

/// The URL without its query: upload URLs carry their token there, and errors are printed.
pub fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Keeps the average send rate at or below a limit (`--limit-rate`).
struct Limiter {
    limit: Option<u64>,
    start: Instant,
    sent: u64,
}

impl Limiter {
    fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            start: Instant::now(),
            sent: 0,
        }
    }

    fn account(&mut self, n: usize) {
        self.sent += n as u64;
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            let due = Duration::from_secs_f64(self.sent as f64 / limit as f64);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

/// The request body: counts bytes into the bar as ureq reads them.
struct Counting<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
    limiter: &'a mut Limiter,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Small reads keep a rate limit smooth and the bar lively.
        let cap = if self.limiter.limit.is_some() {
            buf.len().min(16 * 1024)
        } else {
            buf.len()
        };
        let n = self.inner.read(&mut buf[..cap])?;
        self.bar.inc(n as u64);
        self.limiter.account(n);
        Ok(n)
    }
}

/// `500k`, `2M`, `1048576`: bytes per second (k = 1024).
pub fn parse_rate(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&t[..t.len() - 1], 1024),
        Some('m') => (&t[..t.len() - 1], 1024 * 1024),
        Some('g') => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a rate like 500k, 2M or 1048576"))?;
    if n == 0 {
        return Err("the rate must be above 0".into());
    }
    Ok(n * mult)
}

pub fn bytes_bar(size: u64, offset: u64) -> ProgressBar {
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "upload    [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_position(offset);
    bar.reset_eta();
    bar
}

pub fn transcode_bar() -> ProgressBar {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg:9} [{bar:30}] {percent:>3}% {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500k"), Ok(512_000));
        assert_eq!(parse_rate("2M"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }
}
