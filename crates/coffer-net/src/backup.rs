//! Share backup kits and the documents that say where they may be encrypted to. This module
//! owns the kit's wire format (JSON, versioned), its HPKE encryption to an offline recovery
//! key, the signer's signature over it, and the admin-signed recovery-key document; it does
//! not know what the plaintext holds (that is the signer's business, `coffer_signer::backup`).
//!
//! # Who holds what
//!
//! Each signer's share of a key is backed up to that share's *own* recovery key, an X25519
//! key pair made offline and held by a different person per signer. Opening a vault key
//! from backups therefore needs a threshold of kits *and* of their recovery keys. Which
//! recovery key belongs to which signer is not the server's word: it is a
//! [`SignedRecoveryKeys`] document, signed by a quorum of the admin keys the signers pinned
//! for the key, which each signer checks before it encrypts anything.
//!
//! # The kit
//!
//! ```text
//! { "header": { version, key_id, vault_id, scheme, party_index, epoch, group_public_key,
//!               signer, recovery_key, created_at },
//!   "encapped_key": hex(32), "ciphertext": hex, "signature": hex(64) }
//! ```
//!
//! The ciphertext is HPKE (RFC 9180, base mode, X25519-HKDF-SHA256, HKDF-SHA256,
//! ChaCha20-Poly1305) to `recovery_key`, with info [`KIT_HPKE_INFO`] and, as associated data,
//! a domain string and the header's canonical CBOR encoding: every public field is bound to
//! the ciphertext. The signature is the signer's identity key (Ed25519) over a domain string
//! and the SHA-256 of the header's encoding, the encapsulated key and the ciphertext, so
//! anyone holding the signer's pinned node key checks a kit without the recovery secret.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

use coffer_proto::scheme::Scheme;

use crate::envelope::CheckedOsRng;
use crate::identity::{Identity, NodeKey};
use crate::roster::AdminSignature;

/// The kit format version this build writes and reads.
pub const KIT_VERSION: u8 = 1;
/// The recovery-key document version.
pub const RECOVERY_KEYS_VERSION: u8 = 1;
/// Largest kit file accepted, in bytes (a CGGMP share is tens of KiB; hex doubles it).
pub const MAX_KIT_LEN: usize = 4 * 1024 * 1024;
/// Longest key or vault id.
pub const MAX_ID_LEN: usize = 64;
/// Most holders a recovery-key document may list.
pub const MAX_HOLDERS: usize = crate::roster::MAX_SIGNERS;
/// Longest holder name.
pub const MAX_HOLDER_NAME: usize = 64;
/// HPKE info string of kits.
pub const KIT_HPKE_INFO: &[u8] = b"coffer/backup-kit/v1";

const KIT_AAD_DOMAIN: &[u8] = b"coffer/backup-kit/aad/v1\0";
const KIT_SIG_DOMAIN: &[u8] = b"coffer/backup-kit/sig/v1\0";
const RECOVERY_KEYS_DOMAIN: &[u8] = b"coffer/recovery-keys/v1\0";
const MAX_CIPHERTEXT: usize = MAX_KIT_LEN / 2;

