//! Test support: a local anvil node (Foundry's Ethereum dev node) started on a free port and
//! killed on drop. Enabled by the `anvil` feature; never used in production code.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::rpc::EthRpc;

/// How long to wait for anvil to answer `eth_chainId`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// anvil's first prefunded account (from its default mnemonic), used if `eth_accounts` is empty.
const DEFAULT_DEV_ACCOUNT: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// Why anvil could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnvilError {
    /// No anvil binary at the expected path (install it with npm in tools/chain-nodes, or set
    /// `COFFER_ANVIL`).
    #[error("anvil not installed at {}", path.display())]
    NotInstalled {
        /// Where anvil was looked for.
        path: PathBuf,
    },
    /// No free local port could be reserved.
    #[error("cannot reserve a local port: {source}")]
    FreePort {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The binary exists but could not be executed.
    #[error("cannot spawn {}: {source}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// anvil exited before answering.
    #[error("anvil exited early with {status}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
    },
    /// anvil did not answer `eth_chainId` in time, or answered with the wrong chain id.
    #[error("anvil not ready after {secs} s")]
    Timeout {
        /// Seconds waited.
        secs: u64,
    },
}

/// A running anvil (killed on drop).
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    dev_account: String,
}

impl Anvil {
    /// Where anvil is looked for: `$COFFER_ANVIL`, else the npm install in
    /// `<workspace>/tools/chain-nodes/node_modules/.bin/anvil`.
    pub fn binary_path() -> PathBuf {
        match std::env::var_os("COFFER_ANVIL") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tools/chain-nodes/node_modules/.bin/anvil"),
        }
    }

    /// Starts anvil with `--chain-id <chain_id> --port <free port> --quiet` and waits until
    /// `eth_chainId` answers `chain_id` (30 s at most).
    pub fn start(chain_id: u64) -> Result<Anvil, AnvilError> {
        let path = Self::binary_path();
        if !path.is_file() {
            return Err(AnvilError::NotInstalled { path });
        }
        let program = native_binary(&path).unwrap_or(path);
        // A port can be taken between reserving and anvil binding it: retry a few times.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(&program, chain_id) {
                Ok(anvil) => return Ok(anvil),
                Err(e @ AnvilError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(AnvilError::Timeout {
            secs: READY_TIMEOUT.as_secs(),
        }))
    }

    fn try_start(program: &Path, chain_id: u64) -> Result<Anvil, AnvilError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|source| AnvilError::FreePort { source })?
            .port();
        let child = Command::new(program)
            .args(["--chain-id", &chain_id.to_string()])
            .args(["--port", &port.to_string()])
            .args(["--host", "127.0.0.1", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| AnvilError::Spawn {
                path: program.to_owned(),
                source,
            })?;
        let mut anvil = Anvil {
            child,
            port,
            dev_account: DEFAULT_DEV_ACCOUNT.to_owned(),
        };
        let rpc = EthRpc::new(&anvil.url());
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(AnvilError::Exited { status });
            }
            if matches!(rpc.chain_id(), Ok(id) if id == chain_id) {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(AnvilError::Timeout {
                    secs: READY_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Ok(accounts) = rpc.call("eth_accounts", json!([])) {
            if let Some(first) = accounts.get(0).and_then(|a| a.as_str()) {
                if let Ok(a) = crate::parse_address(first) {
                    anvil.dev_account = a;
                }
            }
        }
        Ok(anvil)
    }

    /// The HTTP JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first prefunded (unlocked) dev account, checksummed.
    pub fn dev_account(&self) -> String {
        self.dev_account.clone()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // SIGTERM first (an npm wrapper forwards it to the real node), then SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The npm `.bin/anvil` is a node wrapper around a platform package's native binary; run the
/// native binary directly when it is there (no node process in between, clean kill).
fn native_binary(wrapper: &Path) -> Option<PathBuf> {
    let node_modules = wrapper.parent()?.parent()?;
    let scope = node_modules.join("@foundry-rs");
    std::fs::read_dir(scope)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin").join("anvil"))
        .find(|p| p.is_file())
}
