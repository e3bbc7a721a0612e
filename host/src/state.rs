//! What a `Store` holds while it serves one request: WASI and wasi:http contexts, the resource
//! table, which component is running (for its store labels and allowed hosts), and the app-wide
//! services those interfaces reach.

use std::collections::HashSet;
use std::sync::Arc;

use streamgate_spin_app::allowed_hosts::AllowedHosts;
use streamgate_spin_app::variables::Resolver;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::KeyValueStores;
use crate::outbound_http::{OutboundHttp, OutboundHttpClient};
use crate::redis::RedisClients;
use crate::sqlite::SqliteDatabases;

/// One component of the app, as its requests see it. Built once at start-up.
pub struct ComponentContext {
    pub id: String,
    pub key_value_stores: HashSet<String>,
    pub sqlite_databases: HashSet<String>,
    pub allowed_hosts: AllowedHosts,
    pub environment: Vec<(String, String)>,
}

/// The app-wide backends: opened once, shared by every request of every component.
pub struct Services {
    pub key_value: KeyValueStores,
    pub sqlite: SqliteDatabases,
    pub redis: RedisClients,
    pub variables: Resolver,
    pub outbound_http: Arc<OutboundHttpClient>,
}

pub struct RequestState {
    pub component: Arc<ComponentContext>,
    pub services: Arc<Services>,
    pub table: ResourceTable,
    pub memory: MemoryLimiter,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHttp,
}

impl RequestState {
    pub fn new(
        component: Arc<ComponentContext>,
        services: Arc<Services>,
        memory_cap: usize,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .inherit_stdout()
            .inherit_stderr()
            .envs(&component.environment)
            .build();
        let hooks = OutboundHttp {
            component: component.clone(),
            client: services.outbound_http.clone(),
            trace: None,
        };
        Self {
            component,
            services,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(memory_cap),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
        }
    }
}

impl RequestState {
    /// The request's server span, which the guest's outbound requests become children of.
    pub fn set_trace(&mut self, trace: Option<opentelemetry::Context>) {
        self.hooks.trace = trace;
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Caps the linear memory of one request's instance: all its memories together, as Spin's
/// `--max-instance-memory` does. A refused growth makes the guest's `memory.grow` fail (its
/// allocator then aborts, which traps); [`MemoryLimiter::refused`] says that it happened.
pub struct MemoryLimiter {
    cap: usize,
    used: usize,
    /// The growth last allowed, taken back if wasmtime then fails to grow.
    pending: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            pending: 0,
            refused: false,
        }
    }

    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        match self.used.checked_add(growth) {
            Some(total) if total <= self.cap => {
                self.used = total;
                self.pending = growth;
                Ok(true)
            }
            _ => {
                self.refused = true;
                Ok(false)
            }
        }
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= std::mem::take(&mut self.pending);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's per-table element limit.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_cap_counts_every_memory_of_the_instance() {
        let mut limiter = MemoryLimiter::new(10 * MIB);
        assert!(limiter.memory_growing(0, 4 * MIB, None).unwrap());
        assert!(limiter.memory_growing(0, 4 * MIB, None).unwrap());
        // 8 MiB in two memories: 3 more in either is over 10.
        assert!(!limiter.memory_growing(4 * MIB, 7 * MIB, None).unwrap());
        assert!(limiter.refused());
        assert!(limiter.memory_growing(4 * MIB, 6 * MIB, None).unwrap());
    }

    #[test]
    fn a_growth_that_fails_anyway_is_not_counted() {
        let mut limiter = MemoryLimiter::new(10 * MIB);
        assert!(limiter.memory_growing(0, 8 * MIB, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::Error::msg("no room"))
            .unwrap();
        assert!(limiter.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(!limiter.refused());
    }
}
