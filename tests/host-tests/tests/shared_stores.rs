//! Two host processes sharing one Redis-backed key-value store (`type = "redis"`) and one
//! SQLite file, as instances of the app behind a load balancer: a session revoked through one
//! is refused by the other, and a sign-in nonce burnt through one is burnt for both.

use std::io::Write as _;
use std::process::{Command, Stdio};

use host_tests::*;
use streamgate_core::session;

const SESSION_SECRET: &str = "shared-stores-test-session-secret-0123456789";
/// Anvil's first development account: a well-known test key, never a real one.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

struct Pair {
    a: Host,
    b: Host,
    redis: Redis,
    _dirs: Vec<tempfile::TempDir>,
}

/// A JSON-RPC endpoint that answers `"0x"` to every call: no contract code at any address, so
/// a sign-in is an ordinary account's (the auth component asks before it trusts a signature).
fn empty_chain() -> u16 {
    tcp_peer(|mut stream| {
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                std::io::BufRead::read_line(&mut reader, &mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                std::io::Read::read_exact(&mut reader, &mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = |r: &Value| json!({"jsonrpc": "2.0", "id": r["id"], "result": "0x"});
        let reply = match &request {
            Value::Array(batch) => Value::Array(batch.iter().map(answer).collect()),
            one => answer(one),
        }
        .to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
            reply.len()
        );
    })
}

/// Two hosts whose runtime config puts key-value `default` in Redis (database 1, the admin user
/// here) and SQLite `default` in one file.
fn pair() -> Pair {
    let chain = empty_chain();
    let redis = Redis::start();
    let shared = tempfile::tempdir().unwrap();
    let rc = shared.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}/1\"\n\n\
             [sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n",
            redis.url(),
            shared.path().join("shared.db").display()
        ),
    )
    .unwrap();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |state: &std::path::Path| {
        HostConfig::new("spin.toml", state)
            .var("session_secret", SESSION_SECRET)
            .var(
                "events_secret",
                "shared-stores-test-events-secret-0123456789",
            )
            .var(
                "playback_secret",
                "shared-stores-test-playback-secret-0123456789",
            )
            .var("chain_rpc_urls", format!("31337=http://127.0.0.1:{chain}"))
            .var("chain_rpc_http_host", format!("127.0.0.1:{chain}"))
            .redis(&redis)
            .runtime_config(rc.clone())
            .start()
    };
    let a = start(state_a.path());
    let b = start(state_b.path());
    Pair {
        a,
        b,
        redis,
        _dirs: vec![shared, state_a, state_b],
    }
}

fn send(
    host: &Host,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut request = ureq::request(method, &host.url(path));
    if let Some(token) = bearer {
        request = request.set("authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some(body) => request
            .set("content-type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            (status, r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

#[test]
fn a_session_revoked_through_one_host_is_refused_by_the_other() {
    let p = pair();
    let keys = session::SessionKeys::from_config(SESSION_SECRET, None).unwrap();
    let token =
        session::issue_session(&keys, ADDRESS.parse().unwrap(), 31337, now(), 3600, [7; 16])
            .unwrap()
            .token;
    assert_eq!(
        send(&p.b, "GET", "/api/v1/auth/me", Some(&token), None).0,
        200
    );
    let (status, body) = send(&p.a, "POST", "/api/v1/auth/logout", Some(&token), None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = send(&p.b, "GET", "/api/v1/auth/me", Some(&token), None);
    assert_eq!(status, 401, "revoked through the other host: {body}");

    // Spin's layout: the guest's key is the Redis key, in the configured database.
    let mut conn = p.redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("session:revoked:*")
        .query(&mut conn)
        .unwrap();
    assert!(
        keys.is_empty(),
        "database 0 holds no key-value keys: {keys:?}"
    );
    redis::cmd("SELECT").arg(1).query::<()>(&mut conn).unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("session:revoked:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
}

/// personal_sign by Python's eth-account (tests/python/sign_message.py).
fn sign(message: &str) -> String {
    let mut child = Command::new("python3")
        .arg(workspace().join("tests/python/sign_message.py"))
        .env("SIGNER_PRIVATE_KEY", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_nonce_burnt_through_one_host_is_burnt_for_both() {
    let p = pair();
    let (status, body) = send(&p.a, "POST", "/api/v1/auth/nonce", None, Some(&json!({})));
    assert_eq!(status, 200, "{body}");
    let nonce = serde_json::from_str::<Value>(&body).unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_string();
    let issued_at = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let message = format!(
        "127.0.0.1:3000 wants you to sign in with your Ethereum account:\n{ADDRESS}\n\n\
         Sign in to StreamGate.\n\nURI: http://127.0.0.1:3000\nVersion: 1\nChain ID: 31337\n\
         Nonce: {nonce}\nIssued At: {}",
        issued_at.trim()
    );
    let verify = json!({"message": message, "signature": sign(&message)});
    let (status, body) = send(&p.b, "POST", "/api/v1/auth/verify", None, Some(&verify));
    assert_eq!(
        status, 200,
        "a nonce issued by one host verifies on the other: {body}"
    );
    let (status, body) = send(&p.a, "POST", "/api/v1/auth/verify", None, Some(&verify));
    assert_eq!(status / 100, 4, "{body}");
    assert!(body.contains("nonce"), "refused for its used nonce: {body}");
}
