//! The signer's encrypted share store: its key shares, one per key and epoch, and named
//! sealed blobs for its other secrets (identity key, pinned roster, key metadata, safe-prime
//! pool). This module owns the on-disk layout, the sealed file format, atomic writes and the
//! anti-rollback rules. Where the key comes from is [`crate::keysource`]'s business.
//!
//! # Layout
//!
//! ```text
//! <dir>/store.salt               16 random bytes (written last by `create`: its presence makes a store)
//! <dir>/store.check              a sealed known value: a wrong key gives WrongKey, not an integrity error
//! <dir>/store.manifest           sealed map key id -> current epoch: the commit point of every `put`
//! <dir>/shares/<key_id>/<epoch>.share
//! <dir>/shares/<key_id>/<epoch>.staged   a refreshed share waiting for the group's commit
//! <dir>/blobs/<name>.blob
//! ```
//!
//! Files are 0600, directories 0700. Every file is written to a `*.tmp` sibling, fsynced,
//! renamed over its final name, and the directory is fsynced; leftover `*.tmp` files of a
//! crashed write are ignored and deleted when the store opens. A `put` writes the share file
//! first and then replaces the manifest, so a crash at any point leaves the previous share
//! current and intact; a share file the manifest does not name yet is not returned, and a
//! later `put` of the same epoch simply replaces it.
//!
//! # Two-phase refresh
//!
//! A refresh must not move one signer to the new epoch while another stays behind (the
//! group would be split across epochs: a broken key). So a refresh [`ShareStore::stage`]s
//! its new share (a sealed file of its own kind that the manifest does not name: `get`
//! keeps returning the committed share), and only [`ShareStore::commit`] (the group agreed)
//! moves the manifest, through the same crash-safe path as `put`; [`ShareStore::abort`]
//! drops it. A staged share survives restarts, so a commit that arrives after a reconnect
//! still works; commit and abort are idempotent. [`ShareStore::prune`] deletes the older
//! epochs once every signer confirmed its commit. The protocol is described in
//! `docs/refresh.md`.
//!
//! # Sealed files
//!
//! ```text
//! "CFSS" | version 1 | kind (1 share, 2 blob, 3 manifest, 4 check) | name length (1..=64)
//!        | name | epoch (u64, big endian) | 24-byte nonce | XChaCha20-Poly1305 ciphertext
//! ```
//!
//! Everything before the nonce is the header; the associated data is a domain string, the
//! store's salt and the header, so the kind, the key id or blob name and the epoch are bound
//! to the ciphertext, and a file sealed for another store does not open. The nonce is random
//! per write. Decoding checks every length before use (files are read up to a fixed bound)
//! and fails with a typed error, never a panic.
//!
//! # What the store detects, and what it cannot
//!
//! Detected, as [`StoreError::Integrity`]: any altered byte of a share, blob or the manifest;
//! a file moved to another key id, name, epoch or kind (including an older sealed share of
//! the same key copied over the current one); a file from another store; a missing share
//! file for the epoch the manifest names; a missing manifest or check file. Refused, as
//! [`StoreError::Rollback`]: a `put` at an epoch not newer than the current one.
//!
//! Not detectable locally: an attacker with write access who restores an *older copy of the
//! whole store* (or of the manifest together with the share files it names) presents a
//! consistent older state; nothing on this disk can tell it from the real one without
//! trusted monotonic storage. That is why share refreshes are proven mathematically (an
//! old share does not combine with the current ones) and why the server and the peers track
//! each key's epoch too. Blobs carry no epoch: an older copy of a blob is not detected
//! either. An attacker who can only read the disk learns key ids, epochs, blob names and
//! sizes, not secrets.
//!
//! One process owns a store directory at a time; within it, [`ShareStore`] may be shared
//! between threads (manifest updates are serialized).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keysource::{KeySource, KEY_LEN};

/// Largest secret (share or blob) the store accepts, in bytes.
pub const MAX_SECRET_LEN: usize = 16 * 1024 * 1024;
/// Longest key id or blob name, in characters.
pub const MAX_NAME_LEN: usize = 64;

const SALT_FILE: &str = "store.salt";
const CHECK_FILE: &str = "store.check";
const MANIFEST_FILE: &str = "store.manifest";
const SHARES_DIR: &str = "shares";
const BLOBS_DIR: &str = "blobs";
const SHARE_EXT: &str = ".share";
const STAGED_EXT: &str = ".staged";
const BLOB_EXT: &str = ".blob";
const TMP_EXT: &str = ".tmp";
const SALT_LEN: usize = 16;

