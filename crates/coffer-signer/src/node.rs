//! A signer's own state on its own disk: its identity, the roster it pinned at enrolment,
//! and, per key, the membership it took part in (which signer holds which party index) next
//! to its encrypted share. Every decision about a job is made against this state, never
//! against what the server says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use coffer_net::frames::{KeyHeld, SignerStatus};
use coffer_net::freeze::{FreezeError, FreezeKind, SignedFreezeOrder};
use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::{Identity, NodeKey, PublicIdentity};
use coffer_proto::scheme::Scheme;
use coffer_proto::share::KeyShare;

use crate::keysource::KeySource;
use crate::store::{ShareStore, StoreError};

const IDENTITY_BLOB: &str = "identity";
const ROSTER_BLOB: &str = "roster";
const FREEZE_BLOB: &str = "freeze";

/// The latest freeze or unfreeze order this signer accepted, per vault (sealed in the store
/// as one blob, so it survives restarts).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FreezeBook {
    vaults: BTreeMap<String, SignedFreezeOrder>,
}

/// A freeze in force on one of this signer's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frozen {
    /// The vault frozen.
    pub vault_id: String,
    /// The order's sequence number.
    pub seq: u64,
    /// The reason it gives.
    pub reason: String,
}

/// What accepting an order did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeApplied {
    /// The order is now in force.
    Applied,
    /// The very same order was already in force (a re-send after a reconnect).
    AlreadyInForce,
}

/// What a signer remembers about a key besides its share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMeta {
    /// The key id.
    pub key_id: String,
    /// The scheme.
    pub scheme: Scheme,
    /// Signing threshold.
    pub threshold: u16,
    /// Party index `i` is held by `parties[i]`.
    pub parties: Vec<NodeKey>,
    /// Group public key (hex).
    pub public_key: String,
    /// Admin keys pinned when the key was made: a quorum of them signs the vault's policy
    /// (empty for keys made before policies existed: the pinned roster's admins then).
    #[serde(default)]
    pub admins: Vec<NodeKey>,
    /// How many admin signatures a policy needs.
    #[serde(default)]
    pub admin_threshold: u16,
}

/// Why the signer's state could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The share store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory holds no identity (run `coffer signer init`).
    #[error("{0}: no signer identity here (run `coffer signer init --data DIR` first)")]
    NotInitialized(PathBuf),
    /// The signer has not pinned a roster yet (run `coffer signer enrol`).
    #[error("this signer is not enrolled (run `coffer signer enrol --data DIR --roster FILE`)")]
    NotEnrolled,
    /// A roster was refused.
    #[error("roster refused: {0}")]
    Roster(String),
    /// Stored data does not decode.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which item.
        what: &'static str,
    },
    /// The presignature pool failed.
    #[error("presignature pool: {0}")]
    Pool(String),
    /// No share for this key.
    #[error("no share of key {0} on this signer")]
    NoShare(String),
    /// A freeze or unfreeze order was refused.
    #[error("freeze order refused: {0}")]
    Freeze(#[from] FreezeError),
}

/// The signer's state.
pub struct SignerNode {
    dir: PathBuf,
    store: ShareStore,
    identity: Identity,
    roster: RwLock<Option<SignedRoster>>,
    /// Serializes freeze-order updates (read, check, write of one blob).
    freeze_lock: Mutex<()>,
}

impl core::fmt::Debug for SignerNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SignerNode")
            .field("dir", &self.dir)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

fn meta_blob(key_id: &str) -> String {
    format!("meta-{key_id}")
}

impl SignerNode {
    /// Creates a signer in `dir`: the encrypted store and a fresh identity. Returns the
    /// public identity to hand to the admins who build the roster.
    pub fn init(
        dir: &Path,
        name: &str,
        source: &dyn KeySource,
    ) -> Result<PublicIdentity, NodeError> {
        Self::init_with_identity(dir, Identity::generate(name), source)
    }

