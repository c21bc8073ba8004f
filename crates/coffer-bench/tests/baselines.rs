//! The baselines measure real work: raw-library signatures verify under the raw group keys
//! with the independent verifiers, and the session-layer operations succeed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_bench::{ours, raw};
use coffer_proto::{ceremony, verify, GroupParams, Scheme};

#[test]
fn raw_frost_signatures_verify_independently() {
    let msg = [0x5au8; 32];
    let g = raw::frost_keygen::<frost_secp256k1_tr::Secp256K1Sha256TR>(2, 3).unwrap();
    let sig = raw::frost_sign(&g, 2, &msg).unwrap();
    let pk = g.public.verifying_key().serialize().unwrap();
    assert!(verify::verify(Scheme::SchnorrBip340, &pk[1..], &msg, &sig).unwrap());
    let refreshed = raw::frost_refresh(&g).unwrap();
    assert_eq!(refreshed.public.verifying_key(), g.public.verifying_key());

    let g = raw::frost_keygen::<frost_ed25519::Ed25519Sha512>(3, 5).unwrap();
    let sig = raw::frost_sign(&g, 3, &msg).unwrap();
    let pk = g.public.verifying_key().serialize().unwrap();
    assert!(verify::verify(Scheme::Ed25519, &pk, &msg, &sig).unwrap());
}

#[test]
fn raw_and_session_layer_cggmp_operations_run() {
    let primes = coffer_testkit::test_primes().take(3).unwrap();
    let shares = raw::cggmp_group(2, 3, primes.clone()).unwrap();
    raw::cggmp_sign(&shares, 2, [1; 32]).unwrap();
    let presigs = raw::cggmp_presign(&shares, 2).unwrap();
    raw::cggmp_online(presigs, b"message").unwrap();

    let g = GroupParams::new(2, 3).unwrap();
    ours::keygen(Scheme::EcdsaSecp256k1, g).unwrap();
    let ours_shares = ceremony::keygen_with_primes(Scheme::EcdsaSecp256k1, g, primes).unwrap();
    ours::sign(&ours_shares, 2, &[1; 32]).unwrap();
    let presigs = ours::presign(&ours_shares, 2).unwrap();
    ours::online(presigs, b"message").unwrap();
}
