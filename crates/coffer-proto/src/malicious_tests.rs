//! Malicious-party tests: a party (or the network) sends garbage, replays, out-of-session or
//! misrouted messages, or protocol-valid but wrong values (an inconsistent sub-share, a
//! broadcast that differs between recipients, a wrong signature share). Honest parties must
//! abort with a typed error naming the culprit where the protocol can, and never output a
//! signature; harmless network faults must be refused without stopping the run.
//!
//! Also: refresh is proven by the mathematics: a pre-refresh share interpolated with
//! post-refresh shares gives a different key, and a mixed signing set produces no signature.

use std::cell::RefCell;
use std::rc::Rc;

use generic_ec::curves::Secp256k1;
use generic_ec::{Point, Scalar};

use crate::error::{AbortReason, SessionError};
use crate::frost::{DkgRound1, DkgRound2, FrostDkg, FrostShare, FrostSign, FrostSuite, SignRound2};
use crate::ids::{GroupParams, PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::session::{run_local, BoxedSession, Session};
use crate::share::{Bip340, Ed25519};
use crate::zero_refresh::{CommitMsg, ShareMsg, ZeroRefresh, ROUND_COMMIT, ROUND_SHARE};

fn p(i: u16) -> PartyIndex {
    PartyIndex::unchecked(i)
}

fn params(t: u16, n: u16) -> GroupParams {
    GroupParams::new(t, n).unwrap()
}

fn honest(m: Message, _: PartyIndex) -> Vec<Message> {
    vec![m]
}

fn dkg_sessions<C: FrostSuite>(sid: SessionId, g: GroupParams) -> Vec<BoxedSession<FrostShare<C>>> {
    g.parties()
        .map(|i| Box::new(FrostDkg::<C>::keygen(sid, i, g).unwrap()) as BoxedSession<FrostShare<C>>)
        .collect()
}

fn frost_keygen<C: FrostSuite>(t: u16, n: u16) -> Vec<FrostShare<C>> {
    let mut s = dkg_sessions::<C>(SessionId::random(), params(t, n));
    run_local(&mut s, honest)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn sign_sessions<C: FrostSuite>(
    shares: &[&FrostShare<C>],
    msg: &[u8],
) -> Vec<BoxedSession<Vec<u8>>> {
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = shares.iter().map(|s| s.index).collect();
    shares
        .iter()
        .map(|s| {
            Box::new(
                FrostSign::<C>::start(
                    s,
                    sid,
                    &set,
                    msg,
                    &crate::path::DerivationPath::root(),
                    false,
                )
                .unwrap(),
            ) as BoxedSession<Vec<u8>>
        })
        .collect()
}

/// Asserts that every listed party aborted blaming exactly `culprit`, with a matching reason.
fn assert_blamed<O>(
    results: &[Result<O, SessionError>],
    who: &[u16],
    culprit: u16,
    reason: impl Fn(&AbortReason) -> bool,
) {
    for &i in who {
        match &results[usize::from(i)] {
            Err(SessionError::Aborted(a)) => {
                assert_eq!(
                    a.culprits,
                    vec![p(culprit)],
                    "party {i} blamed the wrong party: {a}"
                );
                assert!(
                    reason(&a.reason),
                    "party {i} aborted for an unexpected reason: {a}"
                );
            }
            Err(e) => panic!("party {i} failed without an abort: {e}"),
            Ok(_) => panic!("party {i} finished despite the cheater"),
        }
    }
}

/// Flips the lowest bit of a serialized scalar: still a valid scalar, now a wrong one.
fn flip_low_bit<C: FrostSuite>(bytes: &mut [u8]) {
    let k = if C::SCALAR_LITTLE_ENDIAN {
        0
    } else {
        bytes.len() - 1
    };
    bytes[k] ^= 1;
}

/// A DKG or refresh round-2 payload whose sub-share is well-formed but wrong.
fn with_wrong_sub_share<C: FrostSuite>(payload: &[u8]) -> Vec<u8> {
    let mut msg: DkgRound2<C> = decode_payload(payload).unwrap();
    let mut bytes = msg.package.signing_share().serialize();
    flip_low_bit::<C>(&mut bytes);
    let share = frost_core::keys::SigningShare::<C>::deserialize(&bytes).unwrap();
    msg.package = frost_core::keys::dkg::round2::Package::new(share);
    encode_payload(&msg).unwrap()
}

fn garbage_in_dkg_is_blamed<C: FrostSuite>() {
    let mut s = dkg_sessions::<C>(SessionId::random(), params(2, 3));
    let r = run_local(&mut s, |mut m: Message, _| {
        if m.sender == p(1) && m.round == 1 {
            m.payload = vec![0xde, 0xad, 0xbe, 0xef];
        }
        vec![m]
    });
    assert_blamed(&r, &[0, 2], 1, |r| {
        matches!(r, AbortReason::MalformedMessage { round: 1 })
    });
}

fn network_faults_are_refused_and_the_run_completes<C: FrostSuite>() {
    let stored: Rc<RefCell<Option<Message>>> = Rc::default();
    let sid = SessionId::random();
    let g = params(2, 3);
    let mut sessions = dkg_sessions::<C>(sid, g);
    let store = stored.clone();
    let r = run_local(&mut sessions, move |m: Message, to| {
        let mut out = vec![m.clone(), m.clone()]; // the original and a replay
        let mut other = m.clone();
        other.session = SessionId::from_bytes([0x55; 32]); // out of session
        out.push(other);
        if m.recipient == Some(p(2)) && m.sender == p(1) {
            *store.borrow_mut() = Some(m.clone());
        }
        if to == p(0) {
            // Misrouted: party 1's point-to-point message for party 2, delivered to party 0.
            if let Some(x) = store.borrow().clone() {
                out.push(x);
            }
        }
        out
    });
    for share in &r {
        assert!(share.is_ok(), "{:?}", share.as_ref().err());
    }
    let keys: Vec<_> = r
        .iter()
        .map(|s| s.as_ref().unwrap().group_point().unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    // Directly: each kind is refused without ending the session.
    let mut s = FrostDkg::<C>::keygen(sid, p(0), g).unwrap();
    let m = Message {
        session: sid,
        sender: p(1),
        recipient: Some(p(2)),
        round: 2,
        payload: vec![],
    };
    assert!(matches!(s.handle(m), Err(SessionError::Rejected(_))));
    assert!(!s.is_finished());
}

fn inconsistent_sub_share_is_blamed_on_its_dealer<C: FrostSuite>() {
    let mut s = dkg_sessions::<C>(SessionId::random(), params(2, 3));
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(1) && to == p(2) && m.round == 2 {
            // A well-formed scalar that does not match party 1's commitments.
            m.payload = with_wrong_sub_share::<C>(&m.payload);
        }
        vec![m]
    });
    assert_blamed(&r, &[2], 1, |r| matches!(r, AbortReason::InvalidShare));
}

fn equivocating_broadcast_is_caught<C: FrostSuite>() {
    // Party 1 shows party 2 a different (valid) round-1 package than everyone else.
    let g = params(2, 3);
    let (_, other) = frost_core::keys::dkg::part1::<C, _>(
        crate::frost::identifier::<C>(p(1)).unwrap(),
        3,
        2,
        rand_core::OsRng,
    )
    .unwrap();
    let mut s = dkg_sessions::<C>(SessionId::random(), g);
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(1) && to == p(2) && m.round == 1 {
            let mut msg: DkgRound1<C> = decode_payload(&m.payload).unwrap();
            msg.package = other.clone();
            m.payload = encode_payload(&msg).unwrap();
        }
        vec![m]
    });
    assert_blamed(&r, &[2], 1, |r| {
        matches!(r, AbortReason::Equivocation { round: 1, .. })
    });
    assert!(
        r[0].is_err(),
        "party 0 must not finish: party 2's echo disagrees with its view"
    );
}

