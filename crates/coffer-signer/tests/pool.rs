//! The presignature pool on a signer's disk: a pooled presignature survives a restart, is
//! handed out once (taking it is durable before it is used: after a reopen it is gone), is
//! bound to its signer set and path, signs correctly after the round trip through the
//! store, and `discard_all` (after a restore from backup) leaves nothing usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_proto::ecdsa::EcdsaPresignature;
use coffer_proto::session::run_local;
use coffer_proto::{protocol, verify, DerivationPath, PartyIndex, Scheme, SessionId};
use coffer_signer::keysource::KeyFileSource;
use coffer_signer::pool;
use coffer_signer::store::ShareStore;
use sha2::Digest;

fn temp(tag: &str) -> std::path::PathBuf {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    std::env::temp_dir().join(format!("coffer-pool-{tag}-{}", hex::encode(b)))
}

#[test]
fn pooled_presignatures_are_spent_once_and_survive_restarts() {
    let shares = coffer_testkit::keygen(Scheme::EcdsaSecp256k1, 2, 3);
    let signers = [shares[0].clone(), shares[1].clone()];
    let set: Vec<PartyIndex> = signers.iter().map(|s| s.party()).collect();
    let path: DerivationPath = "m".parse().unwrap();
    let presign = || -> (SessionId, Vec<EcdsaPresignature>) {
        let sid = SessionId::random();
        let mut sessions: Vec<_> = signers
            .iter()
            .map(|s| protocol::presign(s, sid, &set, &path).unwrap())
            .collect();
        let out = run_local(&mut sessions, |m, _| vec![m])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        (sid, out)
    };

    // Two signers' stores, each pooling its half.
    let dirs = [temp("a"), temp("b")];
    let keyfiles: Vec<_> = dirs
        .iter()
        .map(|d| {
            std::fs::create_dir_all(d).unwrap();
            KeyFileSource::create(&d.join("store.key")).unwrap()
        })
        .collect();
    let stores: Vec<ShareStore> = dirs
        .iter()
        .zip(&keyfiles)
        .map(|(d, k)| ShareStore::create(&d.join("store"), k).unwrap())
        .collect();
    let (first, halves) = presign();
    for (store, half) in stores.iter().zip(&halves) {
        pool::add(store, "k-1", first, "m", &[0, 1], half).unwrap();
    }
    let (second, halves) = presign();
    for (store, half) in stores.iter().zip(&halves) {
        pool::add(store, "k-1", second, "m", &[0, 1], half).unwrap();
    }
    assert_eq!(pool::levels(&stores[0], "k-1"), vec![("m".to_string(), 2)]);
    drop(stores);

    // Restart: reopen the stores; the pool is there.
    let stores: Vec<ShareStore> = dirs
        .iter()
        .zip(&keyfiles)
        .map(|(d, k)| ShareStore::open(&d.join("store"), k).unwrap())
        .collect();
    assert_eq!(pool::levels(&stores[1], "k-1"), vec![("m".to_string(), 2)]);

    // Take the first on both signers and sign with it.
    let taken: Vec<EcdsaPresignature> = stores
        .iter()
        .map(|s| {
            pool::take::<EcdsaPresignature>(s, "k-1", &first)
                .unwrap()
                .unwrap()
        })
        .collect();
    assert!(taken.iter().all(|p| p.signers() == set.as_slice()));
    let sid = SessionId::random();
    let mut online: Vec<_> = taken
        .into_iter()
        .zip(&set)
        .map(|(p, me)| coffer_proto::presigned::start(sid, *me, p, b"pay".to_vec()).unwrap())
        .collect();
    let digest: [u8; 32] = sha2::Sha256::digest(b"pay").into();
    for r in run_local(&mut online, |m, _| vec![m]) {
        let sig = r.unwrap();
        assert!(
            verify::verify(Scheme::EcdsaSecp256k1, &sig.public_key, &digest, &sig.bytes).unwrap()
        );
    }

    // Spent means gone, also after a restart: never handed out twice.
    assert!(pool::take::<EcdsaPresignature>(&stores[0], "k-1", &first)
        .unwrap()
        .is_none());
    drop(stores);
    let stores: Vec<ShareStore> = dirs
        .iter()
        .zip(&keyfiles)
        .map(|(d, k)| ShareStore::open(&d.join("store"), k).unwrap())
        .collect();
    assert!(pool::take::<EcdsaPresignature>(&stores[0], "k-1", &first)
        .unwrap()
        .is_none());
    assert_eq!(pool::levels(&stores[0], "k-1"), vec![("m".to_string(), 1)]);

    // After a restore from backup every pooled item is discarded.
    assert_eq!(
        pool::discard_all(&stores[0], &["k-1".to_string()]).unwrap(),
        1
    );
    assert!(pool::levels(&stores[0], "k-1").is_empty());
    assert!(pool::take::<EcdsaPresignature>(&stores[0], "k-1", &second)
        .unwrap()
        .is_none());
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