const MAGIC: &[u8; 4] = b"CFSS";
const FORMAT_VERSION: u8 = 1;
const DOMAIN: &[u8] = b"coffer-signer/share-store/v1\0";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The header with the longest name, the nonce and the tag.
const MAX_OVERHEAD: usize = MAGIC.len() + 3 + MAX_NAME_LEN + 8 + NONCE_LEN + TAG_LEN;
/// Largest file read.
const MAX_FILE_LEN: usize = MAX_SECRET_LEN + MAX_OVERHEAD;
const CHECK_NAME: &str = "store";
const CHECK_VALUE: &[u8; 32] = b"coffer-signer store key check v1";
const MANIFEST_NAME: &str = "manifest";

/// Why the store could not be created, opened, read or written. Carries paths, key ids,
/// names and epochs; never secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Refusing to overwrite an existing store or key file.
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The existing store directory or key file.
        path: PathBuf,
    },
    /// The directory holds no store.
    #[error("{}: no share store here (no {SALT_FILE})", path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// The key source gives another key than the one the store was created with.
    #[error("the {key_source} does not open the store at {} (wrong passphrase or key file)", path.display())]
    WrongKey {
        /// The store directory.
        path: PathBuf,
        /// The key source's description.
        key_source: String,
    },
    /// A file failed its integrity check, is malformed, or is missing.
    #[error("{}: integrity check failed: {reason}", path.display())]
    Integrity {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `put` would not move the key forward.
    #[error(
        "refusing to roll key {key_id} back: it is at epoch {current}, offered epoch {offered}"
    )]
    Rollback {
        /// The key id.
        key_id: String,
        /// Its current epoch.
        current: u64,
        /// The epoch offered.
        offered: u64,
    },
    /// A commit names an epoch this store has no staged share of.
    #[error(
        "key {key_id} has no staged share of epoch {epoch} to commit (current epoch {current})"
    )]
    NotStaged {
        /// The key id.
        key_id: String,
        /// The epoch asked for.
        epoch: u64,
        /// The committed epoch (0 if the key has none).
        current: u64,
    },
    /// An abort names an epoch that is already committed: it can no longer be dropped.
    #[error(
        "key {key_id} is already committed at epoch {current}; epoch {epoch} cannot be aborted"
    )]
    AlreadyCommitted {
        /// The key id.
        key_id: String,
        /// The epoch asked for.
        epoch: u64,
        /// The committed epoch.
        current: u64,
    },
    /// A key id or blob name is not 1 to 64 characters of `a-z`, `0-9`, `_` and `-`.
    #[error("invalid name {name:?}: use 1 to 64 characters of a-z, 0-9, '_' and '-'")]
    BadName {
        /// The name (truncated to 80 characters).
        name: String,
    },
    /// A secret larger than [`MAX_SECRET_LEN`].
    #[error("a secret of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `COFFER_PASSPHRASE` is not set.
    #[error("COFFER_PASSPHRASE is not set: the share store is always encrypted")]
    MissingPassphrase,
    /// The passphrase is too short.
    #[error("the passphrase is too short: use at least {min} characters")]
    WeakPassphrase {
        /// The minimum length in characters.
        min: usize,
    },
    /// The key file is unusable.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Key derivation failed (bad parameters).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// A bug (an encoding or encryption step that cannot fail did).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn integrity(path: &Path, reason: impl Into<String>) -> Self {
        StoreError::Integrity {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// A share read from the store. Its `Debug` output does not show the secret.
pub struct StoredShare {
    /// The key id.
    pub key_id: String,
    /// The share's epoch.
    pub epoch: u64,
    /// The share's secret encoding.
    pub secret: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for StoredShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoredShare")
            .field("key_id", &self.key_id)
            .field("epoch", &self.epoch)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Where [`ShareStore::put_crashing_at`] stops, simulating a crash. For tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The share's temporary file is written and synced, not renamed.
    ShareTempWritten,
    /// The share file is in place; the manifest does not name it yet.
    ShareRenamed,
    /// The new manifest's temporary file is written and synced, not renamed.
    ManifestTempWritten,
}

/// What an item is: part of the associated data of its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Share = 1,
    Blob = 2,
    Manifest = 3,
    Check = 4,
    /// A refreshed share waiting for its commit: never opened as a current share.
    Staged = 5,
}

