//! Wallet sign-in (EIP-4361) and sessions.
//!
//! `POST /api/v1/auth/nonce`, `POST /api/v1/auth/verify`, `GET /api/v1/auth/me`,
//! `POST /api/v1/auth/logout`. Nonces live in SQLite, where burning one is a single atomic
//! `UPDATE`; revoked sessions and rate-limit windows live in key-value. The checks themselves
//! (message, signature, tokens) are `streamgate-core`'s.

mod nonces;
mod rate_limits;

use serde::{Deserialize, Serialize};
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite3::Connection;
use streamgate_core::api_error::ApiError;
use streamgate_core::eip1271::verify_signature;
use streamgate_core::eip191::decode_signature_hex;
use streamgate_core::siwe::{rfc3339_utc, SiweConfig, SiweError};
use streamgate_core::{config, nonce, session, signin};
use streamgate_spin::chain::HttpChainReader;
use streamgate_spin::request::ApiRequest;
use streamgate_spin::{now, random_bytes, response};

/// A nonce request carries at most an address.
const NONCE_BODY_LIMIT: usize = 4 * 1024;
/// A message (≤ 16 KiB) and a signature (≤ 16 KiB decoded, twice that in hex), as JSON.
const VERIFY_BODY_LIMIT: usize = 64 * 1024;

#[http_component]
async fn handle(req: IncomingRequest) -> Response {
    let head = ApiRequest::head(&req);
    let outcome = match (&head.method, head.path.as_str()) {
        (Method::Post, "/api/v1/auth/nonce") => match head.read_body(req, NONCE_BODY_LIMIT).await {
            Ok(request) => issue_nonce(&request),
            Err(e) => Err(e),
        },
        (Method::Post, "/api/v1/auth/verify") => match head.read_body(req, VERIFY_BODY_LIMIT).await
        {
            Ok(request) => verify(&request).await,
            Err(e) => Err(e),
        },
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

fn issue_nonce(request: &ApiRequest) -> Result<Response, ApiError> {
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
    rate_limits::check(
        &kv,
        "nonce_ip",
        &request.client_ip(),
        "rate_limit_nonce_per_ip",
        now,
    )?;

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

async fn verify(request: &ApiRequest) -> Result<Response, ApiError> {
    let body: VerifyRequest = request.json()?;
    let now = now();
    let kv = streamgate_spin::session::key_value()?;
    rate_limits::check(
        &kv,
        "verify_ip",
        &request.client_ip(),
        "rate_limit_verify_per_ip",
        now,
    )?;

    let rpc_urls = config::chain_rpc_urls(&streamgate_spin::config::get("chain_rpc_urls")?)?;
    let siwe = SiweConfig::new(
        streamgate_spin::config::get("siwe_domain")?,
        streamgate_spin::config::get("siwe_uri")?,
        rpc_urls.keys().copied().collect(),
    );
    let keys = streamgate_spin::session::keys()?;

    let message = signin::check_message(&body.message, &siwe, now)?;
    let address = message.address.to_checksum(None);
    rate_limits::check(
        &kv,
        "verify_address",
        &address,
        "rate_limit_verify_per_address",
        now,
    )?;

    // A nonce that cannot succeed is refused before any chain call is made for it.
    let db = database()?;
    nonces::check_usable(&db, &message.nonce, message.address, now)?;

    let signature = decode_signature_hex(&body.signature).map_err(SiweError::InvalidSignature)?;
    let reader = HttpChainReader::new(rpc_urls);
    verify_signature(
        &reader,
        message.chain_id,
        message.address,
        body.message.as_bytes(),
        &signature,
    )
    .await?;

    // Only now is the nonce spent, atomically: of two requests racing with one signed message,
    // exactly one gets here first.
    nonces::burn(&db, &message.nonce, now)?;

    let issued = session::issue_session(
        &keys,
        message.address,
        message.chain_id,
        now,
        session::DEFAULT_SESSION_TTL_SECS,
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
    let session =
        streamgate_spin::session::authenticate(request.header("authorization"), &keys, &kv, now())?;
    streamgate_spin::session::revoke(&session, &kv)?;
    Ok(response::no_content())
}
