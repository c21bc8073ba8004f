//! Every scheme end to end through the session API: DKG at several sizes, signing by
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! different signer subsets, verified by an independent implementation.

use coffer_proto::{ceremony, verify, DerivationPath, Scheme};
use coffer_testkit::{keygen, subsets};

fn sign_with_every_subset(scheme: Scheme, t: u16, n: u16) {
    let shares = keygen(scheme, t, n);
    assert_eq!(shares.len(), usize::from(n));
    let pk = shares[0].public_key(&DerivationPath::root()).unwrap();
    for s in &shares {
        assert_eq!(
            s.public_key(&DerivationPath::root()).unwrap(),
            pk,
            "all parties agree on the key"
        );
    }
    let message = [0x42u8; 32];
    for subset in subsets(usize::from(n), usize::from(t)) {
        let group: Vec<_> = subset.iter().map(|i| shares[*i].clone()).collect();
        let sig = ceremony::sign(&group, &message, &DerivationPath::root()).unwrap();
        assert_eq!(sig.public_key, pk);
        assert!(
            verify::verify(scheme, &pk, &message, &sig.bytes).unwrap(),
            "{scheme} {subset:?}"
        );
    }
}

#[test]
fn bip340_signs_with_every_subset_2_of_3() {
    sign_with_every_subset(Scheme::SchnorrBip340, 2, 3);
}

#[test]
fn ed25519_signs_with_every_subset_3_of_5() {
    sign_with_every_subset(Scheme::Ed25519, 3, 5);
}

#[test]
fn ecdsa_signs_with_every_subset_2_of_3() {
    std::env::set_var("COFFER_INSECURE_TEST_PRIMES", "1");
    let start = std::time::Instant::now();
    sign_with_every_subset(Scheme::EcdsaSecp256k1, 2, 3);
    eprintln!("ecdsa 2-of-3 keygen+3 signatures: {:?}", start.elapsed());
}
