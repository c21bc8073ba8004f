//! `coffer signer ...` and `coffer server ...`: create a signer's identity and encrypted
//! store, pin its roster, run the daemon; create the server's identity and run it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;

use coffer_net::roster::SignedRoster;
use coffer_signer::keysource::{KeyFileSource, KeySource, PassphraseSource};
use coffer_signer::node::SignerNode;

use crate::{emit, Failure};

#[derive(Subcommand)]
pub(crate) enum SignerCommand {
    /// Creates a signer: its encrypted store and its identity (Ed25519 for signing
    /// envelopes, X25519 for receiving encrypted payloads). Prints the public identity.
    Init(SignerInit),
    /// Pins the roster (signers, admins, server key) this signer is enrolled in.
    Enrol(SignerEnrol),
    /// Runs the daemon: dials out to the server and serves protocol sessions.
    Run(SignerRun),
    /// Prints the signer's public identity and the keys it holds.
    Show(StoreArgs),
    /// Takes a compromised signer out of keys: FROST keys are reshared without it (same
    /// public keys and addresses); for ECDSA keys the move-funds ceremony is printed.
    Replace(crate::replace_cmd::ReplaceArgs),
}

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The signer's data directory.
    #[arg(long)]
    data: PathBuf,
    /// Key file for the store (32 random bytes). Without it, the store key comes from the
    /// passphrase in COFFER_PASSPHRASE.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct SignerInit {
    #[command(flatten)]
    store: StoreArgs,
    /// A label for this signer (shown in listings; not trusted for anything).
    #[arg(long, default_value = "signer")]
    name: String,
}

#[derive(Args)]
pub(crate) struct SignerEnrol {
    #[command(flatten)]
    store: StoreArgs,
    /// The admin-signed roster (JSON).
    #[arg(long)]
    roster: PathBuf,
}

#[derive(Args)]
pub(crate) struct SignerRun {
    #[command(flatten)]
    store: StoreArgs,
    /// The server's signer address (`tls://host:port` or `host:port`).
    #[arg(long)]
    server: String,
    /// Exit when standard input closes (used by `coffer dev` so that signers never outlive it).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

fn key_source(args: &StoreArgs, create: bool) -> Result<Box<dyn KeySource>, Failure> {
    Ok(match &args.key_file {
        Some(path) if create && !path.exists() => Box::new(KeyFileSource::create(path)?),
        Some(path) => Box::new(KeyFileSource::open(path)),
        None => Box::new(
            PassphraseSource::from_env()
                .map_err(|e| Failure(format!("{e} (set COFFER_PASSPHRASE or pass --key-file)")))?,
        ),
    })
}

pub(crate) fn signer(cmd: SignerCommand) -> Result<(), Failure> {
    match cmd {
        SignerCommand::Init(a) => {
            let source = key_source(&a.store, true)?;
            let public = SignerNode::init(&a.store.data, &a.name, source.as_ref())?;
            emit(&json!({ "identity": public, "data": a.store.data }))
        }
        SignerCommand::Enrol(a) => {
            let source = key_source(&a.store, false)?;
            let node = SignerNode::open(&a.store.data, source.as_ref())?;
            let roster = read_roster(&a.roster)?;
            node.enrol(roster.clone())?;
            emit(&json!({
                "enrolled": true,
                "roster_version": roster.roster.version,
                "signers": roster.roster.signers.len(),
                "admins": roster.roster.admins.len(),
                "admin_threshold": roster.roster.admin_threshold,
                "server": roster.roster.server,
                "dev_mode": roster.roster.dev_mode,
            }))
        }
        SignerCommand::Replace(a) => crate::replace_cmd::run(a),
        SignerCommand::Show(a) => {
            let source = key_source(&a, false)?;
            let node = SignerNode::open(&a.data, source.as_ref())?;
            emit(&json!({
                "identity": node.identity().public(),
                "enrolled": node.roster().is_ok(),
                "keys": node.status().keys.iter().map(|k| json!({"key_id": k.key_id, "epoch": k.epoch})).collect::<Vec<_>>(),
            }))
        }
        SignerCommand::Run(a) => {
            crate::logging::init();
            let source = key_source(&a.store, false)?;
            let node = Arc::new(SignerNode::open(&a.store.data, source.as_ref())?);
            node.roster()?;
            if a.exit_with_stdin {
                exit_when_stdin_closes();
            }
            let rt = runtime()?;
            rt.block_on(async move {
                tokio::select! {
                    _ = coffer_signer::daemon::run(node, a.server) => {}
                    _ = crate::logging::terminated() => {}
                }
            });
            Ok(())
        }
    }
}

pub(crate) fn read_roster(path: &Path) -> Result<SignedRoster, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure(format!("{}: not a signed roster: {e}", path.display())))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))
}

