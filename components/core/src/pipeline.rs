//! The contract between the app and the native side (docs/pipeline.md): the Redis streams, the
//! jobs the app appends to the job stream, and the events the native side sends back. Both sides
//! build from these definitions, so a misspelt field, action or event type does not compile,
//! and reading a stream entry or an event is one decode.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::trace::TraceContext;

/// The stream the app appends jobs to and the workers read.
pub const JOB_STREAM: &str = "streamgate:jobs";
/// Where a worker moves a job it will not run: the entry's fields plus `error`.
pub const DEAD_LETTER_STREAM: &str = "streamgate:jobs:dead";
/// The last error of each pending entry, so the dead-letter entry can say why.
pub const ERROR_STREAM: &str = "streamgate:jobs:errors";

/// One job. On the stream it is an entry of string fields (see [`Job::fields`]); its serde form
/// is the same fields as a JSON object, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Job {
    /// Transcode the video's upload into its ladder.
    Transcode {
        video_id: String,
        /// `sources/<video_id>`. The worker derives the path from the video id and only checks
        /// this one; the app always sends it, older entries may not have it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// Unix seconds, as the app wrote them; absent from entries not written by the app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enqueued_at: Option<String>,
        /// The W3C `traceparent` of the request that led to the job (see [`Job::trace`]);
        /// absent from entries written before trace contexts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
    /// Remove the video's ladder, source and upload.
    Delete {
        video_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enqueued_at: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
}

/// Why a stream entry is not a job the worker can run; the text goes to the dead-letter entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedJob {
    #[error("no valid video_id")]
    VideoId,
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("source `{named}` is not the video's own upload (sources/{video_id})")]
    ForeignSource { named: String, video_id: String },
    #[error("{0}")]
    Fields(String),
}

/// A video id the worker may use in a path: 1 to 128 of `[A-Za-z0-9_-]`.
pub fn is_valid_video_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Job {
    /// The transcode job an `upload.completed` event leads to.
    pub fn transcode(video_id: &str, source: &str, enqueued_at: i64) -> Job {
        Job::Transcode {
            video_id: video_id.to_string(),
            source: Some(source.to_string()),
            enqueued_at: Some(enqueued_at.to_string()),
            traceparent: None,
        }
    }

    /// The job as handed to the queue at `at` (Unix seconds): a job that waited in the app's
    /// outbox is stamped when it leaves, not when it was decided on.
    pub fn enqueued(mut self, at: i64) -> Job {
        match &mut self {
            Job::Transcode { enqueued_at, .. } | Job::Delete { enqueued_at, .. } => {
                *enqueued_at = Some(at.to_string())
            }
        }
        self
    }

    /// The job that removes a deleted video's media.
    pub fn delete(video_id: &str, enqueued_at: i64) -> Job {
        Job::Delete {
            video_id: video_id.to_string(),
            enqueued_at: Some(enqueued_at.to_string()),
            traceparent: None,
        }
    }

    /// The job, continuing the trace of the request that led to it.
    pub fn with_trace(mut self, trace: &TraceContext) -> Job {
        match &mut self {
            Job::Transcode { traceparent, .. } | Job::Delete { traceparent, .. } => {
                *traceparent = Some(trace.to_string())
            }
        }
        self
    }

    /// The trace context the job carries, if it carries a valid one. An invalid one is only a
    /// lost trace, never a reason to refuse the job: the worker then starts a fresh trace.
    pub fn trace(&self) -> Option<TraceContext> {
        match self {
            Job::Transcode { traceparent, .. } | Job::Delete { traceparent, .. } => {
                traceparent.as_deref().and_then(TraceContext::parse)
            }
        }
    }

    pub fn video_id(&self) -> &str {
        match self {
            Job::Transcode { video_id, .. } | Job::Delete { video_id, .. } => video_id,
        }
    }

    /// `transcode` or `delete`, as on the stream.
    pub fn action(&self) -> &'static str {
        match self {
            Job::Transcode { .. } => "transcode",
            Job::Delete { .. } => "delete",
        }
    }

    /// The stream entry's fields, in the order the app has always written them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("action", self.action().to_string()),
            ("video_id", self.video_id().to_string()),
        ];
        let (source, enqueued_at, traceparent) = match self {
            Job::Transcode {
                source,
                enqueued_at,
                traceparent,
                ..
            } => (source, enqueued_at, traceparent),
            Job::Delete {
                enqueued_at,
                traceparent,
                ..
            } => (&None, enqueued_at, traceparent),
        };
        if let Some(source) = source {
            fields.push(("source", source.clone()));
        }
        if let Some(enqueued_at) = enqueued_at {
            fields.push(("enqueued_at", enqueued_at.clone()));
        }
        if let Some(traceparent) = traceparent {
            fields.push(("traceparent", traceparent.clone()));
        }
        fields
    }

    /// Decodes a stream entry, checked in this order: a usable `video_id`, a known `action`
    /// (none means `transcode`, as older apps wrote), then the action's fields, of which a
    /// `source` must be the video's own upload (anything else is a forged or corrupted entry).
    /// Fields the job does not have are ignored.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<Job, MalformedJob> {
        let video_id = fields.get("video_id").map(String::as_str).unwrap_or("");
        if !is_valid_video_id(video_id) {
            return Err(MalformedJob::VideoId);
        }
        let mut object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        match object.get("action").and_then(|a| a.as_str()) {
            None => {
                object.insert("action".into(), "transcode".into());
            }
            Some("transcode" | "delete") => {}
            Some(other) => return Err(MalformedJob::UnknownAction(other.to_string())),
        }
        let job: Job = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| MalformedJob::Fields(e.to_string()))?;
        if let Job::Transcode {
            source: Some(source),
            video_id,
            ..
        } = &job
        {
            if *source != format!("sources/{video_id}") {
                return Err(MalformedJob::ForeignSource {
                    named: source.clone(),
                    video_id: video_id.clone(),
                });
            }
        }
        Ok(job)
    }
}

