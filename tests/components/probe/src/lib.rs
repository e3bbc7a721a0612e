//! A test component for the embedded host. Each `?op=` drives one host interface and answers
//! JSON saying exactly what the guest saw (a value, or the error variant), so the host tests
//! can assert Spin's semantics from the guest's side. Without `op` it echoes the request as
//! routed: path, and every `spin-*` header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{Request, Response};
use spin_sdk::{http_component, key_value, redis, sqlite3, variables};

#[http_component]
async fn handle(req: Request) -> Response {
    let op = query_param(req.query(), "op").unwrap_or_default();
    let outcome = match op.as_str() {
        "" | "headers" => Ok(echo(&req)),
        "kv" => body(&req).map(kv),
        "sqlite" => body(&req).map(sqlite),
        "var" => Ok(var(&query_param(req.query(), "name").unwrap_or_default())),
        "http" => match body::<HttpOp>(&req) {
            Ok(op) => Ok(http(op).await),
            Err(e) => Err(e),
        },
        "redis" => body(&req).map(redis_op),
        "sleep" => Ok(sleep(&req)),
        "trap" => panic!("probe asked to trap"),
        // Computes forever without calling the host: only epoch interruption can stop it.
        "loop" => spin_forever(),
        // Grows its heap by `mib` MiB at a time, touching every page, until it fails.
        "alloc" => Ok(alloc(&req)),
        // The W3C trace context the host handed the guest (tests/host-tests/tests/traces.rs).
        "trace" => Ok(json!({
            "traceparent": header(&req, "traceparent"),
            "tracestate": header(&req, "tracestate"),
        })),
        "env" => Ok(
            json!({ "value": std::env::var(query_param(req.query(), "name").unwrap_or_default()).ok() }),
        ),
        other => Err(format!("unknown op {other:?}")),
    };
    match outcome {
        Ok(value) => json_response(200, value),
        Err(e) => json_response(400, json!({ "bad_request": e })),
    }
}

