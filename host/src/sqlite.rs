//! `spin:sqlite/sqlite@3.0.0` and the older `fermyon:spin/sqlite@2.0.0` (spin-sdk 5.2 exposes
//! both), over one [`SqliteFile`] per database label. Spin's default database, `default`, lives
//! at `.spin/sqlite_db.db`.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::{sqlite_v2, sqlite_v3};
use crate::sqlite_file::{run_leased, Lease, SqliteFile};
use crate::state::RequestState;

/// A database a guest has opened: the resource behind both versions' `connection`.
pub struct OpenConnection {
    db: SqliteFile,
    /// `changes()` and `last-insert-rowid()` of this guest connection's last statement. They are
    /// captured together with the statement because the underlying SQLite connection is shared
    /// by every request, so asking SQLite later could report another request's statement.
    changes: u64,
    last_insert_rowid: i64,
    /// Held from the statement that opened a transaction (`BEGIN …`) to the one that ended it,
    /// so the guest's statements in between are its own (see [`crate::sqlite_file`]).
    transaction: Option<Lease>,
}

impl Drop for OpenConnection {
    /// A guest that lets go of its connection (or traps, or is stopped at its deadline) with a
    /// transaction open has it rolled back, as closing its own connection would on Spin.
    fn drop(&mut self) {
        let Some(lease) = self.transaction.take() else {
            return;
        };
        let rollback = move || {
            let _ = lease.execute_batch("ROLLBACK");
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}

/// Every SQLite database the app can open, by label.
#[derive(Default)]
pub struct SqliteDatabases {
    databases: HashMap<String, SqliteFile>,
}

impl SqliteDatabases {
    pub fn insert(&mut self, label: &str, path: &Path) -> anyhow::Result<()> {
        self.databases
            .insert(label.to_string(), SqliteFile::open(path)?);
        Ok(())
    }

    pub fn contains(&self, label: &str) -> bool {
        self.databases.contains_key(label)
    }
}

/// What went wrong, independent of the interface version that asked.
enum Failure {
    AccessDenied,
    NoSuchDatabase,
    DatabaseFull,
    Io(String),
}

struct QueryOutput {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl RequestState {
    fn open_database(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Failure>> {
        if !self.component.sqlite_databases.contains(label) {
            return Ok(Err(Failure::AccessDenied));
        }
        let Some(db) = self.services.sqlite.databases.get(label).cloned() else {
            return Ok(Err(Failure::NoSuchDatabase));
        };
        Ok(Ok(self.table.push(OpenConnection {
            db,
            changes: 0,
            last_insert_rowid: 0,
            transaction: None,
        })?))
    }

    async fn execute_statement(
        &mut self,
        connection: &Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryOutput, Failure>> {
        let open = self.table.get_mut(connection)?;
        let lease = match open.transaction.take() {
            Some(lease) => lease,
            None => {
                let db = open.db.clone();
                db.lease().await
            }
        };
        let outcome = run_leased(lease, move |conn| {
            let output = run_query(conn, &statement, parameters)?;
            Ok::<_, rusqlite::Error>((output, conn.changes(), conn.last_insert_rowid()))
        })
        .await;
        let outcome = match outcome {
            Ok((result, lease)) => {
                // Still inside a transaction (this statement began it, or one before did and
                // this was not its end, or it failed): keep the connection for this guest.
                if !lease.is_autocommit() {
                    self.table.get_mut(connection)?.transaction = Some(lease);
                }
                Ok(result)
            }
            Err(e) => Err(e),
        };
        crate::metrics::METRICS.sqlite(matches!(outcome, Ok(Ok(_))));
        let (output, changes, rowid) = match outcome {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Ok(Err(failure_of(e))),
            Err(e) => return Ok(Err(Failure::Io(e))),
        };
        let open = self.table.get_mut(connection)?;
        open.changes = changes;
        open.last_insert_rowid = rowid;
        Ok(Ok(output))
    }
}

fn run_query(
    conn: &mut rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> rusqlite::Result<QueryOutput> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(parameters.iter().map(as_sql)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(Value::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(values);
    }
    Ok(QueryOutput { columns, rows: out })
}

fn as_sql(value: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::from(value))
}

fn failure_of(e: rusqlite::Error) -> Failure {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Failure::DatabaseFull,
        _ => Failure::Io(e.to_string()),
    }
}

/// The two interface versions have identical shapes but distinct generated types; one macro
/// writes the conversions for both instead of two hand-copied blocks.
macro_rules! sqlite_version {
    ($v:ident) => {
        impl From<Failure> for $v::Error {
            fn from(f: Failure) -> Self {
                match f {
                    Failure::AccessDenied => Self::AccessDenied,
                    Failure::NoSuchDatabase => Self::NoSuchDatabase,
                    Failure::DatabaseFull => Self::DatabaseFull,
                    Failure::Io(msg) => Self::Io(msg),
                }
            }
        }

        impl From<$v::Value> for Value {
            fn from(v: $v::Value) -> Self {
                match v {
                    $v::Value::Integer(i) => Value::Integer(i),
                    $v::Value::Real(r) => Value::Real(r),
                    $v::Value::Text(t) => Value::Text(t),
                    $v::Value::Blob(b) => Value::Blob(b),
                    $v::Value::Null => Value::Null,
                }
            }
        }

        impl From<Value> for $v::Value {
            fn from(v: Value) -> Self {
                match v {
                    Value::Integer(i) => Self::Integer(i),
                    Value::Real(r) => Self::Real(r),
                    Value::Text(t) => Self::Text(t),
                    Value::Blob(b) => Self::Blob(b),
                    Value::Null => Self::Null,
                }
            }
        }

        impl From<QueryOutput> for $v::QueryResult {
            fn from(q: QueryOutput) -> Self {
                Self {
                    columns: q.columns,
                    rows: q
                        .rows
                        .into_iter()
                        .map(|values| $v::RowResult {
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $v::Host for RequestState {}
    };
}

sqlite_version!(sqlite_v2);
sqlite_version!(sqlite_v3);

impl sqlite_v3::HostConnection for RequestState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, sqlite_v3::Error>> {
        Ok(self.open_database(&database)?.map_err(Into::into))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<sqlite_v3::Value>,
    ) -> wasmtime::Result<Result<sqlite_v3::QueryResult, sqlite_v3::Error>> {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let result = self
            .execute_statement(&connection, statement, parameters)
            .await?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<OpenConnection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.table.get(&connection)?.last_insert_rowid)
    }

    async fn changes(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&connection)?.changes)
    }

    async fn drop(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl sqlite_v2::HostConnection for RequestState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, sqlite_v2::Error>> {
        Ok(self.open_database(&database)?.map_err(Into::into))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<sqlite_v2::Value>,
    ) -> wasmtime::Result<Result<sqlite_v2::QueryResult, sqlite_v2::Error>> {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let result = self
            .execute_statement(&connection, statement, parameters)
            .await?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn drop(&mut self, connection: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
