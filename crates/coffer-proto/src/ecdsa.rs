//! Threshold ECDSA over secp256k1 behind our own [`EcdsaBackend`] trait, with the CGGMP24
//! backend (LFDT-Lockness `cggmp24`): DKG with auxiliary (Paillier) data, interactive
//! signing, presignatures bound to a derivation path, HD derivation, and refresh.
//!
//! Presignature safety (RUSTSEC-2025-0127): a [`EcdsaPresignature`] is consumed by value when
//! used, is bound to its derivation path when it is made, and only signs a [`Preimage`] that
//! the signer hashes itself; there is no way to hand it a bare digest.

use cggmp24::generic_ec::{NonZero, Point, Scalar};
use cggmp24::key_share::AnyKeyShare;
use cggmp24::security_level::SecurityLevel128;
use cggmp24::supported_curves::Secp256k1;
use cggmp24::{DataToSign, ExecutionId, PrehashedDataToSign};
use hd_wallet::{HdWallet, Slip10};
use key_share::Validate;
use serde::{Deserialize, Serialize};

use crate::error::{Abort, AbortReason, ArgumentError, Bug, SessionError};
use crate::ids::{signing_set, GroupParams, PartyIndex, SessionId};
use crate::join::Joined;
use crate::path::DerivationPath;
use crate::primes::Primes;
use crate::rb::{library_abort, Machine, RbSession};
use crate::scheme::Backend;
use crate::session::BoxedSession;
use crate::zero_refresh::ZeroRefresh;

/// A CGGMP24 key share (core share plus auxiliary data), validated by the library.
pub type CggmpShare = cggmp24::KeyShare<Secp256k1, SecurityLevel128>;

/// Rounds of the auxiliary-data protocol start here inside a joined session.
const AUX_ROUND_OFFSET: u16 = 100;

/// An ECDSA signature as Coffer hands it out: low-S `r || s` with the recovery id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EcdsaSignature {
    /// `r || s`, big-endian, `s` in the lower half of the order.
    pub rs: [u8; 64],
    /// 0 or 1: the parity of the nonce point's y coordinate (x never overflows in practice;
    /// recovery ids 2 and 3 are refused).
    pub recovery_id: u8,
}

/// What an ECDSA backend must provide. A second backend (DKLs23) will sit beside CGGMP24.
pub trait EcdsaBackend {
    /// The backend's key share.
    type Share;
    /// Which backend this is.
    const BACKEND: Backend;
    /// Starts DKG (including whatever setup the backend needs, such as Paillier keys).
    fn keygen(
        session: SessionId,
        me: PartyIndex,
        params: GroupParams,
        primes: Primes,
    ) -> Result<BoxedSession<Self::Share>, SessionError>;
    /// Starts interactive signing of a 32-byte digest under the child key at `path`.
    fn sign(
        share: &Self::Share,
        session: SessionId,
        signers: &[PartyIndex],
        digest: [u8; 32],
        path: &DerivationPath,
    ) -> Result<BoxedSession<EcdsaSignature>, SessionError>;
    /// Starts a refresh: new shares of the same key.
    fn refresh(
        share: &Self::Share,
        session: SessionId,
        primes: Primes,
    ) -> Result<BoxedSession<Self::Share>, SessionError>;
    /// The (child) public key, compressed SEC1.
    fn public_key(share: &Self::Share, path: &DerivationPath) -> Result<[u8; 33], ArgumentError>;
}

/// The CGGMP24 backend.
pub struct Cggmp24;

/// The key-generation half of a CGGMP key (no auxiliary data): the library's threshold DKG
/// with a joint chain code.
pub(crate) fn core_keygen(
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
) -> RbSession<
    cggmp24::keygen::ThresholdMsg<Secp256k1, SecurityLevel128, sha2::Sha256>,
    cggmp24::IncompleteKeyShare<Secp256k1>,
