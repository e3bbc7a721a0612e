//! Key-value and SQLite as a component sees them: semantics, persistence, label denial.

use host_tests::*;

fn kv(host: &Host, prefix: &str, body: Value) -> Value {
    let reply = host.post(&format!("{prefix}/?op=kv"), &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn sql(host: &Host, sql: &str, params: Value) -> Value {
    let reply = host.post(
        "/?op=sqlite",
        &json!({"db": "default", "sql": sql, "params": params}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn key_value_semantics_and_persistence() {
    let state = tempfile::tempdir().unwrap();
    {
        let host = probe_app(state.path()).start();
        let op = |action: &str, key: &str, value: &str| {
            kv(
                &host,
                "",
                json!({"store": "default", "action": action, "key": key, "value": value}),
            )
        };
        assert_eq!(op("get", "missing", ""), json!({"ok": null}));
        assert_eq!(op("exists", "k1", ""), json!({"ok": false}));
        assert_eq!(op("set", "k1", "v1"), json!({"ok": null}));
        assert_eq!(op("set", "k2", "v2"), json!({"ok": null}));
        assert_eq!(
            op("set", "k1", "v1b"),
            json!({"ok": null}),
            "set overwrites"
        );
        assert_eq!(op("get", "k1", ""), json!({"ok": "v1b"}));
        assert_eq!(op("exists", "k1", ""), json!({"ok": true}));
        assert_eq!(op("keys", "", ""), json!({"ok": ["k1", "k2"]}));
        assert_eq!(op("delete", "k2", ""), json!({"ok": null}));
        assert_eq!(
            op("delete", "k2", ""),
            json!({"ok": null}),
            "deleting twice is fine"
        );
        assert_eq!(op("keys", "", ""), json!({"ok": ["k1"]}));
        // Stores are separate namespaces.
        let other = kv(&host, "", json!({"store": "other", "action": "keys"}));
        assert_eq!(other, json!({"ok": []}));
    }
    // A new host process on the same state directory sees the same data.
    let host = probe_app(state.path()).start();
    let again = kv(
        &host,
        "",
        json!({"store": "default", "action": "get", "key": "k1"}),
    );
    assert_eq!(again, json!({"ok": "v1b"}));
}

#[test]
fn stores_a_component_does_not_list_are_access_denied() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    // A label nobody configured, and labels that exist but this component does not list.
    let denied = json!({"err": "Error::AccessDenied"});
    assert_eq!(
        kv(
            &host,
            "",
            json!({"store": "nope", "action": "get", "key": "a"})
        ),
        denied
    );
    assert_eq!(
        kv(
            &host,
            "/restricted",
            json!({"store": "default", "action": "get", "key": "a"})
        ),
        denied
    );
    assert_eq!(
        kv(
            &host,
            "/restricted",
            json!({"store": "other", "action": "get", "key": "a"})
        ),
        denied
    );
    let db = host.post(
        "/restricted/?op=sqlite",
        &json!({"db": "default", "sql": "SELECT 1"}),
    );
    assert_eq!(db.json(), json!({"err": "Error::AccessDenied"}));
}

#[test]
fn a_listed_store_with_no_configuration_stops_startup() {
    let state = tempfile::tempdir().unwrap();
    let (status, stderr) = HostConfig::new("tests/apps/probe/spin.toml", state.path())
        .var("api_token", "t")
        .start_expecting_failure();
    assert!(!status.success());
    assert!(stderr.contains("key-value store `other`"), "{stderr}");
}

#[test]
fn sqlite_semantics() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    sql(
        &host,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n)",
        json!([]),
    );
    let inserted = sql(
        &host,
        "INSERT INTO items (i, r, t, b, n) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)",
        json!([7, 2.5, "seven", {"blob": [0, 1, 255]}, null, -1, 0.125, "héllo", {"blob": []}, null]),
    );
    assert_eq!(inserted["changes"], 2);
    assert_eq!(inserted["last_insert_rowid"], 2);
    let rows = sql(
        &host,
        "SELECT i, r, t, b, n FROM items WHERE id = ?",
        json!([1]),
    );
    assert_eq!(rows["columns"], json!(["i", "r", "t", "b", "n"]));
    assert_eq!(
        rows["rows"],
        json!([[{"integer": 7}, {"real": 2.5}, {"text": "seven"}, {"blob": [0, 1, 255]}, "null"]])
    );
    let updated = sql(
        &host,
        "UPDATE items SET t = ? WHERE i < ?",
        json!(["neg", 0]),
    );
    assert_eq!(updated["changes"], 1);
    let bad = host.post(
        "/?op=sqlite",
        &json!({"db": "default", "sql": "SELEC nonsense"}),
    );
    let err = bad.json()["err"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("Error::Io(") && err.contains("syntax error"),
        "{err}"
    );
    // The database file is in the state directory, in WAL mode.
    assert!(state.path().join("sqlite_db.db").exists());
    let mode = sql(&host, "PRAGMA journal_mode", json!([]));
    assert_eq!(mode["rows"], json!([[{"text": "wal"}]]));
}

#[test]
fn concurrent_writers_each_see_their_own_changes() {
    let state = tempfile::tempdir().unwrap();
    let host = probe_app(state.path()).start();
    sql(
        &host,
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v)",
        json!([]),
    );
    std::thread::scope(|s| {
        for n in 1..=8usize {
            let host = &host;
            s.spawn(move || {
                let values: Vec<Value> = (0..n).map(|i| json!(i)).collect();
                let placeholders = vec!["(?)"; n].join(", ");
                let out = sql(
                    host,
                    &format!("INSERT INTO c (v) VALUES {placeholders}"),
                    json!(values),
                );
                assert_eq!(
                    out["changes"], n,
                    "changes() reports this request's own statement"
                );
            });
        }
    });
    let count = sql(&host, "SELECT COUNT(*) FROM c", json!([]));
    assert_eq!(count["rows"], json!([[{"integer": 36}]]));
}
