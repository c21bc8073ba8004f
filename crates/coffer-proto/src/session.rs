//! The one sans-IO session API shared by every scheme and protocol: start a session, feed it
//! incoming [`Message`]s, collect the outgoing ones, read its outcome. Also the boundary
//! checks every session applies to incoming messages before the protocol sees them
//! ([`Inbox`]).

use std::collections::HashMap;

use sha2::Digest;

use crate::error::{Abort, AbortReason, RejectedMessage, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::Message;

/// A running protocol instance for one party.
///
/// Drive it by delivering every message addressed to this party with [`Session::handle`]
/// and sending whatever [`Session::take_outgoing`] yields, until [`Session::take_outcome`]
/// returns `Some`. `handle` returns `Err(SessionError::Rejected(_))` for a message that was
/// refused without harm (wrong session, wrong recipient, replay); any other error means the
/// session is over, and its outcome says why.
pub trait Session {
    /// What a successful run produces.
    type Output;

    /// The session's id.
    fn session_id(&self) -> SessionId;

    /// This party's index.
    fn party(&self) -> PartyIndex;

    /// Delivers one incoming message.
    fn handle(&mut self, message: Message) -> Result<(), SessionError>;

    /// Takes the messages this party has to send now.
    fn take_outgoing(&mut self) -> Vec<Message>;

    /// Takes the result once the run is over (then `None` forever after).
    fn take_outcome(&mut self) -> Option<Result<Self::Output, SessionError>>;

    /// Whether the run is over (its outcome may already have been taken).
    fn is_finished(&self) -> bool;
}

/// Implements [`Session`] for a hand-written state machine with the fields `session`, `me`,
/// `outgoing`, `outcome` and `finished` and a method `handle_inner`: a refused message
/// leaves the run going; any other error ends it, with that error as its outcome.
macro_rules! explicit_session {
    (@body $out:ty) => {
        type Output = $out;

        fn session_id(&self) -> $crate::ids::SessionId {
            self.session
        }

        fn party(&self) -> $crate::ids::PartyIndex {
            self.me
        }

        fn handle(
            &mut self,
            m: $crate::message::Message,
        ) -> Result<(), $crate::error::SessionError> {
            if self.finished {
                return Err($crate::error::RejectedMessage::Finished.into());
            }
            let r = self.handle_inner(m);
            if let Err(e) = &r {
                if !matches!(e, $crate::error::SessionError::Rejected(_)) {
                    self.finished = true;
                    self.outcome = Some(Err(e.clone()));
                }
            }
            r
        }

        fn take_outgoing(&mut self) -> Vec<$crate::message::Message> {
            std::mem::take(&mut self.outgoing)
        }

        fn take_outcome(&mut self) -> Option<Result<$out, $crate::error::SessionError>> {
            self.outcome.take()
        }

        fn is_finished(&self) -> bool {
            self.finished
        }
    };
    ($ty:ident<$p:ident: $bound:path>, $out:ty) => {
        impl<$p: $bound> $crate::session::Session for $ty<$p> {
            $crate::session::explicit_session!(@body $out);
        }
    };
    ($ty:ident, $out:ty) => {
        impl $crate::session::Session for $ty {
            $crate::session::explicit_session!(@body $out);
        }
    };
}
pub(crate) use explicit_session;

/// A boxed session, as held by drivers that run sessions of different protocols.
pub type BoxedSession<O> = Box<dyn Session<Output = O>>;

/// Boundary checks for incoming messages: right session, a known sender other than
/// ourselves, addressed to us (or broadcast), and no second message from a sender for the
/// same round and kind. An exact duplicate is refused as a replay; a different message for
/// the same slot is equivocation and aborts the run, blaming the sender.
#[derive(Debug, Clone)]
pub struct Inbox {
    session: SessionId,
    me: PartyIndex,
    participants: Vec<PartyIndex>,
    seen: HashMap<(PartyIndex, u16, bool), [u8; 32]>,
}

impl Inbox {
    /// An inbox for `me` in a session among `participants` (which includes `me`).
    pub fn new(session: SessionId, me: PartyIndex, participants: Vec<PartyIndex>) -> Self {
        Self {
            session,
            me,
            participants,
            seen: HashMap::new(),
        }
    }

    /// The session's participants, in index order.
    pub fn participants(&self) -> &[PartyIndex] {
        &self.participants
    }

    /// Applies the boundary checks to `m`.
    pub fn admit(&mut self, m: &Message) -> Result<(), SessionError> {
        if m.session != self.session {
            return Err(RejectedMessage::WrongSession {
                expected: self.session,
                got: m.session,
            }
            .into());
        }
        if m.sender == self.me {
            return Err(RejectedMessage::FromSelf.into());
        }
        if !self.participants.contains(&m.sender) {
            return Err(RejectedMessage::UnknownSender { sender: m.sender }.into());
        }
        if let Some(r) = m.recipient {
            if r != self.me {
                return Err(RejectedMessage::WrongRecipient {
                    me: self.me,
                    recipient: r,
                }
                .into());
            }
        }
        let digest: [u8; 32] = sha2::Sha256::digest(&m.payload).into();
        let slot = (m.sender, m.round, m.recipient.is_some());
        match self.seen.get(&slot) {
            Some(d) if *d == digest => Err(RejectedMessage::Replay {
                sender: m.sender,
                round: m.round,
            }
            .into()),
            Some(_) => Err(Abort::blaming(
                m.sender,
                AbortReason::ConflictingMessages { round: m.round },
            )
            .into()),
            None => {
                self.seen.insert(slot, digest);
                Ok(())
            }
        }
    }
}

/// What a (possibly malicious) network does with one message on its way to one recipient:
/// returns what that recipient receives instead (nothing, the message, or several).
/// Honest delivery is `|m, _| vec![m]`.
pub trait Tamper: FnMut(Message, PartyIndex) -> Vec<Message> {}
impl<F: FnMut(Message, PartyIndex) -> Vec<Message>> Tamper for F {}

/// The recipients of `m` among `parties`.
fn recipients(m: &Message, parties: &[PartyIndex]) -> Vec<PartyIndex> {
    parties
        .iter()
        .copied()
        .filter(|p| match m.recipient {
            Some(r) => r == *p,
            None => m.sender != *p,
        })
        .collect()
}

/// The echo check of a broadcast round: every peer reports, in its next message, a digest
/// of each party's broadcast as it received it. `order[k]` is the party whose broadcast the
/// `k`-th digest covers. An echo of the wrong length is the reporter's fault; a digest that
/// differs from ours means that party sent different broadcasts to different peers.
pub(crate) fn check_echoes<'a>(
    mine: &[[u8; 32]],
    order: &[PartyIndex],
    echoes: impl IntoIterator<Item = (PartyIndex, &'a [[u8; 32]])>,
    broadcast_round: u16,
    echo_round: u16,
) -> Result<(), SessionError> {
    for (from, echo) in echoes {
        if echo.len() != mine.len() {
            return Err(
                Abort::blaming(from, AbortReason::MalformedMessage { round: echo_round }).into(),
            );
        }
        for ((theirs, ours), dealer) in echo.iter().zip(mine).zip(order) {
            if theirs != ours {
                return Err(Abort::blaming(
                    *dealer,
                    AbortReason::Equivocation {
                        round: broadcast_round,
                        reported_by: from,
                    },
                )
                .into());
            }
        }
    }
    Ok(())
}

/// Runs sessions of all parties in one process, routing every message to its recipients,
/// until all have finished. Used by tests and benchmarks that need the sessions themselves.
///
/// `tamper` sees every message on its way to each recipient (see [`Tamper`]); malicious-party
/// tests use it. Messages a session refuses are dropped, as a network node would.
pub fn run_local<O>(
    sessions: &mut [BoxedSession<O>],
    mut tamper: impl Tamper,
) -> Vec<Result<O, SessionError>> {
    let parties: Vec<PartyIndex> = sessions.iter().map(|s| s.party()).collect();
    let mut queue: std::collections::VecDeque<(PartyIndex, Message)> =
        std::collections::VecDeque::new();
    let mut outcomes: Vec<Option<Result<O, SessionError>>> =
        sessions.iter().map(|_| None).collect();
    loop {
        for s in sessions.iter_mut() {
            for m in s.take_outgoing() {
                for to in recipients(&m, &parties) {
                    queue.extend(tamper(m.clone(), to).into_iter().map(|m| (to, m)));
                }
            }
        }
        for (slot, s) in outcomes.iter_mut().zip(sessions.iter_mut()) {
            if slot.is_none() {
                *slot = s.take_outcome();
            }
        }
        let Some((to, m)) = queue.pop_front() else {
            break;
        };
        if let Some(s) = sessions.iter_mut().find(|s| s.party() == to) {
            if !s.is_finished() {
                // A refused message is dropped; an abort is read from the outcome.
                let _ = s.handle(m);
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Err(crate::error::Bug(
                "session stalled: no message left to deliver",
            )
            .into()))
        })
        .collect()
}

/// Builds one party's session inside the thread that runs it (protocol state machines are
/// not `Send`, so they are born where they live).
pub type SessionFactory<O> = Box<dyn FnOnce() -> Result<BoxedSession<O>, SessionError> + Send>;

enum Event<O> {
    Out(Message),
    Processed,
    Done(usize, Result<O, SessionError>),
    /// A party's thread panicked (a bug): the run ends for everyone.
    Panicked(usize),
}

/// Like [`run_local`], but each party runs on its own thread, so a group uses every core
/// (CGGMP's per-party proofs dominate key generation). Stops when every party has finished,
/// or when no message is in flight and nobody can make progress (those parties report a
/// stall).
pub fn run_threaded<O: Send + 'static>(
    factories: Vec<(PartyIndex, SessionFactory<O>)>,
    mut tamper: impl Tamper,
) -> Vec<Result<O, SessionError>> {
    use std::sync::mpsc;
    let n = factories.len();
    let (events_tx, events) = mpsc::channel::<Event<O>>();
    let mut inboxes = Vec::with_capacity(n);
    let mut parties = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for (k, (party, factory)) in factories.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Message>();
        inboxes.push(Some(tx));
        parties.push(party);
        let events = events_tx.clone();
        let on_panic = events_tx.clone();
        handles.push(std::thread::spawn(move || {
            let body = std::panic::AssertUnwindSafe(move || party_thread(k, factory, rx, events));
            if std::panic::catch_unwind(body).is_err() {
                let _ = on_panic.send(Event::Panicked(k));
            }
        }));
    }
    drop(events_tx);
    let mut outcomes: Vec<Option<Result<O, SessionError>>> = (0..n).map(|_| None).collect();
    // Each thread owes one `Processed` for its start, and one per delivered message.
    let mut owed = n;
    while let Ok(event) = events.recv() {
        match event {
            Event::Out(m) => {
                for to in recipients(&m, &parties) {
                    let Some(k) = parties.iter().position(|p| *p == to) else {
                        continue;
                    };
                    for m in tamper(m.clone(), to) {
                        if outcomes[k].is_some() {
                            continue;
                        }
                        if let Some(tx) = &inboxes[k] {
                            if tx.send(m).is_ok() {
                                owed += 1;
                            }
                        }
                    }
                }
            }
            Event::Processed => owed = owed.saturating_sub(1),
            Event::Done(k, outcome) => {
                outcomes[k] = Some(outcome);
                inboxes[k] = None;
            }
            Event::Panicked(k) => {
                outcomes[k] = Some(Err(crate::error::Bug("a party's session panicked").into()));
                owed = 0;
            }
        }
        if owed == 0 || outcomes.iter().all(Option::is_some) {
            // Quiescent: nobody can make progress. Close every inbox so the threads end.
            for tx in inboxes.iter_mut() {
                *tx = None;
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Err(crate::error::Bug(
                "party thread ended without an outcome",
            )
            .into()))
        })
        .collect()
}

