//! Coalescing small response bodies.
//!
//! wasi:http hands the host a streamed body, which hyper would send chunked: the head, each
//! chunk and the terminator each a separate write, and each write a full trip through the
//! loopback TCP stack. For the small JSON answers an API gives, gathering the body first and
//! sending it with a `content-length` in one write measured markedly faster. Bodies larger than
//! [`COALESCE_LIMIT`] are streamed as before, starting with what was gathered; so is a body
//! that carries trailers or fails midway.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::Error;

/// Bodies up to this size are sent in one piece.
pub const COALESCE_LIMIT: usize = 64 * 1024;

pub async fn coalesce(
    response: hyper::Response<HyperOutgoingBody>,
) -> hyper::Response<HyperOutgoingBody> {
    let (mut parts, mut body) = response.into_parts();
    let bodyless = parts.status.is_informational()
        || parts.status == http::StatusCode::NO_CONTENT
        || parts.status == http::StatusCode::NOT_MODIFIED;
    if bodyless || parts.headers.contains_key(TRANSFER_ENCODING) {
        return hyper::Response::from_parts(parts, body);
    }
    let mut gathered = BytesMut::new();
    let mut pending = VecDeque::new();
    loop {
        match body.frame().await {
            None => {
                if !parts.headers.contains_key(CONTENT_LENGTH) {
                    parts.headers.insert(CONTENT_LENGTH, gathered.len().into());
                }
                let full = Full::new(gathered.freeze())
                    .map_err(|never| match never {})
                    .boxed_unsync();
                return hyper::Response::from_parts(parts, full);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    gathered.extend_from_slice(&data);
                    if gathered.len() > COALESCE_LIMIT {
                        break;
                    }
                }
                Err(trailers) => {
                    pending.push_back(Ok(trailers));
                    break;
                }
            },
            Some(Err(e)) => {
                pending.push_back(Err(e));
                break;
            }
        }
    }
    if !gathered.is_empty() {
        pending.push_front(Ok(Frame::data(gathered.freeze())));
    }
    let rest = Prefixed {
        pending,
        rest: body,
    };
    hyper::Response::from_parts(parts, rest.boxed_unsync())
}

/// What was already read off a body, replayed before the rest of it.
struct Prefixed {
    pending: VecDeque<Result<Frame<Bytes>, Error>>,
    rest: HyperOutgoingBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Some(frame) = self.pending.pop_front() {
            return Poll::Ready(Some(frame));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
