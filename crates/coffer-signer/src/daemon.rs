//! The signer daemon's connection loop: dial *out* to the server over mutually
//! authenticated TLS (the server's key is the one pinned in the roster), announce status,
//! run the jobs it is asked to join, and reconnect with exponential backoff whenever the
//! connection drops. The signer opens no port.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{info, warn};

use coffer_net::frames::{read_frame, write_frame, SignerStatus, ToServer, ToSigner};
use coffer_net::freeze::SignedFreezeOrder;
use coffer_net::tls;

use crate::node::SignerNode;
use crate::primes::PrimePool;
use crate::runner::Sessions;

/// First and longest wait between connection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// The status this signer reports now.
pub fn status(node: &SignerNode, primes: &PrimePool) -> SignerStatus {
    SignerStatus {
        primes_ready: primes.ready(node.store()),
        primes_generating: primes.generating(),
        ..node.status()
    }
}

/// Runs the daemon until the process is stopped: starts prime generation, then connects to
/// `server` (`host:port`, optionally prefixed `tls://`) forever.
pub async fn run(node: Arc<SignerNode>, server: String) {
    let primes = PrimePool::default();
    {
        let node = node.clone();
        let primes = primes.clone();
        std::thread::spawn(move || primes.fill(node.store()));
    }
    let sessions = Sessions::default();
    let addr = server.trim_start_matches("tls://").to_string();
    let mut wait = BACKOFF.0;
    loop {
        match connect_once(&node, &primes, &sessions, &addr).await {
            Ok(()) => {
                info!("connection to {addr} closed; reconnecting");
                wait = BACKOFF.0;
            }
            Err(e) => warn!(
                "connection to {addr}: {e}; retrying in {} ms",
                wait.as_millis()
            ),
        }
        sessions.cancel_all();
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(BACKOFF.1);
    }
}

/// Applies a freeze or unfreeze order and builds the answer to the server.
pub fn freeze_ack(node: &SignerNode, order: &SignedFreezeOrder) -> ToServer {
    let o = &order.order;
    let refused = match node.apply_freeze(order) {
        Ok(applied) => {
            info!(
                "{:?} order {} for vault {} ({:?}): {}",
                o.kind, o.seq, o.vault_id, applied, o.reason
            );
            None
        }
        Err(e) => {
            warn!("order {} for vault {} refused: {e}", o.seq, o.vault_id);
            Some(e.to_string())
        }
    };
    ToServer::FreezeAck {
        vault_id: o.vault_id.clone(),
        seq: o.seq,
        current_seq: node.freeze_seq(&o.vault_id).unwrap_or(0),
        refused,
    }
}

async fn connect_once(
    node: &Arc<SignerNode>,
    primes: &PrimePool,
    sessions: &Sessions,
    addr: &str,
) -> Result<(), String> {
    let roster = node.roster().map_err(|e| e.to_string())?;
    let config = tls::client_config(node.identity().signing_key(), roster.server)
        .map_err(|e| e.to_string())?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(tls::server_name(), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    info!(
        "connected to server {addr} (server key pinned: {})",
        roster.server.short()
    );
    let (mut reader, mut writer) = tokio::io::split(tls);
    let (out, mut out_rx) = mpsc::unbounded_channel::<ToServer>();
    let writer_task = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if let Err(e) = write_frame(&mut writer, &frame).await {
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let _ = out.send(ToServer::Status(status(node, primes)));
    let status_task = {
        let out = out.clone();
        let node = node.clone();
        let primes = primes.clone();
        tokio::spawn(async move {
            let mut last = SignerStatus::default();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = status(&node, &primes);
                if now != last {
                    if out.send(ToServer::Status(now.clone())).is_err() {
                        break;
                    }
                    last = now;
                }
            }
        })
    };
    let result = loop {
        let frame: ToSigner = match read_frame(&mut reader).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(format!("bad frame from the server: {e}")),
        };
        match frame {
            ToSigner::Start(job) => {
                sessions.start(node.clone(), primes.clone(), job, out.clone());
                let _ = out.send(ToServer::Status(status(node, primes)));
            }
            ToSigner::Relay(env) => sessions.deliver(env),
            ToSigner::Cancel { session, reason } => {
                info!("server cancelled session {session}: {reason}");
                sessions.cancel(&session);
            }
            ToSigner::Roster(update) => match node.accept_update(update) {
                Ok(()) => info!("roster update accepted (admin quorum verified)"),
                Err(e) => warn!("roster update refused: {e}"),
            },
            ToSigner::Freeze(order) => {
                let _ = out.send(freeze_ack(node, &order));
            }
        }
    };
    status_task.abort();
    writer_task.abort();
    result
}
