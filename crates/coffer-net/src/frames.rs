//! The frames signers and the server exchange over their TLS connection, and their framing:
//! a 4-byte big-endian length, then one CBOR value. The reader is bounded and treats its
//! input as hostile (a fuzz target drives [`decode`]).
//!
//! The server *asks* (a [`Job`]); each signer decides for itself whether to take part, using
//! only what it pinned (roster, key membership) and its own share store. Protocol traffic
//! travels as [`Envelope`]s the server relays but cannot read or forge.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use coffer_proto::ids::SessionId;
use coffer_proto::scheme::Scheme;

use crate::envelope::{Envelope, ProtocolKind};
use crate::freeze::SignedFreezeOrder;
use crate::identity::NodeKey;
use crate::roster::SignedRoster;

/// Largest frame accepted (CGGMP auxiliary-data messages are the largest, a few MiB).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Server to signer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToSigner {
    /// Start taking part in a session.
    Start(Job),
    /// An envelope from a peer.
    Relay(Envelope),
    /// The server gave up on a session (timeout, a party left).
    Cancel {
        /// The session.
        session: SessionId,
        /// Why.
        reason: String,
    },
    /// A roster update; counts only if a quorum of the pinned admins signed it.
    Roster(SignedRoster),
    /// A vault freeze (signed by the server) or unfreeze (signed by an admin quorum); the
    /// signer answers with [`ToServer::FreezeAck`]. The server sends the latest order of
    /// every vault again to a signer that reconnects.
    Freeze(Box<SignedFreezeOrder>),
}

/// Signer to server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToServer {
    /// The signer's state, sent on connect and whenever it changes.
    Status(SignerStatus),
    /// An envelope for peers.
    Relay(Envelope),
    /// This signer's outcome of a session.
    Finished {
        /// The session.
        session: SessionId,
        /// What happened.
        outcome: Outcome,
    },
    /// This signer's answer to a [`ToSigner::Freeze`].
    FreezeAck {
        /// The vault the order named.
        vault_id: String,
        /// The order's sequence number.
        seq: u64,
        /// The sequence now in force on this signer for the vault (the order's own when
        /// accepted; a higher one when the order was stale).
        current_seq: u64,
        /// Why the order was refused (`None`: applied, or already in force).
        refused: Option<String>,
    },
}

/// What a signer reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerStatus {
    /// Sets of CGGMP safe primes ready for key generation or refresh.
    pub primes_ready: u32,
    /// Whether the signer is generating primes now.
    pub primes_generating: bool,
    /// Version of the pinned roster.
    pub roster_version: u64,
    /// Keys this signer holds a share of, with the share's epoch.
    pub keys: Vec<KeyHeld>,
    /// Presignatures pooled per key (ECDSA).
    pub pooled: Vec<Pooled>,
}

/// One key a signer holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeld {
    /// The key id.
    pub key_id: String,
    /// The share's epoch.
    pub epoch: u64,
}

/// Pool level of one key and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pooled {
    /// The key id.
    pub key_id: String,
    /// Derivation path.
    pub path: String,
    /// Items ready.
    pub ready: u32,
}

/// A session the server asks a signer to join.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// Fresh per session; bound into the protocol and every envelope.
    pub session: SessionId,
    /// The key the session is about (new for key generation).
    pub key_id: String,
    /// What to run.
    pub task: Task,
    /// Party index -> signer, for every party of this session.
    pub parties: Vec<(u16, NodeKey)>,
    /// The key's committed epoch as the server knows it. A signer refuses a job on an
    /// existing key whose epoch differs from its own committed share's (a stale coordinator,
    /// or a share restored from before a refresh); signing jobs must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

impl Job {
    /// The protocol an envelope of this job must name.
    pub fn protocol(&self) -> ProtocolKind {
        match self.task {
            Task::Keygen { .. } => ProtocolKind::Keygen,
            // A checkpoint exchanges no envelopes: each signer answers at once.
            Task::Sign { .. }
            | Task::SignPresigned { .. }
            | Task::SignIntent(_)
            | Task::AuditCheckpoint(_)
            | Task::CommitEpoch { .. }
            | Task::AbortEpoch { .. }
            | Task::PruneEpoch { .. }
            | Task::BackupExport(_) => ProtocolKind::Sign,
            Task::Presign { .. } => ProtocolKind::Presign,
            Task::Refresh => ProtocolKind::Refresh,
            Task::Reshare { .. } => ProtocolKind::Reshare,
        }
    }
}

