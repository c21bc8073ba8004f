//! Test support (feature `litesvm`): executes signed transactions in LiteSVM, the Solana runtime
//! as a library, through the npm `litesvm` package installed in `tools/chain-nodes` and driven by
//! `tools/chain-nodes/litesvm-exec.mjs`.
//!
//! The script creates the runtime with **signature verification and blockhash checks on** (the
//! library's defaults, also set explicitly), so a transaction the runtime accepts carries a valid
//! Ed25519 signature of its fee payer over its message and a blockhash the runtime knows.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde::Deserialize;

/// How long to wait for one answer line of the script.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Failures of the LiteSVM test support.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiteSvmError {
    /// Node, the npm `litesvm` package or the driver script is missing: the runtime test cannot
    /// run here (the environment's fault, not the code's).
    #[error("litesvm not installed at {}", path.display())]
    NotInstalled {
        /// What is missing (the package directory, the script, or `node`).
        path: PathBuf,
    },
    /// Talking to the script failed (pipe closed, no answer in time, script exited).
    #[error("litesvm-exec.mjs: {detail}")]
    Script {
        /// What happened, with the script's stderr when it exited.
        detail: String,
    },
    /// The script answered with something that is not the expected JSON line.
    #[error("litesvm-exec.mjs answered {line:?}: {detail}")]
    Protocol {
        /// The line received.
        line: String,
        /// The parse error.
        detail: String,
    },
}

/// The result of one transaction in LiteSVM.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Execution {
    /// Whether the runtime executed the transaction successfully.
    pub ok: bool,
    /// The runtime's error (e.g. `SignatureFailure`, `BlockhashNotFound`), if any.
    pub error: Option<String>,
    /// The program logs.
    pub logs: Vec<String>,
    /// Balances (lamports) of the watched addresses after the transaction; absent accounts are 0.
    pub balances: BTreeMap<String, u64>,
}

/// The script's first line.
#[derive(Deserialize)]
struct Started {
    blockhash: String,
}

/// A running `litesvm-exec.mjs` (killed on drop).
pub struct LiteSvm {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    blockhash: String,
}

impl std::fmt::Debug for LiteSvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteSvm")
            .field("pid", &self.child.id())
            .field("blockhash", &self.blockhash)
            .finish()
    }
}

/// `<workspace>/tools/chain-nodes`.
pub fn chain_nodes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/chain-nodes")
}

impl LiteSvm {
    /// Spawns `node litesvm-exec.mjs`, which creates a LiteSVM (signature verification and
    /// blockhash checks on), airdrops `fund` (address, lamports) and reports its latest blockhash.
    pub fn start(fund: &[(String, u64)]) -> Result<LiteSvm, LiteSvmError> {
        let dir = chain_nodes_dir();
        let package = dir.join("node_modules/litesvm/package.json");
        if !package.is_file() {
            return Err(LiteSvmError::NotInstalled {
                path: dir.join("node_modules/litesvm"),
            });
        }
        let script = dir.join("litesvm-exec.mjs");
        if !script.is_file() {
            return Err(LiteSvmError::NotInstalled { path: script });
        }
        let fund_json = serde_json::to_string(fund).map_err(|e| LiteSvmError::Script {
            detail: format!("encoding the funds: {e}"),
        })?;
        let mut child = Command::new("node")
            .arg(&script)
            .arg(fund_json)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LiteSvmError::NotInstalled {
                    path: PathBuf::from("node"),
                },
                _ => LiteSvmError::Script {
                    detail: format!("spawning node: {e}"),
                },
            })?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            return Err(LiteSvmError::Script {
                detail: "no stdout pipe".into(),
            });
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut svm = LiteSvm {
            child,
            stdin,
            lines,
            blockhash: String::new(),
        };
        let line = svm.next_line()?;
        let started: Started = serde_json::from_str(&line).map_err(|e| LiteSvmError::Protocol {
            line: line.clone(),
            detail: e.to_string(),
        })?;
        svm.blockhash = started.blockhash;
        Ok(svm)
    }

    /// The runtime's latest blockhash (base58), to build transactions against.
    pub fn blockhash(&self) -> &str {
        &self.blockhash
    }

    /// Sends one wire transaction (standard base64) with `svm.sendTransaction` and reports the
    /// outcome and the balances of `watch` afterwards.
    pub fn execute(
        &mut self,
        raw_base64: &str,
        watch: &[String],
    ) -> Result<Execution, LiteSvmError> {
        let request = serde_json::json!({"tx": raw_base64, "watch": watch}).to_string();
        let stdin = self.stdin.as_mut().ok_or_else(|| LiteSvmError::Script {
            detail: "stdin already closed".into(),
        })?;
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|e| LiteSvmError::Script {
                detail: format!("writing the transaction: {e}"),
            })?;
        let line = self.next_line()?;
        serde_json::from_str(&line).map_err(|e| LiteSvmError::Protocol {
            line,
            detail: e.to_string(),
        })
    }

    /// The next stdout line, or the script's stderr if it ended.
    fn next_line(&mut self) -> Result<String, LiteSvmError> {
        match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LiteSvmError::Script {
                detail: format!("no answer within {ANSWER_TIMEOUT:?}"),
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = self.child.kill();
                let status = self.child.wait().map(|s| s.to_string());
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                Err(LiteSvmError::Script {
                    detail: format!("exited ({status:?}): {}", stderr.trim()),
                })
            }
        }
    }
}

impl Drop for LiteSvm {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For tests: starts LiteSVM, or, when node or the npm package is missing, prints
/// `litesvm not installed at <path>: Solana runtime test NOT RUN` and returns `Ok(None)`, unless
/// the environment variable `COFFER_REQUIRE_CHAIN_NODES=1` is set, in which case the
/// `NotInstalled` error is returned (and the test fails).
pub fn start_or_skip(fund: &[(String, u64)]) -> Result<Option<LiteSvm>, LiteSvmError> {
    match LiteSvm::start(fund) {
        Ok(svm) => Ok(Some(svm)),
        Err(LiteSvmError::NotInstalled { path })
            if std::env::var("COFFER_REQUIRE_CHAIN_NODES").as_deref() != Ok("1") =>
        {
            // Written to the stderr handle directly (not eprintln!) so the test harness's output
            // capture does not hide that the runtime test did not run.
            let _ = writeln!(
                std::io::stderr(),
                "litesvm not installed at {}: Solana runtime test NOT RUN",
                path.display()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
