//! Runs the sessions a signer agreed to join. Before a session starts the signer checks the
//! job against its own state ([`check_job`]): every party is a pinned roster member, a key's
//! party indices are the ones it recorded at key generation, raw messages are signed only
//! in dev mode. Each session runs on its own thread (protocol state machines are not
//! `Send`): incoming envelopes are verified against the pinned identity of the sender and
//! opened, outgoing messages are sealed to their recipient.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use coffer_net::envelope::Envelope;
use coffer_net::frames::{Job, Outcome, SignInput, Task, ToServer};
use coffer_net::{NodeKey, PublicIdentity};
use coffer_proto::ecdsa::EcdsaPresignature;
use coffer_proto::error::SessionError;
use coffer_proto::ids::{GroupParams, PartyIndex, SessionId};
use coffer_proto::path::DerivationPath;
use coffer_proto::protocol::{self, FrostNonces, Signature};
use coffer_proto::scheme::Scheme;
use coffer_proto::session::{BoxedSession, Session};
use coffer_proto::share::KeyShare;

use crate::intent_check::IntentPlan;
use crate::node::{KeyMeta, SignerNode};
use crate::primes::PrimePool;

/// Longest a session may wait for its next message before this signer gives up.
pub const IDLE_LIMIT: Duration = Duration::from_secs(900);

enum Input {
    Envelope(Box<Envelope>),
    Cancel,
}

/// The sessions running on this signer.
#[derive(Clone, Default)]
pub struct Sessions {
    running: Arc<Mutex<HashMap<SessionId, mpsc::Sender<Input>>>>,
}

/// A job the signer will run: its parties' pinned identities and this signer's index.
struct Accepted {
    me: u16,
    peers: HashMap<u16, PublicIdentity>,
    plan: Plan,
}

enum Plan {
    Keygen {
        scheme: Scheme,
        params: GroupParams,
    },
    Sign {
        share: Box<KeyShare>,
        message: Vec<u8>,
        path: DerivationPath,
        signers: Vec<PartyIndex>,
    },
    Refresh {
        share: Box<KeyShare>,
    },
    Presign {
        share: Box<KeyShare>,
        path: DerivationPath,
        signers: Vec<PartyIndex>,
    },
    Reshare {
        share: Box<KeyShare>,
        members: Vec<PartyIndex>,
    },
    SignPresigned {
        share: Box<KeyShare>,
        item: PooledItem,
        path: DerivationPath,
        input: SignInput,
    },
    SignIntent {
        share: Box<KeyShare>,
        message: Vec<u8>,
        path: DerivationPath,
        signers: Vec<PartyIndex>,
        body: Box<coffer_policy::ReceiptBody>,
        input: u32,
        taproot: bool,
    },
}

/// A pooled item taken out of the pool for one signing.
enum PooledItem {
    Ecdsa(Box<EcdsaPresignature>),
    Frost(Box<FrostNonces>),
}

/// Why a job was refused or could not start (sent to the server as the outcome).
fn refuse(reason: impl Into<String>) -> Outcome {
    Outcome::Refused {
        reason: reason.into(),
    }
}