> {
    let eid = session.execution_id("cggmp24/keygen");
    let (i, n, t) = (me.get(), params.n(), params.t());
    let keygen = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = rand_core::OsRng;
        cggmp24::keygen::<Secp256k1>(execution_id(&eid), i, n)
            .set_threshold(t)
            .hd_wallet(true)
            .start(&mut rng, party)
            .await
            .map_err(|e| library_abort("cggmp24 keygen", &e))
    });
    let keygen: Machine<_, _> = Box::new(keygen);
    RbSession::new(session, me, params.parties().collect(), 0, keygen)
}

fn execution_id<'a>(bytes: &'a [u8; 32]) -> ExecutionId<'a> {
    ExecutionId::new(bytes)
}

fn group_of(share: &CggmpShare) -> Result<GroupParams, SessionError> {
    GroupParams::new(share.min_signers(), share.n()).map_err(Into::into)
}

fn aux_session(
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
    primes: Primes,
    protocol: &'static str,
) -> RbSession<
    cggmp24::key_refresh::msg::Msg<sha2::Sha256, SecurityLevel128>,
    cggmp24::key_share::AuxInfo<SecurityLevel128>,
> {
    let eid = session.execution_id(protocol);
    let (i, n) = (me.get(), params.n());
    let machine = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = rand_core::OsRng;
        cggmp24::aux_info_gen(execution_id(&eid), i, n, primes)
            .start(&mut rng, party)
            .await
            .map_err(|e| library_abort("cggmp24 aux-info", &e))
    });
    RbSession::new(
        session,
        me,
        params.parties().collect(),
        AUX_ROUND_OFFSET,
        Box::new(machine),
    )
}

/// Starts key generation without auxiliary data, for a signer group whose auxiliary data
/// already exists (it is per group, reusable across keys); finish with [`complete_share`].
pub fn core_keygen_session(
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
) -> Result<BoxedSession<cggmp24::IncompleteKeyShare<Secp256k1>>, SessionError> {
    if !params.contains(me) {
        return Err(ArgumentError::NotAParticipant { party: me }.into());
    }
    Ok(Box::new(core_keygen(session, me, params)))
}

/// Starts auxiliary-data (Paillier) generation for one party of a signer group.
pub fn aux_gen_session(
    session: SessionId,
    me: PartyIndex,
    params: GroupParams,
    primes: Primes,
) -> Result<BoxedSession<cggmp24::key_share::AuxInfo<SecurityLevel128>>, SessionError> {
    if !params.contains(me) {
        return Err(ArgumentError::NotAParticipant { party: me }.into());
    }
    Ok(Box::new(aux_session(
        session,
        me,
        params,
        primes,
        "cggmp24/aux-info",
    )))
}

/// Joins a core share with its party's auxiliary data (validated by the library).
pub fn complete_share(
    core: cggmp24::IncompleteKeyShare<Secp256k1>,
    aux: cggmp24::key_share::AuxInfo<SecurityLevel128>,
) -> Result<CggmpShare, SessionError> {
    complete(core, aux)
}

fn complete(
    core: cggmp24::IncompleteKeyShare<Secp256k1>,
    aux: cggmp24::key_share::AuxInfo<SecurityLevel128>,
) -> Result<CggmpShare, SessionError> {
    cggmp24::KeyShare::from_parts((core, aux))
        .map_err(|_| Abort::unattributed(AbortReason::InvalidOutput).into())
}

/// Maps a path to the library's index type (already checked non-hardened).
fn path_indices(path: &DerivationPath) -> Result<Vec<hd_wallet::NonHardenedIndex>, ArgumentError> {
    path.indices()
        .iter()
        .map(|i| {
            hd_wallet::NonHardenedIndex::try_from(*i).map_err(|_| ArgumentError::InvalidPath {
                reason: "hardened step",
            })
        })
        .collect()
}

impl EcdsaBackend for Cggmp24 {
    type Share = CggmpShare;
    const BACKEND: Backend = Backend::Cggmp24;

