//! Integration tests of the signer's encrypted share store: round trips, key sources,
//! anti-rollback, integrity failures, crash safety, names, `list` and `prune`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use coffer_signer::keysource::{Argon2Cost, KeyFileSource, KeySource, PassphraseSource};
use coffer_signer::store::{CrashPoint, ShareStore, StoreError};
use proptest::prelude::*;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let mut r = [0u8; 8];
        OsRng.fill_bytes(&mut r);
        let p = std::env::temp_dir().join(format!("coffer-store-test-{}", hex::encode(r)));
        fs::create_dir(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn store(&self) -> PathBuf {
        self.0.join("store")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn pass(p: &str) -> PassphraseSource {
    PassphraseSource::with_params(Zeroizing::new(p.to_string()), Argon2Cost::INSECURE_TEST).unwrap()
}

fn good() -> PassphraseSource {
    pass("correct horse battery staple")
}

fn new_store(t: &TempDir) -> ShareStore {
    ShareStore::create(&t.store(), &good()).unwrap()
}

fn reopen(t: &TempDir) -> ShareStore {
    ShareStore::open(&t.store(), &good()).unwrap()
}

fn share_file(t: &TempDir, key_id: &str, epoch: u64) -> PathBuf {
    t.store()
        .join("shares")
        .join(key_id)
        .join(format!("{epoch}.share"))
}

fn manifest_file(t: &TempDir) -> PathBuf {
    t.store().join("store.manifest")
}

fn is_integrity<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Integrity { .. }))
}

fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tmp_files(&p));
        } else if p.to_string_lossy().ends_with(".tmp") {
            out.push(p);
        }
    }
    out
}

#[test]
fn share_and_blob_round_trip() {
    let t = TempDir::new();
    let store = new_store(&t);
    assert!(store.get("k1").unwrap().is_none());
    store.put("k1", 0, b"share at epoch 0").unwrap();
    store.put("k1", 1, b"share at epoch 1").unwrap();
    store.put_blob("identity", b"identity secret").unwrap();
    store.put_blob("empty", b"").unwrap();
    drop(store);

    let store = reopen(&t);
    let s = store.get("k1").unwrap().unwrap();
    assert_eq!((s.key_id.as_str(), s.epoch), ("k1", 1));
    assert_eq!(s.secret.as_slice(), b"share at epoch 1");
    assert!(!format!("{s:?}").contains("share at"));
    assert_eq!(
        store.get_blob("identity").unwrap().unwrap().as_slice(),
        b"identity secret"
    );
    assert_eq!(store.get_blob("empty").unwrap().unwrap().as_slice(), b"");
    assert!(store.get_blob("missing").unwrap().is_none());

    store.put_blob("identity", b"replaced").unwrap();
    assert_eq!(
        store.get_blob("identity").unwrap().unwrap().as_slice(),
        b"replaced"
    );
    store.delete_blob("identity").unwrap();
    assert!(store.get_blob("identity").unwrap().is_none());
    store.delete_blob("identity").unwrap();

    // Nothing on disk is plaintext.
    for f in [
        share_file(&t, "k1", 1),
        t.store().join("blobs").join("empty.blob"),
    ] {
        let bytes = fs::read(&f).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"share at"),
            "{}",
            f.display()
        );
    }
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"s").unwrap();
    store.put_blob("b", b"x").unwrap();
    let mode = |p: PathBuf| fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    for d in [
        t.store(),
        t.store().join("shares"),
        t.store().join("shares/k"),
        t.store().join("blobs"),
    ] {
        assert_eq!(mode(d.clone()), 0o700, "{}", d.display());
    }
    for f in [
        "store.salt",
        "store.check",
        "store.manifest",
        "shares/k/1.share",
        "blobs/b.blob",
    ] {
        assert_eq!(mode(t.store().join(f)), 0o600, "{f}");
    }
}

