//! EIP-191 `personal_sign` digests and secp256k1 signer recovery.
//!
//! The digest is alloy-primitives' `eip191_hash_message` (keccak256 over
//! `"\x19Ethereum Signed Message:\n" + len + message`, keccak from the `sha3` crate); recovery is
//! k256's `recover_from_prehash`; the address is alloy's `Address::from_raw_public_key`.
//! What is written here by hand is only the policy no library applies for us: the 65-byte
//! `r || s || v` layout with `v` in {27, 28} or {0, 1}, and the EIP-2 rejection of high-s
//! signatures (k256 recovers from a high-s signature without complaint).

use alloy_primitives::{eip191_hash_message, hex, Address, B256};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

/// The largest signature accepted on the API (hex-decoded). 65 bytes for a key; smart-wallet
/// signatures (multisig, passkeys, ERC-6492 wrappers with factory calldata) are larger, but
/// not this large.
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `0x` followed by an even number of hex digits.
    #[error("it must be 0x followed by an even number of hex digits")]
    NotHex,
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {} bytes", MAX_SIGNATURE_BYTES)]
    TooLong,
    /// An ECDSA signature is 65 bytes.
    #[error("an ECDSA signature has 65 bytes, not {0}")]
    Length(usize),
    /// `v` is not 27, 28, 0 or 1.
    #[error("v must be 27 or 28 (or 0 or 1), not {0}")]
    V(u8),
    /// `s` is in the upper half of the curve order (EIP-2).
    #[error("s is not in the lower half of the curve order (EIP-2)")]
    HighS,
    /// `r` or `s` is zero or not below the curve order.
    #[error("r or s is out of range")]
    Scalars,
    /// No public key corresponds to the signature.
    #[error("no public key matches it")]
    Recovery,
    /// It ends with the ERC-6492 suffix, but the wrapper is not valid ABI.
    #[error("its ERC-6492 wrapper is not valid ABI")]
    Erc6492,
}

/// The EIP-191 version 0x45 digest that `personal_sign` signs.
pub fn personal_sign_digest(message: &[u8]) -> B256 {
    eip191_hash_message(message)
}

/// Decodes the API's `"signature": "0x…"` field.
pub fn decode_signature_hex(s: &str) -> Result<Vec<u8>, SignatureError> {
    let digits = s.strip_prefix("0x").ok_or(SignatureError::NotHex)?;
    if digits.is_empty() {
        return Err(SignatureError::Empty);
    }
    if digits.len() > MAX_SIGNATURE_BYTES * 2 {
        return Err(SignatureError::TooLong);
    }
    hex::decode(digits).map_err(|_| SignatureError::NotHex)
}

/// Recovers the signer of a 32-byte digest from a 65-byte `r || s || v` signature.
pub fn recover_prehash(digest: &B256, signature: &[u8]) -> Result<Address, SignatureError> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let v = bytes[64];
    let parity = match v {
        27 | 28 => v - 27,
        0 | 1 => v,
        _ => return Err(SignatureError::V(v)),
    };
    let sig = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Scalars)?;
    if sig.normalize_s() != sig {
        return Err(SignatureError::HighS);
    }
    let recid = RecoveryId::new(parity == 1, false);
    let key = VerifyingKey::recover_from_prehash(digest.as_slice(), &sig, recid)
        .map_err(|_| SignatureError::Recovery)?;
    let point = key.to_sec1_point(false);
    // An uncompressed SEC1 point is 0x04 || x || y.
    let raw = point
        .as_bytes()
        .get(1..65)
        .ok_or(SignatureError::Recovery)?;
    Ok(Address::from_raw_public_key(raw))
}

