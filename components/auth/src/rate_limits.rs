//! Fixed-window rate limits kept in key-value. The decisions are `streamgate-core`'s; the windows
//! are read and written here. Without compare-and-swap the count is approximate under races,
//! which is acceptable for abuse limits (documented in docs/auth.md).

use spin_sdk::key_value::Store;
use streamgate_core::api_error::ApiError;
use streamgate_core::rate_limit::{
    decide, limited, rate_limit_key, rate_limited_error, Decision, Limit, Window,
};

/// One counter: `scope` (e.g. `verify_ip`) for one `subject` (a client bucket, an address),
/// limited by `limit` (from the component's settings).
pub struct Counter<'a> {
    pub scope: &'static str,
    pub subject: &'a str,
    pub limit: Limit,
}

fn unavailable(e: spin_sdk::key_value::Error) -> ApiError {
    ApiError::new(
        503,
        "store_unavailable",
        format!("the rate-limit store failed: {e:?}"),
    )
}

impl Counter<'_> {
    fn read(&self, store: &Store) -> Result<(String, Limit, Option<Window>), ApiError> {
        let limit = self.limit;
        let key = rate_limit_key(self.scope, self.subject);
        let stored = store
            .get(&key)
            .map_err(unavailable)?
            .and_then(|bytes| Window::from_bytes(&bytes));
        Ok((key, limit, stored))
    }

    /// Counts one request, or refuses it with 429 when the window is full.
    pub fn check(&self, store: &Store, now: i64) -> Result<(), ApiError> {
        let (key, limit, stored) = self.read(store)?;
        match decide(stored, limit, now) {
            Decision::Allowed { window, .. } => {
                streamgate_spin::key_value::set_expiring(store, &key, &window.to_bytes(), now)
                    .map_err(unavailable)
            }
            Decision::Limited { retry_after } => Err(rate_limited_error(retry_after)),
        }
    }

    /// Refuses with 429 when the window is full, without counting anything.
    pub fn ensure_open(&self, store: &Store, now: i64) -> Result<(), ApiError> {
        let (_, limit, stored) = self.read(store)?;
        match limited(stored, limit, now) {
            Some(retry_after) => Err(rate_limited_error(retry_after)),
            None => Ok(()),
        }
    }

    /// Counts one outcome that has already happened (a failed attempt). A full window stays
    /// full; there is nothing to refuse any more.
    pub fn record(&self, store: &Store, now: i64) -> Result<(), ApiError> {
        match self.check(store, now) {
            Err(e) if e.status == 429 => Ok(()),
            other => other,
        }
    }
}
