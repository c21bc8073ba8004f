//! Frame bodies between the server and the signers (hostile bytes from either side of the
//! TLS connection): never panic, and whatever decodes re-encodes to a body that decodes
//! again and is then stable (the second encoding equals the first).
//!
//! Raw bytes rarely form a frame in a short run, so each input also builds well-formed frames
//! of every kind from its bytes: those must encode, decode (relayed envelopes whenever the
//! envelope decoder accepts them) and round trip, and so must a one-byte edit of them.
#![no_main]

use coffer_net::envelope::{Body, Envelope, EnvelopeHeader, ProtocolKind};
use coffer_net::frames::{
    decode, encode, CheckpointJob, Frame, IntentJob, Job, KeyHeld, Outcome, Pooled, SignInput,
    SignerStatus, Task, ToServer, ToSigner,
};
use coffer_policy::{
    Amount, Intent, IntentKind, Policy, PublicKey, ReceiptBody, Signature, SignedPolicy,
};
use coffer_net::roster::{AdminSignature, Roster, SignedRoster};
use coffer_net::{NodeKey, PublicIdentity, SealKey};
use coffer_proto::{PartyIndex, Scheme, SessionId};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: Serialize + DeserializeOwned + Frame>(data: &[u8]) {
    let Ok(frame) = decode::<T>(data) else { return };
    let bytes = encode(&frame).expect("a decoded frame re-encodes");
    let again = decode::<T>(&bytes).expect("a re-encoded frame decodes");
    assert_eq!(
        encode(&again).expect("re-encodes"),
        bytes,
        "encoding is not stable"
    );
}

/// A built frame: it encodes, decodes exactly when it is not an envelope the envelope
/// decoder refuses, and it and a one-byte edit of it round trip.
fn check_built<T: Serialize + DeserializeOwned + Frame>(
    u: &mut Unstructured,
    frame: &T,
) -> Result<()> {
    let bytes = encode(frame).expect("a built frame encodes");
    let valid = frame
        .as_relay()
        .is_none_or(|e| Envelope::from_bytes(&e.to_bytes()).is_ok());
    assert_eq!(
        decode::<T>(&bytes).is_ok(),
        valid,
        "a well-formed frame does not decode"
    );
    round_trip::<T>(&bytes);
    round_trip::<T>(&edit(u, bytes)?);
    Ok(())
}

/// Overwrites, inserts or removes one byte, or truncates.
fn edit(u: &mut Unstructured, mut b: Vec<u8>) -> Result<Vec<u8>> {
    if b.is_empty() {
        return Ok(b);
    }
    let at = u.choose_index(b.len())?;
    match u.int_in_range(0..=3u8)? {
        0 => b[at] = u.arbitrary()?,
        1 => b.insert(at, u.arbitrary()?),
        2 => _ = b.remove(at),
        _ => b.truncate(at),
    }
    Ok(b)
}

fn small_vec<T>(
    u: &mut Unstructured,
    max: usize,
    f: impl Fn(&mut Unstructured) -> Result<T>,
) -> Result<Vec<T>> {
    (0..u.int_in_range(0..=max)?).map(|_| f(u)).collect()
}

fn name(u: &mut Unstructured) -> Result<String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
    let len = u.int_in_range(1..=20)?;
    (0..len)
        .map(|_| u.choose(CHARS).map(|c| char::from(*c)))
        .collect()
}

fn bytes(u: &mut Unstructured) -> Result<Vec<u8>> {
    let len = u.int_in_range(0..=64)?;
    Ok(u.bytes(len)?.to_vec())
}

fn session(u: &mut Unstructured) -> Result<SessionId> {
    Ok(SessionId::from_bytes(u.arbitrary()?))
}

fn party(u: &mut Unstructured) -> Result<PartyIndex> {
    Ok(PartyIndex::unchecked(u.int_in_range(0..=17)?))
}

fn envelope(u: &mut Unstructured) -> Result<Envelope> {
    let header = EnvelopeHeader {
        session: session(u)?,
        key_id: name(u)?,
        protocol: *u.choose(&ProtocolKind::ALL)?,
        round: u.arbitrary()?,
        sender: NodeKey(u.arbitrary()?),
        sender_party: party(u)?,
        recipient: if u.arbitrary()? {
            Some((NodeKey(u.arbitrary()?), party(u)?))
        } else {
            None
        },
    };
    let body = if u.arbitrary()? {
        Body::Sealed {
            encapped_key: u.arbitrary()?,
            ciphertext: bytes(u)?,
        }
    } else {
        Body::Broadcast(bytes(u)?)
    };
    Ok(Envelope {
        header,
        body,
        signature: u.arbitrary()?,
    })
}