#[test]
fn create_refuses_an_existing_store_and_open_needs_one() {
    let t = TempDir::new();
    drop(new_store(&t));
    assert!(matches!(
        ShareStore::create(&t.store(), &good()),
        Err(StoreError::Exists { .. })
    ));
    assert!(matches!(
        ShareStore::open(t.path(), &good()),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn wrong_passphrase_is_wrong_key() {
    let t = TempDir::new();
    new_store(&t).put("k", 1, b"s").unwrap();
    let err = ShareStore::open(&t.store(), &pass("not the right passphrase")).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("passphrase"));
    // Another Argon2 cost is another key, too.
    let other_cost = PassphraseSource::with_params(
        Zeroizing::new("correct horse battery staple".into()),
        Argon2Cost {
            m_cost_kib: 16,
            t_cost: 1,
            p_cost: 1,
        },
    )
    .unwrap();
    assert!(matches!(
        ShareStore::open(&t.store(), &other_cost),
        Err(StoreError::WrongKey { .. })
    ));
}

#[test]
fn key_file_source() {
    let t = TempDir::new();
    let key_path = t.path().join("store.key");
    let source = KeyFileSource::create(&key_path).unwrap();
    assert!(matches!(
        KeyFileSource::create(&key_path),
        Err(StoreError::Exists { .. })
    ));
    assert!(source.describe().starts_with("key file "));
    let store = ShareStore::create(&t.store(), &source).unwrap();
    store.put("k", 3, b"secret").unwrap();
    store.put_blob("b", b"blob").unwrap();
    drop(store);

    let store = ShareStore::open(&t.store(), &KeyFileSource::open(&key_path)).unwrap();
    assert_eq!(
        store.get("k").unwrap().unwrap().secret.as_slice(),
        b"secret"
    );
    drop(store);

    // Another key file, or a passphrase, does not open it.
    let other = KeyFileSource::create(&t.path().join("other.key")).unwrap();
    let err = ShareStore::open(&t.store(), &other).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("other.key"));
    assert!(matches!(
        ShareStore::open(&t.store(), &good()),
        Err(StoreError::WrongKey { .. })
    ));
    // A missing key file is an I/O error naming it.
    let missing = KeyFileSource::open(&t.path().join("missing.key"));
    let err = ShareStore::open(&t.store(), &missing).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }) && err.to_string().contains("missing.key"));
}

#[test]
fn same_key_file_two_stores_files_do_not_cross() {
    // With a key file, two stores share a key; the salt in the associated data still keeps
    // their files apart.
    let t = TempDir::new();
    let source = KeyFileSource::create(&t.path().join("k.key")).unwrap();
    let a = ShareStore::create(&t.path().join("a"), &source).unwrap();
    let b = ShareStore::create(&t.path().join("b"), &source).unwrap();
    a.put("k", 1, b"from a").unwrap();
    b.put("k", 1, b"from b").unwrap();
    fs::copy(
        t.path().join("a/shares/k/1.share"),
        t.path().join("b/shares/k/1.share"),
    )
    .unwrap();
    assert!(is_integrity(b.get("k")));
}

#[test]
fn rollback_and_same_epoch_are_refused() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 5, b"five").unwrap();
    match store.put("k", 4, b"four") {
        Err(StoreError::Rollback {
            key_id,
            current,
            offered,
        }) => assert_eq!((key_id.as_str(), current, offered), ("k", 5, 4)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.put("k", 5, b"five again"),
        Err(StoreError::Rollback {
            current: 5,
            offered: 5,
            ..
        })
    ));
    let s = store.get("k").unwrap().unwrap();
    assert_eq!((s.epoch, s.secret.as_slice()), (5, &b"five"[..]));
    // Other keys are independent.
    store.put("other", 0, b"zero").unwrap();
    assert_eq!(store.get("other").unwrap().unwrap().epoch, 0);
    // The refusal holds across a reopen.
    drop(store);
    assert!(matches!(
        reopen(&t).put("k", 5, b"x"),
        Err(StoreError::Rollback { .. })
    ));
}

#[test]
fn flipped_byte_is_an_integrity_error() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 2, b"the share").unwrap();
    store.put_blob("b", b"the blob").unwrap();
    let path = share_file(&t, "k", 2);
    let original = fs::read(&path).unwrap();
    // Every position: header (magic, kind, name, epoch), nonce, ciphertext, tag.
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert!(is_integrity(store.get("k")), "byte {i}");
    }
    fs::write(&path, &original).unwrap();
    assert_eq!(
        store.get("k").unwrap().unwrap().secret.as_slice(),
        b"the share"
    );

    let blob = t.store().join("blobs/b.blob");
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    fs::write(&blob, &bytes).unwrap();
    assert!(is_integrity(store.get_blob("b")));

    // Truncated and emptied files.
    fs::write(&path, &original[..original.len() - 1]).unwrap();
    assert!(is_integrity(store.get("k")));
    fs::write(&path, b"").unwrap();
    assert!(is_integrity(store.get("k")));
}

