//! Signed rosters as JSON (offered at enrolment, or announced by the server): parsing and
//! every check never panic, the JSON form round trips, and a roster is never an update of
//! itself.
//!
//! Raw bytes rarely form a signed roster in a short run, so each input also builds a roster
//! from fixed identities (signers, admins, server and admin signatures, some missing,
//! repeated or corrupted, chosen by its bytes): the enrolment check must accept it exactly
//! when the rules say so (2..=16 signers, 1..=16 admins, threshold within the admins, no key
//! twice, at least threshold distinct admins with a valid signature). A one-byte edit of its
//! JSON is fed to the parser as well.
#![no_main]

use std::sync::OnceLock;

use coffer_net::roster::{AdminSignature, Roster, SignedRoster};
use coffer_net::{Identity, PublicIdentity};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;

fn check(json: &[u8]) {
    let Ok(signed) = serde_json::from_slice::<SignedRoster>(json) else {
        return;
    };
    let enrolled = signed.check_for_enrolment();
    let checked = signed.roster.check();
    let _ = signed.roster.signing_bytes();
    if enrolled.is_ok() {
        assert!(checked.is_ok(), "enrolment accepted an inconsistent roster");
    }
    assert!(
        signed.check_update(&signed.roster).is_err(),
        "a roster updated itself"
    );
    let json = serde_json::to_vec(&signed).expect("a parsed roster serializes");
    let back: SignedRoster = serde_json::from_slice(&json).expect("and parses again");
    assert_eq!(back, signed);
}

/// The identity's secret form, as `Identity::to_secret_bytes` writes it.
#[derive(Serialize)]
struct Secret<'a> {
    version: u8,
    name: &'a str,
    signing: [u8; 32],
    seal: [u8; 32],
}

const POOL: usize = 40;

/// Fixed identities with their public forms (computed once: key arithmetic is slow under
/// the sanitizer).
fn pool() -> &'static [(Identity, PublicIdentity)] {
    static P: OnceLock<Vec<(Identity, PublicIdentity)>> = OnceLock::new();
    P.get_or_init(|| {
        (0..POOL as u8)
            .map(|i| {
                let name = format!("node-{i}");
                let secret = Secret {
                    version: 1,
                    name: &name,
                    signing: [i + 1; 32],
                    seal: [i + 101; 32],
                };
                let mut bytes = Vec::new();
                ciborium::into_writer(&secret, &mut bytes).expect("encodes");
                let id = Identity::from_secret_bytes(&bytes).expect("a valid identity");
                let public = id.public();
                (id, public)
            })
            .collect()
    })
}

/// Builds a signed roster from the input's bytes and checks the enrolment decision against
/// the rules. Missing bytes read as zero, and zero bytes build a valid roster (two signers,
/// one admin, threshold 1, signed by that admin): every other byte value perturbs it.
fn built(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let pool = pool();
    // Counts in 0..=17, offset so that a zero byte gives the smallest valid count.
    let mut count =
        |base: usize| -> Result<usize> { Ok((base + usize::from(u.arbitrary::<u8>()?)) % 18) };
    let (n_signers, n_admins, threshold) = (count(2)?, count(1)?, count(1)?);
    // Slot k takes pool identity k (all distinct) unless its byte moves it onto another.
    let mut slot = 0;
    let mut pick = |u: &mut Unstructured| -> Result<usize> {
        slot += 1;
        Ok((slot - 1 + usize::from(u.arbitrary::<u8>()?)) % POOL)
    };
    let signers = (0..n_signers)
        .map(|_| pick(&mut u))
        .collect::<Result<Vec<_>>>()?;
    let admins = (0..n_admins)
        .map(|_| pick(&mut u))
        .collect::<Result<Vec<_>>>()?;
    let server = pick(&mut u)?;
    let roster = Roster {
        version: u.arbitrary()?,
        signers: signers.iter().map(|&i| pool[i].1.clone()).collect(),
        admins: admins.iter().map(|&i| pool[i].1.node_key).collect(),
        admin_threshold: threshold as u16,
        server: pool[server].1.node_key,
        dev_mode: u.arbitrary()?,
    };
    // Each admin signs (or, by its byte's bits, does not, signs twice, or corrupts its
    // signature); then a few more signatures by any identity, some corrupted.
    let msg = roster.signing_bytes().expect("encodes");
    let mut signatures = Vec::new();
    let mut valid_admins = Vec::new();
    let mut sign = |by: usize, corrupt: Option<(usize, u8)>| {
        let (id, public) = &pool[by];
        // What `Roster::sign_as_admin` makes, without encoding the roster again.
        let mut sig = AdminSignature {
            admin: public.node_key,
            signature: id.sign(&msg),
        };
        match corrupt {
            Some((at, bit)) => sig.signature[at % 64] ^= 1 << (bit % 8),
            None if admins.contains(&by) && !valid_admins.contains(&by) => valid_admins.push(by),
            None => {}
        }
        signatures.push(sig);
    };
    for &by in &admins {
        let b: u8 = u.arbitrary()?;
        let corrupt = (b & 2 != 0).then_some((usize::from(b), b >> 2));
        if b & 1 == 0 {
            sign(by, corrupt);
        }
        if b & 4 != 0 {
            sign(by, corrupt);
        }
    }
    for _ in 0..u.int_in_range(0..=3)? {
        let by = u.choose_index(POOL)?;
        let corrupt = u
            .arbitrary::<bool>()?
            .then_some((u.arbitrary()?, u.arbitrary()?));
        sign(by, corrupt);
    }
    let mut all: Vec<usize> = signers
        .iter()
        .chain(&admins)
        .copied()
        .chain([server])
        .collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    let expected = (2..=16).contains(&n_signers)
        && (1..=16).contains(&n_admins)
        && (1..=n_admins).contains(&threshold)
        && all.len() == total
        && valid_admins.len() >= threshold;
    let signed = SignedRoster { roster, signatures };
    assert_eq!(signed.check_for_enrolment().is_ok(), expected, "{signed:?}");

    let mut json = serde_json::to_vec(&signed).expect("serializes");
    let parsed: SignedRoster = serde_json::from_slice(&json).expect("a built roster parses");
    assert_eq!(parsed, signed);
    assert!(
        parsed.check_update(&signed.roster).is_err(),
        "a roster updated itself"
    );
    // A one-byte edit; a hex digit keeps keys, signatures and numbers well-formed.
    let at = u.choose_index(json.len())?;
    match u.int_in_range(0..=3u8)? {
        0 => json[at] = *u.choose(b"0123456789abcdef")?,
        1 => json[at] = u.arbitrary()?,
        2 => _ = json.remove(at),
        _ => json.truncate(at),
    }
    check(&json);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let _ = built(data);
});
