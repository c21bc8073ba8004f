//! The relay: accepts signers' outbound TLS connections (mutual authentication by raw
//! identity keys; only signers in the roster get in), reads their frames, forwards envelopes
//! to the session parties they name, and records status reports and session outcomes in the
//! [`Hub`]. It never opens an envelope: point-to-point payloads are sealed to the recipient
//! and every envelope is signed by its sender, so all it can do wrong is drop or delay.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use coffer_net::frames::{read_frame, write_frame, ToServer, ToSigner};
use coffer_net::roster::Roster;
use coffer_net::{tls, Identity, NodeKey};

use crate::hub::Hub;

/// Test-only relay misbehaviour (`relay-faults` feature and `COFFER_TEST_RELAY_FAULT`): the
/// fault tests prove that a relay which drops, duplicates, reorders or alters envelopes can
/// cause an abort but never a wrong signature.
#[cfg(feature = "relay-faults")]
mod faults {
    use coffer_net::envelope::{Body, Envelope, ProtocolKind};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNT: AtomicU64 = AtomicU64::new(0);
    static HELD: std::sync::Mutex<Option<Envelope>> = std::sync::Mutex::new(None);
    /// `stall-first-refresh`: the first refresh session seen.
    static FIRST_REFRESH: std::sync::Mutex<Option<coffer_proto::ids::SessionId>> =
        std::sync::Mutex::new(None);

    /// What to forward instead of `env`.
    pub fn apply(env: Envelope) -> Vec<Envelope> {
        let mode = std::env::var("COFFER_TEST_RELAY_FAULT").unwrap_or_default();
        let k = COUNT.fetch_add(1, Ordering::Relaxed);
        match mode.as_str() {
            // The point-to-point envelopes to party 0 of the first refresh session are
            // lost: the other parties finish (and stage their new shares), party 0 stalls:
            // the two-phase refresh must roll everyone back.
            "stall-first-refresh" if env.header.protocol == ProtocolKind::Refresh => {
                let mut first = FIRST_REFRESH.lock().unwrap_or_else(|p| p.into_inner());
                let session = *first.get_or_insert(env.header.session);
                let to_party_0 = env.header.recipient.is_some_and(|(_, p)| p.get() == 0);
                if session == env.header.session && to_party_0 {
                    vec![]
                } else {
                    vec![env]
                }
            }
            "drop" if k % 5 == 3 => vec![],
            "duplicate" => vec![env.clone(), env],
            "reorder" => {
                let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
                match held.take() {
                    Some(prev) => vec![env, prev],
                    None if k.is_multiple_of(2) => {
                        *held = Some(env);
                        vec![]
                    }
                    None => vec![env],
                }
            }
            "alter" if k % 4 == 2 => {
                let mut env = env;
                match &mut env.body {
                    Body::Broadcast(b) => {
                        if let Some(x) = b.last_mut() {
                            *x ^= 1;
                        }
                    }
                    Body::Sealed { ciphertext, .. } => {
                        if let Some(x) = ciphertext.last_mut() {
                            *x ^= 1;
                        }
                    }
                }
                vec![env]
            }
            _ => vec![env],
        }
    }
}

/// Accepts signer connections on `listener` until the process ends.
pub async fn serve(listener: TcpListener, identity: Arc<Identity>, roster: Roster, hub: Hub) {
    let allowed: Vec<NodeKey> = roster.signers.iter().map(|s| s.node_key).collect();
    let config = match tls::server_config(
        identity.signing_key(),
        Arc::new(move |k: &NodeKey| allowed.contains(k)),
    ) {
        Ok(c) => c,
        Err(e) => {
            warn!("relay: cannot build TLS configuration: {e}");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let roster = Arc::new(roster);
    // Connections live in a set owned by this task: stopping the relay closes them all.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("relay: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let hub = hub.clone();
        let roster = roster.clone();
        connections.spawn(async move {
            if let Err(e) = connection(acceptor, tcp, addr, hub, roster).await {
                warn!("relay: connection from {addr}: {e}");
            }
        });
    }
}

async fn connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    hub: Hub,
    roster: Arc<Roster>,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake refused: {e}"))?;
    let key = tls::peer_node_key(tls.get_ref().1).ok_or("no client identity")?;
    let name = roster
        .signer(&key)
        .map(|(_, s)| s.name.clone())
        .unwrap_or_else(|| key.short());
    info!(
        "relay: signer {name} ({}) connected from {addr}",
        key.short()
    );
    let (mut reader, mut writer) = tokio::io::split(tls);
    let (tx, mut rx) = mpsc::unbounded_channel::<ToSigner>();
    let conn_id = hub.connect(key, tx);
    let write_task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if let Err(e) = write_frame(&mut writer, &frame).await {
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let _writer = AbortOnDrop(write_task.abort_handle());
    let result = loop {
        let frame: ToServer = match read_frame(&mut reader).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(format!("bad frame from {name}: {e}")),
        };
        hub.touch(key);
        match frame {
            ToServer::Status(status) => hub.set_status(key, status),
            ToServer::Finished { session, outcome } => hub.finish(key, session, outcome),
            ToServer::FreezeAck {
                vault_id,
                seq,
                current_seq,
                refused,
            } => {
                if let Some(why) = &refused {
                    warn!("relay: signer {name} refused order {seq} for vault {vault_id}: {why}");
                }
                hub.record_ack(
                    key,
                    vault_id,
                    crate::hub::FreezeAck {
                        seq,
                        current_seq,
                        refused,
                    },
                );
            }
            ToServer::Relay(env) => {
                let recipient = env.header.recipient.map(|(k, _)| k);
                match hub.route(key, &env.header.session, env.header.sender, recipient) {
                    Ok(to) => {
                        #[cfg(feature = "relay-faults")]
                        let envs = faults::apply(env);
                        #[cfg(not(feature = "relay-faults"))]
                        let envs = vec![env];
                        for env in envs {
                            for r in &to {
                                hub.send(r, ToSigner::Relay(env.clone()));
                            }
                        }
                    }
                    Err(refusal) => {
                        warn!(
                            "relay: envelope from {name} for session {} not relayed: {refusal}",
                            env.header.session
                        );
                    }
                }
            }
        }
    };
    hub.disconnect(key, conn_id);
    info!("relay: signer {name} disconnected");
    result
}

/// Aborts a task when dropped: a connection's writer ends with its reader, also when the
/// relay itself is stopped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
