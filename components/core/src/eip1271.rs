//! Contract-wallet signatures: EIP-1271 `isValidSignature`, ERC-6492 detection, and the
//! signature check of a sign-in ([`verify_signature`]).
//!
//! ## The check
//! 1. An ERC-6492 wrapped signature (ends in the 32-byte magic suffix) is unwrapped. If the
//!    wallet is already deployed, its inner signature is checked with EIP-1271. If it is not
//!    deployed yet, the answer is `unsupported_signature` (422): checking a counterfactual
//!    wallet needs an `eth_call` of the ERC-6492 "UniversalSigValidator" deployless bytecode,
//!    a multi-kilobyte compiled blob that cannot be reviewed here nor rebuilt without solc, so
//!    it is not embedded. Detection and decoding are complete, so adding it later is one
//!    call-data builder.
//! 2. Otherwise the signer is recovered (EIP-191, [`crate::eip191`]) and the address's code is
//!    read:
//!    - no code: an EOA. Valid only if the recovered signer is the address; a signature that
//!      is malformed as ECDSA is `invalid_signature` (400), a wrong signer `bad_signature`.
//!    - an EIP-7702 delegation designator (`0xef0100 || address`) and the recovered signer is
//!      the address: valid. The account's own key is its ultimate authority (it can re-delegate
//!      at will), so its signature proves control.
//!    - any other code (or 7702 with another signer): EIP-1271 `isValidSignature(hash, sig)`
//!      with hash = the EIP-191 digest of the message. Valid only if the call returns the
//!      magic value `0x1626ba7e` ABI-encoded as `bytes4`; any other return, empty return or a
//!      revert is `bad_signature`.
//!
//! Every RPC failure other than a revert (unreachable node, node error, malformed answer)
//! fails closed as `signature_check_unavailable` (503): the client may retry, and a flaky node
//! is never mistaken for a bad signature or, worse, a good one.

use alloy_primitives::{hex, Address, Bytes, B256};
use alloy_sol_types::{sol, sol_data, SolCall, SolType};

use crate::eip191::{personal_sign_digest, recover_prehash, SignatureError, MAX_SIGNATURE_BYTES};
use crate::rpc::{ChainReader, RpcError};
use crate::siwe::SiweError;

sol! {
    /// EIP-1271.
    function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
}

/// What `isValidSignature` returns when it accepts: `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`.
pub const EIP1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// The suffix that marks an ERC-6492 signature.
pub const ERC6492_SUFFIX: [u8; 32] = [
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
];

/// The call data of `isValidSignature(hash, signature)`.
pub fn is_valid_signature_calldata(hash: B256, signature: &[u8]) -> Bytes {
    isValidSignatureCall {
        hash,
        signature: Bytes::copy_from_slice(signature),
    }
    .abi_encode()
    .into()
}

/// Whether `isValidSignature` return data is the magic value: a strictly encoded `bytes4`
/// (first word `0x1626ba7e` followed by 28 zero bytes), as Solidity's `abi.decode` wants it.
pub fn is_magic_value(ret: &[u8]) -> bool {
    matches!(
        isValidSignatureCall::abi_decode_returns_validate(ret),
        Ok(v) if v.0 == EIP1271_MAGIC
    )
}

/// A decoded ERC-6492 signature: `abi.encode(factory, factoryCalldata, signature) ++ suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erc6492Signature {
    pub factory: Address,
    pub factory_calldata: Bytes,
    pub signature: Bytes,
}

pub fn is_erc6492(signature: &[u8]) -> bool {
    signature.ends_with(&ERC6492_SUFFIX)
}

/// Decodes an ERC-6492 wrapper. `None` when there is no suffix; `Some(Err)` when the suffix
/// is there but the ABI payload is malformed.
pub fn decode_erc6492(signature: &[u8]) -> Option<Result<Erc6492Signature, SignatureError>> {
    let payload = signature.strip_suffix(&ERC6492_SUFFIX)?;
    type Wrapper = (sol_data::Address, sol_data::Bytes, sol_data::Bytes);
    Some(
        Wrapper::abi_decode_params_validate(payload)
            .map(|(factory, factory_calldata, signature)| Erc6492Signature {
                factory,
                factory_calldata,
                signature,
            })
            .map_err(|_| SignatureError::Erc6492),
    )
}

/// Is this code an EIP-7702 delegation designator (`0xef0100 || address`)?
pub fn is_7702_delegation(code: &[u8]) -> bool {
    code.len() == 23 && code.starts_with(&[0xef, 0x01, 0x00])
}