/// Checks `job` against this signer's pinned state and decides what to run.
fn check_job(node: &SignerNode, job: &Job) -> Result<Accepted, Outcome> {
    let roster = node.roster().map_err(|e| refuse(e.to_string()))?;
    let mine = node.identity().node_key();
    let mut peers = HashMap::new();
    let mut me = None;
    for (i, key) in &job.parties {
        let Some((_, pinned)) = roster.signer(key) else {
            return Err(refuse(format!(
                "party {i} ({}) is not in the pinned roster",
                key.short()
            )));
        };
        if peers.insert(*i, pinned.clone()).is_some() {
            return Err(refuse(format!("party index {i} appears twice")));
        }
        if *key == mine {
            me = Some(*i);
        }
    }
    let me = me.ok_or_else(|| refuse("this signer is not a party of the job"))?;
    let distinct: std::collections::HashSet<&NodeKey> =
        job.parties.iter().map(|(_, k)| k).collect();
    if distinct.len() != job.parties.len() {
        return Err(refuse("a signer appears twice in the job"));
    }
    check_not_frozen(node, job)?;
    let plan = match &job.task {
        // Answered at once from this signer's own checkpoint state: no session.
        Task::AuditCheckpoint(checkpoint) => {
            return Err(crate::checkpoint::answer(node, checkpoint))
        }
        // Phase 2 of a refresh, answered at once: no session.
        Task::CommitEpoch { .. } | Task::AbortEpoch { .. } | Task::PruneEpoch { .. } => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            return Err(
                crate::epochs::answer(node, job).unwrap_or_else(|| refuse("not an epoch task"))
            );
        }
        Task::BackupExport(backup) => return Err(crate::backup::answer(node, &job.key_id, backup)),
        Task::Keygen { scheme, threshold } => {
            let n = u16::try_from(job.parties.len()).map_err(|_| refuse("too many parties"))?;
            let params = GroupParams::new(*threshold, n).map_err(|e| refuse(e.to_string()))?;
            if job
                .parties
                .iter()
                .enumerate()
                .any(|(k, (i, _))| usize::from(*i) != k)
            {
                return Err(refuse(
                    "key generation parties must be indexed 0..n in order",
                ));
            }
            if node.key_meta(&job.key_id).is_ok() {
                return Err(refuse(format!(
                    "key {} already exists on this signer",
                    job.key_id
                )));
            }
            Plan::Keygen {
                scheme: *scheme,
                params,
            }
        }
        Task::Sign { message, path, .. } => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            if !roster.dev_mode {
                return Err(refuse("raw-message signing is allowed in dev mode only"));
            }
            if job.parties.len() < usize::from(meta.threshold) {
                return Err(refuse("fewer signers than the threshold"));
            }
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, true)?;
            let signers = party_indices(&share, &job.parties)?;
            let path: DerivationPath = path.parse().map_err(|e| refuse(format!("path: {e}")))?;
            Plan::Sign {
                share: Box::new(share),
                message: message.clone(),
                path,
                signers,
            }
        }
        Task::Refresh => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, false)?;
            if job.parties.len() != share.members().len() {
                return Err(refuse("a refresh needs every member of the key"));
            }
            Plan::Refresh {
                share: Box::new(share),
            }
        }
        Task::Presign { path } => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, true)?;
            let signers = party_indices(&share, &job.parties)?;
            let path: DerivationPath = path.parse().map_err(|e| refuse(format!("path: {e}")))?;
            Plan::Presign {
                share: Box::new(share),
                path,
                signers,
            }
        }
        Task::SignPresigned {
            presignature,
            path,
            input,
        } => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            if !roster.dev_mode {
                return Err(refuse("raw-message signing is allowed in dev mode only"));
            }
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, true)?;
            let signers = party_indices(&share, &job.parties)?;
            let path: DerivationPath = path.parse().map_err(|e| refuse(format!("path: {e}")))?;
            let missing = || refuse("no such item in this signer's pool (unknown or already used)");
            // Spent here: removed from the pool durably before anything else happens.
            let item = match share.scheme() {
                Scheme::EcdsaSecp256k1 => {
                    if !matches!(input, SignInput::Preimage(_)) {
                        return Err(refuse(
                            "ECDSA presignatures sign preimages only (the signers hash them)",
                        ));
                    }
                    let pre: EcdsaPresignature =
                        crate::pool::take(node.store(), &job.key_id, presignature)
                            .map_err(|e| refuse(e.to_string()))?
                            .ok_or_else(missing)?;
                    if pre.signers() != signers.as_slice() || *pre.path() != path {
                        return Err(refuse(
                            "the presignature was made by another signer set or for another path",
                        ));
                    }
                    PooledItem::Ecdsa(Box::new(pre))
                }
                _ => {
                    let nonces: FrostNonces =
                        crate::pool::take(node.store(), &job.key_id, presignature)
                            .map_err(|e| refuse(e.to_string()))?
                            .ok_or_else(missing)?;
                    if nonces.signers() != signers.as_slice() {
                        return Err(refuse("the nonces were made by another signer set"));
                    }
                    PooledItem::Frost(Box::new(nonces))
                }
            };
            Plan::SignPresigned {
                share: Box::new(share),
                item,
                path,
                input: input.clone(),
            }
        }
        Task::SignIntent(intent_job) => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            if job.parties.len() < usize::from(meta.threshold) {
                return Err(refuse("fewer signers than the threshold"));
            }
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, true)?;
            let signers = party_indices(&share, &job.parties)?;
            let path: DerivationPath = intent_job
                .intent
                .path
                .parse()
                .map_err(|e| refuse(format!("path: {e}")))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let child_key = share
                .public_key(&path)
                .map_err(|e| refuse(format!("path: {e}")))?;
            match crate::intent_check::check(node, &job.key_id, &meta, intent_job, &child_key, now)?
            {
                IntentPlan::Done(outcome) => return Err(outcome),
                IntentPlan::Sign {
                    message,
                    input,
                    taproot,
                    body,
                } => Plan::SignIntent {
                    share: Box::new(share),
                    message,
                    path,
                    signers,
                    body: Box::new(body),
                    input,
                    taproot,
                },
            }
        }
        Task::Reshare { members } => {
            let meta = node
                .key_meta(&job.key_id)
                .map_err(|e| refuse(e.to_string()))?;
            check_members(&meta, &job.parties)?;
            let listed: Vec<u16> = job.parties.iter().map(|(i, _)| *i).collect();
            if *members != listed {
                return Err(refuse(
                    "the members to keep must be exactly the job's parties",
                ));
            }
            let share = node.share(&job.key_id).map_err(|e| refuse(e.to_string()))?;
            crate::epochs::check(job, &share, false)?;
            let members = party_indices(&share, &job.parties)?;
            Plan::Reshare {
                share: Box::new(share),
                members,
            }
        }
    };
    Ok(Accepted { me, peers, plan })
}

