//! Every scheme end to end through the session API: DKG at 2-of-3, 3-of-5 and 5-of-5,
//! signing by every signer subset (2-of-3) or a few (larger groups), every signature checked
//! by an independent implementation (libsecp256k1, ed25519-dalek).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_proto::{ceremony, verify, DerivationPath, Scheme};
use coffer_testkit::{keygen, subsets};

fn keygen_then_sign(scheme: Scheme, t: u16, n: u16, max_subsets: usize) {
    let shares = keygen(scheme, t, n);
    assert_eq!(shares.len(), usize::from(n));
    let pk = shares[0].public_key(&DerivationPath::root()).unwrap();
    assert_eq!(pk.len(), scheme.public_key_len());
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(
            s.public_key(&DerivationPath::root()).unwrap(),
            pk,
            "all parties agree on the key"
        );
        assert_eq!(usize::from(s.party().get()), i);
        assert_eq!(s.epoch().0, 0);
    }
    let message = match scheme {
        Scheme::Ed25519 => b"any length, Ed25519 signs the message itself".to_vec(),
        _ => vec![0x42u8; 32],
    };
    let all = subsets(usize::from(n), usize::from(t));
    let step = (all.len() / max_subsets).max(1);
    for subset in all.iter().step_by(step) {
        let group: Vec<_> = subset.iter().map(|i| shares[*i].clone()).collect();
        let sig = ceremony::sign(&group, &message, &DerivationPath::root()).unwrap();
        assert_eq!(sig.public_key, pk);
        assert!(
            verify::verify(scheme, &pk, &message, &sig.bytes).unwrap(),
            "{scheme} {subset:?}"
        );
        assert!(!verify::verify(scheme, &pk, &[0x43u8; 32], &sig.bytes).unwrap());
        assert_eq!(sig.recovery_id.is_some(), scheme == Scheme::EcdsaSecp256k1);
    }
}

#[test]
fn bip340_2_of_3_every_subset_signs() {
    keygen_then_sign(Scheme::SchnorrBip340, 2, 3, 3);
}

#[test]
fn bip340_3_of_5_and_5_of_5() {
    keygen_then_sign(Scheme::SchnorrBip340, 3, 5, 3);
    keygen_then_sign(Scheme::SchnorrBip340, 5, 5, 1);
}

#[test]
fn ed25519_2_of_3_every_subset_signs() {
    keygen_then_sign(Scheme::Ed25519, 2, 3, 3);
}

#[test]
fn ed25519_3_of_5_and_5_of_5() {
    keygen_then_sign(Scheme::Ed25519, 3, 5, 3);
    keygen_then_sign(Scheme::Ed25519, 5, 5, 1);
}

#[test]
fn ed25519_signs_the_empty_message() {
    let shares = keygen(Scheme::Ed25519, 2, 2);
    let sig = ceremony::sign(&shares, b"", &DerivationPath::root()).unwrap();
    assert!(verify::verify(Scheme::Ed25519, &sig.public_key, b"", &sig.bytes).unwrap());
}

#[test]
fn ecdsa_2_of_3_every_subset_signs_low_s_with_recovery_id() {
    keygen_then_sign(Scheme::EcdsaSecp256k1, 2, 3, 3);
}

#[test]
fn ecdsa_3_of_5() {
    keygen_then_sign(Scheme::EcdsaSecp256k1, 3, 5, 1);
}

#[test]
fn ecdsa_5_of_5() {
    keygen_then_sign(Scheme::EcdsaSecp256k1, 5, 5, 1);
}

#[test]
fn wrong_message_lengths_are_refused_before_any_protocol_runs() {
    let shares = keygen(Scheme::SchnorrBip340, 2, 2);
    assert!(ceremony::sign(&shares, &[0u8; 31], &DerivationPath::root()).is_err());
    assert!(ceremony::sign(&shares, &[0u8; 33], &DerivationPath::root()).is_err());
}

/// BIP341's tagged hash, written out here from the specification as the independent side of
/// the check (the library's tweak is what is under test).
fn tap_tweak(internal: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let tag = Sha256::digest(b"TapTweak");
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    h.update(internal);
    h.finalize().into()
}

#[test]
fn taproot_key_path_signatures_verify_under_the_bip86_output_key_only() {
    use secp256k1::{schnorr, Message, Scalar, XOnlyPublicKey, SECP256K1};
    let shares = keygen(Scheme::SchnorrBip340, 2, 3);
    let path: DerivationPath = "m/0/5".parse().unwrap();
    let internal: [u8; 32] = shares[0].public_key(&path).unwrap().try_into().unwrap();
    let p = XOnlyPublicKey::from_slice(&internal).unwrap();
    let t = Scalar::from_be_bytes(tap_tweak(&internal)).unwrap();
    let (q, _parity) = p.add_tweak(SECP256K1, &t).unwrap();
    let sighash = [0x5au8; 32];
    let sig = ceremony::sign_taproot(&shares[1..], &sighash, &path).unwrap();
    assert_eq!(
        sig.public_key,
        q.serialize().to_vec(),
        "reports the output key"
    );
    let s = schnorr::Signature::from_slice(&sig.bytes).unwrap();
    let m = Message::from_digest(sighash);
    assert!(SECP256K1.verify_schnorr(&s, &m, &q).is_ok());
    assert!(
        SECP256K1.verify_schnorr(&s, &m, &p).is_err(),
        "not valid under the untweaked internal key"
    );
    // Ed25519 has no Taproot.
    let ed = keygen(Scheme::Ed25519, 2, 3);
    assert!(ceremony::sign_taproot(&ed[..2], &sighash, &path).is_err());
}
