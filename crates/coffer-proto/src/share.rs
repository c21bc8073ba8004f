//! A party's key share for any scheme: its public description ([`ShareHeader`]) and the
//! versioned encoding of its secret part. Decoding validates: a share that does not agree
//! with itself or with its header is refused.

use cggmp24::key_share::AnyKeyShare;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ecdsa::{CggmpShare, EcdsaBackend};
use crate::error::{ArgumentError, Bug};
use crate::frost::{FrostShare, FrostSuite};
use crate::ids::{Epoch, GroupParams, PartyIndex};
use crate::path::DerivationPath;
use crate::scheme::{Backend, Scheme};

/// FROST over secp256k1 with BIP340/Taproot conventions.
pub type Bip340 = frost_secp256k1_tr::Secp256K1Sha256TR;
/// FROST over Ed25519.
pub type Ed25519 = frost_ed25519::Ed25519Sha512;

/// Version of the secret-part encoding written by this build.
pub const SECRET_FORMAT_VERSION: u8 = 1;

/// An ECDSA share of one of the ECDSA backends.
#[derive(Clone, Serialize, Deserialize)]
pub enum EcdsaShare {
    /// CGGMP24.
    #[serde(rename = "cggmp24")]
    Cggmp24(Box<CggmpShare>),
}

/// The scheme-specific share.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum ShareInner {
    #[serde(rename = "ecdsa-secp256k1")]
    Ecdsa(EcdsaShare),
    #[serde(rename = "schnorr-bip340")]
    Bip340(FrostShare<Bip340>),
    #[serde(rename = "ed25519")]
    Ed25519(FrostShare<Ed25519>),
}

/// One party's share of a threshold key, at some refresh epoch.
#[derive(Clone)]
pub struct KeyShare {
    pub(crate) epoch: Epoch,
    pub(crate) inner: ShareInner,
}

impl core::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.header() {
            Ok(h) => f
                .debug_struct("KeyShare")
                .field("header", &h)
                .finish_non_exhaustive(),
            Err(_) => f.write_str("KeyShare(<invalid>)"),
        }
    }
}

/// The public description of a share: what is written in clear (but authenticated) at the
/// top of a share file, and what `derive` needs.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareHeader {
    /// Signature scheme.
    pub scheme: Scheme,
    /// Protocol backend.
    pub backend: Backend,
    /// Group public key, hex (compressed SEC1 for ECDSA, x-only for BIP340, 32 bytes Ed25519).
    pub public_key: String,
    /// Chain code for HD derivation, hex.
    pub chain_code: String,
    /// Threshold `t`.
    pub threshold: u16,
    /// Group size `n`.
    pub parties: u16,
    /// This share's party index, `0 <= i < n`.
    pub party_index: u16,
    /// Refresh epoch.
    pub epoch: Epoch,
    /// Party indices of the group's members, only when they are not `0..parties` (after a
    /// reshare removed parties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u16>>,
}

#[derive(Serialize, Deserialize)]
struct SecretV1 {
    version: u8,
    epoch: Epoch,
    share: ShareInner,
}

/// The decoder's own message is not passed on: it may quote bytes of secret material.
const NOT_A_SHARE: &str = "not a share encoding (details withheld: they could quote secret bytes)";

