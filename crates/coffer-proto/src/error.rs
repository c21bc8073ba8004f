//! Error types, split by whose fault a failure is: the caller's arguments
//! ([`ArgumentError`]), a message the session refused but survived ([`RejectedMessage`]), a
//! protocol run that aborted because a peer misbehaved ([`Abort`], naming culprits where the
//! protocol can), and our own bugs ([`Bug`]). No variant ever carries secret material.

use core::fmt;

use crate::ids::{PartyIndex, SessionId};

/// The caller asked for something impossible; nothing was run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// `t < 2`: a 1-of-n "threshold" key is a single point of failure.
    #[error("threshold {threshold} is below the minimum of 2")]
    ThresholdTooSmall {
        /// The threshold asked for.
        threshold: u16,
    },
    /// `t > n`.
    #[error("threshold {threshold} exceeds the number of parties {parties}")]
    ThresholdAboveParties {
        /// The threshold asked for.
        threshold: u16,
        /// The group size asked for.
        parties: u16,
    },
    /// `n` above [`crate::ids::MAX_PARTIES`].
    #[error("{parties} parties exceed the maximum of {max}")]
    TooManyParties {
        /// The group size asked for.
        parties: u16,
        /// The supported maximum.
        max: u16,
    },
    /// A party index at or above `n`.
    #[error("party index {index} is out of range for {parties} parties")]
    PartyIndexOutOfRange {
        /// The index given.
        index: u16,
        /// The group size.
        parties: u16,
    },
    /// The same party twice in a signing set.
    #[error("{party} appears twice")]
    DuplicateParty {
        /// The repeated party.
        party: PartyIndex,
    },
    /// Fewer than `t` signers.
    #[error("{given} signers given, the threshold is {threshold}")]
    TooFewSigners {
        /// Signers given.
        given: usize,
        /// The key's threshold.
        threshold: u16,
    },
    /// The session's own party is not in the set it was asked to run with.
    #[error("{party} is not among the parties of this session")]
    NotAParticipant {
        /// This party.
        party: PartyIndex,
    },
    /// The epoch counter cannot grow further.
    #[error("the share epoch cannot be increased further")]
    EpochExhausted,
    /// A message to sign has the wrong length for the scheme.
    #[error("{scheme} signs a {expected}-byte message, got {actual} bytes")]
    MessageLength {
        /// The scheme.
        scheme: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// A derivation path that cannot be parsed or used.
    #[error("invalid derivation path: {reason}")]
    InvalidPath {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Shares given to one operation do not belong together.
    #[error("shares do not match: {reason}")]
    MismatchedShares {
        /// What differs.
        reason: &'static str,
    },
    /// A share that belongs to a different scheme than the operation.
    #[error("this operation needs a {expected} share, got {actual}")]
    WrongScheme {
        /// Scheme the operation needs.
        expected: &'static str,
        /// Scheme of the share.
        actual: &'static str,
    },
    /// The pool of safe primes for Paillier keys is empty or invalid.
    #[error("safe primes unavailable: {reason}")]
    Primes {
        /// Why.
        reason: &'static str,
    },
}

/// Why a session refused one incoming message. The session itself goes on: a relay that
/// misroutes or replays a message cannot kill a run this way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectedMessage {
    /// The message belongs to another session.
    #[error("message for session {got} delivered to session {expected}")]
    WrongSession {
        /// This session.
        expected: SessionId,
        /// The message's session.
        got: SessionId,
    },
    /// The claimed sender is not a participant of this session.
    #[error("sender {sender} is not a participant of this session")]
    UnknownSender {
        /// The claimed sender.
        sender: PartyIndex,
    },
    /// The message claims to come from this party itself.
    #[error("message claims to come from this party itself")]
    FromSelf,
    /// A point-to-point message addressed to another party.
    #[error("message addressed to {recipient} delivered to {me}")]
    WrongRecipient {
        /// This party.
        me: PartyIndex,
        /// The addressee.
        recipient: PartyIndex,
    },
    /// The exact same message was delivered before.
    #[error("duplicate of a message already received from {sender} in round {round}")]
    Replay {
        /// Sender of the duplicate.
        sender: PartyIndex,
        /// Its round.
        round: u16,
    },
    /// The session has already finished.
    #[error("the session has already finished")]
    Finished,
}

