//! Share backups on the signer side: a signer encrypts its share only to the recovery key an
//! admin-quorum-signed document names for it; a kit restores a lost signer's data directory
//! (same identity, same share), and every bad input is refused with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use coffer_net::backup::{
    KitError, RecoveryHolder, RecoveryKeys, RecoveryKeysError, RecoverySecret, SignedRecoveryKeys,
    RECOVERY_KEYS_VERSION,
};
use coffer_net::frames::BackupJob;
use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::{Identity, NodeKey};
use coffer_proto::Scheme;
use coffer_signer::backup::{make_kit, open_kit, restore, BackupError};
use coffer_signer::keysource::KeyFileSource;
use coffer_signer::node::{KeyMeta, SignerNode};

fn temp(tag: &str) -> PathBuf {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    std::env::temp_dir().join(format!("coffer-backup-{tag}-{}", hex::encode(b)))
}

struct Setup {
    root: PathBuf,
    admins: Vec<Identity>,
    nodes: Vec<SignerNode>,
    keys: Vec<NodeKey>,
    public_key: String,
}

const KEY: &str = "k-backup";

fn source(dir: &Path) -> KeyFileSource {
    KeyFileSource::open(&dir.join("store.key"))
}

/// Three enrolled signers holding a 2-of-3 Ed25519 key (shares from an offline DKG).
fn setup(tag: &str) -> Setup {
    let root = temp(tag);
    let admins: Vec<Identity> = (0..3)
        .map(|i| Identity::generate(&format!("admin{i}")))
        .collect();
    let mut publics = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("s{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let src = KeyFileSource::create(&dir.join("store.key")).unwrap();
        publics.push(SignerNode::init(&dir, &format!("signer-{i}"), &src).unwrap());
    }
    let roster = Roster {
        version: 1,
        signers: publics.clone(),
        admins: admins.iter().map(|a| a.node_key()).collect(),
        admin_threshold: 2,
        server: Identity::generate("server").node_key(),
        dev_mode: true,
    };
    let signed = SignedRoster {
        signatures: vec![
            roster.sign_as_admin(&admins[0]).unwrap(),
            roster.sign_as_admin(&admins[1]).unwrap(),
        ],
        roster,
    };
    let shares = coffer_testkit::keygen(Scheme::Ed25519, 2, 3);
    let public_key = shares[0].header().unwrap().public_key;
    let keys: Vec<NodeKey> = publics.iter().map(|p| p.node_key).collect();
    let mut nodes = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let dir = root.join(format!("s{i}"));
        let node = SignerNode::open(&dir, &source(&dir)).unwrap();
        node.enrol(signed.clone()).unwrap();
        let meta = KeyMeta {
            key_id: KEY.into(),
            scheme: Scheme::Ed25519,
            threshold: 2,
            parties: keys.clone(),
            public_key: public_key.clone(),
            admins: vec![],
            admin_threshold: 0,
        };
        node.save_new_key(&meta, share).unwrap();
        nodes.push(node);
    }
    Setup {
        root,
        admins,
        nodes,
        keys,
        public_key,
    }
}

fn recovery_doc(s: &Setup, signers: usize) -> (SignedRecoveryKeys, Vec<RecoverySecret>) {
    let secrets: Vec<RecoverySecret> = (0..3)
        .map(|_| RecoverySecret::generate().unwrap())
        .collect();
    let document = RecoveryKeys {
        version: RECOVERY_KEYS_VERSION,
        key_id: KEY.into(),
        holders: s
            .keys
            .iter()
            .zip(&secrets)
            .enumerate()
            .map(|(i, (k, r))| RecoveryHolder {
                signer: *k,
                holder: format!("holder-{i}"),
                recovery_key: r.public(),
            })
            .collect(),
    };
    let signatures = s.admins[..signers]
        .iter()
        .map(|a| document.sign_as_admin(a).unwrap())
        .collect();
    (
        SignedRecoveryKeys {
            document,
            signatures,
        },
        secrets,
    )
}

