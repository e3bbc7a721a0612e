//! Host bindings for the Spin interfaces, generated from the trimmed WIT in `wit/`.
//!
//! WASI and wasi:http come from wasmtime-wasi / wasmtime-wasi-http; this covers only
//! `fermyon:spin@2.0.0` and `spin:sqlite@3.0.0`. Spin's resources are mapped to our own types
//! with `with:` so that, for instance, key-value's `store` never clashes with `wasmtime::Store`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "streamgate:host/spin-host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::OpenStore,
        "fermyon:spin/redis.connection": crate::redis::OpenConnection,
        "fermyon:spin/sqlite.connection": crate::sqlite::OpenConnection,
        "spin:sqlite/sqlite.connection": crate::sqlite::OpenConnection,
    },
});

pub use fermyon::spin::{key_value, redis, sqlite as sqlite_v2, variables};
pub use spin::sqlite::sqlite as sqlite_v3;
