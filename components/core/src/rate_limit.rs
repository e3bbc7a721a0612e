//! Fixed-window rate limiting as a pure decision, so the component keeps the counters in
//! key-value: read the key's [`Window`] (if any), call [`decide`], write back the returned
//! window (when allowed), and answer 429 with `Retry-After` when limited.
//!
//! A window starts at the first request after the previous one ended and lasts
//! `window_secs`; at most `max` requests are allowed in it. Known limits of the scheme: a
//! client can fit up to `2 * max` requests across a window boundary, and key-value has no
//! compare-and-swap, so two concurrent requests may both read the same count (the limit is
//! approximate by the degree of concurrency). Both are acceptable for abuse limits on sign-in.

use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;

/// The stored state of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Unix seconds when the window began.
    pub start: i64,
    /// Requests allowed so far in it.
    pub count: u32,
    /// When the window ends (`start` + the limit's length when it was written): the entry's
    /// lifetime for the key-value sweep ([`crate::key_value`]). The limit itself reads the
    /// length from its configuration. Windows stored before this field read as 0.
    #[serde(default)]
    pub exp: i64,
}

impl Window {
    /// The key-value encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    /// Reads a stored window; anything unreadable counts as no window (a fresh start).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A limit: `max` requests per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; store `window` back. `remaining` requests are left in it.
    Allowed { window: Window, remaining: u32 },
    /// Refuse with 429 and `Retry-After: retry_after` (seconds, at least 1). Nothing to store.
    Limited { retry_after: u64 },
}

/// The window in force at `now`: the stored one if it has not ended, else a fresh one.
fn current(stored: Option<Window>, limit: Limit, now: i64) -> Window {
    let len = i64::from(limit.window_secs.max(1));
    // A window from the future (clock stepped back) is treated as over.
    let window = stored
        .filter(|w| w.start <= now && now < w.start.saturating_add(len))
        .unwrap_or(Window {
            start: now,
            count: 0,
            exp: 0,
        });
    Window {
        exp: window.start.saturating_add(len),
        ..window
    }
}

/// Whether one more request at `now` would be refused, without counting it: `Some(retry_after)`
/// when the window is full. For limits that count only some outcomes (failed sign-ins): ask
/// this before the work, and count with [`decide`] once the outcome is known.
pub fn limited(stored: Option<Window>, limit: Limit, now: i64) -> Option<u64> {
    let window = current(stored, limit, now);
    (window.count >= limit.max).then(|| {
        let ends = window
            .start
            .saturating_add(i64::from(limit.window_secs.max(1)));
        u64::try_from(ends.saturating_sub(now)).unwrap_or(1).max(1)
    })
}

/// Decides one request at `now` (Unix seconds), counting it when it is allowed.
pub fn decide(stored: Option<Window>, limit: Limit, now: i64) -> Decision {
    if let Some(retry_after) = limited(stored, limit, now) {
        return Decision::Limited { retry_after };
    }
    let window = current(stored, limit, now);
    let window = Window {
        count: window.count + 1,
        ..window
    };
    Decision::Allowed {
        window,
        remaining: limit.max - window.count,
    }
}

/// How long the key-value entry is worth keeping (a TTL, if the store has one).
pub fn window_ttl_secs(limit: Limit) -> u32 {
    limit.window_secs.max(1)
}

/// The counter key for one scope (e.g. `"verify"`) and subject (e.g. `"ip:203.0.113.9"`).
pub fn rate_limit_key(scope: &str, subject: &str) -> String {
    format!("{}{scope}:{subject}", crate::key_value::RATE_LIMIT_PREFIX)
}

/// Whether a sign-in attempt that ended in `error` counts as a failure against its client:
/// every refusal of what the client sent (4xx: unreadable or oversized body, malformed or
/// foreign message, stale nonce, bad signature, …), but not a 429 (a limit already said no)
/// nor a 5xx (our store or the chain failed, not the client).
pub fn is_client_failure(error: &ApiError) -> bool {
    (400..500).contains(&error.status) && error.status != 429
}

