//! Broadcast: a minimal Bitcoin Core JSON-RPC 1.0 client (`sendrawtransaction`) over HTTP basic
//! auth, using `ureq`. The node's answer is untrusted: a malformed reply is a typed error.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::clip;
use crate::BtcError;

/// A Bitcoin Core RPC endpoint with its credentials.
///
/// `Debug` does not print the password.
#[derive(Clone)]
pub struct BitcoinRpc {
    url: String,
    user: String,
    password: String,
}

impl std::fmt::Debug for BitcoinRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoinRpc")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl BitcoinRpc {
    /// An endpoint such as `http://127.0.0.1:18443` with its `rpcuser` / `rpcpassword`.
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        BitcoinRpc {
            url: url.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `sendrawtransaction raw_hex`: returns the txid the node reports.
    pub fn send_raw_transaction(&self, raw_hex: &str) -> Result<String, BtcError> {
        let result = self.call("sendrawtransaction", json!([raw_hex]))?;
        match result {
            Value::String(txid)
                if txid.len() == 64 && txid.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(txid)
            }
            other => Err(BtcError::RpcTransport {
                reason: format!("result is not a txid: {}", clip(&other.to_string())),
            }),
        }
    }

    /// One JSON-RPC 1.0 call; returns `result` or the node's `error`.
    fn call(&self, method: &str, params: Value) -> Result<Value, BtcError> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let body = json!({"jsonrpc": "1.0", "id": "coffer", "method": method, "params": params});
        let response = ureq::post(&self.url)
            .set("Authorization", &format!("Basic {credentials}"))
            .set("Content-Type", "application/json")
            .send_json(body);
        // Bitcoin Core answers RPC errors with HTTP 500 and a JSON body: read it either way.
        let response = match response {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                if r.content_type() != "application/json" {
                    return Err(BtcError::RpcTransport {
                        reason: format!("http status {status}"),
                    });
                }
                r
            }
            Err(e) => {
                return Err(BtcError::RpcTransport {
                    reason: e.to_string(),
                })
            }
        };
        let reply: Value = response.into_json().map_err(|e| BtcError::RpcTransport {
            reason: format!("reply is not json: {e}"),
        })?;
        match reply.get("error") {
            Some(Value::Null) | None => {}
            Some(err) => {
                return Err(BtcError::RpcRejected {
                    code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: clip(
                        err.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("(no message)"),
                    ),
                })
            }
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| BtcError::RpcTransport {
                reason: "reply has neither result nor error".to_owned(),
            })
    }
}