fn json_response(status: u16, value: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(value.to_string())
        .build()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

fn body<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, String> {
    serde_json::from_slice(req.body()).map_err(|e| e.to_string())
}

fn err(e: impl std::fmt::Debug) -> Value {
    json!({ "err": format!("{e:?}") })
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.header(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn echo(req: &Request) -> Value {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .filter(|(name, _)| name.starts_with("spin-"))
        .map(|(name, value)| (name.to_string(), json!(value.as_str().unwrap_or_default())))
        .collect();
    json!({ "path": req.path(), "query": req.query(), "headers": headers })
}

#[derive(Deserialize)]
struct KvOp {
    store: String,
    action: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

fn kv(op: KvOp) -> Value {
    let store = match key_value::Store::open(&op.store) {
        Ok(store) => store,
        Err(e) => return err(e),
    };
    let result = match op.action.as_str() {
        "get" => store
            .get(&op.key)
            .map(|v| json!(v.map(|b| String::from_utf8_lossy(&b).into_owned()))),
        "set" => store
            .set(&op.key, op.value.as_bytes())
            .map(|()| json!(null)),
        "delete" => store.delete(&op.key).map(|()| json!(null)),
        "exists" => store.exists(&op.key).map(|b| json!(b)),
        "keys" => store.get_keys().map(|k| json!(k)),
        other => return json!({ "bad_request": format!("unknown action {other:?}") }),
    };
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct SqlOp {
    db: String,
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

fn to_sql(v: &Value) -> sqlite3::Value {
    match v {
        Value::Null => sqlite3::Value::Null,
        Value::Bool(b) => sqlite3::Value::Integer(i64::from(*b)),
        Value::Number(n) if n.is_i64() => sqlite3::Value::Integer(n.as_i64().unwrap_or_default()),
        Value::Number(n) => sqlite3::Value::Real(n.as_f64().unwrap_or_default()),
        Value::String(s) => sqlite3::Value::Text(s.clone()),
        // {"blob": [1,2,3]} is a blob.
        other => sqlite3::Value::Blob(
            other["blob"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|b| b.as_u64())
                        .map(|b| b as u8)
                        .collect()
                })
                .unwrap_or_default(),
        ),
    }
}

fn from_sql(v: &sqlite3::Value) -> Value {
    match v {
        sqlite3::Value::Integer(i) => json!({ "integer": i }),
        sqlite3::Value::Real(r) => json!({ "real": r }),
        sqlite3::Value::Text(t) => json!({ "text": t }),
        sqlite3::Value::Blob(b) => json!({ "blob": b }),
        sqlite3::Value::Null => json!("null"),
    }
}

fn sqlite(op: SqlOp) -> Value {
    let conn = match sqlite3::Connection::open(&op.db) {
        Ok(conn) => conn,
        Err(e) => return err(e),
    };
    let params: Vec<sqlite3::Value> = op.params.iter().map(to_sql).collect();
    match conn.execute(&op.sql, &params) {
        Ok(result) => json!({
            "columns": result.columns,
            "rows": result.rows.iter().map(|r| r.values.iter().map(from_sql).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "changes": conn.changes(),
            "last_insert_rowid": conn.last_insert_rowid(),
        }),
        Err(e) => err(e),
    }
}

fn var(name: &str) -> Value {
    match variables::get(name) {
        Ok(value) => json!({ "ok": value }),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct HttpOp {
    url: String,
}

async fn http(op: HttpOp) -> Value {
    let request = Request::get(op.url).build();
    match spin_sdk::http::send::<_, Response>(request).await {
        Ok(response) => json!({
            "status": response.status(),
            "body": String::from_utf8_lossy(response.body()),
        }),
        Err(e) => err(e),
    }
}

#[derive(Deserialize)]
struct RedisOp {
    address: String,
    action: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    args: Vec<String>,
}

fn redis_op(op: RedisOp) -> Value {
    let conn = match redis::Connection::open(&op.address) {
        Ok(conn) => conn,
        Err(e) => return err(e),
    };
    let result = match op.action.as_str() {
        "publish" => conn
            .publish(&op.channel, &op.payload.into_bytes())
            .map(|()| json!(null)),
        "execute" => {
            let args: Vec<redis::RedisParameter> = op
                .args
                .iter()
                .map(|a| redis::RedisParameter::Binary(a.as_bytes().to_vec()))
                .collect();
            conn.execute(&op.command, &args).map(|results| {
                json!(results
                    .iter()
                    .map(|r| match r {
                        redis::RedisResult::Nil => json!(null),
                        redis::RedisResult::Status(s) => json!({ "status": s }),
                        redis::RedisResult::Int64(i) => json!(i),
                        redis::RedisResult::Binary(b) => json!(String::from_utf8_lossy(b)),
                    })
                    .collect::<Vec<_>>())
            })
        }
        // The typed commands, with `channel` as the key and `args` as values.
        "incr" => conn.incr(&op.channel).map(|n| json!(n)),
        "get" => conn
            .get(&op.channel)
            .map(|v| json!(v.map(|b| String::from_utf8_lossy(&b).into_owned()))),
        "set" => conn
            .set(&op.channel, &op.payload.into_bytes())
            .map(|()| json!(null)),
        "del" => conn.del(&op.args).map(|n| json!(n)),
        "sadd" => conn.sadd(&op.channel, &op.args).map(|n| json!(n)),
        "srem" => conn.srem(&op.channel, &op.args).map(|n| json!(n)),
        "smembers" => conn.smembers(&op.channel).map(|mut members| {
            members.sort();
            json!(members)
        }),
        other => return json!({ "bad_request": format!("unknown action {other:?}") }),
    };
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => err(e),
    }
}

/// Sleeps, reporting wall-clock start and end so a test can prove requests overlapped.
fn sleep(req: &Request) -> Value {
    let ms = query_param(req.query(), "ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64
    };
    let start = now();
    std::thread::sleep(Duration::from_millis(ms));
    json!({ "start_ms": start, "end_ms": now() })
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates `mib` MiB (default 1) at a time and keeps it, up to `limit_mib` if given, else
/// without end; answers how much it held.
fn alloc(req: &Request) -> Value {
    let step = query_param(req.query(), "mib")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        << 20;
    let limit = query_param(req.query(), "limit_mib")
        .and_then(|v| v.parse::<usize>().ok())
        .map(|m| m << 20);
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    while limit.is_none_or(|l| total < l) {
        held.push(vec![1u8; step]);
        total += step;
    }
    json!({ "held_mib": total >> 20, "chunks": std::hint::black_box(held).len() })
}
