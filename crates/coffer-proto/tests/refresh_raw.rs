//! The breach-response proof, outside Coffer: after a refresh of a 2-of-3 key, a stolen
//! pre-refresh share of party A combined with a current share of party B does not produce a
//! signature valid under the group key when both are run through the protocol libraries'
//! own signing (frost-core round 1, round 2 and aggregation called directly; cggmp24's
//! signing driven by round-based's state machines), while two current shares do.
//!
//! The shares come from the code path the signers use (`ceremony::refresh` runs
//! `protocol::refresh`, as the signer's refresh session does) and are taken out of Coffer
//! the way an attacker holding a decrypted share file would: its secret encoding is parsed
//! with the libraries' own types (mirror structs below), not with Coffer's decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};

use cggmp24::generic_ec::{Point, Scalar};
use cggmp24::key_share::{DirtyKeyShare, Valid};
use cggmp24::round_based::state_machine::{ProceedResult, StateMachine};
use cggmp24::round_based::{Incoming, MessageDestination, MessageType};
use cggmp24::security_level::SecurityLevel128;
use cggmp24::supported_curves::Secp256k1;
use coffer_proto::{ceremony, KeyShare, Scheme};
use coffer_testkit::{keygen, test_primes};
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use rand_core::OsRng;
use serde::Deserialize;

type RawCggmp = cggmp24::KeyShare<Secp256k1, SecurityLevel128>;

/// The secret encoding of a Coffer share as a CBOR map; only the library-typed parts are
/// read.
#[derive(Deserialize)]
struct Secret<S> {
    share: S,
}

#[derive(Deserialize)]
#[serde(bound = "")]
struct RawFrost<C: Ciphersuite> {
    key_package: KeyPackage<C>,
    public_key_package: PublicKeyPackage<C>,
}

