//! JSON-RPC to the chains in `chain_rpc_urls`, over Spin outbound HTTP. Only the transport is
//! here; request and answer bodies are built and checked by `streamgate_core::rpc`.

use std::cell::Cell;
use std::collections::BTreeMap;

use spin_sdk::http::{Method, Request, Response};
use streamgate_core::rpc::{self, ChainReader, RpcError};

pub struct HttpChainReader {
    urls: BTreeMap<u64, String>,
    next_id: Cell<u64>,
}

impl HttpChainReader {
    pub fn new(urls: BTreeMap<u64, String>) -> Self {
        Self {
            urls,
            next_id: Cell::new(1),
        }
    }

    async fn call(
        &self,
        chain_id: u64,
        body: impl FnOnce(u64) -> String,
    ) -> Result<rpc::Bytes, RpcError> {
        let url = self.urls.get(&chain_id).ok_or_else(|| {
            RpcError::Transport(format!("no RPC URL configured for chain {chain_id}"))
        })?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let request = Request::builder()
            .method(Method::Post)
            .uri(url)
            .header("content-type", "application/json")
            .body(body(id))
            .build();
        let response: Response = spin_sdk::http::send(request)
            .await
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        if *response.status() != 200 {
            return Err(RpcError::Transport(format!(
                "HTTP status {}",
                response.status()
            )));
        }
        rpc::parse_response(response.body(), id)
    }
}

impl ChainReader for HttpChainReader {
    async fn eth_call(
        &self,
        chain_id: u64,
        to: rpc::Address,
        data: rpc::Bytes,
    ) -> Result<rpc::Bytes, RpcError> {
        self.call(chain_id, |id| rpc::eth_call_request(id, to, &data))
            .await
    }

    async fn get_code(&self, chain_id: u64, address: rpc::Address) -> Result<rpc::Bytes, RpcError> {
        self.call(chain_id, |id| rpc::get_code_request(id, address))
            .await
    }
}