/// What the native side reports to the app's events endpoint: the envelope (`id`, unique per
/// event and the same on a retry; `video_id`) and the kind with its data. On the wire (see the
/// `Serialize` impl) `{"id", "type", "video_id", "data"}` in that order, then `traceparent`
/// when the event has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub video_id: String,
    pub data: EventData,
    /// The W3C `traceparent` of the sender's span (the trace of the upload or job the event
    /// is about); absent from events sent before trace contexts.
    pub traceparent: Option<String>,
}

/// One variant per event type; serde's adjacent form is `{"type": <kind>, "data": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    /// The upload is complete; `source` is `sources/<video_id>`.
    #[serde(rename = "upload.completed")]
    UploadCompleted { size: u64, source: String },
    #[serde(rename = "transcode.started")]
    TranscodeStarted { attempt: u64 },
    /// Best effort, never retried.
    #[serde(rename = "transcode.progress")]
    TranscodeProgress { percent: u32 },
    /// The published ladder as the worker wrote it (its `ladder.json`): `renditions`, `audio`,
    /// `poster`, `duration`, which the app checks when it applies the event.
    #[serde(rename = "transcode.completed")]
    TranscodeCompleted(serde_json::Value),
    /// `code`, a fixed snake_case reason; `error`, a sentence for the owner; `final`, whether
    /// the video is failed for good. Workers before failure codes sent no `code`: it decodes
    /// as empty, which the app stores as the generic code (`video::failure_code`).
    #[serde(rename = "transcode.failed")]
    TranscodeFailed {
        #[serde(default)]
        code: String,
        error: String,
        #[serde(rename = "final")]
        last: bool,
    },
    #[serde(rename = "media.deleted")]
    MediaDeleted {},
}

/// The event types without their data, for a receiver that reads the data of some only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    UploadCompleted,
    TranscodeStarted,
    TranscodeProgress,
    TranscodeCompleted,
    TranscodeFailed,
    MediaDeleted,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::UploadCompleted,
        EventKind::TranscodeStarted,
        EventKind::TranscodeProgress,
        EventKind::TranscodeCompleted,
        EventKind::TranscodeFailed,
        EventKind::MediaDeleted,
    ];

    /// The `type` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UploadCompleted => "upload.completed",
            EventKind::TranscodeStarted => "transcode.started",
            EventKind::TranscodeProgress => "transcode.progress",
            EventKind::TranscodeCompleted => "transcode.completed",
            EventKind::TranscodeFailed => "transcode.failed",
            EventKind::MediaDeleted => "media.deleted",
        }
    }

    pub fn parse(kind: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl EventData {
    pub fn event_kind(&self) -> EventKind {
        match self {
            EventData::UploadCompleted { .. } => EventKind::UploadCompleted,
            EventData::TranscodeStarted { .. } => EventKind::TranscodeStarted,
            EventData::TranscodeProgress { .. } => EventKind::TranscodeProgress,
            EventData::TranscodeCompleted(_) => EventKind::TranscodeCompleted,
            EventData::TranscodeFailed { .. } => EventKind::TranscodeFailed,
            EventData::MediaDeleted {} => EventKind::MediaDeleted,
        }
    }

    /// The `type` on the wire.
    pub fn kind(&self) -> &'static str {
        self.event_kind().as_str()
    }
}

