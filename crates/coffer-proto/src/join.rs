//! Runs two sessions of one party side by side as one session (for instance CGGMP key
//! generation and auxiliary-data generation, which do not depend on each other), routing
//! incoming messages by round number and combining both outputs at the end.

use crate::error::{RejectedMessage, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::Message;
use crate::session::Session;

type Combine<A, B, T> = Box<dyn FnOnce(A, B) -> Result<T, SessionError>>;

/// Two sessions as one: messages with `round >= split` go to `second`, the others to `first`.
pub(crate) struct Joined<A: Session, B: Session, T> {
    first: A,
    second: B,
    split: u16,
    out_first: Option<A::Output>,
    out_second: Option<B::Output>,
    combine: Option<Combine<A::Output, B::Output, T>>,
    outcome: Option<Result<T, SessionError>>,
    finished: bool,
}

impl<A: Session, B: Session, T> Joined<A, B, T> {
    pub(crate) fn new(
        first: A,
        second: B,
        split: u16,
        combine: Combine<A::Output, B::Output, T>,
    ) -> Self {
        let mut j = Self {
            first,
            second,
            split,
            out_first: None,
            out_second: None,
            combine: Some(combine),
            outcome: None,
            finished: false,
        };
        j.collect();
        j
    }

    fn collect(&mut self) {
        if self.finished {
            return;
        }
        match self.first.take_outcome() {
            Some(Ok(o)) => self.out_first = Some(o),
            Some(Err(e)) => return self.finish(Err(e)),
            None => {}
        }
        match self.second.take_outcome() {
            Some(Ok(o)) => self.out_second = Some(o),
            Some(Err(e)) => return self.finish(Err(e)),
            None => {}
        }
        if self.out_first.is_some() && self.out_second.is_some() {
            if let (Some(a), Some(b), Some(c)) = (
                self.out_first.take(),
                self.out_second.take(),
                self.combine.take(),
            ) {
                let r = c(a, b);
                self.finish(r);
            }
        }
    }

    fn finish(&mut self, r: Result<T, SessionError>) {
        self.finished = true;
        self.outcome = Some(r);
    }
}

impl<A: Session, B: Session, T> Session for Joined<A, B, T> {
    type Output = T;

    fn session_id(&self) -> SessionId {
        self.first.session_id()
    }

    fn party(&self) -> PartyIndex {
        self.first.party()
    }

    fn handle(&mut self, m: Message) -> Result<(), SessionError> {
        if self.finished {
            return Err(RejectedMessage::Finished.into());
        }
        let r = if m.round >= self.split {
            self.second.handle(m)
        } else {
            self.first.handle(m)
        };
        self.collect();
        r
    }

    fn take_outgoing(&mut self) -> Vec<Message> {
        let mut out = self.first.take_outgoing();
        out.extend(self.second.take_outgoing());
        out
    }

    fn take_outcome(&mut self) -> Option<Result<T, SessionError>> {
        self.outcome.take()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}