/// One party's thread in [`run_threaded`]: builds the session, then handles every message
/// it is sent until its inbox closes.
fn party_thread<O>(
    k: usize,
    factory: SessionFactory<O>,
    rx: std::sync::mpsc::Receiver<Message>,
    events: std::sync::mpsc::Sender<Event<O>>,
) {
    let mut session = match factory() {
        Ok(s) => s,
        Err(e) => {
            let _ = events.send(Event::Done(k, Err(e)));
            let _ = events.send(Event::Processed);
            return;
        }
    };
    let mut done = false;
    let flush = |s: &mut BoxedSession<O>, done: &mut bool| {
        for m in s.take_outgoing() {
            let _ = events.send(Event::Out(m));
        }
        if !*done {
            if let Some(outcome) = s.take_outcome() {
                *done = true;
                let _ = events.send(Event::Done(k, outcome));
            }
        }
        let _ = events.send(Event::Processed);
    };
    flush(&mut session, &mut done);
    while let Ok(m) = rx.recv() {
        if !session.is_finished() {
            let _ = session.handle(m);
        }
        flush(&mut session, &mut done);
    }
    if !done {
        let _ = events.send(Event::Done(
            k,
            Err(crate::error::Bug("session stalled: no message left to deliver").into()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(sender: u16, recipient: Option<u16>, round: u16, payload: &[u8]) -> Message {
        Message {
            session: SessionId::from_bytes([7; 32]),
            sender: PartyIndex::unchecked(sender),
            recipient: recipient.map(PartyIndex::unchecked),
            round,
            payload: payload.to_vec(),
        }
    }

    fn inbox() -> Inbox {
        Inbox::new(
            SessionId::from_bytes([7; 32]),
            PartyIndex::unchecked(0),
            vec![
                PartyIndex::unchecked(0),
                PartyIndex::unchecked(1),
                PartyIndex::unchecked(2),
            ],
        )
    }

    #[test]
    fn inbox_refuses_misrouted_messages_without_aborting() {
        let mut i = inbox();
        let mut other = msg(1, None, 1, b"x");
        other.session = SessionId::from_bytes([8; 32]);
        assert!(matches!(
            i.admit(&other),
            Err(SessionError::Rejected(RejectedMessage::WrongSession { .. }))
        ));
        assert!(matches!(
            i.admit(&msg(0, None, 1, b"x")),
            Err(SessionError::Rejected(RejectedMessage::FromSelf))
        ));
        assert!(matches!(
            i.admit(&msg(5, None, 1, b"x")),
            Err(SessionError::Rejected(
                RejectedMessage::UnknownSender { .. }
            ))
        ));
        assert!(matches!(
            i.admit(&msg(1, Some(2), 1, b"x")),
            Err(SessionError::Rejected(
                RejectedMessage::WrongRecipient { .. }
            ))
        ));
        assert!(i.admit(&msg(1, Some(0), 1, b"x")).is_ok());
    }

    #[test]
    fn inbox_refuses_replays_and_blames_equivocation() {
        let mut i = inbox();
        assert!(i.admit(&msg(1, None, 1, b"x")).is_ok());
        assert!(matches!(
            i.admit(&msg(1, None, 1, b"x")),
            Err(SessionError::Rejected(RejectedMessage::Replay { .. }))
        ));
        let e = i.admit(&msg(1, None, 1, b"y")).unwrap_err();
        assert_eq!(e.culprits(), &[PartyIndex::unchecked(1)]);
        // Same round but point-to-point is a different slot.
        assert!(i.admit(&msg(1, Some(0), 1, b"y")).is_ok());
    }

    /// A session that sends one broadcast and then waits forever for a reply.
    struct Waiter {
        me: PartyIndex,
        sent: bool,
        panic_on_message: bool,
    }

    impl Session for Waiter {
        type Output = ();
        fn session_id(&self) -> SessionId {
            SessionId::from_bytes([7; 32])
        }
        fn party(&self) -> PartyIndex {
            self.me
        }
        fn handle(&mut self, _: Message) -> Result<(), SessionError> {
            if self.panic_on_message {
                panic!("a bug in a session");
            }
            Ok(())
        }
        fn take_outgoing(&mut self) -> Vec<Message> {
            if std::mem::replace(&mut self.sent, true) {
                Vec::new()
            } else {
                vec![msg(self.me.get(), None, 1, b"hello")]
            }
        }
        fn take_outcome(&mut self) -> Option<Result<(), SessionError>> {
            None
        }
        fn is_finished(&self) -> bool {
            false
        }
    }

    fn waiters(panic_on_message: bool) -> Vec<(PartyIndex, SessionFactory<()>)> {
        (0..3u16)
            .map(|i| {
                let f: SessionFactory<()> = Box::new(move || {
                    Ok(Box::new(Waiter {
                        me: PartyIndex::unchecked(i),
                        sent: false,
                        panic_on_message: panic_on_message && i == 1,
                    }) as BoxedSession<()>)
                });
                (PartyIndex::unchecked(i), f)
            })
            .collect()
    }

    #[test]
    fn threaded_runs_end_with_a_stall_error_instead_of_hanging() {
        let results = run_threaded(waiters(false), |m, _| vec![m]);
        assert_eq!(results.len(), 3);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(SessionError::Bug(_)))));
    }

    #[test]
    fn a_panicking_party_ends_the_threaded_run_for_everyone() {
        let results = run_threaded(waiters(true), |m, _| vec![m]);
        assert!(results.iter().all(Result::is_err));
    }
}