    /// Creates a signer in `dir` with an existing identity (restoring a lost signer's disk
    /// from its backup kit).
    pub fn init_with_identity(
        dir: &Path,
        identity: Identity,
        source: &dyn KeySource,
    ) -> Result<PublicIdentity, NodeError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let store = ShareStore::create(&store_dir(dir), source)?;
        let secret = identity
            .to_secret_bytes()
            .map_err(|_| NodeError::Corrupt { what: "identity" })?;
        store.put_blob(IDENTITY_BLOB, &secret)?;
        Ok(identity.public())
    }

    /// Opens the signer in `dir`.
    pub fn open(dir: &Path, source: &dyn KeySource) -> Result<Self, NodeError> {
        if !store_dir(dir).exists() {
            return Err(NodeError::NotInitialized(dir.to_path_buf()));
        }
        let store = ShareStore::open(&store_dir(dir), source)?;
        let secret = store
            .get_blob(IDENTITY_BLOB)?
            .ok_or_else(|| NodeError::NotInitialized(dir.to_path_buf()))?;
        let identity = Identity::from_secret_bytes(&secret)
            .map_err(|_| NodeError::Corrupt { what: "identity" })?;
        let roster = match store.get_blob(ROSTER_BLOB)? {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|_| NodeError::Corrupt { what: "roster" })?,
            ),
            None => None,
        };
        Ok(SignerNode {
            dir: dir.to_path_buf(),
            store,
            identity,
            roster: RwLock::new(roster),
            freeze_lock: Mutex::new(()),
        })
    }

    /// The signer's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The share store.
    pub fn store(&self) -> &ShareStore {
        &self.store
    }

    /// The pinned roster.
    pub fn roster(&self) -> Result<Roster, NodeError> {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|r| r.roster.clone())
            .ok_or(NodeError::NotEnrolled)
    }

    /// The pinned roster with its admin signatures.
    pub fn signed_roster(&self) -> Result<SignedRoster, NodeError> {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(NodeError::NotEnrolled)
    }

    fn check_names_me(&self, roster: &Roster) -> Result<(), NodeError> {
        let me = self.identity.public();
        match roster.signer(&me.node_key) {
            Some((_, p)) if p.seal_key == me.seal_key => Ok(()),
            _ => Err(NodeError::Roster(
                "the roster does not list this signer's identity".into(),
            )),
        }
    }

    fn pin(&self, signed: SignedRoster) -> Result<(), NodeError> {
        let bytes =
            serde_json::to_vec(&signed).map_err(|_| NodeError::Corrupt { what: "roster" })?;
        self.store.put_blob(ROSTER_BLOB, &bytes)?;
        *self.roster.write().unwrap_or_else(|p| p.into_inner()) = Some(signed);
        Ok(())
    }

    /// Pins the roster this signer is enrolled with: a local act of the signer's operator.
    /// The roster must be signed by a quorum of its own admins and list this signer. A
    /// signer already enrolled accepts only the same roster again (changes go through
    /// [`SignerNode::accept_update`]).
    pub fn enrol(&self, signed: SignedRoster) -> Result<(), NodeError> {
        signed
            .check_for_enrolment()
            .map_err(|e| NodeError::Roster(e.to_string()))?;
        self.check_names_me(&signed.roster)?;
        if let Ok(pinned) = self.roster() {
            if pinned != signed.roster {
                return Err(NodeError::Roster(
                    "this signer is already enrolled in another roster; changes need an admin-quorum update".into(),
                ));
            }
            return Ok(());
        }
        self.pin(signed)
    }

    /// Accepts a roster update announced later: newer, and signed by a quorum of the admins
    /// pinned now.
    pub fn accept_update(&self, signed: SignedRoster) -> Result<(), NodeError> {
        let pinned = self.roster()?;
        signed
            .check_update(&pinned)
            .map_err(|e| NodeError::Roster(e.to_string()))?;
        self.check_names_me(&signed.roster)?;
        self.pin(signed)
    }

    /// Stores a new key's membership and share (key generation).
    pub fn save_new_key(&self, meta: &KeyMeta, share: &KeyShare) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec(meta).map_err(|_| NodeError::Corrupt {
            what: "key metadata",
        })?;
        self.store.put_blob(&meta_blob(&meta.key_id), &bytes)?;
        self.save_share(&meta.key_id, share)
    }

    /// Stores a share at its epoch (refused if not newer than the stored one).
    pub fn save_share(&self, key_id: &str, share: &KeyShare) -> Result<(), NodeError> {
        let secret = share
            .encode_secret()
            .map_err(|_| NodeError::Corrupt { what: "share" })?;
        self.store.put(key_id, share.epoch().0, &secret)?;
        Ok(())
    }

    /// Stages a refreshed share at its epoch: not used for signing until
    /// [`SignerNode::commit_epoch`] (refused if not newer than the committed share).
    pub fn stage_share(&self, key_id: &str, share: &KeyShare) -> Result<(), NodeError> {
        let secret = share
            .encode_secret()
            .map_err(|_| NodeError::Corrupt { what: "share" })?;
        self.store.stage(key_id, share.epoch().0, &secret)?;
        Ok(())
    }

    /// Commits the staged share of `epoch` (idempotent). The staged share is decoded and
    /// checked against the key first; presignatures and nonces made from the previous share
    /// are retired with it.
    pub fn commit_epoch(&self, key_id: &str, epoch: u64) -> Result<(), NodeError> {
        if self.store.current_epoch(key_id)? == Some(epoch) {
            self.store.commit(key_id, epoch)?;
            return Ok(());
        }
        if let Some(staged) = self.store.get_staged(key_id, epoch)? {
            let share =
                KeyShare::decode_secret(&staged.secret).map_err(|_| NodeError::Corrupt {
                    what: "staged share",
                })?;
            let current = self.share(key_id)?;
            let root = coffer_proto::path::DerivationPath::root();
            let same_key = share.scheme() == current.scheme()
                && matches!(
                    (share.public_key(&root), current.public_key(&root)),
                    (Ok(a), Ok(b)) if a == b
                );
            if share.epoch().0 != epoch || !same_key {
                return Err(NodeError::Corrupt {
                    what: "staged share (another key or epoch)",
                });
            }
        }
        self.store.commit(key_id, epoch)?;
        crate::pool::discard_all(&self.store, &[key_id.to_string()])
            .map_err(|e| NodeError::Pool(e.to_string()))?;
        Ok(())
    }

    /// Drops the staged share of `epoch`; returns whether one was dropped.
    pub fn abort_epoch(&self, key_id: &str, epoch: u64) -> Result<bool, NodeError> {
        Ok(self.store.abort(key_id, epoch)?)
    }

    /// The committed and staged epochs of `key_id`.
    pub fn epochs(&self, key_id: &str) -> Result<(u64, Option<u64>), NodeError> {
        let committed = self
            .store
            .current_epoch(key_id)?
            .ok_or_else(|| NodeError::NoShare(key_id.to_string()))?;
        Ok((committed, self.store.staged(key_id)?))
    }

    /// A key's membership.
    pub fn key_meta(&self, key_id: &str) -> Result<KeyMeta, NodeError> {
        let bytes = self
            .store
            .get_blob(&meta_blob(key_id))?
            .ok_or_else(|| NodeError::NoShare(key_id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|_| NodeError::Corrupt {
            what: "key metadata",
        })
    }

    /// The admin keys and quorum that sign `meta`'s policies: those pinned at key generation,
    /// or the pinned roster's for keys made before they were recorded.
    pub fn key_admins(&self, meta: &KeyMeta) -> Result<(Vec<NodeKey>, u16), NodeError> {
        if !meta.admins.is_empty() && meta.admin_threshold > 0 {
            return Ok((meta.admins.clone(), meta.admin_threshold));
        }
        let roster = self.roster()?;
        Ok((roster.admins, roster.admin_threshold))
    }

    /// A key's current share; its epoch must match the store's record.
    pub fn share(&self, key_id: &str) -> Result<KeyShare, NodeError> {
        let stored = self
            .store
            .get(key_id)?
            .ok_or_else(|| NodeError::NoShare(key_id.to_string()))?;
        let share = KeyShare::decode_secret(&stored.secret)
            .map_err(|_| NodeError::Corrupt { what: "share" })?;
        if share.epoch().0 != stored.epoch {
            return Err(NodeError::Corrupt {
                what: "share epoch",
            });
        }
        Ok(share)
    }

    fn freeze_book(&self) -> Result<FreezeBook, NodeError> {
        match self.store.get_blob(FREEZE_BLOB)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| NodeError::Corrupt {
                what: "freeze orders",
            }),
            None => Ok(FreezeBook::default()),
        }
    }

    /// Accepts a freeze or unfreeze order after checking it against what this signer
    /// pinned: a freeze must be signed by the pinned server key; an unfreeze by a quorum of
    /// the admins pinned for every key of the vault this signer holds (the roster's admins
    /// when it holds none), and it must name every key the freeze covered. Either must carry
    /// a sequence number above the last order accepted for the vault (a replay is refused).
    /// The order is sealed in the store before it takes effect.
    pub fn apply_freeze(&self, signed: &SignedFreezeOrder) -> Result<FreezeApplied, NodeError> {
        let _guard = self.freeze_lock.lock().unwrap_or_else(|p| p.into_inner());
        let roster = self.roster()?;
        let order = &signed.order;
        let mut book = self.freeze_book()?;
        let current = book.vaults.get(&order.vault_id);
        if current == Some(signed) {
            return Ok(FreezeApplied::AlreadyInForce);
        }
        order.check()?;
        // The keys a freeze in force covers must all be named again: neither an unfreeze nor
        // a later freeze (the server's own word) may release a key silently.
        if let Some(cur) = current.filter(|c| c.order.kind == FreezeKind::Freeze) {
            if let Some(missing) = cur.order.key_ids.iter().find(|k| !order.names(k)) {
                return Err(FreezeError::MissingKey {
                    vault: order.vault_id.clone(),
                    key_id: missing.clone(),
                }
                .into());
            }
        }
        match order.kind {
            FreezeKind::Freeze => signed.verify_freeze(&roster.server)?,
            FreezeKind::Unfreeze => {
                let mut checked_any = false;
                for key_id in &order.key_ids {
                    let Ok(meta) = self.key_meta(key_id) else {
                        continue;
                    };
                    let (admins, threshold) = self.key_admins(&meta)?;
                    signed.verify_unfreeze(&admins, threshold)?;
                    checked_any = true;
                }
                if !checked_any {
                    signed.verify_unfreeze(&roster.admins, roster.admin_threshold)?;
                }
            }
        }
        if let Some(cur) = current {
            if order.seq <= cur.order.seq {
                return Err(FreezeError::NotNewer {
                    vault: order.vault_id.clone(),
                    last: cur.order.seq,
                    offered: order.seq,
                }
                .into());
            }
        }
        book.vaults.insert(order.vault_id.clone(), signed.clone());
        let bytes = serde_json::to_vec(&book).map_err(|_| NodeError::Corrupt {
            what: "freeze orders",
        })?;
        self.store.put_blob(FREEZE_BLOB, &bytes)?;
        Ok(FreezeApplied::Applied)
    }

    /// The freeze in force on `key_id`, if any. An unreadable freeze record is an error
    /// (callers refuse to sign then: fail closed).
    pub fn frozen(&self, key_id: &str) -> Result<Option<Frozen>, NodeError> {
        let book = self.freeze_book()?;
        Ok(book
            .vaults
            .values()
            .find(|o| o.order.kind == FreezeKind::Freeze && o.order.names(key_id))
            .map(|o| Frozen {
                vault_id: o.order.vault_id.clone(),
                seq: o.order.seq,
                reason: o.order.reason.clone(),
            }))
    }

    /// The last sequence number accepted for `vault_id` (0: none).
    pub fn freeze_seq(&self, vault_id: &str) -> Result<u64, NodeError> {
        Ok(self
            .freeze_book()?
            .vaults
            .get(vault_id)
            .map(|o| o.order.seq)
            .unwrap_or(0))
    }

    /// The status reported to the server (without pool and primes figures).
    pub fn status(&self) -> SignerStatus {
        SignerStatus {
            roster_version: self.roster().map(|r| r.version).unwrap_or(0),
            keys: self
                .store
                .list()
                .unwrap_or_default()
                .into_iter()
                .map(|(key_id, epoch)| KeyHeld { key_id, epoch })
                .collect(),
            ..SignerStatus::default()
        }
    }
}
