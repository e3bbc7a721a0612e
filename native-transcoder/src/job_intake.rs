//! `POST /internal/v1/jobs`: jobs from a Spin app that cannot reach Redis itself (hosted Spin,
//! `job_transport = "http"`), appended here to the local job stream the workers consume.
//!
//! A request must carry a fresh signature (`StreamGate-Signature`, the events scheme, key of
//! purpose `jobs` derived from `events_secret`, current or previous), checked as far as it can be
//! before a byte of the body is read; the body is small and read with a limit. Each job id is
//! taken once: a replay of a captured request within the signature's freshness window finds its
//! id remembered and is refused (409), and after the window its signature is stale.

use std::collections::HashMap;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use streamgate_core::api_error::ApiError;
use streamgate_core::event_signature;
use streamgate_core::job_intake::{JobAccepted, JobRequest, BODY_LIMIT, REMEMBER_SECS};
use streamgate_core::pipeline::{Job, JOB_STREAM as STREAM};

use crate::server::{error_response, full, Body};

const SEEN_PREFIX: &str = "streamgate:job-intake:";
/// A slow body cannot hold a connection: a job is a few hundred bytes.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Remembering the id and appending the job are one step, so a crash between the two can
/// neither lose a job (id remembered, job not appended) nor let a replay through.
const ENQUEUE_ONCE: &str = r#"
local seen = redis.call('GET', KEYS[1])
if seen then return {0, seen} end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return {1, id}
"#;

pub struct JobIntake {
    /// Current first, then previous.
    keys: Vec<[u8; 32]>,
    redis: Option<redis::Client>,
}

impl JobIntake {
    /// `keys`: [`crate::config::Keys::jobs`]; `redis_url`: the local Redis as a user that may
    /// append jobs (`None`: intake is off, 404).
    pub fn new(keys: Vec<[u8; 32]>, redis_url: Option<&str>) -> anyhow::Result<Self> {
        let redis = redis_url
            .map(redis::Client::open)
            .transpose()
            .map_err(|e| {
                anyhow::anyhow!(
                    "STREAMGATE_JOBS_REDIS_URL is not a Redis URL: {:?}",
                    e.kind()
                )
            })?;
        Ok(Self { keys, redis })
    }

    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match self.take(req).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        }
    }

    async fn take(&self, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let Some(redis) = &self.redis else {
            return Err(ApiError::not_found(
                "job intake is not enabled on this origin (STREAMGATE_JOBS_REDIS_URL)",
            ));
        };
        if req.method() != Method::POST {
            return Err(ApiError::method_not_allowed("POST"));
        }
        let signature = req
            .headers()
            .get(event_signature::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Judged before the body is read: a request failing here can never verify. The whole
        // check runs again once the body is in, with the clock of that moment.
        event_signature::check_header(signature.as_deref(), streamgate_core::now())?;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(too_large());
        }
        let body = tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(req.into_body(), BODY_LIMIT).collect(),
        )
        .await
        .map_err(|_| {
            ApiError::new(
                408,
                "request_timeout",
                "the job's body did not arrive in time",
            )
        })?
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(400, "bad_request", "the job's body could not be read")
            }
        })?
        .to_bytes();
        let keys: Vec<&[u8]> = self.keys.iter().map(|k| k.as_slice()).collect();
        event_signature::verify(signature.as_deref(), &keys, &body, streamgate_core::now())?;
        let (job_id, job) = decode(&body)?;

        let mut conn = redis
            .get_multiplexed_async_connection()
            .await
            .map_err(unavailable)?;
        let mut script = redis::cmd("EVAL");
        script
            .arg(ENQUEUE_ONCE)
            .arg(2)
            .arg(format!("{SEEN_PREFIX}{job_id}"))
            .arg(STREAM)
            .arg(REMEMBER_SECS);
        for (name, value) in job.fields() {
            script.arg(name).arg(value);
        }
        let (fresh, stream_id): (i64, String) =
            script.query_async(&mut conn).await.map_err(unavailable)?;
        // The job's trace id: the line that ties the app's `job enqueued` to the worker's `job`.
        let trace_id = job
            .trace()
            .map(|trace| trace.trace_id())
            .unwrap_or_default();
        if fresh == 1 {
            tracing::info!(%job_id, %stream_id, %trace_id, "job taken from the app");
            return Ok(json(StatusCode::OK, &JobAccepted { stream_id }));
        }
        tracing::warn!(%job_id, %stream_id, %trace_id, "a job id seen before: refused");
        let body = serde_json::json!({
            "error": "this job was already taken; it is not enqueued again",
            "code": "duplicate_job",
            "stream_id": stream_id,
        });
        Ok(json(StatusCode::CONFLICT, &body))
    }
}

