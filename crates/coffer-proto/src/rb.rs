//! Adapter from the `round-based` state machines (the form in which the CGGMP crates offer
//! their protocols without I/O) to our [`Session`] trait: it maps protocol-local party
//! positions to keygen party indices, encodes and decodes payloads, applies the [`Inbox`]
//! checks, and turns library failures into typed aborts.

use std::collections::VecDeque;

use round_based::state_machine::{ProceedResult, StateMachine};
use round_based::{Incoming, MessageDestination, MessageType, ProtocolMessage};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Abort, AbortReason, Bug, RejectedMessage, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::session::{Inbox, Session};

/// A boxed `round-based` state machine whose output is already mapped to our errors.
pub(crate) type Machine<M, T> = Box<dyn StateMachine<Output = Result<T, SessionError>, Msg = M>>;

/// A [`Session`] over one `round-based` protocol.
pub(crate) struct RbSession<M, T> {
    inbox: Inbox,
    me: PartyIndex,
    session: SessionId,
    /// `roster[k]` is the keygen index of the protocol's `k`-th participant.
    roster: Vec<PartyIndex>,
    /// Added to the protocol's own round numbers, so that sub-protocols run side by side
    /// in one session use disjoint rounds.
    round_offset: u16,
    machine: Machine<M, T>,
    awaiting: bool,
    pending: VecDeque<Incoming<M>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<T, SessionError>>,
    finished: bool,
    next_id: u64,
}

impl<M, T> RbSession<M, T>
where
    M: ProtocolMessage + Serialize + DeserializeOwned + 'static,
{
    /// Wraps `machine`, run by `me` among `roster` (protocol order).
    pub(crate) fn new(
        session: SessionId,
        me: PartyIndex,
        roster: Vec<PartyIndex>,
        round_offset: u16,
        machine: Machine<M, T>,
    ) -> Self {
        let mut participants = roster.clone();
        participants.sort();
        let mut s = Self {
            inbox: Inbox::new(session, me, participants),
            me,
            session,
            roster,
            round_offset,
            machine,
            awaiting: false,
            pending: VecDeque::new(),
            outgoing: Vec::new(),
            outcome: None,
            finished: false,
            next_id: 0,
        };
        s.pump();
        s
    }

    fn finish(&mut self, result: Result<T, SessionError>) {
        if !self.finished {
            self.finished = true;
            self.outcome = Some(result);
        }
    }

    fn position(&self, party: PartyIndex) -> Option<u16> {
        self.roster
            .iter()
            .position(|p| *p == party)
            .and_then(|k| u16::try_from(k).ok())
    }

    fn pump(&mut self) {
        while !self.finished {
            if self.awaiting {
                let Some(m) = self.pending.pop_front() else {
                    return;
                };
                self.awaiting = false;
                if self.machine.received_msg(m).is_err() {
                    self.finish(Err(Bug("state machine refused a requested message").into()));
                    return;
                }
            }
            match self.machine.proceed() {
                ProceedResult::SendMsg(out) => {
                    let recipient = match out.recipient {
                        MessageDestination::AllParties => None,
                        MessageDestination::OneParty(k) => match self.roster.get(usize::from(k)) {
                            Some(p) => Some(*p),
                            None => {
                                self.finish(Err(Bug("protocol addressed an unknown party").into()));
                                return;
                            }
                        },
                    };
                    let round = out.msg.round().saturating_add(self.round_offset);
                    match encode_payload(&out.msg) {
                        Ok(payload) => self.outgoing.push(Message {
                            session: self.session,
                            sender: self.me,
                            recipient,
                            round,
                            payload,
                        }),
                        Err(bug) => self.finish(Err(bug.into())),
                    }
                }
                ProceedResult::NeedsOneMoreMessage => self.awaiting = true,
                ProceedResult::Output(result) => self.finish(result),
                ProceedResult::Yielded => {}
                ProceedResult::Error(_) => {
                    self.finish(Err(Bug("protocol state machine failed").into()));
                }
            }
        }
    }
}

impl<M, T> Session for RbSession<M, T>
where
    M: ProtocolMessage + Serialize + DeserializeOwned + 'static,
{
    type Output = T;

    fn session_id(&self) -> SessionId {
        self.session
    }

    fn party(&self) -> PartyIndex {
        self.me
    }

    fn handle(&mut self, m: Message) -> Result<(), SessionError> {
        if self.finished {
            return Err(RejectedMessage::Finished.into());
        }
        if let Err(e) = self.inbox.admit(&m) {
            if let SessionError::Aborted(a) = &e {
                self.finish(Err(a.clone().into()));
            }
            return Err(e);
        }
        let sender = m.sender;
        let malformed = || Abort::blaming(sender, AbortReason::MalformedMessage { round: m.round });
        let decoded: M = match decode_payload(&m.payload) {
            Ok(d) => d,
            Err(_) => {
                let e: SessionError = malformed().into();
                self.finish(Err(e.clone()));
                return Err(e);
            }
        };
        if decoded.round().checked_add(self.round_offset) != Some(m.round) {
            let e: SessionError = malformed().into();
            self.finish(Err(e.clone()));
            return Err(e);
        }
        let Some(position) = self.position(sender) else {
            return Err(RejectedMessage::UnknownSender { sender }.into());
        };
        self.pending.push_back(Incoming {
            id: self.next_id,
            sender: position,
            msg_type: if m.recipient.is_some() {
                MessageType::P2P
            } else {
                MessageType::Broadcast
            },
            msg: decoded,
        });
        self.next_id += 1;
        self.pump();
        match &self.outcome {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn take_outgoing(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outgoing)
    }

    fn take_outcome(&mut self) -> Option<Result<T, SessionError>> {
        self.outcome.take()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Maps a library error to an abort. The CGGMP crates do not identify the culprit, so the
/// abort names nobody; the library's own description (and its causes) is kept.
pub(crate) fn library_abort(protocol: &'static str, e: &dyn std::error::Error) -> SessionError {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    Abort::unattributed(AbortReason::Library { protocol, detail }).into()
}
