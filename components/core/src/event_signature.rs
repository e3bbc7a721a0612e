//! Signatures of the events the native side sends to `/internal/v1/events`, in the form Stripe,
//! Mux and Livepeer use for webhooks: `StreamGate-Signature: t=<unix>,v1=<hex>` where the hex is
//! `HMAC-SHA256(key, "<t>.<raw body>")`. Several `v1=` may be present during key rotation.

use crate::api_error::ApiError;
use crate::keys::{hmac_sha256, hmac_sha256_verify};

pub const HEADER: &str = "streamgate-signature";
/// How far an event's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;

pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        alloy_primitives::hex::encode(hmac_sha256(key, &message))
    )
}

/// What a signature header says, checked as far as it can be without the body.
#[derive(Debug)]
pub struct SignatureHeader<'a> {
    pub timestamp: i64,
    tags: Vec<&'a str>,
}

/// Length of a `v1` tag: the hex of an HMAC-SHA256.
const TAG_HEX_LEN: usize = 64;

fn rejected(why: &str) -> ApiError {
    ApiError::new(
        401,
        "bad_event_signature",
        format!("event signature rejected: {why}"),
    )
}

/// Checks the signature header alone, before the body is read: present, parseable, its
/// timestamp within [`TOLERANCE_SECS`] of `now`, at least one `v1` tag the length of an
/// HMAC-SHA256 in hex. A request that fails here can never verify, so the receiver refuses it
/// without reading a byte of its body.
pub fn check_header(header: Option<&str>, now: i64) -> Result<SignatureHeader<'_>, ApiError> {
    let header = header.ok_or_else(|| rejected("no StreamGate-Signature header"))?;
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", tag))
                if tag.len() == TAG_HEX_LEN && tag.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                tags.push(tag)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| rejected("no timestamp"))?;
    // `abs_diff` cannot overflow: a timestamp anywhere in i64 (or a receiver's clock anywhere)
    // is just far away.
    if now.abs_diff(timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(ApiError::new(
            401,
            "stale_event",
            format!(
                "the event's timestamp is more than {TOLERANCE_SECS} s from the receiver's clock"
            ),
        ));
    }
    if tags.is_empty() {
        return Err(rejected("no v1 signature of 64 hex digits"));
    }
    Ok(SignatureHeader { timestamp, tags })
}

impl SignatureHeader<'_> {
    /// Checks the tags over `body` against any of `keys`.
    pub fn verify(&self, keys: &[&[u8]], body: &[u8]) -> Result<i64, ApiError> {
        let mut message = format!("{}.", self.timestamp).into_bytes();
        message.extend_from_slice(body);
        let genuine = self.tags.iter().any(|tag| {
            keys.iter()
                .any(|key| hmac_sha256_verify(key, &message, tag))
        });
        if genuine {
            Ok(self.timestamp)
        } else {
            Err(rejected("no signature matches"))
        }
    }
}

/// Checks a signature header for `body` at `now` against any of `keys`.
pub fn verify(
    header: Option<&str>,
    keys: &[&[u8]],
    body: &[u8],
    now: i64,
) -> Result<i64, ApiError> {
    check_header(header, now)?.verify(keys, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_forgery_staleness_rotation() {
        let body = br#"{"id":"e1","type":"upload.completed"}"#;
        let header = sign(b"k1", 1000, body);
        assert_eq!(verify(Some(&header), &[b"k1"], body, 1100).unwrap(), 1000);
        assert_eq!(
            verify(Some(&header), &[b"k2", b"k1"], body, 1100).unwrap(),
            1000
        );
        assert_eq!(
            verify(Some(&header), &[b"k2"], body, 1100)
                .unwrap_err()
                .code,
            "bad_event_signature"
        );
        assert_eq!(
            verify(Some(&header), &[b"k1"], b"{}", 1100)
                .unwrap_err()
                .code,
            "bad_event_signature"
        );
        assert_eq!(
            verify(Some(&header), &[b"k1"], body, 1301)
                .unwrap_err()
                .code,
            "stale_event"
        );
        assert_eq!(
            verify(Some(&header), &[b"k1"], body, 699).unwrap_err().code,
            "stale_event"
        );
        assert_eq!(
            verify(None, &[b"k1"], body, 1000).unwrap_err().code,
            "bad_event_signature"
        );
        // A timestamp changed after signing breaks the signature.
        let moved = header.replacen("t=1000", "t=1200", 1);
        assert_eq!(
            verify(Some(&moved), &[b"k1"], body, 1200).unwrap_err().code,
            "bad_event_signature"
        );
    }

    #[test]
    fn the_header_alone_is_refused_when_it_can_never_verify() {
        let now = 1_714_564_800;
        let tag = "ab".repeat(32);
        assert!(check_header(Some(&format!("t={now},v1={tag}")), now).is_ok());
        for (header, code) in [
            (None, "bad_event_signature"),
            (Some(String::new()), "bad_event_signature"),
            (Some(format!("v1={tag}")), "bad_event_signature"),
            (Some(format!("t=soon,v1={tag}")), "bad_event_signature"),
            (Some(format!("t={now}")), "bad_event_signature"),
            (Some(format!("t={now},v1=00")), "bad_event_signature"),
            (
                Some(format!("t={now},v1={}", "zz".repeat(32))),
                "bad_event_signature",
            ),
            (Some(format!("t={now},v1={tag}0")), "bad_event_signature"),
            (Some(format!("t={},v1={tag}", now - 301)), "stale_event"),
        ] {
            assert_eq!(
                check_header(header.as_deref(), now).unwrap_err().code,
                code,
                "{header:?}"
            );
        }
        // One well-formed tag among malformed ones is enough to go on to the body.
        let header = format!("t={now},v1=00,v1={tag}");
        assert!(check_header(Some(&header), now).is_ok());
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let body = b"{}";
        let now = 1_714_564_800;
        for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let header = sign(b"k1", t, body);
            assert_eq!(
                verify(Some(&header), &[b"k1"], body, now).unwrap_err().code,
                "stale_event",
                "t={t}"
            );
            // A receiver whose clock is at the other end of the range.
            for clock in [i64::MIN, i64::MAX] {
                if clock.abs_diff(t) > 300 {
                    assert_eq!(
                        verify(Some(&header), &[b"k1"], body, clock)
                            .unwrap_err()
                            .code,
                        "stale_event",
                        "t={t} now={clock}"
                    );
                }
            }
        }
        // At the ends of the range a genuine, fresh event still verifies.
        for t in [i64::MIN, i64::MAX] {
            let header = sign(b"k1", t, body);
            assert_eq!(verify(Some(&header), &[b"k1"], body, t).unwrap(), t);
        }
        let edge = sign(b"k1", i64::MAX - 300, body);
        assert!(verify(Some(&edge), &[b"k1"], body, i64::MAX).is_ok());
        let edge = sign(b"k1", i64::MIN + 300, body);
        assert!(verify(Some(&edge), &[b"k1"], body, i64::MIN).is_ok());
        // A timestamp that does not fit i64 is no timestamp at all.
        let header = "t=9223372036854775808,v1=00";
        assert_eq!(
            verify(Some(header), &[b"k1"], body, now).unwrap_err().code,
            "bad_event_signature"
        );
    }
}