fn wrong_signature_share_is_blamed<C: FrostSuite>() {
    let shares = frost_keygen::<C>(2, 3);
    let mut s = sign_sessions::<C>(&[&shares[0], &shares[2]], &[7u8; 32]);
    let r = run_local(&mut s, |mut m: Message, _| {
        if m.sender == p(2) && m.round == 2 {
            let mut msg: SignRound2<C> = decode_payload(&m.payload).unwrap();
            let mut bytes = msg.share.serialize();
            flip_low_bit::<C>(&mut bytes);
            msg.share = frost_core::round2::SignatureShare::<C>::deserialize(&bytes).unwrap();
            m.payload = encode_payload(&msg).unwrap();
        }
        vec![m]
    });
    // Party 0 (position 0 in the results) sees the bad share; no signature comes out.
    assert_blamed(&r, &[0], 2, |r| {
        matches!(r, AbortReason::InvalidSignatureShare)
    });
}

fn refreshed_shares_do_not_mix_with_old_ones<C: FrostSuite>() {
    let old = frost_keygen::<C>(2, 3);
    let sid = SessionId::random();
    let mut s: Vec<BoxedSession<FrostShare<C>>> = old
        .iter()
        .map(|o| Box::new(FrostDkg::<C>::refresh(sid, o).unwrap()) as BoxedSession<_>)
        .collect();
    let new: Vec<FrostShare<C>> = run_local(&mut s, honest)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let group = old[0].public_key_package.verifying_key();
    assert_eq!(
        new[0].public_key_package.verifying_key(),
        group,
        "refresh keeps the public key"
    );
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(
            o.key_package.signing_share(),
            n.key_package.signing_share(),
            "every share changes"
        );
    }
    // The mathematics (test-only reconstruction): two new shares give the key, old+new do not.
    let key_of = |a: &FrostShare<C>, b: &FrostShare<C>| {
        frost_core::keys::reconstruct(&[a.key_package.clone(), b.key_package.clone()]).unwrap()
    };
    let vk =
        |k: frost_core::SigningKey<C>| frost_core::VerifyingKey::<C>::from(&k).serialize().unwrap();
    let group_bytes = group.serialize().unwrap();
    let even = |b: Vec<u8>| {
        if C::SCHEME == crate::Scheme::SchnorrBip340 {
            b[1..].to_vec()
        } else {
            b
        }
    };
    assert_eq!(
        even(vk(key_of(&new[0], &new[1]))),
        even(group_bytes.clone())
    );
    assert_eq!(
        even(vk(key_of(&old[0], &old[1]))),
        even(group_bytes.clone())
    );
    assert_ne!(even(vk(key_of(&old[0], &new[1]))), even(group_bytes));
    // And a mixed signing set produces no signature.
    let mut s = sign_sessions::<C>(&[&old[0], &new[1]], &[9u8; 32]);
    for r in run_local(&mut s, honest) {
        assert!(r.is_err(), "a mixed old/new signing set must not sign");
    }
}

