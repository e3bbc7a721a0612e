//! The HTTP trigger: accept connections, route each request to its component, and run it in a
//! fresh `Store` instantiated from the component's `InstancePre`. A trap fails that request
//! only (500); shutdown stops accepting and lets in-flight requests finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::app::App;
use crate::client_limit::ClientConnections;
use crate::errors;
use crate::limits::Limits;
use crate::state::RequestState;

/// Why a guest was stopped: its request ran past `--request-timeout-secs`.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's execution deadline passed")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Why a guest trapped: it asked for memory beyond `--max-instance-memory-mib`.
#[derive(Debug)]
struct MemoryCapReached;

impl std::fmt::Display for MemoryCapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the instance was refused memory beyond its cap")
    }
}

impl std::error::Error for MemoryCapReached {}

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    app: Arc<App>,
    engine: Engine,
    limits: Limits,
    /// One permit per instance the pool holds: a request takes one before it instantiates.
    slots: Arc<Semaphore>,
    clients: Arc<ClientConnections>,
}

/// A request's store and the slot it holds. Fields drop in order: the store (and with it the
/// pool slot) is given back before the permit lets the next request in.
struct Instance {
    store: Store<RequestState>,
    _slot: OwnedSemaphorePermit,
}

pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut http = http1::Builder::new();
    // The header-read timer runs whenever hyper waits for a request head, so it also closes a
    // keep-alive connection left idle between requests.
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(server.limits.header_read_timeout())
        .max_header_size(server.limits.max_request_head());
    // For a client over its connection cap: one answer, then the connection closes.
    let mut refuse = http.clone();
    refuse.keep_alive(false);
    accept::serve(
        listener,
        shutdown,
        DRAIN_TIMEOUT,
        |stream, client, connections| {
            let Some(counted) = server.clients.admit(client.ip()) else {
                crate::metrics::METRICS.overloaded("client_connections");
                let conn = refuse.serve_connection(
                    TokioIo::new(stream),
                    service_fn(|_req| async {
                        Ok::<_, Infallible>(errors::closing(errors::overloaded(
                            "Too many connections from this client. Close some, or retry shortly.",
                        )))
                    }),
                );
                // Not waited for at shutdown: it answers once and closes.
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return;
            };
            let server = server.clone();
            let conn = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, client).await) }
                }),
            );
            connections.spawn(conn, client, counted);
        },
    )
    .await;
    Ok(())
}

/// Spin answers these itself, before routing, whatever the app's routes are.
fn well_known(path: &str) -> Option<hyper::Response<HyperOutgoingBody>> {
    match path.strip_prefix(streamgate_spin_app::routing::WELL_KNOWN_PREFIX)? {
        "health" => Some(errors::with_body(
            http::StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"OK"),
        )),
        "info" => Some(errors::with_body(
            http::StatusCode::OK,
            "application/json",
            Bytes::from_static(
                concat!(
                    r#"{"version":""#,
                    env!("CARGO_PKG_VERSION"),
                    r#"","host":"streamgate-host"}"#
                )
                .as_bytes(),
            ),
        )),
        _ => Some(errors::not_found()),
    }
}

