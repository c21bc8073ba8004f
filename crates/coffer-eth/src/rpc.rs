//! A minimal blocking Ethereum JSON-RPC client (ureq) for broadcasting signed transactions and
//! reading chain id, balances, nonces and receipt status.

use std::time::Duration;

use serde_json::{json, Value};

use crate::address::parse;
use crate::EthError;

/// HTTP timeout for one JSON-RPC call.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A JSON-RPC endpoint (an Ethereum node's HTTP URL).
#[derive(Clone, Debug)]
pub struct EthRpc {
    url: String,
    agent: ureq::Agent,
}

impl EthRpc {
    /// A client for the node at `url` (nothing is contacted until the first call).
    pub fn new(url: &str) -> Self {
        EthRpc {
            url: url.to_owned(),
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
        }
    }

    /// `eth_chainId`.
    pub fn chain_id(&self) -> Result<u64, EthError> {
        let v = self.call("eth_chainId", json!([]))?;
        let id = quantity("eth_chainId", &v)?;
        u64::try_from(id).map_err(|_| bad("eth_chainId", format!("chain id {id} exceeds u64")))
    }

    /// `eth_getBalance` at the latest block, in wei.
    pub fn balance(&self, address: &str) -> Result<u128, EthError> {
        let a = parse(address)?.to_checksum(None);
        let v = self.call("eth_getBalance", json!([a, "latest"]))?;
        quantity("eth_getBalance", &v)
    }

    /// `eth_getTransactionCount` with block tag "pending": the next nonce to use.
    pub fn nonce(&self, address: &str) -> Result<u64, EthError> {
        let a = parse(address)?.to_checksum(None);
        let v = self.call("eth_getTransactionCount", json!([a, "pending"]))?;
        let n = quantity("eth_getTransactionCount", &v)?;
        u64::try_from(n)
            .map_err(|_| bad("eth_getTransactionCount", format!("nonce {n} exceeds u64")))
    }

    /// `eth_sendRawTransaction`: returns the transaction hash; a node refusal is [`EthError::Rpc`].
    pub fn send_raw_transaction(&self, raw: &str) -> Result<String, EthError> {
        let v = self.call("eth_sendRawTransaction", json!([raw]))?;
        hash_string("eth_sendRawTransaction", v)
    }

    /// `eth_getTransactionReceipt` status: `Some(true)` succeeded, `Some(false)` reverted,
    /// `None` not mined (yet).
    pub fn receipt_status(&self, tx_hash: &str) -> Result<Option<bool>, EthError> {
        const M: &str = "eth_getTransactionReceipt";
        let v = self.call(M, json!([tx_hash]))?;
        if v.is_null() {
            return Ok(None);
        }
        let status = v
            .get("status")
            .ok_or_else(|| bad(M, "receipt has no status".into()))?;
        match quantity(M, status)? {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            other => Err(bad(M, format!("receipt status {other}"))),
        }
    }

    /// `eth_sendTransaction` from an anvil-unlocked dev account: ONLY for funding the vault
    /// address in tests. A real node has no unlocked accounts and refuses it.
    pub fn send_value_from_dev_account(
        &self,
        from: &str,
        to: &str,
        wei: u128,
    ) -> Result<String, EthError> {
        let from = parse(from)?.to_checksum(None);
        let to = parse(to)?.to_checksum(None);
        let tx = json!({ "from": from, "to": to, "value": format!("{wei:#x}") });
        let v = self.call("eth_sendTransaction", json!([tx]))?;
        hash_string("eth_sendTransaction", v)
    }

    /// One JSON-RPC call: the `result`, or the node's `error` as [`EthError::Rpc`].
    pub(crate) fn call(&self, method: &str, params: Value) -> Result<Value, EthError> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = match self.agent.post(&self.url).send_json(body) {
            Ok(r) => r,
            // Some nodes put the JSON-RPC error in a non-2xx answer: read it when they do.
            Err(ureq::Error::Status(code, r)) => match r.into_json::<Value>() {
                Ok(v) if v.get("error").is_some() => return rpc_result(method, v),
                _ => return Err(bad(method, format!("HTTP status {code}"))),
            },
            Err(e) => {
                return Err(EthError::Transport {
                    method: method.to_owned(),
                    source: Box::new(e),
                })
            }
        };
        let v: Value = response
            .into_json()
            .map_err(|e| bad(method, format!("body is not JSON: {e}")))?;
        rpc_result(method, v)
    }
}

fn rpc_result(method: &str, mut v: Value) -> Result<Value, EthError> {
    if let Some(err) = v.get("error") {
        return Err(EthError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    match v.get_mut("result") {
        Some(r) => Ok(r.take()),
        None => Err(bad(method, "neither result nor error".into())),
    }
}

fn bad(method: &str, detail: String) -> EthError {
    EthError::BadRpcResponse {
        method: method.to_owned(),
        detail,
    }
}

/// A hex quantity ("0x1a") as u128.
fn quantity(method: &str, v: &Value) -> Result<u128, EthError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(method, format!("expected a hex quantity, got {v}")))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| bad(method, format!("quantity {s:?} lacks 0x")))?;
    u128::from_str_radix(digits, 16)
        .map_err(|e| bad(method, format!("quantity {s:?} is not a u128: {e}")))
}

/// A "0x" + 64-hex transaction hash.
fn hash_string(method: &str, v: Value) -> Result<String, EthError> {
    match v.as_str() {
        Some(s)
            if s.len() == 66
                && s.starts_with("0x")
                && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(bad(method, format!("expected a transaction hash, got {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_are_typed() {
        let v =
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"invalid chain id"}});
        match rpc_result("m", v) {
            Err(EthError::Rpc { code, message }) => {
                assert_eq!(code, -32000);
                assert_eq!(message, "invalid chain id");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quantities_parse_strictly() {
        assert_eq!(quantity("m", &json!("0x1a")).unwrap(), 26);
        assert!(quantity("m", &json!("1a")).is_err());
        assert!(quantity("m", &json!(26)).is_err());
        assert!(quantity("m", &json!(format!("0x1{}", "0".repeat(32)))).is_err());
    }
}
