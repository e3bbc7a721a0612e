//! The answers the host gives itself, in the API's error shape:
//! `{"error": "<sentence>", "code": "<snake_case>"}` with `content-type: application/json`.
//! A component's own answers are the component's business; everything the host says when no
//! component does (no route, an unreadable request, a full pool, a trap, a deadline) is here.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What an overloaded answer tells the client to wait before retrying, in seconds.
pub const RETRY_AFTER_SECS: u32 = 1;

pub type Response = hyper::Response<HyperOutgoingBody>;

/// A response with a fixed body.
pub fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut response = hyper::Response::new(
        Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `{"error": message, "code": code}` with `status`.
pub fn json(status: StatusCode, code: &'static str, message: &str) -> Response {
    let mut body = String::with_capacity(message.len() + code.len() + 24);
    body.push_str(r#"{"error":"#);
    push_json_string(&mut body, message);
    body.push_str(r#","code":"#);
    push_json_string(&mut body, code);
    body.push('}');
    with_body(status, "application/json", Bytes::from(body))
}

pub fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        "not_found",
        "No route matches this path.",
    )
}

pub fn bad_request(message: &str) -> Response {
    json(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub fn internal_error() -> Response {
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "The request failed inside the server. It has been logged.",
    )
}

/// 504: the component did not finish within the request deadline.
pub fn timeout(limit_secs: u64) -> Response {
    json(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        &format!("The request did not complete within its {limit_secs} s limit."),
    )
}

/// 503 with `Retry-After`: the server is at its limit; the same request may succeed shortly.
pub fn overloaded(message: &str) -> Response {
    let mut response = json(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// Asks hyper to close the connection once this response is written.
pub fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Appends `s` as a JSON string literal (quotes included).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn errors_are_json_with_a_code() {
        let response = json(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a \"quoted\"\\ line\n\u{1}",
        );
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            body_of(response).await,
            r#"{"error":"a \"quoted\"\\ line\n\u0001","code":"bad_request"}"#
        );
    }

    #[tokio::test]
    async fn overloaded_says_when_to_retry() {
        let response = overloaded("busy");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(
            body_of(response).await,
            r#"{"error":"busy","code":"overloaded"}"#
        );
    }
}
