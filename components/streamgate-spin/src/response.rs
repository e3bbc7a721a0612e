//! Every answer is JSON; every error is `{"error", "code"}` with its status.

use serde::Serialize;
use spin_sdk::http::Response;
use streamgate_core::api_error::ApiError;

pub fn json(status: u16, body: &impl Serialize) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .build()
}

pub fn no_content() -> Response {
    Response::builder()
        .status(204)
        .header("cache-control", "no-store")
        .build()
}

/// The error answer, with `Retry-After` (429, 503) and `Allow` (405) when the error has them.
pub fn error(e: &ApiError) -> Response {
    let mut response = json(e.status, e);
    if let Some(seconds) = e.retry_after {
        response.set_header("retry-after", seconds.to_string());
    }
    if let Some(allow) = e.allow {
        response.set_header("allow", allow);
    }
    response
}
