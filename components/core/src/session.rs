//! Session tokens: standard JWTs (JWS compact, HS256) made and checked with the
//! `jsonwebtoken` crate (pure-Rust `rust_crypto` backend, builds for wasm32-wasip2).
//!
//! Header `{"typ":"JWT","alg":"HS256","kid":"<kid>"}`; claims
//! `{"sub": "<EIP-55 address>", "chain_id": n, "wallet": "eoa"|"contract", "iat": n, "exp": n,
//! "nbf"?: n, "jti": "<hex>"}`.
//!
//! ## Which chains a session speaks for
//! `chain_id` is the chain the sign-in was verified on; `wallet` says how. An `eoa` session
//! (the recovered key is the address, EIP-7702 delegated or not) speaks for its address on every
//! chain: the same key controls that address everywhere. A `contract` session (EIP-1271) speaks
//! for it on `chain_id` only: the same address on another chain may be another contract with
//! other owners, or nothing yet (the Wintermute/Optimism address incident), and its
//! `isValidSignature` was never asked. [`Session::speaks_for_on`] answers it; a token without
//! `wallet` (issued before the claim existed) is taken as `contract`, the narrower reading.
//!
//! ## Keys and rotation
//! Secrets come from the Spin variables `session_secret` and `session_secret_previous`
//! (empty = none). A secret is the UTF-8 bytes of the variable, at least 32 bytes (RFC 7518
//! §3.2: an HS256 key is at least as long as the hash). Each key's `kid` is the first 8 hex
//! digits of SHA-256(secret), so no extra variable is needed and a token says which key made
//! it. (The kid reveals 32 bits of a hash of the secret; the token's HMAC already allows the
//! same offline guessing, so with a high-entropy secret this costs nothing.) To rotate:
//! move the current secret to `session_secret_previous`, set a new `session_secret`; tokens of
//! the old key keep working until they expire, and the one before is dropped.
//!
//! ## Checks
//! `alg` must be HS256 (so `none`, RS256, ES256… are refused before any key is used), the kid
//! must be the current or previous key's, the HMAC must verify, `exp` is strict (`now >= exp`
//! is expired, no leeway), `nbf` (if present) must not be after `now`, `sub` must be a
//! checksummed address. Revocation (logout) is the caller's: it looks the returned `jti` up in
//! its revoked list, keeping each entry until `expires_at`.

use std::fmt;

use alloy_primitives::{hex, Address};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api_error::ApiError;
use crate::eip1271::SignerKind;

/// Default session lifetime.
pub const DEFAULT_SESSION_TTL_SECS: i64 = 24 * 60 * 60;
/// Shortest secret accepted (bytes): the same for every key ([`crate::keys::MIN_SECRET_BYTES`]).
pub use crate::keys::MIN_SECRET_BYTES;
/// Longest bearer token looked at; ours are ~300 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// One HS256 key and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    kid: String,
    secret: Vec<u8>,
}

impl SessionKey {
    pub fn new(secret: &str) -> Result<Self, KeyConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyConfigError::TooShort(secret.len()));
        }
        let hash = Sha256::digest(secret.as_bytes());
        Ok(Self {
            kid: hex::encode(&hash[..4]),
            secret: secret.as_bytes().to_vec(),
        })
    }
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The signing key and, during a rotation, the key before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub current: SessionKey,
    pub previous: Option<SessionKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    #[error("a session secret needs at least {MIN_SECRET_BYTES} bytes, this one has {0}")]
    TooShort(usize),
}

impl From<KeyConfigError> for ApiError {
    fn from(e: KeyConfigError) -> Self {
        // Misconfiguration is the server's problem, answered as "unavailable", never a 500.
        ApiError::new(
            503,
            "server_misconfigured",
            format!("sessions are not configured: {e}"),
        )
    }
}

impl SessionKeys {
    /// From the Spin variables `session_secret` and `session_secret_previous`; an empty or
    /// absent previous secret means no rotation is under way.
    pub fn from_config(current: &str, previous: Option<&str>) -> Result<Self, KeyConfigError> {
        let current = SessionKey::new(current)?;
        let previous = match previous.filter(|p| !p.is_empty()) {
            Some(p) => Some(SessionKey::new(p)?).filter(|p| p.kid != current.kid),
            None => None,
        };
        Ok(Self { current, previous })
    }

    fn by_kid(&self, kid: &str) -> Option<&SessionKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.kid == kid)
    }
}

