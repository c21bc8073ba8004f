//! The same operations through Coffer's sans-IO session layer: every message encoded,
//! checked at the boundary and decoded; every signature checked by the independent
//! verifier. All parties run in one thread, like the raw baselines.

use coffer_proto::dkls::{self, DklsShare};
use coffer_proto::ecdsa::{self, Preimage};
use coffer_proto::primes::Primes;
use coffer_proto::session::run_local;
use coffer_proto::{
    protocol, BoxedSession, DerivationPath, GroupParams, KeyShare, PartyIndex, Scheme,
    SessionError, SessionId,
};

use crate::BenchError;

fn ok<O>(results: Vec<Result<O, SessionError>>) -> Result<Vec<O>, BenchError> {
    results
        .into_iter()
        .map(|r| r.map_err(|e| BenchError(e.to_string())))
        .collect()
}

fn run<O>(sessions: Result<Vec<BoxedSession<O>>, SessionError>) -> Result<Vec<O>, BenchError> {
    let mut sessions = sessions.map_err(|e| BenchError(e.to_string()))?;
    ok(run_local(&mut sessions, |m, _| vec![m]))
}

/// DKG of a Schnorr scheme, or CGGMP's DKG without auxiliary data.
pub fn keygen(scheme: Scheme, g: GroupParams) -> Result<(), BenchError> {
    let sid = SessionId::random();
    match scheme {
        Scheme::EcdsaSecp256k1 => {
            run(g
                .parties()
                .map(|p| ecdsa::core_keygen_session(sid, p, g))
                .collect())?;
        }
        _ => {
            run(g
                .parties()
                .map(|p| protocol::keygen(scheme, sid, p, g, None))
                .collect())?;
        }
    }
    Ok(())
}

/// CGGMP auxiliary-data generation.
pub fn aux(g: GroupParams, primes: Vec<Primes>) -> Result<(), BenchError> {
    let sid = SessionId::random();
    run(g
        .parties()
        .zip(primes)
        .map(|(p, pr)| ecdsa::aux_gen_session(sid, p, g, pr))
        .collect())?;
    Ok(())
}

/// Interactive signing by the first `t` shares.
pub fn sign(shares: &[KeyShare], t: usize, message: &[u8]) -> Result<(), BenchError> {
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = shares.iter().take(t).map(KeyShare::party).collect();
    run(shares
        .iter()
        .take(t)
        .map(|s| protocol::sign(s, sid, &set, message, &DerivationPath::root()))
        .collect())?;
    Ok(())
}

/// Presigning by the first `t` shares.
pub fn presign(shares: &[KeyShare], t: usize) -> Result<Vec<ecdsa::EcdsaPresignature>, BenchError> {
    let sid = SessionId::random();
    let set: Vec<PartyIndex> = shares.iter().take(t).map(KeyShare::party).collect();
    run(shares
        .iter()
        .take(t)
        .map(|s| protocol::presign(s, sid, &set, &DerivationPath::root()))
        .collect())
}

/// The online step from presignatures: issue, combine, verify.
pub fn online(presigs: Vec<ecdsa::EcdsaPresignature>, message: &[u8]) -> Result<(), BenchError> {
    let first = presigs
        .first()
        .ok_or(BenchError("no presignature".into()))?;
    let public = first.public_data();
    let signers = first.signers().to_vec();
    let preimage = Preimage::Sha256(message.to_vec());
    let partials: Vec<_> = presigs
        .into_iter()
        .zip(signers)
        .map(|(p, s)| p.issue(s, &preimage))
        .collect();
    public
        .combine(&partials, &preimage)
        .map_err(|e| BenchError(e.to_string()))?;
    Ok(())
}

/// Refresh of all shares (ECDSA also renews auxiliary data with `primes`).
pub fn refresh(shares: &[KeyShare], primes: Option<Vec<Primes>>) -> Result<(), BenchError> {
    let sid = SessionId::random();
    let mut primes: Vec<Option<Primes>> = primes
        .map(|p| p.into_iter().map(Some).collect())
        .unwrap_or_default();
    primes.resize_with(shares.len(), || None);
    run(shares
        .iter()
        .zip(primes)
        .map(|(s, pr)| protocol::refresh(s, sid, pr))
        .collect())?;
    Ok(())
}

/// DKLs23 DKG through our sessions.
pub fn dkls_keygen(g: GroupParams) -> Result<Vec<DklsShare>, BenchError> {
    let sid = SessionId::random();
    run(g
        .parties()
        .map(|p| dkls::keygen::keygen(sid, p, g).map(|s| Box::new(s) as BoxedSession<DklsShare>))
        .collect())
}

/// DKLs23 signing by the first `t` shares (every signature checked independently).
pub fn dkls_sign(shares: &[DklsShare], t: usize, digest: [u8; 32]) -> Result<(), BenchError> {
    let sid = SessionId::random();
    let group = shares.get(..t).ok_or(BenchError("too few shares".into()))?;
    let signers: Vec<PartyIndex> = group.iter().map(|s| s.party()).collect();
    let sigs = run(group
        .iter()
        .map(|s| {
            dkls::sign::sign(sid, s, &signers, &DerivationPath::root(), digest)
                .map(|s| Box::new(s) as BoxedSession<protocol::Signature>)
        })
        .collect())?;
    for sig in sigs {
        if !coffer_proto::verify::verify(
            Scheme::EcdsaSecp256k1,
            &sig.public_key,
            &digest,
            &sig.bytes,
        )
        .map_err(|e| BenchError(e.to_string()))?
        {
            return Err(BenchError("DKLs23 signature does not verify".into()));
        }
    }
    Ok(())
}

/// DKLs23 refresh by every party.
pub fn dkls_refresh(shares: &[DklsShare]) -> Result<Vec<DklsShare>, BenchError> {
    let sid = SessionId::random();
    run(shares
        .iter()
        .map(|s| dkls::refresh::refresh(sid, s).map(|s| Box::new(s) as BoxedSession<DklsShare>))
        .collect())
}
