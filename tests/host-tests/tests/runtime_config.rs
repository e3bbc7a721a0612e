//! `--runtime-config-file`: where a store lives, resolved as Spin 4.0.2 resolves it, and the
//! runtime config shipped in infra/.

use host_tests::*;

fn kv_set(host: &Host, key: &str) {
    let reply = host.post(
        "/?op=kv",
        &json!({"store": "default", "action": "set", "key": key, "value": "v"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"ok": null}));
}

fn sql_ok(host: &Host) {
    let reply = host.post(
        "/?op=sqlite",
        &json!({"db": "default", "sql": "CREATE TABLE IF NOT EXISTS t (x)", "params": []}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json().get("err").is_none(), "{}", reply.body);
}

#[test]
fn key_value_paths_are_relative_to_the_file_and_sqlite_paths_to_the_working_directory() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rc_dir = work.path().join("conf");
    std::fs::create_dir_all(&rc_dir).unwrap();
    let rc = rc_dir.join("runtime-config.toml");
    std::fs::write(
        &rc,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"kv/store.db\"\n\
         [key_value_store.other]\ntype = \"spin\"\npath = \"other.db\"\n\
         [sqlite_database.default]\ntype = \"spin\"\npath = \"db/app.db\"\n",
    )
    .unwrap();
    let host = HostConfig::new("tests/apps/probe/spin.toml", state.path())
        .var("api_token", "t0ken")
        .runtime_config(rc)
        .current_dir(work.path())
        .start();
    kv_set(&host, "k");
    sql_ok(&host);
    assert!(
        rc_dir.join("kv/store.db").exists(),
        "key-value beside the file"
    );
    assert!(
        work.path().join("db/app.db").exists(),
        "SQLite in the working directory"
    );
    assert!(!rc_dir.join("db/app.db").exists());
    assert!(!state.path().join("sqlite_db.db").exists());
    assert!(!state.path().join("sqlite_key_value.db").exists());
}

#[test]
fn the_shipped_runtime_config_keeps_the_default_files_of_the_state_directory() {
    // A copy of the repository's layout, run from its root as
    // `spin up --runtime-config-file infra/runtime-config.toml` is: the stores must land in
    // <root>/.spin under Spin's default names, where scripts/up and `spin up` keep them.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("infra")).unwrap();
    let rc = root.path().join("infra/runtime-config.toml");
    std::fs::copy(workspace().join("infra/runtime-config.toml"), &rc).unwrap();
    let state = tempfile::tempdir().unwrap();
    let host = HostConfig::new("spin.toml", state.path())
        .var(
            "session_secret",
            "runtime-config-test-session-secret-0123456789",
        )
        .var(
            "events_secret",
            "runtime-config-test-events-secret-0123456789",
        )
        .var(
            "playback_secret",
            "runtime-config-test-playback-secret-0123456789",
        )
        .runtime_config(rc)
        .current_dir(root.path())
        .start();
    let ready = host.get("/ready");
    assert_eq!(ready.status, 200, "{}\n{}", ready.body, host.log());
    assert!(root.path().join(".spin/sqlite_key_value.db").exists());
    assert!(root.path().join(".spin/sqlite_db.db").exists());
    assert!(!root.path().join("infra/.spin").exists());
    assert!(!state.path().join("sqlite_db.db").exists());
}

#[test]
fn unknown_store_types_are_refused_in_spins_words() {
    for (toml, expected) in [
        (
            "[key_value_store.default]\ntype = \"azure_cosmos\"\naccount = \"x\"\n",
            "the store type 'azure_cosmos' was not registered with the config resolver",
        ),
        (
            "[sqlite_database.default]\ntype = \"postgres\"\n",
            "Unknown database kind: postgres",
        ),
        (
            "[key_value_store.default]\ntype = \"redis\"\n",
            "missing field `url`",
        ),
        (
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1\"\npath = \"x.db\"\n",
            "unknown field `path`",
        ),
        (
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"not a url\"\n",
            "Invalid Redis URL",
        ),
    ] {
        let state = tempfile::tempdir().unwrap();
        let rc = state.path().join("rc.toml");
        std::fs::write(&rc, toml).unwrap();
        let (status, stderr) = HostConfig::new("tests/apps/probe/spin.toml", state.path())
            .var("api_token", "t0ken")
            .runtime_config(rc)
            .start_expecting_failure();
        assert!(!status.success(), "{toml}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}
