//! The DKLs23 backend through our sans-IO sessions: DKG at 2-of-3 and 3-of-5, signing by
//! every signer subset of size t, each signature verified by libsecp256k1 (the `secp256k1`
//! crate) under the group key and under a BIP32 child checked against the `bip32` crate; the
//! share codec; a tampered but well-formed message aborts naming the cheater (ban rule).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;

use bip32::{ChildNumber, ExtendedKeyAttrs, PublicKey as _, XPub};
use coffer_proto::dkls::{self, DklsShare, DklsShareError};
use coffer_proto::{
    AbortReason, DerivationPath, GroupParams, Message, PartyIndex, Session, SessionError,
    SessionId, Signature,
};
use coffer_testkit::subsets;

/// Delivers every message until no session has anything left to send; `tamper` may rewrite
/// a message in flight. Returns each session's outcome (`None`: it never finished, as a
/// cheater does once its victims stop answering).
fn run<S: Session>(
    mut sessions: Vec<S>,
    mut tamper: impl FnMut(&mut Message),
) -> Vec<Option<Result<S::Output, SessionError>>> {
    let mut queue: VecDeque<Message> = VecDeque::new();
    loop {
        for s in sessions.iter_mut() {
            queue.extend(s.take_outgoing());
        }
        let Some(mut m) = queue.pop_front() else {
            break;
        };
        tamper(&mut m);
        for s in sessions.iter_mut() {
            let to_me = match m.recipient {
                Some(r) => r == s.party(),
                None => m.sender != s.party(),
            };
            if to_me && !s.is_finished() {
                let _ = s.handle(m.clone());
            }
        }
    }
    sessions.iter_mut().map(|s| s.take_outcome()).collect()
}

fn keygen(t: u16, n: u16) -> Vec<DklsShare> {
    let params = GroupParams::new(t, n).unwrap();
    let sid = SessionId::random();
    let sessions: Vec<_> = params
        .parties()
        .map(|p| dkls::keygen::keygen(sid, p, params).unwrap())
        .collect();
    run(sessions, |_| {})
        .into_iter()
        .map(|r| r.expect("keygen finished").unwrap())
        .collect()
}

fn sign_with(
    shares: &[&DklsShare],
    path: &DerivationPath,
    digest: [u8; 32],
    tamper: impl FnMut(&mut Message),
) -> Vec<Option<Result<Signature, SessionError>>> {
    let sid = SessionId::random();
    let signers: Vec<PartyIndex> = shares.iter().map(|s| s.party()).collect();
    let sessions: Vec<_> = shares
        .iter()
        .map(|s| dkls::sign::sign(sid, s, &signers, path, digest).unwrap())
        .collect();
    run(sessions, tamper)
}

/// libsecp256k1's verdict, plus low-S and recovery-id checks.
fn verify_independently(pk: &[u8], digest: [u8; 32], sig: &Signature) {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let key = secp256k1::PublicKey::from_slice(pk).unwrap();
    let msg = secp256k1::Message::from_digest(digest);
    let parsed = secp256k1::ecdsa::Signature::from_compact(&sig.bytes).unwrap();
    let mut normalized = parsed;
    normalized.normalize_s();
    assert_eq!(parsed, normalized, "signature is low-S");
    secp256k1::SECP256K1
        .verify_ecdsa(&msg, &parsed, &key)
        .expect("libsecp256k1 accepts the signature");
    let other = secp256k1::Message::from_digest([0x43; 32]);
    assert!(secp256k1::SECP256K1
        .verify_ecdsa(&other, &parsed, &key)
        .is_err());
    let rid = RecoveryId::from_i32(i32::from(sig.recovery_id.unwrap())).unwrap();
    let rec = RecoverableSignature::from_compact(&sig.bytes, rid).unwrap();
    assert_eq!(
        secp256k1::SECP256K1.recover_ecdsa(&msg, &rec).unwrap(),
        key,
        "recovery id recovers the key"
    );
}

fn bip32_child(root: &[u8], chain_code: [u8; 32], path: &DerivationPath) -> Vec<u8> {
    let root: [u8; 33] = root.try_into().unwrap();
    let key = bip32::secp256k1::ecdsa::VerifyingKey::from_bytes(root).unwrap();
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
    xpub.to_bytes().to_vec()
}