#[test]
fn older_sealed_file_copied_over_the_current_one_is_detected() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 4, b"epoch four").unwrap();
    store.put("k", 5, b"epoch five").unwrap();
    fs::copy(share_file(&t, "k", 4), share_file(&t, "k", 5)).unwrap();
    let err = store.get("k").unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err:?}");
    assert!(err.to_string().contains("epoch 4"), "{err}");
}

#[test]
fn files_moved_between_keys_kinds_or_names_are_detected() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("a", 1, b"share of a").unwrap();
    store.put("b", 1, b"share of b").unwrap();
    store.put_blob("x", b"blob x").unwrap();
    store.put_blob("y", b"blob y").unwrap();
    // A share of another key.
    fs::copy(share_file(&t, "b", 1), share_file(&t, "a", 1)).unwrap();
    assert!(is_integrity(store.get("a")));
    // A blob where a share should be.
    fs::copy(t.store().join("blobs/x.blob"), share_file(&t, "b", 1)).unwrap();
    assert!(is_integrity(store.get("b")));
    // Another blob's file.
    fs::copy(
        t.store().join("blobs/x.blob"),
        t.store().join("blobs/y.blob"),
    )
    .unwrap();
    assert!(is_integrity(store.get_blob("y")));
    // The manifest's file as a blob.
    fs::copy(manifest_file(&t), t.store().join("blobs/x.blob")).unwrap();
    assert!(is_integrity(store.get_blob("x")));
}

#[test]
fn missing_share_file_is_an_integrity_error() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 7, b"s").unwrap();
    fs::remove_file(share_file(&t, "k", 7)).unwrap();
    let err = store.get("k").unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }) && err.to_string().contains("missing"));
}

#[test]
fn edited_or_missing_manifest_is_an_integrity_error() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"s").unwrap();
    let path = manifest_file(&t);
    let original = fs::read(&path).unwrap();
    for i in [0, 6, 10, original.len() / 2, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[i] ^= 0x04;
        fs::write(&path, &bytes).unwrap();
        assert!(is_integrity(store.get("k")), "byte {i}");
        assert!(is_integrity(store.list()), "byte {i}");
        assert!(is_integrity(store.put("k", 2, b"t")), "byte {i}");
    }
    // A blob file (authentic, same store) in place of the manifest.
    store.put_blob("m", b"\0\0\0\0").unwrap();
    fs::copy(t.store().join("blobs/m.blob"), &path).unwrap();
    assert!(is_integrity(store.list()));
    fs::write(&path, &original).unwrap();
    assert_eq!(store.list().unwrap(), vec![("k".to_string(), 1)]);
    drop(store);
    fs::remove_file(&path).unwrap();
    assert!(is_integrity(ShareStore::open(&t.store(), &good())));
}

#[test]
fn crash_after_temp_write_keeps_the_previous_share() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"epoch one").unwrap();
    store
        .put_crashing_at("k", 2, b"epoch two", CrashPoint::ShareTempWritten)
        .unwrap();
    drop(store);
    assert_eq!(tmp_files(&t.store()).len(), 1);
    assert!(!share_file(&t, "k", 2).exists());

    let store = reopen(&t);
    assert!(
        tmp_files(&t.store()).is_empty(),
        "temp files are cleaned on open"
    );
    let s = store.get("k").unwrap().unwrap();
    assert_eq!((s.epoch, s.secret.as_slice()), (1, &b"epoch one"[..]));
    store.put("k", 2, b"epoch two").unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().epoch, 2);
}

#[test]
fn crash_after_rename_keeps_the_previous_share() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"epoch one").unwrap();
    store
        .put_crashing_at("k", 2, b"lost epoch two", CrashPoint::ShareRenamed)
        .unwrap();
    drop(store);
    assert!(share_file(&t, "k", 2).exists());

    let store = reopen(&t);
    let s = store.get("k").unwrap().unwrap();
    assert_eq!((s.epoch, s.secret.as_slice()), (1, &b"epoch one"[..]));
    assert_eq!(store.list().unwrap(), vec![("k".to_string(), 1)]);
    // The uncommitted file is replaced by a later put of the same epoch.
    store.put("k", 2, b"epoch two").unwrap();
    let s = store.get("k").unwrap().unwrap();
    assert_eq!((s.epoch, s.secret.as_slice()), (2, &b"epoch two"[..]));
}