/// The protocol to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Task {
    /// Distributed key generation among all listed parties.
    Keygen {
        /// The scheme.
        scheme: Scheme,
        /// Signing threshold.
        threshold: u16,
    },
    /// Sign `message` (a 32-byte digest for ECDSA and BIP340, the message for Ed25519) under
    /// the child key at `path`. Raw messages are signed only by signers enrolled in dev mode.
    Sign {
        /// The message or digest.
        #[serde(with = "serde_bytes_vec")]
        message: Vec<u8>,
        /// Non-hardened derivation path ("m" or "m/0/7").
        path: String,
    },
    /// Make an ECDSA presignature for the pool; its id is this session's id.
    Presign {
        /// Derivation path it is bound to.
        path: String,
    },
    /// Online signing from pooled material, one round: an ECDSA presignature (bound to
    /// its path; signs a preimage only, which the signers hash) or FROST nonces (any path).
    SignPresigned {
        /// The session that made the pooled item.
        presignature: SessionId,
        /// Derivation path (for ECDSA, the presignature's own).
        path: String,
        /// What is signed.
        input: SignInput,
    },
    /// Refresh every share of the key (new epoch, same public key).
    Refresh,
    /// Reshare among the listed parties only, removing the others (FROST keys).
    Reshare {
        /// The parties that stay.
        members: Vec<u16>,
    },
    /// Sign a transfer intent: each signer checks the initiator's signature, the vault's
    /// admin-signed policy, the approvals and the ledger receipts itself before it joins.
    SignIntent(Box<IntentJob>),
    /// Co-sign the head of an audit chain: each signer checks that the entries extend the
    /// head it co-signed before, and answers at once (no protocol session).
    AuditCheckpoint(Box<CheckpointJob>),
    /// Phase 2 of a refresh or reshare: make the staged share of `epoch` the current one
    /// (the previous file is kept). Answered at once with [`Outcome::EpochState`].
    CommitEpoch {
        /// The staged epoch to commit.
        epoch: u64,
    },
    /// A refresh or reshare failed: drop the staged share of `epoch`; the committed share
    /// stays current. Answered at once with [`Outcome::EpochState`].
    AbortEpoch {
        /// The staged epoch to drop.
        epoch: u64,
    },
    /// Every signer confirmed its commit of `epoch`: delete the older share files.
    /// Answered at once with [`Outcome::EpochState`].
    PruneEpoch {
        /// The committed epoch to keep.
        epoch: u64,
    },
    /// Export this signer's share of the job's key as a backup kit encrypted to the
    /// recovery key an admin-quorum-signed document names for it; answered at once.
    BackupExport(Box<BackupJob>),
}

/// A backup export: the recovery keys (each signer checks the admin signatures against the
/// admins it pinned for the key) and the vault the key belongs to, if known.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupJob {
    /// Which recovery key each signer encrypts to, signed by the admin quorum.
    pub recovery_keys: crate::backup::SignedRecoveryKeys,
    /// The key's vault (bound into the kit).
    pub vault_id: Option<String>,
}

/// An audit chain's entries from a point the signers co-signed before, to be checkpointed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointJob {
    /// The chain's tenant id (or `_platform`).
    pub tenant: String,
    /// The position of the first entry sent (the number of entries before it).
    pub from: u64,
    /// The hash of entry `from - 1` (zeros, hex, when `from` is 0).
    pub prev: String,
    /// The entries from `from` to the chain's head, in order.
    pub entries: Vec<coffer_policy::audit::AuditEntry>,
}

/// Everything a signer needs to decide for itself whether a transfer may be signed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntentJob {
    /// What is signed: the digests of the intent's chain transaction, which each signer
    /// decodes and checks against the intent itself, or [`coffer_policy::Intent::message`]
    /// when the intent carries none; at the intent's path.
    pub intent: coffer_policy::Intent,
    /// The initiator's signature over the intent.
    pub initiator_signature: coffer_policy::Signature,
    /// Approvals collected so far.
    pub approvals: Vec<coffer_policy::Approval>,
    /// The vault's policy, signed by a quorum of the admins the signers pinned.
    pub policy: coffer_policy::SignedPolicy,
    /// The ledger receipt this signing will co-sign (its place in the key's chain).
    pub receipt: coffer_policy::ReceiptBody,
    /// Co-signed receipts before it, back past the policy's longest velocity window.
    pub history: Vec<coffer_policy::Receipt>,
    /// Which of the chain transaction's digests this session signs (the Bitcoin input; 0
    /// for everything else). Each signer computes the digests itself.
    #[serde(default)]
    pub input: u32,
}

