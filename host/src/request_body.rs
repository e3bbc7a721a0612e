//! Reading what a component left unread of a request body.
//!
//! A component may answer before reading the whole body: a 413 for a body over its limit is
//! the usual case. If the host then closed the connection with the client's bytes still unread,
//! the kernel would reset it and the client would often never see the answer. So the rest of
//! the body is read and discarded in the background (bounded in bytes and time), as servers
//! that do a "lingering close" do, and the connection ends cleanly after the response.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// At most this much of an abandoned body is read before the connection is dropped anyway.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

pub struct DrainOnDrop {
    inner: Option<Incoming>,
}

impl DrainOnDrop {
    pub fn new(body: Incoming) -> Self {
        Self { inner: Some(body) }
    }
}

impl Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
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

impl Drop for DrainOnDrop {
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
