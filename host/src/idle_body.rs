//! A body read with an idle limit: each wait for the next frame is bounded, and past the limit
//! the reader gets `connection-read-timeout` and the body is let go of, so a peer that stops
//! sending cannot hold a component (and its instance slot) for as long as it likes. The request
//! body a component reads and the response body of its outbound requests both use it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use wasmtime_wasi_http::Error;

pub struct IdleLimited<B> {
    inner: Option<B>,
    limit: Duration,
    /// Started when a read finds nothing to read, cleared when a frame arrives.
    idle: Option<Pin<Box<Sleep>>>,
    /// What becomes of the body when this is dropped with the body still held.
    on_drop: Option<fn(B)>,
}

impl<B> IdleLimited<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner: Some(inner),
            limit,
            idle: None,
            on_drop: None,
        }
    }

    /// Hands the body to `f` when this is dropped before the idle limit gave up on it.
    pub fn on_drop(mut self, f: fn(B)) -> Self {
        self.on_drop = Some(f);
        self
    }
}

impl<B> Drop for IdleLimited<B> {
    fn drop(&mut self) {
        if let (Some(f), Some(body)) = (self.on_drop, self.inner.take()) {
            f(body);
        }
    }
}

impl<B> Body for IdleLimited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
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
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match idle.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        // Dropping a request body tells hyper it will not be read: the
                        // connection closes after the answer instead of waiting for the rest.
                        this.inner = None;
                        this.idle = None;
                        tracing::debug!("body idle for {limit:?}: giving up on it");
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
