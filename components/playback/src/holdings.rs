//! Ownership answers, cached in key-value with separate lifetimes for "holds" and "does not
//! hold": a viewer who sells the token loses access within the positive lifetime. Errors are
//! never cached: the next request asks the chain again. Each entry carries its end, and the
//! key-value sweep removes it after that (`streamgate_spin::key_value`).

use spin_sdk::key_value::Store;
use streamgate_core::gate::{self, CacheTtl, CachedAnswer, GateError, Holding};
use streamgate_spin::chain::HttpChainReader;

pub async fn holds(
    kv: &Store,
    reader: &HttpChainReader,
    holding: &Holding,
    ttl: CacheTtl,
    now: i64,
) -> Result<bool, GateError> {
    let key = holding.cache_key();
    let cached = kv
        .get(&key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<CachedAnswer>(&bytes).ok())
        .filter(|answer| now < answer.until);
    if let Some(answer) = cached {
        return Ok(answer.holds);
    }
    let holds = gate::check(reader, holding).await?;
    if let Ok(bytes) = serde_json::to_vec(&ttl.answer(holds, now)) {
        // A cache that cannot be written only costs the next request a chain call.
        let _ = streamgate_spin::key_value::set_expiring(kv, &key, &bytes, now);
    }
    Ok(holds)
}