impl Server {
    pub fn new(app: App, engine: Engine, limits: Limits) -> Self {
        Self {
            app: Arc::new(app),
            engine,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_requests as usize)),
            clients: ClientConnections::new(limits.max_connections_per_client as usize),
            limits,
        }
    }

    /// A slot in the instance pool, at once or after a short wait in line; `None` when the
    /// queue timeout passes first.
    async fn take_slot(&self) -> Option<OwnedSemaphorePermit> {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => return Some(slot),
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {}
        }
        let queued = &crate::metrics::METRICS.requests_queued;
        queued.inc();
        let slot = tokio::time::timeout(
            self.limits.queue_timeout(),
            self.slots.clone().acquire_owned(),
        )
        .await;
        queued.dec();
        slot.ok()?.ok()
    }

    /// The instance pool's slots, for the admin listener's gauges.
    pub fn slots(&self) -> Arc<Semaphore> {
        self.slots.clone()
    }

    async fn handle(
        &self,
        mut req: hyper::Request<Incoming>,
        client: SocketAddr,
    ) -> hyper::Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let trace = crate::telemetry::start(&mut req, client);
        let request_id = trace.request_id();
        let (component, mut response) = self.dispatch(req, client, &trace).await;
        let status = response.status().as_u16();
        crate::metrics::METRICS.request(component, status, started.elapsed());
        trace.finish(status);
        // The host owns this header: it is the trace id, which the logs and jobs carry too.
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert(crate::telemetry::REQUEST_ID, value);
        }
        tracing::info!(
            target: "streamgate_host::request",
            %method,
            path,
            component = component.unwrap_or("-"),
            status,
            elapsed_ms = format_args!("{:.3}", started.elapsed().as_secs_f64() * 1e3),
            request_id = %request_id,
        );
        response
    }

    async fn dispatch(
        &self,
        mut req: hyper::Request<Incoming>,
        client: SocketAddr,
        trace: &crate::telemetry::RequestTrace,
    ) -> (Option<&str>, hyper::Response<HyperOutgoingBody>) {
        if let Some(response) = well_known(req.uri().path()) {
            return (None, response);
        }
        let Some(route) = self.app.router.route(req.uri().path()) else {
            return (None, errors::not_found());
        };
        let Some(component) = self.app.components.get(&route.component_id) else {
            return (None, errors::not_found());
        };
        let id = component.context.id.as_str();
        trace.routed(req.method(), &route.raw_component_route, id);

        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let full_url = format!("http://{host}{path_and_query}");
        for (name, value) in
            streamgate_spin_app::routing::spin_headers(&route, &full_url, &self.app.base, client)
        {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) {
                req.headers_mut().insert(name, value);
            }
        }

        let Some(slot) = self.take_slot().await else {
            crate::metrics::METRICS.overloaded("pool");
            return (
                Some(id),
                errors::overloaded("The server is at capacity. Retry shortly."),
            );
        };
        let mut store = Store::new(
            &self.engine,
            RequestState::new(
                component.context.clone(),
                self.app.services.clone(),
                self.limits.max_instance_memory(),
            ),
        );
        store.limiter(|state| &mut state.memory);
        store.data_mut().set_trace(trace.context());
        // The execution deadline, kept two ways: a guest that waits (on a body, a socket, a
        // timer) is dropped by the timeout around it; a guest that computes is made to yield
        // at every epoch tick, so that timeout gets its turn, and is trapped if it still runs
        // past the deadline. The yield also keeps a busy guest from holding a worker thread
        // while other requests wait.
        let timeout = self.limits.request_timeout();
        let deadline = Instant::now() + timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // tokio's own yield puts the guest behind every task that is ready; a plain
                // self-wake let it run again almost at once (measured: 0.3-0.6 s for a
                // request beside four looping guests, against 10-50 ms this way).
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| {
            let idle_limit = self.limits.body_idle_timeout();
            let req = req.map(|body| crate::request_body::new(body, idle_limit));
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let outparam = store.data_mut().http().new_response_outparam(sender)?;
            Ok::<_, wasmtime::Error>((request, outparam))
        })();
        let (request, outparam) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                tracing::warn!(component = id, "bad request: {e:#}");
                return (
                    Some(id),
                    errors::bad_request("The request could not be read."),
                );
            }
        };

        // The guest runs on this connection's task until it has answered: most components
        // finish within their first poll, and spawning them elsewhere cost a cross-thread
        // wake-up per request. One still running once it has answered (streaming a body) is
        // moved to a task of its own.
        let pre = component.pre.clone();
        let mut guest = Box::pin(async move {
            let mut instance = Instance { store, _slot: slot };
            let store = &mut instance.store;
            let run = async {
                let proxy = pre.instantiate_async(&mut *store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, request, outparam)
                    .await
            };
            match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(Err(e)) if store.data().memory.refused() => Err(e.context(MemoryCapReached)),
                Ok(finished) => finished,
                Err(_) => Err(wasmtime::Error::new(DeadlineExceeded)),
            }
        });
        let mut receiver = receiver;
        let (answer, finished) = tokio::select! {
            biased;
            finished = &mut guest => (receiver.await, Some(finished)),
            answer = &mut receiver => (answer, None),
        };
        if finished.is_none() {
            let component = id.to_string();
            let route = route.raw_component_route.clone();
            tokio::spawn(async move {
                let result = guest.await;
                if result.is_err() {
                    crate::metrics::METRICS.trap(&component, "after_response");
                }
                match result {
                    Ok(()) => {}
                    Err(e) if e.is::<DeadlineExceeded>() => tracing::error!(
                        "component `{component}` (route {route}) was stopped at its {timeout:?} deadline after responding; its body is cut short"
                    ),
                    // A trap now can only cut the body short, but it must not go unlogged.
                    Err(e) => tracing::error!(
                        "component `{component}` (route {route}) trapped after responding: {e:?}"
                    ),
                }
            });
        } else {
            drop(guest);
        }

        let route = route.raw_component_route.as_str();
        match (answer, finished) {
            (Ok(Ok(response)), _) => (Some(id), crate::response_body::coalesce(response).await),
            (Ok(Err(code)), _) => {
                tracing::error!(
                    "component `{id}` (route {route}) answered with an error: {code:?}"
                );
                (Some(id), errors::internal_error())
            }
            (Err(_), Some(Err(e))) if e.is::<DeadlineExceeded>() => {
                crate::metrics::METRICS.trap(id, "deadline");
                tracing::error!(
                    "component `{id}` (route {route}) did not answer within {timeout:?} and was stopped"
                );
                (Some(id), errors::timeout(timeout.as_secs()))
            }
            (Err(_), Some(Err(e))) if e.is::<MemoryCapReached>() => {
                crate::metrics::METRICS.trap(id, "memory");
                tracing::error!(
                    "component `{id}` (route {route}) was refused memory beyond its {} MiB cap and trapped: {e:?}",
                    self.limits.max_instance_memory_mib
                );
                (Some(id), errors::internal_error())
            }
            (Err(_), Some(Err(e))) => {
                crate::metrics::METRICS.trap(id, "trap");
                tracing::error!("component `{id}` (route {route}) trapped: {e:?}");
                (Some(id), errors::internal_error())
            }
            (Err(_), _) => {
                crate::metrics::METRICS.trap(id, "no_response");
                tracing::error!(
                    "component `{id}` (route {route}) returned without sending a response"
                );
                (Some(id), errors::internal_error())
            }
        }
    }
}