/// Refuses a signing-type job (Sign, SignIntent, SignPresigned, Presign) for a key of a
/// frozen vault. Refresh and reshare stay allowed: the breach response runs during a freeze.
fn check_not_frozen(node: &SignerNode, job: &Job) -> Result<(), Outcome> {
    if !matches!(
        job.task,
        Task::Sign { .. } | Task::Presign { .. } | Task::SignPresigned { .. } | Task::SignIntent(_)
    ) {
        return Ok(());
    }
    match node.frozen(&job.key_id) {
        Ok(None) => Ok(()),
        Ok(Some(f)) => Err(refuse(format!(
            "vault {} is frozen (order {}: {}); key {} signs nothing until an admin quorum unfreezes it",
            f.vault_id, f.seq, f.reason, job.key_id
        ))),
        Err(e) => Err(refuse(format!(
            "the freeze record cannot be read ({e}); signing refused"
        ))),
    }
}

/// The job's party indices as protocol indices of `share`'s group.
fn party_indices(share: &KeyShare, parties: &[(u16, NodeKey)]) -> Result<Vec<PartyIndex>, Outcome> {
    let params = share.params().map_err(|e| refuse(e.to_string()))?;
    parties
        .iter()
        .map(|(i, _)| PartyIndex::new(*i, params))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(e.to_string()))
}

/// Every (index, signer) of the job is the one this signer recorded for the key.
fn check_members(meta: &KeyMeta, parties: &[(u16, NodeKey)]) -> Result<(), Outcome> {
    for (i, k) in parties {
        if meta.parties.get(usize::from(*i)) != Some(k) {
            return Err(refuse(format!(
                "party {i} ({}) does not hold that index of key {}",
                k.short(),
                meta.key_id
            )));
        }
    }
    Ok(())
}

