//! Online ECDSA signing from a presignature: one round. Each signer of the presignature
//! spends its own presignature on the message (hashing the preimage itself), broadcasts its
//! partial signature, and combines everyone's partials into the signature, which must pass
//! the independent verifier. A partial that fails its commitment check aborts the run and
//! names its sender; a presignature is consumed by starting the session, so it signs once.

use serde::{Deserialize, Serialize};

use crate::ecdsa::{EcdsaPresignature, PartialSignature, Preimage, PresignaturePublic};
use crate::error::{Abort, AbortReason, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::protocol::Signature;
use crate::scheme::Scheme;
use crate::session::{BoxedSession, Inbox};

const ROUND: u16 = 1;

#[derive(Serialize, Deserialize)]
struct Partial {
    session: [u8; 32],
    partial: PartialSignature,
}

/// The one-round session.
pub struct PresignedSign {
    session: SessionId,
    me: PartyIndex,
    inbox: Inbox,
    public: PresignaturePublic,
    preimage: Preimage,
    digest: [u8; 32],
    partials: Vec<PartialSignature>,
    outgoing: Vec<Message>,
    outcome: Option<Result<Signature, SessionError>>,
    finished: bool,
}

/// Starts online signing of SHA-256(`preimage`) as party `me`, spending `presignature`.
pub fn start(
    session: SessionId,
    me: PartyIndex,
    presignature: EcdsaPresignature,
    preimage: Vec<u8>,
) -> Result<BoxedSession<Signature>, SessionError> {
    let public = presignature.public_data();
    if !public.signers().contains(&me) {
        return Err(crate::error::ArgumentError::NotAParticipant { party: me }.into());
    }
    let digest: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&preimage).into()
    };
    let preimage = Preimage::Sha256(preimage);
    let mine = presignature.issue(me, &preimage);
    let payload = encode_payload(&Partial {
        session: *session.as_bytes(),
        partial: mine,
    })?;
    let mut s = PresignedSign {
        session,
        me,
        inbox: Inbox::new(session, me, public.signers().to_vec()),
        public,
        preimage,
        digest,
        partials: vec![mine],
        outgoing: vec![Message {
            session,
            sender: me,
            recipient: None,
            round: ROUND,
            payload,
        }],
        outcome: None,
        finished: false,
    };
    s.try_finish();
    Ok(Box::new(s))
}

impl PresignedSign {
    fn try_finish(&mut self) {
        if self.partials.len() < self.public.signers().len() || self.finished {
            return;
        }
        self.finished = true;
        let result = self
            .public
            .combine(&self.partials, &self.preimage)
            .and_then(|sig| {
                match crate::verify::verify(
                    Scheme::EcdsaSecp256k1,
                    self.public.public_key(),
                    &self.digest,
                    &sig.rs,
                ) {
                    Ok(true) => Ok(Signature {
                        scheme: Scheme::EcdsaSecp256k1,
                        public_key: self.public.public_key().to_vec(),
                        bytes: sig.rs,
                        recovery_id: Some(sig.recovery_id),
                    }),
                    _ => Err(Abort::unattributed(AbortReason::InvalidOutput).into()),
                }
            });
        self.outcome = Some(result);
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        let malformed = || {
            SessionError::from(Abort::blaming(
                from,
                AbortReason::MalformedMessage { round: m.round },
            ))
        };
        if m.round != ROUND || m.recipient.is_some() {
            return Err(malformed());
        }
        let msg: Partial = decode_payload(&m.payload).map_err(|_| malformed())?;
        if msg.session != *self.session.as_bytes() || msg.partial.party != from {
            return Err(malformed());
        }
        self.partials.push(msg.partial);
        self.try_finish();
        Ok(())
    }
}

crate::session::explicit_session!(PresignedSign, Signature);
