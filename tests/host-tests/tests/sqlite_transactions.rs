//! Guest transactions on the host's SQLite. Spin gives each guest `open` its own connection, so a
//! guest's `BEGIN` … `COMMIT` holds its statements alone and ends with its connection; the host
//! shares one connection per database, and must behave the same. Real host, real probe
//! component (one statement per request, its connection closed when the request ends), and the
//! database file read by a separate SQLite connection, as another process would.

use std::time::Duration;

use host_tests::*;
use rusqlite::Connection;

fn sql(host: &Host, sql: &str) -> Value {
    let reply = host.post(
        "/?op=sqlite",
        &json!({"db": "default", "sql": sql, "params": []}),
    );
    assert_eq!(reply.status, 200, "{sql}: {}", reply.body);
    reply.json()
}

#[test]
fn a_transaction_a_guest_leaves_open_ends_with_its_connection() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    sql(&host, "CREATE TABLE t (x INTEGER)");

    // A guest begins a transaction and its request ends without committing.
    sql(&host, "BEGIN IMMEDIATE");
    sql(&host, "INSERT INTO t VALUES (1)");
    // The next request's write was its own, committed at once: another connection sees it,
    // and can write too (no transaction of anyone's still holds the write lock).
    let outside = Connection::open(state.path().join("sqlite_db.db")).unwrap();
    outside.busy_timeout(Duration::from_secs(2)).unwrap();
    let count: i64 = outside
        .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        count, 1,
        "the insert after the abandoned BEGIN is committed"
    );
    outside.execute("INSERT INTO t VALUES (2)", []).unwrap();
    let seen = sql(&host, "SELECT COUNT(*) AS n FROM t");
    assert_eq!(seen["rows"], json!([[{"integer": 2}]]), "{seen}");
}
