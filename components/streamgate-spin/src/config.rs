//! Spin variables, read once per request. A missing or malformed value is the operator's
//! problem: 503 `server_misconfigured` naming the variable, never a 500 or a panic.

use spin_sdk::variables;
use streamgate_core::api_error::ApiError;

pub fn get(name: &str) -> Result<String, ApiError> {
    variables::get(name).map_err(|e| {
        ApiError::new(
            503,
            "server_misconfigured",
            format!("configuration variable `{name}` is unavailable: {e}"),
        )
    })
}

/// An optional variable: absent or empty is `None`.
pub fn optional(name: &str) -> Option<String> {
    variables::get(name).ok().filter(|v| !v.is_empty())
}

/// A duration variable: a whole number of seconds, zero or more. Anything else is 503
/// `server_misconfigured` naming the variable and the value.
pub fn seconds(name: &str) -> Result<i64, ApiError> {
    let value = get(name)?;
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| {
            ApiError::new(
                503,
                "server_misconfigured",
                format!("`{name}` must be a number of seconds, got `{value}`"),
            )
        })
}
