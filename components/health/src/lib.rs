//! Liveness and readiness of the StreamGate API.
//!
//! `GET /health` answers as long as the host runs this component; `GET /ready` also asks the
//! stores the API depends on (key-value and SQLite, label `default`) and is 503 until both answer.

use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::{http_component, key_value, sqlite3};
use streamgate_core::api_error::ApiError;
use streamgate_core::readiness::Readiness;

#[http_component]
fn handle(req: Request) -> Response {
    let mut router = Router::new();
    router.get("/health", health);
    router.get("/ready", ready);
    router.any("/health", method_not_allowed);
    router.any("/ready", method_not_allowed);
    router.handle(req)
}

fn json(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body)
        .build()
}

fn health(_req: Request, _params: Params) -> impl IntoResponse {
    json(200, r#"{"status":"ok"}"#.to_string())
}

fn ready(_req: Request, _params: Params) -> impl IntoResponse {
    let mut readiness = Readiness::new();
    readiness.check(
        "key_value",
        key_value::Store::open_default()
            .and_then(|store| store.exists("streamgate:ready"))
            .map(|_| ()),
    );
    readiness.check(
        "sqlite",
        sqlite3::Connection::open_default()
            .and_then(|db| db.execute("SELECT 1", &[]))
            .map(|_| ()),
    );
    json(readiness.status(), readiness.to_json())
}

fn method_not_allowed(_req: Request, _params: Params) -> impl IntoResponse {
    let e = ApiError::method_not_allowed("GET");
    let mut response = json(e.status, e.to_json());
    if let Some(allow) = e.allow {
        response.set_header("allow", allow);
    }
    response
}