/// The job in a request body and the id the app drew for it. Whatever the worker would refuse
/// is refused here, with the worker's reason, rather than appended to be dead-lettered: not
/// JSON is 400 `invalid_json`; a request of the wrong shape or a job the worker cannot take
/// ([`Job::from_fields`]) is 422 `invalid_job`.
fn decode(body: &[u8]) -> Result<(String, Job), ApiError> {
    let request: JobRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "invalid_json",
            format!("the job is not valid JSON: {e}"),
        )
    })?;
    request.validate()?;
    let fields: HashMap<String, String> = request.fields.into_iter().collect();
    let job = Job::from_fields(&fields).map_err(|e| {
        ApiError::new(
            422,
            "invalid_job",
            format!("the worker cannot take this job: {e}"),
        )
    })?;
    Ok((request.job_id, job))
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let mut response = Response::new(full(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "payload_too_large",
        format!("a job is at most {BODY_LIMIT} bytes"),
    )
}

fn unavailable(e: redis::RedisError) -> ApiError {
    tracing::warn!(error = %e, "job intake: Redis refused or is down");
    ApiError::new(
        503,
        "queue_unavailable",
        format!("the job stream did not take the job: {:?}", e.kind()),
    )
    .with_retry_after(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_the_worker_would_refuse_is_refused_at_intake() {
        let id = "ab".repeat(16);
        let body = |fields: &str| format!(r#"{{"job_id":"{id}","fields":{fields}}}"#);
        let (job_id, job) = decode(
            body(r#"[["action","transcode"],["video_id","v1"],["source","sources/v1"],["enqueued_at","5"]]"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            (job_id.as_str(), &job),
            (id.as_str(), &Job::transcode("v1", "sources/v1", 5))
        );
        // What is appended is the entry the app built, in its order.
        assert_eq!(
            job.fields(),
            [
                ("action", "transcode".to_string()),
                ("video_id", "v1".into()),
                ("source", "sources/v1".into()),
                ("enqueued_at", "5".into())
            ]
        );
        assert_eq!(decode(b"{").unwrap_err().code, "invalid_json");
        for (fields, why) in [
            (r#"[["video_id","v1"]]"#, "needs an `action`"),
            (
                r#"[["action","resize"],["video_id","v1"]]"#,
                "unknown action `resize`",
            ),
            (
                r#"[["action","delete"],["video_id","../v1"]]"#,
                "no valid video_id",
            ),
            (
                r#"[["action","transcode"],["video_id","v1"],["source","sources/v2"]]"#,
                "not the video's own upload",
            ),
        ] {
            let e = decode(body(fields).as_bytes()).unwrap_err();
            assert_eq!((e.status, e.code), (422, "invalid_job"), "{fields}");
            assert!(e.error.contains(why), "{fields}: {}", e.error);
        }
    }

    #[test]
    fn the_header_is_judged_before_the_body() {
        let now = 1_714_564_800;
        let tag = "ab".repeat(32);
        assert!(event_signature::check_header(Some(&format!("t={now},v1={tag}")), now).is_ok());
        for (header, code) in [
            (None, "bad_event_signature"),
            (Some(format!("v1={tag}")), "bad_event_signature"),
            (Some(format!("t={now},v1=00")), "bad_event_signature"),
            (Some(format!("t={},v1={tag}", now - 301)), "stale_event"),
            (Some(format!("t={},v1={tag}", i64::MIN)), "stale_event"),
        ] {
            assert_eq!(
                event_signature::check_header(header.as_deref(), now)
                    .unwrap_err()
                    .code,
                code,
                "{header:?}"
            );
        }
    }
}
