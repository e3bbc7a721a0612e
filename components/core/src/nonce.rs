//! Server nonces for sign-in: 128 random bits written as 22 base62 characters, which is
//! alphanumeric as EIP-4361 requires (`8*( ALPHA / DIGIT )`) and well above its 96-bit floor.
//!
//! The random bytes are injected (the component reads them from the host, e.g. `wasi:random`),
//! so this module is pure. Storage (SQLite, single use, atomic burn) is the component's.

/// Random bytes per nonce.
pub const NONCE_RANDOM_BYTES: usize = 16;
/// Characters per nonce: ceil(128 / log2(62)) = 22.
pub const NONCE_LEN: usize = 22;
/// Default lifetime of an issued nonce.
pub const NONCE_TTL_SECS: i64 = 300;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes 128 random bits as a fixed-width base62 nonce. The encoding is a bijection
/// (a number written in base 62, zero-padded), so no entropy is lost and none is biased.
pub fn generate_nonce(random: [u8; NONCE_RANDOM_BYTES]) -> String {
    let mut n = u128::from_be_bytes(random);
    let mut out = [b'0'; NONCE_LEN];
    for slot in out.iter_mut().rev() {
        // `n % 62 < 62`, so the index is always in range.
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("a nonce has {NONCE_LEN} characters, not {0}")]
    Length(usize),
    #[error("a nonce has only letters and digits")]
    Character,
    /// 22 base62 digits can exceed 2^128; a nonce we issued never does.
    #[error("not a nonce this service issued")]
    OutOfRange,
}

/// Checks that a presented nonce has the exact form [`generate_nonce`] produces, before any
/// database lookup. Returns the nonce unchanged.
pub fn parse_nonce(s: &str) -> Result<&str, NonceError> {
    if s.len() != NONCE_LEN {
        return Err(NonceError::Length(s.len()));
    }
    let mut n: u128 = 0;
    for b in s.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return Err(NonceError::Character),
        };
        n = n
            .checked_mul(62)
            .and_then(|n| n.checked_add(u128::from(digit)))
            .ok_or(NonceError::OutOfRange)?;
    }
    Ok(s)
}

/// When a nonce issued at `now` stops being accepted.
pub fn nonce_expires_at(now: i64) -> i64 {
    now.saturating_add(NONCE_TTL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_alphanumeric_and_round_trips() {
        assert_eq!(generate_nonce([0; 16]), "0".repeat(22));
        let max = generate_nonce([0xff; 16]);
        assert_eq!(max, "7n42DGM5Tflk9n8mt7Fhc7");
        assert_eq!(parse_nonce(&max), Ok(max.as_str()));
        let n = generate_nonce(*b"0123456789abcdef");
        assert_eq!(n.len(), NONCE_LEN);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(parse_nonce(&n).is_ok());
        assert_ne!(generate_nonce([1; 16]), generate_nonce([2; 16]));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_nonce("abc"), Err(NonceError::Length(3)));
        assert_eq!(parse_nonce(&"a".repeat(23)), Err(NonceError::Length(23)));
        assert_eq!(
            parse_nonce("aaaaaaaaaaaaaaaaaaaaa-"),
            Err(NonceError::Character)
        );
        assert_eq!(
            parse_nonce("zzzzzzzzzzzzzzzzzzzzzz"),
            Err(NonceError::OutOfRange)
        );
        // Multibyte characters are rejected by length or character, never sliced.
        assert!(parse_nonce("ééééééééééé").is_err());
        assert_eq!(nonce_expires_at(100), 400);
    }
}
