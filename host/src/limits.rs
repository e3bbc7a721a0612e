//! What one client or one guest may take from the host: the `streamgate-host up` flags that
//! bound time, memory and concurrency, as `spin up` and `wasmtime serve` do. Defaults suit a
//! 2-core machine and were measured (docs/host.md, docs/benchmarks.md).

use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct Limits {
    /// Seconds a request may run in its component, from instantiation to the end of its
    /// answer; past it the guest is stopped (CPU loops too, by epoch interruption) and, if it
    /// had not answered yet, the client gets 504 `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// MiB of linear memory one request's instance may hold (all its memories together); a
    /// guest that asks for more fails to grow, which traps it (500 `internal_error`). The
    /// components use about 1.25 MiB; an 8 MiB JSON body read and parsed took 25 MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=MAX_INSTANCE_MEMORY_MIB))]
    pub max_instance_memory_mib: u64,

    /// Requests running in components at once; the instance pool holds exactly this many
    /// instances, so instantiation never fails for want of a slot. Requests beyond it wait in
    /// a queue. 8 to 512 carried 10 000 viewers alike and none helped a flash crowd, where the
    /// cores run out; 512 cost memory and start latency (docs/benchmarks.md).
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_concurrent_requests: u32,

    /// Milliseconds a request may wait in that queue; past it the client gets 503 `overloaded`
    /// with `Retry-After`. 5 s from the viewers bench's flash crowd (10 000 playback starts in
    /// 5 s on 2 cores): at 1 s 6-28 % of the starts got 503, at 5 s none did (p99 start 5-6 s),
    /// and it is half hls.js's 10 s playlist timeout (docs/benchmarks.md).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub queue_timeout_ms: u64,

    /// Connections one client (an IPv4 address, or an IPv6 /64) may hold open at once; more
    /// are answered 503 `overloaded` and closed. 0 for no cap: behind a proxy or CDN every
    /// connection comes from the proxy, which must then do this itself.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections_per_client: u32,

    /// Seconds a client may take to send a request head, and the longest a keep-alive
    /// connection may sit idle between requests; past it the connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may go without a byte while the component waits for it; past it
    /// the component sees a body error and the connection is closed after the answer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_idle_timeout_secs: u64,

    /// KiB a request head (request line and headers) may take; a larger one is answered 431
    /// by hyper itself (empty body) and the connection closed. Without it hyper's read buffer
    /// (about 400 KB) was the only bound.
    #[arg(long, value_name = "KIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub max_request_head_kib: u64,

    /// Seconds an outbound HTTP request may take to connect, when the guest sets no
    /// `connect-timeout` of its own.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub outbound_connect_timeout_secs: u64,

    /// Seconds an outbound HTTP request may wait for the response head (connecting included),
    /// when the guest sets no `first-byte-timeout` of its own.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub outbound_first_byte_timeout_secs: u64,

    /// Seconds an outbound HTTP response body may go without a byte, when the guest sets no
    /// `between-bytes-timeout` of its own.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub outbound_between_bytes_timeout_secs: u64,
}

/// The pooling allocator reserves address space for memories of up to this size (engine.rs).
pub const MAX_INSTANCE_MEMORY_MIB: u64 = 1024;

impl Limits {
    /// A guest's own outbound timeouts are honoured up to the request's deadline.
    pub fn outbound_timeouts(&self) -> crate::outbound_http::OutboundTimeouts {
        crate::outbound_http::OutboundTimeouts {
            connect: Duration::from_secs(self.outbound_connect_timeout_secs),
            first_byte: Duration::from_secs(self.outbound_first_byte_timeout_secs),
            between_bytes: Duration::from_secs(self.outbound_between_bytes_timeout_secs),
            max: self.request_timeout(),
        }
    }

    pub fn max_instance_memory(&self) -> usize {
        (self.max_instance_memory_mib as usize) << 20
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn max_request_head(&self) -> usize {
        (self.max_request_head_kib as usize) << 10
    }

    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_secs)
    }
}
