//! The API client the CLI commands share: finds the server and an admin credential (from a
//! `coffer dev` directory), signs every request, and turns API errors into readable
//! failures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use coffer_net::Identity;

use crate::Failure;

/// What `coffer dev` writes to `DIR/dev.json` for the other commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DevInfo {
    /// The API's base URL.
    pub api_url: String,
    /// Where signers dial the server.
    pub signer_addr: String,
    /// The server's public key (pinned by the signers).
    pub server_key: String,
    /// TLS trust anchor of the API (none: the dev API is plain HTTP on loopback).
    pub tls_trust_anchor: Option<String>,
    /// Admin credentials (Ed25519 secret key files).
    pub admin_keys: Vec<PathBuf>,
    /// Default threshold for new keys.
    pub threshold: u16,
    /// The server process.
    pub server: ChildInfo,
    /// The signer processes.
    pub signers: Vec<ChildInfo>,
}

/// A process `coffer dev` started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChildInfo {
    /// Label.
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// The command line that started it (to restart it the same way).
    pub argv: Vec<String>,
    /// Its data directory.
    pub data: PathBuf,
}

/// The dev directory: `--dev`, else `COFFER_DEV`, else `./coffer-dev`.
pub(crate) fn dev_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("COFFER_DEV").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("coffer-dev"))
}

pub(crate) fn read_dev_info(dir: &Path) -> Result<DevInfo, Failure> {
    let path = dir.join("dev.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure(format!(
            "{}: {e} (start a cluster with `coffer dev --data {}`)",
            path.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Reads an admin credential file.
pub(crate) fn read_credential(path: &Path) -> Result<Identity, Failure> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?,
    );
    Identity::from_secret_bytes(&bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// An error the API returned.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub code: String,
    pub message: String,
}

impl From<ApiFailure> for Failure {
    fn from(e: ApiFailure) -> Self {
        Failure(format!("{} ({})", e.message, e.code))
    }
}

/// A signed-request client.
pub(crate) struct ApiClient {
    base: String,
    credential: Identity,
    agent: ureq::Agent,
}

impl ApiClient {
    pub(crate) fn new(base: &str, credential: Identity) -> Self {
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            credential,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout_read(Duration::from_secs(1800))
                .build(),
        }
    }

    pub(crate) fn from_dev(dir: &Path) -> Result<Self, Failure> {
        let info = read_dev_info(dir)?;
        let admin = info
            .admin_keys
            .first()
            .ok_or_else(|| Failure("dev.json lists no admin credential".into()))?;
        Ok(Self::new(&info.api_url, read_credential(admin)?))
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (k, v) in coffer_server::auth::sign_request(&self.credential, method, path, &bytes) {
            req = req.set(k, &v);
        }
        let result = if body.is_some() {
            req.set("content-type", "application/json")
                .send_bytes(&bytes)
        } else {
            req.call()
        };
        let transport = |message: String| ApiFailure {
            code: "unreachable".into(),
            message,
        };
        match result {
            Ok(resp) => resp
                .into_json::<Value>()
                .map_err(|e| transport(format!("bad response: {e}"))),
            Err(ureq::Error::Status(status, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                Err(ApiFailure {
                    code: body["error"]["code"]
                        .as_str()
                        .unwrap_or("http_error")
                        .to_string(),
                    message: body["error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                })
            }
            Err(e) => Err(transport(format!(
                "cannot reach the server at {}: {e}",
                self.base
            ))),
        }
    }
}
