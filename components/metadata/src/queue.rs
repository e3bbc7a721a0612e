//! The job stream the native workers consume (docs/pipeline.md): `XADD` through Spin's Redis.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use streamgate_core::api_error::ApiError;

pub const STREAM: &str = "streamgate:jobs";

fn unavailable(e: impl std::fmt::Debug) -> ApiError {
    ApiError::new(
        503,
        "queue_unavailable",
        format!("the job queue did not accept the job: {e:?}"),
    )
    .with_retry_after(5)
}

/// Appends a job; answers the stream entry id.
pub fn enqueue(fields: &[(&str, &str)]) -> Result<String, ApiError> {
    let address = streamgate_spin::config::get("redis_address")?;
    let conn = Connection::open(&address).map_err(unavailable)?;
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
