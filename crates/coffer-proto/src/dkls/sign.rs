//! DKLs23 signing of a 32-byte digest as a sans-IO [`Session`](crate::session::Session): the
//! library's `Party::sign_phase1..4`, optionally at a non-hardened BIP32 child (the library's
//! own derivation). Rounds: 1 and 2 point-to-point (OT multiplication), 3 broadcast (the
//! parties' signature pieces). The signature is low-S with its recovery id.

use std::collections::BTreeMap;

use dkls23::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23::secp256k1::Party;
use k256_dkls::Secp256k1;
use serde::Serialize;

use super::keygen::check_sender;
use super::{lib_index, map_abort, point_bytes, DklsShare, Received};
use crate::error::{AbortReason, ArgumentError, Bug, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::{encode_payload, Message};
use crate::path::DerivationPath;
use crate::protocol::Signature;
use crate::scheme::Scheme;
use crate::session::Inbox;

type LibIndex = dkls23::protocols::PartyIndex;

enum State {
    Phase1(
        UniqueKeep1to2<Secp256k1>,
        BTreeMap<LibIndex, KeepPhase1to2<Secp256k1>>,
    ),
    Phase2(
        UniqueKeep2to3<Secp256k1>,
        BTreeMap<LibIndex, KeepPhase2to3<Secp256k1>>,
    ),
    Phase3(String, Broadcast3to4<Secp256k1>),
    Done,
}

/// One party's DKLs23 signing run.
pub struct DklsSign {
    session: SessionId,
    me: PartyIndex,
    party: Party,
    data: SignData,
    peers: usize,
    inbox: Inbox,
    received: Received,
    state: State,
    outgoing: Vec<Message>,
    outcome: Option<Result<Signature, SessionError>>,
    finished: bool,
}

/// Starts signing `digest` with `share` among `signers` (exactly `t` keygen indices,
/// including this party), at `path` below the group key.
pub fn sign(
    session: SessionId,
    share: &DklsShare,
    signers: &[PartyIndex],
    path: &DerivationPath,
    digest: [u8; 32],
) -> Result<DklsSign, SessionError> {
    let me = share.party();
    let params = share.params();
    let mut set = signers.to_vec();
    set.sort_unstable();
    set.dedup();
    if set.len() != signers.len() {
        return Err(ArgumentError::DuplicateParty {
            party: signers.first().copied().unwrap_or(me),
        }
        .into());
    }
    if set.len() != usize::from(params.t()) {
        return Err(ArgumentError::TooFewSigners {
            given: set.len(),
            threshold: params.t(),
        }
        .into());
    }
    if let Some(p) = set.iter().find(|p| !params.contains(**p)) {
        return Err(ArgumentError::NotAParticipant { party: *p }.into());
    }
    if !set.contains(&me) {
        return Err(ArgumentError::NotAParticipant { party: me }.into());
    }
    let party = share.derived_party(path)?;
    let counterparties = set
        .iter()
        .filter(|p| **p != me)
        .map(|p| lib_index(*p))
        .collect::<Result<Vec<_>, _>>()?;
    let data = SignData {
        sign_id: session.as_bytes().to_vec(),
        counterparties,
        message_hash: digest,
    };
    let (unique, keep, transmit) = party
        .sign_phase1(&data)
        .map_err(|a| map_abort("DKLs23 signing", a))?;
    let mut s = DklsSign {
        session,
        me,
        party,
        data,
        peers: set.len() - 1,
        inbox: Inbox::new(session, me, set),
        received: Received::default(),
        state: State::Phase1(unique, keep),
        outgoing: Vec::new(),
        outcome: None,
        finished: false,
    };
    for t in &transmit {
        s.send(Some(super::our_index(t.parties.receiver)), 1, t)?;
    }
    Ok(s)
}

impl DklsSign {
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

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        self.received.put(m);
        while self.step()? {}
        Ok(())
    }

    fn step(&mut self) -> Result<bool, SessionError> {
        let peers = self.peers;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Phase1(unique, keep) => {
                let Some(r) = self.received.take_complete::<TransmitPhase1to2>(1, peers) else {
                    self.state = State::Phase1(unique, keep);
                    return Ok(false);
                };
                let mut got = Vec::with_capacity(peers);
                for (sender, t) in r? {
                    check_sender(sender, t.parties.sender, 1)?;
                    got.push(t);
                }
                let (unique, keep, transmit) = self
                    .party
                    .sign_phase2(&self.data, unique, keep, &got)
                    .map_err(|a| map_abort("DKLs23 signing", a))?;
                for t in &transmit {
                    self.send(Some(super::our_index(t.parties.receiver)), 2, t)?;
                }
                self.state = State::Phase2(unique, keep);
            }
            State::Phase2(unique, keep) => {
                let Some(r) = self
                    .received
                    .take_complete::<TransmitPhase2to3<Secp256k1>>(2, peers)
                else {
                    self.state = State::Phase2(unique, keep);
                    return Ok(false);
                };
                let mut got = Vec::with_capacity(peers);
                for (sender, t) in r? {
                    check_sender(sender, t.parties.sender, 2)?;
                    got.push(t);
                }
                let (x, broadcast) = self
                    .party
                    .sign_phase3(&self.data, unique, keep, &got)
                    .map_err(|a| map_abort("DKLs23 signing", a))?;
                self.send(None, 3, &broadcast)?;
                self.state = State::Phase3(x, broadcast);
            }
            State::Phase3(x, own) => {
                let Some(r) = self
                    .received
                    .take_complete::<Broadcast3to4<Secp256k1>>(3, peers)
                else {
                    self.state = State::Phase3(x, own);
                    return Ok(false);
                };
                let mut all = vec![own];
                all.extend(r?.into_iter().map(|(_, b)| b));
                let (s_hex, recovery_id) = self
                    .party
                    .sign_phase4(&self.data, &x, &all, true)
                    .map_err(|a| map_abort("DKLs23 signing", a))?;
                let mut bytes = [0u8; 64];
                let (r_out, s_out) = bytes.split_at_mut(32);
                let bad = || {
                    SessionError::from(crate::error::Abort::unattributed(
                        AbortReason::InvalidOutput,
                    ))
                };
                hex::decode_to_slice(&x, r_out).map_err(|_| bad())?;
                hex::decode_to_slice(&s_hex, s_out).map_err(|_| bad())?;
                self.outcome = Some(Ok(Signature {
                    scheme: Scheme::EcdsaSecp256k1,
                    public_key: point_bytes(&self.party.pk),
                    bytes,
                    recovery_id: Some(recovery_id),
                }));
                self.finished = true;
                return Ok(false);
            }
            State::Done => return Ok(false),
        }
        Ok(true)
    }
}

crate::session::explicit_session!(DklsSign, Signature);
