//! One job: decoding a stream entry, and what each action does to the media store (a
//! transcode into a work directory published as the video's ladder, or a delete).

use std::collections::HashMap;
use std::path::Path;

use redis::streams::StreamId;
use streamgate_core::pipeline::{self, MalformedJob};
use streamgate_core::trace::{self, TraceContext};
use tokio::sync::watch;
use tracing::Instrument;

use super::queue::text;
use super::retry::MAX_DELIVERIES;
use super::workdir::WorkDir;
use super::WorkConfig;
use crate::events::{Delivery, Event, EventData, EventSender};
use crate::fsutil;
use crate::intake::Refusal;
use crate::metrics::METRICS;
use crate::transcode::{self, JobError, Throttle, TRANSCODE_FAILED};

/// A stream entry being worked on; `attempt` is its delivery count. `fields` are kept as
/// written, for the dead-letter entry.
pub(super) struct Job {
    pub(super) id: String,
    pub(super) fields: HashMap<String, String>,
    pub(super) attempt: usize,
    /// The entry as a job, or why it is not one.
    pub(super) decoded: Result<pipeline::Job, MalformedJob>,
    /// The trace the job continues (see [`trace_of`]).
    pub(super) trace: TraceContext,
}

impl Job {
    pub(super) fn decode(entry: StreamId, attempt: usize, trace: TraceContext) -> Job {
        let fields = fields_of(&entry);
        Job {
            decoded: pipeline::Job::from_fields(&fields),
            fields,
            id: entry.id,
            attempt,
            trace,
        }
    }

    /// An event about this job, sent from a new span of its trace.
    pub(super) fn event(&self, id: String, video: &str, data: EventData) -> Event {
        Event::new(id, video, data).with_trace(&crate::trace::child(&self.trace))
    }

    /// The video id of a well-formed entry; else the `video_id` field as written (empty when
    /// absent), for the logs.
    pub(super) fn video(&self) -> String {
        match &self.decoded {
            Ok(job) => job.video_id().to_string(),
            Err(_) => self.fields.get("video_id").cloned().unwrap_or_default(),
        }
    }
}

/// The trace of the request the entry comes from (its `traceparent`), or a fresh one for an
/// entry without a valid one (written before trace contexts, or by hand), so that every job's
/// log lines and events still share one trace id. Read from the raw fields: a malformed entry
/// is logged under a trace too.
pub(super) fn trace_of(entry: &StreamId) -> TraceContext {
    crate::trace::continue_or_fresh(fields_of(entry).get(trace::HEADER).map(String::as_str))
}

/// The entry's action as a metrics label.
pub(super) fn action_label(entry: &StreamId) -> &'static str {
    pipeline::Job::from_fields(&fields_of(entry)).map_or("unknown", |job| job.action())
}

fn fields_of(entry: &StreamId) -> HashMap<String, String> {
    entry
        .map
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
        .collect()
}

pub(super) enum Ended {
    Done,
    /// Left pending on purpose (retryable failure, lost lease, handed back).
    Pending,
}

/// `action=delete`, the file side: the tombstone first (from then on the origin refuses the
/// video's upload URL, 410, so no upload can land after its files are removed), then the
/// ladder, source and upload. `Err` if the tombstone could not be written; else how many of
/// the three were removed.
pub(super) fn remove_media(root: &Path, video: &str) -> std::io::Result<usize> {
    let tombstone = crate::config::tombstone(root, video);
    fsutil::write_atomic(&tombstone, streamgate_core::now().to_string().as_bytes())?;
    Ok([
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
    .count())
}

const LADDER_FILE: &str = "ladder.json";

async fn deliver_or_log(events: &EventSender, event: &Event) {
    if let Delivery::Rejected(status, body) = events.deliver(event).await {
        // Retrying cannot change a 4xx (e.g. the video was deleted meanwhile); the job is
        // finished as far as the queue is concerned.
        tracing::error!(event = %event.id, status, body, "the app refused the event for good");
    }
}

pub(super) async fn run_job(cfg: &WorkConfig, job: &Job, video: &str) -> Result<Ended, JobError> {
    let media = cfg.media_dir.join("media");
    let final_dir = media.join(video);
    let completed_id = format!("transcode.completed:{video}:{}", job.id);

    // A crash between publishing the ladder and acknowledging the job: announce what is there.
    if let Ok(text) = std::fs::read(final_dir.join(LADDER_FILE)) {
        if let Ok(data) = serde_json::from_slice::<serde_json::Value>(&text) {
            tracing::info!(video, "ladder already published; announcing it again");
            deliver_or_log(
                &cfg.events,
                &job.event(completed_id, video, EventData::TranscodeCompleted(data)),
            )
            .await;
            return Ok(Ended::Done);
        }
    }

    deliver_or_log(
        &cfg.events,
        &job.event(
            format!("transcode.started:{video}:{}:{}", job.id, job.attempt),
            video,
            EventData::TranscodeStarted {
                attempt: job.attempt as u64,
            },
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
    // stalls ffmpeg's progress pipe. Its log lines are the job's too (its span).
    let (tx, mut rx) = watch::channel(0u32);
    let progress_events = cfg.events.clone();
    let (progress_video, progress_prefix) =
        (video.to_string(), format!("{}:{}", job.id, job.attempt));
    let progress_trace = job.trace;
    let progress = async move {
        while rx.changed().await.is_ok() {
            let pct = *rx.borrow_and_update();
            let event = Event::new(
                format!("transcode.progress:{progress_video}:{progress_prefix}:{pct}"),
                &progress_video,
                EventData::TranscodeProgress { percent: pct },
            )
            .with_trace(&crate::trace::child(&progress_trace));
            // Best effort: never retried, so what is not accepted at once is dropped.
            let outcome = match progress_events.send_once(&event).await {
                Ok((status, _)) if status.is_success() => "accepted",
                Ok(_) => "dropped",
                Err(e) => {
                    tracing::debug!(error = %e, "progress event not delivered (best effort)");
                    "dropped"
                }
            };
            METRICS.event_delivery(event.kind(), outcome);
        }
    };
    let progress_task = tokio::spawn(progress.instrument(tracing::Span::current()));
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
        &job.event(completed_id, video, EventData::TranscodeCompleted(data)),
    )
    .await;
    Ok(Ended::Done)
}

/// The reason a video is given when its job is dead-lettered after its attempts ran out.
pub(super) fn gave_up() -> Refusal {
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
pub fn check_fields(fields: &HashMap<String, String>) -> Result<pipeline::Job, String> {
    pipeline::Job::from_fields(fields).map_err(|e| e.to_string())
}
