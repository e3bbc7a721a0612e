//! Server nonces in SQLite. Spin's key-value store has no compare-and-swap, so burning a nonce
//! is one conditional `UPDATE` whose `changes()` says whether this request won.

use spin_sdk::sqlite3::{Connection, Value};
use streamgate_core::api_error::ApiError;
use streamgate_core::rpc::Address;
use streamgate_core::siwe::SiweError;

/// Nonces are kept this long past their expiry (to answer `nonce_expired` rather than
/// `nonce_unknown`), then purged.
const KEEP_EXPIRED_SECS: i64 = 3600;

fn db_error(e: impl std::fmt::Debug) -> ApiError {
    ApiError::new(
        503,
        "store_unavailable",
        format!("the nonce store failed: {e:?}"),
    )
}

fn ensure_schema(db: &Connection) -> Result<(), ApiError> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS auth_nonces (
            nonce      TEXT PRIMARY KEY,
            address    TEXT,
            expires_at INTEGER NOT NULL,
            used_at    INTEGER
        )",
        &[],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn store(
    db: &Connection,
    nonce: &str,
    expires_at: i64,
    address: Option<Address>,
    now: i64,
) -> Result<(), ApiError> {
    ensure_schema(db)?;
    db.execute(
        "DELETE FROM auth_nonces WHERE expires_at < ?",
        &[Value::Integer(now - KEEP_EXPIRED_SECS)],
    )
    .map_err(db_error)?;
    let address = address.map_or(Value::Null, |a| Value::Text(a.to_checksum(None)));
    db.execute(
        "INSERT INTO auth_nonces (nonce, address, expires_at) VALUES (?, ?, ?)",
        &[
            Value::Text(nonce.to_string()),
            address,
            Value::Integer(expires_at),
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

struct NonceRow {
    address: Option<String>,
    expires_at: i64,
    used: bool,
}

fn lookup(db: &Connection, nonce: &str) -> Result<Option<NonceRow>, ApiError> {
    ensure_schema(db)?;
    let result = db
        .execute(
            "SELECT address, expires_at, used_at IS NOT NULL AS used FROM auth_nonces WHERE nonce = ?",
            &[Value::Text(nonce.to_string())],
        )
        .map_err(db_error)?;
    let row = result.rows().next().map(|row| NonceRow {
        address: row.get::<&str>("address").map(str::to_string),
        expires_at: row.get::<i64>("expires_at").unwrap_or_default(),
        used: row.get::<i64>("used").unwrap_or_default() != 0,
    });
    Ok(row)
}

/// Why a nonce cannot be used now, if it cannot.
fn refusal(row: Option<&NonceRow>, address: Address, now: i64) -> Option<SiweError> {
    let Some(row) = row else {
        return Some(SiweError::NonceUnknown);
    };
    if row.used {
        return Some(SiweError::NonceUsed);
    }
    if row.expires_at <= now {
        return Some(SiweError::NonceExpired);
    }
    // A nonce asked for on behalf of an address serves that address only.
    if let Some(bound) = &row.address {
        if !bound.eq_ignore_ascii_case(&address.to_checksum(None)) {
            return Some(SiweError::NonceUnknown);
        }
    }
    None
}

/// Read-only check, before the (possibly remote) signature check.
pub fn check_usable(
    db: &Connection,
    nonce: &str,
    address: Address,
    now: i64,
) -> Result<(), ApiError> {
    match refusal(lookup(db, nonce)?.as_ref(), address, now) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Spends the nonce; exactly one caller succeeds.
pub fn burn(db: &Connection, nonce: &str, now: i64) -> Result<(), ApiError> {
    db.execute(
        "UPDATE auth_nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND expires_at > ?",
        &[
            Value::Integer(now),
            Value::Text(nonce.to_string()),
            Value::Integer(now),
        ],
    )
    .map_err(db_error)?;
    if db.changes() == 1 {
        return Ok(());
    }
    // Lost the race, or it expired in between: say which.
    let row = lookup(db, nonce)?;
    Err(match row {
        Some(row) if row.used => SiweError::NonceUsed,
        Some(_) => SiweError::NonceExpired,
        None => SiweError::NonceUnknown,
    }
    .into())
}