#[test]
fn crash_before_manifest_rename_keeps_the_previous_share() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"epoch one").unwrap();
    store
        .put_crashing_at("k", 2, b"epoch two", CrashPoint::ManifestTempWritten)
        .unwrap();
    drop(store);
    assert_eq!(tmp_files(&t.store()).len(), 1);

    let store = reopen(&t);
    assert!(tmp_files(&t.store()).is_empty());
    assert_eq!(
        store.get("k").unwrap().unwrap().secret.as_slice(),
        b"epoch one"
    );
    store.put("k", 2, b"epoch two").unwrap();
    assert_eq!(
        store.get("k").unwrap().unwrap().secret.as_slice(),
        b"epoch two"
    );
}

#[test]
fn crash_during_the_first_put_leaves_no_share() {
    for at in [
        CrashPoint::ShareTempWritten,
        CrashPoint::ShareRenamed,
        CrashPoint::ManifestTempWritten,
    ] {
        let t = TempDir::new();
        let store = new_store(&t);
        store.put_crashing_at("k", 0, b"first", at).unwrap();
        drop(store);
        let store = reopen(&t);
        assert!(store.get("k").unwrap().is_none(), "{at:?}");
        assert!(store.list().unwrap().is_empty(), "{at:?}");
        store.put("k", 0, b"first").unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"first");
    }
}

#[test]
fn crash_points_still_refuse_rollback() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 3, b"three").unwrap();
    assert!(matches!(
        store.put_crashing_at("k", 2, b"two", CrashPoint::ShareRenamed),
        Err(StoreError::Rollback { .. })
    ));
    assert!(!share_file(&t, "k", 2).exists());
}

#[test]
fn bad_names_are_refused() {
    let t = TempDir::new();
    let store = new_store(&t);
    let long = "a".repeat(65);
    for bad in [
        "",
        "../escape",
        "a/b",
        "A",
        "a.b",
        "..",
        "k\0",
        "ké",
        long.as_str(),
    ] {
        assert!(
            matches!(store.put(bad, 1, b"s"), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.get(bad), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.prune(bad), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.put_blob(bad, b"s"), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.get_blob(bad), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.delete_blob(bad), Err(StoreError::BadName { .. })),
            "{bad:?}"
        );
    }
    assert!(!t.path().join("escape").exists());
    let max = "z".repeat(64);
    store.put(&max, 1, b"s").unwrap();
    store.put_blob(&max, b"s").unwrap();
}

#[test]
fn list_and_prune() {
    let t = TempDir::new();
    let store = new_store(&t);
    assert!(store.list().unwrap().is_empty());
    for e in [1, 2, 5] {
        store.put("k", e, format!("k{e}").as_bytes()).unwrap();
    }
    store.put("a", 9, b"a9").unwrap();
    assert_eq!(
        store.list().unwrap(),
        vec![("a".to_string(), 9), ("k".to_string(), 5)]
    );
    // An uncommitted newer file (crash after rename) survives pruning.
    store
        .put_crashing_at("k", 6, b"k6", CrashPoint::ShareRenamed)
        .unwrap();
    store.prune("k").unwrap();
    for (e, exists) in [(1, false), (2, false), (5, true), (6, true)] {
        assert_eq!(share_file(&t, "k", e).exists(), exists, "epoch {e}");
    }
    assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"k5");
    assert!(share_file(&t, "a", 9).exists());
    store.prune("a").unwrap();
    store.prune("unknown").unwrap();
    assert!(share_file(&t, "a", 9).exists());
}

