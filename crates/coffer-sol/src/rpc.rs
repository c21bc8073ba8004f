//! Solana JSON-RPC broadcast adapter (blocking, `ureq`): `sendTransaction` and
//! `getLatestBlockhash`.

use serde_json::{json, Value};

use crate::SolError;

/// A Solana JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub struct SolanaRpc {
    url: String,
    agent: ureq::Agent,
}

impl SolanaRpc {
    /// An adapter for the node at `url` (e.g. `http://127.0.0.1:8899`).
    pub fn new(url: &str) -> Self {
        SolanaRpc {
            url: url.to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        }
    }

    /// Broadcasts a wire transaction (standard base64) with `sendTransaction` and
    /// `{"encoding":"base64"}`; returns the node's transaction signature (base58).
    pub fn send_transaction(&self, raw_base64: &str) -> Result<String, SolError> {
        const METHOD: &str = "sendTransaction";
        let result = self.call(METHOD, json!([raw_base64, {"encoding": "base64"}]))?;
        result
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SolError::RpcBadResponse {
                method: METHOD,
                detail: format!("result is not a string: {result}"),
            })
    }

    /// The node's latest blockhash (base58), from `getLatestBlockhash`.
    pub fn latest_blockhash(&self) -> Result<String, SolError> {
        const METHOD: &str = "getLatestBlockhash";
        let result = self.call(METHOD, json!([{"commitment": "finalized"}]))?;
        let hash = result
            .pointer("/value/blockhash")
            .and_then(Value::as_str)
            .ok_or_else(|| SolError::RpcBadResponse {
                method: METHOD,
                detail: format!("no value.blockhash in {result}"),
            })?;
        crate::address::parse_hash("blockhash", hash)
            .map(|h| h.to_string())
            .map_err(|e| SolError::RpcBadResponse {
                method: METHOD,
                detail: e.to_string(),
            })
    }

    /// One JSON-RPC 2.0 call; returns `result` or the node's typed error.
    fn call(&self, method: &'static str, params: Value) -> Result<Value, SolError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = match self.agent.post(&self.url).send_json(body) {
            Ok(r) => r,
            // JSON-RPC errors may come with an HTTP error status: read the body anyway.
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(SolError::RpcTransport {
                    url: self.url.clone(),
                    detail: e.to_string(),
                })
            }
        };
        let status = response.status();
        let mut value: Value = response.into_json().map_err(|e| SolError::RpcBadResponse {
            method,
            detail: format!("HTTP {status}, body is not JSON: {e}"),
        })?;
        if let Some(err) = value.get("error") {
            return Err(SolError::RpcError {
                method,
                code: err.get("code").and_then(Value::as_i64).unwrap_or_default(),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        match value.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(SolError::RpcBadResponse {
                method,
                detail: format!("HTTP {status}, no result and no error: {value}"),
            }),
        }
    }
}
