//! Key-value entries with a lifetime, and the sweep that removes them once it has passed
//! (docs/key-value.md).
//!
//! Spin's key-value interface has no TTL, so every entry that should not outlive something
//! (a revoked session, a rate-limit window, a cached ownership answer) is written under one of
//! [`LIFETIME_PREFIXES`] with a value that carries its end: a JSON integer (Unix seconds) or a
//! JSON object with an integer `exp`. Lookups are unchanged (one `get`/`exists` by name); the
//! entry is simply no longer needed after `exp`.
//!
//! The sweep runs inside requests that write such an entry, at most once per interval across
//! the app, claimed through the [`SWEEP_MARKER`] entry: list the keys (`get_keys`, the only way
//! Spin offers), read a bounded [`SWEEP_BATCH`] of lifetime entries after the marker's cursor
//! (in key order, so successive sweeps cover every entry), delete the ones that ended at least
//! [`SWEEP_GRACE_SECS`] ago, and store the cursor. A lap that is not finished is due again at
//! once: the next request that writes such an entry reads the next batch, so the sweep keeps
//! up with any write rate (each writing request adds a few entries and may read
//! [`SWEEP_BATCH`]) while no single request pays for more than one batch. This module decides;
//! `streamgate_spin` does the I/O.

use serde::{Deserialize, Serialize};

/// `session:revoked:<jti>` → the token's `exp`: logout's revocation list.
pub const REVOKED_SESSION_PREFIX: &str = "session:revoked:";
/// `rl:<scope>:<subject>` → a [`crate::rate_limit::Window`].
pub const RATE_LIMIT_PREFIX: &str = "rl:";
/// `gate:<chain>:<contract>:…` → a [`crate::gate::CachedAnswer`].
pub const GATE_CACHE_PREFIX: &str = "gate:";
/// Every key whose entry has a lifetime. The sweep looks at these and at nothing else.
pub const LIFETIME_PREFIXES: [&str; 3] =
    [REVOKED_SESSION_PREFIX, RATE_LIMIT_PREFIX, GATE_CACHE_PREFIX];

/// The sweep's own entry: when the next sweep is due and where the last one stopped.
pub const SWEEP_MARKER: &str = "kv:sweep";
/// How often a sweep may run, unless `key_value_sweep_secs` says otherwise.
pub const DEFAULT_SWEEP_SECS: i64 = 30;
/// Lifetime entries read (one `get` each) by one sweep.
pub const SWEEP_BATCH: usize = 128;
/// An entry is removed this long after its end, not at once: instances whose clocks differ by
/// less than this never see a revocation disappear while they still take its token as live.
pub const SWEEP_GRACE_SECS: i64 = 5;

/// Whether `key` names an entry with a lifetime.
pub fn has_lifetime(key: &str) -> bool {
    LIFETIME_PREFIXES.iter().any(|p| key.starts_with(p))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    At(i64),
    Object { exp: i64 },
}

/// The end a lifetime value carries: a JSON integer, or a JSON object's integer `exp`.
pub fn expires_at(value: &[u8]) -> Option<i64> {
    match serde_json::from_slice::<Stored>(value).ok()? {
        Stored::At(exp) | Stored::Object { exp } => Some(exp),
    }
}

/// Whether the sweep removes the entry `key` = `value` at `now`: its end passed at least
/// [`SWEEP_GRACE_SECS`] ago. A value that carries no end was written by an older version:
/// removed (a rate window or a cached answer: forgetting one costs a recount or one chain
/// call), except a revocation, which is kept (never un-revoke a token by accident).
pub fn is_expired(key: &str, value: &[u8], now: i64) -> bool {
    match expires_at(value) {
        Some(exp) => now >= exp.saturating_add(SWEEP_GRACE_SECS),
        None => !key.starts_with(REVOKED_SESSION_PREFIX),
    }
}

/// The value of [`SWEEP_MARKER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// No sweep before this time (Unix seconds).
    pub due: i64,
    /// The last key the previous sweep read; the next one starts after it. `None`: from the
    /// first key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Marker {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    /// Anything unreadable is no marker: a sweep is due.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Whether a sweep should run now: no marker, its time has come, or it names a time further
/// ahead than one interval (the clock was stepped back; waiting for it would stop sweeping).
pub fn sweep_due(marker: Option<&Marker>, now: i64, interval_secs: i64) -> bool {
    match marker {
        None => true,
        Some(m) => now >= m.due || m.due > now.saturating_add(interval_secs.max(1)),
    }
}

