//! Wallet sign-in (EIP-4361) and sessions.
//!
//! `POST /api/v1/auth/nonce`, `POST /api/v1/auth/verify`, `GET /api/v1/auth/me`,
//! `POST /api/v1/auth/logout`. Nonces live in SQLite, where burning one is a single atomic
//! `UPDATE`; revoked sessions and rate-limit windows live in key-value. The checks themselves
//! (message, signature, tokens, whose limit an attempt counts against) are `streamgate-core`'s.

mod nonces;
mod rate_limits;

use serde::{Deserialize, Serialize};
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::sqlite3::Connection;
use streamgate_core::api_error::ApiError;
use streamgate_core::eip1271::verify_signature;
use streamgate_core::eip191::decode_signature_hex;
use streamgate_core::settings::{AuthLimits, SignIn};
use streamgate_core::siwe::{rfc3339_utc, SiweConfig, SiweError};
use streamgate_core::{client_addr, nonce, rate_limit, session, signin};
use streamgate_spin::chain::HttpChainReader;
use streamgate_spin::config::Spin;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::{now, random_bytes, response};

use rate_limits::Counter;

/// A nonce request carries at most an address.
const NONCE_BODY_LIMIT: usize = 4 * 1024;
/// A message (≤ 16 KiB) and a signature (≤ 16 KiB decoded, twice that in hex), as JSON.
const VERIFY_BODY_LIMIT: usize = 64 * 1024;

