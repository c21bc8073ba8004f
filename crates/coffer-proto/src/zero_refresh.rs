//! Threshold share refresh for keys in the `key-share` format (CGGMP): every party deals a
//! Feldman-verifiable sharing of zero, checks every sub-share it receives against its
//! dealer's commitments, and adds the sub-shares to its share. The public key stays the same;
//! every share changes, so shares from before and after a refresh no longer combine.
//!
//! This is one of Coffer's two sanctioned pieces of cryptographic glue. It is built only from
//! `generic-ec` group operations and `key-share` types, never reconstructs the key, and is
//! specified in `docs/refresh.md` (Herzberg, Jarecki, Krawczyk, Yung, "Proactive Secret
//! Sharing", CRYPTO 1995, with Feldman's VSS commitments). The Paillier side of a CGGMP key
//! is renewed separately by the library's own auxiliary-data protocol, run alongside.
//!
//! Rounds (our numbering): 1, broadcast: the dealer's commitments `C_1..C_{t-1}` to a random
//! polynomial `f` with `f(0) = 0`; 2, point-to-point: the sub-share `f(x_j)` for recipient
//! `j` and an echo of the round-1 commitments as this party received them. A sub-share that
//! fails the Feldman check blames its dealer; an echo that disagrees with ours blames the
//! dealer whose broadcast differed.

use std::collections::BTreeMap;

use generic_ec::{Curve, NonZero, Point, Scalar, SecretScalar};
use key_share::{DirtyCoreKeyShare, DirtyKeyInfo, Validate};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Abort, AbortReason, Bug, SessionError};
use crate::ids::{PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::session::{check_echoes, Inbox};

/// First round number used by this protocol inside a joined session.
pub(crate) const ROUND_COMMIT: u16 = 1;
/// Second round number.
pub(crate) const ROUND_SHARE: u16 = 2;

/// Round 1: the dealer's Feldman commitments to its zero polynomial, highest degree last.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct CommitMsg<E: Curve> {
    pub(crate) session: [u8; 32],
    pub(crate) commitments: Vec<Point<E>>,
}

/// Round 2: the recipient's sub-share and the echo of round 1.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct ShareMsg<E: Curve> {
    pub(crate) session: [u8; 32],
    pub(crate) sub_share: Scalar<E>,
    /// Digest of every dealer's commitments as the sender received them, by party index.
    pub(crate) echo: Vec<[u8; 32]>,
}

/// One party's refresh run.
pub(crate) struct ZeroRefresh<E: Curve> {
    inbox: Inbox,
    me: PartyIndex,
    session: SessionId,
    old: DirtyCoreKeyShare<E>,
    /// Evaluation points of all parties (the key's VSS setup).
    points: Vec<NonZero<Scalar<E>>>,
    t: u16,
    own_poly: Vec<Scalar<E>>,
    commitments: BTreeMap<PartyIndex, Vec<Point<E>>>,
    shares: BTreeMap<PartyIndex, ShareMsg<E>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<DirtyCoreKeyShare<E>, SessionError>>,
    finished: bool,
}

impl<E: Curve> Drop for ZeroRefresh<E> {
    fn drop(&mut self) {
        for c in &mut self.own_poly {
            zeroize::Zeroize::zeroize(c);
        }
    }
}

fn commitments_digest<E: Curve>(c: &[Point<E>]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(b"coffer/zero-refresh/commitments/v1");
    for p in c {
        h.update(p.to_bytes(true).as_ref());
    }
    h.finalize().into()
}

/// Evaluates `sum_{k=1}^{deg} coeffs[k-1] * x^k` (a polynomial with zero constant term).
fn eval_zero_poly<E: Curve>(coeffs: &[Scalar<E>], x: &Scalar<E>) -> Scalar<E> {
    let mut acc = Scalar::<E>::zero();
    for c in coeffs.iter().rev() {
        acc = (acc + c) * x;
    }
    acc
}

