//! The accept loop the Spin host (`host/src/server.rs`) and the media origin
//! (`native-transcoder/src/server.rs`) share. Each side keeps its own HTTP settings (header
//! timeouts, head size, keep-alive) and admission (the host's per-client connection cap) in the
//! closure it passes; what is the same for both lives here: an accept error never ends the
//! server, every connection runs on a task of its own, and shutdown stops accepting, then waits
//! a bounded time for the connections in flight.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::net::{TcpListener, TcpStream};

/// The connections a [`serve`] loop waits for at shutdown.
pub struct Connections {
    graceful: GracefulShutdown,
}

impl Connections {
    /// Serves `conn` on a task of its own; shutdown asks it to finish its request and close, and
    /// waits for it. `held` (a per-client slot, say) is dropped when the connection ends.
    pub fn spawn<C>(&self, conn: C, peer: SocketAddr, held: impl Send + 'static)
    where
        C: GracefulConnection + Send + 'static,
        C::Error: Display,
    {
        let conn = self.graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(held);
        });
    }
}

/// Accepts on `listener` until `shutdown` resolves, handing each connection (with Nagle off) to
/// `accepted`, which serves it through [`Connections::spawn`] or turns it away. Then stops
/// listening and waits up to `drain` for the connections it spawned.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    mut accepted: impl FnMut(TcpStream, SocketAddr, &Connections),
) {
    let connections = Connections {
        graceful: GracefulShutdown::new(),
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            next = listener.accept() => {
                let (stream, peer) = match next {
                    Ok(next) => next,
                    Err(e) => {
                        // Running out of file descriptors must not end the server.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                accepted(stream, peer, &connections);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = connections.graceful.shutdown() => tracing::info!("all requests finished"),
        () = tokio::time::sleep(drain) => {
            tracing::warn!("gave up waiting for in-flight requests after {drain:?}")
        }
    }
}

/// [`serve`] for a listener that lives as long as the process (a private metrics port), so is
/// never drained.
pub async fn serve_forever(
    listener: TcpListener,
    accepted: impl FnMut(TcpStream, SocketAddr, &Connections),
) {
    serve(listener, std::future::pending(), Duration::ZERO, accepted).await
}