    fn keygen(
        session: SessionId,
        me: PartyIndex,
        params: GroupParams,
        primes: Primes,
    ) -> Result<BoxedSession<CggmpShare>, SessionError> {
        if !params.contains(me) {
            return Err(ArgumentError::NotAParticipant { party: me }.into());
        }
        let keygen = core_keygen(session, me, params);
        let aux = aux_session(session, me, params, primes, "cggmp24/aux-info");
        Ok(Box::new(Joined::new(
            keygen,
            aux,
            AUX_ROUND_OFFSET,
            Box::new(complete),
        )))
    }

    fn sign(
        share: &CggmpShare,
        session: SessionId,
        signers: &[PartyIndex],
        digest: [u8; 32],
        path: &DerivationPath,
    ) -> Result<BoxedSession<EcdsaSignature>, SessionError> {
        let Signers {
            set,
            me,
            i,
            indices,
        } = signers_for(share, signers, path)?;
        let child = Self::public_key(share, path)?;
        let eid = session.execution_id("cggmp24/sign");
        let keygen_indices: Vec<u16> = set.iter().map(|p| p.get()).collect();
        let share = share.clone();
        let machine = round_based::state_machine::wrap_protocol(move |party| async move {
            let mut rng = rand_core::OsRng;
            let message = PrehashedDataToSign::from_scalar(
                Scalar::<Secp256k1>::from_be_bytes_mod_order(digest),
            );
            let builder = cggmp24::signing(execution_id(&eid), i, &keygen_indices, &share)
                .set_derivation_path(indices)
                .map_err(|_| {
                    SessionError::from(ArgumentError::InvalidPath {
                        reason: "not derivable",
                    })
                })?;
            let sig = builder
                .sign(&mut rng, party, &message)
                .await
                .map_err(|e| library_abort("cggmp24 signing", &e))?;
            finish_signature(sig, &digest, &child)
        });
        Ok(Box::new(RbSession::new(
            session,
            me,
            set,
            0,
            Box::new(machine),
        )))
    }

    fn refresh(
        share: &CggmpShare,
        session: SessionId,
        primes: Primes,
    ) -> Result<BoxedSession<CggmpShare>, SessionError> {
        let params = group_of(share)?;
        let me = PartyIndex::unchecked(share.core.i);
        let core = ZeroRefresh::start(session, share.core.clone())?;
        let aux = aux_session(session, me, params, primes, "cggmp24/refresh-aux-info");
        Ok(Box::new(Joined::new(
            core,
            aux,
            AUX_ROUND_OFFSET,
            Box::new(|core, aux| {
                let core = core.validate().map_err(|_| {
                    SessionError::from(Abort::unattributed(AbortReason::InvalidOutput))
                })?;
                complete(core, aux)
            }),
        )))
    }

    fn public_key(share: &CggmpShare, path: &DerivationPath) -> Result<[u8; 33], ArgumentError> {
        let point = child_point(share, path)?;
        let bytes = point.to_bytes(true);
        bytes
            .as_ref()
            .try_into()
            .map_err(|_| ArgumentError::InvalidPath {
                reason: "unexpected point encoding",
            })
    }
}

/// Who signs, as the library wants it: the signing set, this party's keygen index and its
/// position in the set, and the path's indices.
struct Signers {
    set: Vec<PartyIndex>,
    me: PartyIndex,
    i: u16,
    indices: Vec<hd_wallet::NonHardenedIndex>,
}

fn signers_for(
    share: &CggmpShare,
    signers: &[PartyIndex],
    path: &DerivationPath,
) -> Result<Signers, SessionError> {
    let params = group_of(share)?;
    let set = signing_set(params, signers)?;
    let me = PartyIndex::unchecked(share.core.i);
    let position = set
        .iter()
        .position(|p| *p == me)
        .ok_or(ArgumentError::NotAParticipant { party: me })?;
    let i = u16::try_from(position).map_err(|_| Bug("signer position overflow"))?;
    Ok(Signers {
        set,
        me,
        i,
        indices: path_indices(path)?,
    })
}