fn a_removed_party_share_no_longer_combines<C: FrostSuite>() {
    let old = frost_keygen::<C>(2, 3);
    let sid = SessionId::random();
    let members = [p(0), p(2)];
    let mut s: Vec<BoxedSession<FrostShare<C>>> = [&old[0], &old[2]]
        .iter()
        .map(|o| {
            Box::new(FrostDkg::<C>::reshare_without(sid, o, &members).unwrap()) as BoxedSession<_>
        })
        .collect();
    let new: Vec<FrostShare<C>> = run_local(&mut s, honest)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let group = old[0]
        .public_key_package
        .verifying_key()
        .serialize()
        .unwrap();
    let vk = |a: &FrostShare<C>, b: &FrostShare<C>| {
        let k =
            frost_core::keys::reconstruct(&[a.key_package.clone(), b.key_package.clone()]).unwrap();
        frost_core::VerifyingKey::<C>::from(&k).serialize().unwrap()
    };
    let x_only = |b: Vec<u8>| {
        if C::SCHEME == crate::Scheme::SchnorrBip340 {
            b[1..].to_vec()
        } else {
            b
        }
    };
    assert_eq!(x_only(vk(&new[0], &new[1])), x_only(group.clone()));
    // The removed party's (old) share with either remaining new share: a different key.
    assert_ne!(x_only(vk(&old[1], &new[0])), x_only(group.clone()));
    assert_ne!(x_only(vk(&old[1], &new[1])), x_only(group));
    assert_eq!(new[0].public_key_package.verifying_shares().len(), 2);
    // And the removed party cannot join a signing run of the new group.
    assert!(FrostSign::<C>::start(
        &new[0],
        SessionId::random(),
        &[p(0), p(1)],
        &[1; 32],
        &crate::path::DerivationPath::root(),
        false
    )
    .is_err());
}

fn equivocation_in_a_reshared_group_blames_the_right_party<C: FrostSuite>() {
    // After removing party 1 the members are 0, 2, 3: echo positions are not party indices.
    let old = frost_keygen::<C>(2, 4);
    let members = [p(0), p(2), p(3)];
    let (_, other) = frost_core::keys::refresh::refresh_dkg_part1::<C, _>(
        crate::frost::identifier::<C>(p(2)).unwrap(),
        3,
        2,
        rand_core::OsRng,
    )
    .unwrap();
    let sid = SessionId::random();
    let mut s: Vec<BoxedSession<FrostShare<C>>> = [&old[0], &old[2], &old[3]]
        .iter()
        .map(|o| {
            Box::new(FrostDkg::<C>::reshare_without(sid, o, &members).unwrap()) as BoxedSession<_>
        })
        .collect();
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(2) && to == p(3) && m.round == 1 {
            let mut msg: DkgRound1<C> = decode_payload(&m.payload).unwrap();
            msg.package = other.clone();
            m.payload = encode_payload(&msg).unwrap();
        }
        vec![m]
    });
    // Results are in member order: party 3 is at position 2.
    assert_blamed(&r, &[2], 2, |r| {
        matches!(r, AbortReason::Equivocation { round: 1, .. })
    });
}

