//! ECDSA presignatures: made for a derivation path before the message is known, spent once
//! on a preimage the signer hashes itself, combined into a signature that the independent
//! verifier accepts; a wrong partial signature is blamed on its issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_proto::ecdsa::{EcdsaPresignature, Preimage};
use coffer_proto::session::run_local;
use coffer_proto::{
    protocol, verify, AbortReason, DerivationPath, PartyIndex, Scheme, SessionError, SessionId,
};
use coffer_testkit::keygen;
use sha2::Digest;

fn presign(shares: &[coffer_proto::KeyShare], path: &DerivationPath) -> Vec<EcdsaPresignature> {
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = shares.iter().map(|s| s.party()).collect();
    let mut sessions: Vec<_> = shares
        .iter()
        .map(|s| protocol::presign(s, sid, &set, path).unwrap())
        .collect();
    run_local(&mut sessions, |m, _| vec![m])
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn presignatures_sign_once_under_their_path() {
    let shares = keygen(Scheme::EcdsaSecp256k1, 2, 3);
    let signers = [shares[0].clone(), shares[2].clone()];
    let path: DerivationPath = "m/0/3".parse().unwrap();
    let child = shares[0].public_key(&path).unwrap();
    let presigs = presign(&signers, &path);
    assert!(presigs.iter().all(|p| p.path() == &path));
    let public = presigs[0].public_data();
    let text = b"withdraw 1 BTC to bc1q...".to_vec();
    let message = Preimage::Sha256(text.clone());
    // `issue` takes the presignature by value: it cannot be used a second time.
    let partials: Vec<_> = presigs
        .into_iter()
        .zip(&signers)
        .map(|(p, s)| p.issue(s.party(), &message))
        .collect();
    let sig = public.combine(&partials, &message).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&text).into();
    assert!(verify::verify(Scheme::EcdsaSecp256k1, &child, &digest, &sig.rs).unwrap());
    let root = shares[0].public_key(&DerivationPath::root()).unwrap();
    assert!(!verify::verify(Scheme::EcdsaSecp256k1, &root, &digest, &sig.rs).unwrap());
}

#[test]
fn presigning_refuses_schnorr_keys() {
    let shares = keygen(Scheme::Ed25519, 2, 2);
    let set: Vec<PartyIndex> = shares.iter().map(|s| s.party()).collect();
    assert!(protocol::presign(
        &shares[0],
        SessionId::random(),
        &set,
        &DerivationPath::root()
    )
    .is_err());
}

#[test]
fn a_wrong_partial_signature_is_blamed_on_its_issuer() {
    let shares = keygen(Scheme::EcdsaSecp256k1, 2, 2);
    let path = DerivationPath::root();
    let mut presigs = presign(&shares, &path).into_iter();
    let (a, b) = (presigs.next().unwrap(), presigs.next().unwrap());
    let public = a.public_data();
    let message = Preimage::Sha256(b"pay alice".to_vec());
    let other = Preimage::Sha256(b"pay mallory".to_vec());
    // Party 1 issues its partial on a different message than the one being combined.
    let partials = [
        a.issue(shares[0].party(), &message),
        b.issue(shares[1].party(), &other),
    ];
    match public.combine(&partials, &message) {
        Err(SessionError::Aborted(abort)) => {
            assert_eq!(abort.culprits, vec![shares[1].party()]);
            assert!(matches!(abort.reason, AbortReason::InvalidSignatureShare));
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

/// The network form: the one-round session (`presigned::start`) under the run driver.
#[test]
fn the_one_round_session_signs_and_blames_a_partial_over_another_message() {
    let shares = keygen(Scheme::EcdsaSecp256k1, 2, 3);
    let signers = [shares[0].clone(), shares[2].clone()];
    let parties: Vec<PartyIndex> = signers.iter().map(|s| s.party()).collect();
    let path: DerivationPath = "m/0/5".parse().unwrap();
    let text = b"pay 1 BTC".to_vec();
    let digest: [u8; 32] = sha2::Sha256::digest(&text).into();

    let session = SessionId::random();
    let mut online: Vec<_> = presign(&signers, &path)
        .into_iter()
        .zip(&parties)
        .map(|(p, me)| coffer_proto::presigned::start(session, *me, p, text.clone()).unwrap())
        .collect();
    for r in run_local(&mut online, |m, _| vec![m]) {
        let sig = r.unwrap();
        assert_eq!(sig.public_key, signers[0].public_key(&path).unwrap());
        assert!(
            verify::verify(Scheme::EcdsaSecp256k1, &sig.public_key, &digest, &sig.bytes).unwrap()
        );
    }

    // The second signer issues its partial over another message: protocol-valid, wrong value.
    let mut presigs = presign(&signers, &path);
    let cheat = presigs.pop().unwrap();
    let honest = presigs.pop().unwrap();
    let session = SessionId::random();
    let mut online = vec![
        coffer_proto::presigned::start(session, parties[0], honest, text.clone()).unwrap(),
        coffer_proto::presigned::start(session, parties[1], cheat, b"pay 100 BTC".to_vec())
            .unwrap(),
    ];
    let results = run_local(&mut online, |m, _| vec![m]);
    match &results[0] {
        Err(SessionError::Aborted(a)) => {
            assert_eq!(a.culprits, vec![parties[1]]);
            assert_eq!(a.reason, AbortReason::InvalidSignatureShare);
        }
        other => panic!("expected an abort blaming the cheat, got {other:?}"),
    }
}
