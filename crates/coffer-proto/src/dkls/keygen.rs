//! DKLs23 distributed key generation as a sans-IO [`Session`](crate::session::Session): the
//! library's `DkgSession` phases 1 to 4, one network round between phases.
//!
//! Rounds: 1 point-to-point polynomial fragments (secret); 2 broadcast proof commitment and
//! chain-code commitment; 3 point-to-point zero-share commitments; 4 broadcast chain-code
//! reveal; 5 point-to-point zero-share seeds and OT-multiplication setup. Reveals (rounds 4
//! and 5) are only computed once every commitment (rounds 2 and 3) is in.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::DkgSession;
use k256_dkls::{Scalar, Secp256k1};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{lib_index, lib_params, map_abort, DklsShare, Received};
use crate::error::{Abort, AbortReason, Bug, SessionError};
use crate::ids::{GroupParams, PartyIndex, SessionId};
use crate::message::{encode_payload, Message};
use crate::session::Inbox;

type LibIndex = dkls23::protocols::PartyIndex;
type Round2 = (ProofCommitment<Secp256k1>, BroadcastDerivationPhase2to4);
type Round5 = (
    TransmitInitZeroSharePhase3to4,
    TransmitInitMulPhase3to4<Secp256k1>,
);

/// One party's DKLs23 key generation.
pub struct DklsKeygen {
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
    inbox: Inbox,
    received: Received,
    dkg: Option<DkgSession<Secp256k1>>,
    own_fragment: Zeroizing<Scalar>,
    stage: u16,
    commitments: BTreeMap<LibIndex, ProofCommitment<Secp256k1>>,
    bip2: BTreeMap<LibIndex, BroadcastDerivationPhase2to4>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    bip3: BTreeMap<LibIndex, BroadcastDerivationPhase3to4>,
    outgoing: Vec<Message>,
    outcome: Option<Result<DklsShare, SessionError>>,
    finished: bool,
}

/// Starts DKLs23 key generation for party `me` of a `t`-of-`n` group.
pub fn keygen(
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
) -> Result<DklsKeygen, SessionError> {
    if !params.contains(me) {
        return Err(crate::error::ArgumentError::NotAParticipant { party: me }.into());
    }
    let dkg = DkgSession::<Secp256k1>::new(
        lib_params(params)?,
        lib_index(me)?,
        session.as_bytes().to_vec(),
    );
    let fragments = Zeroizing::new(dkg.phase1());
    let mut s = DklsKeygen {
        session,
        me,
        params,
        inbox: Inbox::new(session, me, params.parties().collect()),
        received: Received::default(),
        dkg: Some(dkg),
        own_fragment: Zeroizing::new(Scalar::ZERO),
        stage: 1,
        commitments: BTreeMap::new(),
        bip2: BTreeMap::new(),
        zero2: Vec::new(),
        bip3: BTreeMap::new(),
        outgoing: Vec::new(),
        outcome: None,
        finished: false,
    };
    for p in params.parties() {
        let f = fragments
            .get(usize::from(p.get()))
            .ok_or(Bug("DKLs23 phase 1 gave too few fragments"))?;
        if p == me {
            *s.own_fragment = *f;
        } else {
            s.send(Some(p), 1, f)?;
        }
    }
    Ok(s)
}

impl DklsKeygen {
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

    fn peers(&self) -> usize {
        usize::from(self.params.n()) - 1
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        self.received.put(m);
        while self.step()? {}
        Ok(())
    }

    /// Runs the next phase if its round is complete; `true` when it did.
    fn step(&mut self) -> Result<bool, SessionError> {
        let peers = self.peers();
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
                let dkg = self.dkg.as_mut().ok_or(Bug("DKLs23 keygen state lost"))?;
                let (pc, zero, bip) = dkg
                    .phase2(&ordered)
                    .map_err(|a| map_abort("DKLs23 keygen", a))?;
                self.send(None, 2, &(pc.clone(), bip.clone()))?;
                for z in zero {
                    let to = super::our_index(z.parties.receiver);
                    self.send(Some(to), 3, &z)?;
                }
                let me = lib_index(self.me)?;
                self.commitments.insert(me, pc);
                self.bip2.insert(me, bip);
            }
            2 => {
                let Some(r) = self.received.take_complete::<Round2>(2, peers) else {
                    return Ok(false);
                };
                for (sender, (pc, bip)) in r? {
                    check_sender(sender, bip.sender_index, 2)?;
                    self.commitments.insert(lib_index(sender)?, pc);
                    self.bip2.insert(bip.sender_index, bip);
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
                let dkg = self.dkg.as_mut().ok_or(Bug("DKLs23 keygen state lost"))?;
                let (zero3, mul3, bip3) =
                    dkg.phase3().map_err(|a| map_abort("DKLs23 keygen", a))?;
                self.send(None, 4, &bip3)?;
                for (z, m) in zero3.into_iter().zip(mul3) {
                    if z.parties.receiver != m.parties.receiver {
                        return Err(Bug("DKLs23 phase 3 messages out of order").into());
                    }
                    let to = super::our_index(z.parties.receiver);
                    self.send(Some(to), 5, &(z, m))?;
                }
                self.bip3.insert(lib_index(self.me)?, bip3);
            }
            4 => {
                let Some(r) = self
                    .received
                    .take_complete::<BroadcastDerivationPhase3to4>(4, peers)
                else {
                    return Ok(false);
                };
                for (sender, b) in r? {
                    check_sender(sender, b.sender_index, 4)?;
                    self.bip3.insert(b.sender_index, b);
                }
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
                let dkg = self.dkg.take().ok_or(Bug("DKLs23 keygen state lost"))?;
                let commitments: Vec<_> = self.commitments.values().cloned().collect();
                let (party, public) = dkg
                    .phase4(
                        &commitments,
                        &self.zero2,
                        &zero3,
                        &mul3,
                        &self.bip2,
                        &self.bip3,
                        |_| String::new(),
                    )
                    .map_err(|a| map_abort("DKLs23 keygen", a))?;
                self.outcome = Some(Ok(DklsShare::new(self.params, party, public)));
                self.finished = true;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        self.stage += 1;
        Ok(true)
    }
}

/// A message whose library-level sender differs from its transport sender.
pub(crate) fn check_sender(
    transport: PartyIndex,
    claimed: LibIndex,
    round: u16,
) -> Result<(), SessionError> {
    if super::our_index(claimed) == transport {
        Ok(())
    } else {
        Err(Abort::blaming(transport, AbortReason::MalformedMessage { round }).into())
    }
}

crate::session::explicit_session!(DklsKeygen, DklsShare);
