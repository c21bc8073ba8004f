//! The hub: which signers are connected (and what they last reported), and which sessions
//! are running with whose outcomes so far. The relay writes into it; the coordinator waits
//! on it. All state here is in memory: a restarted server starts with no sessions, and
//! signers reconnect on their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{mpsc, Notify};

use coffer_net::frames::{Job, Outcome, SignerStatus, ToSigner};
use coffer_net::freeze::SignedFreezeOrder;
use coffer_net::NodeKey;
use coffer_proto::ids::SessionId;

/// One connected signer.
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<ToSigner>,
    status: SignerStatus,
    connected_at: SystemTime,
    last_seen: SystemTime,
}

/// A running session.
struct SessionEntry {
    parties: Vec<(u16, NodeKey)>,
    outcomes: HashMap<NodeKey, Outcome>,
    left: Option<NodeKey>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct State {
    next_conn: u64,
    conns: HashMap<NodeKey, Conn>,
    sessions: HashMap<SessionId, SessionEntry>,
    /// The latest freeze or unfreeze order per vault: sent to every signer that connects.
    orders: HashMap<String, SignedFreezeOrder>,
    /// Each signer's last answer to an order, per vault.
    acks: HashMap<(NodeKey, String), FreezeAck>,
}

/// A signer's answer to a freeze or unfreeze order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeAck {
    /// The order's sequence number.
    pub seq: u64,
    /// The sequence in force on the signer for the vault.
    pub current_seq: u64,
    /// Why the signer refused the order (`None`: in force).
    pub refused: Option<String>,
}

/// Shared between the relay, the coordinator and the API.
#[derive(Default, Clone)]
pub struct Hub {
    state: Arc<Mutex<State>>,
    acked: Arc<Notify>,
}

/// What the API shows about a signer.
#[derive(Clone, Debug)]
pub struct SignerView {
    /// Connected now.
    pub connected: bool,
    /// Last reported status.
    pub status: SignerStatus,
    /// When the current connection began.
    pub connected_at: Option<SystemTime>,
    /// Last frame received.
    pub last_seen: Option<SystemTime>,
}

/// Where a session stands.
pub enum Progress {
    /// Still waiting for these parties.
    Waiting(Vec<NodeKey>),
    /// Every party reported.
    Done(Vec<(NodeKey, Outcome)>),
    /// A party disconnected before reporting.
    Left(NodeKey),
    /// The session is unknown (already closed).
    Gone,
}

