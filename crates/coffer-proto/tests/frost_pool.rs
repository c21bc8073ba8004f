//! Pooled FROST round one: a precommit round makes nonces for a signer set; online signing
//! spends them in one round at any derivation path, and the result passes the independent
//! verifier. A signer that sent different commitments to different peers is named in the
//! online round; a wrong signature share is blamed on its sender.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_proto::protocol::{self, FrostNonces};
use coffer_proto::session::run_local;
use coffer_proto::{verify, DerivationPath, KeyShare, PartyIndex, Scheme, SessionError, SessionId};
use coffer_testkit::keygen;

fn precommit(
    signers: &[KeyShare],
    tamper: impl FnMut(coffer_proto::Message, PartyIndex) -> Vec<coffer_proto::Message>,
) -> Vec<FrostNonces> {
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = signers.iter().map(|s| s.party()).collect();
    let mut sessions: Vec<_> = signers
        .iter()
        .map(|s| protocol::precommit(s, sid, &set).unwrap())
        .collect();
    run_local(&mut sessions, tamper)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn online(
    signers: &[KeyShare],
    nonces: Vec<FrostNonces>,
    messages: &[&[u8]],
    path: &DerivationPath,
) -> Vec<Result<protocol::Signature, SessionError>> {
    let sid = SessionId::random();
    let mut sessions: Vec<_> = signers
        .iter()
        .zip(nonces)
        .zip(messages)
        .map(|((s, n), m)| protocol::sign_with_nonces(s, sid, n, m, path).unwrap())
        .collect();
    run_local(&mut sessions, |m, _| vec![m])
}

#[test]
fn pooled_nonces_sign_in_one_round_for_both_schemes() {
    for scheme in [Scheme::SchnorrBip340, Scheme::Ed25519] {
        let shares = keygen(scheme, 2, 3);
        let signers = [shares[0].clone(), shares[2].clone()];
        let path: DerivationPath = "m/0/3".parse().unwrap();
        let message: &[u8] = &[7u8; 32];
        let nonces = precommit(&signers, |m, _| vec![m]);
        assert!(nonces
            .iter()
            .all(|n| n.signers() == [signers[0].party(), signers[1].party()]));
        // The pooled record survives a round trip through its stored (CBOR) form.
        let nonces: Vec<FrostNonces> = nonces
            .into_iter()
            .map(|n| {
                let mut bytes = Vec::new();
                ciborium::into_writer(&n, &mut bytes).unwrap();
                ciborium::from_reader(&bytes[..]).unwrap()
            })
            .collect();
        for r in online(&signers, nonces, &[message, message], &path) {
            let sig = r.unwrap();
            assert_eq!(sig.public_key, signers[0].public_key(&path).unwrap());
            assert!(verify::verify(scheme, &sig.public_key, message, &sig.bytes).unwrap());
        }
    }
}

#[test]
fn a_signer_that_signs_another_message_is_blamed() {
    let shares = keygen(Scheme::Ed25519, 2, 3);
    let signers = [shares[0].clone(), shares[1].clone()];
    let nonces = precommit(&signers, |m, _| vec![m]);
    let results = online(
        &signers,
        nonces,
        &[b"pay 1", b"pay 1000"],
        &DerivationPath::root(),
    );
    let culprits = results[0].as_ref().unwrap_err().culprits().to_vec();
    assert_eq!(culprits, vec![signers[1].party()]);
}

#[test]
fn different_commitments_to_different_peers_are_named() {
    // Three signers; signer 0's commitments reach signer 2 replaced by a second, valid set of
    // commitments (what an equivocating signer would send).
    let shares = keygen(Scheme::SchnorrBip340, 3, 3);
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = shares.iter().map(|s| s.party()).collect();
    let mut sessions: Vec<_> = shares
        .iter()
        .map(|s| protocol::precommit(s, sid, &set).unwrap())
        .collect();
    let mut decoy_sessions: Vec<_> = shares
        .iter()
        .map(|s| protocol::precommit(s, sid, &set).unwrap())
        .collect();
    let decoy = decoy_sessions[0].take_outgoing().pop().unwrap();
    let nonces: Vec<FrostNonces> = run_local(&mut sessions, |m, to| {
        if m.sender == set[0] && to == set[2] {
            vec![decoy.clone()]
        } else {
            vec![m]
        }
    })
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let message = [9u8; 32];
    let results = online(
        &shares,
        nonces,
        &[&message, &message, &message],
        &DerivationPath::root(),
    );
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.culprits(), &[set[0]], "{e}");
    }
}
