//! The entry points: start a key generation, signing, presigning or refresh session for any
//! scheme, as one party. Every session's result is checked before it is handed out: a
//! signature must pass the independent verifier, a refreshed share must keep the public key.

use crate::ecdsa::{Cggmp24, EcdsaBackend, EcdsaPresignature, EcdsaSignature};
use crate::error::{Abort, AbortReason, ArgumentError, Bug, SessionError};
use crate::frost::{FrostDkg, FrostShare, FrostSign, FrostSuite};
use crate::ids::{GroupParams, PartyIndex, SessionId};
use crate::message::Message;
use crate::path::DerivationPath;
use crate::primes::Primes;
use crate::scheme::Scheme;
use crate::session::{BoxedSession, Session};
use crate::share::{Bip340, EcdsaShare, Ed25519, KeyShare, ShareInner};

/// A threshold signature with the key it verifies under.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Signature {
    /// The scheme.
    pub scheme: Scheme,
    /// The (child) public key it verifies under, in Coffer's encoding.
    pub public_key: Vec<u8>,
    /// 64 bytes: `r || s` (ECDSA, low-S), BIP340 `R.x || s`, or Ed25519 `R || S`.
    pub bytes: [u8; 64],
    /// ECDSA only: 0 or 1.
    pub recovery_id: Option<u8>,
}

type OutputMap<A, T> = Box<dyn FnOnce(A) -> Result<T, SessionError>>;

/// Maps a session's output.
struct Mapped<S: Session, T> {
    inner: S,
    map: Option<OutputMap<S::Output, T>>,
}

impl<S: Session, T> Session for Mapped<S, T> {
    type Output = T;
    fn session_id(&self) -> SessionId {
        self.inner.session_id()
    }
    fn party(&self) -> PartyIndex {
        self.inner.party()
    }
    fn handle(&mut self, m: Message) -> Result<(), SessionError> {
        self.inner.handle(m)
    }
    fn take_outgoing(&mut self) -> Vec<Message> {
        self.inner.take_outgoing()
    }
    fn take_outcome(&mut self) -> Option<Result<T, SessionError>> {
        let out = self.inner.take_outcome()?;
        let map = self.map.take()?;
        Some(out.and_then(map))
    }
    fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

fn mapped<S: Session + 'static, T: 'static>(
    inner: S,
    map: impl FnOnce(S::Output) -> Result<T, SessionError> + 'static,
) -> BoxedSession<T> {
    Box::new(Mapped {
        inner,
        map: Some(Box::new(map)),
    })
}

impl<O> Session for Box<dyn Session<Output = O>> {
    type Output = O;
    fn session_id(&self) -> SessionId {
        (**self).session_id()
    }
    fn party(&self) -> PartyIndex {
        (**self).party()
    }
    fn handle(&mut self, m: Message) -> Result<(), SessionError> {
        (**self).handle(m)
    }
    fn take_outgoing(&mut self) -> Vec<Message> {
        (**self).take_outgoing()
    }
    fn take_outcome(&mut self) -> Option<Result<O, SessionError>> {
        (**self).take_outcome()
    }
    fn is_finished(&self) -> bool {
        (**self).is_finished()
    }
}

/// Starts distributed key generation for `me`. ECDSA needs this party's safe primes for its
/// Paillier keys; the Schnorr schemes ignore them.
pub fn keygen(
    scheme: Scheme,
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
    primes: Option<Primes>,
) -> Result<BoxedSession<KeyShare>, SessionError> {
    if !params.contains(me) {
        return Err(ArgumentError::NotAParticipant { party: me }.into());
    }
    let wrap = |inner: ShareInner| {
        Ok(KeyShare {
            epoch: Default::default(),
            inner,
        })
    };
    Ok(match scheme {
        Scheme::EcdsaSecp256k1 => {
            let primes = primes.ok_or(ArgumentError::Primes {
                reason: "ECDSA key generation needs safe primes",
            })?;
            let s = Cggmp24::keygen(session, me, params, primes)?;
            mapped(s, move |share| {
                wrap(ShareInner::Ecdsa(EcdsaShare::Cggmp24(Box::new(share))))
            })
        }
        Scheme::SchnorrBip340 => {
            mapped(FrostDkg::<Bip340>::keygen(session, me, params)?, move |s| {
                wrap(ShareInner::Bip340(s))
            })
        }
        Scheme::Ed25519 => mapped(
            FrostDkg::<Ed25519>::keygen(session, me, params)?,
            move |s| wrap(ShareInner::Ed25519(s)),
        ),
    })
}

fn check_signature(
    scheme: Scheme,
    public_key: Vec<u8>,
    message: &[u8],
    bytes: &[u8],
    recovery_id: Option<u8>,
) -> Result<Signature, SessionError> {
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| Abort::unattributed(AbortReason::InvalidOutput))?;
    match crate::verify::verify(scheme, &public_key, message, &bytes) {
        Ok(true) => Ok(Signature {
            scheme,
            public_key,
            bytes,
            recovery_id,
        }),
        _ => Err(Abort::unattributed(AbortReason::InvalidOutput).into()),
    }
}

