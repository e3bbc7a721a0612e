//! Signed URL tokens in Akamai EdgeAuth 2.0 form, so a CDN can check them at the edge:
//! `st=<unix>~exp=<unix>~acl=<pattern>[!<pattern>…][~data=<text>]~hmac=<hex HMAC-SHA256>`,
//! the HMAC taken over everything before `~hmac=`.
//!
//! Written by hand because no maintained Rust crate implements EdgeAuth; the cryptography is the
//! `hmac`/`sha2` crates'. One difference from Akamai's reference: the key is used as given
//! (bytes), not hex-decoded; configure the CDN with the hex of the same bytes.

use crate::keys::{hmac_sha256, hmac_sha256_verify};

/// Largest token looked at.
pub const MAX_TOKEN_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeToken {
    pub start: i64,
    pub expires: i64,
    pub acl: Vec<String>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token: the URL must carry its signed token")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has expired")]
    Expired,
    /// The token is genuine but does not cover this path (e.g. another video's token).
    #[error("the token does not cover this path")]
    PathNotCovered,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_token",
            Self::Malformed(_) => "invalid_token",
            Self::BadSignature => "invalid_token",
            Self::NotYetValid => "token_not_yet_valid",
            Self::Expired => "token_expired",
            Self::PathNotCovered => "token_wrong_path",
        }
    }
}

fn fields(token: &EdgeToken) -> String {
    let mut s = format!(
        "st={}~exp={}~acl={}",
        token.start,
        token.expires,
        token.acl.join("!")
    );
    if let Some(data) = &token.data {
        s.push_str("~data=");
        s.push_str(data);
    }
    s
}

/// The token string for `token`, signed with `key`.
pub fn sign(token: &EdgeToken, key: &[u8]) -> String {
    let body = fields(token);
    let tag = alloy_primitives::hex::encode(hmac_sha256(key, body.as_bytes()));
    format!("{body}~hmac={tag}")
}

/// Parses and checks a token for `path` at `now`: signature under any of `keys` (current,
/// then previous), time window, and an ACL entry covering the path (`…*` is a prefix).
/// For the machine that signed it (no clock skew); see [`verify_with_leeway`].
pub fn verify(token: &str, keys: &[&[u8]], path: &str, now: i64) -> Result<EdgeToken, TokenError> {
    verify_with_leeway(token, keys, path, now, 0)
}

/// [`verify`] on a machine whose clock may differ from the signer's by up to `leeway_secs`
/// (the media origin, a CDN): the token is accepted from `st - leeway` until just before
/// `exp + leeway`. A negative leeway counts as none.
pub fn verify_with_leeway(
    token: &str,
    keys: &[&[u8]],
    path: &str,
    now: i64,
    leeway_secs: i64,
) -> Result<EdgeToken, TokenError> {
    let leeway = leeway_secs.max(0);
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("too long"));
    }
    let (body, tag) = token
        .rsplit_once("~hmac=")
        .ok_or(TokenError::Malformed("no hmac field"))?;
    if !keys
        .iter()
        .any(|key| hmac_sha256_verify(key, body.as_bytes(), tag))
    {
        return Err(TokenError::BadSignature);
    }
    let parsed = parse_fields(body)?;
    if now < parsed.start.saturating_sub(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if now >= parsed.expires.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if !parsed.acl.iter().any(|pattern| covers(pattern, path)) {
        return Err(TokenError::PathNotCovered);
    }
    Ok(parsed)
}

/// How long an admitted viewer may keep watching: the whole session at most
/// (`playback_session_max_secs`, counted from the admission), and within it the video's length
/// plus time for pauses (`playback_pause_allowance_secs`), counted from the last playlist read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewingPolicy {
    pub session_max_secs: i64,
    pub pause_allowance_secs: i64,
}

/// The token stamped on the URIs of a playlist served for `presented` (already verified) at
/// `now`, for a video `duration_secs` long: the same `st`, `acl` and `data`, and
/// `exp = min(st + session max, now + duration + pause allowance)`, never earlier than the
/// presented token's own `exp`.
///
/// `st` is carried over, so however often a viewing token is presented again it never opens
/// anything past `st + session max`; the entry token (the playback API's, short-lived) is what
/// admits, and it expires on its own schedule.
pub fn viewing_token(
    presented: &EdgeToken,
    now: i64,
    duration_secs: f64,
    policy: ViewingPolicy,
) -> EdgeToken {
    // A float to whole seconds, rounded up; NaN and negatives count as nothing.
    let duration = if duration_secs > 0.0 {
        duration_secs.ceil() as i64
    } else {
        0
    };
    let session_end = presented
        .start
        .saturating_add(policy.session_max_secs.max(0));
    let watch_end = now
        .saturating_add(duration)
        .saturating_add(policy.pause_allowance_secs.max(0));
    EdgeToken {
        start: presented.start,
        expires: session_end.min(watch_end).max(presented.expires),
        acl: presented.acl.clone(),
        data: presented.data.clone(),
    }
}