/// A protocol run that stopped because some party misbehaved (or the library refused to go
/// on). `culprits` names the parties to blame where the protocol allows it; it is empty when
/// the protocol cannot tell who cheated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", blame(culprits))]
pub struct Abort {
    /// The parties to blame, in index order; empty when unknown.
    pub culprits: Vec<PartyIndex>,
    /// What went wrong.
    pub reason: AbortReason,
}

fn blame(culprits: &[PartyIndex]) -> String {
    if culprits.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = culprits.iter().map(|c| c.to_string()).collect();
        format!(" (blamed: {})", names.join(", "))
    }
}

impl Abort {
    /// An abort that blames one party.
    pub fn blaming(culprit: PartyIndex, reason: AbortReason) -> Self {
        Self {
            culprits: vec![culprit],
            reason,
        }
    }

    /// An abort whose culprit the protocol cannot identify.
    pub fn unattributed(reason: AbortReason) -> Self {
        Self {
            culprits: Vec::new(),
            reason,
        }
    }
}

/// What made a protocol run abort.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbortReason {
    /// A message that does not decode as this protocol's message for its round.
    #[error("malformed message in round {round}")]
    MalformedMessage {
        /// The round it claimed.
        round: u16,
    },
    /// A second, different message from the same sender for the same round.
    #[error("two different messages from the same sender in round {round}")]
    ConflictingMessages {
        /// The round.
        round: u16,
    },
    /// A broadcast value that differs between recipients (reported by the echo check).
    #[error("broadcast in round {round} differs between recipients (reported by {reported_by})")]
    Equivocation {
        /// The round of the broadcast.
        round: u16,
        /// The party whose echo disagreed with ours.
        reported_by: PartyIndex,
    },
    /// A secret (sub-)share inconsistent with the sender's public commitments.
    #[error("a secret share does not match its dealer's commitments")]
    InvalidShare,
    /// A zero-knowledge proof or proof of knowledge that does not verify.
    #[error("a proof does not verify")]
    InvalidProof,
    /// A signature share that does not verify against the signer's public share.
    #[error("a signature share is invalid")]
    InvalidSignatureShare,
    /// The protocol finished but its result does not verify (a party cheated undetectably).
    #[error("the protocol produced an invalid result")]
    InvalidOutput,
    /// A DKLs23 party failed a consistency check that leaks reusable OT state: the culprits
    /// MUST be excluded from every later session on this key (the library's ban rule).
    #[error("DKLs23 ban: {detail}")]
    MustBan {
        /// The library's description (never secret material).
        detail: String,
    },
    /// The protocol library aborted; it does not say who is to blame.
    #[error("{protocol} aborted: {detail}")]
    Library {
        /// Which protocol.
        protocol: &'static str,
        /// The library's own description (never secret material).
        detail: String,
    },
}

/// An internal invariant broke: a bug in Coffer or in the driving code, never the peers' fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error: {0}")]
pub struct Bug(pub &'static str);

/// Everything a session can report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Bad arguments from the caller.
    #[error(transparent)]
    Argument(#[from] ArgumentError),
    /// One incoming message was refused; the session continues.
    #[error("message refused: {0}")]
    Rejected(#[from] RejectedMessage),
    /// The run aborted.
    #[error("protocol aborted: {0}")]
    Aborted(#[from] Abort),
    /// A bug.
    #[error(transparent)]
    Bug(#[from] Bug),
}

impl SessionError {
    /// The parties blamed by this error, if any.
    pub fn culprits(&self) -> &[PartyIndex] {
        match self {
            SessionError::Aborted(a) => &a.culprits,
            _ => &[],
        }
    }
}

/// Display helper listing the culprits; used in CLI messages.
pub struct Culprits<'a>(pub &'a [PartyIndex]);

impl fmt::Display for Culprits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&blame(self.0))
    }
}
