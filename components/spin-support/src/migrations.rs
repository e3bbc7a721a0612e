//! Versioned schema migrations on Spin's SQLite, applied on first use by each component.
//!
//! Spin's SQLite interface runs one statement per call on a connection the host may share
//! between concurrent requests, so a multi-statement transaction is not available. Instead each
//! migration is a list of idempotent statements (`CREATE … IF NOT EXISTS`, additive `ALTER`s
//! guarded by the version check), recorded as applied only after all of them ran. A crash in
//! the middle leaves the version unrecorded and the next request re-runs the whole migration,
//! which converges: a migration is never left half-applied from the application's view.

use spin_sdk::sqlite3::{Connection, Value};
use streamgate_core::api_error::ApiError;

pub struct Migration {
    pub version: i64,
    pub statements: &'static [&'static str],
}

fn failed(e: impl std::fmt::Debug) -> ApiError {
    ApiError::new(
        503,
        "store_unavailable",
        format!("the database could not be prepared: {e:?}"),
    )
}

fn applied_version(db: &Connection, scope: &str) -> Result<i64, spin_sdk::sqlite3::Error> {
    Ok(db
        .execute(
            "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations WHERE scope = ?",
            &[Value::Text(scope.to_string())],
        )?
        .rows()
        .next()
        .and_then(|row| row.get::<i64>("v"))
        .unwrap_or(0))
}

/// Brings `scope`'s schema up to the last of `migrations` (sorted by version).
pub fn migrate(db: &Connection, scope: &str, migrations: &[Migration]) -> Result<(), ApiError> {
    // Every request of every component comes through here: the common case (schema current)
    // costs one read; the bookkeeping table is created only when that read finds none.
    let current = match applied_version(db, scope) {
        Ok(version) => version,
        Err(_) => {
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    scope TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
                    PRIMARY KEY (scope, version))",
                &[],
            )
            .map_err(failed)?;
            applied_version(db, scope).map_err(failed)?
        }
    };
    for migration in migrations.iter().filter(|m| m.version > current) {
        for statement in migration.statements {
            db.execute(statement, &[]).map_err(failed)?;
        }
        db.execute(
            "INSERT OR IGNORE INTO schema_migrations (scope, version, applied_at) VALUES (?, ?, ?)",
            &[
                Value::Text(scope.to_string()),
                Value::Integer(migration.version),
                Value::Integer(crate::now()),
            ],
        )
        .map_err(failed)?;
    }
    Ok(())
}