/// Why sealed bytes did not open.
enum Unseal {
    /// Not a sealed file of this format.
    Malformed(&'static str),
    /// The AEAD check failed: altered, or another key or store.
    Auth,
    /// Authentic, but sealed for another item.
    Mismatch(String),
}

/// A parsed (not yet authenticated) sealed file.
struct Parsed<'a> {
    header: &'a [u8],
    kind: u8,
    name: &'a [u8],
    epoch: u64,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let (magic, rest) = bytes
        .split_at_checked(MAGIC.len())
        .ok_or("truncated header")?;
    if magic != MAGIC {
        return Err("not a sealed store file");
    }
    let (&version, rest) = rest.split_first().ok_or("truncated header")?;
    if version != FORMAT_VERSION {
        return Err("unsupported format version");
    }
    let (&kind, rest) = rest.split_first().ok_or("truncated header")?;
    let (&name_len, rest) = rest.split_first().ok_or("truncated header")?;
    let name_len = usize::from(name_len);
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err("bad name length");
    }
    let (name, rest) = rest.split_at_checked(name_len).ok_or("truncated header")?;
    let (epoch, rest) = rest.split_at_checked(8).ok_or("truncated header")?;
    let epoch = u64::from_be_bytes(epoch.try_into().map_err(|_| "truncated header")?);
    let header_len = bytes.len() - rest.len();
    let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or("truncated nonce")?;
    if ciphertext.len() < TAG_LEN {
        return Err("truncated ciphertext");
    }
    if ciphertext.len() > MAX_SECRET_LEN + TAG_LEN {
        return Err("ciphertext too large");
    }
    Ok(Parsed {
        header: bytes.get(..header_len).ok_or("truncated header")?,
        kind,
        name,
        epoch,
        nonce,
        ciphertext,
    })
}

/// Fuzzing hook, not part of the API: runs the sealed-file parser on hostile bytes (no key,
/// no disk) and tells whether it accepted them.
#[doc(hidden)]
pub fn fuzz_parse_sealed(bytes: &[u8]) -> bool {
    parse(bytes).is_ok()
}

fn encode_header(kind: Kind, name: &str, epoch: u64) -> Result<Vec<u8>, StoreError> {
    let name_len = u8::try_from(name.len()).map_err(|_| StoreError::Internal("name too long"))?;
    let mut h = Vec::with_capacity(MAGIC.len() + 3 + name.len() + 8);
    h.extend_from_slice(MAGIC);
    h.push(FORMAT_VERSION);
    h.push(kind as u8);
    h.push(name_len);
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&epoch.to_be_bytes());
    Ok(h)
}

fn aad(salt: &[u8; SALT_LEN], header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(DOMAIN.len() + SALT_LEN + header.len());
    a.extend_from_slice(DOMAIN);
    a.extend_from_slice(salt);
    a.extend_from_slice(header);
    a
}

/// Checks a key id or blob name: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName {
            name: name.chars().take(80).collect(),
        })
    }
}

/// The manifest's content: key id -> current epoch.
type Manifest = BTreeMap<String, u64>;

fn encode_manifest(m: &Manifest) -> Result<Vec<u8>, StoreError> {
    let count = u32::try_from(m.len()).map_err(|_| StoreError::Internal("too many keys"))?;
    let mut out = Vec::with_capacity(4 + m.len() * (1 + MAX_NAME_LEN + 8));
    out.extend_from_slice(&count.to_be_bytes());
    for (key_id, epoch) in m {
        let len =
            u8::try_from(key_id.len()).map_err(|_| StoreError::Internal("key id too long"))?;
        out.push(len);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&epoch.to_be_bytes());
    }
    Ok(out)
}

fn decode_manifest(bytes: &[u8]) -> Result<Manifest, &'static str> {
    let (count, mut rest) = bytes.split_at_checked(4).ok_or("truncated manifest")?;
    let count = u32::from_be_bytes(count.try_into().map_err(|_| "truncated manifest")?);
    let mut m = Manifest::new();
    for _ in 0..count {
        let (&len, r) = rest.split_first().ok_or("truncated manifest")?;
        let (name, r) = r
            .split_at_checked(usize::from(len))
            .ok_or("truncated manifest")?;
        let (epoch, r) = r.split_at_checked(8).ok_or("truncated manifest")?;
        let name = std::str::from_utf8(name).map_err(|_| "bad key id in manifest")?;
        validate_name(name).map_err(|_| "bad key id in manifest")?;
        let epoch = u64::from_be_bytes(epoch.try_into().map_err(|_| "truncated manifest")?);
        if m.insert(name.to_string(), epoch).is_some() {
            return Err("duplicate key id in manifest");
        }
        rest = r;
    }
    if !rest.is_empty() {
        return Err("trailing bytes in manifest");
    }
    Ok(m)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Opens a new file for writing with mode 0600, failing if it exists.
pub(crate) fn create_new_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