/// Why a kit could not be made, read, checked or opened. Never carries secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// Larger than [`MAX_KIT_LEN`].
    #[error("a backup kit of {len} bytes exceeds the {MAX_KIT_LEN}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not a kit (truncated, not JSON, a missing or unknown field).
    #[error("not a backup kit: {0}")]
    Malformed(String),
    /// A kit of a format version this build does not read.
    #[error("unsupported backup kit version {0} (this build reads version {KIT_VERSION})")]
    Version(u8),
    /// A header field is out of range.
    #[error("backup kit header is invalid: {0}")]
    BadHeader(&'static str),
    /// The signature does not verify under the signer key the header names: the kit was
    /// altered after the signer made it, or was not made by that signer.
    #[error(
        "backup kit signature does not verify under signer {signer}: the kit was altered or forged"
    )]
    BadSignature {
        /// The signer the header names.
        signer: String,
    },
    /// The recovery key offered is not the one the kit was encrypted to.
    #[error("this recovery key ({offered}) is not the kit's ({expected})")]
    WrongRecoveryKey {
        /// The kit's recovery public key (hex).
        expected: String,
        /// The offered key's public part (hex).
        offered: String,
    },
    /// The ciphertext does not open (altered, or its header changed).
    #[error("backup kit does not decrypt: its ciphertext or header was altered")]
    Decrypt,
    /// Encryption failed (a bad recovery public key).
    #[error("cannot encrypt to recovery key {0}: not a valid X25519 public key")]
    BadRecoveryKey(String),
    /// The operating system's random generator failed.
    #[error("the random generator failed; nothing was encrypted")]
    Randomness,
    /// A bug: encoding a well-formed value failed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why a recovery-key document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryKeysError {
    /// Not a document of this format.
    #[error("not a recovery-key document: {0}")]
    Malformed(String),
    /// The document is inconsistent.
    #[error("recovery-key document is invalid: {0}")]
    Invalid(&'static str),
    /// It names another key.
    #[error("the recovery-key document is for key {found}, not {expected}")]
    OtherKey {
        /// The key asked about.
        expected: String,
        /// The key it names.
        found: String,
    },
    /// Too few valid signatures from the pinned admins.
    #[error("recovery-key document carries {valid} valid signatures from the pinned admins, {needed} needed")]
    Quorum {
        /// Valid signatures by distinct pinned admins.
        valid: usize,
        /// The threshold.
        needed: usize,
    },
    /// The document lists no recovery key for this signer.
    #[error("the recovery-key document names no recovery key for signer {0}")]
    NotListed(String),
    /// A bug: encoding failed.
    #[error("recovery-key document could not be encoded")]
    Encode,
}

/// An X25519 recovery public key (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecoveryPublicKey(pub [u8; 32]);

impl RecoveryPublicKey {
    /// Hex encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl core::fmt::Debug for RecoveryPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RecoveryPublicKey({})", self.to_hex())
    }
}

impl core::fmt::Display for RecoveryPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl TryFrom<String> for RecoveryPublicKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl core::str::FromStr for RecoveryPublicKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|_| "recovery key: not hex".to_string())?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "recovery key: not 32 bytes".to_string())?;
        Ok(RecoveryPublicKey(arr))
    }
}

impl From<RecoveryPublicKey> for String {
    fn from(k: RecoveryPublicKey) -> String {
        k.to_hex()
    }
}

/// An offline recovery key pair. The secret is wiped on drop and never printed.
pub struct RecoverySecret {
    secret: Zeroizing<[u8; 32]>,
    public: RecoveryPublicKey,
}

impl core::fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecoverySecret")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl RecoverySecret {
    /// Makes a fresh key pair from the operating system's generator.
    pub fn generate() -> Result<Self, KitError> {
        let mut rng = CheckedOsRng { failed: false };
        let (sk, _) = X25519HkdfSha256::gen_keypair(&mut rng);
        if rng.failed {
            return Err(KitError::Randomness);
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        sk.write_exact(&mut secret[..]);
        Self::from_bytes(&secret)
    }

    /// The key pair of a 32-byte X25519 secret.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KitError> {
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| KitError::Internal("not an X25519 secret"))?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        let mut public = [0u8; 32];
        pk.write_exact(&mut public);
        Ok(RecoverySecret {
            secret: Zeroizing::new(*bytes),
            public: RecoveryPublicKey(public),
        })
    }

    /// The secret bytes (for writing the key file).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }

    /// The public part.
    pub fn public(&self) -> RecoveryPublicKey {
        self.public
    }
}