fn frost_sign<C: FrostSuite>(
    share: &FrostShare<C>,
    session: SessionId,
    signers: &[PartyIndex],
    message: &[u8],
    path: &DerivationPath,
    taproot: bool,
) -> Result<BoxedSession<Signature>, SessionError> {
    let public_key = if taproot {
        let (_, pkp) = crate::frost::signing_packages(share, path, true)?;
        let point = pkp
            .verifying_key()
            .serialize()
            .map_err(|_| Bug("verifying key does not serialize"))?;
        C::encode_public_key(&point)?
    } else {
        C::encode_public_key(&crate::frost_hd::child_group_point(share, path)?)?
    };
    let msg = message.to_vec();
    let s = FrostSign::<C>::start(share, session, signers, message, path, taproot)?;
    Ok(mapped(s, move |bytes| {
        check_signature(C::SCHEME, public_key, &msg, &bytes, None)
    }))
}

/// Starts interactive signing of `message` under the child key at `path`, as `share`'s party,
/// with the first `t` of `signers` (by index). ECDSA and BIP340 sign a 32-byte digest;
/// Ed25519 signs the message itself.
pub fn sign(
    share: &KeyShare,
    session: SessionId,
    signers: &[PartyIndex],
    message: &[u8],
    path: &DerivationPath,
) -> Result<BoxedSession<Signature>, SessionError> {
    crate::verify::check_message(share.scheme(), message)?;
    match &share.inner {
        ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
            let digest: [u8; 32] =
                message
                    .try_into()
                    .map_err(|_| ArgumentError::MessageLength {
                        scheme: "ecdsa-secp256k1",
                        expected: 32,
                        actual: message.len(),
                    })?;
            let public_key = Cggmp24::public_key(s, path)?.to_vec();
            let inner = Cggmp24::sign(s, session, signers, digest, path)?;
            Ok(mapped(inner, move |sig: EcdsaSignature| {
                check_signature(
                    Scheme::EcdsaSecp256k1,
                    public_key,
                    &digest,
                    &sig.rs,
                    Some(sig.recovery_id),
                )
            }))
        }
        ShareInner::Bip340(s) => frost_sign(s, session, signers, message, path, false),
        ShareInner::Ed25519(s) => frost_sign(s, session, signers, message, path, false),
    }
}

/// Starts BIP340 signing of the 32-byte `message` (a BIP341 sighash) for a Taproot key-path
/// spend: under the BIP86 output key of the child key at `path` (`Q = P + H_TapTweak(P)G`,
/// no script tree), which is the key a P2TR address of `P` commits to. The signature's
/// `public_key` is `Q`, x-only. BIP340 shares only.
pub fn sign_taproot(
    share: &KeyShare,
    session: SessionId,
    signers: &[PartyIndex],
    message: &[u8],
    path: &DerivationPath,
) -> Result<BoxedSession<Signature>, SessionError> {
    crate::verify::check_message(share.scheme(), message)?;
    match &share.inner {
        ShareInner::Bip340(s) => frost_sign(s, session, signers, message, path, true),
        _ => Err(ArgumentError::WrongScheme {
            expected: "schnorr-bip340",
            actual: share.scheme().name(),
        }
        .into()),
    }
}

/// Starts ECDSA presigning for the child key at `path` (the path is fixed now, before any
/// message is known).
pub fn presign(
    share: &KeyShare,
    session: SessionId,
    signers: &[PartyIndex],
    path: &DerivationPath,
) -> Result<BoxedSession<EcdsaPresignature>, SessionError> {
    match &share.inner {
        ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
            crate::ecdsa::presign(s, session, signers, path)
        }
        _ => Err(ArgumentError::WrongScheme {
            expected: "ecdsa-secp256k1",
            actual: share.scheme().name(),
        }
        .into()),
    }
}

/// The check every refresh result passes: same public key, next epoch.
fn next_epoch_same_key(
    share: &KeyShare,
) -> Result<impl FnOnce(ShareInner) -> Result<KeyShare, SessionError> + 'static, SessionError> {
    let epoch = share.epoch.next()?;
    let old_public = share.public_key(&DerivationPath::root())?;
    Ok(move |inner: ShareInner| {
        let new = KeyShare { epoch, inner };
        if new.public_key(&DerivationPath::root())? != old_public {
            return Err(Abort::unattributed(AbortReason::InvalidOutput).into());
        }
        Ok(new)
    })
}