fn keygen_then_sign_every_subset(t: u16, n: u16) {
    let shares = keygen(t, n);
    let pk = shares[0].public_key();
    assert_eq!(pk.len(), 33);
    for (i, s) in shares.iter().enumerate() {
        assert_eq!(s.public_key(), pk, "all parties agree on the key");
        assert_eq!(s.chain_code(), shares[0].chain_code());
        assert_eq!(usize::from(s.party().get()), i);
    }
    let child = DerivationPath::from_indices(&[0, 7]).unwrap();
    let child_pk = shares[0].derived_public_key(&child).unwrap();
    assert_eq!(
        child_pk,
        bip32_child(&pk, shares[0].chain_code(), &child),
        "the library's derivation is BIP32"
    );
    for subset in subsets(usize::from(n), usize::from(t)) {
        let group: Vec<&DklsShare> = subset.iter().map(|i| &shares[*i]).collect();
        let digest = [0x42; 32];
        for sig in sign_with(&group, &DerivationPath::root(), digest, |_| {}) {
            let sig = sig.expect("signing finished").unwrap();
            assert_eq!(sig.public_key, pk);
            verify_independently(&pk, digest, &sig);
        }
        for sig in sign_with(&group, &child, digest, |_| {}) {
            let sig = sig.expect("signing finished").unwrap();
            assert_eq!(sig.public_key, child_pk);
            verify_independently(&child_pk, digest, &sig);
        }
    }
}

#[test]
fn dkls_2_of_3_every_subset_signs_at_root_and_child() {
    keygen_then_sign_every_subset(2, 3);
}

#[test]
fn dkls_3_of_5_every_subset_signs_at_root_and_child() {
    keygen_then_sign_every_subset(3, 5);
}

#[test]
fn dkls_share_codec_round_trips_and_refuses_garbage() {
    let shares = keygen(2, 3);
    let decoded: Vec<DklsShare> = shares
        .iter()
        .map(|s| DklsShare::decode_secret(&s.encode_secret().unwrap()).unwrap())
        .collect();
    for (a, b) in shares.iter().zip(&decoded) {
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.party(), b.party());
        assert_eq!(a.backend(), coffer_proto::Backend::Dkls23);
    }
    let group = [&decoded[0], &decoded[2]];
    let sig = sign_with(&group, &DerivationPath::root(), [7; 32], |_| {});
    verify_independently(
        &shares[0].public_key(),
        [7; 32],
        sig[0].as_ref().unwrap().as_ref().unwrap(),
    );

    let bytes = shares[1].encode_secret().unwrap();
    assert_eq!(
        DklsShare::decode_secret(&bytes[..bytes.len() / 2]).unwrap_err(),
        DklsShareError::Malformed
    );
    assert_eq!(
        DklsShare::decode_secret(b"not a share").unwrap_err(),
        DklsShareError::Malformed
    );
}

#[test]
fn dkls_tampered_gamma_u_aborts_naming_the_cheater_who_must_be_banned() {
    use dkls23::protocols::signing::TransmitPhase2to3;
    let shares = keygen(2, 3);
    let cheater = shares[2].party();
    let victim = shares[0].party();
    let group = [&shares[0], &shares[2]];
    let outcomes = sign_with(&group, &DerivationPath::root(), [9; 32], |m| {
        if m.sender == cheater && m.recipient == Some(victim) && m.round == 2 {
            let mut t: TransmitPhase2to3<k256_dkls::Secp256k1> =
                ciborium::from_reader(m.payload.as_slice()).unwrap();
            t.gamma_u = (k256_dkls::ProjectivePoint::from(t.gamma_u)
                + k256_dkls::ProjectivePoint::GENERATOR)
                .into();
            let mut out = Vec::new();
            ciborium::into_writer(&t, &mut out).unwrap();
            m.payload = out;
        }
    });
    match &outcomes[0] {
        Some(Err(SessionError::Aborted(a))) => {
            assert_eq!(a.culprits, vec![cheater], "{a}");
            assert!(matches!(a.reason, AbortReason::MustBan { .. }), "{a}");
        }
        other => panic!("victim must abort blaming the cheater, got {other:?}"),
    }
}

