//! The signer's pool of precomputed signing material, per key, sealed in its store: ECDSA
//! presignatures (bound to a derivation path) and FROST round-one nonces (any path, listed
//! under [`ANY_PATH`]). Both are secret and must never sign twice: taking an item removes it
//! from the pool's index durably (atomic write, fsync) *before* it is used, so a crash at any
//! point can lose a pooled item but never reuse one. A signer restored from a backup must
//! discard every pooled item ([`discard_all`]): the backup may hold items spent since.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use coffer_proto::ids::SessionId;

/// The path FROST nonces are listed under: they are not bound to one.
pub const ANY_PATH: &str = "*";

use crate::store::{ShareStore, StoreError};

/// One pooled presignature: the session that made it (its id across all its signers), the
/// path it is bound to, and the party indices that made it (all must sign together).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    /// The presigning session's id (hex).
    pub id: String,
    /// The derivation path.
    pub path: String,
    /// The signer set.
    pub signers: Vec<u16>,
}

/// Why a pool operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored item does not decode.
    #[error("pooled item {0} is corrupt")]
    Corrupt(String),
}

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn index_name(key_id: &str) -> String {
    format!("pool-{key_id}")
}

fn item_name(id: &str) -> String {
    format!("pre-{}", &id[..id.len().min(32)])
}

fn read_index(store: &ShareStore, key_id: &str) -> Result<Vec<PoolEntry>, PoolError> {
    match store.get_blob(&index_name(key_id))? {
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|_| PoolError::Corrupt(index_name(key_id)))
        }
        None => Ok(vec![]),
    }
}

fn write_index(store: &ShareStore, key_id: &str, entries: &[PoolEntry]) -> Result<(), PoolError> {
    let bytes = serde_json::to_vec(entries).map_err(|_| PoolError::Corrupt(index_name(key_id)))?;
    store.put_blob(&index_name(key_id), &bytes)?;
    Ok(())
}

/// Adds an item made in `session` by `signers`, usable at `path`.
pub fn add<T: Serialize>(
    store: &ShareStore,
    key_id: &str,
    session: SessionId,
    path: &str,
    signers: &[u16],
    item: &T,
) -> Result<(), PoolError> {
    let id = session.to_string();
    let mut bytes = Zeroizing::new(Vec::new());
    ciborium::into_writer(item, &mut *bytes).map_err(|_| PoolError::Corrupt(id.clone()))?;
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    store.put_blob(&item_name(&id), &bytes)?;
    let mut index = read_index(store, key_id)?;
    index.push(PoolEntry {
        id,
        path: path.to_string(),
        signers: signers.to_vec(),
    });
    write_index(store, key_id, &index)
}

/// Takes the item made in `session` out of the pool: first removed from the index
/// (durably), then read and deleted. `None` if the pool holds no such item.
pub fn take<T: DeserializeOwned>(
    store: &ShareStore,
    key_id: &str,
    session: &SessionId,
) -> Result<Option<T>, PoolError> {
    let id = session.to_string();
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut index = read_index(store, key_id)?;
    let Some(pos) = index.iter().position(|e| e.id == id) else {
        return Ok(None);
    };
    index.remove(pos);
    write_index(store, key_id, &index)?;
    let bytes = store.get_blob(&item_name(&id))?;
    store.delete_blob(&item_name(&id))?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    ciborium::from_reader(&bytes[..])
        .map(Some)
        .map_err(|_| PoolError::Corrupt(id))
}

/// Items ready per path for `key_id`.
pub fn levels(store: &ShareStore, key_id: &str) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for e in read_index(store, key_id).unwrap_or_default() {
        match out.iter_mut().find(|(p, _)| *p == e.path) {
            Some((_, n)) => *n += 1,
            None => out.push((e.path, 1)),
        }
    }
    out
}

/// Discards every pooled item of these keys (after a restore from backup).
pub fn discard_all(store: &ShareStore, key_ids: &[String]) -> Result<usize, PoolError> {
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut n = 0;
    for key_id in key_ids {
        let index = read_index(store, key_id)?;
        write_index(store, key_id, &[])?;
        for e in index {
            store.delete_blob(&item_name(&e.id))?;
            n += 1;
        }
    }
    Ok(n)
}