/// Why a frame from a signer was not relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefusal {
    /// No such session (finished, cancelled, or never started).
    #[error("unknown session")]
    UnknownSession,
    /// The sender is not a party of that session, or claims another sender.
    #[error("sender is not a party of the session")]
    NotAParty,
    /// The recipient is not a party of that session.
    #[error("recipient is not a party of the session")]
    BadRecipient,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the state is still consistent enough to
        // serve (every update is a single insert or remove).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection of `key` (replacing an older one) and returns its id.
    /// The latest freeze or unfreeze order of every vault goes to it first.
    pub fn connect(&self, key: NodeKey, tx: mpsc::UnboundedSender<ToSigner>) -> u64 {
        let mut s = self.lock();
        for order in s.orders.values() {
            let _ = tx.send(ToSigner::Freeze(Box::new(order.clone())));
        }
        s.next_conn += 1;
        let id = s.next_conn;
        let now = SystemTime::now();
        s.conns.insert(
            key,
            Conn {
                id,
                tx,
                status: SignerStatus::default(),
                connected_at: now,
                last_seen: now,
            },
        );
        id
    }

    /// Removes connection `id` of `key` (if still current) and fails the sessions that
    /// waited for it.
    pub fn disconnect(&self, key: NodeKey, id: u64) {
        let mut s = self.lock();
        if s.conns.get(&key).map(|c| c.id) != Some(id) {
            return;
        }
        s.conns.remove(&key);
        for entry in s.sessions.values_mut() {
            if entry.parties.iter().any(|(_, k)| *k == key)
                && !entry.outcomes.contains_key(&key)
                && entry.left.is_none()
            {
                entry.left = Some(key);
                entry.notify.notify_one();
            }
        }
    }

    /// Records a status report.
    pub fn set_status(&self, key: NodeKey, status: SignerStatus) {
        if let Some(c) = self.lock().conns.get_mut(&key) {
            c.status = status;
            c.last_seen = SystemTime::now();
        }
    }

    /// Notes that a frame arrived from `key`.
    pub fn touch(&self, key: NodeKey) {
        if let Some(c) = self.lock().conns.get_mut(&key) {
            c.last_seen = SystemTime::now();
        }
    }

    /// The view of `key`.
    pub fn signer(&self, key: &NodeKey) -> SignerView {
        match self.lock().conns.get(key) {
            Some(c) => SignerView {
                connected: true,
                status: c.status.clone(),
                connected_at: Some(c.connected_at),
                last_seen: Some(c.last_seen),
            },
            None => SignerView {
                connected: false,
                status: SignerStatus::default(),
                connected_at: None,
                last_seen: None,
            },
        }
    }

    /// Whether `key` is connected.
    pub fn is_connected(&self, key: &NodeKey) -> bool {
        self.lock().conns.contains_key(key)
    }

    /// Sends a frame to a connected signer; false if it is not connected.
    pub fn send(&self, key: &NodeKey, frame: ToSigner) -> bool {
        self.lock()
            .conns
            .get(key)
            .map(|c| c.tx.send(frame).is_ok())
            .unwrap_or(false)
    }

    /// Opens a session; the returned notifier fires on every outcome or departure.
    pub fn open_session(&self, session: SessionId, parties: Vec<(u16, NodeKey)>) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.lock().sessions.insert(
            session,
            SessionEntry {
                parties,
                outcomes: HashMap::new(),
                left: None,
                notify: notify.clone(),
            },
        );
        notify
    }

    /// Opens `job`'s session and queues its `Start` frame to every party, all under one lock,
    /// so that no envelope of the session can be relayed to a party before that party's
    /// `Start` (a signer drops envelopes for sessions it does not know yet). Returns the
    /// session's notifier, or the first party that is not connected (nothing is left open).
    pub fn start_session(&self, job: &Job) -> Result<Arc<Notify>, NodeKey> {
        let mut s = self.lock();
        if let Some((_, k)) = job.parties.iter().find(|(_, k)| !s.conns.contains_key(k)) {
            return Err(*k);
        }
        let notify = Arc::new(Notify::new());
        s.sessions.insert(
            job.session,
            SessionEntry {
                parties: job.parties.clone(),
                outcomes: HashMap::new(),
                left: None,
                notify: notify.clone(),
            },
        );
        for (_, k) in &job.parties {
            let sent = s
                .conns
                .get(k)
                .map(|c| c.tx.send(ToSigner::Start(job.clone())).is_ok())
                .unwrap_or(false);
            if !sent {
                s.sessions.remove(&job.session);
                return Err(*k);
            }
        }
        Ok(notify)
    }

    /// Closes a session (later frames for it are refused).
    pub fn close_session(&self, session: &SessionId) {
        self.lock().sessions.remove(session);
    }

    /// Records `from`'s outcome of `session`.
    pub fn finish(&self, from: NodeKey, session: SessionId, outcome: Outcome) {
        let mut s = self.lock();
        if let Some(entry) = s.sessions.get_mut(&session) {
            if entry.parties.iter().any(|(_, k)| *k == from) {
                entry.outcomes.entry(from).or_insert(outcome);
                entry.notify.notify_one();
            }
        }
    }

    /// Where `session` stands.
    pub fn progress(&self, session: &SessionId) -> Progress {
        let s = self.lock();
        let Some(entry) = s.sessions.get(session) else {
            return Progress::Gone;
        };
        if let Some(k) = entry.left {
            return Progress::Left(k);
        }
        let waiting: Vec<NodeKey> = entry
            .parties
            .iter()
            .map(|(_, k)| *k)
            .filter(|k| !entry.outcomes.contains_key(k))
            .collect();
        if waiting.is_empty() {
            Progress::Done(
                entry
                    .parties
                    .iter()
                    .filter_map(|(_, k)| entry.outcomes.get(k).map(|o| (*k, o.clone())))
                    .collect(),
            )
        } else {
            Progress::Waiting(waiting)
        }
    }

    /// The recipients of an envelope `from` sent in `session`: the named recipient, or every
    /// other party for a broadcast. Refuses senders and recipients outside the session.
    pub fn route(
        &self,
        from: NodeKey,
        session: &SessionId,
        claimed_sender: NodeKey,
        recipient: Option<NodeKey>,
    ) -> Result<Vec<NodeKey>, RelayRefusal> {
        let s = self.lock();
        let entry = s
            .sessions
            .get(session)
            .ok_or(RelayRefusal::UnknownSession)?;
        if claimed_sender != from || !entry.parties.iter().any(|(_, k)| *k == from) {
            return Err(RelayRefusal::NotAParty);
        }
        match recipient {
            Some(to) => {
                if entry.parties.iter().any(|(_, k)| *k == to) && to != from {
                    Ok(vec![to])
                } else {
                    Err(RelayRefusal::BadRecipient)
                }
            }
            None => Ok(entry
                .parties
                .iter()
                .map(|(_, k)| *k)
                .filter(|k| *k != from)
                .collect()),
        }
    }
}