/// The child public key at `path` (BIP32 non-hardened derivation, SLIP-10 for secp256k1).
fn child_point(
    share: &CggmpShare,
    path: &DerivationPath,
) -> Result<Point<Secp256k1>, ArgumentError> {
    let mut epub = share
        .extended_public_key()
        .ok_or(ArgumentError::InvalidPath {
            reason: "this key was generated without a chain code",
        })?;
    for i in path_indices(path)? {
        epub = Slip10::derive_child_public_key(&epub, i);
    }
    Ok(epub.public_key)
}

/// The joint chain code made by the DKG.
pub fn chain_code(share: &CggmpShare) -> Option<[u8; 32]> {
    share.core.key_info.chain_code
}

/// Converts the library's signature, normalizes S, and finds the recovery id by recovering
/// the public key with libsecp256k1 (an implementation independent of the protocol's).
fn finish_signature(
    sig: cggmp24::Signature<Secp256k1>,
    digest: &[u8; 32],
    public_key: &[u8; 33],
) -> Result<EcdsaSignature, SessionError> {
    let sig = sig.normalize_s();
    let mut rs = [0u8; 64];
    sig.write_to_slice(&mut rs);
    let recovery_id = crate::verify::ecdsa_recovery_id(public_key, digest, &rs)
        .ok_or(Abort::unattributed(AbortReason::InvalidOutput))?;
    Ok(EcdsaSignature { rs, recovery_id })
}

/// A message whose digest the signer computes itself. Presignatures sign only these.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Preimage {
    /// SHA-256 of these bytes.
    Sha256(Vec<u8>),
}

impl Preimage {
    fn data_to_sign(&self) -> (DataToSign<Secp256k1>, [u8; 32]) {
        match self {
            Preimage::Sha256(bytes) => {
                use sha2::Digest;
                let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
                (DataToSign::digest::<sha2::Sha256>(bytes), digest)
            }
        }
    }
}

/// The public part of a presignature run: what combines the partial signatures. Anyone
/// may hold it (it carries no secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PresignaturePublic {
    gamma: NonZero<Point<Secp256k1>>,
    commitments: Vec<(Point<Secp256k1>, Point<Secp256k1>)>,
    signers: Vec<PartyIndex>,
    path: DerivationPath,
    public_key: Vec<u8>,
}

/// One party's presignature, bound to its key, signer set and derivation path. It is not
/// `Clone`: using it consumes it, so it signs at most once.
#[derive(Serialize, Deserialize)]
pub struct EcdsaPresignature {
    presignature: cggmp24::Presignature<Secp256k1>,
    public: PresignaturePublic,
}

impl core::fmt::Debug for EcdsaPresignature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EcdsaPresignature")
            .field("signers", &self.public.signers)
            .field("path", &self.public.path)
            .finish_non_exhaustive()
    }
}

/// A partial signature issued from a presignature.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct PartialSignature {
    /// The issuing party.
    pub party: PartyIndex,
    sigma: cggmp24::PartialSignature<Secp256k1>,
}

impl EcdsaPresignature {
    /// The derivation path this presignature is bound to.
    pub fn path(&self) -> &DerivationPath {
        &self.public.path
    }

    /// The signers that made it together (all must issue partials).
    pub fn signers(&self) -> &[PartyIndex] {
        &self.public.signers
    }

    /// The public data that combines partial signatures.
    pub fn public_data(&self) -> PresignaturePublic {
        self.public.clone()
    }

    /// Spends the presignature on `message`, hashed here. `me` is this party's index.
    pub fn issue(self, me: PartyIndex, message: &Preimage) -> PartialSignature {
        let (data, _) = message.data_to_sign();
        PartialSignature {
            party: me,
            sigma: self.presignature.issue_partial_signature(data),
        }
    }
}