fn parse_fields(body: &str) -> Result<EdgeToken, TokenError> {
    let (mut start, mut expires, mut acl, mut data) = (None, None, None, None);
    for field in body.split('~') {
        let (name, value) = field
            .split_once('=')
            .ok_or(TokenError::Malformed("a field is not name=value"))?;
        let slot = match name {
            "st" => &mut start,
            "exp" => &mut expires,
            "acl" => &mut acl,
            "data" => &mut data,
            _ => return Err(TokenError::Malformed("unknown field")),
        };
        if slot.replace(value).is_some() {
            return Err(TokenError::Malformed("a field appears twice"));
        }
    }
    let number = |v: Option<&str>, what| {
        v.ok_or(TokenError::Malformed(what))?
            .parse::<i64>()
            .map_err(|_| TokenError::Malformed(what))
    };
    Ok(EdgeToken {
        start: number(start, "st must be a number")?,
        expires: number(expires, "exp must be a number")?,
        acl: acl
            .ok_or(TokenError::Malformed("no acl field"))?
            .split('!')
            .map(str::to_string)
            .collect(),
        data: data.map(str::to_string),
    })
}

/// `…*` covers the paths that start with `…`, but only at a path-segment boundary: an ACL
/// `/uploads/ab*` opens `/uploads/ab` and `/uploads/ab/…`, never `/uploads/abc`. Stricter than a
/// plain wildcard, so one video's token can never open another whose id it prefixes.
fn covers(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            path.starts_with(prefix)
                && (prefix.ends_with('/')
                    || path.len() == prefix.len()
                    || path.as_bytes()[prefix.len()] == b'/')
        }
        None => path == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"playback-key-0123456789abcdef0123";
    const OLD: &[u8] = b"previous-key-0123456789abcdef0123";

    fn token(exp: i64) -> EdgeToken {
        EdgeToken {
            start: 1000,
            expires: exp,
            acl: vec!["/stream/v1/*".into(), "/media/v1/*".into()],
            data: None,
        }
    }

    #[test]
    fn signs_in_edgeauth_form_and_verifies() {
        let t = sign(&token(2000), KEY);
        assert!(t.starts_with("st=1000~exp=2000~acl=/stream/v1/*!/media/v1/*~hmac="));
        assert_eq!(
            t.len(),
            "st=1000~exp=2000~acl=/stream/v1/*!/media/v1/*~hmac=".len() + 64
        );
        let ok = verify(&t, &[KEY], "/media/v1/720p/seg_00001.m4s", 1500).unwrap();
        assert_eq!(ok, token(2000));
        assert!(verify(&t, &[KEY], "/stream/v1/master.m3u8", 1999).is_ok());
    }

    #[test]
    fn refuses_tampering_expiry_other_paths_and_unknown_keys() {
        let t = sign(&token(2000), KEY);
        let tampered = t.replace("exp=2000", "exp=9999");
        assert_eq!(
            verify(&tampered, &[KEY], "/media/v1/a", 1500),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&t, &[KEY], "/media/v1/a", 2000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&t, &[KEY], "/media/v1/a", 999),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            verify(&t, &[KEY], "/media/v2/a", 1500),
            Err(TokenError::PathNotCovered)
        );
        assert_eq!(
            verify(&t, &[KEY], "/media/v10/a", 1500),
            Err(TokenError::PathNotCovered)
        );
        assert_eq!(
            verify(&t, &[OLD], "/media/v1/a", 1500),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify("", &[KEY], "/", 1500), Err(TokenError::Missing));
        assert!(matches!(
            verify("garbage", &[KEY], "/", 1500),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_prefix_wildcard_stops_at_a_segment_boundary() {
        assert!(covers("/uploads/ab*", "/uploads/ab"));
        assert!(covers("/uploads/ab*", "/uploads/ab/x"));
        assert!(!covers("/uploads/ab*", "/uploads/abc"));
        assert!(covers("/media/v1/*", "/media/v1/seg.m4s"));
        assert!(!covers("/media/v1/*", "/media/v10/seg.m4s"));
    }

    #[test]
    fn leeway_widens_the_window_by_the_skew_on_both_sides_and_nothing_else() {
        let t = sign(&token(2000), KEY);
        let at = |now, leeway| verify_with_leeway(&t, &[KEY], "/media/v1/a", now, leeway);
        // [st - leeway, exp + leeway)
        assert!(at(970, 30).is_ok());
        assert_eq!(at(969, 30), Err(TokenError::NotYetValid));
        assert!(at(2029, 30).is_ok());
        assert_eq!(at(2030, 30), Err(TokenError::Expired));
        // No leeway is `verify`; a negative one counts as none.
        assert_eq!(at(2000, 0), verify(&t, &[KEY], "/media/v1/a", 2000));
        assert_eq!(at(2000, -5), Err(TokenError::Expired));
        assert_eq!(at(999, -5), Err(TokenError::NotYetValid));
        // Leeway forgives clocks, not signatures or paths.
        assert_eq!(
            verify_with_leeway(
                &t.replace("exp=2000", "exp=2001"),
                &[KEY],
                "/media/v1/a",
                1500,
                30
            ),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_with_leeway(&t, &[KEY], "/media/v2/a", 1500, 30),
            Err(TokenError::PathNotCovered)
        );
        // Extreme values do not overflow.
        let far = sign(
            &EdgeToken {
                start: i64::MIN,
                expires: i64::MAX,
                ..token(0)
            },
            KEY,
        );
        assert!(verify_with_leeway(&far, &[KEY], "/media/v1/a", 0, i64::MAX).is_ok());
    }

    const POLICY: ViewingPolicy = ViewingPolicy {
        session_max_secs: 4 * 3600,
        pause_allowance_secs: 1800,
    };

    /// An entry token as the playback API issues it: admitted at 1000, 300 s to start.
    fn entry() -> EdgeToken {
        EdgeToken {
            data: Some("0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into()),
            ..token(1300)
        }
    }

    #[test]
    fn a_viewing_token_lasts_the_video_plus_pauses_and_carries_st_acl_and_data() {
        // A 1 h 30 min 0.2 s film, its first playlist read at 1002.
        let v = viewing_token(&entry(), 1002, 5400.2, POLICY);
        assert_eq!(v.start, 1000, "st is the admission, carried over");
        assert_eq!(v.expires, 1002 + 5401 + 1800);
        assert_eq!(v.acl, entry().acl);
        assert_eq!(v.data, entry().data);
        // It verifies where the entry token did, for as long as it says.
        let signed = sign(&v, KEY);
        assert_eq!(
            verify(
                &signed,
                &[KEY],
                "/media/v1/720p/seg_01000.m4s",
                v.expires - 1
            ),
            Ok(v.clone())
        );
        assert_eq!(
            verify(&signed, &[KEY], "/media/v1/a", v.expires),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_viewing_token_is_capped_by_the_session_and_never_shorter_than_the_presented_one() {
        // A 5-hour video: the session limit wins.
        let v = viewing_token(&entry(), 1010, 5.0 * 3600.0, POLICY);
        assert_eq!(v.expires, 1000 + 4 * 3600);
        // A 10 s clip and no pause allowance: still at least the presented token's expiry.
        let short = ViewingPolicy {
            session_max_secs: 3600,
            pause_allowance_secs: 0,
        };
        assert_eq!(viewing_token(&entry(), 1001, 10.0, short).expires, 1300);
        // A session limit shorter than the entry token does not cut the entry token short.
        let tiny = ViewingPolicy {
            session_max_secs: 60,
            pause_allowance_secs: 1800,
        };
        assert_eq!(viewing_token(&entry(), 1001, 10.0, tiny).expires, 1300);
        // Odd durations count as nothing; negative settings as zero.
        for odd in [f64::NAN, -5.0, 0.0] {
            assert_eq!(
                viewing_token(&entry(), 1001, odd, POLICY).expires,
                1001 + 1800
            );
        }
        let negative = ViewingPolicy {
            session_max_secs: -1,
            pause_allowance_secs: -1,
        };
        assert_eq!(viewing_token(&entry(), 1001, 10.0, negative).expires, 1300);
        // Extreme values saturate instead of wrapping.
        let huge = ViewingPolicy {
            session_max_secs: i64::MAX,
            pause_allowance_secs: i64::MAX,
        };
        assert_eq!(
            viewing_token(&entry(), 1001, f64::MAX, huge).expires,
            i64::MAX
        );
    }

    #[test]
    fn presenting_a_viewing_token_again_never_extends_past_the_session_limit() {
        // A viewer (or whoever holds a leaked URL) re-reads the playlist over and over: each
        // answer may reach further, but never past st + session max.
        let mut presented = entry();
        let mut now = 1001;
        for _ in 0..100 {
            let next = viewing_token(&presented, now, 7200.0, POLICY);
            assert_eq!(next.start, 1000);
            assert!(next.expires >= presented.expires, "never shorter");
            assert!(next.expires <= 1000 + POLICY.session_max_secs);
            presented = next;
            now += 600;
        }
        assert_eq!(presented.expires, 1000 + POLICY.session_max_secs);
        // Past the limit the last token no longer verifies, so there is nothing to renew.
        assert_eq!(
            verify(
                &sign(&presented, KEY),
                &[KEY],
                "/stream/v1/master.m3u8",
                1000 + POLICY.session_max_secs
            ),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn rotation_accepts_the_previous_key() {
        let t = sign(&token(2000), OLD);
        assert!(verify(&t, &[KEY, OLD], "/media/v1/a", 1500).is_ok());
    }
}
