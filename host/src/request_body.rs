//! The request body as a component reads it: with an idle limit, and read to its end when the
//! component leaves it.
//!
//! **Idle limit.** A client that sends a head and then stops sending its body would hold the
//! component (and its instance slot) for as long as it liked. While the component waits for the
//! body, each wait for the next frame is bounded; past it the component sees a body error
//! (`connection-read-timeout`), the body is dropped, and hyper closes the connection once the
//! answer is written.
//!
//! **Lingering read.** A component may answer before reading the whole body: a 413 for a body
//! over its limit is the usual case. If the host then closed the connection with the client's
//! bytes still unread, the kernel would reset it and the client would often never see the
//! answer. So the rest of the body is read and discarded in the background (bounded in bytes
//! and time), as servers that do a "lingering close" do, and the connection ends cleanly after
//! the response.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Sleep;
use wasmtime_wasi_http::Error;

/// At most this much of an abandoned body is read before the connection is dropped anyway.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

pub struct RequestBody {
    inner: Option<Incoming>,
    idle_limit: Duration,
    /// Started when a read finds nothing to read, cleared when a frame arrives.
    idle: Option<Pin<Box<Sleep>>>,
}

impl RequestBody {
    pub fn new(body: Incoming, idle_limit: Duration) -> Self {
        Self {
            inner: Some(body),
            idle_limit,
            idle: None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(body) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.idle = None;
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                let limit = this.idle_limit;
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match idle.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        // Dropping the body tells hyper it will not be read: the connection
                        // closes after the answer instead of waiting for the rest.
                        this.inner = None;
                        this.idle = None;
                        tracing::debug!("request body idle for {limit:?}: giving up on it");
                        Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > DRAIN_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}