impl PresignaturePublic {
    /// The signers that made the presignature (all must issue partials).
    pub fn signers(&self) -> &[PartyIndex] {
        &self.signers
    }

    /// The child public key the signature will verify under (33 bytes, compressed).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The derivation path.
    pub fn path(&self) -> &DerivationPath {
        &self.path
    }

    /// Combines all signers' partials into a signature, verified against the child key;
    /// a partial that fails its commitment check aborts the run and is blamed.
    pub fn combine(
        &self,
        partials: &[PartialSignature],
        message: &Preimage,
    ) -> Result<EcdsaSignature, SessionError> {
        let mut ordered = Vec::with_capacity(self.signers.len());
        for s in &self.signers {
            let p =
                partials
                    .iter()
                    .find(|p| p.party == *s)
                    .ok_or(ArgumentError::TooFewSigners {
                        given: partials.len(),
                        threshold: u16::try_from(self.signers.len()).unwrap_or(u16::MAX),
                    })?;
            ordered.push(p.sigma);
        }
        let public = cggmp24::signing::PresignaturePublicData {
            Gamma: self.gamma,
            commitments: self
                .commitments
                .iter()
                .map(|(d, s)| cggmp24::signing::PresignatureCommitment {
                    tilde_Delta: *d,
                    tilde_S: *s,
                })
                .collect(),
        };
        let (data, digest) = message.data_to_sign();
        // `combine` checks every partial against its commitment and returns None on a bad one.
        let sig = cggmp24::PartialSignature::combine(&ordered, &public, data).ok_or_else(|| {
            // Name the culprit: the partial that fails its own commitment check.
            let r = public.Gamma.x().to_scalar();
            let m = data.to_scalar();
            let culprits = self
                .signers
                .iter()
                .zip(&ordered)
                .zip(&public.commitments)
                .filter(|((_, p), c)| p.sigma * public.Gamma != m * c.tilde_Delta + r * c.tilde_S)
                .map(|((s, _), _)| *s)
                .collect();
            SessionError::from(Abort {
                culprits,
                reason: AbortReason::InvalidSignatureShare,
            })
        })?;
        let pk: [u8; 33] = self
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| Bug("presignature public key length"))?;
        finish_signature(sig, &digest, &pk)
    }
}

use cggmp24::generic_ec::coords::AlwaysHasAffineX;

/// Starts presignature generation among `signers` for the child key at `path`.
pub fn presign(
    share: &CggmpShare,
    session: SessionId,
    signers: &[PartyIndex],
    path: &DerivationPath,
) -> Result<BoxedSession<EcdsaPresignature>, SessionError> {
    let Signers {
        set,
        me,
        i,
        indices,
    } = signers_for(share, signers, path)?;
    let public_key = Cggmp24::public_key(share, path)?.to_vec();
    let eid = session.execution_id("cggmp24/presign");
    let keygen_indices: Vec<u16> = set.iter().map(|p| p.get()).collect();
    let share = share.clone();
    let path = path.clone();
    let signers_out = set.clone();
    let machine = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = rand_core::OsRng;
        let builder = cggmp24::signing(execution_id(&eid), i, &keygen_indices, &share)
            .set_derivation_path(indices)
            .map_err(|_| {
                SessionError::from(ArgumentError::InvalidPath {
                    reason: "not derivable",
                })
            })?;
        let (presignature, public) = builder
            .generate_presignature(&mut rng, party)
            .await
            .map_err(|e| library_abort("cggmp24 presigning", &e))?;
        Ok(EcdsaPresignature {
            presignature,
            public: PresignaturePublic {
                gamma: public.Gamma,
                commitments: public
                    .commitments
                    .iter()
                    .map(|c| (c.tilde_Delta, c.tilde_S))
                    .collect(),
                signers: signers_out,
                path,
                public_key,
            },
        })
    });
    Ok(Box::new(RbSession::new(
        session,
        me,
        set,
        0,
        Box::new(machine),
    )))
}