/// What a pooled signing job signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInput {
    /// Bytes the signers hash themselves: SHA-256 for ECDSA and BIP340; Ed25519 signs them
    /// as they are.
    Preimage(#[serde(with = "serde_bytes_vec")] Vec<u8>),
    /// What the scheme signs, as given (FROST only; a 32-byte digest for BIP340).
    Message(#[serde(with = "serde_bytes_vec")] Vec<u8>),
}

impl SignInput {
    /// The bytes the scheme signs: the digest for ECDSA and BIP340 preimages.
    pub fn message(&self, scheme: Scheme) -> Vec<u8> {
        use sha2::Digest;
        match (self, scheme) {
            (SignInput::Preimage(p), Scheme::Ed25519) => p.clone(),
            (SignInput::Preimage(p), _) => sha2::Sha256::digest(p).to_vec(),
            (SignInput::Message(m), _) => m.clone(),
        }
    }
}

/// A signer's result of one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Key generation or refresh finished: the signer stored its share.
    KeyReady {
        /// Scheme.
        scheme: Scheme,
        /// The group public key (hex, Coffer's encoding).
        public_key: String,
        /// The epoch stored.
        epoch: u64,
        /// The group key's chain code (hex; public), for deriving child public keys.
        #[serde(default)]
        chain_code: Option<String>,
    },
    /// Signing finished; the signature passed the signer's own verification.
    Signed {
        /// 64 bytes (hex).
        signature: String,
        /// ECDSA recovery id.
        recovery_id: Option<u8>,
        /// The child public key it verifies under (hex).
        public_key: String,
        /// For an intent: this signer's signature over the job's ledger receipt (hex).
        #[serde(default)]
        receipt: Option<String>,
    },
    /// Presignatures were added to the pool.
    Pooled {
        /// Items now ready.
        ready: u32,
    },
    /// The signer refused to take part (not a member, not pinned, not allowed).
    Refused {
        /// Why.
        reason: String,
    },
    /// The protocol aborted.
    Aborted {
        /// Why.
        reason: String,
        /// Party indices the protocol blamed (empty when it cannot say).
        culprits: Vec<u16>,
    },
    /// The signer is not ready (ECDSA primes still being generated).
    NotReady {
        /// Why.
        reason: String,
    },
    /// The signer co-signed an audit checkpoint.
    Checkpointed {
        /// The entries the checkpoint covers.
        entries: u64,
        /// The chain's head after them (hex).
        head: String,
        /// The signer's node-key signature over
        /// [`coffer_policy::audit::checkpoint_bytes`] (hex).
        signature: String,
    },
    /// The answer to a commit, abort or prune: the key's epochs on this signer now.
    EpochState {
        /// The committed epoch (the share this signer signs with).
        committed: u64,
        /// A staged epoch still waiting for its commit.
        staged: Option<u64>,
    },
    /// The signer's backup kit of its share ([`crate::backup::Kit`], JSON).
    BackupKit {
        /// The kit file's text.
        kit: String,
    },
}

mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A frame longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge {
        /// Announced length.
        len: usize,
    },
    /// Bytes that are not a frame of this version.
    #[error("frame does not decode: {0}")]
    Decode(&'static str),
}

/// A frame's body codec. Envelopes (nearly all traffic) travel as their own wire form
/// behind a one-byte tag; the other frames as CBOR behind another tag.
pub trait Frame: Sized {
    /// The envelope, if this frame relays one.
    fn as_relay(&self) -> Option<&Envelope>;
    /// Wraps an envelope.
    fn relay(env: Envelope) -> Self;
}

impl Frame for ToSigner {
    fn as_relay(&self) -> Option<&Envelope> {
        match self {
            ToSigner::Relay(e) => Some(e),
            _ => None,
        }
    }
    fn relay(env: Envelope) -> Self {
        ToSigner::Relay(env)
    }
}

impl Frame for ToServer {
    fn as_relay(&self) -> Option<&Envelope> {
        match self {
            ToServer::Relay(e) => Some(e),
            _ => None,
        }
    }
    fn relay(env: Envelope) -> Self {
        ToServer::Relay(env)
    }
}

const TAG_CBOR: u8 = 0;
const TAG_ENVELOPE: u8 = 1;