/// The public description of a kit, carried in clear and bound to the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitHeader {
    /// Format version ([`KIT_VERSION`]).
    pub version: u8,
    /// The key backed up.
    pub key_id: String,
    /// Its vault, when the caller named one.
    pub vault_id: Option<String>,
    /// The key's scheme.
    pub scheme: Scheme,
    /// The backed-up share's party index.
    pub party_index: u16,
    /// The share's epoch (a refresh makes older kits useless).
    pub epoch: u64,
    /// The group public key (hex, Coffer's encoding).
    pub group_public_key: String,
    /// The signer that made the kit (its identity key signs it).
    pub signer: NodeKey,
    /// The recovery key the share is encrypted to.
    pub recovery_key: RecoveryPublicKey,
    /// When the kit was made (Unix seconds).
    pub created_at: i64,
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl KitHeader {
    /// Checks every field's range.
    pub fn check(&self) -> Result<(), KitError> {
        if self.version != KIT_VERSION {
            return Err(KitError::Version(self.version));
        }
        if !valid_id(&self.key_id) {
            return Err(KitError::BadHeader("key id"));
        }
        if self
            .vault_id
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_ID_LEN)
        {
            return Err(KitError::BadHeader("vault id"));
        }
        if u32::from(self.party_index) >= u32::from(coffer_proto::ids::MAX_PARTIES) {
            return Err(KitError::BadHeader("party index"));
        }
        let pk = hex::decode(&self.group_public_key)
            .map_err(|_| KitError::BadHeader("group public key is not hex"))?;
        if !(32..=33).contains(&pk.len()) {
            return Err(KitError::BadHeader("group public key length"));
        }
        if self.signer.verifying_key().is_err() {
            return Err(KitError::BadHeader("signer key is not an Ed25519 point"));
        }
        Ok(())
    }

    /// The canonical encoding: CBOR of the header.
    fn encode(&self) -> Result<Vec<u8>, KitError> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).map_err(|_| KitError::Internal("header"))?;
        Ok(out)
    }

    fn aad(&self) -> Result<Vec<u8>, KitError> {
        let mut a = KIT_AAD_DOMAIN.to_vec();
        a.extend_from_slice(&self.encode()?);
        Ok(a)
    }
}

/// A backup kit: header in clear, HPKE ciphertext, the signer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kit {
    /// The public parts.
    pub header: KitHeader,
    /// HPKE encapsulated key (hex).
    #[serde(with = "hex_array")]
    pub encapped_key: [u8; 32],
    /// HPKE ciphertext (hex).
    #[serde(with = "hex_vec")]
    pub ciphertext: Vec<u8>,
    /// The signer's Ed25519 signature (hex).
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

fn signed_bytes(header: &KitHeader, encapped: &[u8; 32], ct: &[u8]) -> Result<Vec<u8>, KitError> {
    let h = header.encode()?;
    let mut d = Sha256::new();
    d.update((h.len() as u64).to_be_bytes());
    d.update(&h);
    d.update(encapped);
    d.update(ct);
    let mut out = KIT_SIG_DOMAIN.to_vec();
    out.extend_from_slice(&d.finalize());
    Ok(out)
}

