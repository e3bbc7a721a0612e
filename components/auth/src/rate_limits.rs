//! Fixed-window rate limits kept in key-value. The decision is `streamgate-core`'s; the window
//! is read and written here. Without compare-and-swap the count is approximate under races,
//! which is acceptable for abuse limits (documented in docs/auth.md).

use spin_sdk::key_value::Store;
use streamgate_core::api_error::ApiError;
use streamgate_core::config;
use streamgate_core::rate_limit::{decide, rate_limit_key, rate_limited_error, Decision, Window};

pub fn check(
    store: &Store,
    scope: &str,
    subject: &str,
    variable: &'static str,
    now: i64,
) -> Result<(), ApiError> {
    let limit = config::rate_limit(variable, &streamgate_spin::config::get(variable)?)?;
    let key = rate_limit_key(scope, subject);
    let unavailable = |e: spin_sdk::key_value::Error| {
        ApiError::new(
            503,
            "store_unavailable",
            format!("the rate-limit store failed: {e:?}"),
        )
    };
    let stored = store
        .get(&key)
        .map_err(unavailable)?
        .and_then(|bytes| Window::from_bytes(&bytes));
    match decide(stored, limit, now) {
        Decision::Allowed { window, .. } => {
            store.set(&key, &window.to_bytes()).map_err(unavailable)
        }
        Decision::Limited { retry_after } => Err(rate_limited_error(retry_after)),
    }
}
