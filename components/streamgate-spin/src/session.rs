//! The session check every authenticated route calls, and logout's revocation list.
//!
//! Tokens are verified by `streamgate-core` (signature, key id, expiry); revocation lives in the
//! key-value store under `session:revoked:<jti>`, holding the token's `exp`, until the sweep
//! removes it after the token would have expired anyway ([`crate::key_value`]).

use spin_sdk::key_value::Store;
use streamgate_core::api_error::ApiError;
use streamgate_core::key_value::REVOKED_SESSION_PREFIX;
use streamgate_core::session::{check_bearer, Session, SessionError, SessionKeys};

use crate::secrets::Rotating;

fn revoked_key(jti: &str) -> String {
    format!("{REVOKED_SESSION_PREFIX}{jti}")
}

fn store_unavailable(e: impl std::fmt::Debug) -> ApiError {
    // Fail closed: if we cannot tell whether a token was revoked, it is not accepted.
    ApiError::new(
        503,
        "session_store_unavailable",
        format!("the session store did not answer: {e:?}"),
    )
}

/// The `default` key-value store (sessions' revocation list, caches, rate limits).
pub fn key_value() -> Result<Store, ApiError> {
    Store::open_default().map_err(|e| {
        ApiError::new(
            503,
            "store_unavailable",
            format!("the key-value store did not open: {e:?}"),
        )
    })
}

/// The keys from `session_secret` / `session_secret_previous`.
pub fn keys() -> Result<SessionKeys, ApiError> {
    let secrets = Rotating::load("session_secret")?;
    Ok(SessionKeys::from_config(
        &secrets.current,
        secrets.previous.as_deref(),
    )?)
}

/// Who is calling: the verified, unrevoked session of the `Authorization` header.
pub fn authenticate(
    authorization: Option<&str>,
    keys: &SessionKeys,
    store: &Store,
    now: i64,
) -> Result<Session, ApiError> {
    let session = check_bearer(authorization, keys, now)?;
    let revoked = store
        .exists(&revoked_key(&session.jti))
        .map_err(store_unavailable)?;
    if revoked {
        return Err(SessionError::Revoked.into());
    }
    Ok(session)
}

/// Logout: the token is refused from now until it expires; the entry's lifetime is the token's.
pub fn revoke(session: &Session, store: &Store, now: i64) -> Result<(), ApiError> {
    crate::key_value::set_expiring(
        store,
        &revoked_key(&session.jti),
        session.expires_at.to_string().as_bytes(),
        now,
    )
    .map_err(store_unavailable)
}