/// The marker a sweep writes before it starts, so that concurrent requests skip it.
pub fn claim(previous: Option<&Marker>, now: i64, interval_secs: i64) -> Marker {
    Marker {
        due: now.saturating_add(interval_secs.max(1)),
        after: previous.and_then(|m| m.after.clone()),
    }
}

/// The lifetime keys one sweep reads, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub keys: Vec<String>,
    /// Whether the batch reaches the last lifetime key (the next sweep starts over).
    pub lap_done: bool,
}

/// Picks the next batch from all the store's keys: at most `limit` lifetime keys after
/// `after` (from the start when there is none after it).
pub fn next_batch(all_keys: Vec<String>, after: Option<&str>, limit: usize) -> Batch {
    let mut keys: Vec<String> = all_keys.into_iter().filter(|k| has_lifetime(k)).collect();
    keys.sort_unstable();
    let mut start = after.map_or(0, |a| keys.partition_point(|k| k.as_str() <= a));
    if start >= keys.len() {
        start = 0;
    }
    let end = start.saturating_add(limit.max(1)).min(keys.len());
    let lap_done = end == keys.len();
    keys.truncate(end);
    keys.drain(..start);
    Batch { keys, lap_done }
}

impl Batch {
    /// The marker a sweep leaves: due after the full interval once a lap is finished, at once
    /// otherwise, with the cursor at the last key read.
    pub fn next_marker(&self, now: i64, interval_secs: i64) -> Marker {
        if self.lap_done {
            Marker {
                due: now.saturating_add(interval_secs.max(1)),
                after: None,
            }
        } else {
            Marker {
                due: now,
                after: self.keys.last().cloned(),
            }
        }
    }
}

