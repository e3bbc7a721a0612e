//! The job stream the native workers consume (docs/pipeline.md). The [`JobTransport`] says how a
//! job gets there: `redis` (the default) appends it with `XADD` through Spin's Redis; `http`
//! hands it to the media origin at `job_origin_url` in a signed `POST`, and the origin appends it
//! to its own Redis, for hosts where the app cannot reach Redis (docs/operations.md).

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use streamgate_core::api_error::ApiError;
use streamgate_core::job_intake::{JobAccepted, JobRequest, KEY_PURPOSE, PATH};
use streamgate_core::pipeline::{Job, JOB_STREAM as STREAM};
use streamgate_core::settings::JobTransport;
use streamgate_core::{event_signature, keys};
use streamgate_spin::secrets::Rotating;

fn unavailable(e: impl std::fmt::Debug) -> ApiError {
    ApiError::new(
        503,
        "queue_unavailable",
        format!("the job queue did not accept the job: {e:?}"),
    )
    .with_retry_after(5)
}

/// Appends a job; answers the stream entry id.
pub fn enqueue(job: &Job, transport: &JobTransport) -> Result<String, ApiError> {
    let fields = job.fields();
    let fields = fields.as_slice();
    match transport {
        JobTransport::Redis { address } => enqueue_redis(address, fields),
        JobTransport::Http { origin_url } => enqueue_http(origin_url, fields),
    }
}

fn enqueue_redis(address: &str, fields: &[(&str, String)]) -> Result<String, ApiError> {
    let conn = Connection::open(address).map_err(unavailable)?;
    let mut args = vec![
        RedisParameter::Binary(STREAM.as_bytes().to_vec()),
        RedisParameter::Binary(b"*".to_vec()),
    ];
    for (name, value) in fields {
        args.push(RedisParameter::Binary(name.as_bytes().to_vec()));
        args.push(RedisParameter::Binary(value.as_bytes().to_vec()));
    }
    let reply = conn.execute("XADD", &args).map_err(unavailable)?;
    match reply.first() {
        Some(RedisResult::Binary(id)) => Ok(String::from_utf8_lossy(id).into_owned()),
        other => Err(unavailable(format!("unexpected XADD reply {other:?}"))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn enqueue_http(origin: &str, fields: &[(&str, String)]) -> Result<String, ApiError> {
    // Signed with the current secret only: the origin checks current and previous, so either
    // side may be rotated first.
    let secret = Rotating::load("events_secret")?;
    let key = keys::derive(&secret.current, KEY_PURPOSE);
    let job = JobRequest {
        job_id: hex(&streamgate_spin::random_bytes::<16>()?),
        fields: fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    };
    let body = serde_json::to_vec(&job).map_err(unavailable)?;
    let signature = event_signature::sign(&key, streamgate_spin::now(), &body);
    let request = Request::builder()
        .method(Method::Post)
        .uri(format!("{}{PATH}", origin.trim_end_matches('/')))
        .header("content-type", "application/json")
        .header(event_signature::HEADER, signature)
        .body(body)
        .build();
    let response: Response =
        spin_sdk::http::run(spin_sdk::http::send(request)).map_err(unavailable)?;
    let status = *response.status();
    let body = String::from_utf8_lossy(response.body());
    // 409 is this very job already taken (the origin remembers job ids): it is in the stream.
    if status == 200 || status == 409 {
        if let Ok(accepted) = serde_json::from_str::<JobAccepted>(&body) {
            return Ok(accepted.stream_id);
        }
    }
    Err(unavailable(format!(
        "the origin at {origin} answered {status}: {}",
        body.chars().take(300).collect::<String>()
    )))
}
