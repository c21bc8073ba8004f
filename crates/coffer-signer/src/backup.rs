//! A signer's side of share backups: making its kit ([`make_kit`], answering
//! [`Task::BackupExport`](coffer_net::frames::Task::BackupExport)), reading a kit back with
//! its recovery key ([`open_kit`]) and installing it into a signer data directory
//! ([`restore`]). The kit's format and encryption are [`coffer_net::backup`]'s.
//!
//! # What a kit holds
//!
//! The encrypted part is everything needed to bring a lost signer back with the *same*
//! identity (the roster pins it, and the key's party index belongs to it):
//!
//! ```text
//! "CFBK" | version 1 | u32 len | identity secret | u32 len | JSON { meta, roster }
//!        | u32 len | share secret (coffer-proto's versioned share encoding)
//! ```
//!
//! So the holder of one recovery key can act as that one signer (its share and its node
//! key); it takes a threshold of recovery keys, held by different people, to act as the
//! key. Before encrypting, the signer checks that a quorum of the admins it pinned for the
//! key signed the recovery-key document, and uses the key it names for itself.
//!
//! # Restoring
//!
//! Everything is checked before anything is written: the kit's signature, that it opens,
//! that the identity inside is the signer the header names, that the share decodes, is the
//! header's key, party and epoch, and that the key metadata and roster agree with both.
//! Into an empty directory the restore creates the signer's store; into an existing one it
//! requires the same identity and refuses a kit whose epoch is not newer than the share the
//! store holds (rollback).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use coffer_net::backup::{
    Kit, KitError, KitHeader, RecoveryKeysError, RecoverySecret, KIT_VERSION,
};
use coffer_net::frames::{BackupJob, Outcome};
use coffer_net::roster::SignedRoster;
use coffer_net::{Identity, NodeKey};
use coffer_proto::share::KeyShare;

use crate::keysource::KeySource;
use crate::node::{KeyMeta, NodeError, SignerNode};

const MAGIC: &[u8; 4] = b"CFBK";
const SECRET_VERSION: u8 = 1;