/// How a sign-in signature was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    /// An externally owned account: the recovered key is the address.
    Eoa,
    /// An EOA delegated with EIP-7702, signed by its own key.
    DelegatedEoa,
    /// A contract wallet that answered EIP-1271 `isValidSignature` with the magic value.
    Contract,
}

fn unavailable(e: RpcError) -> SiweError {
    SiweError::SignatureCheckUnavailable(e.to_string())
}

async fn check_eip1271<R: ChainReader>(
    reader: &R,
    chain_id: u64,
    address: Address,
    digest: B256,
    signature: &[u8],
) -> Result<SignerKind, SiweError> {
    let data = is_valid_signature_calldata(digest, signature);
    match reader.eth_call(chain_id, address, data).await {
        Ok(ret) if is_magic_value(&ret) => Ok(SignerKind::Contract),
        Ok(ret) if ret.is_empty() => Err(SiweError::BadSignature(
            "the address's contract does not implement EIP-1271".into(),
        )),
        Ok(ret) => Err(SiweError::BadSignature(format!(
            "the wallet contract did not accept it (returned {})",
            hex::encode_prefixed(&ret[..ret.len().min(32)])
        ))),
        Err(RpcError::Reverted(_)) => Err(SiweError::BadSignature(
            "the wallet contract rejected it (reverted)".into(),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

/// Checks that `signature` over `message` (the exact EIP-4361 text the wallet signed) is valid
/// for `address` on `chain_id`. See the module docs for the rules.
pub async fn verify_signature<R: ChainReader>(
    reader: &R,
    chain_id: u64,
    address: Address,
    message: &[u8],
    signature: &[u8],
) -> Result<SignerKind, SiweError> {
    if signature.is_empty() {
        return Err(SiweError::InvalidSignature(SignatureError::Empty));
    }
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(SiweError::InvalidSignature(SignatureError::TooLong));
    }
    let digest = personal_sign_digest(message);

    if let Some(wrapped) = decode_erc6492(signature) {
        let wrapped = wrapped.map_err(SiweError::InvalidSignature)?;
        let code = reader
            .get_code(chain_id, address)
            .await
            .map_err(unavailable)?;
        if code.is_empty() {
            return Err(SiweError::UnsupportedSignature(
                "an ERC-6492 signature of a smart wallet that is not deployed yet; deploy the \
                 wallet (or send any transaction from it) and sign in again"
                    .into(),
            ));
        }
        return check_eip1271(reader, chain_id, address, digest, &wrapped.signature).await;
    }

    let recovered = recover_prehash(&digest, signature);
    let code = reader
        .get_code(chain_id, address)
        .await
        .map_err(unavailable)?;
    if code.is_empty() {
        return match recovered {
            Ok(signer) if signer == address => Ok(SignerKind::Eoa),
            Ok(_) | Err(SignatureError::Recovery) => {
                Err(SiweError::BadSignature("it was made by another key".into()))
            }
            Err(e) => Err(SiweError::InvalidSignature(e)),
        };
    }
    if is_7702_delegation(&code) && recovered == Ok(address) {
        return Ok(SignerKind::DelegatedEoa);
    }
    check_eip1271(reader, chain_id, address, digest, signature).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eip191::tests::{sign_personal, ANVIL0_ADDR, ANVIL0_KEY};
    use alloy_primitives::address;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Drives a future that never waits (the mock chain answers at once).
    pub fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// A chain with fixed code per address and wallets that accept exactly one signature.
    #[derive(Default)]
    pub struct MockChain {
        pub code: HashMap<Address, Bytes>,
        /// address -> (digest, signature) it accepts
        pub accepts: HashMap<Address, (B256, Vec<u8>)>,
        pub reverts: bool,
        pub down: bool,
        pub calls: RefCell<Vec<&'static str>>,
    }

    impl ChainReader for MockChain {
        async fn eth_call(&self, _chain: u64, to: Address, data: Bytes) -> Result<Bytes, RpcError> {
            self.calls.borrow_mut().push("eth_call");
            if self.down {
                return Err(RpcError::Transport("connection refused".into()));
            }
            if self.reverts {
                return Err(RpcError::Reverted(Bytes::new()));
            }
            if !self.code.contains_key(&to) {
                return Ok(Bytes::new());
            }
            let call = isValidSignatureCall::abi_decode_validate(&data).unwrap();
            let ok = self.accepts.get(&to) == Some(&(call.hash, call.signature.to_vec()));
            let word = if ok {
                EIP1271_MAGIC
            } else {
                [0xff, 0xff, 0xff, 0xff]
            };
            Ok(isValidSignatureCall::abi_encode_returns(&word.into()).into())
        }
        async fn get_code(&self, _chain: u64, address: Address) -> Result<Bytes, RpcError> {
            self.calls.borrow_mut().push("get_code");
            if self.down {
                return Err(RpcError::Transport("connection refused".into()));
            }
            Ok(self.code.get(&address).cloned().unwrap_or_default())
        }
    }

    const WALLET: Address = address!("00000000000000000000000000000000000c0de1");

    #[test]
    fn calldata_matches_eth_abi() {
        // python: keccak(b"isValidSignature(bytes32,bytes)")[:4] +
        //         eth_abi.encode(["bytes32","bytes"], [b"\x11"*32, b"\xaa"*65])
        let expected = "1626ba7e111111111111111111111111111111111111111111111111111111111111111100000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000041aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000000000000000000000000000000000000000000000000000";
        let data = is_valid_signature_calldata(B256::repeat_byte(0x11), &[0xaa; 65]);
        assert_eq!(hex::encode(&data), expected);
        assert_eq!(isValidSignatureCall::SELECTOR, EIP1271_MAGIC);
        // alloy's decoder round-trips it.
        let back = isValidSignatureCall::abi_decode_validate(&data).unwrap();
        assert_eq!(back.hash, B256::repeat_byte(0x11));
        assert_eq!(back.signature.as_ref(), &[0xaa; 65]);
    }

    #[test]
    fn magic_value_is_strict() {
        let mut word = [0u8; 32];
        word[..4].copy_from_slice(&EIP1271_MAGIC);
        assert!(is_magic_value(&word));
        let mut longer = word.to_vec();
        longer.extend_from_slice(&[0; 32]);
        assert!(
            is_magic_value(&longer),
            "trailing data is ignored, as abi.decode does"
        );
        assert!(!is_magic_value(&word[..4]), "not ABI-encoded");
        assert!(!is_magic_value(&[]));
        let mut dirty = word;
        dirty[31] = 1;
        assert!(!is_magic_value(&dirty), "dirty padding");
        let mut other = word;
        other[0] = 0x17;
        assert!(!is_magic_value(&other));
    }

    #[test]
    fn decodes_erc6492() {
        // python: eth_abi.encode(["address","bytes","bytes"],
        //           ["0x" + "11"*20, bytes.fromhex("deadbeef"), b"\xaa"*65]) + b"\x64\x92"*16
        let vector = "0000000000000000000000001111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000004deadbeef000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000000000000000000000000000000000000000000000000000000000006492649264926492649264926492649264926492649264926492649264926492";
        let sig = hex::decode(vector).unwrap();
        assert!(is_erc6492(&sig));
        let w = decode_erc6492(&sig).unwrap().unwrap();
        assert_eq!(w.factory, Address::repeat_byte(0x11));
        assert_eq!(w.factory_calldata.as_ref(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(w.signature.as_ref(), &[0xaa; 65]);

        assert!(decode_erc6492(&[0xaa; 65]).is_none());
        assert_eq!(
            decode_erc6492(&ERC6492_SUFFIX),
            Some(Err(SignatureError::Erc6492))
        );
        let mut garbage = vec![0xff; 96];
        garbage.extend_from_slice(&ERC6492_SUFFIX);
        assert_eq!(decode_erc6492(&garbage), Some(Err(SignatureError::Erc6492)));
    }

    fn anvil0() -> Address {
        ANVIL0_ADDR.parse().unwrap()
    }

    #[test]
    fn eoa_signature() {
        let chain = MockChain::default();
        let msg = b"hello";
        let sig = sign_personal(ANVIL0_KEY, msg);
        let ok = block_on(verify_signature(&chain, 1, anvil0(), msg, &sig));
        assert_eq!(ok, Ok(SignerKind::Eoa));
        assert_eq!(*chain.calls.borrow(), vec!["get_code"]);

        let wrong = block_on(verify_signature(&chain, 1, WALLET, msg, &sig)).unwrap_err();
        assert_eq!((wrong.status(), wrong.code()), (401, "bad_signature"));
        let other_msg = block_on(verify_signature(&chain, 1, anvil0(), b"hellO", &sig));
        assert_eq!(other_msg.unwrap_err().code(), "bad_signature");

        let e = block_on(verify_signature(&chain, 1, anvil0(), msg, &sig[..64])).unwrap_err();
        assert_eq!(e, SiweError::InvalidSignature(SignatureError::Length(64)));
        assert_eq!((e.status(), e.code()), (400, "invalid_signature"));
        let e = block_on(verify_signature(&chain, 1, anvil0(), msg, &[])).unwrap_err();
        assert_eq!(e, SiweError::InvalidSignature(SignatureError::Empty));
    }

    #[test]
    fn contract_wallet_signature() {
        let msg = b"sign in as a contract";
        // The wallet's owner signs; the wallet accepts that exact (digest, signature).
        let sig = sign_personal(ANVIL0_KEY, msg);
        let mut chain = MockChain::default();
        chain.code.insert(WALLET, Bytes::from_static(&[0x60, 0x80]));
        chain
            .accepts
            .insert(WALLET, (personal_sign_digest(msg), sig.clone()));
        assert_eq!(
            block_on(verify_signature(&chain, 1, WALLET, msg, &sig)),
            Ok(SignerKind::Contract)
        );
        // A non-ECDSA signature (e.g. a multisig blob) goes straight to the contract.
        let blob = vec![7u8; 200];
        chain
            .accepts
            .insert(WALLET, (personal_sign_digest(msg), blob.clone()));
        assert_eq!(
            block_on(verify_signature(&chain, 1, WALLET, msg, &blob)),
            Ok(SignerKind::Contract)
        );
        // Not accepted: bad_signature.
        let e = block_on(verify_signature(&chain, 1, WALLET, b"other", &blob)).unwrap_err();
        assert_eq!(e.code(), "bad_signature");
        // Reverts are a "no", not an outage.
        chain.reverts = true;
        let e = block_on(verify_signature(&chain, 1, WALLET, msg, &blob)).unwrap_err();
        assert_eq!(e.code(), "bad_signature");
        // The node is down: fail closed with 503.
        chain.down = true;
        let e = block_on(verify_signature(&chain, 1, WALLET, msg, &blob)).unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "signature_check_unavailable"));
        let e = block_on(verify_signature(&chain, 1, anvil0(), msg, &sig)).unwrap_err();
        assert_eq!(
            e.code(),
            "signature_check_unavailable",
            "EOAs fail closed too"
        );
    }

    #[test]
    fn a_contract_address_is_never_accepted_by_ecdsa_alone() {
        // Even a signature that recovers to the address goes through EIP-1271 when the address
        // has ordinary contract code.
        let msg = b"m";
        let sig = sign_personal(ANVIL0_KEY, msg);
        let mut chain = MockChain::default();
        chain
            .code
            .insert(anvil0(), Bytes::from_static(&[0x60, 0x80]));
        let e = block_on(verify_signature(&chain, 1, anvil0(), msg, &sig)).unwrap_err();
        assert_eq!(e.code(), "bad_signature");
        assert_eq!(*chain.calls.borrow(), vec!["get_code", "eth_call"]);
        // An EIP-7702 delegated EOA signing with its own key is accepted.
        let mut designator = vec![0xef, 0x01, 0x00];
        designator.extend_from_slice(WALLET.as_slice());
        chain.code.insert(anvil0(), designator.into());
        assert_eq!(
            block_on(verify_signature(&chain, 1, anvil0(), msg, &sig)),
            Ok(SignerKind::DelegatedEoa)
        );
    }

    #[test]
    fn erc6492_signatures() {
        let msg = b"counterfactual";
        let inner = sign_personal(ANVIL0_KEY, msg);
        type Wrapper = (sol_data::Address, sol_data::Bytes, sol_data::Bytes);
        let mut wrapped = Wrapper::abi_encode_params(&(
            Address::repeat_byte(0x22),
            Bytes::from_static(&[1, 2, 3]),
            Bytes::from(inner.clone()),
        ));
        wrapped.extend_from_slice(&ERC6492_SUFFIX);

        // Not deployed: explicitly unsupported, no eth_call attempted.
        let chain = MockChain::default();
        let e = block_on(verify_signature(&chain, 1, WALLET, msg, &wrapped)).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "unsupported_signature"));
        assert_eq!(*chain.calls.borrow(), vec!["get_code"]);

        // Deployed: the inner signature is checked with EIP-1271.
        let mut chain = MockChain::default();
        chain.code.insert(WALLET, Bytes::from_static(&[0x60]));
        chain
            .accepts
            .insert(WALLET, (personal_sign_digest(msg), inner));
        assert_eq!(
            block_on(verify_signature(&chain, 1, WALLET, msg, &wrapped)),
            Ok(SignerKind::Contract)
        );

        // A malformed wrapper is invalid before any RPC.
        let mut bad = vec![0u8; 10];
        bad.extend_from_slice(&ERC6492_SUFFIX);
        let e = block_on(verify_signature(&chain, 1, WALLET, msg, &bad)).unwrap_err();
        assert_eq!(e, SiweError::InvalidSignature(SignatureError::Erc6492));
    }
}
