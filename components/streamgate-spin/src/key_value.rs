//! Key-value entries with a lifetime: writing them, and the amortised sweep that removes them
//! after their end (decisions in `streamgate_core::key_value`, design in docs/key-value.md).
//! Only Spin's own interface is used (`get`, `set`, `delete`, `get_keys`), so it works the same
//! on the embedded host, `spin up`, Fermyon Cloud and SpinKube, whatever backs the store.

use std::sync::atomic::{AtomicI64, Ordering};

use spin_sdk::key_value::{Error, Store};
use streamgate_core::key_value::{self as kv, Marker};

use crate::config;

/// The second this instance last looked at the marker. Spin makes an instance per request, so
/// this is "once per request"; a host that reused instances would still look once a second.
static LAST_LOOK: AtomicI64 = AtomicI64::new(i64::MIN);

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Lifetime entries read.
    pub read: usize,
    /// Of those, removed.
    pub removed: usize,
}

/// Writes an entry with a lifetime: `key` under one of `streamgate_core::key_value`'s
/// `LIFETIME_PREFIXES`, `value` carrying its end (`exp`). Then sweeps if a sweep is due. A
/// write the store refuses (a full store: Fermyon Cloud holds 1,024 keys) sweeps at once,
/// whatever the marker says, and is tried once more.
pub fn set_expiring(store: &Store, key: &str, value: &[u8], now: i64) -> Result<(), Error> {
    debug_assert!(kv::has_lifetime(key), "{key} has no lifetime prefix");
    let written = store.set(key, value).or_else(|_| {
        let _ = sweep(store, now, true);
        store.set(key, value)
    });
    sweep_if_due(store, now);
    written
}

/// Sweeps if the marker says one is due; at most one look at the marker per request.
/// Housekeeping: a store error here never fails the request.
pub fn sweep_if_due(store: &Store, now: i64) {
    if LAST_LOOK.swap(now, Ordering::Relaxed) == now {
        return;
    }
    let _ = sweep(store, now, false);
}

/// `key_value_sweep_secs` (optional; default and bad values: 30 s).
fn interval() -> i64 {
    kv::sweep_interval(config::optional("key_value_sweep_secs").as_deref())
}

/// One sweep: claim the marker (so concurrent requests skip), read a batch of lifetime entries
/// after the cursor, delete the expired ones, leave the cursor and the next due time. `None`
/// when none was due (and `force` is false).
pub fn sweep(store: &Store, now: i64, force: bool) -> Result<Option<Swept>, Error> {
    let interval = interval();
    let marker = store
        .get(kv::SWEEP_MARKER)?
        .and_then(|bytes| Marker::from_bytes(&bytes));
    if !force && !kv::sweep_due(marker.as_ref(), now, interval) {
        return Ok(None);
    }
    // Without compare-and-swap two requests may both claim: then both sweep, which is only
    // double work. A claim a full store refuses does not stop the sweep that makes room.
    let _ = store.set(
        kv::SWEEP_MARKER,
        &kv::claim(marker.as_ref(), now, interval).to_bytes(),
    );
    let after = marker.and_then(|m| m.after);
    let batch = kv::next_batch(store.get_keys()?, after.as_deref(), kv::SWEEP_BATCH);
    let mut removed = 0;
    for key in &batch.keys {
        // Gone meanwhile (another sweep, or a reader): nothing to do.
        if let Some(value) = store.get(key)? {
            if kv::is_expired(key, &value, now) {
                store.delete(key)?;
                removed += 1;
            }
        }
    }
    store.set(
        kv::SWEEP_MARKER,
        &batch.next_marker(now, interval).to_bytes(),
    )?;
    Ok(Some(Swept {
        read: batch.keys.len(),
        removed,
    }))
}
