//! Purpose-bound keys and the HMAC they are used with.
//!
//! One configured secret may serve several token kinds (the Spin app and the native side share
//! `events_secret`); a derived key per purpose makes a token of one kind useless as another.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::api_error::ApiError;

pub type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted, in bytes, for every key and every previous key (session, events,
/// playback; the Spin side and the native side alike): RFC 7518 §3.2 wants an HMAC-SHA256 key at
/// least as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// A configured secret shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` needs at least {} bytes, it has {len}", MIN_SECRET_BYTES)]
pub struct SecretTooShort {
    /// What the operator set: a Spin variable or an environment variable name.
    pub name: String,
    pub len: usize,
}

impl From<SecretTooShort> for ApiError {
    /// 503 `server_misconfigured` naming the variable, not its length (clients read this).
    fn from(e: SecretTooShort) -> Self {
        ApiError::new(
            503,
            "server_misconfigured",
            format!(
                "`{}` needs at least {MIN_SECRET_BYTES} bytes: the service is misconfigured",
                e.name
            ),
        )
    }
}

/// Checks that the secret `name` is long enough; its bytes are taken as they are (UTF-8).
pub fn check_secret(name: &str, secret: &str) -> Result<(), SecretTooShort> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SecretTooShort {
            name: name.to_string(),
            len: secret.len(),
        });
    }
    Ok(())
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Constant-time check of a hex HMAC-SHA256 tag.
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag_hex: &str) -> bool {
    let Ok(tag) = alloy_primitives::hex::decode(tag_hex) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&tag).is_ok()
}

/// `HMAC-SHA256(secret, "streamgate/<purpose>/v1")`.
pub fn derive(secret: &str, purpose: &str) -> [u8; 32] {
    hmac_sha256(
        secret.as_bytes(),
        format!("streamgate/{purpose}/v1").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_test_case_2() {
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            alloy_primitives::hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ));
        assert!(!hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing!",
            "5bdcc146"
        ));
    }

    #[test]
    fn secrets_need_32_bytes() {
        assert!(check_secret("events_secret", &"x".repeat(32)).is_ok());
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert!(check_secret("events_secret", &"€".repeat(11)).is_ok());
        let e = check_secret("events_secret_previous", &"x".repeat(31)).unwrap_err();
        assert_eq!(
            e,
            SecretTooShort {
                name: "events_secret_previous".into(),
                len: 31
            }
        );
        assert!(e.to_string().contains("`events_secret_previous`"));
        assert!(e.to_string().contains("31"));
        let api: ApiError = e.into();
        assert_eq!((api.status, api.code), (503, "server_misconfigured"));
        assert!(api.error.contains("events_secret_previous"));
        assert!(!api.error.contains("31"), "clients are not told the length");
        assert!(check_secret("playback_secret", "").is_err());
    }

    #[test]
    fn purposes_give_different_keys() {
        assert_ne!(derive("s", "upload"), derive("s", "events"));
        assert_eq!(derive("s", "upload"), derive("s", "upload"));
    }
}
