//! Node identities: every signer (and the server, and every admin) holds an Ed25519 key that
//! signs what it sends; signers also hold an X25519 key that point-to-point payloads are
//! encrypted to. This module owns the key types, their public form ([`PublicIdentity`]), and
//! their encoding at rest (the caller encrypts the secret form).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// An Ed25519 public key, as 32 bytes (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeKey(pub [u8; 32]);

impl NodeKey {
    /// The key as an ed25519-dalek verifying key (fails for bytes that are not a point).
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadPublicKey)
    }

    /// Verifies `signature` over `message` (strict: no malleable or small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), IdentityError> {
        let key = self.verifying_key()?;
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .map_err(|_| IdentityError::BadSignature)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short form for logs and listings (first 8 bytes).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl core::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NodeKey({})", self.short())
    }
}

impl core::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl TryFrom<String> for NodeKey {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        parse_hex32(&s).map(NodeKey)
    }
}

impl From<NodeKey> for String {
    fn from(k: NodeKey) -> String {
        k.to_hex()
    }
}

impl core::str::FromStr for NodeKey {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(NodeKey)
    }
}

/// An X25519 public key (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SealKey(pub [u8; 32]);

impl core::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SealKey({})", hex::encode(&self.0[..8]))
    }
}

impl TryFrom<String> for SealKey {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        parse_hex32(&s).map(SealKey)
    }
}

impl From<SealKey> for String {
    fn from(k: SealKey) -> String {
        hex::encode(k.0)
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], IdentityError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| IdentityError::BadHex)?;
    Ok(out)
}

/// What a node tells others about itself: printed by `coffer signer init`, pinned by peers at
/// enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// A human label (not trusted for anything).
    pub name: String,
    /// Signs envelopes and authenticates the TLS connection.
    pub node_key: NodeKey,
    /// Receives encrypted point-to-point payloads.
    pub seal_key: SealKey,
}

/// A node's secret keys. Zeroized on drop; never printed.
pub struct Identity {
    name: String,
    signing: SigningKey,
    seal: x25519_dalek::StaticSecret,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("node_key", &self.node_key())
            .finish_non_exhaustive()
    }
}

/// Secret form at rest (CBOR); the store encrypts it.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct IdentitySecret {
    version: u8,
    name: String,
    signing: [u8; 32],
    seal: [u8; 32],
}

impl Identity {
    /// A fresh identity from the operating system's randomness.
    pub fn generate(name: &str) -> Self {
        let mut rng = rand_core::OsRng;
        Identity {
            name: name.to_string(),
            signing: SigningKey::generate(&mut rng),
            seal: x25519_dalek::StaticSecret::random_from_rng(rng),
        }
    }

    /// The node's label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 public key.
    pub fn node_key(&self) -> NodeKey {
        NodeKey(self.signing.verifying_key().to_bytes())
    }

    /// The X25519 public key.
    pub fn seal_key(&self) -> SealKey {
        SealKey(x25519_dalek::PublicKey::from(&self.seal).to_bytes())
    }

    /// The public identity to hand to peers.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            name: self.name.clone(),
            node_key: self.node_key(),
            seal_key: self.seal_key(),
        }
    }

    /// Signs `message` with the Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The Ed25519 signing key (for TLS).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The X25519 secret bytes (for opening sealed payloads).
    pub fn seal_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.seal.to_bytes())
    }

    /// Encodes the secret keys (the caller encrypts the result before it touches a disk).
    pub fn to_secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        let secret = IdentitySecret {
            version: 1,
            name: self.name.clone(),
            signing: self.signing.to_bytes(),
            seal: self.seal.to_bytes(),
        };
        let mut out = Zeroizing::new(Vec::new());
        ciborium::into_writer(&secret, &mut *out).map_err(|_| IdentityError::Encode)?;
        Ok(out)
    }

    /// Decodes what [`Identity::to_secret_bytes`] wrote.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let secret: IdentitySecret =
            ciborium::from_reader(bytes).map_err(|_| IdentityError::Decode)?;
        if secret.version != 1 {
            return Err(IdentityError::Decode);
        }
        Ok(Identity {
            name: secret.name.clone(),
            signing: SigningKey::from_bytes(&secret.signing),
            seal: x25519_dalek::StaticSecret::from(secret.seal),
        })
    }
}

/// Why an identity key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not 32 bytes of hex.
    #[error("a key must be 64 hex digits")]
    BadHex,
    /// Bytes that are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
    /// The secret form could not be written.
    #[error("could not encode the identity")]
    Encode,
    /// The secret form is not an identity this build reads.
    #[error("not an identity this build reads")]
    Decode,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secret_form_round_trips_and_signs() {
        let id = Identity::generate("a");
        let back = Identity::from_secret_bytes(&id.to_secret_bytes().unwrap()).unwrap();
        assert_eq!(back.public(), id.public());
        let sig = back.sign(b"hello");
        id.node_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            id.node_key().verify(b"hellO", &sig),
            Err(IdentityError::BadSignature)
        );
    }

    #[test]
    fn public_identity_json_round_trips_and_rejects_bad_hex() {
        let p = Identity::generate("b").public();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PublicIdentity>(&json).unwrap(), p);
        assert!(serde_json::from_str::<NodeKey>("\"zz\"").is_err());
    }
}
