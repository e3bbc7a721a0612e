//! StreamGate's domain logic, independent of any host: it builds natively (unit tests,
//! benchmarks, the native transcoder) and for `wasm32-wasip2` (the Spin components).

pub mod api_error;
pub mod readiness;