impl Kit {
    /// Encrypts `plaintext` to the header's recovery key and signs the result with
    /// `identity`, which must be the header's signer.
    pub fn seal(identity: &Identity, header: KitHeader, plaintext: &[u8]) -> Result<Kit, KitError> {
        header.check()?;
        if header.signer != identity.node_key() {
            return Err(KitError::Internal("the kit names another signer"));
        }
        let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&header.recovery_key.0)
            .map_err(|_| KitError::BadRecoveryKey(header.recovery_key.to_hex()))?;
        let aad = header.aad()?;
        let mut rng = CheckedOsRng { failed: false };
        let sealed = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &pk,
            KIT_HPKE_INFO,
            plaintext,
            &aad,
            &mut rng,
        );
        if rng.failed {
            return Err(KitError::Randomness);
        }
        let (encapped, ciphertext) =
            sealed.map_err(|_| KitError::BadRecoveryKey(header.recovery_key.to_hex()))?;
        let mut encapped_key = [0u8; 32];
        encapped.write_exact(&mut encapped_key);
        let signature = identity.sign(&signed_bytes(&header, &encapped_key, &ciphertext)?);
        Ok(Kit {
            header,
            encapped_key,
            ciphertext,
            signature,
        })
    }

    /// Decodes a kit file (hostile bytes: bounded, never panics) and checks its header. The
    /// signature is checked by [`Kit::verify_signature`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Kit, KitError> {
        if bytes.len() > MAX_KIT_LEN {
            return Err(KitError::TooLarge { len: bytes.len() });
        }
        // Peek at the version so that a future format gives a clear error.
        #[derive(Deserialize)]
        struct Peek {
            header: PeekHeader,
        }
        #[derive(Deserialize)]
        struct PeekHeader {
            version: u8,
        }
        let peek: Peek =
            serde_json::from_slice(bytes).map_err(|e| KitError::Malformed(e.to_string()))?;
        if peek.header.version != KIT_VERSION {
            return Err(KitError::Version(peek.header.version));
        }
        let kit: Kit =
            serde_json::from_slice(bytes).map_err(|e| KitError::Malformed(e.to_string()))?;
        kit.header.check()?;
        if kit.ciphertext.len() > MAX_CIPHERTEXT {
            return Err(KitError::Malformed("ciphertext too large".into()));
        }
        Ok(kit)
    }

    /// The kit file's bytes (pretty JSON).
    pub fn to_bytes(&self) -> Result<Vec<u8>, KitError> {
        serde_json::to_vec_pretty(self).map_err(|_| KitError::Internal("kit"))
    }

    /// Checks the signature under the signer key the header names. The caller must also
    /// check that this key is the pinned one of the share's party.
    pub fn verify_signature(&self) -> Result<(), KitError> {
        let msg = signed_bytes(&self.header, &self.encapped_key, &self.ciphertext)?;
        self.header
            .signer
            .verify(&msg, &self.signature)
            .map_err(|_| KitError::BadSignature {
                signer: self.header.signer.to_hex(),
            })
    }

    /// Checks the signature, then decrypts with `recovery`. The plaintext is wiped on drop.
    pub fn open(&self, recovery: &RecoverySecret) -> Result<Zeroizing<Vec<u8>>, KitError> {
        self.verify_signature()?;
        if recovery.public != self.header.recovery_key {
            return Err(KitError::WrongRecoveryKey {
                expected: self.header.recovery_key.to_hex(),
                offered: recovery.public.to_hex(),
            });
        }
        // The hpke private key wraps x25519-dalek's StaticSecret, which zeroizes on drop.
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&recovery.secret[..])
            .map_err(|_| KitError::Internal("recovery secret"))?;
        let encapped = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&self.encapped_key)
            .map_err(|_| KitError::Decrypt)?;
        let aad = self.header.aad()?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &encapped,
            KIT_HPKE_INFO,
            &self.ciphertext,
            &aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| KitError::Decrypt)
    }
}

/// Fuzzing hook, not part of the API: decodes hostile bytes as a kit and checks its
/// signature; tells whether both passed.
#[doc(hidden)]
pub fn fuzz_decode_kit(bytes: &[u8]) -> bool {
    Kit::from_bytes(bytes).is_ok_and(|k| k.verify_signature().is_ok())
}

/// One signer's recovery key and the person who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryHolder {
    /// The signer whose share is encrypted to this key.
    pub signer: NodeKey,
    /// Who holds the recovery secret (a label for the ceremony record).
    pub holder: String,
    /// The recovery public key.
    pub recovery_key: RecoveryPublicKey,
}

/// Which recovery key each signer of a key encrypts its backup to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryKeys {
    /// Format version ([`RECOVERY_KEYS_VERSION`]).
    pub version: u8,
    /// The key the document is for.
    pub key_id: String,
    /// One entry per signer.
    pub holders: Vec<RecoveryHolder>,
}

/// A recovery-key document with admin signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecoveryKeys {
    /// The document.
    pub document: RecoveryKeys,
    /// Signatures by admins over [`RecoveryKeys::signing_bytes`].
    pub signatures: Vec<AdminSignature>,
}