impl Hub {
    /// Makes `order` the vault's latest order and sends it to every connected signer
    /// (signers that connect later get it on connecting).
    pub fn set_order(&self, order: SignedFreezeOrder) {
        let mut s = self.lock();
        for c in s.conns.values() {
            let _ = c.tx.send(ToSigner::Freeze(Box::new(order.clone())));
        }
        s.orders.insert(order.order.vault_id.clone(), order);
    }

    /// Whether the latest order naming `key_id` is a freeze.
    pub fn is_key_frozen(&self, key_id: &str) -> bool {
        self.lock().orders.values().any(|o| {
            o.order.kind == coffer_net::freeze::FreezeKind::Freeze && o.order.names(key_id)
        })
    }

    /// Records a signer's answer to an order.
    pub fn record_ack(&self, from: NodeKey, vault_id: String, ack: FreezeAck) {
        self.lock().acks.insert((from, vault_id), ack);
        self.acked.notify_waiters();
    }

    /// Every signer's last answer about `vault_id`.
    pub fn acks(&self, vault_id: &str) -> Vec<(NodeKey, FreezeAck)> {
        self.lock()
            .acks
            .iter()
            .filter(|((_, v), _)| v == vault_id)
            .map(|((k, _), a)| (*k, a.clone()))
            .collect()
    }

    /// Waits until every signer of `signers` that is connected answered order `seq` of
    /// `vault_id` (or a later one), at most `limit`. Returns the answers.
    pub async fn wait_acks(
        &self,
        vault_id: &str,
        seq: u64,
        signers: &[NodeKey],
        limit: std::time::Duration,
    ) -> Vec<(NodeKey, FreezeAck)> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.acked.notified();
            let acks = self.acks(vault_id);
            let done = signers.iter().all(|k| {
                !self.is_connected(k)
                    || acks
                        .iter()
                        .any(|(a, ack)| a == k && ack.seq.max(ack.current_seq) >= seq)
            });
            if done || tokio::time::timeout_at(until, notified).await.is_err() {
                return acks;
            }
        }
    }

    /// The outcomes reported so far in `session`.
    pub fn partial_outcomes(&self, session: &SessionId) -> Vec<(NodeKey, Outcome)> {
        self.lock()
            .sessions
            .get(session)
            .map(|e| e.outcomes.iter().map(|(k, o)| (*k, o.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_net::frames::Task;
    use coffer_proto::scheme::Scheme;

    fn job(parties: &[NodeKey]) -> Job {
        Job {
            session: SessionId::random(),
            key_id: "k-1".into(),
            task: Task::Keygen {
                scheme: Scheme::Ed25519,
                threshold: 2,
            },
            parties: parties
                .iter()
                .enumerate()
                .map(|(i, k)| (i as u16, *k))
                .collect(),
            epoch: None,
        }
    }

    #[test]
    fn a_session_is_open_and_started_on_every_party_before_anything_can_be_relayed() {
        let hub = Hub::default();
        let keys = [NodeKey([1; 32]), NodeKey([2; 32]), NodeKey([3; 32])];
        let mut rxs = Vec::new();
        for k in keys {
            let (tx, rx) = mpsc::unbounded_channel();
            hub.connect(k, tx);
            rxs.push(rx);
        }
        let job = job(&keys);
        hub.start_session(&job).unwrap();
        // Once start_session returns, every party's first queued frame is the Start, and the
        // session routes envelopes: a relay queued now lands behind each Start.
        assert!(hub.route(keys[0], &job.session, keys[0], None).is_ok());
        for rx in &mut rxs {
            assert!(matches!(rx.try_recv(), Ok(ToSigner::Start(j)) if j.session == job.session));
        }
        assert!(matches!(hub.progress(&job.session), Progress::Waiting(w) if w.len() == 3));
    }

    #[test]
    fn a_missing_party_leaves_no_session_and_no_start() {
        let hub = Hub::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        hub.connect(NodeKey([1; 32]), tx);
        let job = job(&[NodeKey([1; 32]), NodeKey([2; 32])]);
        assert_eq!(hub.start_session(&job).unwrap_err(), NodeKey([2; 32]));
        assert!(rx.try_recv().is_err());
        assert!(matches!(hub.progress(&job.session), Progress::Gone));
    }
}