/// Encodes one frame body (without the length prefix).
pub fn encode<T: Serialize + Frame>(frame: &T) -> Result<Vec<u8>, FrameError> {
    let out = match frame.as_relay() {
        Some(env) => {
            let mut out = vec![TAG_ENVELOPE];
            out.extend_from_slice(&env.to_bytes());
            out
        }
        None => {
            let mut out = vec![TAG_CBOR];
            ciborium::into_writer(frame, &mut out)
                .map_err(|_| FrameError::Decode("cannot encode"))?;
            out
        }
    };
    if out.len() > MAX_FRAME {
        return Err(FrameError::TooLarge { len: out.len() });
    }
    Ok(out)
}

/// Decodes one frame body. Hostile input: never panics, bounded by the CBOR decoder's
/// recursion limit, the envelope decoder's checks and the frame size.
pub fn decode<T: DeserializeOwned + Frame>(bytes: &[u8]) -> Result<T, FrameError> {
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge { len: bytes.len() });
    }
    match bytes.split_first() {
        Some((&TAG_ENVELOPE, rest)) => Envelope::from_bytes(rest)
            .map(T::relay)
            .map_err(|_| FrameError::Decode("not an envelope of this version")),
        Some((&TAG_CBOR, rest)) => ciborium::from_reader(rest)
            .map_err(|_| FrameError::Decode("not a frame of this version")),
        _ => Err(FrameError::Decode("unknown frame tag")),
    }
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize + Frame>(
    w: &mut W,
    frame: &T,
) -> Result<(), FrameError> {
    let body = encode(frame)?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge { len: body.len() })?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned + Frame>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_is_refused() {
        let job = ToSigner::Start(Job {
            session: SessionId::random(),
            key_id: "k-1".into(),
            task: Task::Sign {
                message: vec![7; 32],
                path: "m/0/1".into(),
            },
            parties: vec![(0, NodeKey([1; 32])), (2, NodeKey([2; 32]))],
            epoch: Some(3),
        });
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &job).await.unwrap();
        let back: ToSigner = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(format!("{back:?}"), format!("{job:?}"));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_frame::<_, ToSigner>(&mut b).await,
            Err(FrameError::TooLarge { .. })
        ));
        drop(a);
    }

    #[test]
    fn epoch_tasks_round_trip_and_a_job_without_epoch_still_decodes() {
        for task in [
            Task::CommitEpoch { epoch: 4 },
            Task::AbortEpoch { epoch: 4 },
            Task::PruneEpoch { epoch: 4 },
        ] {
            let job = ToSigner::Start(Job {
                session: SessionId::random(),
                key_id: "k-1".into(),
                task,
                parties: vec![(1, NodeKey([1; 32]))],
                epoch: None,
            });
            let back: ToSigner = decode(&encode(&job).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{job:?}"));
        }
        let state = ToServer::Finished {
            session: SessionId::random(),
            outcome: Outcome::EpochState {
                committed: 4,
                staged: Some(5),
            },
        };
        let back: ToServer = decode(&encode(&state).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{state:?}"));
        // A job encoded before jobs carried an epoch (no `epoch` field) decodes as `None`.
        #[derive(Serialize)]
        struct OldJob {
            session: SessionId,
            key_id: String,
            task: Task,
            parties: Vec<(u16, NodeKey)>,
        }
        let mut bytes = vec![TAG_CBOR];
        let old = OldJob {
            session: SessionId::random(),
            key_id: "k-1".into(),
            task: Task::Refresh,
            parties: vec![],
        };
        #[derive(Serialize)]
        enum OldToSigner {
            Start(OldJob),
        }
        ciborium::into_writer(&OldToSigner::Start(old), &mut bytes).unwrap();
        match decode::<ToSigner>(&bytes).unwrap() {
            ToSigner::Start(job) => assert_eq!(job.epoch, None),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn large_envelopes_cross_as_frames() {
        let me = crate::Identity::generate("a");
        let m = coffer_proto::message::Message {
            session: SessionId::random(),
            sender: coffer_proto::ids::PartyIndex::unchecked(0),
            recipient: None,
            round: 3,
            payload: vec![0xAB; 3 * 1024 * 1024],
        };
        let env = Envelope::seal(&me, "k-1", ProtocolKind::Keygen, &m, None).unwrap();
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, &ToServer::Relay(env)).await.unwrap();
        });
        let back: ToServer = read_frame(&mut b).await.unwrap().unwrap();
        writer.await.unwrap();
        match back {
            ToServer::Relay(e) => {
                let opened = e.open(
                    &me,
                    coffer_proto::ids::PartyIndex::unchecked(1),
                    &me.public(),
                );
                assert_eq!(opened.unwrap().payload.len(), 3 * 1024 * 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode::<ToSigner>(&bytes);
            let _ = decode::<ToServer>(&bytes);
        }
    }
}
