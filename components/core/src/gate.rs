//! The playback gate: does a viewer hold what a video's rules ask for?
//!
//! Each rule is one `eth_call` (ABI via alloy's `sol!`). The video's owner may always watch; a
//! video with no rules is public; otherwise any rule that holds admits the viewer. Every error —
//! RPC down, revert, malformed answer — denies, with a code that says which (fail closed).

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};

use crate::api_error::ApiError;
use crate::rpc::{ChainReader, RpcError};
use crate::session::Session;
use crate::video::{GateRule, TokenStandard};

sol! {
    /// ERC-721 and ERC-20 (same selector).
    function balanceOf(address owner) external view returns (uint256);
    /// ERC-721.
    function ownerOf(uint256 tokenId) external view returns (address);
    /// ERC-1155.
    function balanceOf1155(address account, uint256 id) external view returns (uint256);
}

/// The ERC-1155 `balanceOf(address,uint256)` selector: `sol!` cannot overload a name, so the
/// call is encoded under another name and its selector replaced by the real one.
const ERC1155_BALANCE_OF: [u8; 4] = [0x00, 0xfd, 0xd5, 0x8e];

/// One ownership question, as cached: the answer depends on nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub chain_id: u64,
    pub contract: Address,
    pub standard: TokenStandard,
    pub token_id: Option<U256>,
    pub min_balance: U256,
    pub viewer: Address,
}

impl Holding {
    pub fn of(rule: &GateRule, viewer: Address) -> Result<Holding, ApiError> {
        let broken = |what: &str| {
            ApiError::new(
                503,
                "gate_rule_invalid",
                format!("a stored gate rule is unusable: {what}"),
            )
        };
        Ok(Holding {
            chain_id: rule.chain_id,
            contract: rule.contract.parse().map_err(|_| broken("contract"))?,
            standard: rule.standard,
            token_id: rule
                .token_id
                .as_deref()
                .map(|t| U256::from_str_radix(t, 10).map_err(|_| broken("token_id")))
                .transpose()?,
            min_balance: match rule.min_balance.as_deref() {
                Some(m) => U256::from_str_radix(m, 10).map_err(|_| broken("min_balance"))?,
                None => U256::from(1),
            },
            viewer,
        })
    }

    /// The key-value cache key: every field the answer depends on.
    pub fn cache_key(&self) -> String {
        format!(
            "{}{}:{}:{:?}:{}:{}:{}",
            crate::key_value::GATE_CACHE_PREFIX,
            self.chain_id,
            self.contract.to_checksum(None),
            self.standard,
            self.token_id.map(|t| t.to_string()).unwrap_or_default(),
            self.min_balance,
            self.viewer.to_checksum(None)
        )
        .to_lowercase()
    }

    /// The `eth_call` data that answers this question.
    pub fn calldata(&self) -> Bytes {
        match (self.standard, self.token_id) {
            (TokenStandard::Erc721, Some(token_id)) => {
                ownerOfCall { tokenId: token_id }.abi_encode().into()
            }
            (TokenStandard::Erc721 | TokenStandard::Erc20, _) => {
                balanceOfCall { owner: self.viewer }.abi_encode().into()
            }
            (TokenStandard::Erc1155, token_id) => {
                let mut data = balanceOf1155Call {
                    account: self.viewer,
                    id: token_id.unwrap_or_default(),
                }
                .abi_encode();
                data[..4].copy_from_slice(&ERC1155_BALANCE_OF);
                data.into()
            }
        }
    }

    /// Reads the call's answer: does the viewer hold enough?
    pub fn decide(&self, answer: &[u8]) -> Result<bool, GateError> {
        // A call to an address with no code runs nothing and returns nothing: no contract is
        // there (a creator's typo, another chain's address), so nobody holds its tokens. Taken
        // as a malformed answer, it made every viewer of such a video get a 502 for good.
        if answer.is_empty() {
            return Ok(false);
        }
        match (self.standard, self.token_id) {
            (TokenStandard::Erc721, Some(_)) => {
                let owner = ownerOfCall::abi_decode_returns(answer)
                    .map_err(|_| GateError::MalformedAnswer)?;
                Ok(owner == self.viewer)
            }
            _ => {
                let balance = balanceOfCall::abi_decode_returns(answer)
                    .map_err(|_| GateError::MalformedAnswer)?;
                Ok(balance >= self.min_balance)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    ChainUnavailable(String),
    MalformedAnswer,
    Reverted,
    /// The rule is on a chain the viewer's session does not speak for: a contract wallet
    /// signed in on `signed_in_on` ([`crate::session::Session::speaks_for_on`]). Not asked.
    OtherChain {
        signed_in_on: u64,
        rule_chain: u64,
    },
}

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::ChainUnavailable(why) => ApiError::new(
                503,
                "gate_check_unavailable",
                format!("ownership could not be checked on chain, so access is denied: {why}"),
            )
            .with_retry_after(5),
            GateError::MalformedAnswer => ApiError::new(
                502,
                "gate_answer_malformed",
                "the chain's answer to the ownership check was malformed, so access is denied",
            ),
            GateError::Reverted => ApiError::new(
                403,
                "not_token_holder",
                "this wallet does not hold the token this video requires",
            ),
            GateError::OtherChain {
                signed_in_on,
                rule_chain,
            } => ApiError::new(
                403,
                "session_chain_mismatch",
                format!(
                    "this contract wallet signed in on chain {signed_in_on}, and this video asks \
                     for a token on chain {rule_chain}, where the same address may be another \
                     wallet: sign in with Chain ID {rule_chain}"
                ),
            ),
        }
    }
}

