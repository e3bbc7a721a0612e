//! The chain reads sign-in needs, behind a trait so the domain logic is pure: the Spin
//! component implements [`ChainReader`] with an outbound HTTP POST of the bodies built here
//! to the chain's RPC URL, and hands the response body to [`parse_response`].
//!
//! The trait is async because outbound HTTP in spin-sdk 5 is async; a blocking
//! implementation simply does its work inside the `async fn`. Components are single-threaded,
//! so no `Send` bound is asked of the futures.

use alloy_primitives::hex;
pub use alloy_primitives::{Address, Bytes};
use serde_json::{json, Value};

/// Why a chain read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The request did not get an HTTP 200 JSON answer (connection, timeout, status, or no
    /// RPC URL configured for the chain).
    #[error("chain RPC unreachable: {0}")]
    Transport(String),
    /// The node answered with a JSON-RPC error that is not a revert.
    #[error("chain RPC error {code}: {message}")]
    Node { code: i64, message: String },
    /// The call reverted: the contract itself said no. Carries the revert data, if any.
    #[error("the call reverted ({0})")]
    Reverted(Bytes),
    /// The body is not a JSON-RPC 2.0 response to our request.
    #[error("chain RPC answer malformed: {0}")]
    Malformed(String),
}

/// Read-only chain access for signature checks.
#[allow(async_fn_in_trait)] // single-threaded Wasm components: no Send bound wanted
pub trait ChainReader {
    /// `eth_call` at the latest block: `to.call(data)`, returning the return data.
    async fn eth_call(&self, chain_id: u64, to: Address, data: Bytes) -> Result<Bytes, RpcError>;
    /// `eth_getCode` at the latest block.
    async fn get_code(&self, chain_id: u64, address: Address) -> Result<Bytes, RpcError>;
}

fn request(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// The JSON-RPC body of `eth_call({to, data}, "latest")`.
pub fn eth_call_request(id: u64, to: Address, data: &[u8]) -> String {
    request(
        id,
        "eth_call",
        json!([{"to": to.to_checksum(None), "data": hex::encode_prefixed(data)}, "latest"]),
    )
}

/// The JSON-RPC body of `eth_getCode(address, "latest")`.
pub fn get_code_request(id: u64, address: Address) -> String {
    request(
        id,
        "eth_getCode",
        json!([address.to_checksum(None), "latest"]),
    )
}

fn decode_hex_data(v: &Value, what: &str) -> Result<Bytes, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::Malformed(format!("{what} is not a string")))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| RpcError::Malformed(format!("{what} is not 0x-prefixed hex")))?;
    hex::decode(digits)
        .map(Bytes::from)
        .map_err(|_| RpcError::Malformed(format!("{what} is not hex")))
}

/// Parses a JSON-RPC response body for request `id` whose result is hex data (`eth_call`,
/// `eth_getCode`). A revert (error code 3, or a message saying "revert") becomes
/// [`RpcError::Reverted`]; any other error object [`RpcError::Node`].
pub fn parse_response(body: &[u8], id: u64) -> Result<Bytes, RpcError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| RpcError::Malformed(format!("not JSON: {e}")))?;
    if v.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::Malformed("not a JSON-RPC 2.0 response".into()));
    }
    if v.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(RpcError::Malformed("the response id does not match".into()));
    }
    if let Some(err) = v.get("error") {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message: String = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        if code == 3 || message.to_ascii_lowercase().contains("revert") {
            let data = err
                .get("data")
                .and_then(|d| decode_hex_data(d, "revert data").ok())
                .unwrap_or_default();
            return Err(RpcError::Reverted(data));
        }
        return Err(RpcError::Node { code, message });
    }
    match v.get("result") {
        Some(r) => decode_hex_data(r, "result"),
        None => Err(RpcError::Malformed("neither result nor error".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    #[test]
    fn builds_request_bodies() {
        let to = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let body: Value = serde_json::from_str(&eth_call_request(7, to, &[0x16, 0x26])).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 7, "method": "eth_call",
                   "params": [{"to": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "data": "0x1626"}, "latest"]})
        );
        let body: Value = serde_json::from_str(&get_code_request(8, to)).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 8, "method": "eth_getCode",
                   "params": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]})
        );
    }

    #[test]
    fn parses_responses() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":"0x1626ba7e"}"#;
        assert_eq!(
            parse_response(ok, 1).unwrap().as_ref(),
            &[0x16, 0x26, 0xba, 0x7e]
        );
        assert_eq!(
            parse_response(br#"{"jsonrpc":"2.0","id":1,"result":"0x"}"#, 1).unwrap(),
            Bytes::new()
        );
        // anvil / geth revert shape.
        let revert = br#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted: no","data":"0x08c379a0"}}"#;
        assert_eq!(
            parse_response(revert, 1),
            Err(RpcError::Reverted(Bytes::from(vec![
                0x08, 0xc3, 0x79, 0xa0
            ])))
        );
        let revert_old =
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"execution reverted"}}"#;
        assert_eq!(
            parse_response(revert_old, 1),
            Err(RpcError::Reverted(Bytes::new()))
        );
        let node = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limited"}}"#;
        assert_eq!(
            parse_response(node, 1),
            Err(RpcError::Node {
                code: -32005,
                message: "rate limited".into()
            })
        );
        for bad in [
            &br#"<html>502</html>"#[..],
            br#"{"id":1,"result":"0x"}"#,
            br#"{"jsonrpc":"2.0","id":2,"result":"0x"}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":"1626"}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":"0xabc"}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":12}"#,
        ] {
            assert!(
                matches!(parse_response(bad, 1), Err(RpcError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