/// Evaluates the commitments at `x`: `sum_k C_k * x^k`, the public image of `f(x)`.
fn eval_commitments<E: Curve>(commitments: &[Point<E>], x: &Scalar<E>) -> Point<E> {
    let mut acc = Point::<E>::zero();
    for c in commitments.iter().rev() {
        acc = (acc + c) * x;
    }
    acc
}

impl<E: Curve> ZeroRefresh<E> {
    /// Starts the refresh of `old` (a threshold key) in `session`.
    pub(crate) fn start(
        session: SessionId,
        old: DirtyCoreKeyShare<E>,
    ) -> Result<Self, SessionError> {
        let vss = old
            .key_info
            .vss_setup
            .as_ref()
            .ok_or(Bug("refresh needs a threshold (VSS) key"))?;
        let t = vss.min_signers;
        let points = vss.I.clone();
        let n = points.len();
        let me = PartyIndex::unchecked(old.i);
        let participants: Vec<PartyIndex> = (0..n)
            .filter_map(|k| u16::try_from(k).ok())
            .map(PartyIndex::unchecked)
            .collect();
        let mut rng = rand_core::OsRng;
        let own_poly: Vec<Scalar<E>> = (1..t).map(|_| Scalar::random(&mut rng)).collect();
        let own_commitments: Vec<Point<E>> =
            own_poly.iter().map(|a| Point::generator() * a).collect();
        let mut s = Self {
            inbox: Inbox::new(session, me, participants),
            me,
            session,
            old,
            points,
            t,
            own_poly,
            commitments: BTreeMap::new(),
            shares: BTreeMap::new(),
            outgoing: Vec::new(),
            outcome: None,
            finished: false,
        };
        let payload = encode_payload(&CommitMsg::<E> {
            session: *session.as_bytes(),
            commitments: own_commitments.clone(),
        })?;
        s.commitments.insert(me, own_commitments);
        s.outgoing.push(Message {
            session,
            sender: me,
            recipient: None,
            round: ROUND_COMMIT,
            payload,
        });
        Ok(s)
    }

    fn n(&self) -> usize {
        self.points.len()
    }

    fn echo(&self) -> Vec<[u8; 32]> {
        self.inbox
            .participants()
            .iter()
            .map(|p| {
                self.commitments
                    .get(p)
                    .map(|c| commitments_digest(c))
                    .unwrap_or([0; 32])
            })
            .collect()
    }

    fn send_sub_shares(&mut self) -> Result<(), SessionError> {
        let echo = self.echo();
        for (k, x) in self.points.iter().enumerate() {
            let to =
                PartyIndex::unchecked(u16::try_from(k).map_err(|_| Bug("party index overflow"))?);
            if to == self.me {
                continue;
            }
            let sub_share = eval_zero_poly(&self.own_poly, x);
            let payload = encode_payload(&ShareMsg::<E> {
                session: *self.session.as_bytes(),
                sub_share,
                echo: echo.clone(),
            })?;
            self.outgoing.push(Message {
                session: self.session,
                sender: self.me,
                recipient: Some(to),
                round: ROUND_SHARE,
                payload,
            });
        }
        Ok(())
    }