/// Whether `session` may be asked about on `rule_chain` at all: a contract wallet's session
/// speaks for its address only on the chain it signed in on.
pub fn session_may_use(session: &Session, rule_chain: u64) -> Result<(), GateError> {
    if session.speaks_for_on(rule_chain) {
        Ok(())
    } else {
        Err(GateError::OtherChain {
            signed_in_on: session.chain_id,
            rule_chain,
        })
    }
}

/// Asks the chain. A revert means "no" for `ownerOf` (nonexistent token) and for balances.
pub async fn check<R: ChainReader>(reader: &R, holding: &Holding) -> Result<bool, GateError> {
    match reader
        .eth_call(holding.chain_id, holding.contract, holding.calldata())
        .await
    {
        Ok(answer) => holding.decide(&answer),
        Err(RpcError::Reverted(_)) => Err(GateError::Reverted),
        Err(RpcError::Malformed(_)) => Err(GateError::MalformedAnswer),
        Err(e) => Err(GateError::ChainUnavailable(e.to_string())),
    }
}

/// A remembered answer, with when it stops counting: stored as `{"holds", "exp"}`, `exp` being
/// the entry's lifetime for the key-value sweep ([`crate::key_value`]); answers stored before
/// said `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedAnswer {
    pub holds: bool,
    #[serde(rename = "exp", alias = "until")]
    pub until: i64,
}

/// How long answers count: a holder keeps access at most `positive_secs` after selling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtl {
    pub positive_secs: i64,
    pub negative_secs: i64,
}

impl CacheTtl {
    pub fn answer(&self, holds: bool, now: i64) -> CachedAnswer {
        let ttl = if holds {
            self.positive_secs
        } else {
            self.negative_secs
        };
        CachedAnswer {
            holds,
            until: now.saturating_add(ttl),
        }
    }
}

/// The decision for a whole gate: owner and public videos pass without asking; otherwise the
/// first rule that holds admits; if none holds, 403 `not_token_holder`; if a rule could not be
/// answered and none held, that error (fail closed, saying why).
pub fn verdict(outcomes: &[Result<bool, GateError>]) -> Result<(), ApiError> {
    if outcomes.iter().any(|o| matches!(o, Ok(true))) {
        return Ok(());
    }
    match outcomes.iter().find_map(|o| o.as_ref().err()) {
        Some(GateError::Reverted) | None => Err(GateError::Reverted.into()),
        Some(e) => Err(e.clone().into()),
    }
}