/// The sweep interval from `key_value_sweep_secs`: whole seconds, at least 1; absent, empty
/// or unreadable is [`DEFAULT_SWEEP_SECS`] (the sweep is housekeeping: a bad value must not
/// fail the request that happens to run it).
pub fn sweep_interval(setting: Option<&str>) -> i64 {
    setting
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s >= 1)
        .unwrap_or(DEFAULT_SWEEP_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn which_keys_have_a_lifetime() {
        for key in [
            "session:revoked:0a1b",
            "rl:nonce_ip:203.0.113.9",
            "gate:31337:0xabc:erc721::1:0xdef",
        ] {
            assert!(has_lifetime(key), "{key}");
        }
        for key in [SWEEP_MARKER, "streamgate:ready", "session:other", "rlx", ""] {
            assert!(!has_lifetime(key), "{key}");
        }
        // The prefixes are the ones the writers use.
        assert!(has_lifetime(&crate::rate_limit::rate_limit_key(
            "verify_ip",
            "x"
        )));
    }

    #[test]
    fn values_carry_their_end() {
        assert_eq!(expires_at(b"1714564800"), Some(1_714_564_800));
        assert_eq!(expires_at(br#"{"start":1,"count":2,"exp":61}"#), Some(61));
        assert_eq!(expires_at(br#"{"holds":true,"exp":130}"#), Some(130));
        for unreadable in [
            &b""[..],
            b"garbage",
            b"1.5",
            br#"{"start":1,"count":2}"#,
            br#"{"exp":"soon"}"#,
            b"99999999999999999999",
        ] {
            assert_eq!(expires_at(unreadable), None);
        }
        // What the writers store reads back.
        let window = crate::rate_limit::Window {
            start: 100,
            count: 1,
            exp: 160,
        };
        assert_eq!(expires_at(&window.to_bytes()), Some(160));
        let answer = crate::gate::CacheTtl {
            positive_secs: 30,
            negative_secs: 5,
        }
        .answer(true, 100);
        assert_eq!(expires_at(&serde_json::to_vec(&answer).unwrap()), Some(130));
    }

    #[test]
    fn entries_go_a_grace_period_after_their_end() {
        let rl = "rl:nonce_ip:x";
        assert!(!is_expired(rl, b"100", 100));
        assert!(!is_expired(rl, b"100", 100 + SWEEP_GRACE_SECS - 1));
        assert!(is_expired(rl, b"100", 100 + SWEEP_GRACE_SECS));
        // No end: an older version's rate window goes; a revocation stays.
        assert!(is_expired(rl, br#"{"start":1,"count":2}"#, 0));
        assert!(!is_expired("session:revoked:ab", b"garbage", i64::MAX));
        assert!(is_expired("session:revoked:ab", b"100", 200));
        // Extremes saturate.
        assert!(!is_expired(rl, b"9223372036854775807", i64::MAX - 1));
        assert!(!is_expired(rl, b"-9223372036854775808", i64::MIN));
        assert!(is_expired(
            rl,
            b"-9223372036854775808",
            i64::MIN + SWEEP_GRACE_SECS
        ));
    }

    #[test]
    fn a_sweep_is_due_once_per_interval() {
        assert!(sweep_due(None, 1000, 30));
        let m = Marker {
            due: 1030,
            after: None,
        };
        assert!(!sweep_due(Some(&m), 1000, 30));
        assert!(!sweep_due(Some(&m), 1029, 30));
        assert!(sweep_due(Some(&m), 1030, 30));
        // The clock went back an hour: not an hour without sweeps.
        assert!(sweep_due(Some(&m), 1000 - 3600, 30));
        let claimed = claim(
            Some(&Marker {
                due: 0,
                after: Some("rl:b".into()),
            }),
            1000,
            30,
        );
        assert_eq!(
            claimed,
            Marker {
                due: 1030,
                after: Some("rl:b".into())
            }
        );
        assert_eq!(Marker::from_bytes(&claimed.to_bytes()), Some(claimed));
        assert_eq!(Marker::from_bytes(b"junk"), None);
        assert_eq!(claim(None, i64::MAX, 30).due, i64::MAX);
    }

    #[test]
    fn successive_batches_cover_every_lifetime_key_in_order() {
        let all = keys(&[
            "rl:c",
            "kv:sweep",
            "gate:a",
            "session:revoked:e",
            "rl:a",
            "streamgate:ready",
            "rl:b",
        ]);
        let first = next_batch(all.clone(), None, 2);
        assert_eq!(first.keys, keys(&["gate:a", "rl:a"]));
        assert!(!first.lap_done);
        let m = first.next_marker(1000, 30);
        assert_eq!(
            m,
            Marker {
                due: 1000,
                after: Some("rl:a".into())
            }
        );
        let second = next_batch(all.clone(), m.after.as_deref(), 2);
        assert_eq!(second.keys, keys(&["rl:b", "rl:c"]));
        let third = next_batch(
            all.clone(),
            second.next_marker(1001, 30).after.as_deref(),
            2,
        );
        assert_eq!(third.keys, keys(&["session:revoked:e"]));
        assert!(third.lap_done);
        assert_eq!(
            third.next_marker(1002, 30),
            Marker {
                due: 1032,
                after: None
            }
        );
        // The cursor's key was deleted meanwhile: go on from where it would be.
        let gone = next_batch(keys(&["rl:a", "rl:c"]), Some("rl:b"), 5);
        assert_eq!(gone.keys, keys(&["rl:c"]));
        // Past the end: start over.
        let over = next_batch(keys(&["rl:a"]), Some("zzz"), 5);
        assert_eq!((over.keys, over.lap_done), (keys(&["rl:a"]), true));
        // Nothing to sweep.
        let none = next_batch(keys(&["kv:sweep"]), None, 5);
        assert!(none.keys.is_empty() && none.lap_done);
        // A lap of one batch, and a zero limit still makes progress.
        assert!(next_batch(all.clone(), None, 100).lap_done);
        assert_eq!(next_batch(all, None, 0).keys.len(), 1);
        // An unfinished lap is due again at once, whatever the interval.
        let partial = next_batch(keys(&["rl:a", "rl:b"]), None, 1);
        assert_eq!(partial.next_marker(10, 3600).due, 10);
        assert!(sweep_due(Some(&partial.next_marker(10, 3600)), 10, 3600));
    }

    #[test]
    fn the_interval_setting() {
        assert_eq!(sweep_interval(None), DEFAULT_SWEEP_SECS);
        assert_eq!(sweep_interval(Some("")), DEFAULT_SWEEP_SECS);
        assert_eq!(sweep_interval(Some("0")), DEFAULT_SWEEP_SECS);
        assert_eq!(sweep_interval(Some("-5")), DEFAULT_SWEEP_SECS);
        assert_eq!(sweep_interval(Some("soon")), DEFAULT_SWEEP_SECS);
        assert_eq!(sweep_interval(Some(" 5 ")), 5);
    }
}
