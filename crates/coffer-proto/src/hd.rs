//! The public half of HD derivation for every scheme: a child's public key and chain code
//! from the group key and chain code alone (what `coffer ceremony derive` prints; no secret
//! is involved). Signing under a child lives with each backend.
//!
//! secp256k1 keys (ECDSA and BIP340) use BIP32 non-hardened derivation (SLIP-10 for
//! secp256k1 is BIP32) on the compressed group point; for BIP340 the FROST group key always
//! has an even y coordinate, so its x-only form determines the point. Ed25519 keys use the
//! Edwards derivation of `hd-wallet`. See docs/hd-derivation.md.

use generic_ec::curves::{Ed25519, Secp256k1};
use generic_ec::{Curve, Point};
use hd_wallet::{DeriveShift, Edwards, ExtendedPublicKey, NonHardenedIndex, Slip10};

use crate::error::{ArgumentError, SessionError};
use crate::path::DerivationPath;
use crate::scheme::Scheme;
use crate::share::KeyShare;

fn walk<E: Curve, H: DeriveShift<E>>(
    mut epub: ExtendedPublicKey<E>,
    path: &DerivationPath,
) -> Result<ExtendedPublicKey<E>, ArgumentError> {
    for i in path.indices() {
        let i = NonHardenedIndex::try_from(*i).map_err(|_| ArgumentError::InvalidPath {
            reason: "hardened step",
        })?;
        epub = H::derive_public_shift(&epub, i).child_public_key;
    }
    Ok(epub)
}

/// Derives the child at `path` from a group public key in Coffer's encoding for `scheme`.
/// Returns the child's public key (same encoding) and chain code.
pub fn derive_public(
    scheme: Scheme,
    public_key: &[u8],
    chain_code: [u8; 32],
    path: &DerivationPath,
) -> Result<(Vec<u8>, [u8; 32]), ArgumentError> {
    let bad = ArgumentError::InvalidPath {
        reason: "the public key is not a valid point for its scheme",
    };
    match scheme {
        Scheme::EcdsaSecp256k1 => {
            if public_key.len() != 33 {
                return Err(bad);
            }
            let point = Point::<Secp256k1>::from_bytes(public_key).map_err(|_| bad)?;
            let child = walk::<_, Slip10>(
                ExtendedPublicKey {
                    public_key: point,
                    chain_code,
                },
                path,
            )?;
            Ok((child.public_key.to_bytes(true).to_vec(), child.chain_code))
        }
        Scheme::SchnorrBip340 => {
            if public_key.len() != 32 {
                return Err(bad);
            }
            let mut compressed = [2u8; 33];
            compressed[1..].copy_from_slice(public_key);
            let point = Point::<Secp256k1>::from_bytes(compressed).map_err(|_| bad)?;
            let child = walk::<_, Slip10>(
                ExtendedPublicKey {
                    public_key: point,
                    chain_code,
                },
                path,
            )?;
            Ok((
                child.public_key.to_bytes(true)[1..].to_vec(),
                child.chain_code,
            ))
        }
        Scheme::Ed25519 => {
            if public_key.len() != 32 {
                return Err(bad);
            }
            let point = Point::<Ed25519>::from_bytes(public_key).map_err(|_| bad)?;
            let child = walk::<_, Edwards>(
                ExtendedPublicKey {
                    public_key: point,
                    chain_code,
                },
                path,
            )?;
            Ok((child.public_key.to_bytes(true).to_vec(), child.chain_code))
        }
    }
}

/// The chain code of the child at `path` (the key's own at `m`).
pub(crate) fn child_chain_code(
    share: &KeyShare,
    path: &DerivationPath,
) -> Result<[u8; 32], SessionError> {
    let root = share.public_key(&DerivationPath::root())?;
    Ok(derive_public(share.scheme(), &root, share.chain_code()?, path)?.1)
}
