//! Signature verification by implementations independent of the signing libraries:
//! libsecp256k1 (Bitcoin Core's library, through the `secp256k1` crate) for ECDSA and
//! BIP340, and `ed25519-dalek`'s strict verification for Ed25519. Coffer trusts a threshold
//! signature only after one of these accepts it.

use secp256k1::{ecdsa, schnorr, Message, PublicKey, XOnlyPublicKey, SECP256K1};

use crate::error::ArgumentError;
use crate::scheme::Scheme;

/// Why a verification request could not even be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyInputError {
    /// A length or encoding requirement of the scheme is not met.
    #[error(transparent)]
    Argument(#[from] ArgumentError),
    /// The public key bytes are not a valid key.
    #[error("{scheme} public key is not a valid point")]
    InvalidPublicKey {
        /// The scheme.
        scheme: &'static str,
    },
    /// Wrong public key length.
    #[error("{scheme} public key must be {expected} bytes, got {actual}")]
    PublicKeyLength {
        /// The scheme.
        scheme: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// Wrong signature length.
    #[error("signature must be 64 bytes, got {actual}")]
    SignatureLength {
        /// Given length.
        actual: usize,
    },
}

/// Checks the message length the scheme requires.
pub fn check_message(scheme: Scheme, message: &[u8]) -> Result<(), ArgumentError> {
    match scheme.message_len() {
        Some(n) if n != message.len() => Err(ArgumentError::MessageLength {
            scheme: scheme.name(),
            expected: n,
            actual: message.len(),
        }),
        _ => Ok(()),
    }
}

/// Verifies `signature` on `message` under `public_key` in Coffer's encodings. `Ok(false)`
/// is a well-formed but invalid signature (including a high-S ECDSA signature).
pub fn verify(
    scheme: Scheme,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, VerifyInputError> {
    check_message(scheme, message)?;
    if public_key.len() != scheme.public_key_len() {
        return Err(VerifyInputError::PublicKeyLength {
            scheme: scheme.name(),
            expected: scheme.public_key_len(),
            actual: public_key.len(),
        });
    }
    let sig: [u8; 64] = signature
        .try_into()
        .map_err(|_| VerifyInputError::SignatureLength {
            actual: signature.len(),
        })?;
    let bad_key = VerifyInputError::InvalidPublicKey {
        scheme: scheme.name(),
    };
    match scheme {
        Scheme::EcdsaSecp256k1 => {
            let pk = PublicKey::from_slice(public_key).map_err(|_| bad_key)?;
            let digest: [u8; 32] = message.try_into().map_err(|_| Bug32)?;
            let Ok(s) = ecdsa::Signature::from_compact(&sig) else {
                return Ok(false);
            };
            let mut normalized = s;
            normalized.normalize_s();
            if normalized != s {
                return Ok(false);
            }
            Ok(SECP256K1
                .verify_ecdsa(&Message::from_digest(digest), &s, &pk)
                .is_ok())
        }
        Scheme::SchnorrBip340 => {
            let pk = XOnlyPublicKey::from_slice(public_key).map_err(|_| bad_key)?;
            let digest: [u8; 32] = message.try_into().map_err(|_| Bug32)?;
            let Ok(s) = schnorr::Signature::from_slice(&sig) else {
                return Ok(false);
            };
            Ok(SECP256K1
                .verify_schnorr(&s, &Message::from_digest(digest), &pk)
                .is_ok())
        }
        Scheme::Ed25519 => {
            let pk_bytes: [u8; 32] = public_key.try_into().map_err(|_| bad_key.clone())?;
            let pk = ed25519_dalek::VerifyingKey::from_bytes(&pk_bytes).map_err(|_| bad_key)?;
            let s = ed25519_dalek::Signature::from_bytes(&sig);
            Ok(pk.verify_strict(message, &s).is_ok())
        }
    }
}

/// Length already checked by `check_message`; kept as a typed error rather than a panic.
struct Bug32;
impl From<Bug32> for VerifyInputError {
    fn from(_: Bug32) -> Self {
        VerifyInputError::Argument(ArgumentError::MessageLength {
            scheme: "secp256k1",
            expected: 32,
            actual: 0,
        })
    }
}

/// The recovery id (0 or 1) under which libsecp256k1 recovers `public_key` from a valid
/// signature, or `None` if neither does.
pub fn ecdsa_recovery_id(public_key: &[u8; 33], digest: &[u8; 32], rs: &[u8; 64]) -> Option<u8> {
    let pk = PublicKey::from_slice(public_key).ok()?;
    let msg = Message::from_digest(*digest);
    (0u8..2).find(|id| {
        ecdsa::RecoveryId::from_i32(i32::from(*id))
            .and_then(|rid| ecdsa::RecoverableSignature::from_compact(rs, rid))
            .and_then(|sig| SECP256K1.recover_ecdsa(&msg, &sig))
            .map(|recovered| recovered == pk)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_single_party_signatures_of_every_scheme() {
        let sk = secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pk = PublicKey::from_secret_key(SECP256K1, &sk);
        let digest = [9u8; 32];
        let sig = SECP256K1
            .sign_ecdsa(&Message::from_digest(digest), &sk)
            .serialize_compact();
        assert!(verify(Scheme::EcdsaSecp256k1, &pk.serialize(), &digest, &sig).unwrap());
        assert!(!verify(Scheme::EcdsaSecp256k1, &pk.serialize(), &[8u8; 32], &sig).unwrap());

        let kp = secp256k1::Keypair::from_secret_key(SECP256K1, &sk);
        let (x, _) = kp.x_only_public_key();
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(digest), &kp);
        assert!(verify(Scheme::SchnorrBip340, &x.serialize(), &digest, sig.as_ref()).unwrap());

        use ed25519_dalek::Signer;
        let esk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        let esig = esk.sign(b"");
        assert!(verify(
            Scheme::Ed25519,
            esk.verifying_key().as_bytes(),
            b"",
            &esig.to_bytes()
        )
        .unwrap());
        assert!(!verify(
            Scheme::Ed25519,
            esk.verifying_key().as_bytes(),
            b"x",
            &esig.to_bytes()
        )
        .unwrap());
    }

    #[test]
    fn high_s_ecdsa_is_refused() {
        let sk = secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pk = PublicKey::from_secret_key(SECP256K1, &sk);
        let digest = [9u8; 32];
        let sig = SECP256K1
            .sign_ecdsa(&Message::from_digest(digest), &sk)
            .serialize_compact();
        // s' = n - s
        let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        let mut s_high = [0u8; 32];
        let mut borrow = 0i16;
        for k in (0..32).rev() {
            let v = i16::from(n[k]) - i16::from(sig[32 + k]) - borrow;
            borrow = i16::from(v < 0);
            s_high[k] = (v + 256 * borrow) as u8;
        }
        let mut high = sig;
        high[32..].copy_from_slice(&s_high);
        assert!(!verify(Scheme::EcdsaSecp256k1, &pk.serialize(), &digest, &high).unwrap());
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(verify(Scheme::EcdsaSecp256k1, &[2u8; 33], &[0u8; 31], &[0u8; 64]).is_err());
        assert!(verify(Scheme::SchnorrBip340, &[2u8; 33], &[0u8; 32], &[0u8; 64]).is_err());
        assert!(verify(Scheme::Ed25519, &[0u8; 32], b"", &[0u8; 63]).is_err());
    }
}