fn cheating_refresh_dealer_is_blamed<C: FrostSuite>() {
    let old = frost_keygen::<C>(2, 3);
    let sid = SessionId::random();
    let mut s: Vec<BoxedSession<FrostShare<C>>> = old
        .iter()
        .map(|o| Box::new(FrostDkg::<C>::refresh(sid, o).unwrap()) as BoxedSession<_>)
        .collect();
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(0) && to == p(1) && m.round == 2 {
            m.payload = with_wrong_sub_share::<C>(&m.payload);
        }
        vec![m]
    });
    assert_blamed(&r, &[1], 0, |r| matches!(r, AbortReason::InvalidShare));
}

macro_rules! for_both_suites {
    ($($name:ident),* $(,)?) => {
        mod bip340 { use super::*; $( #[test] fn $name() { super::$name::<Bip340>(); } )* }
        mod ed25519 { use super::*; $( #[test] fn $name() { super::$name::<Ed25519>(); } )* }
    };
}

for_both_suites!(
    garbage_in_dkg_is_blamed,
    network_faults_are_refused_and_the_run_completes,
    inconsistent_sub_share_is_blamed_on_its_dealer,
    equivocating_broadcast_is_caught,
    wrong_signature_share_is_blamed,
    refreshed_shares_do_not_mix_with_old_ones,
    a_removed_party_share_no_longer_combines,
    equivocation_in_a_reshared_group_blames_the_right_party,
    cheating_refresh_dealer_is_blamed,
);

// ------------------------------------------------------------------------------------
// CGGMP threshold refresh (our zero-sharing module), on key shares from the library's DKG.
// ------------------------------------------------------------------------------------

type Core = key_share::DirtyCoreKeyShare<Secp256k1>;

fn cggmp_core_keygen(t: u16, n: u16) -> Vec<Core> {
    let g = params(t, n);
    let sid = SessionId::random();
    let mut s: Vec<BoxedSession<_>> = g
        .parties()
        .map(|i| {
            Box::new(crate::ecdsa::core_keygen(sid, i, g))
                as BoxedSession<cggmp24::IncompleteKeyShare<Secp256k1>>
        })
        .collect();
    run_local(&mut s, honest)
        .into_iter()
        .map(|r| r.unwrap().into_inner())
        .collect()
}

fn zero_refresh_sessions(old: &[Core], sid: SessionId) -> Vec<BoxedSession<Core>> {
    old.iter()
        .map(|o| Box::new(ZeroRefresh::start(sid, o.clone()).unwrap()) as BoxedSession<Core>)
        .collect()
}

/// `sum lambda_i x_i` over the given shares (test-only reconstruction).
fn interpolate(shares: &[&Core]) -> Scalar<Secp256k1> {
    let points: Vec<Scalar<Secp256k1>> = shares
        .iter()
        .map(|s| *s.key_info.vss_setup.as_ref().unwrap().I[usize::from(s.i)])
        .collect();
    let mut acc = Scalar::zero();
    for (j, s) in shares.iter().enumerate() {
        let mut lambda = Scalar::<Secp256k1>::one();
        for (k, x_k) in points.iter().enumerate() {
            if k != j {
                lambda = lambda * x_k * (*x_k - points[j]).invert().unwrap();
            }
        }
        let x: &generic_ec::SecretScalar<Secp256k1> = s.x.as_ref();
        acc += lambda * x.as_ref();
    }
    acc
}

#[test]
fn zero_refresh_keeps_the_key_and_old_shares_no_longer_combine() {
    let old = cggmp_core_keygen(2, 3);
    let mut s = zero_refresh_sessions(&old, SessionId::random());
    let new: Vec<Core> = run_local(&mut s, honest)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let pk: Point<Secp256k1> = *old[0].key_info.shared_public_key;
    for n in &new {
        assert_eq!(*n.key_info.shared_public_key, pk);
        assert_eq!(n.key_info.chain_code, old[0].key_info.chain_code);
        assert_eq!(
            n.key_info.public_shares, new[0].key_info.public_shares,
            "all parties agree"
        );
    }
    for (o, n) in old.iter().zip(&new) {
        let (a, b): (
            &generic_ec::SecretScalar<Secp256k1>,
            &generic_ec::SecretScalar<Secp256k1>,
        ) = (o.x.as_ref(), n.x.as_ref());
        assert_ne!(a.as_ref(), b.as_ref(), "every share changes");
    }
    let g = Point::<Secp256k1>::generator();
    assert_eq!(g * interpolate(&[&new[0], &new[2]]), pk);
    assert_eq!(g * interpolate(&[&old[0], &old[2]]), pk);
    assert_ne!(
        g * interpolate(&[&old[0], &new[2]]),
        pk,
        "a pre-refresh share must not combine with post-refresh shares"
    );
    assert_ne!(g * interpolate(&[&new[0], &old[1]]), pk);
}

#[test]
fn zero_refresh_blames_a_dealer_whose_sub_share_contradicts_its_commitments() {
    let old = cggmp_core_keygen(2, 3);
    let mut s = zero_refresh_sessions(&old, SessionId::random());
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(0) && to == p(2) && m.round == ROUND_SHARE {
            let mut msg: ShareMsg<Secp256k1> = decode_payload(&m.payload).unwrap();
            msg.sub_share += Scalar::one(); // well-formed, inconsistent with the commitments
            m.payload = encode_payload(&msg).unwrap();
        }
        vec![m]
    });
    assert_blamed(&r, &[2], 0, |r| matches!(r, AbortReason::InvalidShare));
}

#[test]
fn zero_refresh_catches_a_dealer_that_shows_different_polynomials_to_different_peers() {
    let old = cggmp_core_keygen(3, 4);
    let x2 = *old[2].key_info.vss_setup.as_ref().unwrap().I[2];
    // A second, self-consistent polynomial shown only to party 2: its commitments and its
    // matching sub-share pass party 2's Feldman check; only the echo reveals the lie.
    let coeffs: Vec<Scalar<Secp256k1>> = (0..2)
        .map(|_| Scalar::random(&mut rand_core::OsRng))
        .collect();
    let commitments: Vec<Point<Secp256k1>> =
        coeffs.iter().map(|a| Point::generator() * a).collect();
    let sub_share = coeffs[0] * x2 + coeffs[1] * x2 * x2;
    let mut s = zero_refresh_sessions(&old, SessionId::random());
    let r = run_local(&mut s, |mut m: Message, to| {
        if m.sender == p(0) && to == p(2) {
            if m.round == ROUND_COMMIT {
                let mut msg: CommitMsg<Secp256k1> = decode_payload(&m.payload).unwrap();
                msg.commitments = commitments.clone();
                m.payload = encode_payload(&msg).unwrap();
            } else if m.round == ROUND_SHARE {
                let mut msg: ShareMsg<Secp256k1> = decode_payload(&m.payload).unwrap();
                msg.sub_share = sub_share;
                m.payload = encode_payload(&msg).unwrap();
            }
        }
        vec![m]
    });
    assert_blamed(&r, &[2], 0, |r| {
        matches!(
            r,
            AbortReason::Equivocation {
                round: ROUND_COMMIT,
                ..
            }
        )
    });
    for honest in [1, 3] {
        assert!(
            r[honest].is_err(),
            "party {honest} must not accept a refresh that party 2 rejected"
        );
    }
}

#[test]
fn zero_refresh_refuses_commitments_of_the_wrong_degree() {
    let old = cggmp_core_keygen(2, 3);
    let mut s = zero_refresh_sessions(&old, SessionId::random());
    let r = run_local(&mut s, |mut m: Message, _| {
        if m.sender == p(1) && m.round == ROUND_COMMIT {
            let mut msg: CommitMsg<Secp256k1> = decode_payload(&m.payload).unwrap();
            msg.commitments
                .push(Point::generator() * Scalar::<Secp256k1>::random(&mut rand_core::OsRng));
            m.payload = encode_payload(&msg).unwrap();
        }
        vec![m]
    });
    assert_blamed(&r, &[0, 2], 1, |r| {
        matches!(r, AbortReason::MalformedMessage { .. })
    });
}

#[test]
fn cggmp_keygen_garbage_is_blamed_on_the_sender() {
    let g = params(2, 3);
    let sid = SessionId::random();
    let mut s: Vec<BoxedSession<_>> = g
        .parties()
        .map(|i| {
            Box::new(crate::ecdsa::core_keygen(sid, i, g))
                as BoxedSession<cggmp24::IncompleteKeyShare<Secp256k1>>
        })
        .collect();
    let r = run_local(&mut s, |mut m: Message, _| {
        if m.sender == p(2) {
            m.payload.truncate(m.payload.len() / 2);
        }
        vec![m]
    });
    assert_blamed(&r, &[0, 1], 2, |r| {
        matches!(r, AbortReason::MalformedMessage { .. })
    });
}
