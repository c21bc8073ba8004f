//! DKLs23 proactive refresh as a sans-IO [`Session`](crate::session::Session): the library's
//! complete refresh (`Party::refresh_complete_phase1..4`: a zero-constant re-sharing plus
//! fresh zero-share seeds and fresh OT-multiplication setup), all `n` parties, same group key.
//!
//! Rounds: 1 point-to-point fragments of the zero polynomial (secret); 2 broadcast proof
//! commitment; 3 point-to-point zero-share commitments; 5 point-to-point zero-share seeds and
//! OT setup (computed only once every commitment is in). The new verifying shares are the old
//! ones plus each party's proven correction point; our own is checked against our new share.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    KeepInitMulPhase3to4, KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::secp256k1::PublicKeyPackage;
use k256_dkls::{ProjectivePoint, Scalar, Secp256k1};
use serde::Serialize;
use zeroize::Zeroizing;

use super::keygen::check_sender;
use super::{lib_index, map_abort, DklsShare, Received};
use crate::error::{Bug, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::{encode_payload, Message};
use crate::session::Inbox;

type LibIndex = dkls23::protocols::PartyIndex;
type Round5 = (
    TransmitInitZeroSharePhase3to4,
    TransmitInitMulPhase3to4<Secp256k1>,
);

/// One party's DKLs23 refresh.
pub struct DklsRefresh {
    session: SessionId,
    me: PartyIndex,
    old: DklsShare,
    inbox: Inbox,
    received: Received,
    own_fragment: Zeroizing<Scalar>,
    correction: Zeroizing<Scalar>,
    stage: u16,
    commitments: BTreeMap<LibIndex, ProofCommitment<Secp256k1>>,
    zero_keep2: BTreeMap<LibIndex, KeepInitZeroSharePhase2to3>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    zero_keep3: BTreeMap<LibIndex, KeepInitZeroSharePhase3to4>,
    mul_keep: BTreeMap<LibIndex, KeepInitMulPhase3to4<Secp256k1>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<DklsShare, SessionError>>,
    finished: bool,
}

/// Starts the refresh of `share`; every one of the `n` parties takes part.
pub fn refresh(session: SessionId, share: &DklsShare) -> Result<DklsRefresh, SessionError> {
    let me = share.party();
    let params = share.params();
    let fragments = Zeroizing::new(share.lib_party().refresh_complete_phase1());
    let mut s = DklsRefresh {
        session,
        me,
        old: share.clone(),
        inbox: Inbox::new(session, me, params.parties().collect()),
        received: Received::default(),
        own_fragment: Zeroizing::new(Scalar::ZERO),
        correction: Zeroizing::new(Scalar::ZERO),
        stage: 1,
        commitments: BTreeMap::new(),
        zero_keep2: BTreeMap::new(),
        zero2: Vec::new(),
        zero_keep3: BTreeMap::new(),
        mul_keep: BTreeMap::new(),
        outgoing: Vec::new(),
        outcome: None,
        finished: false,
    };
    for p in params.parties() {
        let f = fragments
            .get(usize::from(p.get()))
            .ok_or(Bug("DKLs23 refresh phase 1 gave too few fragments"))?;
        if p == me {
            *s.own_fragment = *f;
        } else {
            s.send(Some(p), 1, f)?;
        }
    }
    Ok(s)
}

impl DklsRefresh {
    fn send<T: Serialize>(
        &mut self,
        to: Option<PartyIndex>,
        round: u16,
        value: &T,
    ) -> Result<(), Bug> {
        self.outgoing.push(Message {
            session: self.session,
            sender: self.me,
            recipient: to,
            round,
            payload: encode_payload(value)?,
        });
        Ok(())
    }

    fn sid(&self) -> Vec<u8> {
        self.session.as_bytes().to_vec()
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        self.received.put(m);
        while self.step()? {}
        Ok(())
    }

    fn step(&mut self) -> Result<bool, SessionError> {
        let peers = usize::from(self.old.params().n()) - 1;
        let sid = self.sid();
        match self.stage {
            1 => {
                let Some(r) = self.received.take_complete::<Scalar>(1, peers) else {
                    return Ok(false);
                };
                let mut frags: BTreeMap<PartyIndex, Scalar> = r?.into_iter().collect();
                frags.insert(self.me, *self.own_fragment);
                let ordered = Zeroizing::new(frags.values().copied().collect::<Vec<_>>());
                for v in frags.values_mut() {
                    *v = Scalar::ZERO;
                }
                let (correction, pc, keep, zero) =
                    self.old.lib_party().refresh_complete_phase2(&sid, &ordered);
                *self.correction = correction;
                self.send(None, 2, &pc)?;
                for z in zero {
                    let to = super::our_index(z.parties.receiver);
                    self.send(Some(to), 3, &z)?;
                }
                self.commitments.insert(lib_index(self.me)?, pc);
                self.zero_keep2 = keep;
            }
            2 => {
                let Some(r) = self
                    .received
                    .take_complete::<ProofCommitment<Secp256k1>>(2, peers)
                else {
                    return Ok(false);
                };
                for (sender, pc) in r? {
                    check_sender(sender, pc.index, 2)?;
                    self.commitments.insert(pc.index, pc);
                }
            }
            3 => {
                let Some(r) = self
                    .received
                    .take_complete::<TransmitInitZeroSharePhase2to4>(3, peers)
                else {
                    return Ok(false);
                };
                for (sender, z) in r? {
                    check_sender(sender, z.parties.sender, 3)?;
                    self.zero2.push(z);
                }
                let (keep3, zero3, mul_keep, mul3) = self
                    .old
                    .lib_party()
                    .refresh_complete_phase3(&sid, &self.zero_keep2);
                self.zero_keep2.clear();
                for (z, m) in zero3.into_iter().zip(mul3) {
                    if z.parties.receiver != m.parties.receiver {
                        return Err(Bug("DKLs23 refresh phase 3 messages out of order").into());
                    }
                    let to = super::our_index(z.parties.receiver);
                    self.send(Some(to), 5, &(z, m))?;
                }
                self.zero_keep3 = keep3;
                self.mul_keep = mul_keep;
                // Round 4 is unused by refresh (keygen's chain-code reveal).
                self.stage = 5;
                return Ok(true);
            }
            5 => {
                let Some(r) = self.received.take_complete::<Round5>(5, peers) else {
                    return Ok(false);
                };
                let mut zero3 = Vec::new();
                let mut mul3 = Vec::new();
                for (sender, (z, m)) in r? {
                    check_sender(sender, z.parties.sender, 5)?;
                    check_sender(sender, m.parties.sender, 5)?;
                    zero3.push(z);
                    mul3.push(m);
                }
                let commitments: Vec<_> = self.commitments.values().cloned().collect();
                let party = self
                    .old
                    .lib_party()
                    .refresh_complete_phase4(
                        &sid,
                        &self.correction,
                        &commitments,
                        &self.zero_keep3,
                        &self.zero2,
                        &zero3,
                        &self.mul_keep,
                        &mul3,
                    )
                    .map_err(|a| map_abort("DKLs23 refresh", a))?;
                let public = self.new_public()?;
                let mine = public
                    .verifying_share(party.party_index)
                    .ok_or(Bug("DKLs23 refresh lost our verifying share"))?;
                let expected: k256_dkls::AffinePoint =
                    (ProjectivePoint::GENERATOR * party.poly_point).into();
                if *mine != expected {
                    return Err(Bug("DKLs23 refreshed verifying share does not match").into());
                }
                self.outcome = Some(Ok(DklsShare::new(self.old.params(), party, public)));
                self.finished = true;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        self.stage += 1;
        Ok(true)
    }

    /// The old verifying shares moved by each party's proven correction point.
    fn new_public(&self) -> Result<PublicKeyPackage, SessionError> {
        let old = self.old.public_package();
        let mut shares = BTreeMap::new();
        for (idx, pc) in &self.commitments {
            let before = old
                .verifying_share(*idx)
                .ok_or(Bug("DKLs23 package misses a verifying share"))?;
            let after: k256_dkls::AffinePoint =
                (ProjectivePoint::from(*before) + ProjectivePoint::from(pc.proof.point)).into();
            shares.insert(*idx, after);
        }
        Ok(PublicKeyPackage::new(
            *old.verifying_key(),
            shares,
            self.old.lib_party().parameters.clone(),
        ))
    }
}

crate::session::explicit_session!(DklsRefresh, DklsShare);