#[derive(Deserialize)]
enum FrostInner<C: Ciphersuite> {
    #[serde(rename = "schnorr-bip340", alias = "ed25519")]
    Frost(#[serde(bound = "")] RawFrost<C>),
}

#[derive(Deserialize)]
enum EcdsaBackend {
    #[serde(rename = "cggmp24")]
    Cggmp24(Box<RawCggmp>),
}

#[derive(Deserialize)]
enum EcdsaInner {
    #[serde(rename = "ecdsa-secp256k1")]
    Ecdsa(EcdsaBackend),
}

fn frost_raw<C: Ciphersuite>(share: &KeyShare) -> RawFrost<C> {
    let bytes = share.encode_secret().unwrap();
    let s: Secret<FrostInner<C>> = ciborium::from_reader(bytes.as_slice()).unwrap();
    let FrostInner::Frost(raw) = s.share;
    raw
}

fn cggmp_raw(share: &KeyShare) -> RawCggmp {
    let bytes = share.encode_secret().unwrap();
    let s: Secret<EcdsaInner> = ciborium::from_reader(bytes.as_slice()).unwrap();
    let EcdsaInner::Ecdsa(EcdsaBackend::Cggmp24(raw)) = s.share;
    *raw
}

/// A 2-of-3 key and its refresh, made by Coffer's code (the signers' code path).
fn refreshed(scheme: Scheme) -> (Vec<KeyShare>, Vec<KeyShare>) {
    let old = keygen(scheme, 2, 3);
    let new = ceremony::refresh(&old, test_primes()).unwrap();
    assert_eq!(new[0].epoch().0, old[0].epoch().0 + 1);
    (old, new)
}

/// FROST signing by two key packages, the library's functions called directly; the
/// aggregate is checked against `group`, the public package the group holds now.
fn frost_sign<C: Ciphersuite>(
    a: &KeyPackage<C>,
    b: &KeyPackage<C>,
    group: &PublicKeyPackage<C>,
    message: &[u8],
) -> Result<frost_core::Signature<C>, frost_core::Error<C>> {
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for kp in [a, b] {
        let (n, c) = frost_core::round1::commit(kp.signing_share(), &mut OsRng);
        nonces.insert(*kp.identifier(), n);
        commitments.insert(*kp.identifier(), c);
    }
    let package = frost_core::SigningPackage::new(commitments, message);
    let mut shares = BTreeMap::new();
    for kp in [a, b] {
        let share = frost_core::round2::sign(&package, &nonces[kp.identifier()], kp)?;
        shares.insert(*kp.identifier(), share);
    }
    frost_core::aggregate(&package, &shares, group)
}

fn frost_proof<C: Ciphersuite>(scheme: Scheme) {
    let (old, new) = refreshed(scheme);
    let old: Vec<RawFrost<C>> = old.iter().map(frost_raw::<C>).collect();
    let new: Vec<RawFrost<C>> = new.iter().map(frost_raw::<C>).collect();
    let group = &new[1].public_key_package;
    let key = group.verifying_key();
    assert_eq!(key, old[0].public_key_package.verifying_key(), "same key");
    let message = b"after the breach";

    // Two current shares sign, and the signature verifies under the group key.
    let sig = frost_sign(&new[0].key_package, &new[1].key_package, group, message).unwrap();
    key.verify(message, &sig).unwrap();

    // A stolen old share A with a current share B: no valid signature, whichever public
    // package (old or new) the aggregator uses.
    for pkg in [group, &old[0].public_key_package] {
        if let Ok(sig) = frost_sign(&old[0].key_package, &new[1].key_package, pkg, message) {
            assert!(key.verify(message, &sig).is_err(), "{scheme:?}");
        }
    }
    // The mathematics, by the library's own interpolation: old A + new B is not the key,
    // new A + new B is.
    let secret = |a: &KeyPackage<C>, b: &KeyPackage<C>| {
        let sk = frost_core::keys::reconstruct(&[a.clone(), b.clone()]).unwrap();
        frost_core::VerifyingKey::<C>::from(&sk)
    };
    assert_eq!(
        secret(&new[0].key_package, &new[1].key_package)
            .serialize()
            .unwrap(),
        key.serialize().unwrap()
    );
    assert_ne!(
        secret(&old[0].key_package, &new[1].key_package)
            .serialize()
            .unwrap(),
        key.serialize().unwrap()
    );
    // The two old shares still interpolate to the key (why they must be deleted, and why the
    // signers refuse a restored old share): the refresh does not change the key.
    assert_eq!(
        secret(&old[0].key_package, &old[1].key_package)
            .serialize()
            .unwrap(),
        key.serialize().unwrap()
    );
    // Identifiers as the library numbers them (party index + 1).
    assert_eq!(
        *new[1].key_package.identifier(),
        Identifier::<C>::try_from(2u16).unwrap()
    );
}

#[test]
fn ed25519_old_share_with_a_new_one_signs_nothing_through_frost_core() {
    frost_proof::<frost_ed25519::Ed25519Sha512>(Scheme::Ed25519);
}

#[test]
fn bip340_old_share_with_a_new_one_signs_nothing_through_frost_core() {
    frost_proof::<frost_secp256k1_tr::Secp256K1Sha256TR>(Scheme::SchnorrBip340);
}

type SignOutput = Result<cggmp24::Signature<Secp256k1>, cggmp24::SigningError>;

/// CGGMP signing of `digest` by shares `a` (keygen index `ia`) and `b` (`ib`), each
/// running `cggmp24::signing` in its own round-based state machine; messages are routed
/// between the two machines here.
fn cggmp_sign(shares: [(u16, &RawCggmp); 2], digest: [u8; 32]) -> Vec<SignOutput> {
    let signers = [shares[0].0, shares[1].0];
    let eid_bytes = [7u8; 32];
    let message = cggmp24::PrehashedDataToSign::from_scalar(
        Scalar::<Secp256k1>::from_be_bytes_mod_order(digest),
    );
    let mut machines: Vec<_> = shares
        .iter()
        .enumerate()
        .map(|(i, (_, share))| {
            let share = (*share).clone();
            let i = i as u16;
            round_based_machine(i, signers, share, message, eid_bytes)
        })
        .collect();
    let mut queues: Vec<VecDeque<Incoming<_>>> = vec![VecDeque::new(), VecDeque::new()];
    let mut outputs: Vec<Option<SignOutput>> = vec![None, None];
    let mut waiting = [false, false];
    let mut next_id = 0u64;
    for _ in 0..100_000 {
        if outputs.iter().all(Option::is_some) {
            break;
        }
        let mut progressed = false;
        for i in 0..2 {
            if outputs[i].is_some() {
                continue;
            }
            if waiting[i] {
                let Some(m) = queues[i].pop_front() else {
                    continue;
                };
                machines[i].received_msg(m).map_err(|_| ()).unwrap();
                waiting[i] = false;
            }
            progressed = true;
            match machines[i].proceed() {
                ProceedResult::SendMsg(out) => {
                    let (to, msg_type) = match out.recipient {
                        MessageDestination::AllParties => (1 - i, MessageType::Broadcast),
                        MessageDestination::OneParty(j) => (usize::from(j), MessageType::P2P),
                    };
                    next_id += 1;
                    queues[to].push_back(Incoming {
                        id: next_id,
                        sender: i as u16,
                        msg_type,
                        msg: out.msg,
                    });
                }
                ProceedResult::NeedsOneMoreMessage => waiting[i] = true,
                ProceedResult::Output(o) => outputs[i] = Some(o),
                ProceedResult::Yielded => {}
                ProceedResult::Error(e) => panic!("state machine error: {e}"),
            }
        }
        if !progressed {
            // Both wait for messages that will never come: the run is stuck.
            break;
        }
    }
    outputs.into_iter().flatten().collect()
}

fn round_based_machine(
    i: u16,
    signers: [u16; 2],
    share: RawCggmp,
    message: cggmp24::PrehashedDataToSign<Secp256k1>,
    eid: [u8; 32],
) -> impl StateMachine<Output = SignOutput, Msg = cggmp24::signing::msg::Msg<Secp256k1, sha2::Sha256>>
{
    cggmp24::round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = OsRng;
        cggmp24::signing(cggmp24::ExecutionId::new(&eid), i, &signers, &share)
            .sign(&mut rng, party, &message)
            .await
    })
}

