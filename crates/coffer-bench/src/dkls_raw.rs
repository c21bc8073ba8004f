//! DKLs23 through the `dkls23` crate directly (never through coffer-proto): all parties in
//! one thread, messages routed by hand between the library's phases, no encoding. The
//! baseline for the DKLs23 rows.

use std::collections::BTreeMap;

use dkls23::protocols::signing::SignData;
use dkls23::protocols::{Parameters, PartyIndex};
use dkls23::secp256k1::Party;
use dkls23::{DkgSession, SignSession};
use k256_dkls::Secp256k1;

use crate::BenchError;

fn err(a: dkls23::protocols::Abort) -> BenchError {
    BenchError(format!("dkls23 aborted: {}", a.description()))
}

fn idx(i: u8) -> Result<PartyIndex, BenchError> {
    PartyIndex::new(i).map_err(|_| BenchError("bad DKLs23 party index".into()))
}

fn for_me<T: Clone>(all: &[Vec<T>], me: PartyIndex, to: impl Fn(&T) -> PartyIndex) -> Vec<T> {
    all.iter()
        .flatten()
        .filter(|m| to(m) == me)
        .cloned()
        .collect()
}

/// DKG of a `t`-of-`n` group.
pub fn dkls_keygen(t: u8, n: u8) -> Result<Vec<Party>, BenchError> {
    let params = Parameters::new(t, n).map_err(|_| BenchError("bad parameters".into()))?;
    let sid = [7u8; 32].to_vec();
    let mut sessions = (1..=n)
        .map(|i| {
            Ok(DkgSession::<Secp256k1>::new(
                params.clone(),
                idx(i)?,
                sid.clone(),
            ))
        })
        .collect::<Result<Vec<_>, BenchError>>()?;
    let rows: Vec<_> = sessions.iter().map(|s| s.phase1()).collect();
    let (mut pcs, mut zero2, mut bip2) = (Vec::new(), Vec::new(), BTreeMap::new());
    for (j, s) in sessions.iter_mut().enumerate() {
        let frags: Vec<_> = rows.iter().map(|r| r[j]).collect();
        let (pc, z, b) = s.phase2(&frags).map_err(err)?;
        pcs.push(pc);
        zero2.push(z);
        bip2.insert(b.sender_index, b);
    }
    let (mut zero3, mut mul3, mut bip3) = (Vec::new(), Vec::new(), BTreeMap::new());
    for s in sessions.iter_mut() {
        let (z, m, b) = s.phase3().map_err(err)?;
        zero3.push(z);
        mul3.push(m);
        bip3.insert(b.sender_index, b);
    }
    let mut parties = Vec::new();
    for (i, s) in (1..=n).zip(sessions) {
        let me = idx(i)?;
        let (party, _) = s
            .phase4(
                &pcs,
                &for_me(&zero2, me, |m| m.parties.receiver),
                &for_me(&zero3, me, |m| m.parties.receiver),
                &for_me(&mul3, me, |m| m.parties.receiver),
                &bip2,
                &bip3,
                |_| String::new(),
            )
            .map_err(err)?;
        parties.push(party);
    }
    Ok(parties)
}

/// Signing by the first `t` parties.
pub fn dkls_sign(parties: &[Party], t: usize, digest: [u8; 32]) -> Result<(), BenchError> {
    let signers = parties
        .get(..t)
        .ok_or(BenchError("too few parties".into()))?;
    let ids: Vec<PartyIndex> = signers.iter().map(|p| p.party_index).collect();
    let mut sessions = Vec::new();
    let mut t1 = Vec::new();
    for p in signers {
        let data = SignData {
            sign_id: vec![9; 32],
            counterparties: ids
                .iter()
                .filter(|i| **i != p.party_index)
                .copied()
                .collect(),
            message_hash: digest,
        };
        let (s, out) = SignSession::new(p, data).map_err(err)?;
        sessions.push(s);
        t1.push(out);
    }
    let mut t2 = Vec::new();
    for (s, me) in sessions.iter_mut().zip(&ids) {
        t2.push(
            s.phase2(&for_me(&t1, *me, |m| m.parties.receiver))
                .map_err(err)?,
        );
    }
    let mut b3 = Vec::new();
    for (s, me) in sessions.iter_mut().zip(&ids) {
        b3.push(
            s.phase3(&for_me(&t2, *me, |m| m.parties.receiver))
                .map_err(err)?,
        );
    }
    for s in sessions {
        s.phase4(&b3, true).map_err(err)?;
    }
    Ok(())
}

/// The library's complete refresh by every party.
pub fn dkls_refresh(parties: &[Party]) -> Result<Vec<Party>, BenchError> {
    let sid = [5u8; 32];
    let rows: Vec<_> = parties
        .iter()
        .map(|p| p.refresh_complete_phase1())
        .collect();
    let (mut corr, mut pcs, mut keep2, mut zero2) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (j, p) in parties.iter().enumerate() {
        let frags: Vec<_> = rows.iter().map(|r| r[j]).collect();
        let (c, pc, k, z) = p.refresh_complete_phase2(&sid, &frags);
        corr.push(c);
        pcs.push(pc);
        keep2.push(k);
        zero2.push(z);
    }
    let (mut keep3, mut zero3, mut mkeep, mut mul3) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, k) in parties.iter().zip(&keep2) {
        let (k3, z, mk, m) = p.refresh_complete_phase3(&sid, k);
        keep3.push(k3);
        zero3.push(z);
        mkeep.push(mk);
        mul3.push(m);
    }
    let mut out = Vec::new();
    for (i, p) in parties.iter().enumerate() {
        let me = p.party_index;
        out.push(
            p.refresh_complete_phase4(
                &sid,
                &corr[i],
                &pcs,
                &keep3[i],
                &for_me(&zero2, me, |m| m.parties.receiver),
                &for_me(&zero3, me, |m| m.parties.receiver),
                &mkeep[i],
                &for_me(&mul3, me, |m| m.parties.receiver),
            )
            .map_err(err)?,
        );
    }
    Ok(out)
}
