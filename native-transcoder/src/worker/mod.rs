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

//! The files: `queue` (the Redis stream), `job` (decoding an entry and what each action does),
//! `workdir` (where a transcode writes), `retry` (when a failure is retried or given up); this
//! one is the loop that ties them together.

mod job;
mod queue;
mod retry;
mod workdir;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use redis::streams::StreamId;
use streamgate_core::pipeline;
use streamgate_core::trace::TraceContext;
use tokio::sync::watch;
use tracing::Instrument;

use crate::events::{Delivery, Event, EventData, EventSender};
use crate::intake::{Refusal, SourceLimits};
use crate::metrics::METRICS;
use crate::transcode::{JobError, Tools};
use job::{Ended, Job};
use queue::Queue;
use retry::{Admission, AfterFailure};

pub use job::check_fields;
pub use queue::{QueueProbe, DEAD, ERRORS, GROUP, STREAM};
pub use retry::MAX_DELIVERIES;
pub use workdir::clean_leftovers;

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

pub struct Worker {
    cfg: WorkConfig,
    queue: Queue,
    /// How the entry being processed ended, for the jobs metric (set by ack, hand_back,
    /// dead_letter and the retry branch).
    outcome: Option<&'static str>,
}

impl Worker {
    pub async fn connect(cfg: WorkConfig) -> Result<Worker> {
        let queue = Queue::connect(&cfg.redis_url, &cfg.consumer, cfg.claim_timeout).await?;
        Ok(Worker {
            cfg,
            queue,
            outcome: None,
        })
    }

    /// What the metrics listener reads the queue gauges with: its own connection, so a scrape
    /// never waits behind a blocking read.
    pub async fn queue_probe(&self) -> Result<QueueProbe> {
        QueueProbe::connect(&self.cfg.redis_url).await
    }

    fn media(&self) -> PathBuf {
        self.cfg.media_dir.join("media")
    }

    /// Removes work directories of workers that died (their lock is free).
    pub fn clean_leftovers(&self) -> Result<usize> {
        clean_leftovers(&self.media())
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let block_ms = (self.queue.claim_ms() / 2).clamp(100, 2000);
        let mut cursor = "0-0".to_string();
        tracing::info!(consumer = %self.cfg.consumer, stream = STREAM, group = GROUP, "worker ready");
        while !*shutdown.borrow() {
            let next = match self
                .queue
                .next_entry(&mut cursor, block_ms, &mut shutdown)
                .await
            {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "Redis error; retrying in 1 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    let _ = self.queue.reconnect(&self.cfg.redis_url).await;
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

    /// Handles one entry and records how it ended.
    async fn process(
        &mut self,
        entry: StreamId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let action = job::action_label(&entry);
        self.outcome = None;
        // Every line logged while the job is processed carries its trace id (docs/operations.md).
        // An ERROR-level span, so that no level filter (RUST_LOG=warn, say) drops it and with it
        // the trace id of the lines that are logged.
        let trace = job::trace_of(&entry);
        let span = tracing::error_span!("job", trace_id = %trace.trace_id());
        let result = self
            .process_entry(entry, trace, shutdown)
            .instrument(span)
            .await;
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
        trace: TraceContext,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let Some((owner, attempt)) = self.queue.pending_info(&entry.id).await? else {
            return Ok(()); // acknowledged meanwhile
        };
        if owner != self.cfg.consumer {
            return Ok(());
        }
        let job = Job::decode(entry, attempt, trace);
        let video = job.video();
        tracing::info!(entry = %job.id, video = %video, attempt, "job");

        // A malformed entry is nobody's upload: it is dead-lettered without touching any
        // video (a forged entry naming someone's video must not fail it).
        let decoded = match &job.decoded {
            Ok(decoded) => decoded,
            Err(why) => {
                return self
                    .dead_letter(&job, &format!("malformed job: {why}"), None, shutdown)
                    .await;
            }
        };
        if let pipeline::Job::Delete { .. } = decoded {
            return self.delete_media(&job, &video, shutdown).await;
        }
        if retry::admit(attempt) == Admission::GiveUp {
            let last = self.queue.last_error(&job.id).await?;
            let why = last.unwrap_or_else(|| {
                "the worker processing it stopped before finishing (crash or timeout)".into()
            });
            return self
                .dead_letter(
                    &job,
                    &format!("gave up after {MAX_DELIVERIES} attempts: {why}"),
                    Some(&job::gave_up()),
                    shutdown,
                )
                .await;
        }

        if attempt > 1 {
            METRICS.job_retries.inc();
        }
        let e = match self.run_with_lease(&job, &video, shutdown).await? {
            Ok(Ended::Done) => return self.ack(&job).await,
            Ok(Ended::Pending) => {
                self.outcome = Some("handed_back");
                return Ok(());
            }
            Err(e) => e,
        };
        match retry::after_failure(e.permanent, job.attempt) {
            AfterFailure::Refuse => {
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
            AfterFailure::DeadLetter => {
                self.dead_letter(
                    &job,
                    &format!("gave up after {MAX_DELIVERIES} attempts: {}", e.detail),
                    Some(&job::gave_up()),
                    shutdown,
                )
                .await
            }
            AfterFailure::Retry => {
                tracing::warn!(entry = %job.id, error = %e.detail, "attempt failed; will be retried");
                self.queue.record_error(&job.id, &e.detail).await?;
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
        let mut lease = self.queue.lease();
        let mut work = Box::pin(job::run_job(&self.cfg, job, video));
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
                    match lease.renew(&job.id).await {
                        Ok(true) => {}
                        Ok(false) => {
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
        let removed = match job::remove_media(&self.cfg.media_dir, video) {
            Ok(removed) => removed,
            Err(e) => {
                tracing::error!(video, error = %e, "cannot write the deleted video's tombstone; retrying");
                return self.hand_back(job).await;
            }
        };
        tracing::info!(video, removed, "media deleted");
        let event = job.event(
            format!("media.deleted:{video}:{}", job.id),
            video,
            EventData::MediaDeleted {},
        );
        // The app has usually deleted the video already and answers 404: that is the
        // acknowledgement too.
        if self.deliver_before_stop(&event, shutdown).await.is_none() {
            return self.hand_back(job).await;
        }
        self.ack(job).await
    }

    async fn hand_back(&mut self, job: &Job) -> Result<()> {
        self.queue.hand_back(&job.id, job.attempt).await?;
        self.outcome = Some("handed_back");
        Ok(())
    }

    async fn ack(&mut self, job: &Job) -> Result<()> {
        self.queue.ack(&job.id).await?;
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
        let event = job.event(
            format!("transcode.failed:{video}:{}:{}", job.id, job.attempt),
            video,
            EventData::TranscodeFailed {
                code: refusal.code.to_string(),
                error: refusal.message.clone(),
                last,
            },
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
                tracing::warn!(event = %event.id, kind = event.kind(),
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
        let video = job.video();
        if let Some(refusal) = fail_video {
            if !self.send_failed(job, &video, refusal, true, shutdown).await {
                return self.hand_back(job).await;
            }
        }
        tracing::error!(entry = %job.id, error, "job dead-lettered");
        let extra = [
            ("error".to_string(), error.to_string()),
            ("original_id".to_string(), job.id.clone()),
            ("deliveries".to_string(), job.attempt.to_string()),
        ];
        self.queue.dead_letter(&job.id, &job.fields, &extra).await?;
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
