//! Jobs handed to the native side over HTTP, for hosted Spin where the app cannot reach Redis
//! (`job_transport = "http"`, docs/operations.md). The app `POST`s each job to the media origin
//! at [`PATH`], signed like the events that flow the other way ([`crate::event_signature`],
//! with the key of purpose [`KEY_PURPOSE`] derived from `events_secret`); the origin appends it
//! to its local job stream, once per [`JobRequest::job_id`]. Both sides use these definitions.

use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;

/// Where the origin takes jobs.
pub const PATH: &str = "/internal/v1/jobs";
/// `keys::derive(events_secret, KEY_PURPOSE)` signs and checks the requests.
pub const KEY_PURPOSE: &str = "jobs";
/// The largest request body the origin reads: a job is a few short fields.
pub const BODY_LIMIT: usize = 8 * 1024;
/// A job id the origin has seen is refused for at least this long, which is longer than a
/// signature stays fresh (both ways of [`crate::event_signature::TOLERANCE_SECS`]), so a
/// captured request can never be enqueued twice.
pub const REMEMBER_SECS: u64 = 4 * crate::event_signature::TOLERANCE_SECS.unsigned_abs();
const MAX_FIELDS: usize = 16;
const MAX_NAME: usize = 32;
const MAX_VALUE: usize = 1024;

/// One job: the stream entry's fields in order, and an id the app draws at random for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// 32 lowercase hex digits (128 random bits).
    pub job_id: String,
    pub fields: Vec<(String, String)>,
}

/// What the origin answers: the stream entry the job became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAccepted {
    pub stream_id: String,
}

fn invalid(why: String) -> ApiError {
    ApiError::new(422, "invalid_job", why)
}

impl JobRequest {
    /// The shape the worker can take: an id, an `action`, short field names of `[a-z_]`, short
    /// values, a few fields.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.job_id.len() != 32
            || !self
                .job_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("`job_id` must be 32 lowercase hex digits".into()));
        }
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(invalid(format!("a job has 1 to {MAX_FIELDS} fields")));
        }
        for (name, value) in &self.fields {
            if name.is_empty()
                || name.len() > MAX_NAME
                || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                return Err(invalid(format!(
                    "field names are 1 to {MAX_NAME} characters of a-z and _"
                )));
            }
            if value.len() > MAX_VALUE {
                return Err(invalid(format!(
                    "field `{name}` is longer than {MAX_VALUE} bytes"
                )));
            }
        }
        if !self.fields.iter().any(|(name, _)| name == "action") {
            return Err(invalid("a job needs an `action` field".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, fields: &[(&str, &str)]) -> JobRequest {
        JobRequest {
            job_id: id.into(),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn what_a_job_may_be() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(job(id, &[("action", "transcode"), ("video_id", "v1")])
            .validate()
            .is_ok());
        let long = "x".repeat(1025);
        let many: Vec<(String, String)> = (0..17).map(|_| ("action".into(), "a".into())).collect();
        for bad in [
            job("0123", &[("action", "transcode")]),
            job(&id.to_uppercase(), &[("action", "transcode")]),
            job(id, &[]),
            job(id, &[("video_id", "v1")]),
            job(id, &[("action", "transcode"), ("Video", "v1")]),
            job(id, &[("action", "transcode"), ("", "v1")]),
            job(id, &[("action", &long)]),
            JobRequest {
                job_id: id.into(),
                fields: many,
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().code, "invalid_job", "{bad:?}");
        }
        // The wire form: fields keep their order.
        let body =
            serde_json::to_string(&job(id, &[("action", "delete"), ("video_id", "v")])).unwrap();
        assert_eq!(
            body,
            format!(r#"{{"job_id":"{id}","fields":[["action","delete"],["video_id","v"]]}}"#)
        );
        assert!(serde_json::from_str::<JobRequest>(&body.replace("}", r#","extra":1}"#)).is_err());
    }
}
