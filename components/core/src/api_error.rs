//! The one error shape every StreamGate endpoint answers with:
//! `{"error": "<human sentence>", "code": "<snake_case>"}` and a 4xx/5xx status.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{status} ({code}): {error}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub error: String,
    pub code: &'static str,
    /// For 429 and 503: when to try again, sent as `Retry-After` (seconds).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// For 405: the methods the route does take, sent as `Allow` (RFC 9110 §15.5.6 requires it).
    #[serde(skip)]
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, error: impl Into<String>) -> Self {
        debug_assert!(
            (400..600).contains(&status),
            "an error status is 4xx or 5xx"
        );
        Self {
            status,
            error: error.into(),
            code,
            retry_after: None,
            allow: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(404, "not_found", what)
    }

    /// 405, naming the methods the route takes (`"GET, HEAD"`), in the message and `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            405,
            "method_not_allowed",
            format!("this method is not allowed on this route; it takes {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ApiError always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_documented_shape_without_the_status() {
        let e = ApiError::new(409, "not_ready", "the video is still transcoding");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "the video is still transcoding", "code": "not_ready"})
        );
        assert_eq!(e.status, 409);
    }
}