fn refresh_all(shares: &[DklsShare]) -> Vec<DklsShare> {
    let sid = SessionId::random();
    let sessions: Vec<_> = shares
        .iter()
        .map(|s| dkls::refresh::refresh(sid, s).unwrap())
        .collect();
    run(sessions, |_| {})
        .into_iter()
        .map(|r| r.expect("refresh finished").unwrap())
        .collect()
}

#[test]
fn dkls_refresh_new_shares_sign_and_old_share_mixed_with_new_cannot() {
    let old = keygen(2, 3);
    let pk = old[0].public_key();
    let new = refresh_all(&old);
    for (o, n) in old.iter().zip(&new) {
        assert_eq!(n.public_key(), pk, "refresh keeps the group key");
        assert_eq!(n.chain_code(), o.chain_code());
        assert_ne!(
            *o.encode_secret().unwrap(),
            *n.encode_secret().unwrap(),
            "the share changed"
        );
        // The refreshed share (with its recomputed verifying shares) survives the codec.
        DklsShare::decode_secret(&n.encode_secret().unwrap()).unwrap();
    }
    let digest = [0x24; 32];
    for subset in subsets(3, 2) {
        let group: Vec<&DklsShare> = subset.iter().map(|i| &new[*i]).collect();
        for sig in sign_with(&group, &DerivationPath::root(), digest, |_| {}) {
            verify_independently(&pk, digest, &sig.expect("finished").unwrap());
        }
    }
    // A second refresh chains.
    let newer = refresh_all(&new);
    let sig = sign_with(
        &[&newer[1], &newer[2]],
        &DerivationPath::root(),
        digest,
        |_| {},
    );
    verify_independently(&pk, digest, sig[0].as_ref().unwrap().as_ref().unwrap());

    // An old share with a new one: the library's signing never yields a valid signature.
    for (a, b) in [(&old[0], &new[1]), (&new[0], &old[2]), (&old[1], &new[2])] {
        let outcomes = sign_with(&[a, b], &DerivationPath::root(), digest, |_| {});
        let key = secp256k1::PublicKey::from_slice(&pk).unwrap();
        let msg = secp256k1::Message::from_digest(digest);
        let mut valid = 0;
        for o in outcomes.into_iter().flatten().flatten() {
            let s = secp256k1::ecdsa::Signature::from_compact(&o.bytes).unwrap();
            if secp256k1::SECP256K1.verify_ecdsa(&msg, &s, &key).is_ok() {
                valid += 1;
            }
        }
        assert_eq!(valid, 0, "old and new shares must not sign together");
    }
}

#[test]
fn dkls_keygen_wrong_zero_share_commitment_aborts_naming_the_cheater() {
    use dkls23::protocols::dkg::TransmitInitZeroSharePhase2to4;
    let params = GroupParams::new(2, 3).unwrap();
    let sid = SessionId::random();
    let cheater = PartyIndex::new(1, params).unwrap();
    let victim = PartyIndex::new(2, params).unwrap();
    let sessions: Vec<_> = params
        .parties()
        .map(|p| dkls::keygen::keygen(sid, p, params).unwrap())
        .collect();
    let outcomes = run(sessions, |m| {
        if m.sender == cheater && m.recipient == Some(victim) && m.round == 3 {
            let mut z: TransmitInitZeroSharePhase2to4 =
                ciborium::from_reader(m.payload.as_slice()).unwrap();
            z.commitment[0] ^= 1;
            let mut out = Vec::new();
            ciborium::into_writer(&z, &mut out).unwrap();
            m.payload = out;
        }
    });
    match &outcomes[usize::from(victim.get())] {
        Some(Err(SessionError::Aborted(a))) => {
            assert_eq!(a.culprits, vec![cheater], "{a}");
        }
        other => panic!(
            "victim must abort blaming the cheater, got {:?}",
            other.as_ref().map(|r| r.as_ref().err())
        ),
    }
}