fn dir_builder(recursive: bool) -> fs::DirBuilder {
    let mut b = fs::DirBuilder::new();
    b.recursive(recursive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Fsyncs the directory holding `path`.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates `dir` (mode 0700) if it does not exist, making the new entry durable.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match dir_builder(false).create(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(StoreError::io(dir, e)),
    }
}

/// Writes `bytes` to `path` atomically: a `*.tmp` sibling is written and fsynced, renamed
/// over `path`, and the directory is fsynced. With `stop_before_rename` (crash simulation)
/// it stops once the temporary file is synced, leaving it behind.
fn write_atomic(path: &Path, bytes: &[u8], stop_before_rename: bool) -> Result<(), StoreError> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(StoreError::Internal("path without a file name"))?;
    let tmp = path.with_file_name(format!("{file_name}.{}{TMP_EXT}", random_hex(8)));
    let written: Result<(), StoreError> = (|| {
        let mut f = create_new_private(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if stop_before_rename {
        return Ok(());
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(path, e));
    }
    sync_parent(path)
}

/// Reads a file of at most [`MAX_FILE_LEN`] bytes; `None` if it does not exist.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(StoreError::integrity(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_LEN as u64 {
        return Err(StoreError::integrity(path, "file too large"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(path, e))?;
    if bytes.len() > MAX_FILE_LEN {
        return Err(StoreError::integrity(path, "file too large"));
    }
    Ok(Some(bytes))
}

/// Deletes the `*.tmp` files directly in `dir` (nothing if `dir` does not exist).
fn remove_temp_files(dir: &Path) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let is_tmp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(TMP_EXT));
        let is_file = entry
            .file_type()
            .map_err(|e| StoreError::io(&entry.path(), e))?
            .is_file();
        if is_tmp && is_file {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// The signer's encrypted store of shares and sealed blobs (see the module documentation).
pub struct ShareStore {
    dir: PathBuf,
    key: Zeroizing<[u8; KEY_LEN]>,
    salt: [u8; SALT_LEN],
    /// Serializes manifest read-modify-write cycles.
    lock: Mutex<()>,
}

impl core::fmt::Debug for ShareStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ShareStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ShareStore {
    /// Creates the store layout in `dir` (created with mode 0700 if missing): the sealed
    /// check value, an empty manifest, and the random salt file, written last. Refuses if
    /// `dir` already holds a store ([`StoreError::Exists`]); a directory left by a create
    /// that crashed before the salt was written is not a store and may be created again.
    pub fn create(dir: &Path, source: &dyn KeySource) -> Result<Self, StoreError> {
        let salt_path = dir.join(SALT_FILE);
        if salt_path.exists() {
            return Err(StoreError::Exists {
                path: dir.to_path_buf(),
            });
        }
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let key = source.store_key(&salt)?;
        if !dir.is_dir() {
            dir_builder(true)
                .create(dir)
                .map_err(|e| StoreError::io(dir, e))?;
            sync_parent(dir)?;
        }
        let store = ShareStore {
            dir: dir.to_path_buf(),
            key,
            salt,
            lock: Mutex::new(()),
        };
        ensure_dir(&dir.join(SHARES_DIR))?;
        ensure_dir(&dir.join(BLOBS_DIR))?;
        let check = store.seal(Kind::Check, CHECK_NAME, 0, CHECK_VALUE)?;
        write_atomic(&dir.join(CHECK_FILE), &check, false)?;
        store.write_manifest(&Manifest::new(), 0, false)?;
        // The commit point of creation; refuse to replace a salt that appeared meanwhile.
        let mut f = match create_new_private(&salt_path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(StoreError::io(&salt_path, e)),
        };
        f.write_all(&salt)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&salt_path, e))?;
        sync_dir(dir)?;
        Ok(store)
    }

    /// Opens the store in `dir` with the key from `source`. A key other than the store's
    /// gives [`StoreError::WrongKey`]. Deletes the `*.tmp` files crashed writes left behind.
    pub fn open(dir: &Path, source: &dyn KeySource) -> Result<Self, StoreError> {
        let salt_path = dir.join(SALT_FILE);
        let salt_bytes = read_bounded(&salt_path)?.ok_or_else(|| StoreError::NotAStore {
            path: dir.to_path_buf(),
        })?;
        let salt: [u8; SALT_LEN] = salt_bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::integrity(&salt_path, "the salt must be 16 bytes"))?;
        let key = source.store_key(&salt)?;
        let store = ShareStore {
            dir: dir.to_path_buf(),
            key,
            salt,
            lock: Mutex::new(()),
        };
        let check_path = dir.join(CHECK_FILE);
        let check = read_bounded(&check_path)?
            .ok_or_else(|| StoreError::integrity(&check_path, "the check file is missing"))?;
        match store.unseal(&check, Kind::Check, CHECK_NAME) {
            Ok((_, value)) if bool::from(value.as_slice().ct_eq(CHECK_VALUE)) => {}
            Ok(_) => return Err(StoreError::integrity(&check_path, "wrong check value")),
            Err(Unseal::Auth) => {
                return Err(StoreError::WrongKey {
                    path: dir.to_path_buf(),
                    key_source: source.describe(),
                })
            }
            Err(Unseal::Malformed(r)) => return Err(StoreError::integrity(&check_path, r)),
            Err(Unseal::Mismatch(r)) => return Err(StoreError::integrity(&check_path, r)),
        }
        store.read_manifest()?;
        store.clean_temp_files()?;
        Ok(store)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `secret` as `key_id`'s share at `epoch`. Refuses an epoch not newer than the
    /// key's current one ([`StoreError::Rollback`]). Writes
    /// `shares/<key_id>/<epoch>.share` atomically, then atomically replaces the manifest (the
    /// commit point). The previous epoch's file is kept until [`ShareStore::prune`].
    pub fn put(&self, key_id: &str, epoch: u64, secret: &[u8]) -> Result<(), StoreError> {
        self.put_inner(key_id, epoch, secret, None)
    }

    /// [`ShareStore::put`] that stops at `at` as if the process died there, leaving the disk
    /// as such a crash would. `Ok(())` means it reached `at`. For crash-safety tests only.
    #[doc(hidden)]
    pub fn put_crashing_at(
        &self,
        key_id: &str,
        epoch: u64,
        secret: &[u8],
        at: CrashPoint,
    ) -> Result<(), StoreError> {
        self.put_inner(key_id, epoch, secret, Some(at))
    }

    fn put_inner(
        &self,
        key_id: &str,
        epoch: u64,
        secret: &[u8],
        crash: Option<CrashPoint>,
    ) -> Result<(), StoreError> {
        validate_name(key_id)?;
        check_len(secret)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (mut manifest, generation) = self.read_manifest()?;
        if let Some(&current) = manifest.get(key_id) {
            if epoch <= current {
                return Err(StoreError::Rollback {
                    key_id: key_id.to_string(),
                    current,
                    offered: epoch,
                });
            }
        }
        let sealed = self.seal(Kind::Share, key_id, epoch, secret)?;
        let shares = self.dir.join(SHARES_DIR);
        ensure_dir(&shares)?;
        ensure_dir(&shares.join(key_id))?;
        let stop = crash == Some(CrashPoint::ShareTempWritten);
        write_atomic(&self.share_path(key_id, epoch), &sealed, stop)?;
        if stop || crash == Some(CrashPoint::ShareRenamed) {
            return Ok(());
        }
        manifest.insert(key_id.to_string(), epoch);
        let next = generation
            .checked_add(1)
            .ok_or(StoreError::Internal("manifest generation overflow"))?;
        self.write_manifest(
            &manifest,
            next,
            crash == Some(CrashPoint::ManifestTempWritten),
        )
    }

    /// The current share of `key_id`, or `None` if the store has none. Fails with
    /// [`StoreError::Integrity`] if the file the manifest names is missing, does not
    /// authenticate, or seals another key id, kind or epoch (such as an older share of the
    /// same key copied over the current one).
    pub fn get(&self, key_id: &str) -> Result<Option<StoredShare>, StoreError> {
        validate_name(key_id)?;
        let (manifest, _) = self.read_manifest()?;
        let Some(&epoch) = manifest.get(key_id) else {
            return Ok(None);
        };
        let path = self.share_path(key_id, epoch);
        let bytes = read_bounded(&path)?.ok_or_else(|| {
            StoreError::integrity(
                &path,
                format!("the share of epoch {epoch} named by the manifest is missing"),
            )
        })?;
        let (sealed_epoch, secret) = self
            .unseal(&bytes, Kind::Share, key_id)
            .map_err(|e| unseal_error(&path, e))?;
        if sealed_epoch != epoch {
            return Err(StoreError::integrity(
                &path,
                format!("the file seals epoch {sealed_epoch} of key {key_id}, the manifest names epoch {epoch}"),
            ));
        }
        Ok(Some(StoredShare {
            key_id: key_id.to_string(),
            epoch,
            secret,
        }))
    }

    /// `(key id, current epoch)` of every key, ordered by key id.
    pub fn list(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self.read_manifest()?.0.into_iter().collect())
    }

    /// The committed epoch of `key_id` (`None` if the store has no share of it).
    pub fn current_epoch(&self, key_id: &str) -> Result<Option<u64>, StoreError> {
        validate_name(key_id)?;
        Ok(self.read_manifest()?.0.get(key_id).copied())
    }

    /// Stages `secret` as `key_id`'s share at `epoch` without committing it: the manifest
    /// does not move, [`ShareStore::get`] keeps returning the committed share. Refuses an
    /// epoch not newer than the committed one ([`StoreError::Rollback`]). Any other staged
    /// share of the key (a refresh that was never committed nor aborted) is dropped: one
    /// staged epoch per key at a time.
    pub fn stage(&self, key_id: &str, epoch: u64, secret: &[u8]) -> Result<(), StoreError> {
        validate_name(key_id)?;
        check_len(secret)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (manifest, _) = self.read_manifest()?;
        if let Some(&current) = manifest.get(key_id) {
            if epoch <= current {
                return Err(StoreError::Rollback {
                    key_id: key_id.to_string(),
                    current,
                    offered: epoch,
                });
            }
        }
        let sealed = self.seal(Kind::Staged, key_id, epoch, secret)?;
        let shares = self.dir.join(SHARES_DIR);
        ensure_dir(&shares)?;
        ensure_dir(&shares.join(key_id))?;
        write_atomic(&self.staged_path(key_id, epoch), &sealed, false)?;
        for other in self.staged_epochs(key_id)? {
            if other != epoch {
                self.remove_file(&self.staged_path(key_id, other))?;
            }
        }
        Ok(())
    }

    /// The epoch of `key_id`'s staged share, if one waits for its commit (the highest, if a
    /// crash left several).
    pub fn staged(&self, key_id: &str) -> Result<Option<u64>, StoreError> {
        validate_name(key_id)?;
        let current = self.current_epoch(key_id)?;
        Ok(self
            .staged_epochs(key_id)?
            .into_iter()
            .filter(|e| current.is_none_or(|c| *e > c))
            .max())
    }

    /// The staged share of `key_id` at `epoch`, authenticated, or `None` if there is none.
    pub fn get_staged(&self, key_id: &str, epoch: u64) -> Result<Option<StoredShare>, StoreError> {
        validate_name(key_id)?;
        let path = self.staged_path(key_id, epoch);
        let Some(bytes) = read_bounded(&path)? else {
            return Ok(None);
        };
        let (sealed_epoch, secret) = self
            .unseal(&bytes, Kind::Staged, key_id)
            .map_err(|e| unseal_error(&path, e))?;
        if sealed_epoch != epoch {
            return Err(StoreError::integrity(
                &path,
                format!(
                    "the file seals epoch {sealed_epoch} of key {key_id}, its name says {epoch}"
                ),
            ));
        }
        Ok(Some(StoredShare {
            key_id: key_id.to_string(),
            epoch,
            secret,
        }))
    }

    /// Commits `key_id`'s staged share of `epoch`: it becomes the current share through the
    /// crash-safe path of [`ShareStore::put`] (share file, then the manifest: the commit
    /// point), then the staged file is deleted. The previous epoch's file is kept until
    /// [`ShareStore::prune`]. Idempotent: committing the epoch already current succeeds
    /// (and deletes a leftover staged file). Fails with [`StoreError::NotStaged`] when no
    /// share of `epoch` is staged, [`StoreError::Rollback`] when a newer epoch is current.
    pub fn commit(&self, key_id: &str, epoch: u64) -> Result<(), StoreError> {
        self.commit_inner(key_id, epoch, None)
    }

    /// [`ShareStore::commit`] that stops at `at` as if the process died there. For
    /// crash-safety tests only.
    #[doc(hidden)]
    pub fn commit_crashing_at(
        &self,
        key_id: &str,
        epoch: u64,
        at: CrashPoint,
    ) -> Result<(), StoreError> {
        self.commit_inner(key_id, epoch, Some(at))
    }

    fn commit_inner(
        &self,
        key_id: &str,
        epoch: u64,
        crash: Option<CrashPoint>,
    ) -> Result<(), StoreError> {
        validate_name(key_id)?;
        let current = self.current_epoch(key_id)?;
        if current == Some(epoch) {
            return self.remove_file(&self.staged_path(key_id, epoch));
        }
        let Some(staged) = self.get_staged(key_id, epoch)? else {
            return Err(StoreError::NotStaged {
                key_id: key_id.to_string(),
                epoch,
                current: current.unwrap_or(0),
            });
        };
        self.put_inner(key_id, epoch, &staged.secret, crash)?;
        if crash.is_some() {
            return Ok(());
        }
        self.remove_file(&self.staged_path(key_id, epoch))
    }

    /// Drops `key_id`'s staged share of `epoch` (and a share file of that epoch a crashed
    /// commit left behind, which the manifest does not name). Returns whether anything was
    /// deleted; aborting an epoch with nothing staged succeeds. Fails with
    /// [`StoreError::AlreadyCommitted`] when `epoch` is already committed: an abort never
    /// moves the manifest back.
    pub fn abort(&self, key_id: &str, epoch: u64) -> Result<bool, StoreError> {
        validate_name(key_id)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (manifest, _) = self.read_manifest()?;
        if let Some(&current) = manifest.get(key_id) {
            if epoch <= current {
                return Err(StoreError::AlreadyCommitted {
                    key_id: key_id.to_string(),
                    epoch,
                    current,
                });
            }
        }
        let staged = self.staged_path(key_id, epoch);
        let uncommitted = self.share_path(key_id, epoch);
        let mut removed = false;
        for path in [staged, uncommitted] {
            if path.exists() {
                self.remove_file(&path)?;
                removed = true;
            }
        }
        Ok(removed)
    }

    /// Epochs of `key_id`'s staged files, whatever the manifest says.
    fn staged_epochs(&self, key_id: &str) -> Result<Vec<u64>, StoreError> {
        let dir = self.dir.join(SHARES_DIR).join(key_id);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            if let Some(epoch) = entry.file_name().to_str().and_then(parse_staged_name) {
                out.push(epoch);
            }
        }
        Ok(out)
    }

    /// Deletes `path` if it exists and makes the removal durable.
    fn remove_file(&self, path: &Path) -> Result<(), StoreError> {
        match fs::remove_file(path) {
            Ok(()) => sync_parent(path),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn staged_path(&self, key_id: &str, epoch: u64) -> PathBuf {
        self.dir
            .join(SHARES_DIR)
            .join(key_id)
            .join(format!("{epoch}{STAGED_EXT}"))
    }

    /// Deletes the share files of `key_id` older than its current epoch, and staged files
    /// not newer than it (nothing if the store has no share of `key_id`).
    pub fn prune(&self, key_id: &str) -> Result<(), StoreError> {
        validate_name(key_id)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (manifest, _) = self.read_manifest()?;
        let Some(&current) = manifest.get(key_id) else {
            return Ok(());
        };
        let dir = self.dir.join(SHARES_DIR).join(key_id);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut removed = false;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            let name = name.to_str();
            let stale = match (
                name.and_then(parse_share_name),
                name.and_then(parse_staged_name),
            ) {
                (Some(epoch), _) => epoch < current,
                (_, Some(epoch)) => epoch <= current,
                _ => false,
            };
            if stale {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Seals `bytes` as the blob `name`, atomically replacing any previous blob of that name.
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        validate_name(name)?;
        check_len(bytes)?;
        let sealed = self.seal(Kind::Blob, name, 0, bytes)?;
        ensure_dir(&self.dir.join(BLOBS_DIR))?;
        write_atomic(&self.blob_path(name), &sealed, false)
    }

    /// The blob `name`, or `None` if there is none. Fails with [`StoreError::Integrity`] if
    /// its file does not authenticate or seals another item.
    pub fn get_blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        validate_name(name)?;
        let path = self.blob_path(name);
        let Some(bytes) = read_bounded(&path)? else {
            return Ok(None);
        };
        let (_, plain) = self
            .unseal(&bytes, Kind::Blob, name)
            .map_err(|e| unseal_error(&path, e))?;
        Ok(Some(plain))
    }

    /// Deletes the blob `name` (nothing if there is none).
    pub fn delete_blob(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let path = self.blob_path(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_parent(&path),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    fn share_path(&self, key_id: &str, epoch: u64) -> PathBuf {
        self.dir
            .join(SHARES_DIR)
            .join(key_id)
            .join(format!("{epoch}{SHARE_EXT}"))
    }

    fn blob_path(&self, name: &str) -> PathBuf {
        self.dir.join(BLOBS_DIR).join(format!("{name}{BLOB_EXT}"))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.key).into())
    }

    fn seal(
        &self,
        kind: Kind,
        name: &str,
        epoch: u64,
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let header = encode_header(kind, name, epoch)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = aad(&self.salt, &header);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Internal("encryption failed"))?;
        let mut out = header;
        out.reserve(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Authenticates and decrypts `bytes`, which must seal `name` of `kind`; returns the
    /// sealed epoch and the plaintext.
    fn unseal(
        &self,
        bytes: &[u8],
        kind: Kind,
        name: &str,
    ) -> Result<(u64, Zeroizing<Vec<u8>>), Unseal> {
        let p = parse(bytes).map_err(Unseal::Malformed)?;
        if p.nonce.len() != NONCE_LEN {
            return Err(Unseal::Malformed("truncated nonce"));
        }
        let aad = aad(&self.salt, p.header);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(p.nonce),
                    Payload {
                        msg: p.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| Unseal::Auth)?,
        );
        if p.kind != kind as u8 {
            return Err(Unseal::Mismatch(format!(
                "the file seals an item of kind {}, not a {kind:?}",
                p.kind
            )));
        }
        if p.name != name.as_bytes() {
            return Err(Unseal::Mismatch(format!(
                "the file seals {:?}, not {name:?}",
                String::from_utf8_lossy(p.name)
            )));
        }
        Ok((p.epoch, plain))
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// The manifest and its generation (the epoch field of its sealed file).
    fn read_manifest(&self) -> Result<(Manifest, u64), StoreError> {
        let path = self.manifest_path();
        let bytes = read_bounded(&path)?
            .ok_or_else(|| StoreError::integrity(&path, "the manifest is missing"))?;
        let (generation, plain) = self
            .unseal(&bytes, Kind::Manifest, MANIFEST_NAME)
            .map_err(|e| unseal_error(&path, e))?;
        let manifest = decode_manifest(&plain).map_err(|r| StoreError::integrity(&path, r))?;
        Ok((manifest, generation))
    }

    fn write_manifest(
        &self,
        m: &Manifest,
        generation: u64,
        stop_before_rename: bool,
    ) -> Result<(), StoreError> {
        let plain = encode_manifest(m)?;
        let sealed = self.seal(Kind::Manifest, MANIFEST_NAME, generation, &plain)?;
        write_atomic(&self.manifest_path(), &sealed, stop_before_rename)
    }

    fn clean_temp_files(&self) -> Result<(), StoreError> {
        remove_temp_files(&self.dir)?;
        remove_temp_files(&self.dir.join(BLOBS_DIR))?;
        let shares = self.dir.join(SHARES_DIR);
        let entries = match fs::read_dir(&shares) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&shares, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&shares, e))?;
            let path = entry.path();
            if entry
                .file_type()
                .map_err(|e| StoreError::io(&path, e))?
                .is_dir()
            {
                remove_temp_files(&path)?;
            }
        }
        remove_temp_files(&shares)
    }
}