impl Event {
    pub fn new(id: impl Into<String>, video_id: &str, data: EventData) -> Event {
        Event {
            id: id.into(),
            video_id: video_id.to_string(),
            data,
            traceparent: None,
        }
    }

    /// The event, sent from `trace`'s span.
    pub fn with_trace(mut self, trace: &TraceContext) -> Event {
        self.traceparent = Some(trace.to_string());
        self
    }

    /// The trace context the event carries, if it carries a valid one.
    pub fn trace(&self) -> Option<TraceContext> {
        self.traceparent.as_deref().and_then(TraceContext::parse)
    }

    pub fn kind(&self) -> &'static str {
        self.data.kind()
    }
}

#[derive(Serialize, Deserialize)]
struct EventWire<T> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    video_id: String,
    data: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        // Through a JSON value, as the senders built events before this type: the data's keys
        // come out in the same (sorted) order, so the bytes, which are signed, are the same.
        let tagged = serde_json::to_value(&self.data).map_err(S::Error::custom)?;
        let data = tagged
            .get("data")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        EventWire {
            id: self.id.clone(),
            kind: self.kind().to_string(),
            video_id: self.video_id.clone(),
            data,
            traceparent: self.traceparent.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        use serde::de::Error;
        let wire = EventWire::<serde_json::Value>::deserialize(deserializer)?;
        let data =
            serde_json::from_value(serde_json::json!({"type": wire.kind, "data": wire.data}))
                .map_err(D::Error::custom)?;
        Ok(Event {
            id: wire.id,
            video_id: wire.video_id,
            data,
            traceparent: wire.traceparent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> HashMap<String, String> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn as_entry(job: &Job) -> HashMap<String, String> {
        job.fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn jobs_are_the_fields_the_app_wrote() {
        // What components/metadata appended before this type: an upload's transcode job and a
        // deleted video's job, field by field in this order.
        let transcode = Job::transcode("v1", "sources/v1", 1_700_000_000);
        assert_eq!(
            transcode.fields(),
            vec![
                ("action", "transcode".to_string()),
                ("video_id", "v1".to_string()),
                ("source", "sources/v1".to_string()),
                ("enqueued_at", "1700000000".to_string()),
            ]
        );
        let delete = Job::delete("v1", 1_700_000_000);
        assert_eq!(
            delete.fields(),
            vec![
                ("action", "delete".to_string()),
                ("video_id", "v1".to_string()),
                ("enqueued_at", "1700000000".to_string()),
            ]
        );
        for job in [transcode, delete] {
            assert_eq!(Job::from_fields(&as_entry(&job)), Ok(job.clone()));
            // The JSON form is the same fields, in the same order.
            let json = serde_json::to_string(&job).unwrap();
            let expected = job
                .fields()
                .iter()
                .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                .collect::<Vec<_>>()
                .join(",");
            assert_eq!(json, format!("{{{expected}}}"));
            assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), job);
        }
    }

    #[test]
    fn entries_the_worker_takes() {
        // No action is a transcode (older apps); no source or enqueued_at is fine; extra
        // fields (e.g. a dead letter's `error`) are ignored.
        assert_eq!(
            Job::from_fields(&entry(&[("video_id", "v1")])),
            Ok(Job::Transcode {
                video_id: "v1".into(),
                source: None,
                enqueued_at: None,
                traceparent: None
            })
        );
        assert_eq!(
            Job::from_fields(&entry(&[
                ("action", "delete"),
                ("video_id", "v1"),
                ("error", "x")
            ])),
            Ok(Job::Delete {
                video_id: "v1".into(),
                enqueued_at: None,
                traceparent: None
            })
        );
    }

    #[test]
    fn forged_or_corrupted_entries_say_why() {
        // The entries native-transcoder/tests/hostile_media.rs forges, and the texts the
        // dead-letter stream has always carried for them.
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[
                    ("action", "transcode"),
                    ("video_id", "attacker"),
                    ("source", "sources/victim"),
                ],
                "source `sources/victim` is not the video's own upload (sources/attacker)",
            ),
            (
                &[("action", "exec"), ("video_id", "victim")],
                "unknown action `exec`",
            ),
            (
                &[("action", "transcode"), ("video_id", "../media")],
                "no valid video_id",
            ),
            // The video id is checked before the action.
            (&[("action", "exec"), ("video_id", "")], "no valid video_id"),
            (&[("action", "delete")], "no valid video_id"),
            (
                &[("action", "transcode"), ("video_id", &"v".repeat(129))],
                "no valid video_id",
            ),
        ];
        for (fields, why) in cases {
            assert_eq!(
                Job::from_fields(&entry(fields)).unwrap_err().to_string(),
                why,
                "{fields:?}"
            );
        }
    }

    #[test]
    fn an_outbox_job_is_stamped_when_it_leaves() {
        // components/metadata keeps a transcode job in its outbox as action, video_id and
        // source, and stamps it when the queue takes it: the same entry as built at once.
        let stored: Job = serde_json::from_value(serde_json::json!({
            "action": "transcode", "video_id": "v1", "source": "sources/v1"
        }))
        .unwrap();
        assert_eq!(stored.action(), "transcode");
        assert_eq!(
            stored.enqueued(1_700_000_100),
            Job::transcode("v1", "sources/v1", 1_700_000_100)
        );
        assert_eq!(Job::delete("v1", 1).enqueued(2), Job::delete("v1", 2));
    }

    #[test]
    fn a_failure_without_a_code_decodes_as_an_empty_code() {
        // What workers sent before failure codes (tests/host-tests metadata.rs has the app
        // store it as `transcode_failed`).
        let old: Event = serde_json::from_str(
            r#"{"id":"f","type":"transcode.failed","video_id":"v1","data":{"error":"boom","final":true}}"#,
        )
        .unwrap();
        assert_eq!(
            old.data,
            EventData::TranscodeFailed {
                code: String::new(),
                error: "boom".into(),
                last: true
            }
        );
    }

    #[test]
    fn stream_names() {
        assert_eq!(JOB_STREAM, "streamgate:jobs");
        assert_eq!(DEAD_LETTER_STREAM, "streamgate:jobs:dead");
        assert_eq!(ERROR_STREAM, "streamgate:jobs:errors");
    }

    #[test]
    fn events_are_the_json_the_native_side_sent() {
        // Each kind as native-transcoder built it with `json!` before this type (tus.rs,
        // worker/job.rs, worker/mod.rs), byte for byte: these bytes are what is signed.
        let ladder = serde_json::json!({
            "renditions": [{"name": "360p", "width": 640, "height": 360, "bandwidth": 800000,
                "codecs": "avc1.64001e", "playlist": "360p/index.m3u8", "segments": ["360p/0.m4s"]}],
            "audio": [],
            "poster": "poster.jpg",
            "duration": 4.5
        });
        let cases = [
            (
                Event::new(
                    "upload.completed:v1:u1",
                    "v1",
                    EventData::UploadCompleted {
                        size: 1234,
                        source: "sources/v1".into(),
                    },
                ),
                serde_json::json!({"size": 1234, "source": "sources/v1"}),
            ),
            (
                Event::new(
                    "transcode.started:v1:1-0:1",
                    "v1",
                    EventData::TranscodeStarted { attempt: 1 },
                ),
                serde_json::json!({"attempt": 1}),
            ),
            (
                Event::new(
                    "transcode.progress:v1:1-0:1:42",
                    "v1",
                    EventData::TranscodeProgress { percent: 42 },
                ),
                serde_json::json!({"percent": 42}),
            ),
            (
                Event::new(
                    "transcode.completed:v1:1-0",
                    "v1",
                    EventData::TranscodeCompleted(ladder.clone()),
                ),
                ladder,
            ),
            (
                Event::new(
                    "transcode.failed:v1:1-0:3",
                    "v1",
                    EventData::TranscodeFailed {
                        code: "unsupported_format".into(),
                        error: "not a video".into(),
                        last: true,
                    },
                ),
                serde_json::json!({"code": "unsupported_format", "error": "not a video", "final": true}),
            ),
            (
                Event::new("media.deleted:v1:1-0", "v1", EventData::MediaDeleted {}),
                serde_json::json!({}),
            ),
        ];
        for (event, data) in cases {
            #[derive(Serialize)]
            struct Before {
                id: String,
                #[serde(rename = "type")]
                kind: String,
                video_id: String,
                data: serde_json::Value,
            }
            let before = serde_json::to_string(&Before {
                id: event.id.clone(),
                kind: event.kind().to_string(),
                video_id: event.video_id.clone(),
                data,
            })
            .unwrap();
            let now = serde_json::to_string(&event).unwrap();
            assert_eq!(now, before);
            assert!(now.starts_with(&format!(
                r#"{{"id":"{}","type":"{}","video_id":"v1","data":"#,
                event.id,
                event.kind()
            )));
            assert_eq!(serde_json::from_str::<Event>(&now).unwrap(), event);
        }
        assert_eq!(
            serde_json::to_string(&Event::new(
                "p",
                "v1",
                EventData::TranscodeProgress { percent: 7 }
            ))
            .unwrap(),
            r#"{"id":"p","type":"transcode.progress","video_id":"v1","data":{"percent":7}}"#
        );
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("transcode.exploded"), None);
        // An unknown kind is one decode error.
        assert!(serde_json::from_str::<Event>(
            r#"{"id":"x","type":"transcode.exploded","video_id":"v1","data":{}}"#
        )
        .is_err());
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn jobs_carry_the_trace_of_their_request() {
        let trace = TraceContext::parse(TRACEPARENT).unwrap();
        let job = Job::transcode("v1", "sources/v1", 1_700_000_000).with_trace(&trace);
        assert_eq!(
            job.fields().last(),
            Some(&("traceparent", TRACEPARENT.to_string())),
            "last, after the fields the app always wrote"
        );
        let read = Job::from_fields(&as_entry(&job)).unwrap();
        assert_eq!(read, job);
        assert_eq!(read.trace(), Some(trace));
        let json = serde_json::to_string(&job).unwrap();
        assert!(
            json.ends_with(&format!(r#","traceparent":"{TRACEPARENT}"}}"#)),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), job);

        let delete = Job::delete("v1", 1).with_trace(&trace);
        assert_eq!(
            Job::from_fields(&as_entry(&delete)).unwrap().trace(),
            Some(trace)
        );
    }

    #[test]
    fn jobs_without_a_valid_trace_still_run() {
        // Entries written before trace contexts, and a JSON job without one.
        let old = Job::from_fields(&entry(&[
            ("action", "transcode"),
            ("video_id", "v1"),
            ("source", "sources/v1"),
            ("enqueued_at", "1700000000"),
        ]))
        .unwrap();
        assert_eq!(old, Job::transcode("v1", "sources/v1", 1_700_000_000));
        assert_eq!(old.trace(), None);
        let old: Job =
            serde_json::from_str(r#"{"action":"delete","video_id":"v1","enqueued_at":"1"}"#)
                .unwrap();
        assert_eq!(old, Job::delete("v1", 1));
        // A garbled trace context loses the trace, not the job.
        let garbled = Job::from_fields(&entry(&[
            ("action", "transcode"),
            ("video_id", "v1"),
            ("traceparent", "00-not-a-trace"),
        ]))
        .unwrap();
        assert_eq!(garbled.video_id(), "v1");
        assert_eq!(garbled.trace(), None);
    }

    #[test]
    fn events_carry_a_trace_after_their_data() {
        let trace = TraceContext::parse(TRACEPARENT).unwrap();
        let event =
            Event::new("p", "v1", EventData::TranscodeProgress { percent: 7 }).with_trace(&trace);
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"id":"p","type":"transcode.progress","video_id":"v1","data":{{"percent":7}},"traceparent":"{TRACEPARENT}"}}"#
            )
        );
        let read: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(read, event);
        assert_eq!(read.trace(), Some(trace));
        // An event from a sender before trace contexts decodes, without one.
        let old: Event = serde_json::from_str(
            r#"{"id":"p","type":"transcode.progress","video_id":"v1","data":{"percent":7}}"#,
        )
        .unwrap();
        assert_eq!(
            old,
            Event::new("p", "v1", EventData::TranscodeProgress { percent: 7 })
        );
        assert_eq!(old.traceparent, None);
        assert_eq!(old.trace(), None);
    }
}
