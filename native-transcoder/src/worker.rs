//! The queue consumer (docs/pipeline.md, "Jobs").
//!
//! Lease model: an entry belongs to the consumer that last (re)claimed it; while a job runs the
//! worker touches it every claim_timeout/3 (XCLAIM JUSTID, which resets its idle time without
//! counting a delivery), so only a dead or stuck worker's entries become idle long enough for
//! XAUTOCLAIM. Redis's delivery counter is the attempt number; an entry seen for the 4th time
//! (or failing its 3rd attempt) goes to the dead-letter stream.
//!
//! SIGTERM: the worker stops taking jobs and lets the current one finish within
//! `shutdown_grace`; past that it kills ffmpeg, discards the work directory and hands the entry
//! back (idle time set to the claim timeout, delivery counter restored), so another worker
//! takes it at once and the interrupted attempt does not count as a failure. The same grace
//! bounds reporting an outcome the job cannot end without (a final failure, a delete) while the
//! app is unreachable: past it the job is handed back and the next worker repeats the step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::Value;
use serde_json::json;
use tokio::sync::watch;

use crate::config::now_unix;
use crate::events::{Delivery, Event, EventSender};
use crate::fsutil::{self, is_safe_id};
use crate::intake::{Refusal, SourceLimits};
use crate::metrics::METRICS;
use crate::transcode::{self, JobError, Throttle, Tools, TRANSCODE_FAILED};

pub const STREAM: &str = "streamgate:jobs";
pub const GROUP: &str = "transcoders";
pub const DEAD: &str = "streamgate:jobs:dead";
/// Last error of each pending entry, so the dead-letter entry can say why.
pub const ERRORS: &str = "streamgate:jobs:errors";
pub const MAX_DELIVERIES: usize = 3;

pub struct WorkConfig {
    pub media_dir: PathBuf,
    pub redis_url: String,
    pub events: EventSender,
    pub tools: Tools,
    /// What a source may be (duration, size, frame rate, encode time).
    pub limits: SourceLimits,
    pub consumer: String,
    pub claim_timeout: Duration,
    pub shutdown_grace: Duration,
}

struct Job {
    id: String,
    fields: HashMap<String, String>,
    attempt: usize,
}

enum Ended {
    Done,
    /// Left pending on purpose (retryable failure, lost lease, handed back).
    Pending,
}

pub struct Worker {
    cfg: WorkConfig,
    conn: MultiplexedConnection,
    /// Blocking XREADGROUP gets its own connection so it never delays the lease heartbeats.
    blocking: MultiplexedConnection,
    /// How the entry being processed ended, for the jobs metric (set by ack, hand_back,
    /// dead_letter and the retry branch).
    outcome: Option<&'static str>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn fields_of(entry: &StreamId) -> HashMap<String, String> {
    entry
        .map
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
        .collect()
}

