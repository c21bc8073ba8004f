//! FROST signing split at the nonces, so that a signer group can pool round one: a
//! *precommit* session (one round) makes every signer's nonces and exchanges the commitments;
//! later, *online* signing (one round) spends the stored nonces on a message at any
//! derivation path. The nonces are secret and must sign once only: the caller stores the
//! [`NonceRecord`] sealed and removes it durably before starting the online session, which
//! consumes it. In the online round every signer echoes digests of the commitments it
//! stored, so a signer that sent different commitments to different peers is named.

use std::collections::BTreeMap;

use frost_core::round1::{SigningCommitments, SigningNonces};
use frost_core::Identifier;
use serde::{Deserialize, Serialize};

use crate::error::{Abort, AbortReason, ArgumentError, Bug, SessionError};
use crate::frost::{digest_of, frost_abort, identifier, FrostShare, FrostSuite};
use crate::ids::{signing_set_among, PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::path::DerivationPath;
use crate::session::{check_echoes, Inbox};

const ROUND: u16 = 1;

/// One signer's pooled round one: its secret nonces and every signer's commitments.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct NonceRecord<C: FrostSuite> {
    nonces: SigningNonces<C>,
    commitments: BTreeMap<Identifier<C>, SigningCommitments<C>>,
    signers: Vec<PartyIndex>,
}

impl<C: FrostSuite> NonceRecord<C> {
    /// The signers that must sign together with these nonces.
    pub fn signers(&self) -> &[PartyIndex] {
        &self.signers
    }
}

