//! `POST /internal/v1/events`: what the native side reports (docs/pipeline.md). Signed like a
//! webhook; applied idempotently (by event id, and by the forward-only status rule) so the
//! sender can retry until it gets a 2xx.

use serde::Deserialize;
use spin_sdk::http::Response;
use spin_sdk::sqlite3::{Connection, Value};
use streamgate_core::api_error::ApiError;
use streamgate_core::pipeline::{EventData, EventKind, Job};
use streamgate_core::settings::JobTransport;
use streamgate_core::trace::TraceContext;
use streamgate_core::video::{
    failure_code, failure_sentence, validate_tracks, AudioTrack, Rendition, VideoStatus,
};
use streamgate_core::{event_signature, keys};
use streamgate_spin::config::Spin;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::secrets::Rotating;
use streamgate_spin::{now, response, trace};

use crate::{queue, store};

/// The largest event body read. `transcode.completed` carries every segment of every track
/// (about 50 bytes each): with the native side's defaults (4 s segments, sources up to 4 h, five
/// video rungs and one audio track) that is 3,600 x 6 segments, about 1.1 MB. 4 MiB leaves room
/// for sources up to about 15 h; everything else the native side sends is under 1 KiB.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The envelope as sent; the data is decoded as [`EventData`] when the event is applied (after
/// the duplicate check and the video lookup), so an event's own errors come in that order.
#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    video_id: String,
    #[serde(default)]
    data: serde_json::Value,
    /// The sender's span (docs/pipeline.md); absent from senders before trace contexts.
    #[serde(default)]
    traceparent: Option<String>,
}

/// `transcode.completed`'s data, which [`EventData`] carries as the ladder's JSON.
#[derive(Deserialize)]
struct Completed {
    renditions: Vec<Rendition>,
    /// Separate audio tracks; absent from workers that mux audio into each rendition.
    #[serde(default)]
    audio: Vec<AudioTrack>,
    #[serde(default)]
    poster: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
}

fn event_keys() -> Result<Vec<[u8; 32]>, ApiError> {
    let secrets = Rotating::load("events_secret")?;
    Ok(secrets
        .all()
        .map(|secret| keys::derive(secret, "events"))
        .collect())
}

fn invalid_data(event: &Event, e: serde_json::Error) -> ApiError {
    ApiError::new(
        422,
        "invalid_event",
        format!("`{}` event data: {e}", event.kind),
    )
}

/// The event's type and data as the native side builds them (streamgate_core::pipeline):
/// 422 `invalid_event` for an unknown type or data that is not that type's.
fn data(event: &Event) -> Result<EventData, ApiError> {
    if EventKind::parse(&event.kind).is_none() {
        return Err(ApiError::new(
            422,
            "invalid_event",
            format!("unknown event type `{}`", event.kind),
        ));
    }
    serde_json::from_value(serde_json::json!({"type": event.kind, "data": event.data}))
        .map_err(|e| invalid_data(event, e))
}

/// What can be checked before the body is read (see [`BODY_LIMIT`]): the keys are configured
/// (a short secret is the operator's error, 503, whatever the caller sent) and the signature
/// header could verify.
pub fn check_header(head: &ApiRequest) -> Result<(), ApiError> {
    event_keys()?;
    event_signature::check_header(head.header(event_signature::HEADER), now()).map(drop)
}

pub fn receive(request: &ApiRequest) -> Result<Response, ApiError> {
    let now = now();
    let keys = event_keys()?;
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    event_signature::verify(
        request.header(event_signature::HEADER),
        &key_refs,
        &request.body,
        now,
    )?;
    let event: Event = request.json()?;
    // The event's own trace (the upload's or the job's) is what its consequences continue;
    // the request's, for a sender that does not say.
    let trace = event
        .traceparent
        .as_deref()
        .and_then(TraceContext::parse)
        .unwrap_or_else(|| trace::of_request(request));
    let outcome = apply_once(&event, &trace, now);
    let (level, message, status) = match &outcome {
        Ok(status) => ("INFO", "event received", *status),
        // Not acknowledged: the sender retries (or stops, for a 4xx it cannot fix).
        Err(e) => ("WARN", "event not acknowledged", e.code),
    };
    trace::log(
        level,
        crate::COMPONENT,
        message,
        &trace,
        serde_json::json!({
            "event_id": event.id,
            "type": event.kind,
            "video_id": event.video_id,
            "outcome": status,
        }),
    );
    Ok(response::json(
        200,
        &serde_json::json!({ "status": outcome? }),
    ))
}