#[http_component]
async fn handle(req: IncomingRequest) -> Response {
    let head = ApiRequest::head(&req);
    let outcome = match (&head.method, head.path.as_str()) {
        (Method::Post, "/api/v1/auth/nonce") => match AuthLimits::load(&Spin) {
            Ok(limits) => {
                let client = client(&req, &limits);
                match head.read_body(req, NONCE_BODY_LIMIT).await {
                    Ok(request) => issue_nonce(&request, &limits, &client),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        },
        (Method::Post, "/api/v1/auth/verify") => verify_route(req, head).await,
        (Method::Get, "/api/v1/auth/me") => me(&head),
        (Method::Post, "/api/v1/auth/logout") => logout(&head),
        (_, "/api/v1/auth/nonce" | "/api/v1/auth/verify" | "/api/v1/auth/logout") => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (_, "/api/v1/auth/me") => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found("no such auth endpoint")),
    };
    outcome.unwrap_or_else(|e| response::error(&e))
}

/// The client's rate-limit bucket (`streamgate_core::client_addr`): the peer address the host
/// reports, or the right-most address of the `trusted_client_ip_header` when one is configured;
/// IPv6 by /64.
fn client(req: &IncomingRequest, limits: &AuthLimits) -> String {
    let trusted = &limits.trusted_client_ip_header;
    let headers = req.headers();
    let peer = headers.get(client_addr::PEER_HEADER);
    let peer = peer.first().and_then(|v| std::str::from_utf8(v).ok());
    let forwarded = trusted.as_ref().map(|name| headers.get(name));
    let ip = client_addr::client_ip(peer, trusted.as_deref().zip(forwarded.as_deref()));
    client_addr::bucket(ip)
}

fn database() -> Result<Connection, ApiError> {
    Connection::open_default().map_err(|e| {
        ApiError::new(
            503,
            "store_unavailable",
            format!("the database did not open: {e:?}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NonceRequest {
    address: Option<String>,
}

#[derive(Serialize)]
struct NonceAnswer {
    nonce: String,
    expires_at: String,
}

fn issue_nonce(
    request: &ApiRequest,
    limits: &AuthLimits,
    client: &str,
) -> Result<Response, ApiError> {
    let body: NonceRequest = request.json()?;
    let address = body
        .address
        .map(|a| {
            a.parse::<streamgate_core::rpc::Address>().map_err(|_| {
                ApiError::new(
                    400,
                    "invalid_address",
                    format!("`{a}` is not an Ethereum address"),
                )
            })
        })
        .transpose()?;
    let now = now();
    let kv = streamgate_spin::session::key_value()?;
    Counter {
        scope: "nonce_ip",
        subject: client,
        limit: limits.nonce_per_ip,
    }
    .check(&kv, now)?;

    let nonce = nonce::generate_nonce(random_bytes()?);
    let expires_at = nonce::nonce_expires_at(now);
    nonces::store(&database()?, &nonce, expires_at, address, now)?;
    Ok(response::json(
        200,
        &NonceAnswer {
            nonce,
            expires_at: rfc3339_utc(expires_at),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    message: String,
    signature: String,
}

#[derive(Serialize)]
struct SessionAnswer {
    token: String,
    address: String,
    expires_at: String,
}

/// `POST /auth/verify` and whose limit it counts against (docs/auth.md). A client whose
/// failures filled its window is refused before its body is read; an attempt that fails for
/// what the client sent counts against the client; an address's window counts only sign-ins
/// whose signature is valid, so naming someone else's address costs them nothing.
async fn verify_route(req: IncomingRequest, head: ApiRequest) -> Result<Response, ApiError> {
    let limits = AuthLimits::load(&Spin)?;
    let client = client(&req, &limits);
    let failures = Counter {
        scope: "verify_ip",
        subject: &client,
        limit: limits.verify_per_ip,
    };
    let kv = streamgate_spin::session::key_value()?;
    failures.ensure_open(&kv, now())?;
    let outcome = match head.read_body(req, VERIFY_BODY_LIMIT).await {
        Ok(request) => verify(&request, &limits, &kv).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        if rate_limit::is_client_failure(e) {
            // The answer stays the client's error: a store that cannot count this failure
            // answered the read above a moment ago, and the window is approximate anyway.
            let _ = failures.record(&kv, now());
        }
    }
    outcome
}

async fn verify(
    request: &ApiRequest,
    limits: &AuthLimits,
    kv: &Store,
) -> Result<Response, ApiError> {
    let body: VerifyRequest = request.json()?;
    let now = now();

    let settings = SignIn::load(&Spin)?;
    let siwe = SiweConfig::new(
        settings.siwe_domain,
        settings.siwe_uri,
        settings.chain_rpc_urls.keys().copied().collect(),
    );
    let keys = streamgate_spin::session::keys()?;
    let ttl = settings.session_ttl_secs;

    let message = signin::check_message(&body.message, &siwe, now)?;
    let address = message.address.to_checksum(None);
    // Valid sign-ins per address: looked at here (a full window costs no chain call), counted
    // only once the signature is valid.
    let sign_ins = Counter {
        scope: "verify_address",
        subject: &address,
        limit: limits.verify_per_address,
    };
    sign_ins.ensure_open(kv, now)?;

    // A nonce that cannot succeed is refused before any chain call is made for it.
    let db = database()?;
    nonces::check_usable(&db, &message.nonce, message.address, now)?;

    let signature = decode_signature_hex(&body.signature).map_err(SiweError::InvalidSignature)?;
    let reader = HttpChainReader::new(settings.chain_rpc_urls);
    let signer = verify_signature(
        &reader,
        message.chain_id,
        message.address,
        body.message.as_bytes(),
        &signature,
    )
    .await?;
    sign_ins.check(kv, now)?;

    // Only now is the nonce spent, atomically: of two requests racing with one signed message,
    // exactly one gets here first.
    nonces::burn(&db, &message.nonce, now)?;

    // A contract wallet's session speaks for its address on this chain only (docs/auth.md).
    let issued = session::issue_wallet_session(
        &keys,
        message.address,
        message.chain_id,
        signer.into(),
        now,
        ttl,
        random_bytes()?,
    )?;
    Ok(response::json(
        200,
        &SessionAnswer {
            token: issued.token,
            address,
            expires_at: rfc3339_utc(issued.session.expires_at),
        },
    ))
}

#[derive(Serialize)]
struct MeAnswer {
    address: String,
    chain_id: u64,
    expires_at: String,
}

fn me(request: &ApiRequest) -> Result<Response, ApiError> {
    let kv = streamgate_spin::session::key_value()?;
    let keys = streamgate_spin::session::keys()?;
    let session =
        streamgate_spin::session::authenticate(request.header("authorization"), &keys, &kv, now())?;
    Ok(response::json(
        200,
        &MeAnswer {
            address: session.address.to_checksum(None),
            chain_id: session.chain_id,
            expires_at: rfc3339_utc(session.expires_at),
        },
    ))
}

fn logout(request: &ApiRequest) -> Result<Response, ApiError> {
    let kv = streamgate_spin::session::key_value()?;
    let keys = streamgate_spin::session::keys()?;
    let now = now();
    let session =
        streamgate_spin::session::authenticate(request.header("authorization"), &keys, &kv, now)?;
    streamgate_spin::session::revoke(&session, &kv, now)?;
    Ok(response::no_content())
}
