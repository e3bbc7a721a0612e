//! One SQLite file behind one connection, used by both the key-value and the SQLite interfaces.
//!
//! One connection per store label (not a pool): SQLite serialises writers anyway, and a single
//! connection in WAL mode turned a 21 ms INSERT into 0.15 ms here. Calls run on tokio's blocking
//! pool so a slow disk never stalls the async reactor that serves HTTP.
//!
//! **Transactions.** Spin opens a SQLite connection per guest `open`, so a guest's `BEGIN` …
//! `COMMIT` spans its own statements alone. Here every guest shares the one connection, so a
//! guest that opens a transaction takes a [`Lease`] on it: nobody else's statement runs on the
//! connection until that guest commits, rolls back or lets go of its connection (which rolls
//! back). Otherwise other requests' statements would land inside (and be undone with) its
//! transaction.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rusqlite::Connection;

#[derive(Clone)]
pub struct SqliteFile {
    conn: Arc<tokio::sync::Mutex<Connection>>,
}

/// Exclusive use of the connection, held across calls while a guest's transaction is open.
pub type Lease = tokio::sync::OwnedMutexGuard<Connection>;

impl SqliteFile {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL is durable against application crashes and is what Spin's libsql/SQLite
        // defaults amount to; FULL would fsync on every commit.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
        })
    }

    /// Waits for exclusive use of the connection (behind any open transaction).
    pub async fn lease(&self) -> Lease {
        let lease = self.conn.clone().lock_owned().await;
        if !lease.is_autocommit() {
            // Left open by a holder that vanished without ending it (a panic mid-statement):
            // whatever it wrote is not committed, and must not be committed by the next user.
            tracing::warn!("rolling back a transaction its holder left open");
            let _ = lease.execute_batch("ROLLBACK");
        }
        lease
    }

    /// Runs `f` with exclusive use of the connection on the blocking pool.
    ///
    /// Exclusive use matters beyond thread safety: `changes()` and `last_insert_rowid()` are
    /// per connection, so they must be read under the same lock as the statement they follow.
    pub async fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let lease = self.lease().await;
        run_leased(lease, f).await.map(|(value, _lease)| value)
    }
}

/// Runs `f` on the blocking pool with a connection already leased, and hands the lease back.
pub async fn run_leased<T, F>(mut lease: Lease, f: F) -> Result<(T, Lease), String>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> T + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let value = f(&mut lease);
        (value, lease)
    })
    .await
    .map_err(|e| format!("database task failed: {e}"))
}
