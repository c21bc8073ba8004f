//! Refresh through the public API for every scheme: same public key and chain code, next
//! epoch, every share changes, new shares sign, and a mix of old and new shares does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_proto::{ceremony, verify, DerivationPath, Scheme};
use coffer_testkit::{keygen, test_primes};

fn refresh_properties(scheme: Scheme) {
    let old = keygen(scheme, 2, 3);
    let new = ceremony::refresh(&old, test_primes()).unwrap();
    let root = DerivationPath::root();
    assert_eq!(new.len(), 3);
    for (o, n) in old.iter().zip(&new) {
        assert_eq!(n.epoch().0, 1);
        assert_eq!(n.public_key(&root).unwrap(), o.public_key(&root).unwrap());
        assert_eq!(n.chain_code().unwrap(), o.chain_code().unwrap());
        assert_ne!(n.encode_secret().unwrap(), o.encode_secret().unwrap());
    }
    let msg = [0x5au8; 32];
    let sig = ceremony::sign(&new[1..], &msg, &root).unwrap();
    assert!(verify::verify(scheme, &sig.public_key, &msg, &sig.bytes).unwrap());
    // Mixed epochs are refused up front...
    assert!(ceremony::sign(&[old[0].clone(), new[1].clone()], &msg, &root).is_err());
    // ...and a second refresh moves on again.
    let newer = ceremony::refresh(&new, test_primes()).unwrap();
    assert_eq!(newer[0].epoch().0, 2);
}

#[test]
fn ecdsa_refresh() {
    refresh_properties(Scheme::EcdsaSecp256k1);
}

#[test]
fn bip340_refresh() {
    refresh_properties(Scheme::SchnorrBip340);
}

#[test]
fn ed25519_refresh() {
    refresh_properties(Scheme::Ed25519);
}

#[test]
fn refresh_needs_every_share() {
    let old = keygen(Scheme::Ed25519, 2, 3);
    assert!(ceremony::refresh(&old[..2], test_primes()).is_err());
}

fn reshare_removing_a_party(scheme: Scheme) {
    use coffer_proto::{share_file, PartyIndex};
    let old = keygen(scheme, 2, 3);
    let keep = [old[0].clone(), old[2].clone()];
    let new = ceremony::refresh_removing(&keep, &[PartyIndex::unchecked(1)]).unwrap();
    let root = DerivationPath::root();
    let members = vec![PartyIndex::unchecked(0), PartyIndex::unchecked(2)];
    for n in &new {
        assert_eq!(n.members(), members);
        assert_eq!(n.epoch().0, 1);
        assert_eq!(n.params().unwrap().n(), 2);
        assert_eq!(
            n.public_key(&root).unwrap(),
            old[0].public_key(&root).unwrap()
        );
        assert_eq!(n.header().unwrap().members, Some(vec![0, 2]));
    }
    let msg = [0x77u8; 32];
    let sig = ceremony::sign(&new, &msg, &root).unwrap();
    assert!(verify::verify(scheme, &sig.public_key, &msg, &sig.bytes).unwrap());
    // The removed party's share is refused next to the new ones.
    assert!(ceremony::sign(&[old[1].clone(), new[0].clone()], &msg, &root).is_err());
    // The smaller group keeps working: HD signing, refresh, and its share files.
    let path: DerivationPath = "m/4/2".parse().unwrap();
    let child = ceremony::sign(&new, &msg, &path).unwrap();
    assert!(verify::verify(scheme, &child.public_key, &msg, &child.bytes).unwrap());
    let again = ceremony::refresh(&new, test_primes()).unwrap();
    assert_eq!(again[1].members(), members);
    let p = share_file::Passphrase::new("pw".into()).unwrap();
    let bytes = share_file::seal(&again[1], &p, share_file::KdfParams::default()).unwrap();
    assert_eq!(
        share_file::open(&bytes, &p).unwrap().header().unwrap(),
        again[1].header().unwrap()
    );
    // A reshare must be given exactly the remaining parties.
    assert!(ceremony::refresh_removing(&old, &[PartyIndex::unchecked(1)]).is_err());
    assert!(ceremony::refresh_removing(
        &[old[0].clone()],
        &[PartyIndex::unchecked(1), PartyIndex::unchecked(2)]
    )
    .is_err());
}

#[test]
fn bip340_reshare_removes_a_party() {
    reshare_removing_a_party(Scheme::SchnorrBip340);
}

#[test]
fn ed25519_reshare_removes_a_party() {
    reshare_removing_a_party(Scheme::Ed25519);
}

#[test]
fn ecdsa_cannot_reshare() {
    let old = keygen(Scheme::EcdsaSecp256k1, 2, 3);
    let err = ceremony::refresh_removing(&old[..2], &[coffer_proto::PartyIndex::unchecked(2)])
        .unwrap_err();
    assert!(err.to_string().contains("cannot reshare"), "{err}");
}