impl Worker {
    pub async fn connect(cfg: WorkConfig) -> Result<Worker> {
        let client = redis::Client::open(cfg.redis_url.as_str()).with_context(|| {
            format!(
                "bad Redis URL {:?}",
                crate::redis_auth::redacted(&cfg.redis_url)
            )
        })?;
        let connect = || async {
            client
                .get_multiplexed_async_connection()
                .await
                .with_context(|| {
                    format!(
                        "cannot connect to Redis at {}",
                        crate::redis_auth::redacted(&cfg.redis_url)
                    )
                })
        };
        let mut conn = connect().await?;
        let blocking = connect().await?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(e).context("cannot create the consumer group");
            }
        }
        Ok(Worker {
            cfg,
            conn,
            blocking,
            outcome: None,
        })
    }

    /// What the metrics listener reads the queue gauges with: its own connection, so a scrape
    /// never waits behind a blocking read.
    pub async fn queue_probe(&self) -> Result<QueueProbe> {
        let client = redis::Client::open(self.cfg.redis_url.as_str())?;
        Ok(QueueProbe {
            conn: client.get_multiplexed_async_connection().await?,
        })
    }

    fn media(&self) -> PathBuf {
        self.cfg.media_dir.join("media")
    }

    /// Removes work directories of workers that died (their lock is free).
    pub fn clean_leftovers(&self) -> Result<usize> {
        clean_leftovers(&self.media())
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let claim_ms = self.cfg.claim_timeout.as_millis() as u64;
        let block_ms = (claim_ms / 2).clamp(100, 2000);
        let mut cursor = "0-0".to_string();
        tracing::info!(consumer = %self.cfg.consumer, stream = STREAM, group = GROUP, "worker ready");
        while !*shutdown.borrow() {
            let next = match self
                .next_entry(&mut cursor, claim_ms, block_ms, &mut shutdown)
                .await
            {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "Redis error; retrying in 1 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    if let Ok(w) = self.reconnect().await {
                        self.conn = w.0;
                        self.blocking = w.1;
                    }
                    continue;
                }
            };
            if let Some(entry) = next {
                if let Err(e) = self.process(entry, &mut shutdown).await {
                    tracing::error!(error = %format!("{e:#}"), "job handling interrupted; it stays pending");
                }
            }
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    async fn reconnect(&self) -> Result<(MultiplexedConnection, MultiplexedConnection)> {
        let client = redis::Client::open(self.cfg.redis_url.as_str())?;
        Ok((
            client.get_multiplexed_async_connection().await?,
            client.get_multiplexed_async_connection().await?,
        ))
    }

    /// A stale entry of a dead worker first, else a new one (blocking briefly).
    async fn next_entry(
        &mut self,
        cursor: &mut String,
        claim_ms: u64,
        block_ms: u64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<StreamId>> {
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.cfg.consumer)
            .arg(claim_ms)
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn)
            .await?;
        *cursor = claimed.next_stream_id;
        if let Some(entry) = claimed.claimed.into_iter().next() {
            return Ok(Some(entry));
        }
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg(&self.cfg.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">");
        let reply = tokio::select! {
            r = read.query_async::<Option<StreamReadReply>>(&mut self.blocking) => r?,
            _ = shutdown.changed() => return Ok(None),
        };
        Ok(reply.and_then(|r| r.keys.into_iter().next()?.ids.into_iter().next()))
    }

    async fn pending_info(&mut self, id: &str) -> Result<Option<(String, usize)>> {
        pending_info(&mut self.conn, id).await
    }

    /// Handles one entry and records how it ended.
    async fn process(
        &mut self,
        entry: StreamId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let action = match fields_of(&entry).get("action").map(String::as_str) {
            Some("transcode") => "transcode",
            Some("delete") => "delete",
            _ => "unknown",
        };
        self.outcome = None;
        let result = self.process_entry(entry, shutdown).await;
        let outcome = match (&result, self.outcome.take()) {
            (Err(_), _) => Some("interrupted"),
            (Ok(()), outcome) => outcome,
        };
        if let Some(outcome) = outcome {
            METRICS.job(action, outcome, started.elapsed());
        }
        result
    }

    async fn process_entry(
        &mut self,
        entry: StreamId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let Some((owner, attempt)) = self.pending_info(&entry.id).await? else {
            return Ok(()); // acknowledged meanwhile
        };
        if owner != self.cfg.consumer {
            return Ok(());
        }
        let job = Job {
            fields: fields_of(&entry),
            id: entry.id,
            attempt,
        };
        let video = job.fields.get("video_id").cloned().unwrap_or_default();
        tracing::info!(entry = %job.id, video = %video, attempt, "job");

        // A malformed entry is nobody's upload: it is dead-lettered without touching any
        // video (a forged entry naming someone's video must not fail it).
        if let Err(why) = check_fields(&job.fields) {
            return self
                .dead_letter(&job, &format!("malformed job: {why}"), None, shutdown)
                .await;
        }
        if job.fields.get("action").map(String::as_str) == Some("delete") {
            return self.delete_media(&job, &video, shutdown).await;
        }
        if attempt > MAX_DELIVERIES {
            let last: Option<String> = redis::cmd("HGET")
                .arg(ERRORS)
                .arg(&job.id)
                .query_async(&mut self.conn)
                .await?;
            let why = last.unwrap_or_else(|| {
                "the worker processing it stopped before finishing (crash or timeout)".into()
            });
            return self
                .dead_letter(
                    &job,
                    &format!("gave up after {MAX_DELIVERIES} attempts: {why}"),
                    Some(&gave_up()),
                    shutdown,
                )
                .await;
        }

        if attempt > 1 {
            METRICS.job_retries.inc();
        }
        let ended = self.run_with_lease(&job, &video, shutdown).await?;
        match ended {
            Ok(Ended::Done) => self.ack(&job).await,
            Ok(Ended::Pending) => {
                self.outcome = Some("handed_back");
                Ok(())
            }
            Err(e) if e.permanent => {
                self.outcome = Some("refused");
                tracing::info!(entry = %job.id, video = %video, code = e.refusal.code,
                    detail = %e.detail, "the upload is refused");
                if self
                    .send_failed(&job, &video, &e.refusal, true, shutdown)
                    .await
                {
                    self.ack(&job).await
                } else {
                    self.hand_back(&job).await
                }
            }
            Err(e) if job.attempt >= MAX_DELIVERIES => {
                self.dead_letter(
                    &job,
                    &format!("gave up after {MAX_DELIVERIES} attempts: {}", e.detail),
                    Some(&gave_up()),
                    shutdown,
                )
                .await
            }
            Err(e) => {
                tracing::warn!(entry = %job.id, error = %e.detail, "attempt failed; will be retried");
                redis::cmd("HSET")
                    .arg(ERRORS)
                    .arg(&job.id)
                    .arg(&e.detail)
                    .query_async::<()>(&mut self.conn)
                    .await?;
                self.outcome = Some("retried");
                // Informational (the job stays pending either way), so an undelivered one is
                // simply dropped at shutdown.
                self.send_failed(&job, &video, &e.refusal, false, shutdown)
                    .await;
                Ok(())
            }
        }
    }

    /// Runs the job while keeping its lease, and applies the shutdown policy.
    async fn run_with_lease(
        &mut self,
        job: &Job,
        video: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<Ended, JobError>> {
        let mut conn = self.conn.clone();
        let consumer = self.cfg.consumer.clone();
        let mut work = Box::pin(run_job(&self.cfg, job, video));
        let mut heartbeat = tokio::time::interval(self.cfg.claim_timeout / 3);
        heartbeat.tick().await;
        let mut deadline: Option<tokio::time::Instant> = None;
        let outcome = loop {
            let grace = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = &mut work => break Some(result),
                _ = heartbeat.tick() => {
                    match pending_info(&mut conn, &job.id).await {
                        Ok(Some((owner, _))) if owner == consumer => {
                            let _ = redis::cmd("XCLAIM").arg(STREAM).arg(GROUP)
                                .arg(&consumer).arg(0).arg(&job.id).arg("JUSTID")
                                .query_async::<Value>(&mut conn).await;
                        }
                        Ok(_) => {
                            tracing::warn!(entry = %job.id, "another worker took this job over; abandoning it");
                            break Some(Ok(Ended::Pending));
                        }
                        Err(e) => tracing::warn!(error = %e, "lease heartbeat failed"),
                    }
                }
                _ = shutdown.changed(), if deadline.is_none() => {
                    tracing::info!(entry = %job.id, grace_secs = self.cfg.shutdown_grace.as_secs_f64(),
                        "shutting down: letting the current job finish");
                    deadline = Some(tokio::time::Instant::now() + self.cfg.shutdown_grace);
                }
                _ = grace => break None,
            }
        };
        // Dropping the job kills its ffmpeg and removes its work directory.
        drop(work);
        match outcome {
            Some(result) => Ok(result),
            None => {
                tracing::warn!(entry = %job.id, "shutdown grace over: handing the job back");
                self.hand_back(job).await?;
                Ok(Ok(Ended::Pending))
            }
        }
    }

    /// `action=delete`: the video is gone from the app; remove its ladder, source and upload.
    async fn delete_media(
        &mut self,
        job: &Job,
        video: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<()> {
        let root = self.cfg.media_dir.clone();
        // The tombstone first: from now on the origin refuses the video's upload URL (410),
        // so no upload can land after its files are removed.
        let tombstone = crate::config::tombstone(&root, video);
        if let Err(e) = fsutil::write_atomic(&tombstone, now_unix().to_string().as_bytes()) {
            tracing::error!(video, error = %e, "cannot write the deleted video's tombstone; retrying");
            return self.hand_back(job).await;
        }
        let removed = [
            root.join("media").join(video),
            root.join("sources").join(video),
            root.join("uploads").join(video),
        ]
        .into_iter()
        .filter(|p| {
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            gone.is_ok()
        })
        .count();
        tracing::info!(video, removed, "media deleted");
        let event = Event::new(
            format!("media.deleted:{video}:{}", job.id),
            "media.deleted",
            video,
            json!({}),
        );
        // The app has usually deleted the video already and answers 404: that is the
        // acknowledgement too.
        if self.deliver_before_stop(&event, shutdown).await.is_none() {
            return self.hand_back(job).await;
        }
        self.ack(job).await
    }

    async fn hand_back(&mut self, job: &Job) -> Result<()> {
        redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.cfg.consumer)
            .arg(0)
            .arg(&job.id)
            .arg("IDLE")
            .arg(self.cfg.claim_timeout.as_millis() as u64)
            .arg("RETRYCOUNT")
            .arg(job.attempt.saturating_sub(1))
            .arg("JUSTID")
            .query_async::<Value>(&mut self.conn)
            .await?;
        self.outcome = Some("handed_back");
        Ok(())
    }

    async fn ack(&mut self, job: &Job) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        finish(&mut pipe, job);
        pipe.query_async::<()>(&mut self.conn).await?;
        self.outcome.get_or_insert("succeeded");
        tracing::info!(entry = %job.id, "job acknowledged");
        Ok(())
    }

    /// Reports a failed attempt; `false` if the worker had to stop before the app took it.
    async fn send_failed(
        &self,
        job: &Job,
        video: &str,
        refusal: &Refusal,
        last: bool,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let event = Event::new(
            format!("transcode.failed:{video}:{}:{}", job.id, job.attempt),
            "transcode.failed",
            video,
            json!({"code": refusal.code, "error": refusal.message, "final": last}),
        );
        self.deliver_before_stop(&event, shutdown).await.is_some()
    }

    /// Delivers an event, retrying while the app is unreachable, but once the worker is told to
    /// stop only for `shutdown_grace`: then `None`, and the caller hands the job back (events
    /// are idempotent by id, so the next worker may send it again).
    async fn deliver_before_stop(
        &self,
        event: &Event,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<Delivery> {
        let mut stop = shutdown.clone();
        let grace = self.cfg.shutdown_grace;
        let stopping = async move {
            // A closed channel means the process is going away too.
            let _ = stop.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            delivery = self.cfg.events.deliver(event) => Some(delivery),
            _ = stopping => {
                tracing::warn!(event = %event.id, kind = %event.kind,
                    "shutdown grace over before the app took the event; handing the job back");
                None
            }
        }
    }

    /// Moves the entry to the dead-letter stream (fields + `error`, the operator's detail) and,
    /// with `fail_video`, fails the video with that reason. The event goes first, then XADD +
    /// XACK in one transaction, so a crash in between redelivers the entry rather than losing it.
    async fn dead_letter(
        &mut self,
        job: &Job,
        error: &str,
        fail_video: Option<&Refusal>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<()> {
        let video = job.fields.get("video_id").cloned().unwrap_or_default();
        if let Some(refusal) = fail_video {
            if !self.send_failed(job, &video, refusal, true, shutdown).await {
                return self.hand_back(job).await;
            }
        }
        tracing::error!(entry = %job.id, error, "job dead-lettered");
        let mut fields: Vec<(String, String)> = job.fields.clone().into_iter().collect();
        fields.sort();
        fields.push(("error".into(), error.into()));
        fields.push(("original_id".into(), job.id.clone()));
        fields.push(("deliveries".into(), job.attempt.to_string()));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(DEAD)
            .arg("*")
            .arg(&fields)
            .ignore();
        finish(&mut pipe, job);
        pipe.query_async::<()>(&mut self.conn).await?;
        self.outcome = Some("dead_lettered");
        let reason = if fail_video.is_some() {
            "attempts_exhausted"
        } else {
            "malformed"
        };
        METRICS
            .dead_letters
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
        Ok(())
    }
}

/// Reads the queue gauges from Redis at scrape time.
#[derive(Clone)]
pub struct QueueProbe {
    conn: MultiplexedConnection,
}

impl QueueProbe {
    pub async fn sample(&self) {
        let mut conn = self.conn.clone();
        let read = async {
            let length: i64 = redis::cmd("XLEN")
                .arg(STREAM)
                .query_async(&mut conn)
                .await?;
            let dead: i64 = redis::cmd("XLEN").arg(DEAD).query_async(&mut conn).await?;
            let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(STREAM)
                .query_async(&mut conn)
                .await?;
            let lag = groups
                .iter()
                .find(|g| g.get("name").and_then(text).as_deref() == Some(GROUP))
                .and_then(|g| match g.get("lag") {
                    Some(Value::Int(n)) => Some(*n),
                    // Redis reports nil when the lag cannot be computed (after deletions): the
                    // entries not yet delivered are then at most the stream's length.
                    _ => None,
                })
                .unwrap_or(length);
            // The summary form: [count, smallest id, greatest id, consumers].
            let summary: Value = redis::cmd("XPENDING")
                .arg(STREAM)
                .arg(GROUP)
                .query_async(&mut conn)
                .await?;
            let (pending, oldest) = match summary {
                Value::Array(items) => (
                    match items.first() {
                        Some(Value::Int(n)) => *n,
                        _ => 0,
                    },
                    items.get(1).and_then(text),
                ),
                _ => (0, None),
            };
            Ok::<_, redis::RedisError>((length, dead, lag, pending, oldest))
        };
        match read.await {
            Ok((length, dead, lag, pending, oldest)) => {
                METRICS.queue_length.set(length);
                METRICS.dead_letter_length.set(dead);
                METRICS.queue_lag.set(lag);
                METRICS.queue_pending.set(pending);
                // An entry id is `<ms since the epoch>-<seq>`: its age is when it was added.
                let age = oldest
                    .and_then(|id| id.split('-').next()?.parse::<i64>().ok())
                    .map(|ms| (now_unix() as f64 - ms as f64 / 1000.0).max(0.0))
                    .unwrap_or(0.0);
                METRICS.queue_oldest_pending_age.set(age);
            }
            Err(e) => {
                METRICS.queue_scrape_errors.inc();
                tracing::warn!(error = %e, "cannot read the queue for metrics");
            }
        }
    }
}

async fn pending_info(
    conn: &mut MultiplexedConnection,
    id: &str,
) -> Result<Option<(String, usize)>> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .next()
        .map(|p| (p.consumer, p.times_delivered)))
}