fn job(doc: SignedRecoveryKeys) -> BackupJob {
    BackupJob {
        recovery_keys: doc,
        vault_id: Some("v-1".into()),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_kit_restores_a_lost_signer_with_its_identity_and_share() {
    let s = setup("restore");
    let (doc, secrets) = recovery_doc(&s, 2);
    let kit = make_kit(&s.nodes[1], KEY, &job(doc), 1_700_000_000).unwrap();
    assert_eq!(kit.header.party_index, 1);
    assert_eq!(kit.header.group_public_key, s.public_key);
    assert_eq!(kit.header.recovery_key, secrets[1].public());
    assert_eq!(kit.header.vault_id.as_deref(), Some("v-1"));
    kit.verify_signature().unwrap();
    let original = s.nodes[1].share(KEY).unwrap().encode_secret().unwrap();

    // Only signer-1's own recovery key opens it.
    for (i, other) in secrets.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert!(
            matches!(
                open_kit(&kit, other),
                Err(BackupError::Kit(KitError::WrongRecoveryKey { .. }))
            ),
            "recovery key {i} opened signer-1's kit"
        );
    }

    // The disk is lost: restore into a fresh directory with a new store key.
    let lost = s.root.join("s1-restored");
    std::fs::create_dir_all(&lost).unwrap();
    let src = KeyFileSource::create(&lost.join("store.key")).unwrap();
    let report = restore(&lost, &src, &kit, &secrets[1]).unwrap();
    assert!(report.created_store);
    let back = SignerNode::open(&lost, &src).unwrap();
    assert_eq!(back.identity().node_key(), s.keys[1]);
    assert_eq!(back.roster().unwrap(), s.nodes[1].roster().unwrap());
    assert_eq!(
        back.key_meta(KEY).unwrap(),
        s.nodes[1].key_meta(KEY).unwrap()
    );
    assert_eq!(
        *back.share(KEY).unwrap().encode_secret().unwrap(),
        *original
    );

    // The same kit again, or into the live signer: not newer, refused, nothing changes.
    let before = files_under(&lost);
    assert!(matches!(
        restore(&lost, &src, &kit, &secrets[1]),
        Err(BackupError::Rollback {
            current: 0,
            offered: 0,
            ..
        })
    ));
    assert_eq!(files_under(&lost), before);
    // Another signer's directory: refused.
    let d0 = s.root.join("s0");
    assert!(matches!(
        restore(&d0, &source(&d0), &kit, &secrets[1]),
        Err(BackupError::OtherSigner { .. })
    ));
    std::fs::remove_dir_all(&s.root).unwrap();
}

#[test]
fn signers_encrypt_only_to_recovery_keys_the_admin_quorum_signed() {
    let s = setup("quorum");
    let (one, _) = recovery_doc(&s, 1);
    assert!(matches!(
        make_kit(&s.nodes[0], KEY, &job(one), 0),
        Err(BackupError::RecoveryKeys(RecoveryKeysError::Quorum {
            valid: 1,
            needed: 2
        }))
    ));
    // A document a server altered (its own recovery key for signer-0).
    let (mut doc, _) = recovery_doc(&s, 2);
    doc.document.holders[0].recovery_key = RecoverySecret::generate().unwrap().public();
    assert!(matches!(
        make_kit(&s.nodes[0], KEY, &job(doc), 0),
        Err(BackupError::RecoveryKeys(RecoveryKeysError::Quorum {
            valid: 0,
            ..
        }))
    ));
    // A document for another key.
    let (mut doc, _) = recovery_doc(&s, 0);
    doc.document.key_id = "k-other".into();
    doc.signatures = s.admins[..2]
        .iter()
        .map(|a| doc.document.sign_as_admin(a).unwrap())
        .collect();
    assert!(matches!(
        make_kit(&s.nodes[0], KEY, &job(doc), 0),
        Err(BackupError::RecoveryKeys(
            RecoveryKeysError::OtherKey { .. }
        ))
    ));
    // Signed by admins the signer did not pin.
    let (mut doc, _) = recovery_doc(&s, 0);
    let rogues: Vec<Identity> = (0..2)
        .map(|i| Identity::generate(&format!("r{i}")))
        .collect();
    doc.signatures = rogues
        .iter()
        .map(|a| doc.document.sign_as_admin(a).unwrap())
        .collect();
    assert!(matches!(
        make_kit(&s.nodes[0], KEY, &job(doc), 0),
        Err(BackupError::RecoveryKeys(RecoveryKeysError::Quorum {
            valid: 0,
            ..
        }))
    ));
    std::fs::remove_dir_all(&s.root).unwrap();
}

#[test]
fn corrupted_truncated_or_relabelled_kits_write_nothing() {
    let s = setup("bad");
    let (doc, secrets) = recovery_doc(&s, 2);
    let kit = make_kit(&s.nodes[2], KEY, &job(doc), 0).unwrap();
    let bytes = kit.to_bytes().unwrap();
    let target = s.root.join("empty");
    std::fs::create_dir_all(&target).unwrap();
    let src = KeyFileSource::create(&target.join("store.key")).unwrap();
    let before = files_under(&target);

    // Truncated.
    assert!(matches!(
        coffer_net::backup::Kit::from_bytes(&bytes[..bytes.len() / 3]),
        Err(KitError::Malformed(_))
    ));
    // A flipped ciphertext byte (re-encoded, so the JSON is valid): the signature fails.
    let mut k = kit.clone();
    k.ciphertext[5] ^= 0x40;
    assert!(matches!(
        restore(&target, &src, &k, &secrets[2]),
        Err(BackupError::Kit(KitError::BadSignature { .. }))
    ));
    // A header relabelled to another key, vault or epoch.
    let tampers: [fn(&mut coffer_net::backup::Kit); 3] = [
        |k| k.header.key_id = "k-other".into(),
        |k| k.header.vault_id = Some("v-other".into()),
        |k| k.header.epoch += 1,
    ];
    for tamper in tampers {
        let mut k = kit.clone();
        tamper(&mut k);
        assert!(matches!(
            restore(&target, &src, &k, &secrets[2]),
            Err(BackupError::Kit(KitError::BadSignature { .. }))
        ));
    }
    // The wrong recovery key.
    assert!(matches!(
        restore(&target, &src, &kit, &secrets[0]),
        Err(BackupError::Kit(KitError::WrongRecoveryKey { .. }))
    ));
    assert_eq!(
        files_under(&target),
        before,
        "a refused kit wrote something"
    );
    std::fs::remove_dir_all(&s.root).unwrap();
}
