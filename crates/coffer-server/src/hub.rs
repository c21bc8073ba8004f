//! The hub: which signers are connected (and what they last reported), and which sessions
//! are running with whose outcomes so far. The relay writes into it; the coordinator waits
//! on it. All state here is in memory: a restarted server starts with no sessions, and
//! signers reconnect on their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{mpsc, Notify};

use coffer_net::frames::{Outcome, SignerStatus, ToSigner};
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
}

/// Shared between the relay, the coordinator and the API.
#[derive(Default, Clone)]
pub struct Hub {
    state: Arc<Mutex<State>>,
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
    pub fn connect(&self, key: NodeKey, tx: mpsc::UnboundedSender<ToSigner>) -> u64 {
        let mut s = self.lock();
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
    /// The outcomes reported so far in `session`.
    pub fn partial_outcomes(&self, session: &SessionId) -> Vec<(NodeKey, Outcome)> {
        self.lock()
            .sessions
            .get(session)
            .map(|e| e.outcomes.iter().map(|(k, o)| (*k, o.clone())).collect())
            .unwrap_or_default()
    }
}