/// A work directory `media/.tmp-<video>-<random>/` guarded by an exclusive lock on the sibling
/// file `<dir>.lock`: the OS drops the lock when the process dies (even by SIGKILL), which is
/// how a starting worker tells a dead worker's leftovers from a live worker's output.
struct WorkDir {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: std::fs::File,
    published: bool,
}

impl WorkDir {
    fn create(media: &Path, video: &str) -> std::io::Result<WorkDir> {
        let path = media.join(format!(".tmp-{video}-{}", fsutil::random_hex(6)));
        let lock_path = path.with_extension("lock");
        let lock = std::fs::File::create(&lock_path)?;
        lock.lock()?;
        std::fs::create_dir(&path)?;
        Ok(WorkDir {
            path,
            lock_path,
            _lock: lock,
            published: false,
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

pub fn clean_leftovers(media: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(media)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(".tmp-") || !path.is_dir() {
            continue;
        }
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        if lock.try_lock().is_ok() {
            std::fs::remove_dir_all(&path)?;
            let _ = std::fs::remove_file(&lock_path);
            tracing::info!(dir = %path.display(), "removed a dead worker's work directory");
            n += 1;
        }
    }
    Ok(n)
}

const LADDER_FILE: &str = "ladder.json";

async fn deliver_or_log(events: &EventSender, event: &Event) {
    if let Delivery::Rejected(status, body) = events.deliver(event).await {
        // Retrying cannot change a 4xx (e.g. the video was deleted meanwhile); the job is
        // finished as far as the queue is concerned.
        tracing::error!(event = %event.id, status, body, "the app refused the event for good");
    }
}

async fn run_job(cfg: &WorkConfig, job: &Job, video: &str) -> Result<Ended, JobError> {
    let media = cfg.media_dir.join("media");
    let final_dir = media.join(video);
    let completed_id = format!("transcode.completed:{video}:{}", job.id);

    // A crash between publishing the ladder and acknowledging the job: announce what is there.
    if let Ok(text) = std::fs::read(final_dir.join(LADDER_FILE)) {
        if let Ok(data) = serde_json::from_slice::<serde_json::Value>(&text) {
            tracing::info!(video, "ladder already published; announcing it again");
            deliver_or_log(
                &cfg.events,
                &Event::new(completed_id, "transcode.completed", video, data),
            )
            .await;
            return Ok(Ended::Done);
        }
    }

    deliver_or_log(
        &cfg.events,
        &Event::new(
            format!("transcode.started:{video}:{}:{}", job.id, job.attempt),
            "transcode.started",
            video,
            json!({"attempt": job.attempt}),
        ),
    )
    .await;

    // Derived from the video id, never taken from the queue entry.
    let source_path = cfg.media_dir.join("sources").join(video);
    let (input, probe) = transcode::probe(&cfg.tools, &source_path, &cfg.limits).await?;
    tracing::info!(
        video,
        container = input.container.demuxer(),
        width = probe.width,
        height = probe.height,
        fps = probe.fps(),
        duration = probe.duration,
        audio = probe.audio_index.is_some(),
        "probed"
    );

    let mut work = WorkDir::create(&media, video)
        .map_err(|e| JobError::retry(format!("cannot create a work directory: {e}")))?;

    // Progress goes out from its own task, newest value wins: a slow events endpoint never
    // stalls ffmpeg's progress pipe.
    let (tx, mut rx) = watch::channel(0u32);
    let progress_events = cfg.events.clone();
    let (progress_video, progress_prefix) =
        (video.to_string(), format!("{}:{}", job.id, job.attempt));
    let progress_task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let pct = *rx.borrow_and_update();
            let event = Event::new(
                format!("transcode.progress:{progress_video}:{progress_prefix}:{pct}"),
                "transcode.progress",
                &progress_video,
                json!({"percent": pct}),
            );
            // Best effort: never retried, so what is not accepted at once is dropped.
            let outcome = match progress_events.send_once(&event).await {
                Ok((status, _)) if status.is_success() => "accepted",
                Ok(_) => "dropped",
                Err(e) => {
                    tracing::debug!(error = %e, "progress event not delivered (best effort)");
                    "dropped"
                }
            };
            METRICS.event_delivery(&event.kind, outcome);
        }
    });
    let mut throttle = Throttle::default();
    let budget = cfg.limits.encode_budget(probe.duration);
    let encoded = transcode::encode(&cfg.tools, &input, &probe, &work.path, budget, |pct| {
        if let Some(p) = throttle.admit(pct.min(99.0)) {
            let _ = tx.send(p);
        }
    })
    .await;
    drop(tx);
    progress_task.abort();
    let data = encoded?;