/// Ends the process when standard input reaches end of file (the parent is gone).
pub(crate) fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
}

#[derive(Subcommand)]
pub(crate) enum ServerCommand {
    /// Creates the server's data directory and identity; prints its public key (for the roster).
    Init(ServerInit),
    /// Runs the server: relay for signers and the HTTP API.
    Run(ServerRun),
}

#[derive(Args)]
pub(crate) struct ServerInit {
    /// Data directory.
    #[arg(long)]
    data: PathBuf,
}

#[derive(Args)]
pub(crate) struct ServerRun {
    /// Data directory (holds identity.key, roster.json, coffer.db).
    #[arg(long)]
    data: PathBuf,
    /// HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address signers dial (TLS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    signer_listen: SocketAddr,
    /// Seconds a session may stall before it is abandoned (non-ECDSA-setup sessions).
    #[arg(long, default_value_t = 60)]
    session_timeout: u64,
    /// ECDSA presignatures kept ready per key, so that online signing is one round (0: none).
    #[arg(long, default_value_t = 4)]
    presign_pool: usize,
    /// The database (default: the SQLite file coffer.db in the data directory), e.g.
    /// postgres://user@host:5432/coffer.
    #[arg(long, env = "COFFER_DATABASE_URL")]
    database_url: Option<String>,
    /// Requests per second allowed per credential (twice that in a burst).
    #[arg(long, default_value_t = 200.0)]
    rate_limit: f64,
    /// Exit when standard input closes.
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

pub(crate) fn server(cmd: ServerCommand) -> Result<(), Failure> {
    match cmd {
        ServerCommand::Init(a) => {
            let key = coffer_server::init(&a.data)?;
            emit(&json!({ "server_key": key, "data": a.data }))
        }
        ServerCommand::Run(a) => {
            crate::logging::init();
            if a.exit_with_stdin {
                exit_when_stdin_closes();
            }
            let config = coffer_server::ServerConfig {
                data_dir: a.data,
                api_listen: a.listen,
                signer_listen: a.signer_listen,
                deadlines: coffer_server::api::Deadlines {
                    other: std::time::Duration::from_secs(a.session_timeout),
                    ..Default::default()
                },
                presign_pool: a.presign_pool,
                database_url: a.database_url,
                rate_limits: coffer_server::ratelimit::Limits {
                    per_second: a.rate_limit,
                    burst: a.rate_limit * 2.0,
                },
                checkpoint_every: coffer_server::DEFAULT_CHECKPOINT_EVERY,
                alerts: coffer_server::alerts::AlertConfig::standard(),
                webhooks: Default::default(),
            };
            let rt = runtime()?;
            rt.block_on(async move {
                let running = coffer_server::start(&config).await?;
                tracing::info!(
                    "coffer server: API http://{} , signers tls://{}",
                    running.api_addr,
                    running.signer_addr
                );
                crate::logging::terminated().await;
                running.stop();
                Ok::<(), Failure>(())
            })
        }
    }
}