#[test]
fn too_large_secret_is_refused() {
    let t = TempDir::new();
    let store = new_store(&t);
    let big = vec![0u8; coffer_signer::store::MAX_SECRET_LEN + 1];
    assert!(matches!(
        store.put("k", 1, &big),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(matches!(
        store.put_blob("b", &big),
        Err(StoreError::TooLarge { .. })
    ));
}

#[test]
fn store_is_shared_between_threads() {
    let t = TempDir::new();
    let store = std::sync::Arc::new(new_store(&t));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                for e in 0..5u64 {
                    store.put(&format!("key-{i}"), e, &[i as u8; 8]).unwrap();
                    store.put_blob(&format!("blob-{i}"), &[e as u8]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let list = store.list().unwrap();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|(_, e)| *e == 4));
}

#[test]
fn errors_do_not_leak_secrets() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 2, b"SUPERSECRET").unwrap();
    let errs = [store.put("k", 1, b"SUPERSECRET").unwrap_err(), {
        fs::copy(manifest_file(&t), share_file(&t, "k", 2)).unwrap();
        store.get("k").unwrap_err()
    }];
    for e in errs {
        assert!(!format!("{e} {e:?}").contains("SUPERSECRET"));
    }
    assert!(!format!("{store:?}").contains("key:"));
}

fn proptest_store() -> (TempDir, ShareStore) {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 1, b"share").unwrap();
    store.put_blob("b", b"blob").unwrap();
    (t, store)
}

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

#[test]
fn arbitrary_share_file_never_panics() {
    let (t, store) = proptest_store();
    let path = share_file(&t, "k", 1);
    proptest!(cases(), |(bytes in proptest::collection::vec(any::<u8>(), 0..512))| {
        fs::write(&path, &bytes).unwrap();
        prop_assert!(is_integrity(store.get("k")));
    });
}

#[test]
fn arbitrary_tail_after_a_valid_header_never_panics() {
    let (t, store) = proptest_store();
    let path = share_file(&t, "k", 1);
    let original = fs::read(&path).unwrap();
    proptest!(cases(), |(tail in proptest::collection::vec(any::<u8>(), 0..256), cut in 0usize..80)| {
        let mut bytes = original.clone();
        bytes.truncate(cut.min(bytes.len()));
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();
        // A cut at or past the end with nothing appended leaves the file intact: it reads.
        if bytes == original {
            prop_assert!(store.get("k").is_ok());
        } else {
            prop_assert!(is_integrity(store.get("k")));
        }
    });
}

#[test]
fn arbitrary_manifest_and_blob_never_panic() {
    let (t, store) = proptest_store();
    let blob = t.store().join("blobs/b.blob");
    let manifest = manifest_file(&t);
    proptest!(cases(), |(bytes in proptest::collection::vec(any::<u8>(), 0..512))| {
        fs::write(&blob, &bytes).unwrap();
        prop_assert!(is_integrity(store.get_blob("b")));
        fs::write(&manifest, &bytes).unwrap();
        prop_assert!(is_integrity(store.get("k")));
        prop_assert!(is_integrity(store.list()));
    });
}

fn staged_file(t: &TempDir, key_id: &str, epoch: u64) -> PathBuf {
    t.store()
        .join("shares")
        .join(key_id)
        .join(format!("{epoch}.staged"))
}

#[test]
fn a_staged_share_is_not_current_until_committed() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 0, b"old").unwrap();
    store.stage("k", 1, b"new").unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"old");
    assert_eq!(store.list().unwrap(), vec![("k".to_string(), 0)]);
    assert_eq!(store.staged("k").unwrap(), Some(1));
    assert_eq!(
        store.get_staged("k", 1).unwrap().unwrap().secret.as_slice(),
        b"new"
    );
    assert!(staged_file(&t, "k", 1).exists() && !share_file(&t, "k", 1).exists());
    store.commit("k", 1).unwrap();
    let got = store.get("k").unwrap().unwrap();
    assert_eq!((got.epoch, got.secret.as_slice()), (1, &b"new"[..]));
    assert_eq!(store.staged("k").unwrap(), None);
    assert!(!staged_file(&t, "k", 1).exists());
    // The old epoch stays on disk until pruned, and a second commit is a no-op.
    assert!(share_file(&t, "k", 0).exists());
    store.commit("k", 1).unwrap();
    store.prune("k").unwrap();
    assert!(!share_file(&t, "k", 0).exists() && share_file(&t, "k", 1).exists());
}