/// Recovers the signer of a `personal_sign` message.
pub fn recover_personal_sign(message: &[u8], signature: &[u8]) -> Result<Address, SignatureError> {
    recover_prehash(&personal_sign_digest(message), signature)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy_primitives::{keccak256, U256};
    use k256::ecdsa::SigningKey;

    /// The well-known anvil/hardhat account 0.
    pub const ANVIL0_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    pub const ANVIL0_ADDR: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    /// Signs like a wallet's `personal_sign` (v = 27/28).
    pub fn sign_personal(key_hex: &str, message: &[u8]) -> Vec<u8> {
        let key = SigningKey::from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let digest = personal_sign_digest(message);
        let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice());
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        out
    }

    /// An address computed independently of `recover_prehash`: from the signing key's own
    /// public key, with keccak256 over x || y.
    fn address_of(key_hex: &str) -> Address {
        let key = SigningKey::from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        Address::from_slice(&hash[12..])
    }

    // A personal_sign signature made by Python's eth-account 0.14.0 (a second, independent
    // implementation) with anvil account 0 over this message:
    //   Account.sign_message(encode_defunct(text=MSG), private_key=ANVIL0_KEY).signature
    const ETH_ACCOUNT_MSG: &str = "StreamGate cross-library vector";
    const ETH_ACCOUNT_SIG: &str = "0x7799c583b9776dc4077f0d60cb0778001ebbd216b540bf1be7e155fec17cdbf933c578710f9b766b8dfd2fe48e1706209f8be89d2ff8eed7dc75073fdde944aa1c";

    #[test]
    fn digest_matches_the_eip191_definition() {
        let msg = b"hello";
        let mut manual = b"\x19Ethereum Signed Message:\n5".to_vec();
        manual.extend_from_slice(msg);
        assert_eq!(personal_sign_digest(msg), keccak256(&manual));
    }

    #[test]
    fn recovers_the_anvil_account() {
        assert_eq!(address_of(ANVIL0_KEY).to_checksum(None), ANVIL0_ADDR);
        let msg = b"Sign in to StreamGate";
        let sig = sign_personal(ANVIL0_KEY, msg);
        let who = recover_personal_sign(msg, &sig).unwrap();
        assert_eq!(who.to_checksum(None), ANVIL0_ADDR);
        // Another key, another address.
        let other = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let sig = sign_personal(other, msg);
        assert_eq!(recover_personal_sign(msg, &sig).unwrap(), address_of(other));
        // A different message recovers someone else.
        assert_ne!(
            recover_personal_sign(b"Sign in to StreamGat3", &sig).unwrap(),
            address_of(other)
        );
    }

    #[test]
    fn cross_library_vector_from_eth_account() {
        let sig = decode_signature_hex(ETH_ACCOUNT_SIG).unwrap();
        let who = recover_personal_sign(ETH_ACCOUNT_MSG.as_bytes(), &sig).unwrap();
        assert_eq!(who.to_checksum(None), ANVIL0_ADDR);
        // RFC 6979 is deterministic, so k256 produces the very same bytes.
        assert_eq!(
            sign_personal(ANVIL0_KEY, ETH_ACCOUNT_MSG.as_bytes()),
            sig,
            "k256 and eth-account disagree"
        );
    }

    #[test]
    fn v_handling() {
        let msg = b"v";
        let sig = sign_personal(ANVIL0_KEY, msg);
        let mut zero_one = sig.clone();
        zero_one[64] -= 27;
        assert_eq!(
            recover_personal_sign(msg, &zero_one).unwrap(),
            recover_personal_sign(msg, &sig).unwrap()
        );
        // The wrong parity recovers a different key, never the signer.
        let mut flipped = sig.clone();
        flipped[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_ne!(
            recover_personal_sign(msg, &flipped).ok(),
            Some(address_of(ANVIL0_KEY))
        );
        for v in [2u8, 26, 29, 35, 37, 255] {
            let mut bad = sig.clone();
            bad[64] = v;
            assert_eq!(recover_personal_sign(msg, &bad), Err(SignatureError::V(v)));
        }
    }

    #[test]
    fn rejects_high_s() {
        let msg = b"malleable";
        let sig = sign_personal(ANVIL0_KEY, msg);
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = U256::from_be_slice(&sig[32..64]);
        let mut high = sig.clone();
        high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        // The malleated twin flips the parity; it would recover the same key, but is refused.
        high[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(
            recover_personal_sign(msg, &high),
            Err(SignatureError::HighS)
        );
    }

    #[test]
    fn rejects_malformed() {
        let msg = b"x";
        let sig = sign_personal(ANVIL0_KEY, msg);
        assert_eq!(
            recover_personal_sign(msg, &sig[..64]),
            Err(SignatureError::Length(64))
        );
        assert_eq!(
            recover_personal_sign(msg, &[]),
            Err(SignatureError::Length(0))
        );
        let mut long = sig.clone();
        long.push(0);
        assert_eq!(
            recover_personal_sign(msg, &long),
            Err(SignatureError::Length(66))
        );
        let mut zero_r = sig.clone();
        zero_r[..32].fill(0);
        assert_eq!(
            recover_personal_sign(msg, &zero_r),
            Err(SignatureError::Scalars)
        );
        let mut big_r = sig.clone();
        big_r[..32].fill(0xff);
        assert_eq!(
            recover_personal_sign(msg, &big_r),
            Err(SignatureError::Scalars)
        );

        assert_eq!(decode_signature_hex("abcd"), Err(SignatureError::NotHex));
        assert_eq!(decode_signature_hex("0x"), Err(SignatureError::Empty));
        assert_eq!(decode_signature_hex("0xabc"), Err(SignatureError::NotHex));
        assert_eq!(decode_signature_hex("0xzz"), Err(SignatureError::NotHex));
        assert_eq!(decode_signature_hex("0xé1"), Err(SignatureError::NotHex));
        assert_eq!(decode_signature_hex("0xABcd"), Ok(vec![0xab, 0xcd]));
        let huge = format!("0x{}", "00".repeat(MAX_SIGNATURE_BYTES + 1));
        assert_eq!(decode_signature_hex(&huge), Err(SignatureError::TooLong));
    }
}
