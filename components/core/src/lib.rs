//! StreamGate's domain logic, independent of any host: it builds natively (unit tests,
//! benchmarks, the native transcoder) and for `wasm32-wasip2` (the Spin components).
//!
//! Sign-in with Ethereum: [`siwe`] (EIP-4361 parsing and validation), [`eip191`] (signer
//! recovery), [`eip1271`] (contract wallets, ERC-6492 detection), [`rpc`] (the chain-read
//! trait and JSON-RPC bodies), [`signin`] (the verify flow), [`session`] (JWT sessions),
//! [`nonce`], [`rate_limit`], [`client_addr`] (the client a per-client limit counts). Time,
//! randomness and chain reads are injected.

pub mod api_error;
pub mod client_addr;
pub mod config;
pub mod edge_token;
pub mod eip1271;
pub mod eip191;
pub mod event_signature;
pub mod gate;
pub mod job_intake;
pub mod key_value;
pub mod keys;
pub mod nonce;
pub mod pipeline;
pub mod playlist;
pub mod rate_limit;
pub mod readiness;
pub mod rpc;
pub mod session;
pub mod settings;
pub mod signin;
pub mod siwe;
pub mod trace;
pub mod video;

/// Seconds since the Unix epoch by the wall clock (0 before it). The domain functions take the
/// time as an argument so that tests choose it; this is what their callers pass.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