    let ladder = serde_json::to_vec_pretty(&data).expect("serialises");
    let path = work.path.clone();
    let final_clone = final_dir.clone();
    let media_clone = media.clone();
    let published = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        std::fs::write(path.join(LADDER_FILE), &ladder)?;
        fsutil::sync_tree(&path)?;
        match std::fs::rename(&path, &final_clone) {
            Ok(()) => {
                fsutil::sync_dir(&media_clone)?;
                Ok(true)
            }
            // Another worker published this video first; theirs stands.
            Err(_) if final_clone.join(LADDER_FILE).exists() => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await
    .expect("publishing does not panic")
    .map_err(|e| JobError::retry(format!("cannot publish the ladder: {e}")))?;
    work.published = published;
    drop(work);

    let data = if published {
        data
    } else {
        serde_json::from_slice(&std::fs::read(final_dir.join(LADDER_FILE)).unwrap_or_default())
            .unwrap_or(data)
    };
    deliver_or_log(
        &cfg.events,
        &Event::new(completed_id, "transcode.completed", video, data),
    )
    .await;
    Ok(Ended::Done)
}

/// The reason a video is given when its job is dead-lettered after its attempts ran out.
fn gave_up() -> Refusal {
    Refusal::new(
        TRANSCODE_FAILED,
        format!(
            "the video could not be transcoded in {MAX_DELIVERIES} attempts; upload it again, \
             and if it fails again contact the operator"
        ),
    )
}

/// Checks a queue entry's fields (docs/pipeline.md, "Jobs"): `Err` says what is malformed.
/// The worker reads only `action` and `video_id`; a `source`, which older apps sent, must be
/// the one the video id implies (anything else is a forged or corrupted entry).
pub fn check_fields(fields: &HashMap<String, String>) -> Result<(), String> {
    let video = fields.get("video_id").map(String::as_str).unwrap_or("");
    if !is_safe_id(video) {
        return Err("no valid video_id".into());
    }
    match fields.get("action").map(String::as_str) {
        None | Some("transcode") => {
            if let Some(source) = fields.get("source") {
                if *source != format!("sources/{video}") {
                    return Err(format!(
                        "source `{source}` is not the video's own upload (sources/{video})"
                    ));
                }
            }
            Ok(())
        }
        Some("delete") => Ok(()),
        Some(other) => Err(format!("unknown action `{other}`")),
    }
}

/// What ends a job's life in the stream, whatever the outcome: acknowledged, and its recorded
/// error dropped. Added to the caller's transaction.
fn finish(pipe: &mut redis::Pipeline, job: &Job) {
    pipe.cmd("XACK")
        .arg(STREAM)
        .arg(GROUP)
        .arg(&job.id)
        .ignore()
        .cmd("HDEL")
        .arg(ERRORS)
        .arg(&job.id)
        .ignore();
}