/// The event's effect, once: `applied` or `duplicate`.
fn apply_once(event: &Event, trace: &TraceContext, now: i64) -> Result<&'static str, ApiError> {
    let db = store::open()?;
    // The check for a duplicate, the event's effect and the record of its id are one
    // transaction: a crash or an error anywhere leaves none of them, and of two deliveries of
    // the same event at once the second waits for the first and finds it recorded. The queue
    // is not called in it: the host gives a transaction the database to itself, so every SQL
    // statement of the app would wait on the queue. A job goes into `job_outbox` instead, and
    // is handed to the queue after the commit.
    let status = store::in_transaction(&db, || {
        if store::event_seen(&db, &event.id)? {
            return Ok("duplicate");
        }
        // 404 for a video that does not exist (deleted meanwhile): the sender stops retrying.
        store::video(&db, &event.video_id)?;
        apply(&db, event, now)?;
        store::record_event(&db, &event.id, &event.video_id, &event.kind, now)?;
        Ok("applied")
    })?;
    // A duplicate is the sender retrying, possibly because the queue refused its job last
    // time: the job still waits in the outbox and goes now. Until the queue has it, the answer
    // is 503 and the sender keeps retrying, so the job is not lost.
    if status == "duplicate" || EventKind::parse(&event.kind) == Some(EventKind::UploadCompleted) {
        hand_off_jobs(&db, &event.video_id, trace)?;
    }
    Ok(status)
}

/// How long a request may hold an outbox row while it calls the queue: longer than the host's
/// request deadline (30 s by default), so a live request never loses its row to another.
const CLAIM_SECS: i64 = 120;

/// Hands the video's outbox jobs to the queue, each at least once: a crash between the queue's
/// append and the row's deletion queues it again on the next delivery. The job continues
/// `trace`, the trace of the event in hand: the row was written by this event, or by an earlier
/// delivery of it (the native side keeps an event's `traceparent` across its retries), so it is
/// the trace of the upload whose job this is, with no column of its own in the outbox.
fn hand_off_jobs(db: &Connection, video_id: &str, trace: &TraceContext) -> Result<(), ApiError> {
    let mut held_elsewhere = false;
    let jobs = store::pending_jobs(db, video_id)?;
    if jobs.is_empty() {
        return Ok(());
    }
    let transport = JobTransport::load(&Spin)?;
    for job in jobs {
        let now = now();
        if !store::claim_job(db, job.row, now, now + CLAIM_SECS)? {
            held_elsewhere = true;
            continue;
        }
        let handed = job.job.clone().enqueued(now);
        let queued = queue::enqueue(&handed.with_trace(&trace::child(trace)), &transport);
        match queued {
            Ok(stream_id) => {
                trace::log(
                    "INFO",
                    crate::COMPONENT,
                    "job enqueued",
                    trace,
                    serde_json::json!({
                        "video_id": job.job.video_id(),
                        "action": job.job.action(),
                        "stream_id": stream_id,
                    }),
                );
                store::job_handed_off(db, &job, &stream_id, now)?
            }
            Err(refused) => {
                // Best effort: if this fails too, the claim lapses by itself.
                let _ = store::release_job(db, job.row);
                return Err(refused);
            }
        }
    }
    if held_elsewhere {
        // Another delivery is handing it over right now, or died doing so (its claim lapses):
        // acknowledging would stop this sender's retries with the job possibly never queued.
        return Err(ApiError::new(
            503,
            "job_pending",
            "this video's transcode job is being handed to the queue; retry",
        )
        .with_retry_after(2));
    }
    Ok(())
}

fn apply(db: &Connection, event: &Event, now: i64) -> Result<(), ApiError> {
    let id = event.video_id.as_str();
    match data(event)? {
        EventData::UploadCompleted { source, .. } => {
            if store::advance(db, id, VideoStatus::Queued, now)? {
                store::set_field(db, id, "source", Value::Text(source.clone()))?;
                store::add_to_outbox(db, &Job::transcode(id, &source, now), now)?;
            }
        }
        EventData::TranscodeStarted { .. } => {
            store::advance(db, id, VideoStatus::Transcoding, now)?;
        }
        EventData::TranscodeProgress { percent } => {
            store::record_progress(db, id, i64::from(percent.min(100)), now)?;
        }
        EventData::TranscodeCompleted(ladder) => {
            let done: Completed =
                serde_json::from_value(ladder).map_err(|e| invalid_data(event, e))?;
            validate_tracks(&done.renditions, &done.audio)?;
            let current = store::video(db, id)?;
            if current.status == VideoStatus::Ready.as_str() {
                return Ok(());
            }
            // Tracks first, status last: nothing reads tracks until the video is ready.
            store::replace_tracks(db, id, &done.renditions, &done.audio)?;
            if let Some(poster) = &done.poster {
                store::set_field(db, id, "poster", Value::Text(poster.clone()))?;
            }
            if let Some(duration) = done.duration {
                store::set_field(db, id, "duration", Value::Real(duration))?;
            }
            store::set_field(db, id, "progress", Value::Integer(100))?;
            if !store::advance(db, id, VideoStatus::Ready, now)? {
                return Err(ApiError::new(
                    409,
                    "invalid_transition",
                    format!(
                        "video `{id}` is `{}`, it cannot become ready",
                        current.status
                    ),
                ));
            }
        }
        EventData::TranscodeFailed { code, error, last } => {
            // An empty code (older workers sent none) is stored as the generic one.
            if last {
                store::fail(
                    db,
                    id,
                    failure_code(Some(&code)),
                    &failure_sentence(Some(&error)),
                    now,
                )?;
            }
        }
        EventData::MediaDeleted {} => {}
    }
    Ok(())
}