impl RecoveryKeys {
    /// Checks the document's consistency: a valid key id, 1..=16 holders, distinct signers,
    /// distinct recovery keys (one person's key never opens two shares), distinct holders.
    pub fn check(&self) -> Result<(), RecoveryKeysError> {
        if self.version != RECOVERY_KEYS_VERSION {
            return Err(RecoveryKeysError::Invalid("unsupported version"));
        }
        if !valid_id(&self.key_id) {
            return Err(RecoveryKeysError::Invalid("key id"));
        }
        if self.holders.is_empty() || self.holders.len() > MAX_HOLDERS {
            return Err(RecoveryKeysError::Invalid("1 to 16 holders"));
        }
        for (i, h) in self.holders.iter().enumerate() {
            if h.holder.is_empty() || h.holder.len() > MAX_HOLDER_NAME {
                return Err(RecoveryKeysError::Invalid("holder name of 1 to 64 bytes"));
            }
            for other in &self.holders[..i] {
                if other.signer == h.signer {
                    return Err(RecoveryKeysError::Invalid("a signer appears twice"));
                }
                if other.recovery_key == h.recovery_key {
                    return Err(RecoveryKeysError::Invalid(
                        "two signers share a recovery key: each share needs its own",
                    ));
                }
                if other.holder == h.holder {
                    return Err(RecoveryKeysError::Invalid(
                        "one holder for two recovery keys: each needs its own person",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The bytes admins sign: a domain separator and the SHA-256 of the CBOR document.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, RecoveryKeysError> {
        let mut cbor = Vec::new();
        ciborium::into_writer(self, &mut cbor).map_err(|_| RecoveryKeysError::Encode)?;
        let mut out = RECOVERY_KEYS_DOMAIN.to_vec();
        out.extend_from_slice(&Sha256::digest(&cbor));
        Ok(out)
    }

    /// An admin's signature over this document.
    pub fn sign_as_admin(&self, admin: &Identity) -> Result<AdminSignature, RecoveryKeysError> {
        Ok(AdminSignature {
            admin: admin.node_key(),
            signature: admin.sign(&self.signing_bytes()?),
        })
    }
}

impl SignedRecoveryKeys {
    /// Checks the document for `key_id` against the pinned admins and quorum, and returns
    /// the recovery key it names for `signer`.
    pub fn recovery_key_for(
        &self,
        key_id: &str,
        signer: &NodeKey,
        admins: &[NodeKey],
        threshold: u16,
    ) -> Result<RecoveryPublicKey, RecoveryKeysError> {
        self.verify(key_id, admins, threshold)?;
        self.document
            .holders
            .iter()
            .find(|h| h.signer == *signer)
            .map(|h| h.recovery_key)
            .ok_or_else(|| RecoveryKeysError::NotListed(signer.to_hex()))
    }

    /// Checks the document for `key_id`: consistent, and signed by at least `threshold`
    /// distinct admins of `admins`.
    pub fn verify(
        &self,
        key_id: &str,
        admins: &[NodeKey],
        threshold: u16,
    ) -> Result<(), RecoveryKeysError> {
        self.document.check()?;
        if self.document.key_id != key_id {
            return Err(RecoveryKeysError::OtherKey {
                expected: key_id.to_string(),
                found: self.document.key_id.clone(),
            });
        }
        let needed = usize::from(threshold);
        if needed == 0 {
            return Err(RecoveryKeysError::Invalid("no admin quorum is pinned"));
        }
        let msg = self.document.signing_bytes()?;
        let mut seen: Vec<NodeKey> = Vec::new();
        for s in &self.signatures {
            if admins.contains(&s.admin)
                && !seen.contains(&s.admin)
                && s.admin.verify(&msg, &s.signature).is_ok()
            {
                seen.push(s.admin);
            }
        }
        if seen.len() < needed {
            return Err(RecoveryKeysError::Quorum {
                valid: seen.len(),
                needed,
            });
        }
        Ok(())
    }
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(b: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes")))
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(signer: &Identity, recovery: &RecoverySecret) -> KitHeader {
        KitHeader {
            version: KIT_VERSION,
            key_id: "k-0011".into(),
            vault_id: Some("v-1".into()),
            scheme: Scheme::Ed25519,
            party_index: 1,
            epoch: 3,
            group_public_key: hex::encode([9u8; 32]),
            signer: signer.node_key(),
            recovery_key: recovery.public(),
            created_at: 1_700_000_000,
        }
    }

    fn kit() -> (Identity, RecoverySecret, Kit) {
        let signer = Identity::generate("signer-2");
        let recovery = RecoverySecret::generate().unwrap();
        let kit = Kit::seal(&signer, header(&signer, &recovery), b"the share").unwrap();
        (signer, recovery, kit)
    }

    #[test]
    fn a_kit_round_trips_and_opens_with_its_recovery_key_only() {
        let (_, recovery, kit) = kit();
        let back = Kit::from_bytes(&kit.to_bytes().unwrap()).unwrap();
        assert_eq!(back, kit);
        back.verify_signature().unwrap();
        assert_eq!(&back.open(&recovery).unwrap()[..], b"the share");
        let other = RecoverySecret::generate().unwrap();
        assert!(matches!(
            back.open(&other),
            Err(KitError::WrongRecoveryKey { .. })
        ));
        // The clear text is not in the file.
        let text = String::from_utf8(kit.to_bytes().unwrap()).unwrap();
        assert!(!text.contains(&hex::encode(b"the share")));
    }

    #[test]
    fn every_header_field_is_bound_to_the_signature_and_the_ciphertext() {
        let (signer, recovery, kit) = kit();
        let tampers: [fn(&mut KitHeader); 8] = [
            |h| h.key_id = "k-0012".into(),
            |h| h.vault_id = Some("v-2".into()),
            |h| h.vault_id = None,
            |h| h.scheme = Scheme::SchnorrBip340,
            |h| h.party_index = 0,
            |h| h.epoch = 4,
            |h| h.group_public_key = hex::encode([8u8; 32]),
            |h| h.created_at += 1,
        ];
        for t in tampers {
            let mut k = kit.clone();
            t(&mut k.header);
            assert!(matches!(
                k.verify_signature(),
                Err(KitError::BadSignature { .. })
            ));
            // Re-signed by the same signer (a signer cannot relabel a ciphertext either):
            // the header is the AEAD's associated data.
            let resigned = Kit {
                signature: signer
                    .sign(&signed_bytes(&k.header, &k.encapped_key, &k.ciphertext).unwrap()),
                ..k
            };
            assert_eq!(resigned.open(&recovery), Err(KitError::Decrypt));
        }
        let mut k = kit.clone();
        k.ciphertext[0] ^= 1;
        assert!(matches!(
            k.verify_signature(),
            Err(KitError::BadSignature { .. })
        ));
        // Another signer's key in the header: the signature no longer verifies.
        let mut k = kit;
        k.header.signer = Identity::generate("x").node_key();
        assert!(matches!(
            k.verify_signature(),
            Err(KitError::BadSignature { .. })
        ));
    }

    #[test]
    fn truncated_and_future_kits_are_refused_with_typed_errors() {
        let (_, _, kit) = kit();
        let bytes = kit.to_bytes().unwrap();
        for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 2] {
            assert!(matches!(
                Kit::from_bytes(&bytes[..cut]),
                Err(KitError::Malformed(_))
            ));
        }
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["header"]["version"] = 2.into();
        assert_eq!(
            Kit::from_bytes(&serde_json::to_vec(&v).unwrap()),
            Err(KitError::Version(2))
        );
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["header"]["key_id"] = "../etc".into();
        assert_eq!(
            Kit::from_bytes(&serde_json::to_vec(&v).unwrap()),
            Err(KitError::BadHeader("key id"))
        );
        assert!(matches!(
            Kit::from_bytes(&vec![b' '; MAX_KIT_LEN + 1]),
            Err(KitError::TooLarge { .. })
        ));
    }

    fn doc(signers: &[NodeKey]) -> (RecoveryKeys, Vec<RecoverySecret>) {
        let secrets: Vec<RecoverySecret> = signers
            .iter()
            .map(|_| RecoverySecret::generate().unwrap())
            .collect();
        let d = RecoveryKeys {
            version: RECOVERY_KEYS_VERSION,
            key_id: "k-0011".into(),
            holders: signers
                .iter()
                .zip(&secrets)
                .enumerate()
                .map(|(i, (s, r))| RecoveryHolder {
                    signer: *s,
                    holder: format!("holder-{i}"),
                    recovery_key: r.public(),
                })
                .collect(),
        };
        (d, secrets)
    }

    #[test]
    fn recovery_key_documents_need_the_pinned_admin_quorum() {
        let admins: Vec<Identity> = (0..3)
            .map(|i| Identity::generate(&format!("a{i}")))
            .collect();
        let pinned: Vec<NodeKey> = admins.iter().map(|a| a.node_key()).collect();
        let signers: Vec<Identity> = (0..3)
            .map(|i| Identity::generate(&format!("s{i}")))
            .collect();
        let keys: Vec<NodeKey> = signers.iter().map(|s| s.node_key()).collect();
        let (d, secrets) = doc(&keys);
        let one = SignedRecoveryKeys {
            signatures: vec![d.sign_as_admin(&admins[0]).unwrap()],
            document: d.clone(),
        };
        assert_eq!(
            one.recovery_key_for("k-0011", &keys[1], &pinned, 2),
            Err(RecoveryKeysError::Quorum {
                valid: 1,
                needed: 2
            })
        );
        // The same admin twice counts once; an unpinned admin not at all.
        let mut twice = one.clone();
        twice.signatures.push(d.sign_as_admin(&admins[0]).unwrap());
        twice
            .signatures
            .push(d.sign_as_admin(&Identity::generate("rogue")).unwrap());
        assert!(matches!(
            twice.verify("k-0011", &pinned, 2),
            Err(RecoveryKeysError::Quorum { valid: 1, .. })
        ));
        let mut two = one;
        two.signatures.push(d.sign_as_admin(&admins[2]).unwrap());
        assert_eq!(
            two.recovery_key_for("k-0011", &keys[1], &pinned, 2)
                .unwrap(),
            secrets[1].public()
        );
        assert!(matches!(
            two.verify("k-0099", &pinned, 2),
            Err(RecoveryKeysError::OtherKey { .. })
        ));
        assert!(matches!(
            two.recovery_key_for("k-0011", &Identity::generate("x").node_key(), &pinned, 2),
            Err(RecoveryKeysError::NotListed(_))
        ));
        // A server that swaps a recovery key breaks every signature.
        let mut swapped = two;
        swapped.document.holders[1].recovery_key = RecoverySecret::generate().unwrap().public();
        assert!(matches!(
            swapped.verify("k-0011", &pinned, 2),
            Err(RecoveryKeysError::Quorum { valid: 0, .. })
        ));
    }

    #[test]
    fn one_recovery_key_or_holder_for_two_signers_is_refused() {
        let keys: Vec<NodeKey> = (0..2)
            .map(|i| Identity::generate(&format!("s{i}")).node_key())
            .collect();
        let (mut d, _) = doc(&keys);
        d.holders[1].recovery_key = d.holders[0].recovery_key;
        assert!(matches!(d.check(), Err(RecoveryKeysError::Invalid(_))));
        let (mut d, _) = doc(&keys);
        d.holders[1].holder = d.holders[0].holder.clone();
        assert!(matches!(d.check(), Err(RecoveryKeysError::Invalid(_))));
        let (mut d, _) = doc(&keys);
        d.holders[1].signer = d.holders[0].signer;
        assert!(matches!(d.check(), Err(RecoveryKeysError::Invalid(_))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
            let _ = fuzz_decode_kit(&bytes);
        }

        #[test]
        fn any_single_byte_change_of_a_kit_is_detected(pos in 0usize..4096, bit in 0u8..8) {
            let (_, recovery, kit) = kit();
            let mut bytes = kit.to_bytes().unwrap();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            // Either the file no longer decodes, or its signature or decryption fails, or
            // the change was to JSON layout only and the kit is unchanged.
            if let Ok(k) = Kit::from_bytes(&bytes) {
                if k != kit {
                    let opened = k.open(&recovery);
                    proptest::prop_assert!(opened.is_err());
                }
            }
        }

        #[test]
        fn kits_round_trip_for_any_header(party in 0u16..16, epoch in proptest::num::u64::ANY, created in proptest::num::i64::ANY, payload in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let signer = Identity::generate("s");
            let recovery = RecoverySecret::generate().unwrap();
            let mut h = header(&signer, &recovery);
            h.party_index = party;
            h.epoch = epoch;
            h.created_at = created;
            let kit = Kit::seal(&signer, h, &payload).unwrap();
            let back = Kit::from_bytes(&kit.to_bytes().unwrap()).unwrap();
            proptest::prop_assert_eq!(&back, &kit);
            proptest::prop_assert_eq!(&back.open(&recovery).unwrap()[..], &payload[..]);
        }
    }
}