/// Which chains rules may name, for the RPC reader.
pub type ChainUrls = BTreeMap<u64, String>;

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, hex};

    const VIEWER: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");

    fn holding(standard: TokenStandard, token_id: Option<u64>) -> Holding {
        Holding {
            chain_id: 31337,
            contract: address!("5FbDB2315678afecb367f032d93F642f64180aa3"),
            standard,
            token_id: token_id.map(U256::from),
            min_balance: U256::from(2),
            viewer: VIEWER,
        }
    }

    #[test]
    fn calldata_uses_the_standard_selectors() {
        // balanceOf(address) = 0x70a08231, ownerOf(uint256) = 0x6352211e,
        // balanceOf(address,uint256) = 0x00fdd58e.
        let erc20 = holding(TokenStandard::Erc20, None).calldata();
        assert_eq!(hex::encode(&erc20[..4]), "70a08231");
        assert_eq!(erc20.len(), 4 + 32);
        assert_eq!(
            hex::encode(&erc20[16..36]),
            "70997970c51812dc3a010c7d01b50e0d17dc79c8"
        );
        assert_eq!(
            hex::encode(&holding(TokenStandard::Erc721, None).calldata()[..4]),
            "70a08231"
        );
        let owner_of = holding(TokenStandard::Erc721, Some(7)).calldata();
        assert_eq!(hex::encode(&owner_of), format!("6352211e{:064x}", 7));
        let erc1155 = holding(TokenStandard::Erc1155, Some(5)).calldata();
        assert_eq!(
            hex::encode(&erc1155),
            format!(
                "00fdd58e{:0>64}{:064x}",
                "70997970c51812dc3a010c7d01b50e0d17dc79c8", 5
            )
        );
    }

    #[test]
    fn answers_are_read_against_the_minimum_and_the_viewer() {
        let word = |n: u64| hex::decode(format!("{n:064x}")).unwrap();
        let h = holding(TokenStandard::Erc20, None);
        assert_eq!(h.decide(&word(2)), Ok(true));
        assert_eq!(h.decide(&word(1)), Ok(false));
        assert_eq!(h.decide(&[0u8; 5]), Err(GateError::MalformedAnswer));
        for standard in [
            TokenStandard::Erc20,
            TokenStandard::Erc721,
            TokenStandard::Erc1155,
        ] {
            for token_id in [None, Some(1)] {
                let no_code = holding(standard, token_id).decide(&[]);
                assert_eq!(
                    no_code,
                    Ok(false),
                    "{standard:?} {token_id:?}: no contract there"
                );
            }
        }
        let nft = holding(TokenStandard::Erc721, Some(1));
        let mut owner = vec![0u8; 12];
        owner.extend_from_slice(VIEWER.as_slice());
        assert_eq!(nft.decide(&owner), Ok(true));
        assert_eq!(nft.decide(&word(1)), Ok(false));
    }

    #[test]
    fn verdicts_fail_closed_and_say_why() {
        assert!(verdict(&[Ok(false), Ok(true)]).is_ok());
        assert!(verdict(&[Err(GateError::ChainUnavailable("x".into())), Ok(true)]).is_ok());
        assert_eq!(verdict(&[Ok(false)]).unwrap_err().code, "not_token_holder");
        assert_eq!(
            verdict(&[Ok(false), Err(GateError::Reverted)])
                .unwrap_err()
                .code,
            "not_token_holder"
        );
        assert_eq!(
            verdict(&[Ok(false), Err(GateError::ChainUnavailable("down".into()))])
                .unwrap_err()
                .code,
            "gate_check_unavailable"
        );
        assert_eq!(
            verdict(&[Err(GateError::MalformedAnswer)])
                .unwrap_err()
                .code,
            "gate_answer_malformed"
        );
    }

    #[test]
    fn a_contract_wallet_session_is_not_asked_about_on_another_chain() {
        use crate::session::{Session, WalletKind};
        let session = |wallet| Session {
            address: VIEWER,
            chain_id: 10,
            wallet,
            issued_at: 0,
            expires_at: 60,
            not_before: None,
            jti: "j".into(),
            kid: "k".into(),
        };
        let contract = session(WalletKind::Contract);
        assert_eq!(session_may_use(&contract, 10), Ok(()));
        let refused = session_may_use(&contract, 31337).unwrap_err();
        assert_eq!(
            refused,
            GateError::OtherChain {
                signed_in_on: 10,
                rule_chain: 31337
            }
        );
        let e = ApiError::from(refused.clone());
        assert_eq!((e.status, e.code), (403, "session_chain_mismatch"));
        assert!(e.error.contains("Chain ID 31337"), "{}", e.error);
        assert_eq!(session_may_use(&session(WalletKind::Eoa), 31337), Ok(()));
        // In a gate's verdict: a rule on its own chain that holds still admits; otherwise the
        // refusal says to sign in on the rule's chain.
        assert!(verdict(&[Err(refused.clone()), Ok(true)]).is_ok());
        assert_eq!(
            verdict(&[Err(refused.clone())]).unwrap_err().code,
            "session_chain_mismatch"
        );
        assert_eq!(
            verdict(&[Ok(false), Err(refused)]).unwrap_err().code,
            "session_chain_mismatch"
        );
    }

    #[test]
    fn cache_keys_separate_every_input_and_ttls_differ() {
        let a = holding(TokenStandard::Erc1155, Some(1));
        let mut b = a.clone();
        b.token_id = Some(U256::from(2));
        let mut c = a.clone();
        c.viewer = Address::ZERO;
        assert_ne!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), c.cache_key());
        let ttl = CacheTtl {
            positive_secs: 30,
            negative_secs: 5,
        };
        assert_eq!(ttl.answer(true, 100).until, 130);
        assert_eq!(ttl.answer(false, 100).until, 105);
        // Any configured lifetime: the end saturates instead of wrapping into the past.
        let forever = CacheTtl {
            positive_secs: i64::MAX,
            negative_secs: i64::MAX,
        };
        assert_eq!(forever.answer(true, 100).until, i64::MAX);
        // Stored with its end as `exp`; answers stored as `until` still read.
        let stored = serde_json::to_value(ttl.answer(true, 100)).unwrap();
        assert_eq!(stored, serde_json::json!({"holds": true, "exp": 130}));
        let old: CachedAnswer = serde_json::from_str(r#"{"holds":false,"until":105}"#).unwrap();
        assert_eq!((old.holds, old.until), (false, 105));
        assert!(a.cache_key().starts_with("gate:31337:"));
    }
}
