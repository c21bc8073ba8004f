//! HD derivation for FROST key packages: the second sanctioned piece of Coffer's own
//! cryptographic glue (specified in `docs/hd-derivation.md`).
//!
//! The additive shift `d` of a non-hardened child is computed by `hd-wallet` (BIP32/SLIP-10
//! for secp256k1, the Edwards derivation for Ed25519) from the group key and chain code;
//! every party adds `d` to its signing share and `d*G` to every verifying share and to the
//! group key. Lagrange coefficients sum to one, so the shares then share `x + d`, the child's
//! secret, without anyone learning either. The arithmetic is done with `generic-ec`, and the
//! results re-enter FROST only through the library's own deserializers, which check them.

use std::collections::BTreeMap;

use frost_core::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_core::VerifyingKey;
use generic_ec::{Point, Scalar};
use hd_wallet::{DeriveShift, ExtendedPublicKey, NonHardenedIndex};

use crate::error::{ArgumentError, Bug, SessionError};
use crate::frost::{FrostShare, FrostSuite};
use crate::path::DerivationPath;

/// The additive shift of a child and its extended public key.
type Shift<C> = (
    Scalar<<C as FrostSuite>::Curve>,
    ExtendedPublicKey<<C as FrostSuite>::Curve>,
);

/// The additive shift and child group point (library encoding) for `path` from a group key.
pub(crate) fn shift<C: FrostSuite>(
    group_point: &[u8],
    chain_code: [u8; 32],
    path: &DerivationPath,
) -> Result<Shift<C>, SessionError> {
    let parent = Point::<C::Curve>::from_bytes(group_point)
        .map_err(|_| Bug("group key is not a curve point"))?;
    let mut epub = ExtendedPublicKey {
        public_key: parent,
        chain_code,
    };
    let mut total = Scalar::<C::Curve>::zero();
    for i in path.indices() {
        let index = NonHardenedIndex::try_from(*i).map_err(|_| ArgumentError::InvalidPath {
            reason: "hardened step",
        })?;
        let d = <C::Hd as DeriveShift<C::Curve>>::derive_public_shift(&epub, index);
        total += d.shift;
        epub = d.child_public_key;
    }
    Ok((total, epub))
}

fn scalar_bytes<C: FrostSuite>(s: &Scalar<C::Curve>) -> Vec<u8> {
    if C::SCALAR_LITTLE_ENDIAN {
        s.to_le_bytes().as_ref().to_vec()
    } else {
        s.to_be_bytes().as_ref().to_vec()
    }
}

fn scalar_from<C: FrostSuite>(bytes: &[u8]) -> Result<Scalar<C::Curve>, Bug> {
    if C::SCALAR_LITTLE_ENDIAN {
        Scalar::from_le_bytes(bytes)
    } else {
        Scalar::from_be_bytes(bytes)
    }
    .map_err(|_| Bug("share scalar does not decode"))
}

fn shifted_point<C: FrostSuite>(encoded: &[u8], d_g: &Point<C::Curve>) -> Result<Vec<u8>, Bug> {
    let p = Point::<C::Curve>::from_bytes(encoded).map_err(|_| Bug("point does not decode"))?;
    Ok((p + d_g).to_bytes(true).as_ref().to_vec())
}

/// The key package and public key package of the child at `path` (the share's own at `m`).
pub(crate) fn derive<C: FrostSuite>(
    share: &FrostShare<C>,
    path: &DerivationPath,
) -> Result<(KeyPackage<C>, PublicKeyPackage<C>), SessionError> {
    if path.is_root() {
        return Ok((share.key_package.clone(), share.public_key_package.clone()));
    }
    let (kp, pkp) = C::hd_parent(share.key_package.clone(), share.public_key_package.clone());
    let group = pkp
        .verifying_key()
        .serialize()
        .map_err(|_| Bug("group key does not serialize"))?;
    let (d, child) = shift::<C>(&group, share.chain_code, path)?;
    let d_g = Point::generator() * d;

    let mut secret = scalar_from::<C>(&kp.signing_share().serialize())?;
    secret += d;
    let mut secret_bytes = zeroize::Zeroizing::new(scalar_bytes::<C>(&secret));
    zeroize::Zeroize::zeroize(&mut secret);
    let signing_share =
        SigningShare::<C>::deserialize(&secret_bytes).map_err(|_| Bug("child share"))?;
    zeroize::Zeroize::zeroize(&mut *secret_bytes);

    let child_bytes = child.public_key.to_bytes(true).as_ref().to_vec();
    let verifying_key =
        VerifyingKey::<C>::deserialize(&child_bytes).map_err(|_| Bug("child key"))?;
    let mut verifying_shares = BTreeMap::new();
    for (id, vs) in pkp.verifying_shares() {
        let enc = vs.serialize().map_err(|_| Bug("verifying share"))?;
        let shifted = VerifyingShare::<C>::deserialize(&shifted_point::<C>(&enc, &d_g)?)
            .map_err(|_| Bug("child verifying share"))?;
        verifying_shares.insert(*id, shifted);
    }
    let own_vs = *verifying_shares
        .get(kp.identifier())
        .ok_or(Bug("own verifying share missing"))?;
    let key_package = KeyPackage::new(
        *kp.identifier(),
        signing_share,
        own_vs,
        verifying_key,
        *kp.min_signers(),
    );
    let public_key_package =
        PublicKeyPackage::new(verifying_shares, verifying_key, Some(*kp.min_signers()));
    Ok((key_package, public_key_package))
}

