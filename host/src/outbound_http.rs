//! Outbound HTTP for guests: our own `send_request` hook instead of wasmtime-wasi-http's default.
//!
//! The default sender neither enforces `allowed_outbound_hosts`, nor reuses connections, nor
//! routes Spin's relative "self" requests, and showed a 25–44 ms tail here. This one checks the
//! component's allowed hosts first (a refusal is `HttpRequestDenied`, which the guest sees at
//! once), sends plain HTTP through a pooled hyper client, and sends a relative URL (or the
//! `self.alt` authority some SDKs need) back into this app through its own listener, as Spin does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::idle_body::IdleLimited;
use crate::state::ComponentContext;

/// How long an outbound request may take to connect, to send its first response byte, and
/// between two bytes of its body. The host's defaults (`--outbound-*-timeout-secs`) apply
/// where the guest gives none; a guest's own `request-options` are honoured up to `max` (the
/// request's own deadline, past which nothing waits for the answer anyway). Spin leaves these
/// at 600 s, which let one slow upstream hold a request, and its instance, for ten minutes.
#[derive(Clone, Copy, Debug)]
pub struct OutboundTimeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
    pub max: Duration,
}

impl OutboundTimeouts {
    fn resolve(&self, guest: Option<RequestOptions>) -> RequestOptions {
        let pick =
            |asked: Option<Duration>, default: Duration| asked.unwrap_or(default).min(self.max);
        let guest = guest.unwrap_or_default();
        RequestOptions {
            connect_timeout: Some(pick(guest.connect_timeout, self.connect)),
            first_byte_timeout: Some(pick(guest.first_byte_timeout, self.first_byte)),
            between_bytes_timeout: Some(pick(guest.between_bytes_timeout, self.between_bytes)),
        }
    }
}

/// Shared by every request of the app: one connection pool, and where "self" is.
pub struct OutboundHttpClient {
    client: Client<HttpConnector, WasiBody>,
    self_origin: SocketAddr,
    timeouts: OutboundTimeouts,
}

impl OutboundHttpClient {
    pub fn new(self_origin: SocketAddr, timeouts: OutboundTimeouts) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect.min(timeouts.max)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            client,
            self_origin,
            timeouts,
        }
    }
}

/// Logs a refused destination the way Spin does, with the manifest line that would allow it.
/// Like Spin, it names only `<scheme>://<host>[:<port>]`: never the user and password of a
/// Redis address, nor a path or query that may carry a token.
pub fn log_denied(component: &str, url: &url::Url) {
    use streamgate_spin_app::allowed_hosts::AllowedHosts;
    tracing::error!(
        component,
        "Outbound network destination not allowed: {}. To allow it, add {} to the component's manifest",
        AllowedHosts::host_pattern(url),
        AllowedHosts::suggestion(url)
    );
}