/// A transfer job with arbitrary fields (its signatures need not verify: the frame codec
/// carries them; the signer's checks refuse them).
fn intent_job(u: &mut Unstructured) -> Result<IntentJob> {
    let intent = Intent {
        tenant: u.arbitrary()?,
        vault_id: u.arbitrary()?,
        key_id: u.arbitrary()?,
        request_id: u.arbitrary()?,
        wallet_id: u.arbitrary()?,
        path: u.arbitrary()?,
        asset: u.arbitrary()?,
        amount: Amount(u.arbitrary()?),
        destination: u.arbitrary()?,
        memo: u.arbitrary()?,
        initiator: PublicKey(u.arbitrary()?),
        created_at: u.arbitrary()?,
        expires_at: u.arbitrary()?,
        transaction: u.arbitrary()?,
        kind: *u.choose(&[IntentKind::Transfer, IntentKind::Eip712, IntentKind::Eip191])?,
    };
    let receipt = ReceiptBody::for_intent(&intent, u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
    Ok(IntentJob {
        initiator_signature: Signature(u.arbitrary()?),
        approvals: vec![],
        policy: SignedPolicy {
            policy: Policy {
                vault_id: u.arbitrary()?,
                version: u.arbitrary()?,
                groups: Default::default(),
                initiator_groups: vec![],
                rules: vec![],
            },
            signatures: vec![],
        },
        receipt,
        history: vec![],
        input: u.arbitrary()?,
        intent,
    })
}

fn task(u: &mut Unstructured) -> Result<Task> {
    Ok(match u.int_in_range(0..=10u8)? {
        8 => Task::CommitEpoch {
            epoch: u.arbitrary()?,
        },
        9 => Task::AbortEpoch {
            epoch: u.arbitrary()?,
        },
        10 => Task::PruneEpoch {
            epoch: u.arbitrary()?,
        },
        6 => Task::SignIntent(Box::new(intent_job(u)?)),
        7 => Task::AuditCheckpoint(Box::new(CheckpointJob {
            tenant: u.arbitrary()?,
            from: u.arbitrary()?,
            prev: u.arbitrary()?,
            entries: vec![],
        })),
        0 => Task::Keygen {
            scheme: *u.choose(&Scheme::ALL)?,
            threshold: u.arbitrary()?,
        },
        1 => Task::Sign {
            message: bytes(u)?,
            path: u.arbitrary()?,
        },
        2 => Task::Presign {
            path: u.arbitrary()?,
        },
        3 => Task::SignPresigned {
            presignature: session(u)?,
            path: u.arbitrary()?,
            input: if u.arbitrary()? {
                SignInput::Preimage(bytes(u)?)
            } else {
                SignInput::Message(bytes(u)?)
            },
        },
        4 => Task::Refresh,
        _ => Task::Reshare {
            members: small_vec(u, 8, |u| u.arbitrary())?,
        },
    })
}

fn roster(u: &mut Unstructured) -> Result<SignedRoster> {
    let roster = Roster {
        version: u.arbitrary()?,
        signers: small_vec(u, 4, |u| {
            Ok(PublicIdentity {
                name: u.arbitrary()?,
                node_key: NodeKey(u.arbitrary()?),
                seal_key: SealKey(u.arbitrary()?),
            })
        })?,
        admins: small_vec(u, 3, |u| Ok(NodeKey(u.arbitrary()?)))?,
        admin_threshold: u.arbitrary()?,
        server: NodeKey(u.arbitrary()?),
        dev_mode: u.arbitrary()?,
    };
    let signatures = small_vec(u, 3, |u| {
        Ok(AdminSignature {
            admin: NodeKey(u.arbitrary()?),
            signature: u.arbitrary()?,
        })
    })?;
    Ok(SignedRoster { roster, signatures })
}

fn to_signer(u: &mut Unstructured) -> Result<ToSigner> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => ToSigner::Start(Job {
            session: session(u)?,
            key_id: name(u)?,
            task: task(u)?,
            parties: small_vec(u, 4, |u| Ok((u.arbitrary()?, NodeKey(u.arbitrary()?))))?,
            epoch: u.arbitrary()?,
        }),
        1 => ToSigner::Relay(envelope(u)?),
        2 => ToSigner::Cancel {
            session: session(u)?,
            reason: u.arbitrary()?,
        },
        _ => ToSigner::Roster(roster(u)?),
    })
}

fn outcome(u: &mut Unstructured) -> Result<Outcome> {
    Ok(match u.int_in_range(0..=7u8)? {
        7 => Outcome::EpochState {
            committed: u.arbitrary()?,
            staged: u.arbitrary()?,
        },
        6 => Outcome::Checkpointed {
            entries: u.arbitrary()?,
            head: u.arbitrary()?,
            signature: u.arbitrary()?,
        },
        0 => Outcome::KeyReady {
            scheme: *u.choose(&Scheme::ALL)?,
            public_key: u.arbitrary()?,
            epoch: u.arbitrary()?,
            chain_code: u.arbitrary()?,
        },
        1 => Outcome::Signed {
            signature: u.arbitrary()?,
            recovery_id: u.arbitrary()?,
            public_key: u.arbitrary()?,
            receipt: u.arbitrary()?,
        },
        2 => Outcome::Pooled {
            ready: u.arbitrary()?,
        },
        3 => Outcome::Refused {
            reason: u.arbitrary()?,
        },
        4 => Outcome::Aborted {
            reason: u.arbitrary()?,
            culprits: small_vec(u, 4, |u| u.arbitrary())?,
        },
        _ => Outcome::NotReady {
            reason: u.arbitrary()?,
        },
    })
}

fn to_server(u: &mut Unstructured) -> Result<ToServer> {
    Ok(match u.int_in_range(0..=2u8)? {
        0 => ToServer::Status(SignerStatus {
            primes_ready: u.arbitrary()?,
            primes_generating: u.arbitrary()?,
            roster_version: u.arbitrary()?,
            keys: small_vec(u, 3, |u| {
                Ok(KeyHeld {
                    key_id: name(u)?,
                    epoch: u.arbitrary()?,
                })
            })?,
            pooled: small_vec(u, 3, |u| {
                Ok(Pooled {
                    key_id: name(u)?,
                    path: u.arbitrary()?,
                    ready: u.arbitrary()?,
                })
            })?,
        }),
        1 => ToServer::Relay(envelope(u)?),
        _ => ToServer::Finished {
            session: session(u)?,
            outcome: outcome(u)?,
        },
    })
}

fn built(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    if u.arbitrary()? {
        let f = to_signer(&mut u)?;
        check_built(&mut u, &f)
    } else {
        let f = to_server(&mut u)?;
        check_built(&mut u, &f)
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ToSigner>(data);
    round_trip::<ToServer>(data);
    let _ = built(data);
});
