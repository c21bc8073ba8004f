//! Baselines: the protocol libraries called directly, never through Coffer's wrapper. FROST
//! runs its DKG, signing (one aggregator, as the library intends) and refresh function by
//! function; CGGMP runs under `round-based`'s own in-process simulator (no serialization).

use std::collections::BTreeMap;

use cggmp24::security_level::SecurityLevel128;
use cggmp24::supported_curves::Secp256k1;
use cggmp24::ExecutionId;
use coffer_proto::primes::Primes;
use frost_core::keys::{dkg, KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use rand_core::OsRng;

use crate::BenchError;

/// A FROST group as the library hands it out.
pub struct FrostGroup<C: Ciphersuite> {
    /// Every party's key package.
    pub key_packages: BTreeMap<Identifier<C>, KeyPackage<C>>,
    /// The group's public package.
    pub public: PublicKeyPackage<C>,
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError(format!("{what}: {e}"))
}

fn ids<C: Ciphersuite>(n: u16) -> Result<Vec<Identifier<C>>, BenchError> {
    (1..=n)
        .map(|i| Identifier::try_from(i).map_err(err("identifier")))
        .collect()
}

/// The FROST DKG for all `n` parties.
pub fn frost_keygen<C: Ciphersuite>(t: u16, n: u16) -> Result<FrostGroup<C>, BenchError> {
    let ids = ids::<C>(n)?;
    let mut secrets1 = BTreeMap::new();
    let mut round1 = BTreeMap::new();
    for id in &ids {
        let (s, p) = dkg::part1(*id, n, t, OsRng).map_err(err("part1"))?;
        secrets1.insert(*id, s);
        round1.insert(*id, p);
    }
    let mut secrets2 = BTreeMap::new();
    let mut round2: BTreeMap<Identifier<C>, BTreeMap<Identifier<C>, dkg::round2::Package<C>>> =
        BTreeMap::new();
    for (id, s) in secrets1 {
        let others: BTreeMap<_, _> = round1
            .iter()
            .filter(|(k, _)| **k != id)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let (s2, out) = dkg::part2(s, &others).map_err(err("part2"))?;
        secrets2.insert(id, s2);
        for (to, pkg) in out {
            round2.entry(to).or_default().insert(id, pkg);
        }
    }
    let mut key_packages = BTreeMap::new();
    let mut public = None;
    for (id, s2) in &secrets2 {
        let others: BTreeMap<_, _> = round1
            .iter()
            .filter(|(k, _)| *k != id)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let received = round2.remove(id).unwrap_or_default();
        let (kp, pkp) = dkg::part3(s2, &others, &received).map_err(err("part3"))?;
        key_packages.insert(*id, kp);
        public = Some(pkp);
    }
    Ok(FrostGroup {
        key_packages,
        public: public.ok_or(BenchError("empty group".into()))?,
    })
}

/// FROST signing by the first `t` parties, aggregated once.
pub fn frost_sign<C: Ciphersuite>(
    g: &FrostGroup<C>,
    t: usize,
    message: &[u8],
) -> Result<Vec<u8>, BenchError> {
    let signers: Vec<_> = g.key_packages.iter().take(t).collect();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for (id, kp) in &signers {
        let (n, c) = frost_core::round1::commit(kp.signing_share(), &mut OsRng);
        nonces.insert(**id, n);
        commitments.insert(**id, c);
    }
    let package = frost_core::SigningPackage::new(commitments, message);
    let mut shares = BTreeMap::new();
    for (id, kp) in &signers {
        let n = nonces.get(*id).ok_or(BenchError("nonce".into()))?;
        shares.insert(
            **id,
            frost_core::round2::sign(&package, n, kp).map_err(err("sign"))?,
        );
    }
    let sig = frost_core::aggregate(&package, &shares, &g.public).map_err(err("aggregate"))?;
    sig.serialize().map_err(err("serialize"))
}

/// FROST's DKG-based refresh for all parties.
pub fn frost_refresh<C: Ciphersuite>(g: &FrostGroup<C>) -> Result<FrostGroup<C>, BenchError> {
    use frost_core::keys::refresh;
    let n = u16::try_from(g.key_packages.len()).map_err(err("n"))?;
    let t = *g
        .key_packages
        .values()
        .next()
        .ok_or(BenchError("empty".into()))?
        .min_signers();
    let mut secrets1 = BTreeMap::new();
    let mut round1 = BTreeMap::new();
    for id in g.key_packages.keys() {
        let (s, p) = refresh::refresh_dkg_part1(*id, n, t, OsRng).map_err(err("refresh part1"))?;
        secrets1.insert(*id, s);
        round1.insert(*id, p);
    }
    let mut secrets2 = BTreeMap::new();
    let mut round2: BTreeMap<Identifier<C>, BTreeMap<Identifier<C>, dkg::round2::Package<C>>> =
        BTreeMap::new();
    for (id, s) in secrets1 {
        let others: BTreeMap<_, _> = round1
            .iter()
            .filter(|(k, _)| **k != id)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let (s2, out) = refresh::refresh_dkg_part2(s, &others).map_err(err("refresh part2"))?;
        secrets2.insert(id, s2);
        for (to, pkg) in out {
            round2.entry(to).or_default().insert(id, pkg);
        }
    }
    let mut key_packages = BTreeMap::new();
    let mut public = None;
    for (id, s2) in &secrets2 {
        let others: BTreeMap<_, _> = round1
            .iter()
            .filter(|(k, _)| *k != id)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let received = round2.remove(id).unwrap_or_default();
        let old = g
            .key_packages
            .get(id)
            .ok_or(BenchError("old package".into()))?
            .clone();
        let (kp, pkp) = refresh::refresh_dkg_shares(s2, &others, &received, g.public.clone(), old)
            .map_err(err("refresh shares"))?;
        key_packages.insert(*id, kp);
        public = Some(pkp);
    }
    Ok(FrostGroup {
        key_packages,
        public: public.ok_or(BenchError("empty group".into()))?,
    })
}

const EID: &[u8] = b"coffer-bench raw cggmp24";

/// A CGGMP key share.
pub type CggmpShare = cggmp24::KeyShare<Secp256k1, SecurityLevel128>;

/// CGGMP threshold DKG (without auxiliary data), under the library's simulator.
pub fn cggmp_keygen(
    t: u16,
    n: u16,
) -> Result<Vec<cggmp24::IncompleteKeyShare<Secp256k1>>, BenchError> {
    let r = round_based::sim::run(n, |i, party| async move {
        let mut rng = OsRng;
        cggmp24::keygen::<Secp256k1>(ExecutionId::new(EID), i, n)
            .set_threshold(t)
            .hd_wallet(true)
            .start(&mut rng, party)
            .await
    })
    .map_err(err("sim"))?;
    r.into_vec()
        .into_iter()
        .map(|s| s.map_err(err("keygen")))
        .collect()
}

/// CGGMP auxiliary-data generation for `primes.len()` parties.
pub fn cggmp_aux(
    primes: Vec<Primes>,
) -> Result<Vec<cggmp24::key_share::AuxInfo<SecurityLevel128>>, BenchError> {
    let n = u16::try_from(primes.len()).map_err(err("n"))?;
    let r = round_based::sim::run_with_setup(primes, |i, party, primes| async move {
        let mut rng = OsRng;
        cggmp24::aux_info_gen(ExecutionId::new(EID), i, n, primes)
            .start(&mut rng, party)
            .await
    })
    .map_err(err("sim"))?;
    r.into_vec()
        .into_iter()
        .map(|s| s.map_err(err("aux")))
        .collect()
}

/// Completed CGGMP shares from a DKG and an aux run.
pub fn cggmp_group(t: u16, n: u16, primes: Vec<Primes>) -> Result<Vec<CggmpShare>, BenchError> {
    let cores = cggmp_keygen(t, n)?;
    let aux = cggmp_aux(primes)?;
    cores
        .into_iter()
        .zip(aux)
        .map(|(c, a)| cggmp24::KeyShare::from_parts((c, a)).map_err(err("from_parts")))
        .collect()
}

/// CGGMP interactive signing of a digest by the first `t` parties.
pub fn cggmp_sign(shares: &[CggmpShare], t: u16, digest: [u8; 32]) -> Result<(), BenchError> {
    let signers: Vec<u16> = (0..t).collect();
    let r = round_based::sim::run(t, |i, party| {
        let signers = signers.clone();
        let share = shares[usize::from(signers[usize::from(i)])].clone();
        async move {
            let mut rng = OsRng;
            let m = cggmp24::PrehashedDataToSign::from_scalar(
                cggmp24::generic_ec::Scalar::from_be_bytes_mod_order(digest),
            );
            cggmp24::signing(ExecutionId::new(EID), i, &signers, &share)
                .sign(&mut rng, party, &m)
                .await
        }
    })
    .map_err(err("sim"))?;
    for s in r.into_vec() {
        s.map_err(err("sign"))?;
    }
    Ok(())
}

/// A presignature with its public data.
pub type Presig = (
    cggmp24::Presignature<Secp256k1>,
    cggmp24::signing::PresignaturePublicData<Secp256k1>,
);

/// CGGMP presigning by the first `t` parties.
pub fn cggmp_presign(shares: &[CggmpShare], t: u16) -> Result<Vec<Presig>, BenchError> {
    let signers: Vec<u16> = (0..t).collect();
    let r = round_based::sim::run(t, |i, party| {
        let signers = signers.clone();
        let share = shares[usize::from(signers[usize::from(i)])].clone();
        async move {
            let mut rng = OsRng;
            cggmp24::signing(ExecutionId::new(EID), i, &signers, &share)
                .generate_presignature(&mut rng, party)
                .await
        }
    })
    .map_err(err("sim"))?;
    r.into_vec()
        .into_iter()
        .map(|s| s.map_err(err("presign")))
        .collect()
}

/// The online step: every signer issues a partial signature, one party combines.
pub fn cggmp_online(presigs: Vec<Presig>, message: &[u8]) -> Result<(), BenchError> {
    let data = cggmp24::DataToSign::digest::<sha2::Sha256>(message);
    let public = presigs
        .first()
        .ok_or(BenchError("no presignature".into()))?
        .1
        .clone();
    let partials: Vec<_> = presigs
        .into_iter()
        .map(|(p, _)| p.issue_partial_signature(data))
        .collect();
    cggmp24::PartialSignature::combine(&partials, &public, data)
        .ok_or(BenchError("combine".into()))?;
    Ok(())
}