/// Why a kit could not be made, opened or restored. Never carries secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The kit itself failed (format, signature, wrong recovery key, decryption).
    #[error(transparent)]
    Kit(#[from] KitError),
    /// The recovery-key document was refused.
    #[error(transparent)]
    RecoveryKeys(#[from] RecoveryKeysError),
    /// The kit decrypted, but what it holds is malformed or disagrees with its header.
    #[error("backup kit contents are inconsistent: {0}")]
    Contents(&'static str),
    /// The signer's state failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The data directory holds another signer.
    #[error("{}: holds signer {found}, but the kit is signer {expected}'s", dir.display())]
    OtherSigner {
        /// The data directory.
        dir: PathBuf,
        /// The kit's signer.
        expected: String,
        /// The directory's signer.
        found: String,
    },
    /// The store already holds this share or a newer one.
    #[error("refusing to restore key {key_id} at epoch {offered}: this signer holds epoch {current} (a kit may only move a share forward)")]
    Rollback {
        /// The key.
        key_id: String,
        /// The store's epoch.
        current: u64,
        /// The kit's epoch.
        offered: u64,
    },
}

/// What a kit holds, decrypted and checked against its header.
pub struct Restored {
    /// The kit's header.
    pub header: KitHeader,
    /// The signer's identity.
    pub identity: Identity,
    /// The roster the signer had pinned.
    pub roster: SignedRoster,
    /// The key's membership.
    pub meta: KeyMeta,
    /// The share.
    pub share: KeyShare,
}

impl core::fmt::Debug for Restored {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Restored")
            .field("header", &self.header)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicPart {
    meta: KeyMeta,
    roster: SignedRoster,
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) -> Result<(), BackupError> {
    let len = u32::try_from(part.len()).map_err(|_| BackupError::Contents("part too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
    Ok(())
}

fn take_part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], BackupError> {
    let (len, r) = rest
        .split_at_checked(4)
        .ok_or(BackupError::Contents("truncated"))?;
    let len = u32::from_be_bytes(
        len.try_into()
            .map_err(|_| BackupError::Contents("truncated"))?,
    );
    let len = usize::try_from(len).map_err(|_| BackupError::Contents("truncated"))?;
    let (part, r) = r
        .split_at_checked(len)
        .ok_or(BackupError::Contents("truncated"))?;
    *rest = r;
    Ok(part)
}

fn encode_secret(
    identity: &Identity,
    meta: &KeyMeta,
    roster: &SignedRoster,
    share: &KeyShare,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let id = identity
        .to_secret_bytes()
        .map_err(|_| BackupError::Contents("identity does not encode"))?;
    let public = serde_json::to_vec(&PublicPart {
        meta: meta.clone(),
        roster: roster.clone(),
    })
    .map_err(|_| BackupError::Contents("metadata does not encode"))?;
    let share = share
        .encode_secret()
        .map_err(|_| BackupError::Contents("share does not encode"))?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        MAGIC.len() + 13 + id.len() + public.len() + share.len(),
    ));
    out.extend_from_slice(MAGIC);
    out.push(SECRET_VERSION);
    put_part(&mut out, &id)?;
    put_part(&mut out, &public)?;
    put_part(&mut out, &share)?;
    Ok(out)
}

/// Makes this signer's kit of `key_id` for `job` (a [`Outcome::BackupKit`]), or refuses.
pub(crate) fn answer(node: &SignerNode, key_id: &str, job: &BackupJob) -> Outcome {
    match make_kit(node, key_id, job, now()) {
        Ok(kit) => match kit.to_bytes().map(String::from_utf8) {
            Ok(Ok(text)) => Outcome::BackupKit { kit: text },
            _ => Outcome::Refused {
                reason: "backup kit does not encode".into(),
            },
        },
        Err(e) => Outcome::Refused {
            reason: format!("backup of key {key_id}: {e}"),
        },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Builds this signer's kit of `key_id`, encrypted to the recovery key that the
/// admin-signed document in `job` names for it (checked against the admins pinned for the
/// key).
pub fn make_kit(
    node: &SignerNode,
    key_id: &str,
    job: &BackupJob,
    created_at: i64,
) -> Result<Kit, BackupError> {
    let meta = node.key_meta(key_id)?;
    let (admins, threshold) = node.key_admins(&meta)?;
    let me = node.identity().node_key();
    let recovery_key = job
        .recovery_keys
        .recovery_key_for(key_id, &me, &admins, threshold)?;
    let share = node.share(key_id)?;
    let header = share
        .header()
        .map_err(|_| BackupError::Contents("the share has no public description"))?;
    let kit_header = KitHeader {
        version: KIT_VERSION,
        key_id: key_id.to_string(),
        vault_id: job.vault_id.clone(),
        scheme: share.scheme(),
        party_index: share.party().get(),
        epoch: share.epoch().0,
        group_public_key: header.public_key,
        signer: me,
        recovery_key,
        created_at,
    };
    let roster = node.signed_roster()?;
    let secret = encode_secret(node.identity(), &meta, &roster, &share)?;
    Ok(Kit::seal(node.identity(), kit_header, &secret)?)
}

/// Opens `kit` with `recovery` and checks that what it holds is what its header says.
pub fn open_kit(kit: &Kit, recovery: &RecoverySecret) -> Result<Restored, BackupError> {
    let plain = kit.open(recovery)?;
    let rest = plain
        .strip_prefix(MAGIC.as_slice())
        .ok_or(BackupError::Contents("not a share backup"))?;
    let (&version, mut rest) = rest
        .split_first()
        .ok_or(BackupError::Contents("truncated"))?;
    if version != SECRET_VERSION {
        return Err(BackupError::Contents("unsupported contents version"));
    }
    let id = take_part(&mut rest)?;
    let public = take_part(&mut rest)?;
    let share = take_part(&mut rest)?;
    if !rest.is_empty() {
        return Err(BackupError::Contents("trailing bytes"));
    }
    let identity = Identity::from_secret_bytes(id)
        .map_err(|_| BackupError::Contents("identity does not decode"))?;
    let PublicPart { meta, roster } = serde_json::from_slice(public)
        .map_err(|_| BackupError::Contents("metadata does not decode"))?;
    let share = KeyShare::decode_secret(share)
        .map_err(|_| BackupError::Contents("share does not decode"))?;
    let h = &kit.header;
    if identity.node_key() != h.signer {
        return Err(BackupError::Contents(
            "the identity inside is not the signer the header names",
        ));
    }
    let sh = share
        .header()
        .map_err(|_| BackupError::Contents("the share has no public description"))?;
    let checks: [(bool, &'static str); 9] = [
        (
            sh.public_key == h.group_public_key,
            "share's group public key differs from the header's",
        ),
        (
            sh.scheme == h.scheme,
            "share's scheme differs from the header's",
        ),
        (
            sh.party_index == h.party_index,
            "share's party index differs from the header's",
        ),
        (
            sh.epoch.0 == h.epoch,
            "share's epoch differs from the header's",
        ),
        (meta.key_id == h.key_id, "metadata names another key"),
        (
            meta.public_key == h.group_public_key,
            "metadata's public key differs",
        ),
        (meta.scheme == h.scheme, "metadata's scheme differs"),
        (
            meta.parties.get(usize::from(h.party_index)) == Some(&h.signer),
            "metadata gives the party index to another signer",
        ),
        (
            roster.roster.signer(&h.signer).is_some(),
            "the roster inside does not list the signer",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(BackupError::Contents(what));
    }
    roster
        .check_for_enrolment()
        .map_err(|_| BackupError::Contents("the roster inside lacks its admin quorum"))?;
    Ok(Restored {
        header: kit.header.clone(),
        identity,
        roster,
        meta,
        share,
    })
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// The key restored.
    pub key_id: String,
    /// Its epoch.
    pub epoch: u64,
    /// The signer.
    pub signer: NodeKey,
    /// Whether a new store was created (an empty directory) or an existing one updated.
    pub created_store: bool,
}

/// Installs the share in `kit` into the signer data directory `dir` (see the module docs).
/// Nothing is written unless every check passed.
pub fn restore(
    dir: &Path,
    source: &dyn KeySource,
    kit: &Kit,
    recovery: &RecoverySecret,
) -> Result<RestoreReport, BackupError> {
    let r = open_kit(kit, recovery)?;
    let key_id = r.header.key_id.clone();
    let epoch = r.header.epoch;
    let signer = r.header.signer;
    let exists = dir.join("store").exists();
    if exists {
        let node = SignerNode::open(dir, source)?;
        let found = node.identity().node_key();
        if found != signer {
            return Err(BackupError::OtherSigner {
                dir: dir.to_path_buf(),
                expected: signer.to_hex(),
                found: found.to_hex(),
            });
        }
        if let Some((_, current)) = node
            .store()
            .list()
            .map_err(NodeError::from)?
            .into_iter()
            .find(|(k, _)| *k == key_id)
        {
            if current >= epoch {
                return Err(BackupError::Rollback {
                    key_id,
                    current,
                    offered: epoch,
                });
            }
        }
        if node.roster().is_err() {
            node.enrol(r.roster)?;
        }
        match node.key_meta(&key_id) {
            Ok(_) => node.save_share(&key_id, &r.share)?,
            Err(_) => node.save_new_key(&r.meta, &r.share)?,
        }
    } else {
        SignerNode::init_with_identity(dir, r.identity, source)?;
        let node = SignerNode::open(dir, source)?;
        node.enrol(r.roster)?;
        node.save_new_key(&r.meta, &r.share)?;
    }
    Ok(RestoreReport {
        key_id,
        epoch,
        signer,
        created_store: !exists,
    })
}