/// The 429 answer; the component also sets `Retry-After: <retry_after>`.
pub fn rate_limited_error(retry_after: u64) -> ApiError {
    ApiError::new(
        429,
        "rate_limited",
        format!("too many requests; retry after {retry_after} s"),
    )
    .with_retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limit = Limit {
        max: 3,
        window_secs: 60,
    };

    fn run(stored: &mut Option<Window>, now: i64) -> Decision {
        let d = decide(*stored, L, now);
        if let Decision::Allowed { window, .. } = d {
            *stored = Some(window);
        }
        d
    }

    #[test]
    fn fixed_window() {
        let mut s = None;
        let t = 1000;
        assert_eq!(
            run(&mut s, t),
            Decision::Allowed {
                window: Window {
                    start: t,
                    count: 1,
                    exp: t + 60
                },
                remaining: 2
            }
        );
        assert!(matches!(
            run(&mut s, t + 10),
            Decision::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            run(&mut s, t + 20),
            Decision::Allowed { remaining: 0, .. }
        ));
        assert_eq!(run(&mut s, t + 30), Decision::Limited { retry_after: 30 });
        assert_eq!(run(&mut s, t + 59), Decision::Limited { retry_after: 1 });
        // A new window at t + 60.
        assert_eq!(
            run(&mut s, t + 60),
            Decision::Allowed {
                window: Window {
                    start: t + 60,
                    count: 1,
                    exp: t + 120
                },
                remaining: 2
            }
        );
    }

    #[test]
    fn odd_inputs() {
        // Zero max: always limited, never a panic.
        let zero = Limit {
            max: 0,
            window_secs: 0,
        };
        assert_eq!(decide(None, zero, 5), Decision::Limited { retry_after: 1 });
        // A window from the future is discarded.
        let future = Some(Window {
            start: 2000,
            count: 99,
            exp: 2060,
        });
        assert!(matches!(decide(future, L, 1000), Decision::Allowed { .. }));
        // Extreme times saturate.
        assert!(matches!(
            decide(None, L, i64::MAX),
            Decision::Allowed { .. }
        ));
        let full = Some(Window {
            start: i64::MAX - 10,
            count: 3,
            exp: i64::MAX,
        });
        assert_eq!(
            decide(full, L, i64::MAX - 5),
            Decision::Limited { retry_after: 5 }
        );
    }

    #[test]
    fn peeking_does_not_count() {
        let t = 1000;
        assert_eq!(limited(None, L, t), None);
        let mut s = None;
        for i in 0..3 {
            // Asking any number of times leaves the count where it is.
            assert_eq!(limited(s, L, t + i), None);
            assert_eq!(limited(s, L, t + i), None);
            run(&mut s, t + i);
        }
        assert_eq!(limited(s, L, t + 10), Some(50));
        assert_eq!(run(&mut s, t + 10), Decision::Limited { retry_after: 50 });
        // The window ends: allowed again, still without counting.
        assert_eq!(limited(s, L, t + 60), None);
        assert_eq!(
            s,
            Some(Window {
                start: t,
                count: 3,
                exp: t + 60
            })
        );
        let zero = Limit {
            max: 0,
            window_secs: 60,
        };
        assert_eq!(limited(None, zero, t), Some(60));
    }

    #[test]
    fn what_counts_as_a_client_failure() {
        for (status, code) in [
            (400, "invalid_message"),
            (400, "invalid_json"),
            (401, "bad_signature"),
            (401, "domain_mismatch"),
            (401, "nonce_unknown"),
            (413, "payload_too_large"),
            (422, "chain_not_supported"),
        ] {
            assert!(
                is_client_failure(&ApiError::new(status, code, "x")),
                "{code}"
            );
        }
        for (status, code) in [
            (429, "rate_limited"),
            (503, "signature_check_unavailable"),
            (503, "store_unavailable"),
            (500, "internal_error"),
        ] {
            assert!(
                !is_client_failure(&ApiError::new(status, code, "x")),
                "{code}"
            );
        }
    }

    #[test]
    fn storage_and_errors() {
        let w = Window {
            start: 7,
            count: 2,
            exp: 67,
        };
        assert_eq!(Window::from_bytes(&w.to_bytes()), Some(w));
        assert_eq!(Window::from_bytes(b"garbage"), None);
        // A window stored before it carried its end still counts.
        let old = Window::from_bytes(br#"{"start":7,"count":2}"#).unwrap();
        assert_eq!((old.start, old.count, old.exp), (7, 2, 0));
        assert!(matches!(
            decide(Some(old), L, 10),
            Decision::Allowed {
                remaining: 0,
                window: Window { exp: 67, .. }
            }
        ));
        assert_eq!(rate_limit_key("nonce", "ip:1.2.3.4"), "rl:nonce:ip:1.2.3.4");
        let e = rate_limited_error(30);
        assert_eq!((e.status, e.code), (429, "rate_limited"));
        assert_eq!(window_ttl_secs(L), 60);
    }
}
