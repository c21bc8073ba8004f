//! HD derivation: child keys match an independent BIP32 implementation (the `bip32` crate)
//! for secp256k1 keys, signatures under child keys verify under the derived public keys, and
//! hardened paths are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bip32::{ChildNumber, ExtendedKeyAttrs, PublicKey as _, XPub};
use coffer_proto::{ceremony, hd, verify, DerivationPath, KeyShare, Scheme};
use coffer_testkit::keygen;

const PATHS: [&str; 5] = ["m", "m/0", "m/0/7", "m/1/2/3", "m/2147483647/0"];

fn bip32_child(
    root_compressed: [u8; 33],
    chain_code: [u8; 32],
    path: &DerivationPath,
) -> ([u8; 33], [u8; 32]) {
    let key = bip32::secp256k1::ecdsa::VerifyingKey::from_bytes(root_compressed).unwrap();
    let attrs = ExtendedKeyAttrs {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
        chain_code,
    };
    let mut xpub = XPub::new(key, attrs);
    for i in path.indices() {
        xpub = xpub
            .derive_child(ChildNumber::new(*i, false).unwrap())
            .unwrap();
    }
    (xpub.to_bytes(), xpub.attrs().chain_code)
}

fn check_against_bip32(share: &KeyShare) {
    let root = share.public_key(&DerivationPath::root()).unwrap();
    let root_compressed: [u8; 33] = match share.scheme() {
        Scheme::EcdsaSecp256k1 => root.clone().try_into().unwrap(),
        Scheme::SchnorrBip340 => {
            let mut c = [2u8; 33];
            c[1..].copy_from_slice(&root);
            c
        }
        Scheme::Ed25519 => unreachable!(),
    };
    let cc = share.chain_code().unwrap();
    for path in PATHS {
        let path: DerivationPath = path.parse().unwrap();
        let (ours, our_cc) = share.derive(&path).unwrap();
        let (theirs, their_cc) = bip32_child(root_compressed, cc, &path);
        match share.scheme() {
            Scheme::EcdsaSecp256k1 => assert_eq!(ours, theirs.to_vec(), "{path}"),
            _ => assert_eq!(ours, theirs[1..].to_vec(), "x-only child at {path}"),
        }
        assert_eq!(our_cc, their_cc, "chain code at {path}");
        // The public-only derivation (what `coffer ceremony derive` uses) agrees.
        assert_eq!(
            hd::derive_public(share.scheme(), &root, cc, &path).unwrap(),
            (ours, our_cc)
        );
    }
}

#[test]
fn ecdsa_children_match_bip32_and_sign() {
    let shares = keygen(Scheme::EcdsaSecp256k1, 2, 3);
    check_against_bip32(&shares[0]);
    let path: DerivationPath = "m/0/7".parse().unwrap();
    let (child, _) = shares[1].derive(&path).unwrap();
    let digest = [0x11u8; 32];
    let sig = ceremony::sign(&shares[1..], &digest, &path).unwrap();
    assert_eq!(sig.public_key, child);
    assert!(verify::verify(Scheme::EcdsaSecp256k1, &child, &digest, &sig.bytes).unwrap());
    let root = shares[0].public_key(&DerivationPath::root()).unwrap();
    assert!(!verify::verify(Scheme::EcdsaSecp256k1, &root, &digest, &sig.bytes).unwrap());
    // The recovery id recovers the child key with libsecp256k1.
    let rid = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(sig.recovery_id.unwrap())).unwrap();
    let rec = secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.bytes, rid).unwrap();
    let recovered = secp256k1::SECP256K1
        .recover_ecdsa(&secp256k1::Message::from_digest(digest), &rec)
        .unwrap();
    assert_eq!(recovered.serialize().to_vec(), child);
}

#[test]
fn bip340_children_match_bip32_x_only_and_sign() {
    let shares = keygen(Scheme::SchnorrBip340, 2, 3);
    check_against_bip32(&shares[2]);
    for path in ["m/0/7", "m/1/2/3", "m/5"] {
        let path: DerivationPath = path.parse().unwrap();
        let (child, _) = shares[0].derive(&path).unwrap();
        let digest = [0x22u8; 32];
        let sig = ceremony::sign(&shares[..2], &digest, &path).unwrap();
        assert_eq!(sig.public_key, child);
        assert!(
            verify::verify(Scheme::SchnorrBip340, &child, &digest, &sig.bytes).unwrap(),
            "{path}"
        );
    }
}

#[test]
fn ed25519_children_sign_and_verify_with_dalek() {
    let shares = keygen(Scheme::Ed25519, 2, 3);
    for path in PATHS {
        let path: DerivationPath = path.parse().unwrap();
        let (child, _) = shares[0].derive(&path).unwrap();
        let msg = b"deposit address".to_vec();
        let sig = ceremony::sign(&[shares[0].clone(), shares[2].clone()], &msg, &path).unwrap();
        assert_eq!(sig.public_key, child);
        let vk =
            ed25519_dalek::VerifyingKey::from_bytes(&child.clone().try_into().unwrap()).unwrap();
        vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig.bytes))
            .unwrap();
    }
}

#[test]
fn hardened_steps_are_refused() {
    for bad in ["m/0'", "m/0h", "m/2147483648"] {
        assert!(bad.parse::<DerivationPath>().is_err(), "{bad}");
    }
    assert!(DerivationPath::from_indices(&[1 << 31]).is_err());
}
