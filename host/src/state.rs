//! What a `Store` holds while it serves one request: WASI and wasi:http contexts, the resource
//! table, which component is running (for its store labels and allowed hosts), and the app-wide
//! services those interfaces reach.

use std::collections::HashSet;
use std::sync::Arc;

use streamgate_spin_app::allowed_hosts::AllowedHosts;
use streamgate_spin_app::variables::Resolver;
use wasmtime::component::ResourceTable;
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
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHttp,
}

impl RequestState {
    pub fn new(component: Arc<ComponentContext>, services: Arc<Services>) -> Self {
        let wasi = WasiCtx::builder()
            .inherit_stdout()
            .inherit_stderr()
            .envs(&component.environment)
            .build();
        let hooks = OutboundHttp {
            component: component.clone(),
            client: services.outbound_http.clone(),
        };
        Self {
            component,
            services,
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
        }
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
