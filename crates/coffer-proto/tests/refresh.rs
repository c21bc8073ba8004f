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
