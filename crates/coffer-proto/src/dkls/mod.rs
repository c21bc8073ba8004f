//! The DKLs23 threshold-ECDSA backend (0xCarbon `dkls23` 0.6.2, OT-based, UNAUDITED): its
//! key share and share codec ([`DklsShare`], tagged `dkls23`), and its sans-IO sessions
//! ([`keygen`], [`sign`], [`refresh`]) that wrap the library's phase functions behind our [`Session`]
//! trait. No protocol step is ours: every value sent or checked is the library's.
//!
//! Index mapping: our zero-based [`PartyIndex`] `i` is the library's one-based party `i + 1`.
//!
//! Ban rule: when the library aborts with `BanCounterparty`, the session ends with
//! [`AbortReason::MustBan`] naming that party; the caller must exclude it from every later
//! session on this key (the library's OT correlations are reused across signatures).
//!
//! [`Session`]: crate::session::Session

pub mod keygen;
pub mod refresh;
pub mod sign;

use std::collections::BTreeMap;

use dkls23::protocols::{AbortKind, Parameters};
use dkls23::secp256k1::{Party, PublicKeyPackage};
use k256_dkls::elliptic_curve::group::GroupEncoding;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Abort, AbortReason, ArgumentError, Bug, SessionError};
use crate::ids::{GroupParams, PartyIndex};
use crate::path::DerivationPath;
use crate::scheme::Backend;

/// The library's party index for our index.
pub(crate) fn lib_index(p: PartyIndex) -> Result<dkls23::protocols::PartyIndex, Bug> {
    u8::try_from(p.get() + 1)
        .ok()
        .and_then(|i| dkls23::protocols::PartyIndex::new(i).ok())
        .ok_or(Bug("party index out of the DKLs23 range"))
}

/// Our party index for the library's.
pub(crate) fn our_index(p: dkls23::protocols::PartyIndex) -> PartyIndex {
    PartyIndex::unchecked(u16::from(p.as_u8()).saturating_sub(1))
}

/// The library's parameters for our group.
pub(crate) fn lib_params(params: GroupParams) -> Result<Parameters, ArgumentError> {
    let t = u8::try_from(params.t()).map_err(|_| ArgumentError::TooManyParties {
        parties: params.n(),
        max: 16,
    })?;
    let n = u8::try_from(params.n()).map_err(|_| ArgumentError::TooManyParties {
        parties: params.n(),
        max: 16,
    })?;
    Parameters::new(t, n).map_err(|_| ArgumentError::ThresholdAboveParties {
        threshold: params.t(),
        parties: params.n(),
    })
}

/// Turns a library abort into ours, naming the culprit where the library does.
pub(crate) fn map_abort(protocol: &'static str, abort: dkls23::protocols::Abort) -> SessionError {
    match abort.kind {
        AbortKind::BanCounterparty(p) => Abort::blaming(
            our_index(p),
            AbortReason::MustBan {
                detail: abort.description(),
            },
        )
        .into(),
        AbortKind::Recoverable => {
            let reason = AbortReason::Library {
                protocol,
                detail: abort.description(),
            };
            match culprit(&abort.reason) {
                Some(p) => Abort::blaming(our_index(p), reason),
                None => Abort::unattributed(reason),
            }
            .into()
        }
    }
}

/// The counterparty a recoverable library abort holds responsible: a proof, commitment or
/// decommitment of theirs that failed. Aborts about our own state or inputs blame no one.
fn culprit(reason: &dkls23::protocols::AbortReason) -> Option<dkls23::protocols::PartyIndex> {
    use dkls23::protocols::AbortReason as R;
    match reason {
        R::ProofVerificationFailed { counterparty }
        | R::CommitmentMismatch { counterparty }
        | R::TrivialInstancePoint { counterparty }
        | R::ZeroShareDecommitFailed { counterparty }
        | R::OtConsistencyCheckFailed { counterparty }
        | R::MultiplicationVerificationFailed { counterparty, .. }
        | R::GammaUInconsistency { counterparty } => Some(*counterparty),
        R::ChainCodeCommitmentFailed { party } => Some(*party),
        _ => None,
    }
}

/// Compressed SEC1 encoding (33 bytes) of a library public key.
pub(crate) fn point_bytes(p: &k256_dkls::AffinePoint) -> Vec<u8> {
    p.to_bytes().to_vec()
}

/// Version of the share encoding written by this build.
const SHARE_VERSION: u8 = 1;

/// One party's DKLs23 key share: the library's `Party` (secret share, zero-share seeds, OT
/// correlations with every other party, chain code) and the group's public key package.
/// Zeroized on drop by the library; never printed.
#[derive(Clone)]
pub struct DklsShare {
    params: GroupParams,
    party: Party,
    public: PublicKeyPackage,
}

impl core::fmt::Debug for DklsShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DklsShare")
            .field("params", &self.params)
            .field("party", &self.party())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct EncodedRef<'a> {
    backend: Backend,
    version: u8,
    params: GroupParams,
    party: &'a Party,
    public: &'a PublicKeyPackage,
}

#[derive(Deserialize)]
struct Encoded {
    backend: Backend,
    version: u8,
    params: GroupParams,
    party: Party,
    public: PublicKeyPackage,
}