/// The per-request hooks: which component is asking, and the shared client.
pub struct OutboundHttp {
    pub component: Arc<ComponentContext>,
    pub client: Arc<OutboundHttpClient>,
    /// The request's server span, when traces are exported.
    pub trace: Option<opentelemetry::Context>,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl OutboundHttp {
    /// Applies Spin's rules to the request's destination; on success the request is ready to send.
    fn prepare(&self, request: &mut http::Request<WasiBody>) -> Result<(), Error> {
        let uri = request.uri().clone();
        // wasmtime-wasi-http fills in an empty authority for relative URLs.
        let is_self = match uri.authority() {
            None => true,
            Some(a) => a.host().is_empty() || a.host() == "self.alt",
        };
        if is_self {
            if !self.component.allowed_hosts.allows_relative() {
                tracing::error!(
                    component = %self.component.id,
                    "Outbound network destination not allowed: relative URL {uri}. To allow it, add \"self\" to the component's allowed_outbound_hosts"
                );
                return Err(Error::HttpRequestDenied);
            }
            let authority = Authority::try_from(self.client.self_origin.to_string())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let mut parts = uri.into_parts();
            parts.scheme = Some(Scheme::HTTP);
            parts.authority = Some(authority.clone());
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            }
            *request.uri_mut() =
                http::Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)?;
            if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
                request.headers_mut().insert(http::header::HOST, host);
            }
            return Ok(());
        }
        let url = url::Url::parse(&uri.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?;
        if !self.component.allowed_hosts.allows(&url) {
            log_denied(&self.component.id, &url);
            return Err(Error::HttpRequestDenied);
        }
        Ok(())
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        // Taken before `prepare` rewrites a relative URL to this app's own address.
        let host = host_label(request.uri());
        let prepared = self.prepare(&mut request);
        let host = match prepared {
            Err(Error::HttpRequestDenied) => "denied".to_string(),
            _ => host,
        };
        let span = match (&prepared, &self.trace) {
            (Ok(()), Some(parent)) => Some(crate::telemetry::outbound(parent, &mut request)),
            _ => None,
        };
        let component = self.component.id.clone();
        let client = self.client.clone();
        let timeouts = client.timeouts.resolve(options);
        // A guest that sets a connect timeout other than the host's gets a connection of its
        // own: the pool's connector has the host's.
        let pool_connect = client.timeouts.connect.min(client.timeouts.max);
        let own_connect = options
            .and_then(|o| o.connect_timeout)
            .is_some_and(|_| timeouts.connect_timeout != Some(pool_connect));
        let [connect, first_byte, between_bytes] = [
            timeouts.connect_timeout,
            timeouts.first_byte_timeout,
            timeouts.between_bytes_timeout,
        ]
        .map(Option::unwrap_or_default);
        let send = async move {
            prepared?;
            if own_connect || request.uri().scheme() == Some(&Scheme::HTTPS) {
                // TLS goes through wasmtime-wasi-http's sender (rustls + webpki roots): correct,
                // if not pooled. Our RPC and self traffic is plain HTTP and takes the pool. It
                // bounds the TCP connect and HTTP handshake but not the TLS handshake, hence
                // the outer bound.
                let send = wasmtime_wasi_http::default_send_request(request, Some(timeouts));
                let (response, io) = tokio::time::timeout(connect + first_byte, send)
                    .await
                    .map_err(|_| Error::ConnectionReadTimeout)??;
                let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                    Box::new(io);
                return Ok((response.map(BodyExt::boxed_unsync), io));
            }
            // For a new pooled connection, connecting counts against the first byte too.
            let response = tokio::time::timeout(first_byte, client.client.request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(|e| {
                    if e.is_connect() && timed_out(&e) {
                        Error::ConnectionTimeout
                    } else if e.is_connect() {
                        Error::ConnectionRefused
                    } else {
                        Error::InternalError(Some(e.to_string()))
                    }
                })?;
            let response = response.map(|body| {
                IdleLimited::new(body.map_err(Error::Hyper), between_bytes).boxed_unsync()
            });
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        };
        Box::new(async move {
            let started = std::time::Instant::now();
            let result = send.await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(Error::HttpRequestDenied) => "denied",
                Err(Error::ConnectionTimeout | Error::ConnectionReadTimeout) => "timeout",
                Err(Error::ConnectionRefused) => "refused",
                Err(_) => "error",
            };
            crate::metrics::METRICS.outbound(&component, &host, outcome, started.elapsed());
            if let Some(span) = span {
                let status = match &result {
                    Ok((response, _)) => Ok(response.status().as_u16()),
                    Err(e) => Err(format!("{e:?}")),
                };
                crate::telemetry::outbound_done(&span, status);
            }
            result
        })
    }
}

/// The destination as the metrics name it: `self` for this app, else `host[:port]` (the
/// manifest's allowed hosts bound the set).
fn host_label(uri: &http::Uri) -> String {
    match uri.authority() {
        None => "self".into(),
        Some(a) if a.host().is_empty() || a.host() == "self.alt" => "self".into(),
        Some(a) => a
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Whether a client error was a connect timeout (the connector's), somewhere in its sources.
fn timed_out(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    fn timeouts() -> OutboundTimeouts {
        OutboundTimeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(10),
            between_bytes: Duration::from_secs(10),
            max: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_host_defaults_apply_where_the_guest_gives_none() {
        let resolved = timeouts().resolve(None);
        assert_eq!(resolved.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(resolved.first_byte_timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            resolved.between_bytes_timeout,
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn a_guest_may_ask_for_less_or_more_but_never_past_the_maximum() {
        let resolved = timeouts().resolve(Some(RequestOptions {
            connect_timeout: Some(Duration::from_millis(200)),
            first_byte_timeout: Some(Duration::from_secs(20)),
            between_bytes_timeout: Some(Duration::from_secs(600)),
        }));
        assert_eq!(resolved.connect_timeout, Some(Duration::from_millis(200)));
        assert_eq!(resolved.first_byte_timeout, Some(Duration::from_secs(20)));
        assert_eq!(
            resolved.between_bytes_timeout,
            Some(Duration::from_secs(30))
        );
    }
}
