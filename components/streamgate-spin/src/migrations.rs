//! Versioned schema migrations on Spin's SQLite, applied on first use by each component.
//!
//! They were written when the embedded host shared one connection between requests without
//! isolating transactions (it does now: docs/host.md), so they need none: each migration is a
//! list of idempotent steps (`CREATE … IF NOT EXISTS`, backfills that can run
//! twice, and columns added only where the table lacks them: `ALTER TABLE … ADD COLUMN` is
//! the one statement that fails when repeated), recorded as applied only after all of them ran.
//! A crash in the middle leaves the version unrecorded and the next request re-runs the whole
//! migration, which converges: a migration is never left half-applied from the application's
//! view.

use spin_sdk::sqlite3::{Connection, Value};
use streamgate_core::api_error::ApiError;

pub struct Migration {
    pub version: i64,
    /// Added first, each only if its table lacks it.
    pub add_columns: &'static [AddColumn],
    /// Then these, in order; each must be safe to run again.
    pub statements: &'static [&'static str],
}

/// `ALTER TABLE <table> ADD COLUMN <column> <definition>`, made idempotent.
pub struct AddColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub definition: &'static str,
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
        for add in migration.add_columns {
            add_column(db, add)?;
        }
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

fn has_column(db: &Connection, table: &str, column: &str) -> Result<bool, ApiError> {
    let result = db
        .execute(
            "SELECT COUNT(*) AS n FROM pragma_table_info(?) WHERE name = ?",
            &[
                Value::Text(table.to_string()),
                Value::Text(column.to_string()),
            ],
        )
        .map_err(failed)?;
    let count = result
        .rows()
        .next()
        .and_then(|row| row.get::<i64>("n"))
        .unwrap_or(0);
    Ok(count > 0)
}

/// Adds the column unless the table has it: after a crash between the `ALTER` and the version
/// record, or when a concurrent request's migration added it first (then our `ALTER` fails,
/// and the column being there is success).
fn add_column(db: &Connection, add: &AddColumn) -> Result<(), ApiError> {
    if has_column(db, add.table, add.column)? {
        return Ok(());
    }
    let statement = format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        add.table, add.column, add.definition
    );
    match db.execute(&statement, &[]) {
        Ok(_) => Ok(()),
        Err(_) if has_column(db, add.table, add.column)? => Ok(()),
        Err(e) => Err(failed(e)),
    }
}