impl Sessions {
    /// Checks and starts `job`; its outcome (or refusal) is sent through `out`.
    pub fn start(
        &self,
        node: Arc<SignerNode>,
        primes: PrimePool,
        job: Job,
        out: UnboundedSender<ToServer>,
    ) {
        let session = job.session;
        let finish = |outcome: Outcome| {
            let _ = out.send(ToServer::Finished { session, outcome });
        };
        let accepted = match check_job(&node, &job) {
            Ok(a) => a,
            Err(outcome) => {
                if matches!(outcome, Outcome::Refused { .. }) {
                    tracing::warn!(
                        "refused job {} for key {}: {outcome:?}",
                        job.session,
                        job.key_id
                    );
                } else {
                    tracing::info!(
                        "answered job {} for key {} at once: {}",
                        job.session,
                        job.key_id,
                        summary(&outcome)
                    );
                }
                return finish(outcome);
            }
        };
        let (tx, rx) = mpsc::channel();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(&session) {
                return finish(refuse("session id already in use"));
            }
            running.insert(session, tx);
        }
        let registry = self.running.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("session-{}", &session.to_string()[..8]))
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&node, &primes, &job, accepted, rx, &out)
                }))
                .unwrap_or_else(|_| {
                    Some(Outcome::Aborted {
                        reason: "internal error in the session".into(),
                        culprits: vec![],
                    })
                });
                registry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job.session);
                if let Some(outcome) = outcome {
                    tracing::info!(
                        "session {} ({:?}) finished: {}",
                        job.session,
                        job.protocol(),
                        summary(&outcome)
                    );
                    let _ = out.send(ToServer::Finished {
                        session: job.session,
                        outcome,
                    });
                }
            });
        if spawned.is_err() {
            self.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&session);
        }
    }

    /// Delivers an envelope to its session (dropped if the session is unknown).
    pub fn deliver(&self, env: Envelope) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(&env.header.session) {
            Some(tx) => {
                let _ = tx.send(Input::Envelope(Box::new(env)));
            }
            None => tracing::debug!(
                "envelope for unknown session {} dropped",
                env.header.session
            ),
        }
    }

    /// Stops a session without reporting.
    pub fn cancel(&self, session: &SessionId) {
        if let Some(tx) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session)
        {
            let _ = tx.send(Input::Cancel);
        }
    }

    /// Stops every session (the connection to the server is gone).
    pub fn cancel_all(&self) {
        for (_, tx) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            let _ = tx.send(Input::Cancel);
        }
    }

    /// Sessions running now.
    pub fn count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn summary(o: &Outcome) -> String {
    match o {
        Outcome::KeyReady { epoch, .. } => format!("share stored (epoch {epoch})"),
        Outcome::Signed { .. } => "signed".into(),
        Outcome::Pooled { ready } => format!("{ready} pooled"),
        Outcome::Refused { reason } => format!("refused: {reason}"),
        Outcome::Aborted { reason, culprits } => format!("aborted: {reason} (blamed {culprits:?})"),
        Outcome::NotReady { reason } => format!("not ready: {reason}"),
        Outcome::Checkpointed { entries, .. } => {
            format!("audit checkpoint co-signed at {entries} entries")
        }
        Outcome::EpochState { committed, staged } => {
            format!("committed epoch {committed}, staged {staged:?}")
        }
        Outcome::BackupKit { .. } => "backup kit made".into(),
    }
}

fn aborted(e: &SessionError) -> Outcome {
    Outcome::Aborted {
        reason: e.to_string(),
        culprits: e.culprits().iter().map(|p| p.get()).collect(),
    }
}

enum Started {
    Share(BoxedSession<KeyShare>),
    Signature(BoxedSession<Signature>),
    Presignature(BoxedSession<EcdsaPresignature>),
    Nonces(BoxedSession<FrostNonces>),
}