/// Why bytes do not decode as a share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareDecodeError {
    /// Not a share encoding at all.
    #[error("share data is corrupt: {0}")]
    Corrupt(&'static str),
    /// A version this build does not read.
    #[error("unsupported share format version {0}")]
    Version(u8),
    /// The share's parts disagree with each other.
    #[error("share is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The share disagrees with the header it was stored under.
    #[error("share does not match its header: {0}")]
    HeaderMismatch(&'static str),
}

impl KeyShare {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match &self.inner {
            ShareInner::Ecdsa(_) => Scheme::EcdsaSecp256k1,
            ShareInner::Bip340(_) => Scheme::SchnorrBip340,
            ShareInner::Ed25519(_) => Scheme::Ed25519,
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(_)) => crate::ecdsa::Cggmp24::BACKEND,
            ShareInner::Bip340(_) | ShareInner::Ed25519(_) => Backend::Frost,
        }
    }

    /// The refresh epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Threshold and group size.
    pub fn params(&self) -> Result<GroupParams, ArgumentError> {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => GroupParams::new(s.min_signers(), s.n()),
            ShareInner::Bip340(s) => Ok(s.params),
            ShareInner::Ed25519(s) => Ok(s.params),
        }
    }

    /// This party's index.
    pub fn party(&self) -> PartyIndex {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => PartyIndex::unchecked(s.core.i),
            ShareInner::Bip340(s) => s.index,
            ShareInner::Ed25519(s) => s.index,
        }
    }

    /// The group's members (party indices), sorted: `0..n` unless a reshare removed parties.
    pub fn members(&self) -> Vec<PartyIndex> {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
                (0..s.n()).map(PartyIndex::unchecked).collect()
            }
            ShareInner::Bip340(s) => s.members(),
            ShareInner::Ed25519(s) => s.members(),
        }
    }

    /// The chain code (joint for CGGMP; derived from the group key for FROST).
    pub fn chain_code(&self) -> Result<[u8; 32], Bug> {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
                crate::ecdsa::chain_code(s).ok_or(Bug("CGGMP key without chain code"))
            }
            ShareInner::Bip340(s) => Ok(s.chain_code),
            ShareInner::Ed25519(s) => Ok(s.chain_code),
        }
    }

    /// The public key (of the child at `path`) in Coffer's encoding for the scheme.
    pub fn public_key(&self, path: &DerivationPath) -> Result<Vec<u8>, crate::error::SessionError> {
        match &self.inner {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(s)) => {
                Ok(crate::ecdsa::Cggmp24::public_key(s, path)?.to_vec())
            }
            ShareInner::Bip340(s) => frost_public_key(s, path),
            ShareInner::Ed25519(s) => frost_public_key(s, path),
        }
    }

    /// The extended public key at `path`: the child's public key and chain code.
    pub fn derive(
        &self,
        path: &DerivationPath,
    ) -> Result<(Vec<u8>, [u8; 32]), crate::error::SessionError> {
        let chain_code = crate::hd::child_chain_code(self, path)?;
        Ok((self.public_key(path)?, chain_code))
    }

    /// The public description.
    pub fn header(&self) -> Result<ShareHeader, crate::error::SessionError> {
        let params = self.params()?;
        Ok(ShareHeader {
            scheme: self.scheme(),
            backend: self.backend(),
            public_key: hex::encode(self.public_key(&DerivationPath::root())?),
            chain_code: hex::encode(self.chain_code()?),
            threshold: params.t(),
            parties: params.n(),
            party_index: self.party().get(),
            epoch: self.epoch,
            members: {
                let members = self.members();
                let contiguous = members.iter().copied().eq(params.parties());
                (!contiguous).then(|| members.iter().map(|m| m.get()).collect())
            },
        })
    }

    /// Encodes the secret part (CBOR, versioned). The buffer is wiped when dropped.
    pub fn encode_secret(&self) -> Result<Zeroizing<Vec<u8>>, Bug> {
        let mut out = Zeroizing::new(Vec::new());
        let value = SecretV1 {
            version: SECRET_FORMAT_VERSION,
            epoch: self.epoch,
            share: self.inner.clone(),
        };
        ciborium::into_writer(&value, &mut *out).map_err(|_| Bug("share does not encode"))?;
        Ok(out)
    }

    /// Decodes and validates the secret part of a share.
    pub fn decode_secret(bytes: &[u8]) -> Result<Self, ShareDecodeError> {
        // Peek at the version first so that a future format gives a clear error.
        #[derive(Deserialize)]
        struct Version {
            version: u8,
        }
        let v: Version =
            ciborium::from_reader(bytes).map_err(|_| ShareDecodeError::Corrupt(NOT_A_SHARE))?;
        if v.version != SECRET_FORMAT_VERSION {
            return Err(ShareDecodeError::Version(v.version));
        }
        let s: SecretV1 =
            ciborium::from_reader(bytes).map_err(|_| ShareDecodeError::Corrupt(NOT_A_SHARE))?;
        match &s.share {
            ShareInner::Ecdsa(EcdsaShare::Cggmp24(_)) => {} // validated by the library on decode
            ShareInner::Bip340(f) => f.validate().map_err(ShareDecodeError::Inconsistent)?,
            ShareInner::Ed25519(f) => f.validate().map_err(ShareDecodeError::Inconsistent)?,
        }
        Ok(KeyShare {
            epoch: s.epoch,
            inner: s.share,
        })
    }

    /// Checks that this share is the one `header` describes.
    pub fn check_header(&self, header: &ShareHeader) -> Result<(), ShareDecodeError> {
        let own = self
            .header()
            .map_err(|_| ShareDecodeError::Inconsistent("no public description"))?;
        let checks: [(bool, &'static str); 9] = [
            (own.scheme == header.scheme, "scheme"),
            (own.backend == header.backend, "backend"),
            (
                own.public_key == header.public_key.to_ascii_lowercase(),
                "public key",
            ),
            (
                own.chain_code == header.chain_code.to_ascii_lowercase(),
                "chain code",
            ),
            (own.threshold == header.threshold, "threshold"),
            (own.parties == header.parties, "parties"),
            (own.party_index == header.party_index, "party index"),
            (own.epoch == header.epoch, "epoch"),
            (own.members == header.members, "members"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(ShareDecodeError::HeaderMismatch(what)),
            None => Ok(()),
        }
    }

    /// Whether two shares belong to the same key at the same epoch.
    pub fn same_key(&self, other: &KeyShare) -> bool {
        match (self.header(), other.header()) {
            (Ok(a), Ok(b)) => {
                a.scheme == b.scheme
                    && a.public_key == b.public_key
                    && a.chain_code == b.chain_code
                    && a.threshold == b.threshold
                    && a.parties == b.parties
            }
            _ => false,
        }
    }
}

fn frost_public_key<C: FrostSuite>(
    s: &FrostShare<C>,
    path: &DerivationPath,
) -> Result<Vec<u8>, crate::error::SessionError> {
    let point = crate::frost_hd::child_group_point(s, path)?;
    Ok(C::encode_public_key(&point)?)
}