/// An independent check (libsecp256k1) of `sig` over `digest` under `key`.
fn secp_valid(
    key: &Point<Secp256k1>,
    digest: [u8; 32],
    sig: &cggmp24::Signature<Secp256k1>,
) -> bool {
    let mut rs = [0u8; 64];
    sig.write_to_slice(&mut rs);
    let Ok(mut s) = secp256k1::ecdsa::Signature::from_compact(&rs) else {
        return false;
    };
    s.normalize_s();
    let pk = secp256k1::PublicKey::from_slice(&key.to_bytes(true)).unwrap();
    let msg = secp256k1::Message::from_digest(digest);
    secp256k1::Secp256k1::verification_only()
        .verify_ecdsa(&msg, &s, &pk)
        .is_ok()
}

/// `sum_j lambda_j x_j` over the two shares, with the key's own evaluation points.
fn interpolate(a: &RawCggmp, b: &RawCggmp) -> Point<Secp256k1> {
    let vss = a.core.key_info.vss_setup.as_ref().expect("a threshold key");
    let xa: Scalar<Secp256k1> = vss.I[usize::from(a.core.i)].into();
    let xb: Scalar<Secp256k1> = vss.I[usize::from(b.core.i)].into();
    let la = xb * (xb - xa).invert().unwrap();
    let lb = xa * (xa - xb).invert().unwrap();
    let sa: &Scalar<Secp256k1> = a.core.x.as_ref();
    let sb: &Scalar<Secp256k1> = b.core.x.as_ref();
    Point::generator() * (la * sa + lb * sb)
}

#[test]
fn ecdsa_old_share_with_a_new_one_signs_nothing_through_cggmp24() {
    let (old, new) = refreshed(Scheme::EcdsaSecp256k1);
    let old: Vec<RawCggmp> = old.iter().map(cggmp_raw).collect();
    let new: Vec<RawCggmp> = new.iter().map(cggmp_raw).collect();
    let key: Point<Secp256k1> = *new[1].core.key_info.shared_public_key;
    assert_eq!(key, *old[0].core.key_info.shared_public_key, "same key");
    let digest = [0x42u8; 32];

    // Two current shares sign; libsecp256k1 accepts the signature.
    let outs = cggmp_sign([(0, &new[0]), (1, &new[1])], digest);
    assert_eq!(outs.len(), 2);
    for o in &outs {
        let sig = o.as_ref().expect("current shares sign");
        assert!(secp_valid(&key, digest, sig));
    }

    // The stolen old share A as it was, with B's current share.
    for sig in cggmp_sign([(0, &old[0]), (1, &new[1])], digest)
        .into_iter()
        .flatten()
    {
        assert!(!secp_valid(&key, digest, &sig));
    }
    // The attacker's best attempt: the old secret share of A inside A's current auxiliary
    // data (the library accepts the combination as a valid key share).
    let franken: RawCggmp = Valid::validate(DirtyKeyShare {
        core: old[0].core.clone(),
        aux: new[0].aux.clone(),
    })
    .map_err(|_| ())
    .expect("the library validates the transplanted share");
    for sig in cggmp_sign([(0, &franken), (1, &new[1])], digest)
        .into_iter()
        .flatten()
    {
        assert!(!secp_valid(&key, digest, &sig));
    }

    // The mathematics: old A and new B interpolate to another point; new A and new B (and,
    // the reason old files are deleted, old A and old B) to the key.
    assert_ne!(interpolate(&old[0], &new[1]), key);
    assert_eq!(interpolate(&new[0], &new[1]), key);
    assert_eq!(interpolate(&old[0], &old[1]), key);
}