/// Runs one accepted job to its outcome; `None` if it was cancelled.
fn run(
    node: &SignerNode,
    primes: &PrimePool,
    job: &Job,
    accepted: Accepted,
    rx: mpsc::Receiver<Input>,
    out: &UnboundedSender<ToServer>,
) -> Option<Outcome> {
    let Accepted { me, peers, plan } = accepted;
    // ECDSA key generation and refresh take one set of this signer's safe primes.
    let primes_for = |scheme: Scheme| -> Result<Option<coffer_proto::primes::Primes>, Outcome> {
        if scheme != Scheme::EcdsaSecp256k1 {
            return Ok(None);
        }
        primes
            .take(node.store())
            .map(Some)
            .ok_or_else(|| Outcome::NotReady {
                reason: "no safe primes ready yet (still generating)".into(),
            })
    };
    let (plan, presigned) = match plan {
        Plan::SignPresigned {
            share,
            item,
            path,
            input,
        } => {
            let s = match item {
                PooledItem::Ecdsa(pre) => match input {
                    SignInput::Preimage(p) => {
                        coffer_proto::presigned::start(job.session, share.party(), *pre, p)
                    }
                    SignInput::Message(_) => {
                        return Some(refuse("ECDSA presignatures sign preimages only"))
                    }
                },
                PooledItem::Frost(nonces) => {
                    let message = input.message(share.scheme());
                    protocol::sign_with_nonces(&share, job.session, *nonces, &message, &path)
                }
            };
            (None, Some(s))
        }
        other => (Some(other), None),
    };
    let started = match (&plan, presigned) {
        (_, Some(s)) => s.map(Started::Signature),
        (None, None) => return Some(refuse("nothing to run")),
        (Some(plan), None) => match plan {
            Plan::Keygen { scheme, params } => {
                let p = match primes_for(*scheme) {
                    Ok(p) => p,
                    Err(not_ready) => return Some(not_ready),
                };
                let me = match PartyIndex::new(me, *params) {
                    Ok(m) => m,
                    Err(e) => return Some(refuse(e.to_string())),
                };
                protocol::keygen(*scheme, job.session, me, *params, p).map(Started::Share)
            }
            Plan::Sign {
                share,
                message,
                path,
                signers,
            } => protocol::sign(share, job.session, signers, message, path).map(Started::Signature),
            Plan::SignIntent {
                share,
                message,
                path,
                signers,
                taproot: true,
                ..
            } => protocol::sign_taproot(share, job.session, signers, message, path)
                .map(Started::Signature),
            Plan::SignIntent {
                share,
                message,
                path,
                signers,
                ..
            } => protocol::sign(share, job.session, signers, message, path).map(Started::Signature),
            Plan::Refresh { share } => {
                let p = match primes_for(share.scheme()) {
                    Ok(p) => p,
                    Err(not_ready) => return Some(not_ready),
                };
                protocol::refresh(share, job.session, p).map(Started::Share)
            }
            Plan::Reshare { share, members } => {
                protocol::reshare_without(share, job.session, members).map(Started::Share)
            }
            Plan::Presign {
                share,
                path,
                signers,
            } => match share.scheme() {
                Scheme::EcdsaSecp256k1 => {
                    protocol::presign(share, job.session, signers, path).map(Started::Presignature)
                }
                _ => protocol::precommit(share, job.session, signers).map(Started::Nonces),
            },
            Plan::SignPresigned { .. } => return Some(refuse("nothing to run")),
        },
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => return Some(aborted(&e)),
    };
    let ctx = Ctx {
        node,
        job,
        me,
        peers: &peers,
        out,
    };
    match started {
        Started::Share(mut s) => {
            let result = ctx.drive(&mut s, &rx)?;
            Some(match (result, &plan) {
                (Ok(share), Some(plan)) => ctx.store_share(plan, share),
                (Ok(_), None) => refuse("nothing to run"),
                (Err(e), _) => aborted(&e),
            })
        }
        Started::Presignature(mut s) => {
            let result = ctx.drive(&mut s, &rx)?;
            Some(match result {
                Ok(pre) => {
                    let path = pre.path().to_string();
                    let signers: Vec<u16> = pre.signers().iter().map(|p| p.get()).collect();
                    ctx.pool(&path, &signers, &pre)
                }
                Err(e) => aborted(&e),
            })
        }
        Started::Nonces(mut s) => {
            let result = ctx.drive(&mut s, &rx)?;
            Some(match result {
                Ok(nonces) => {
                    let signers: Vec<u16> = nonces.signers().iter().map(|p| p.get()).collect();
                    ctx.pool(crate::pool::ANY_PATH, &signers, &nonces)
                }
                Err(e) => aborted(&e),
            })
        }
        Started::Signature(mut s) => {
            let result = ctx.drive(&mut s, &rx)?;
            Some(match (result, &plan) {
                (Ok(sig), Some(Plan::SignIntent { body, input, .. })) => {
                    ctx.finish_intent(body, *input, &sig)
                }
                (Ok(sig), _) => Outcome::Signed {
                    signature: hex::encode(sig.bytes),
                    recovery_id: sig.recovery_id,
                    public_key: hex::encode(&sig.public_key),
                    receipt: None,
                },
                (Err(e), _) => aborted(&e),
            })
        }
    }
}

struct Ctx<'a> {
    node: &'a SignerNode,
    job: &'a Job,
    me: u16,
    peers: &'a HashMap<u16, PublicIdentity>,
    out: &'a UnboundedSender<ToServer>,
}