fn check_len(secret: &[u8]) -> Result<(), StoreError> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(StoreError::TooLarge {
            len: secret.len(),
            max: MAX_SECRET_LEN,
        });
    }
    Ok(())
}

fn unseal_error(path: &Path, e: Unseal) -> StoreError {
    match e {
        Unseal::Malformed(r) => StoreError::integrity(path, r),
        Unseal::Auth => StoreError::integrity(
            path,
            "authentication failed (the file was altered or sealed by another store)",
        ),
        Unseal::Mismatch(r) => StoreError::integrity(path, r),
    }
}

/// The epoch of a share file name in canonical form (`<decimal epoch>.share`).
fn parse_share_name(name: &str) -> Option<u64> {
    parse_epoch_name(name, SHARE_EXT)
}

/// The epoch of a staged file name in canonical form (`<decimal epoch>.staged`).
fn parse_staged_name(name: &str) -> Option<u64> {
    parse_epoch_name(name, STAGED_EXT)
}

fn parse_epoch_name(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_suffix(ext)?;
    let epoch: u64 = digits.parse().ok()?;
    (epoch.to_string() == digits).then_some(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for good in ["a", "key-1", "primes_0", &"z".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "A",
            "../x",
            "a/b",
            "a.b",
            "é",
            " a",
            &"z".repeat(65),
            "a\0",
        ] {
            assert!(
                matches!(validate_name(bad), Err(StoreError::BadName { .. })),
                "{bad:?}"
            );
        }
        let long = "x".repeat(10_000);
        match validate_name(&long) {
            Err(StoreError::BadName { name }) => assert_eq!(name.len(), 80),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn manifest_round_trip_and_malformed() {
        let mut m = Manifest::new();
        m.insert("a".into(), 0);
        m.insert("key-2".into(), u64::MAX);
        let bytes = encode_manifest(&m).unwrap();
        assert_eq!(decode_manifest(&bytes).unwrap(), m);
        assert_eq!(
            decode_manifest(&encode_manifest(&Manifest::new()).unwrap()).unwrap(),
            Manifest::new()
        );
        assert!(decode_manifest(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_manifest(&trailing).is_err());
        // A huge count with no entries fails without allocating.
        assert!(decode_manifest(&[0xff, 0xff, 0xff, 0xff]).is_err());
        // Duplicates and bad names.
        let dup = [&[0, 0, 0, 2][..], &[1, b'a'], &[0; 8], &[1, b'a'], &[0; 8]].concat();
        assert!(decode_manifest(&dup).is_err());
        let bad = [&[0, 0, 0, 1][..], &[1, b'A'], &[0; 8]].concat();
        assert!(decode_manifest(&bad).is_err());
    }

    #[test]
    fn header_parsing_is_bounded() {
        let header = encode_header(Kind::Share, "k", 7).unwrap();
        let mut file = header.clone();
        file.extend_from_slice(&[0u8; NONCE_LEN + TAG_LEN]);
        let p = parse(&file).unwrap();
        assert_eq!((p.kind, p.name, p.epoch), (Kind::Share as u8, &b"k"[..], 7));
        assert_eq!(p.header, &header[..]);
        // Every truncation fails cleanly.
        for n in 0..file.len() {
            assert!(parse(&file[..n]).is_err(), "prefix {n}");
        }
        let mut bad = file.clone();
        bad[4] = 2;
        assert!(parse(&bad).is_err());
        let mut bad = file.clone();
        bad[6] = 0;
        assert!(parse(&bad).is_err());
        let mut bad = file;
        bad[6] = 65;
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn share_names_are_canonical() {
        assert_eq!(parse_share_name("5.share"), Some(5));
        assert_eq!(parse_share_name("0.share"), Some(0));
        for n in [
            "+5.share",
            "05.share",
            "5.share.tmp",
            "5",
            "x.share",
            ".share",
        ] {
            assert_eq!(parse_share_name(n), None, "{n}");
        }
    }

    #[test]
    fn stored_share_debug_hides_the_secret() {
        let s = StoredShare {
            key_id: "k".into(),
            epoch: 3,
            secret: Zeroizing::new(b"TOPSECRET".to_vec()),
        };
        let d = format!("{s:?}");
        assert!(d.contains("epoch: 3") && !d.contains("TOPSECRET") && !d.contains("84"));
    }
}