/// The group point HD derivation starts from, in the library's encoding.
fn parent_point<C: FrostSuite>(share: &FrostShare<C>) -> Result<Vec<u8>, SessionError> {
    let (_, pkp) = C::hd_parent(share.key_package.clone(), share.public_key_package.clone());
    Ok(pkp
        .verifying_key()
        .serialize()
        .map_err(|_| Bug("group key does not serialize"))?)
}

/// The child group point at `path` in the library's encoding (no secret involved).
pub(crate) fn child_group_point<C: FrostSuite>(
    share: &FrostShare<C>,
    path: &DerivationPath,
) -> Result<Vec<u8>, SessionError> {
    if path.is_root() {
        return Ok(share.group_point()?);
    }
    let (_, child) = shift::<C>(&parent_point(share)?, share.chain_code, path)?;
    Ok(child.public_key.to_bytes(true).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::{Bip340, Ed25519, ShareInner};
    use crate::{ceremony, primes::PrimeSource, GroupParams};
    use hd_wallet::{ExtendedKeyPair, ExtendedSecretKey, HdWallet};

    fn shares<C: FrostSuite>(
        pick: impl Fn(ShareInner) -> Option<FrostShare<C>>,
    ) -> Vec<FrostShare<C>> {
        let g = GroupParams::new(2, 3).unwrap();
        ceremony::keygen(C::SCHEME, g, PrimeSource::Generate)
            .unwrap()
            .into_iter()
            .map(|s| pick(s.inner).unwrap())
            .collect()
    }

    fn secret_of<C: FrostSuite>(kps: &[KeyPackage<C>]) -> generic_ec::SecretScalar<C::Curve> {
        // Test-only reconstruction, to check the glue against the secret-side derivation.
        let key = frost_core::keys::reconstruct(kps).unwrap();
        let bytes = key.serialize();
        let mut s = scalar_from::<C>(&bytes).unwrap();
        generic_ec::SecretScalar::new(&mut s)
    }

    /// The shifted key packages share exactly the secret that `hd-wallet`'s *secret-side*
    /// derivation gives for the reconstructed root secret, and their group key is its
    /// public key.
    fn glue_matches_secret_side_derivation<C: FrostSuite>(shares: Vec<FrostShare<C>>) {
        let (root_kps, root_pkp): (Vec<_>, Vec<_>) = shares
            .iter()
            .take(2)
            .map(|s| C::hd_parent(s.key_package.clone(), s.public_key_package.clone()))
            .unzip();
        let root = secret_of::<C>(&root_kps);
        assert_eq!(
            Point::<C::Curve>::generator() * &root,
            Point::<C::Curve>::from_bytes(root_pkp[0].verifying_key().serialize().unwrap())
                .unwrap()
        );
        for path in ["m/0", "m/0/7", "m/3/1/4/1/5"] {
            let path: DerivationPath = path.parse().unwrap();
            let mut pair = ExtendedKeyPair::from(ExtendedSecretKey {
                secret_key: root.clone(),
                chain_code: shares[0].chain_code,
            });
            for i in path.indices() {
                pair = <C::Hd as HdWallet<C::Curve>>::derive_child_key_pair(
                    &pair,
                    hd_wallet::ChildIndex::NonHardened(NonHardenedIndex::try_from(*i).unwrap()),
                );
            }
            let derived: Vec<_> = shares.iter().map(|s| derive(s, &path).unwrap()).collect();
            for pair_of_parties in [[0usize, 1], [1, 2], [0, 2]] {
                let kps: Vec<_> = pair_of_parties
                    .iter()
                    .map(|k| derived[*k].0.clone())
                    .collect();
                let child = secret_of::<C>(&kps);
                assert_eq!(
                    child.as_ref(),
                    pair.secret_key().secret_key.as_ref(),
                    "{path}"
                );
            }
            let vk = derived[0].1.verifying_key().serialize().unwrap();
            assert_eq!(
                vk,
                pair.public_key().public_key.to_bytes(true).to_vec(),
                "{path}"
            );
            assert_eq!(child_group_point(&shares[2], &path).unwrap(), vk);
        }
    }

    #[test]
    fn bip340_key_package_shift_matches_secret_side_derivation() {
        glue_matches_secret_side_derivation::<Bip340>(shares(|s| match s {
            ShareInner::Bip340(f) => Some(f),
            _ => None,
        }));
    }

    #[test]
    fn ed25519_key_package_shift_matches_secret_side_derivation() {
        glue_matches_secret_side_derivation::<Ed25519>(shares(|s| match s {
            ShareInner::Ed25519(f) => Some(f),
            _ => None,
        }));
    }
}