/// How a session's address proved itself at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletKind {
    /// The signature recovered to the address (an EOA, or an EIP-7702 delegated EOA signing
    /// for itself): its key controls the address on every chain.
    Eoa,
    /// A contract wallet said yes (EIP-1271) on the session's chain, and only there.
    Contract,
}

impl From<SignerKind> for WalletKind {
    fn from(signer: SignerKind) -> Self {
        match signer {
            SignerKind::Eoa | SignerKind::DelegatedEoa => Self::Eoa,
            SignerKind::Contract => Self::Contract,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    sub: String,
    chain_id: u64,
    /// Absent from tokens issued before it existed: read as `contract` (chain-bound).
    #[serde(default = "legacy_wallet")]
    wallet: WalletKind,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    jti: String,
}

fn legacy_wallet() -> WalletKind {
    WalletKind::Contract
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub address: Address,
    /// The chain the sign-in was verified on.
    pub chain_id: u64,
    /// How the address proved itself: says on which chains the session speaks for it.
    pub wallet: WalletKind,
    pub issued_at: i64,
    pub expires_at: i64,
    pub not_before: Option<i64>,
    /// Unique id: what logout revokes.
    pub jti: String,
    /// Which key signed it.
    pub kid: String,
}

impl Session {
    /// Whether this session may act as its address on `chain_id` (a gate rule's chain): always
    /// for a key-held address, only on the chain it signed in on for a contract wallet.
    pub fn speaks_for_on(&self, chain_id: u64) -> bool {
        self.wallet == WalletKind::Eoa || chain_id == self.chain_id
    }
}

/// A new token and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    pub token: String,
    pub session: Session,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// 401 `missing_token`
    #[error("sign in first: send Authorization: Bearer <token>")]
    MissingToken,
    /// 401 `invalid_token`: not `Bearer <jwt>`, not a JWT, wrong alg, bad HMAC, bad claims.
    #[error("the session token is invalid: {0}")]
    InvalidToken(String),
    /// 401 `unknown_key`: signed with a key that is neither current nor previous.
    #[error(
        "the session token was signed with a key this service no longer accepts; sign in again"
    )]
    UnknownKey,
    /// 401 `token_expired`
    #[error("the session has expired; sign in again")]
    Expired,
    /// 401 `token_not_yet_valid`
    #[error("the session token is not valid yet")]
    NotYetValid,
    /// 401 `token_revoked`: for the caller, after its revoked-jti lookup.
    #[error("the session has been logged out; sign in again")]
    Revoked,
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken(_) => "invalid_token",
            Self::UnknownKey => "unknown_key",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::Revoked => "token_revoked",
        }
    }
    pub fn status(&self) -> u16 {
        401
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

/// Issues a session token for a key-held address (an EOA) signed in on `chain_id`, valid for
/// `ttl_secs` from `now`; see [`issue_wallet_session`] for a sign-in of any kind.
pub fn issue_session(
    keys: &SessionKeys,
    address: Address,
    chain_id: u64,
    now: i64,
    ttl_secs: i64,
    jti_random: [u8; 16],
) -> Result<IssuedSession, SessionError> {
    issue_wallet_session(
        keys,
        address,
        chain_id,
        WalletKind::Eoa,
        now,
        ttl_secs,
        jti_random,
    )
}

/// Issues a session token for `address`, verified on `chain_id` as `wallet` says, valid for
/// `ttl_secs` from `now`. `jti_random` are 16 random bytes from the host.
pub fn issue_wallet_session(
    keys: &SessionKeys,
    address: Address,
    chain_id: u64,
    wallet: WalletKind,
    now: i64,
    ttl_secs: i64,
    jti_random: [u8; 16],
) -> Result<IssuedSession, SessionError> {
    let claims = Claims {
        sub: address.to_checksum(None),
        chain_id,
        wallet,
        iat: now,
        exp: now.saturating_add(ttl_secs),
        nbf: None,
        jti: hex::encode(jti_random),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.current.kid.clone());
    let signing_error =
        |e: jsonwebtoken::errors::Error| SessionError::InvalidToken(format!("could not sign: {e}"));
    let key = EncodingKey::from_secret(&keys.current.secret).map_err(signing_error)?;
    let token = jsonwebtoken::encode(&header, &claims, &key).map_err(signing_error)?;
    Ok(IssuedSession {
        token,
        session: Session {
            address,
            chain_id,
            wallet,
            issued_at: claims.iat,
            expires_at: claims.exp,
            not_before: None,
            jti: claims.jti,
            kid: keys.current.kid.clone(),
        },
    })
}

/// Verifies a session token (the JWT itself) at `now`.
pub fn verify_session(token: &str, keys: &SessionKeys, now: i64) -> Result<Session, SessionError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(SessionError::InvalidToken("it is too long".into()));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| SessionError::InvalidToken(format!("bad header: {e}")))?;
    if header.alg != Algorithm::HS256 {
        return Err(SessionError::InvalidToken(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| SessionError::InvalidToken("no key id".into()))?;
    let key = keys.by_kid(&kid).ok_or(SessionError::UnknownKey)?;

    let mut validation = Validation::new(Algorithm::HS256);
    // Time claims are checked below against the injected clock, with no leeway.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    let invalid = |e: jsonwebtoken::errors::Error| SessionError::InvalidToken(e.to_string());
    let key = DecodingKey::from_secret(&key.secret).map_err(invalid)?;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(invalid)?;
    let c = data.claims;

    if now >= c.exp {
        return Err(SessionError::Expired);
    }
    if c.nbf.is_some_and(|nbf| nbf > now) {
        return Err(SessionError::NotYetValid);
    }
    let address = Address::parse_checksummed(&c.sub, None)
        .map_err(|_| SessionError::InvalidToken("sub is not a checksummed address".into()))?;
    Ok(Session {
        address,
        chain_id: c.chain_id,
        wallet: c.wallet,
        issued_at: c.iat,
        expires_at: c.exp,
        not_before: c.nbf,
        jti: c.jti,
        kid,
    })
}

/// Extracts the token of an `Authorization: Bearer <token>` header (scheme case-insensitive,
/// RFC 7235).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, SessionError> {
    let h = authorization.ok_or(SessionError::MissingToken)?.trim();
    if h.is_empty() {
        return Err(SessionError::MissingToken);
    }
    let (scheme, token) = h
        .split_once(' ')
        .ok_or_else(|| SessionError::InvalidToken("expected \"Bearer <token>\"".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(SessionError::InvalidToken(
            "the Authorization scheme must be Bearer".into(),
        ));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(SessionError::InvalidToken(
            "expected \"Bearer <token>\"".into(),
        ));
    }
    Ok(token)
}

/// The session check every authenticated endpoint calls: the `Authorization` header value
/// (if any), the keys, and the time. The caller then checks `jti` against its revoked list
/// (answering [`SessionError::Revoked`] if found).
pub fn check_bearer(
    authorization: Option<&str>,
    keys: &SessionKeys,
    now: i64,
) -> Result<Session, ApiError> {
    let token = bearer_token(authorization)?;
    Ok(verify_session(token, keys, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;
    use base64::Engine;

    const SECRET_A: &str = "0123456789abcdef0123456789abcdef-current";
    const SECRET_B: &str = "fedcba9876543210fedcba9876543210-previous";
    const ADDR: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    const NOW: i64 = 1_714_564_800;

    fn keys() -> SessionKeys {
        SessionKeys::from_config(SECRET_A, None).unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn issue_and_verify() {
        let issued = issue_session(&keys(), ADDR, 31337, NOW, 3600, [7; 16]).unwrap();
        let s = verify_session(&issued.token, &keys(), NOW).unwrap();
        assert_eq!(s, issued.session);
        assert_eq!(s.address, ADDR);
        assert_eq!(s.chain_id, 31337);
        assert_eq!(s.expires_at, NOW + 3600);
        assert_eq!(s.jti, "07".repeat(16));

        // A standard JWT: any JWT library can read it.
        let parts: Vec<&str> = issued.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], keys().current.kid());
        let claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"sub": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "chain_id": 31337, "wallet": "eoa", "iat": NOW, "exp": NOW + 3600,
                "jti": "07".repeat(16)})
        );
    }

    #[test]
    fn a_contract_wallet_session_speaks_for_its_address_on_its_chain_only() {
        let contract =
            issue_wallet_session(&keys(), ADDR, 10, WalletKind::Contract, NOW, 3600, [3; 16])
                .unwrap();
        let s = verify_session(&contract.token, &keys(), NOW).unwrap();
        assert_eq!(s, contract.session);
        assert_eq!((s.chain_id, s.wallet), (10, WalletKind::Contract));
        assert!(s.speaks_for_on(10));
        for other in [1, 11, 31337, 0, u64::MAX] {
            assert!(!s.speaks_for_on(other), "chain {other}");
        }
        // A key-held address is the same account on every chain.
        let eoa = issue_wallet_session(&keys(), ADDR, 10, WalletKind::Eoa, NOW, 60, [4; 16])
            .unwrap()
            .session;
        assert!(eoa.speaks_for_on(10) && eoa.speaks_for_on(1) && eoa.speaks_for_on(31337));
        // How verify_signature's answer maps.
        assert_eq!(WalletKind::from(SignerKind::Eoa), WalletKind::Eoa);
        assert_eq!(WalletKind::from(SignerKind::DelegatedEoa), WalletKind::Eoa);
        assert_eq!(WalletKind::from(SignerKind::Contract), WalletKind::Contract);
    }

    #[test]
    fn the_wallet_claim_is_signed_and_a_token_without_it_is_chain_bound() {
        let kid = keys().current.kid().to_string();
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        // Issued before the claim existed: read as a contract wallet's, bound to its chain.
        let legacy = forge(header.clone(), good_claims(), SECRET_A.as_bytes());
        let s = verify_session(&legacy, &keys(), NOW).unwrap();
        assert_eq!(s.wallet, WalletKind::Contract);
        assert!(s.speaks_for_on(1) && !s.speaks_for_on(31337));
        // Changing the claim breaks the signature.
        let t = issue_wallet_session(&keys(), ADDR, 1, WalletKind::Contract, NOW, 60, [5; 16])
            .unwrap()
            .token;
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = good_claims();
        c["wallet"] = "eoa".into();
        assert!(matches!(
            verify_session(
                &format!("{}.{}.{}", parts[0], b64(&c), parts[2]),
                &keys(),
                NOW
            ),
            Err(SessionError::InvalidToken(_))
        ));
        // An unknown kind is not a session.
        let mut c = good_claims();
        c["wallet"] = "multisig".into();
        assert!(matches!(
            verify_session(&forge(header, c, SECRET_A.as_bytes()), &keys(), NOW),
            Err(SessionError::InvalidToken(_))
        ));
    }

    #[test]
    fn kid_is_derived_from_the_secret() {
        let k = SessionKey::new(SECRET_A).unwrap();
        let expected = hex::encode(&Sha256::digest(SECRET_A.as_bytes())[..4]);
        assert_eq!(k.kid(), expected);
        assert_eq!(k.kid().len(), 8);
        assert!(
            !format!("{k:?}").contains(SECRET_A),
            "Debug must not print the secret"
        );
        assert_eq!(
            SessionKey::new("short").unwrap_err(),
            KeyConfigError::TooShort(5)
        );
        let e: ApiError = KeyConfigError::TooShort(5).into();
        assert_eq!((e.status, e.code), (503, "server_misconfigured"));
        // Empty previous = no rotation; identical previous is dropped.
        assert_eq!(
            SessionKeys::from_config(SECRET_A, Some(""))
                .unwrap()
                .previous,
            None
        );
        assert_eq!(
            SessionKeys::from_config(SECRET_A, Some(SECRET_A))
                .unwrap()
                .previous,
            None
        );
    }

    #[test]
    fn rotation() {
        let old = SessionKeys::from_config(SECRET_B, None).unwrap();
        let token = issue_session(&old, ADDR, 1, NOW, 60, [1; 16])
            .unwrap()
            .token;
        let rotated = SessionKeys::from_config(SECRET_A, Some(SECRET_B)).unwrap();
        let s = verify_session(&token, &rotated, NOW).unwrap();
        assert_eq!(s.kid, old.current.kid());
        // New tokens use the new key.
        let fresh = issue_session(&rotated, ADDR, 1, NOW, 60, [2; 16]).unwrap();
        assert_eq!(fresh.session.kid, rotated.current.kid());
        // After the next rotation the oldest key is gone.
        let next =
            SessionKeys::from_config("another-secret-of-enough-length-0123456789", Some(SECRET_A))
                .unwrap();
        assert_eq!(
            verify_session(&token, &next, NOW),
            Err(SessionError::UnknownKey)
        );
        assert!(verify_session(&fresh.token, &next, NOW).is_ok());
    }

    #[test]
    fn expiry_is_strict() {
        let t = issue_session(&keys(), ADDR, 1, NOW, 60, [1; 16])
            .unwrap()
            .token;
        assert!(verify_session(&t, &keys(), NOW + 59).is_ok());
        assert_eq!(
            verify_session(&t, &keys(), NOW + 60),
            Err(SessionError::Expired)
        );
    }

    fn forge(header: serde_json::Value, claims: serde_json::Value, secret: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        let signing_input = format!("{}.{}", b64(&header), b64(&claims));
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    fn good_claims() -> serde_json::Value {
        serde_json::json!({"sub": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "chain_id": 1, "iat": NOW, "exp": NOW + 60, "jti": "x"})
    }

    #[test]
    fn forged_tokens_verify_when_correct() {
        // The forging helper itself is right: a correct token passes.
        let kid = keys().current.kid().to_string();
        let t = forge(
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            good_claims(),
            SECRET_A.as_bytes(),
        );
        assert!(verify_session(&t, &keys(), NOW).is_ok());
        // nbf in the future.
        let mut c = good_claims();
        c["nbf"] = (NOW + 10).into();
        let t = forge(
            serde_json::json!({"alg": "HS256", "kid": kid}),
            c,
            SECRET_A.as_bytes(),
        );
        assert_eq!(
            verify_session(&t, &keys(), NOW),
            Err(SessionError::NotYetValid)
        );
        assert!(verify_session(&t, &keys(), NOW + 10).is_ok());
    }

    #[test]
    fn rejects_alg_confusion_and_tampering() {
        let kid = keys().current.kid().to_string();
        let invalid = |t: &str| {
            let e = verify_session(t, &keys(), NOW).unwrap_err();
            assert!(matches!(e, SessionError::InvalidToken(_)), "{t}: {e:?}");
        };
        // alg none, with and without a signature.
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none", "kid": kid})),
            b64(&good_claims())
        );
        invalid(&none);
        // RS256 / HS512 headers, HMAC'd with our secret (the classic confusion).
        for alg in ["RS256", "HS512", "ES256", "EdDSA"] {
            invalid(&forge(
                serde_json::json!({"alg": alg, "kid": kid}),
                good_claims(),
                SECRET_A.as_bytes(),
            ));
        }
        // Wrong secret under a valid kid.
        invalid(&forge(
            serde_json::json!({"alg": "HS256", "kid": kid}),
            good_claims(),
            b"some-other-secret-of-enough-length!!",
        ));
        // No kid.
        invalid(&forge(
            serde_json::json!({"alg": "HS256"}),
            good_claims(),
            SECRET_A.as_bytes(),
        ));
        // Unknown kid.
        assert_eq!(
            verify_session(
                &forge(
                    serde_json::json!({"alg": "HS256", "kid": "deadbeef"}),
                    good_claims(),
                    SECRET_A.as_bytes()
                ),
                &keys(),
                NOW
            ),
            Err(SessionError::UnknownKey)
        );
        // Tampered payload.
        let t = issue_session(&keys(), ADDR, 1, NOW, 60, [1; 16])
            .unwrap()
            .token;
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = good_claims();
        c["chain_id"] = 2.into();
        invalid(&format!("{}.{}.{}", parts[0], b64(&c), parts[2]));
        // Bad claims: lowercase sub, float exp, missing jti.
        for claims in [
            serde_json::json!({"sub": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "chain_id": 1, "iat": NOW, "exp": NOW + 60, "jti": "x"}),
            serde_json::json!({"sub": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "chain_id": 1, "iat": NOW, "exp": 1.5e9, "jti": "x"}),
            serde_json::json!({"sub": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "chain_id": 1, "iat": NOW, "exp": NOW + 60}),
        ] {
            invalid(&forge(
                serde_json::json!({"alg": "HS256", "kid": kid}),
                claims,
                SECRET_A.as_bytes(),
            ));
        }
        for garbage in [
            "",
            "a.b",
            "a.b.c",
            "....",
            "é.é.é",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            invalid(garbage);
        }
    }

    #[test]
    fn bearer_header() {
        let t = issue_session(&keys(), ADDR, 1, NOW, 60, [1; 16])
            .unwrap()
            .token;
        let h = format!("Bearer {t}");
        assert_eq!(check_bearer(Some(&h), &keys(), NOW).unwrap().address, ADDR);
        assert!(check_bearer(Some(&format!("bearer  {t}")), &keys(), NOW).is_ok());
        let code = |h: Option<&str>| check_bearer(h, &keys(), NOW).unwrap_err().code;
        assert_eq!(code(None), "missing_token");
        assert_eq!(code(Some("")), "missing_token");
        assert_eq!(code(Some("Basic dXNlcjpwYXNz")), "invalid_token");
        assert_eq!(code(Some(&t)), "invalid_token");
        assert_eq!(code(Some("Bearer ")), "invalid_token");
        assert_eq!(code(Some(&format!("Bearer {t} x"))), "invalid_token");
        let e = check_bearer(Some(&h), &keys(), NOW + 60).unwrap_err();
        assert_eq!((e.status, e.code), (401, "token_expired"));
        let e: ApiError = SessionError::Revoked.into();
        assert_eq!((e.status, e.code), (401, "token_revoked"));
    }
}
