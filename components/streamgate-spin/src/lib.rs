//! The thin layer between Spin and `streamgate-core`, shared by every component: reading a
//! request with a body limit, answering JSON, reading configuration, checking the session, and
//! reaching the chain. Domain decisions stay in `streamgate-core`; this crate only does I/O.

pub mod chain;
pub mod config;
pub mod key_value;
pub mod migrations;
pub mod playback_keys;
pub mod request;
pub mod response;
pub mod secrets;
pub mod session;
pub mod trace;
pub mod video_schema;

/// Seconds since the Unix epoch, from the host's wall clock.
pub use streamgate_core::now;

/// `N` bytes from the host's secure random source (wasi:random).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], streamgate_core::api_error::ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| {
        streamgate_core::api_error::ApiError::new(
            503,
            "randomness_unavailable",
            format!("the host gave no randomness: {e}"),
        )
    })?;
    Ok(buf)
}