#[test]
fn staging_refuses_rollback_and_keeps_one_staged_epoch() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 3, b"three").unwrap();
    for bad in [2, 3] {
        assert!(matches!(
            store.stage("k", bad, b"x"),
            Err(StoreError::Rollback {
                current: 3,
                offered,
                ..
            }) if offered == bad
        ));
    }
    store.stage("k", 4, b"four").unwrap();
    // A later refresh whose earlier run was never committed replaces the staged share.
    store.stage("k", 5, b"five").unwrap();
    assert!(!staged_file(&t, "k", 4).exists());
    assert_eq!(store.staged("k").unwrap(), Some(5));
    assert!(matches!(
        store.commit("k", 4),
        Err(StoreError::NotStaged {
            epoch: 4,
            current: 3,
            ..
        })
    ));
    store.commit("k", 5).unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().epoch, 5);
}

#[test]
fn abort_drops_the_staged_share_and_never_undoes_a_commit() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 0, b"old").unwrap();
    store.stage("k", 1, b"new").unwrap();
    assert!(store.abort("k", 1).unwrap());
    assert!(!staged_file(&t, "k", 1).exists());
    assert_eq!(store.staged("k").unwrap(), None);
    // Idempotent, and the committed share is untouched.
    assert!(!store.abort("k", 1).unwrap());
    assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"old");
    assert!(matches!(
        store.commit("k", 1),
        Err(StoreError::NotStaged { .. })
    ));
    store.stage("k", 1, b"again").unwrap();
    store.commit("k", 1).unwrap();
    assert!(matches!(
        store.abort("k", 1),
        Err(StoreError::AlreadyCommitted {
            epoch: 1,
            current: 1,
            ..
        })
    ));
    assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"again");
}

#[test]
fn a_staged_share_survives_a_restart_and_commits_after_it() {
    let t = TempDir::new();
    {
        let store = new_store(&t);
        store.put("k", 0, b"old").unwrap();
        store.stage("k", 1, b"new").unwrap();
    }
    let store = reopen(&t);
    assert_eq!(store.get("k").unwrap().unwrap().epoch, 0);
    assert_eq!(store.staged("k").unwrap(), Some(1));
    store.commit("k", 1).unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"new");
}

#[test]
fn a_crashed_commit_keeps_the_old_share_and_can_be_retried_or_aborted() {
    for at in [
        CrashPoint::ShareTempWritten,
        CrashPoint::ShareRenamed,
        CrashPoint::ManifestTempWritten,
    ] {
        for finish_by_commit in [true, false] {
            let t = TempDir::new();
            {
                let store = new_store(&t);
                store.put("k", 0, b"old").unwrap();
                store.stage("k", 1, b"new").unwrap();
                store.commit_crashing_at("k", 1, at).unwrap();
            }
            let store = reopen(&t);
            assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"old");
            assert_eq!(store.staged("k").unwrap(), Some(1), "{at:?}");
            if finish_by_commit {
                store.commit("k", 1).unwrap();
                assert_eq!(store.get("k").unwrap().unwrap().secret.as_slice(), b"new");
            } else {
                store.abort("k", 1).unwrap();
                assert!(!share_file(&t, "k", 1).exists(), "{at:?}");
                assert!(!staged_file(&t, "k", 1).exists(), "{at:?}");
                assert_eq!(store.get("k").unwrap().unwrap().epoch, 0);
            }
            assert!(tmp_files(t.path()).is_empty());
        }
    }
}

#[test]
fn a_staged_file_is_never_taken_for_a_share() {
    let t = TempDir::new();
    let store = new_store(&t);
    store.put("k", 0, b"old").unwrap();
    store.put("k", 1, b"one").unwrap();
    store.stage("k", 2, b"two").unwrap();
    // Renamed into the committed share's place, a staged file does not open as a share.
    fs::copy(staged_file(&t, "k", 2), share_file(&t, "k", 1)).unwrap();
    assert!(is_integrity(store.get("k")));
    // A share file copied into the staged slot does not commit.
    let t2 = TempDir::new();
    let store = new_store(&t2);
    store.put("k", 0, b"old").unwrap();
    store.put("k", 1, b"one").unwrap();
    fs::copy(share_file(&t2, "k", 1), staged_file(&t2, "k", 2)).unwrap();
    assert!(is_integrity(store.commit("k", 2)));
    assert_eq!(store.get("k").unwrap().unwrap().epoch, 1);
}