/// Why bytes do not decode as a [`DklsShare`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DklsShareError {
    /// Not CBOR of a DKLs23 share.
    #[error("not a DKLs23 key share encoding")]
    Malformed,
    /// A share of another backend.
    #[error("share is tagged backend {0}, expected dkls23")]
    WrongBackend(Backend),
    /// An encoding version this build does not read.
    #[error("DKLs23 share encoding version {0} is not supported")]
    Version(u8),
    /// The fields disagree with each other.
    #[error("inconsistent DKLs23 share: {0}")]
    Inconsistent(&'static str),
}

impl DklsShare {
    pub(crate) fn new(params: GroupParams, party: Party, public: PublicKeyPackage) -> Self {
        Self {
            params,
            party,
            public,
        }
    }

    /// Always [`Backend::Dkls23`].
    pub const fn backend(&self) -> Backend {
        Backend::Dkls23
    }

    /// Threshold and group size.
    pub const fn params(&self) -> GroupParams {
        self.params
    }

    /// This party's index.
    pub fn party(&self) -> PartyIndex {
        our_index(self.party.party_index)
    }

    /// The group public key (33-byte compressed SEC1).
    pub fn public_key(&self) -> Vec<u8> {
        point_bytes(self.public.verifying_key())
    }

    /// The BIP32 chain code agreed at key generation.
    pub fn chain_code(&self) -> [u8; 32] {
        self.party.derivation_data.chain_code
    }

    /// The public key at a non-hardened BIP32 path (the library's own derivation).
    pub fn derived_public_key(&self, path: &DerivationPath) -> Result<Vec<u8>, SessionError> {
        Ok(point_bytes(&self.derived_party(path)?.pk))
    }

    /// The library's party with its share shifted along `path` (the library's BIP32
    /// derivation: the same tweak is added to every party's share).
    pub(crate) fn derived_party(&self, path: &DerivationPath) -> Result<Party, SessionError> {
        let mut party = self.party.clone();
        for &i in path.indices() {
            party = party.derive_child(i, |_| String::new()).map_err(|_| {
                ArgumentError::InvalidPath {
                    reason: "the DKLs23 derivation refused this step",
                }
            })?;
        }
        Ok(party)
    }

    pub(crate) fn lib_party(&self) -> &Party {
        &self.party
    }

    pub(crate) fn public_package(&self) -> &PublicKeyPackage {
        &self.public
    }

    /// The secret encoding, tagged `dkls23`; the buffer is zeroized when dropped.
    pub fn encode_secret(&self) -> Result<Zeroizing<Vec<u8>>, Bug> {
        let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
        let enc = EncodedRef {
            backend: Backend::Dkls23,
            version: SHARE_VERSION,
            params: self.params,
            party: &self.party,
            public: &self.public,
        };
        ciborium::into_writer(&enc, &mut *out)
            .map_err(|_| Bug("a DKLs23 share failed to encode"))?;
        Ok(out)
    }

    /// Decodes untrusted bytes written by [`DklsShare::encode_secret`].
    pub fn decode_secret(bytes: &[u8]) -> Result<Self, DklsShareError> {
        if bytes.len() > crate::message::MAX_PAYLOAD {
            return Err(DklsShareError::Malformed);
        }
        let mut dec: Encoded =
            ciborium::from_reader(bytes).map_err(|_| DklsShareError::Malformed)?;
        if dec.backend != Backend::Dkls23 {
            return Err(DklsShareError::WrongBackend(dec.backend));
        }
        if dec.version != SHARE_VERSION {
            return Err(DklsShareError::Version(dec.version));
        }
        let p = &dec.party.parameters;
        if usize::from(p.threshold) != usize::from(dec.params.t())
            || usize::from(p.share_count) != usize::from(dec.params.n())
        {
            dec.party.zeroize();
            return Err(DklsShareError::Inconsistent("parameters"));
        }
        if dec.party.pk != *dec.public.verifying_key() {
            dec.party.zeroize();
            return Err(DklsShareError::Inconsistent("public key"));
        }
        if our_index(dec.party.party_index).get() >= dec.params.n() {
            return Err(DklsShareError::Inconsistent("party index"));
        }
        Ok(Self {
            params: dec.params,
            party: dec.party.clone(),
            public: dec.public.clone(),
        })
    }
}

/// Payloads received so far, per round and sender (after [`crate::session::Inbox::admit`]).
#[derive(Default)]
pub(crate) struct Received(BTreeMap<u16, BTreeMap<PartyIndex, Zeroizing<Vec<u8>>>>);

impl Received {
    pub(crate) fn put(&mut self, m: crate::message::Message) {
        self.0
            .entry(m.round)
            .or_default()
            .insert(m.sender, Zeroizing::new(m.payload));
    }

    /// The payloads of `round`, decoded in sender order, once every peer's is in.
    pub(crate) fn take_complete<T: serde::de::DeserializeOwned>(
        &mut self,
        round: u16,
        peers: usize,
    ) -> Option<Result<Vec<(PartyIndex, T)>, SessionError>> {
        if self.0.get(&round).map_or(0, BTreeMap::len) < peers {
            return None;
        }
        let msgs = self.0.remove(&round)?;
        let mut out = Vec::with_capacity(msgs.len());
        for (sender, payload) in msgs {
            match crate::message::decode_payload::<T>(&payload) {
                Ok(v) => out.push((sender, v)),
                Err(_) => {
                    return Some(Err(Abort::blaming(
                        sender,
                        AbortReason::MalformedMessage { round },
                    )
                    .into()))
                }
            }
        }
        Some(Ok(out))
    }
}
