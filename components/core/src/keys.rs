//! Purpose-bound keys and the HMAC they are used with.
//!
//! One configured secret may serve several token kinds (the Spin app and the native side share
//! `events_secret`); a derived key per purpose makes a token of one kind useless as another.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

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
    fn purposes_give_different_keys() {
        assert_ne!(derive("s", "upload"), derive("s", "events"));
        assert_eq!(derive("s", "upload"), derive("s", "upload"));
    }
}