    fn finish_refresh(&mut self) -> Result<DirtyCoreKeyShare<E>, SessionError> {
        // Every peer must have seen the same round-1 broadcasts as we did.
        let echoes = self
            .shares
            .iter()
            .map(|(from, msg)| (*from, msg.echo.as_slice()));
        check_echoes(
            &self.echo(),
            self.inbox.participants(),
            echoes,
            ROUND_COMMIT,
            ROUND_SHARE,
        )?;
        let my_x: Scalar<E> = *self.points[usize::from(self.me.get())];
        // Feldman check of every sub-share against its dealer's commitments.
        let mut delta = eval_zero_poly(&self.own_poly, &my_x);
        for (from, msg) in &self.shares {
            let c = self
                .commitments
                .get(from)
                .ok_or(Bug("missing commitments"))?;
            if Point::generator() * msg.sub_share != eval_commitments(c, &my_x) {
                return Err(Abort::blaming(*from, AbortReason::InvalidShare).into());
            }
            delta += msg.sub_share;
        }
        // New public shares: X'_j = X_j + sum over dealers of their commitments at x_j.
        let mut public_shares = Vec::with_capacity(self.n());
        for (j, x_j) in self.points.iter().enumerate() {
            let mut shift = Point::<E>::zero();
            for c in self.commitments.values() {
                shift += eval_commitments(c, x_j);
            }
            let old = self
                .old
                .key_info
                .public_shares
                .get(j)
                .ok_or(Bug("public share missing"))?;
            let new = NonZero::from_point(**old + shift)
                .ok_or(Abort::unattributed(AbortReason::InvalidOutput))?;
            public_shares.push(new);
        }
        let old_x: &SecretScalar<E> = self.old.x.as_ref();
        let mut x_new: Scalar<E> = *old_x.as_ref() + delta;
        let x_new_secret = SecretScalar::new(&mut x_new);
        let x = NonZero::from_secret_scalar(x_new_secret)
            .ok_or(Abort::unattributed(AbortReason::InvalidOutput))?;
        let key_info = DirtyKeyInfo {
            public_shares,
            ..self.old.key_info.clone()
        };
        let share = DirtyCoreKeyShare {
            i: self.old.i,
            key_info,
            x,
        };
        // The library's own validation: our secret matches our public share, and all
        // public shares interpolate to the unchanged public key.
        let valid = share
            .validate()
            .map_err(|_| Abort::unattributed(AbortReason::InvalidOutput))?;
        Ok(valid.into_inner())
    }
}

impl<E: Curve> ZeroRefresh<E> {
    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        let malformed = |round| -> SessionError {
            Abort::blaming(from, AbortReason::MalformedMessage { round }).into()
        };
        match (m.round, m.recipient.is_some()) {
            (ROUND_COMMIT, false) => {
                let msg: CommitMsg<E> =
                    decode_payload(&m.payload).map_err(|_| malformed(m.round))?;
                if msg.session != *self.session.as_bytes()
                    || msg.commitments.len() != usize::from(self.t) - 1
                {
                    return Err(malformed(m.round));
                }
                self.commitments.insert(from, msg.commitments);
                if self.commitments.len() == self.n() {
                    self.send_sub_shares()?;
                }
            }
            (ROUND_SHARE, true) => {
                let msg: ShareMsg<E> =
                    decode_payload(&m.payload).map_err(|_| malformed(m.round))?;
                if msg.session != *self.session.as_bytes() {
                    return Err(malformed(m.round));
                }
                self.shares.insert(from, msg);
            }
            (round, _) => return Err(malformed(round)),
        }
        if self.commitments.len() == self.n() && self.shares.len() == self.n() - 1 {
            let share = self.finish_refresh()?;
            self.finished = true;
            self.outcome = Some(Ok(share));
        }
        Ok(())
    }
}

crate::session::explicit_session!(ZeroRefresh<E: Curve>, DirtyCoreKeyShare<E>);

#[cfg(test)]
mod tests {
    use super::*;
    use generic_ec::curves::Secp256k1;

    #[test]
    fn zero_polynomial_and_its_commitments_agree() {
        let mut rng = rand_core::OsRng;
        let coeffs: Vec<Scalar<Secp256k1>> = (0..3).map(|_| Scalar::random(&mut rng)).collect();
        let c: Vec<Point<Secp256k1>> = coeffs.iter().map(|a| Point::generator() * a).collect();
        for x in 1..6u64 {
            let x = Scalar::from(x);
            assert_eq!(
                Point::generator() * eval_zero_poly(&coeffs, &x),
                eval_commitments(&c, &x)
            );
        }
        assert_eq!(eval_zero_poly(&coeffs, &Scalar::zero()), Scalar::zero());
    }
}
