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

use std::time::Duration;

use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::idle_body::IdleLimited;

/// At most this much of an abandoned body is read before the connection is dropped anyway.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The body a component reads: idle-limited, and read to its end in the background when the
/// component leaves it.
pub fn new(body: Incoming, idle_limit: Duration) -> IdleLimited<Incoming> {
    IdleLimited::new(body, idle_limit).on_drop(linger)
}

fn linger(mut body: Incoming) {
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