/// Starts a refresh of `share`; all `n` parties take part. The result has the same public
/// key and chain code, new secret shares, and the next epoch. ECDSA also renews its
/// auxiliary (Paillier) data, which needs fresh primes.
pub fn refresh(
    share: &KeyShare,
    session: SessionId,
    primes: Option<Primes>,
) -> Result<BoxedSession<KeyShare>, SessionError> {
    let check = next_epoch_same_key(share)?;
    Ok(match &share.inner {
        ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
            let primes = primes.ok_or(ArgumentError::Primes {
                reason: "ECDSA refresh needs safe primes",
            })?;
            let inner = Cggmp24::refresh(s, session, primes)?;
            mapped(inner, move |s| {
                check(ShareInner::Ecdsa(EcdsaShare::Cggmp24(Box::new(s))))
            })
        }
        ShareInner::Bip340(s) => mapped(FrostDkg::<Bip340>::refresh(session, s)?, move |s| {
            check(ShareInner::Bip340(s))
        }),
        ShareInner::Ed25519(s) => mapped(FrostDkg::<Ed25519>::refresh(session, s)?, move |s| {
            check(ShareInner::Ed25519(s))
        }),
    })
}

/// Starts a FROST refresh among `members` only (a subset of the group of at least `t`),
/// removing every other party: the group shrinks, the public key stays, and the removed
/// parties' shares no longer combine with the new ones. CGGMP keys cannot do this.
pub fn reshare_without(
    share: &KeyShare,
    session: SessionId,
    members: &[PartyIndex],
) -> Result<BoxedSession<KeyShare>, SessionError> {
    let check = next_epoch_same_key(share)?;
    Ok(match &share.inner {
        ShareInner::Ecdsa(_) => {
            return Err(ArgumentError::WrongScheme {
                expected: "schnorr-bip340 or ed25519 (cggmp24 cannot reshare)",
                actual: share.scheme().name(),
            }
            .into())
        }
        ShareInner::Bip340(s) => mapped(
            FrostDkg::<Bip340>::reshare_without(session, s, members)?,
            move |s| check(ShareInner::Bip340(s)),
        ),
        ShareInner::Ed25519(s) => mapped(
            FrostDkg::<Ed25519>::reshare_without(session, s, members)?,
            move |s| check(ShareInner::Ed25519(s)),
        ),
    })
}

/// A pooled FROST round one (secret nonces and every signer's commitments) for either
/// Schnorr scheme; see [`crate::frost_pool`]. Spend it with [`sign_with_nonces`], once.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub enum FrostNonces {
    /// BIP340.
    Bip340(crate::frost_pool::NonceRecord<Bip340>),
    /// Ed25519.
    Ed25519(crate::frost_pool::NonceRecord<Ed25519>),
}

impl FrostNonces {
    /// The signer set that must sign together with these nonces.
    pub fn signers(&self) -> &[PartyIndex] {
        match self {
            FrostNonces::Bip340(r) => r.signers(),
            FrostNonces::Ed25519(r) => r.signers(),
        }
    }
}

/// Starts the precommit round of FROST signing among `signers` (one round), whose output is
/// this party's pooled [`FrostNonces`].
pub fn precommit(
    share: &KeyShare,
    session: SessionId,
    signers: &[PartyIndex],
) -> Result<BoxedSession<FrostNonces>, SessionError> {
    use crate::frost_pool::Precommit;
    Ok(match &share.inner {
        ShareInner::Bip340(s) => mapped(Precommit::<Bip340>::start(s, session, signers)?, |r| {
            Ok(FrostNonces::Bip340(r))
        }),
        ShareInner::Ed25519(s) => mapped(Precommit::<Ed25519>::start(s, session, signers)?, |r| {
            Ok(FrostNonces::Ed25519(r))
        }),
        ShareInner::Ecdsa(_) => {
            return Err(ArgumentError::WrongScheme {
                expected: "schnorr-bip340 or ed25519",
                actual: share.scheme().name(),
            }
            .into())
        }
    })
}

/// Starts online FROST signing from pooled nonces (one round): spends `nonces` on `message`
/// under the child key at `path`. The result passes the independent verifier.
pub fn sign_with_nonces(
    share: &KeyShare,
    session: SessionId,
    nonces: FrostNonces,
    message: &[u8],
    path: &DerivationPath,
) -> Result<BoxedSession<Signature>, SessionError> {
    use crate::frost_pool::OnlineSign;
    crate::verify::check_message(share.scheme(), message)?;
    let msg = message.to_vec();
    match (&share.inner, nonces) {
        (ShareInner::Bip340(s), FrostNonces::Bip340(r)) => {
            let public_key =
                Bip340::encode_public_key(&crate::frost_hd::child_group_point(s, path)?)?;
            let inner = OnlineSign::<Bip340>::start(s, session, r, message, path)?;
            Ok(mapped(inner, move |bytes| {
                check_signature(Scheme::SchnorrBip340, public_key, &msg, &bytes, None)
            }))
        }
        (ShareInner::Ed25519(s), FrostNonces::Ed25519(r)) => {
            let public_key =
                Ed25519::encode_public_key(&crate::frost_hd::child_group_point(s, path)?)?;
            let inner = OnlineSign::<Ed25519>::start(s, session, r, message, path)?;
            Ok(mapped(inner, move |bytes| {
                check_signature(Scheme::Ed25519, public_key, &msg, &bytes, None)
            }))
        }
        _ => Err(ArgumentError::WrongScheme {
            expected: "nonces of the key's own scheme",
            actual: share.scheme().name(),
        }
        .into()),
    }
}