impl<C: FrostSuite> core::fmt::Debug for NonceRecord<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NonceRecord")
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Commit<C: FrostSuite> {
    session: [u8; 32],
    commitments: SigningCommitments<C>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Share<C: FrostSuite> {
    session: [u8; 32],
    share: frost_core::round2::SignatureShare<C>,
    echo: Vec<[u8; 32]>,
}

fn ids_of<C: FrostSuite>(set: &[PartyIndex]) -> Result<BTreeMap<Identifier<C>, PartyIndex>, Bug> {
    set.iter().map(|p| Ok((identifier::<C>(*p)?, *p))).collect()
}

fn malformed(from: PartyIndex, round: u16) -> SessionError {
    Abort::blaming(from, AbortReason::MalformedMessage { round }).into()
}

/// The precommit session: outputs this signer's [`NonceRecord`].
pub struct Precommit<C: FrostSuite> {
    session: SessionId,
    me: PartyIndex,
    inbox: Inbox,
    signers: Vec<PartyIndex>,
    nonces: Option<SigningNonces<C>>,
    commitments: BTreeMap<Identifier<C>, SigningCommitments<C>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<NonceRecord<C>, SessionError>>,
    finished: bool,
}

impl<C: FrostSuite> Precommit<C> {
    /// Starts round one for the signer set `signers` (the first `t` of them, by index).
    pub fn start(
        share: &FrostShare<C>,
        session: SessionId,
        signers: &[PartyIndex],
    ) -> Result<Self, SessionError> {
        let set = signing_set_among(share.params.t(), &share.members(), signers)?;
        if !set.contains(&share.index) {
            return Err(ArgumentError::NotAParticipant { party: share.index }.into());
        }
        let (nonces, commitments) =
            frost_core::round1::commit(share.key_package.signing_share(), &mut rand_core::OsRng);
        let payload = encode_payload(&Commit::<C> {
            session: *session.as_bytes(),
            commitments,
        })?;
        let mut own = BTreeMap::new();
        own.insert(identifier::<C>(share.index)?, commitments);
        Ok(Precommit {
            session,
            me: share.index,
            inbox: Inbox::new(session, share.index, set.clone()),
            signers: set,
            nonces: Some(nonces),
            commitments: own,
            outgoing: vec![Message {
                session,
                sender: share.index,
                recipient: None,
                round: ROUND,
                payload,
            }],
            outcome: None,
            finished: false,
        })
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        if m.round != ROUND || m.recipient.is_some() {
            return Err(malformed(from, m.round));
        }
        let msg: Commit<C> = decode_payload(&m.payload).map_err(|_| malformed(from, m.round))?;
        if msg.session != *self.session.as_bytes() {
            return Err(malformed(from, m.round));
        }
        self.commitments
            .insert(identifier::<C>(from)?, msg.commitments);
        if self.commitments.len() == self.signers.len() {
            let nonces = self.nonces.take().ok_or(Bug("nonces already taken"))?;
            self.finished = true;
            self.outcome = Some(Ok(NonceRecord {
                nonces,
                commitments: std::mem::take(&mut self.commitments),
                signers: self.signers.clone(),
            }));
        }
        Ok(())
    }
}

/// A signature share with the sender's echo of the commitments it stored.
type EchoedShare<C> = (frost_core::round2::SignatureShare<C>, Vec<[u8; 32]>);

/// The online session: spends a [`NonceRecord`] on one message; outputs the signature bytes.
pub struct OnlineSign<C: FrostSuite> {
    session: SessionId,
    me: PartyIndex,
    inbox: Inbox,
    signers: Vec<PartyIndex>,
    ids: BTreeMap<Identifier<C>, PartyIndex>,
    package: frost_core::SigningPackage<C>,
    public_key_package: frost_core::keys::PublicKeyPackage<C>,
    mine: Vec<[u8; 32]>,
    shares: BTreeMap<Identifier<C>, EchoedShare<C>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<Vec<u8>, SessionError>>,
    finished: bool,
}

impl<C: FrostSuite> OnlineSign<C> {
    /// Spends `record` on `message` under the child key at `path`.
    pub fn start(
        share: &FrostShare<C>,
        session: SessionId,
        record: NonceRecord<C>,
        message: &[u8],
        path: &DerivationPath,
    ) -> Result<Self, SessionError> {
        if !record.signers.contains(&share.index) {
            return Err(ArgumentError::NotAParticipant { party: share.index }.into());
        }
        let ids = ids_of::<C>(&record.signers)?;
        if record.commitments.len() != ids.len()
            || ids.keys().any(|id| !record.commitments.contains_key(id))
        {
            return Err(Bug("nonce record does not cover its signer set").into());
        }
        let (key_package, public_key_package) = crate::frost_hd::derive(share, path)?;
        let mine: Vec<[u8; 32]> = record
            .commitments
            .values()
            .map(digest_of)
            .collect::<Result<_, _>>()?;
        let package = frost_core::SigningPackage::new(record.commitments.clone(), message);
        let signature_share = frost_core::round2::sign(&package, &record.nonces, &key_package)
            .map_err(|e| frost_abort(&ids, &e, AbortReason::InvalidOutput))?;
        drop(record);
        let payload = encode_payload(&Share::<C> {
            session: *session.as_bytes(),
            share: signature_share,
            echo: mine.clone(),
        })?;
        let mut shares = BTreeMap::new();
        shares.insert(
            identifier::<C>(share.index)?,
            (signature_share, mine.clone()),
        );
        let signers: Vec<PartyIndex> = ids.values().copied().collect();
        let mut s = OnlineSign {
            session,
            me: share.index,
            inbox: Inbox::new(session, share.index, signers.clone()),
            signers,
            ids,
            package,
            public_key_package,
            mine,
            shares,
            outgoing: vec![Message {
                session,
                sender: share.index,
                recipient: None,
                round: ROUND,
                payload,
            }],
            outcome: None,
            finished: false,
        };
        s.try_finish()?;
        Ok(s)
    }

    fn try_finish(&mut self) -> Result<(), SessionError> {
        if self.shares.len() < self.signers.len() {
            return Ok(());
        }
        let mut echoes = Vec::with_capacity(self.shares.len());
        for (id, (_, echo)) in &self.shares {
            echoes.push((
                *self.ids.get(id).ok_or(Bug("unknown signer id"))?,
                echo.as_slice(),
            ));
        }
        // Position k of an echo covers the k-th signer's commitments (identifier order).
        check_echoes(&self.mine, &self.signers, echoes, ROUND, ROUND)?;
        let shares: BTreeMap<_, _> = self.shares.iter().map(|(id, (s, _))| (*id, *s)).collect();
        let signature = frost_core::aggregate(&self.package, &shares, &self.public_key_package)
            .map_err(|e| frost_abort(&self.ids, &e, AbortReason::InvalidSignatureShare))?;
        let bytes = signature
            .serialize()
            .map_err(|_| Bug("signature does not serialize"))?;
        self.finished = true;
        self.outcome = Some(Ok(bytes));
        Ok(())
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        if m.round != ROUND || m.recipient.is_some() {
            return Err(malformed(from, m.round));
        }
        let msg: Share<C> = decode_payload(&m.payload).map_err(|_| malformed(from, m.round))?;
        if msg.session != *self.session.as_bytes() {
            return Err(malformed(from, m.round));
        }
        self.shares
            .insert(identifier::<C>(from)?, (msg.share, msg.echo));
        self.try_finish()
    }
}

crate::session::explicit_session!(Precommit<C: FrostSuite>, NonceRecord<C>);
crate::session::explicit_session!(OnlineSign<C: FrostSuite>, Vec<u8>);
