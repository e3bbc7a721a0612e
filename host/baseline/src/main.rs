//! What `/health` costs with no Wasm at all: same runtime (tokio, multi-threaded), same HTTP
//! stack (hyper http1, keep-alive), same response bytes and headers. `scripts/bench` runs wrk
//! against this and the embedded host in one run and prints the ratio.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = br#"{"status":"ok"}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3900".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Serving http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let response = if req.uri().path() == "/health" {
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .header("cache-control", "no-store")
                        .body(Full::new(Bytes::from_static(BODY)))
                } else {
                    hyper::Response::builder()
                        .status(404)
                        .body(Full::new(Bytes::from_static(b"Not Found")))
                };
                Ok::<_, Infallible>(response.expect("static response"))
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