impl Ctx<'_> {
    /// Pumps messages until the session has an outcome; `None` if cancelled.
    fn drive<O>(
        &self,
        s: &mut BoxedSession<O>,
        rx: &mpsc::Receiver<Input>,
    ) -> Option<Result<O, SessionError>> {
        let identity = self.node.identity();
        let protocol = self.job.protocol();
        loop {
            for m in s.take_outgoing() {
                let recipient = match m.recipient {
                    Some(r) => match self.peers.get(&r.get()) {
                        Some(p) => Some(p),
                        None => continue,
                    },
                    None => None,
                };
                match Envelope::seal(identity, &self.job.key_id, protocol, &m, recipient) {
                    Ok(env) => {
                        let _ = self.out.send(ToServer::Relay(env));
                    }
                    Err(e) => tracing::error!("cannot seal an outgoing message: {e}"),
                }
            }
            if let Some(outcome) = s.take_outcome() {
                return Some(outcome);
            }
            let input = match rx.recv_timeout(IDLE_LIMIT) {
                Ok(i) => i,
                Err(_) => return None,
            };
            let env = match input {
                Input::Cancel => return None,
                Input::Envelope(env) => env,
            };
            let h = &env.header;
            if h.session != self.job.session
                || h.key_id != self.job.key_id
                || h.protocol != protocol
            {
                tracing::warn!("envelope with a foreign session, key or protocol dropped");
                continue;
            }
            let Some(sender) = self.peers.get(&h.sender_party.get()) else {
                tracing::warn!(
                    "envelope from party {} outside the session dropped",
                    h.sender_party
                );
                continue;
            };
            let my_party = s.party();
            let message = match env.open(identity, my_party, sender) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(
                        "envelope claiming to come from {} (party {}) refused: {e}",
                        sender.name,
                        h.sender_party
                    );
                    continue;
                }
            };
            // A refused message leaves the session going; an abort becomes its outcome.
            let _ = s.handle(message);
        }
    }

    /// Seals a pooled item in the store and reports the pool level at its path.
    fn pool<T: serde::Serialize>(&self, path: &str, signers: &[u16], item: &T) -> Outcome {
        let store = self.node.store();
        match crate::pool::add(
            store,
            &self.job.key_id,
            self.job.session,
            path,
            signers,
            item,
        ) {
            Ok(()) => Outcome::Pooled {
                ready: crate::pool::levels(store, &self.job.key_id)
                    .iter()
                    .filter(|(p, _)| p == path)
                    .map(|(_, n)| *n)
                    .sum(),
            },
            Err(e) => Outcome::Aborted {
                reason: format!("could not pool the item: {e}"),
                culprits: vec![],
            },
        }
    }

    /// Records a finished intent signature in the ledger, then reports it with this
    /// signer's receipt signature.
    fn finish_intent(
        &self,
        body: &coffer_policy::ReceiptBody,
        input: u32,
        sig: &Signature,
    ) -> Outcome {
        let output = crate::ledger::SignedOutput {
            signature: hex::encode(sig.bytes),
            recovery_id: sig.recovery_id,
            public_key: hex::encode(&sig.public_key),
        };
        match crate::ledger::Ledger::new(self.node.store()).finish(body, input, output.clone()) {
            Ok(()) => crate::intent_check::signed_outcome(self.node, body, &output),
            Err(e) => Outcome::Aborted {
                reason: format!("signer {} could not record the signature: {e}", self.me),
                culprits: vec![],
            },
        }
    }

    fn store_share(&self, plan: &Plan, share: KeyShare) -> Outcome {
        let public_key = match share.public_key(&DerivationPath::root()) {
            Ok(pk) => hex::encode(pk),
            Err(e) => return aborted(&e),
        };
        let saved = match plan {
            Plan::Keygen { scheme, params } => {
                let (admins, admin_threshold) = match self.node.roster() {
                    Ok(r) => (r.admins, r.admin_threshold),
                    Err(e) => {
                        return Outcome::Aborted {
                            reason: e.to_string(),
                            culprits: vec![],
                        }
                    }
                };
                let meta = KeyMeta {
                    key_id: self.job.key_id.clone(),
                    scheme: *scheme,
                    threshold: params.t(),
                    parties: self.job.parties.iter().map(|(_, k)| *k).collect(),
                    public_key: public_key.clone(),
                    admins,
                    admin_threshold,
                };
                self.node.save_new_key(&meta, &share)
            }
            // Refresh and reshare only stage the new share: it becomes current when the
            // server commits the epoch on every party (phase 2; `crate::epochs`), and the
            // presignatures made from the old share are retired then.
            _ => self.node.stage_share(&self.job.key_id, &share),
        };
        match saved {
            Ok(()) => Outcome::KeyReady {
                scheme: share.scheme(),
                public_key,
                epoch: share.epoch().0,
                chain_code: share.chain_code().ok().map(hex::encode),
            },
            Err(e) => Outcome::Aborted {
                reason: format!("signer {} could not store its share: {e}", self.me),
                culprits: vec![],
            },
        }
    }
}
