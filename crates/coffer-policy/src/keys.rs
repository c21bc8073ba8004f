//! Ed25519 public keys and signatures as the policy layer sees them: fixed-size byte
//! arrays that travel in JSON as lowercase hex, plus the `hex32` serde helper for hashes.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

/// A SHA-256 digest.
pub type Hash32 = [u8; 32];

/// Decodes exactly `N` bytes from lowercase hex (uppercase is refused so that the JSON form
/// of every value is unique).
pub(crate) fn decode_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], PolicyError> {
    let bad = || PolicyError::BadHex {
        what,
        expected_chars: N * 2,
    };
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// Serde helper for `[u8; 32]` fields as 64 lowercase hex characters:
/// `#[serde(with = "coffer_policy::hex32")]`.
pub mod hex32 {
    use super::*;

    /// Writes the bytes as lowercase hex.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Reads exactly 64 lowercase hex characters.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        decode_hex::<32>(&s, "hash").map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 verifying key (32 bytes); JSON: 64 lowercase hex characters.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature (64 bytes); JSON: 128 lowercase hex characters.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl PublicKey {
    /// Verifies `sig` over `msg` with strict Ed25519 rules (no small-order keys, canonical
    /// encodings).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), PolicyError> {
        let key =
            VerifyingKey::from_bytes(&self.0).map_err(|_| PolicyError::BadKey { key: *self })?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(msg, &sig)
            .map_err(|_| PolicyError::BadSignature { key: *self })
    }

    /// The first 8 hex characters, for messages and logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

/// The public key of a signing key.
pub fn public_key_of(sk: &SigningKey) -> PublicKey {
    PublicKey(sk.verifying_key().to_bytes())
}

/// Signs `msg` (used by the signing helpers of this crate).
pub(crate) fn sign_bytes(sk: &SigningKey, msg: &[u8]) -> Signature {
    use ed25519_dalek::Signer;
    Signature(sk.sign(msg).to_bytes())
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        decode_hex(s, "public key").map(PublicKey)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        decode_hex(s, "signature").map(Signature)
    }
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(PublicKey);
hex_serde!(Signature);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::sk;

    #[test]
    fn hex_forms_round_trip_and_refuse_bad_input() {
        let pk = public_key_of(&sk(1));
        let s = pk.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<PublicKey>().unwrap(), pk);
        assert_eq!(
            serde_json::from_str::<PublicKey>(&serde_json::to_string(&pk).unwrap()).unwrap(),
            pk
        );
        assert!(s.to_uppercase().parse::<PublicKey>().is_err());
        assert!(s[..62].parse::<PublicKey>().is_err());
        assert!(format!("{s}00").parse::<PublicKey>().is_err());
        assert!("zz".repeat(32).parse::<PublicKey>().is_err());
        assert!("é".repeat(32).parse::<PublicKey>().is_err());
        let sig = sign_bytes(&sk(1), b"m");
        assert_eq!(sig.to_string().parse::<Signature>().unwrap(), sig);
        assert!(format!("{sig:?}").contains(&sig.to_string()));
        assert!(serde_json::from_str::<Signature>("\"00\"").is_err());
        assert!(serde_json::from_str::<Signature>("17").is_err());
    }

    #[test]
    fn verify_is_strict() {
        let pk = public_key_of(&sk(2));
        let sig = sign_bytes(&sk(2), b"hello");
        pk.verify(b"hello", &sig).unwrap();
        assert!(matches!(
            pk.verify(b"hellO", &sig),
            Err(PolicyError::BadSignature { .. })
        ));
        let mut forged = sig;
        forged.0[5] ^= 1;
        assert!(pk.verify(b"hello", &forged).is_err());
        // The identity point (small order) is refused as a key or fails strictly.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert!(PublicKey(ident).verify(b"hello", &sig).is_err());
        assert!(PublicKey([0xff; 32]).verify(b"x", &sig).is_err());
    }
}
