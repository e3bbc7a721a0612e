//! The whole of `POST /auth/verify` short of storage: parse the EIP-4361 text, validate it
//! against the configuration, decode the signature and check it (key or contract).
//!
//! The component then burns the nonce atomically (SQLite) and, only if that succeeds, issues
//! the session ([`crate::session::issue_session`]). A cheap existence check of the nonce may
//! come before [`verify_signature`] to spare RPC calls on stale nonces; use
//! [`check_message`] and [`verify_signature`] separately for that.

use crate::eip1271::{verify_signature, SignerKind};
use crate::eip191::decode_signature_hex;
use crate::rpc::ChainReader;
use crate::siwe::{parse_message, validate, SiweConfig, SiweError, SiweMessage};

/// A message whose fields and signature are valid. Its nonce is not yet burned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignIn {
    pub message: SiweMessage,
    pub signer: SignerKind,
}

/// Parses and validates the message (no I/O).
pub fn check_message(text: &str, cfg: &SiweConfig, now: i64) -> Result<SiweMessage, SiweError> {
    let message = parse_message(text)?;
    validate(&message, cfg, now)?;
    Ok(message)
}

/// Parses, validates, and checks the signature (`"0x…"`) of a sign-in message.
pub async fn verify_sign_in<R: ChainReader>(
    text: &str,
    signature_hex: &str,
    cfg: &SiweConfig,
    now: i64,
    reader: &R,
) -> Result<VerifiedSignIn, SiweError> {
    let message = check_message(text, cfg, now)?;
    let signature = decode_signature_hex(signature_hex).map_err(SiweError::InvalidSignature)?;
    let signer = verify_signature(
        reader,
        message.chain_id,
        message.address,
        text.as_bytes(),
        &signature,
    )
    .await?;
    Ok(VerifiedSignIn { message, signer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eip1271::tests::{block_on, MockChain};
    use crate::eip191::tests::{sign_personal, ANVIL0_KEY};
    use alloy_primitives::hex;

    const T0: i64 = 1_714_564_800;

    fn message() -> String {
        let nonce = crate::nonce::generate_nonce([9; 16]);
        format!(
            "127.0.0.1:3000 wants you to sign in with your Ethereum account:
0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

Sign in to StreamGate.

URI: http://127.0.0.1:3000
Version: 1
Chain ID: 31337
Nonce: {nonce}
Issued At: 2024-05-01T12:00:00Z
Expiration Time: 2024-05-01T12:05:00Z"
        )
    }

    #[test]
    fn end_to_end() {
        let cfg = SiweConfig::new("127.0.0.1:3000", "http://127.0.0.1:3000", vec![31337]);
        let chain = MockChain::default();
        let text = message();
        let sig = hex::encode_prefixed(sign_personal(ANVIL0_KEY, text.as_bytes()));
        let ok = block_on(verify_sign_in(&text, &sig, &cfg, T0, &chain)).unwrap();
        assert_eq!(ok.signer, SignerKind::Eoa);
        assert_eq!(ok.message.chain_id, 31337);

        let err = |text: &str, sig: &str, now: i64| {
            block_on(verify_sign_in(text, sig, &cfg, now, &chain))
                .unwrap_err()
                .code()
        };
        assert_eq!(err(&text, &sig, T0 + 300), "expired");
        assert_eq!(err(&text, "0xzz", T0), "invalid_signature");
        assert_eq!(err("garbage", &sig, T0), "invalid_message");
        // Signed text and verified text must be identical, byte for byte.
        let tampered = text.replace("Sign in to", "Sign into");
        assert_eq!(err(&tampered, &sig, T0), "bad_signature");
        let chain_len_before = chain.calls.borrow().len();
        // Validation failures cost no RPC.
        assert_eq!(
            err(&text.replace("31337", "1"), &sig, T0),
            "chain_not_supported"
        );
        assert_eq!(chain.calls.borrow().len(), chain_len_before);
    }
}
