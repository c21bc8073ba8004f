//! Signed and encrypted protocol envelopes: the only form in which a protocol [`Message`]
//! leaves a signer. This module owns the envelope types, their canonical wire form, sealing
//! (sign, and for point-to-point messages encrypt to the recipient) and opening (check the
//! pinned sender's signature and the addressing, then decrypt).
//!
//! Every envelope binds the session id, key id, protocol, round, sender (identity key and
//! party index) and recipient (identity key and party index, or broadcast) under the
//! sender's Ed25519 signature, so the relay cannot forge a message, alter one, or move one
//! into another session, key, protocol or round. Point-to-point payloads are sealed to the
//! recipient's X25519 key with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20Poly1305, base mode, single shot, `info` = `coffer/envelope/v1`, AAD = the
//! canonical header bytes), so the relay only ever sees their ciphertext. Sender
//! authentication is the signature over the whole envelope, not HPKE's auth mode.
//!
//! Wire form, version 1 (all integers big-endian; every field is fixed-size, tagged or
//! length-prefixed, so the encoding is unambiguous and the decoder accepts exactly one
//! encoding of each envelope):
//! ```text
//! header    = version u8 = 1 | session [32] | key_id_len u8 | key_id [key_id_len]
//!           | protocol u8 | round u16 | sender [32] | sender_party u16
//!           | recipient_tag u8 (0 = broadcast, 1 = point to point)
//!             [ recipient_key [32] | recipient_party u16 ]   (only when the tag is 1)
//! body      = body_tag u8 (0 = broadcast, 1 = sealed)
//!           | broadcast: payload_len u32 | payload [payload_len]
//!           | sealed:    encapped_key [32] | ciphertext_len u32 | ciphertext [ciphertext_len]
//! envelope  = header | body | signature [64]
//! signed    = "coffer/envelope-sig/v1" | header | body
//! ```
//! The decoder treats its input as hostile: bounded lengths, typed errors, no panics (a fuzz
//! target drives [`Envelope::from_bytes`]).

use core::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

use coffer_proto::ids::{PartyIndex, SessionId, MAX_PARTIES};
use coffer_proto::message::{Message, MAX_PAYLOAD};

use crate::identity::{Identity, NodeKey, PublicIdentity};

/// Envelope wire format version written by this build.
pub const ENVELOPE_VERSION: u8 = 1;
/// Longest key id, in bytes.
pub const MAX_KEY_ID: usize = 64;
/// HPKE `info` string: binds sealed payloads to this envelope format.
pub const HPKE_INFO: &[u8] = b"coffer/envelope/v1";
/// Domain separator prefixed to the bytes an envelope signature covers.
pub const SIGNATURE_DOMAIN: &[u8] = b"coffer/envelope-sig/v1";
/// ChaCha20Poly1305 tag length: a sealed body's ciphertext is the payload plus this.
pub const AEAD_TAG_LEN: usize = 16;
/// Longest encoded header.
const MAX_HEADER_LEN: usize = 1 + 32 + 1 + MAX_KEY_ID + 1 + 2 + 32 + 2 + 1 + 32 + 2;
/// Longest encoded body.
const MAX_BODY_LEN: usize = 1 + 32 + 4 + MAX_PAYLOAD + AEAD_TAG_LEN;
/// Largest encoded envelope accepted.
pub const MAX_ENVELOPE: usize = MAX_HEADER_LEN + MAX_BODY_LEN + 64;

const TAG_BROADCAST: u8 = 0;
const TAG_P2P: u8 = 1;
const TAG_SEALED: u8 = 1;

/// Which protocol a session runs (bound into every envelope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProtocolKind {
    /// Distributed key generation.
    Keygen,
    /// Signing.
    Sign,
    /// Presigning (CGGMP presignatures).
    Presign,
    /// Share refresh.
    Refresh,
    /// Resharing to a new group.
    Reshare,
}

impl ProtocolKind {
    /// Every protocol kind, in code order.
    pub const ALL: [ProtocolKind; 5] = [
        ProtocolKind::Keygen,
        ProtocolKind::Sign,
        ProtocolKind::Presign,
        ProtocolKind::Refresh,
        ProtocolKind::Reshare,
    ];

    /// The stable wire code.
    pub const fn code(self) -> u8 {
        match self {
            ProtocolKind::Keygen => 1,
            ProtocolKind::Sign => 2,
            ProtocolKind::Presign => 3,
            ProtocolKind::Refresh => 4,
            ProtocolKind::Reshare => 5,
        }
    }

    /// The protocol with wire code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ProtocolKind::Keygen),
            2 => Some(ProtocolKind::Sign),
            3 => Some(ProtocolKind::Presign),
            4 => Some(ProtocolKind::Refresh),
            5 => Some(ProtocolKind::Reshare),
            _ => None,
        }
    }
}

/// Everything an envelope binds besides its payload. Signed; for point-to-point messages
/// also the AAD of the encryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The session the message belongs to.
    pub session: SessionId,
    /// The key the session works on (at most [`MAX_KEY_ID`] bytes of `[a-z0-9_-]`).
    pub key_id: String,
    /// The protocol the session runs.
    pub protocol: ProtocolKind,
    /// The protocol round.
    pub round: u16,
    /// The sender's identity key (which signed the envelope).
    pub sender: NodeKey,
    /// The sender's party index in the session's group.
    pub sender_party: PartyIndex,
    /// The recipient's identity key and party index; `None` for a broadcast.
    pub recipient: Option<(NodeKey, PartyIndex)>,
}

/// An envelope's payload: in the clear for a broadcast, sealed to the recipient otherwise.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// A broadcast payload (signed, not encrypted: every party reads it).
    Broadcast(Vec<u8>),
    /// A point-to-point payload, HPKE-sealed to the recipient's seal key.
    Sealed {
        /// The HPKE encapsulated (ephemeral X25519) key.
        encapped_key: [u8; 32],
        /// The ChaCha20Poly1305 ciphertext, tag included.
        ciphertext: Vec<u8>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Broadcast(payload) => f
                .debug_struct("Broadcast")
                .field("payload_len", &payload.len())
                .finish(),
            Body::Sealed { ciphertext, .. } => f
                .debug_struct("Sealed")
                .field("ciphertext_len", &ciphertext.len())
                .finish_non_exhaustive(),
        }
    }
}

/// One signed protocol message as it travels through the relay.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the envelope binds.
    pub header: EnvelopeHeader,
    /// The payload, in the clear or sealed.
    pub body: Body,
    /// The sender's Ed25519 signature over [`SIGNATURE_DOMAIN`], the header and the body.
    pub signature: [u8; 64],
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// Why an envelope could not be built, decoded or opened. No variant quotes payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The input ends inside the named field.
    #[error("envelope truncated in its {0}")]
    Truncated(&'static str),
    /// Bytes left over after the signature.
    #[error("{0} unexpected bytes after the envelope")]
    TrailingBytes(usize),
    /// Larger than [`MAX_ENVELOPE`].
    #[error("envelope of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A version this build does not read.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// An empty or over-long key id, or one with characters outside `[a-z0-9_-]`.
    #[error("invalid key id ({len} bytes): 1 to 64 characters of [a-z0-9_-] expected")]
    KeyId {
        /// Its length in bytes.
        len: usize,
    },
    /// An unknown protocol code.
    #[error("unknown protocol code {0}")]
    Protocol(u8),
    /// A party index above the supported group size.
    #[error("party index {0} out of range")]
    PartyIndex(u16),
    /// An unknown tag byte.
    #[error("invalid {field} tag {tag}")]
    Tag {
        /// The field the tag selects.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A payload longer than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the limit")]
    PayloadTooLarge(u64),
    /// A sealed ciphertext shorter than its tag or longer than the largest sealed payload.
    #[error("ciphertext length {0} out of range")]
    CiphertextLength(u64),
    /// Sealing: the message's recipient and the identity to seal to disagree (one is a
    /// broadcast, the other not).
    #[error("the message's recipient does not match the identity it is sealed to")]
    RecipientMismatch,
    /// Opening: the header names another sender key than the one pinned for that party.
    #[error("the envelope's sender key is not the key pinned for its sender")]
    SenderKeyMismatch,
    /// Opening: the signature does not verify under the pinned sender key.
    #[error("envelope signature does not verify")]
    BadSignature,
    /// Opening: a point-to-point envelope addressed to another party or key.
    #[error("envelope is addressed to another party")]
    NotForMe,
    /// Opening: a broadcast with a sealed body, or a point-to-point envelope in the clear.
    #[error("envelope body kind does not match its addressing")]
    BodyKind,
    /// The operating system's randomness failed while sealing.
    #[error("randomness unavailable")]
    Randomness,
    /// HPKE refused to seal (an invalid recipient seal key).
    #[error("could not seal the payload to the recipient")]
    Seal,
    /// The sealed payload does not decrypt with this identity's key (wrong recipient or
    /// altered ciphertext, encapsulated key or header).
    #[error("sealed payload does not decrypt")]
    Open,
}

impl Envelope {
    /// Wraps one outgoing protocol message: a broadcast (`m.recipient == None`) travels in
    /// the clear, signed; a point-to-point message is sealed to `recipient`, which must be
    /// given exactly when `m.recipient` is (the caller maps the recipient's party index to
    /// its pinned identity).
    pub fn seal(
        me: &Identity,
        key_id: &str,
        protocol: ProtocolKind,
        m: &Message,
        recipient: Option<&PublicIdentity>,
    ) -> Result<Envelope, EnvelopeError> {
        check_key_id(key_id.as_bytes())?;
        check_party(m.sender.get())?;
        check_payload_len(m.payload.len())?;
        let header_recipient = match (m.recipient, recipient) {
            (None, None) => None,
            (Some(party), Some(id)) => {
                check_party(party.get())?;
                Some((id.node_key, party))
            }
            _ => return Err(EnvelopeError::RecipientMismatch),
        };
        let header = EnvelopeHeader {
            session: m.session,
            key_id: key_id.to_string(),
            protocol,
            round: m.round,
            sender: me.node_key(),
            sender_party: m.sender,
            recipient: header_recipient,
        };
        let body = match recipient {
            None => Body::Broadcast(m.payload.clone()),
            Some(id) => seal_payload(&id.seal_key.0, &header_bytes(&header), &m.payload)?,
        };
        let mut envelope = Envelope {
            header,
            body,
            signature: [0u8; 64],
        };
        envelope.signature = me.sign(&envelope.signed_bytes());
        Ok(envelope)
    }

    /// Checks and opens an incoming envelope as party `my_party` with identity `me`.
    ///
    /// `sender` is the *pinned* identity of the party the header names as sender
    /// (`header.sender_party`), which the caller looks up in its own roster; the header's
    /// key alone is never trusted. Checks that the header's sender key is the pinned one,
    /// the signature, that a point-to-point envelope is addressed to `me` as `my_party`,
    /// that a point-to-point envelope is sealed and a broadcast is not, then decrypts.
    pub fn open(
        &self,
        me: &Identity,
        my_party: PartyIndex,
        sender: &PublicIdentity,
    ) -> Result<Message, EnvelopeError> {
        // The fields are public: re-check what the decoder checks, so that the signed bytes
        // are always the canonical (unambiguous) encoding.
        self.check()?;
        if self.header.sender != sender.node_key {
            return Err(EnvelopeError::SenderKeyMismatch);
        }
        sender
            .node_key
            .verify(&self.signed_bytes(), &self.signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        let h = &self.header;
        let (recipient, payload) = match (&h.recipient, &self.body) {
            (None, Body::Broadcast(payload)) => (None, payload.clone()),
            (
                Some((key, party)),
                Body::Sealed {
                    encapped_key,
                    ciphertext,
                },
            ) => {
                if *key != me.node_key() || *party != my_party {
                    return Err(EnvelopeError::NotForMe);
                }
                let payload = open_payload(me, encapped_key, ciphertext, &header_bytes(h))?;
                (Some(*party), payload)
            }
            _ => return Err(EnvelopeError::BodyKind),
        };
        Ok(Message {
            session: h.session,
            sender: h.sender_party,
            recipient,
            round: h.round,
            payload,
        })
    }

    /// Encodes to the versioned wire form (see the module documentation). An envelope whose
    /// public fields were set out of range encodes to bytes [`Envelope::from_bytes`] refuses.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header_bytes(&self.header);
        write_body(&mut out, &self.body);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes untrusted bytes: bounded, typed errors, no panics. Accepts only the canonical
    /// encoding (no trailing bytes, no unknown tags or codes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let mut r = Reader { rest: bytes };
        let version = r.u8("version")?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let session = SessionId::from_bytes(r.array("session")?);
        let key_id_len = usize::from(r.u8("key id length")?);
        let key_id = r.take(key_id_len, "key id")?;
        check_key_id(key_id)?;
        // check_key_id admits ASCII only, so this never fails; still no panic path.
        let key_id = String::from_utf8(key_id.to_vec())
            .map_err(|_| EnvelopeError::KeyId { len: key_id_len })?;
        let code = r.u8("protocol")?;
        let protocol = ProtocolKind::from_code(code).ok_or(EnvelopeError::Protocol(code))?;
        let round = r.u16("round")?;
        let sender = NodeKey(r.array("sender key")?);
        let sender_party = r.party("sender party")?;
        let recipient = match r.u8("recipient tag")? {
            TAG_BROADCAST => None,
            TAG_P2P => {
                let key = NodeKey(r.array("recipient key")?);
                Some((key, r.party("recipient party")?))
            }
            tag => {
                return Err(EnvelopeError::Tag {
                    field: "recipient",
                    tag,
                })
            }
        };
        let body = match r.u8("body tag")? {
            TAG_BROADCAST => {
                let len = r.u32("payload length")?;
                check_payload_len(len as usize)?;
                Body::Broadcast(r.take(len as usize, "payload")?.to_vec())
            }
            TAG_SEALED => {
                let encapped_key = r.array("encapsulated key")?;
                let len = r.u32("ciphertext length")?;
                check_ciphertext_len(len as usize)?;
                let ciphertext = r.take(len as usize, "ciphertext")?.to_vec();
                Body::Sealed {
                    encapped_key,
                    ciphertext,
                }
            }
            tag => return Err(EnvelopeError::Tag { field: "body", tag }),
        };
        let signature = r.array("signature")?;
        if !r.rest.is_empty() {
            return Err(EnvelopeError::TrailingBytes(r.rest.len()));
        }
        Ok(Envelope {
            header: EnvelopeHeader {
                session,
                key_id,
                protocol,
                round,
                sender,
                sender_party,
                recipient,
            },
            body,
            signature,
        })
    }

    /// Checks the ranges [`Envelope::from_bytes`] enforces on fields that are public.
    fn check(&self) -> Result<(), EnvelopeError> {
        let h = &self.header;
        check_key_id(h.key_id.as_bytes())?;
        check_party(h.sender_party.get())?;
        if let Some((_, party)) = h.recipient {
            check_party(party.get())?;
        }
        match &self.body {
            Body::Broadcast(payload) => check_payload_len(payload.len()),
            Body::Sealed { ciphertext, .. } => check_ciphertext_len(ciphertext.len()),
        }
    }

    /// The bytes the signature covers: the domain separator, the header, the body.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(SIGNATURE_DOMAIN.len() + MAX_HEADER_LEN + body_len_hint(&self.body));
        out.extend_from_slice(SIGNATURE_DOMAIN);
        write_header(&mut out, &self.header);
        write_body(&mut out, &self.body);
        out
    }
}

/// Serialized as one byte string holding [`Envelope::to_bytes`], so that it rides inside CBOR
/// frames; deserializing runs [`Envelope::from_bytes`].
impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an encoded envelope as a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Envelope, E> {
        Envelope::from_bytes(v).map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Envelope, A::Error> {
        // Formats without byte strings (JSON) carry an array of numbers; bounded all the same.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() >= MAX_ENVELOPE {
                return Err(serde::de::Error::custom(EnvelopeError::TooLarge(
                    bytes.len() + 1,
                )));
            }
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}

/// The canonical header bytes (the AAD of a sealed body, and the start of the signed bytes).
fn header_bytes(h: &EnvelopeHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEADER_LEN);
    write_header(&mut out, h);
    out
}

fn write_header(out: &mut Vec<u8>, h: &EnvelopeHeader) {
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(h.session.as_bytes());
    // A valid key id is at most 64 bytes; a longer one saturates to a length the decoder
    // refuses (and `open` checks the key id before it computes signed bytes).
    out.push(u8::try_from(h.key_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(h.key_id.as_bytes());
    out.push(h.protocol.code());
    out.extend_from_slice(&h.round.to_be_bytes());
    out.extend_from_slice(&h.sender.0);
    out.extend_from_slice(&h.sender_party.get().to_be_bytes());
    match &h.recipient {
        None => out.push(TAG_BROADCAST),
        Some((key, party)) => {
            out.push(TAG_P2P);
            out.extend_from_slice(&key.0);
            out.extend_from_slice(&party.get().to_be_bytes());
        }
    }
}

fn write_body(out: &mut Vec<u8>, body: &Body) {
    // Lengths are bounded by MAX_PAYLOAD (< u32::MAX) for every valid body; a longer one
    // saturates to a length the decoder refuses.
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    match body {
        Body::Broadcast(payload) => {
            out.push(TAG_BROADCAST);
            out.extend_from_slice(&len32(payload.len()));
            out.extend_from_slice(payload);
        }
        Body::Sealed {
            encapped_key,
            ciphertext,
        } => {
            out.push(TAG_SEALED);
            out.extend_from_slice(encapped_key);
            out.extend_from_slice(&len32(ciphertext.len()));
            out.extend_from_slice(ciphertext);
        }
    }
}

fn body_len_hint(body: &Body) -> usize {
    match body {
        Body::Broadcast(p) => 1 + 4 + p.len(),
        Body::Sealed { ciphertext, .. } => 1 + 32 + 4 + ciphertext.len(),
    }
}

fn check_key_id(key_id: &[u8]) -> Result<(), EnvelopeError> {
    let ok = (1..=MAX_KEY_ID).contains(&key_id.len())
        && key_id
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(EnvelopeError::KeyId { len: key_id.len() })
    }
}

fn check_party(i: u16) -> Result<(), EnvelopeError> {
    if i < MAX_PARTIES {
        Ok(())
    } else {
        Err(EnvelopeError::PartyIndex(i))
    }
}

fn check_payload_len(len: usize) -> Result<(), EnvelopeError> {
    if len > MAX_PAYLOAD {
        Err(EnvelopeError::PayloadTooLarge(len as u64))
    } else {
        Ok(())
    }
}

fn check_ciphertext_len(len: usize) -> Result<(), EnvelopeError> {
    if (AEAD_TAG_LEN..=MAX_PAYLOAD + AEAD_TAG_LEN).contains(&len) {
        Ok(())
    } else {
        Err(EnvelopeError::CiphertextLength(len as u64))
    }
}

/// HPKE-seals `payload` to the X25519 key `seal_key`, authenticating `aad`.
fn seal_payload(seal_key: &[u8; 32], aad: &[u8], payload: &[u8]) -> Result<Body, EnvelopeError> {
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(seal_key)
        .map_err(|_| EnvelopeError::Seal)?;
    let mut rng = CheckedOsRng { failed: false };
    let sealed = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        payload,
        aad,
        &mut rng,
    );
    // Checked before the result is used: a failed generator must never yield a ciphertext.
    if rng.failed {
        return Err(EnvelopeError::Randomness);
    }
    let (encapped, ciphertext) = sealed.map_err(|_| EnvelopeError::Seal)?;
    let mut encapped_key = [0u8; 32];
    encapped.write_exact(&mut encapped_key);
    Ok(Body::Sealed {
        encapped_key,
        ciphertext,
    })
}

/// Opens an HPKE-sealed payload with `me`'s seal key, authenticating `aad`.
fn open_payload(
    me: &Identity,
    encapped_key: &[u8; 32],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let secret = me.seal_secret_bytes();
    // The hpke private key wraps x25519-dalek's StaticSecret, which zeroizes on drop.
    let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&secret[..])
        .map_err(|_| EnvelopeError::Open)?;
    let encapped = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(encapped_key)
        .map_err(|_| EnvelopeError::Open)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &encapped,
        HPKE_INFO,
        ciphertext,
        aad,
    )
    .map_err(|_| EnvelopeError::Open)
}

/// The operating system's generator for HPKE, without a panic path: a failure is recorded
/// (and the output zeroed) so that the caller discards the result and reports it.
pub(crate) struct CheckedOsRng {
    pub(crate) failed: bool,
}

impl hpke::rand_core::RngCore for CheckedOsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        use rand_core_09::TryRngCore as _;
        if rand_core_09::OsRng.try_fill_bytes(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
    }
}

impl hpke::rand_core::CryptoRng for CheckedOsRng {}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if self.rest.len() < n {
            return Err(EnvelopeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, EnvelopeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, EnvelopeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn party(&mut self, field: &'static str) -> Result<PartyIndex, EnvelopeError> {
        let i = self.u16(field)?;
        check_party(i)?;
        Ok(PartyIndex::unchecked(i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    const KEY_ID: &str = "k-0123abcd";
    /// A distinctive payload: the relay must never see these bytes for a P2P message.
    const SECRET: [u8; 64] = *b"SECRET-SUB-SHARE:0123456789abcdefghijklmnopqrstuvwxyz!@#$%^&*()+";

    struct Party {
        id: Identity,
        index: PartyIndex,
    }

    impl Party {
        fn new(name: &str, index: u16) -> Self {
            Party {
                id: Identity::generate(name),
                index: PartyIndex::unchecked(index),
            }
        }

        fn public(&self) -> PublicIdentity {
            self.id.public()
        }
    }

    fn session() -> SessionId {
        SessionId::from_bytes([7; 32])
    }

    fn message(from: &Party, to: Option<&Party>, payload: &[u8]) -> Message {
        Message {
            session: session(),
            sender: from.index,
            recipient: to.map(|p| p.index),
            round: 3,
            payload: payload.to_vec(),
        }
    }

    fn p2p(from: &Party, to: &Party) -> (Message, Envelope) {
        let m = message(from, Some(to), &SECRET);
        let env =
            Envelope::seal(&from.id, KEY_ID, ProtocolKind::Sign, &m, Some(&to.public())).unwrap();
        (m, env)
    }

    fn broadcast(from: &Party) -> (Message, Envelope) {
        let m = message(from, None, b"broadcast payload");
        let env = Envelope::seal(&from.id, KEY_ID, ProtocolKind::Keygen, &m, None).unwrap();
        (m, env)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn broadcast_round_trips_through_the_wire() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let (m, env) = broadcast(&alice);
        assert!(matches!(env.body, Body::Broadcast(_)));
        assert_eq!(env.header.recipient, None);
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.open(&bob.id, bob.index, &alice.public()).unwrap(), m);
    }

    #[test]
    fn p2p_round_trips_through_the_wire() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 2));
        let (m, env) = p2p(&alice, &bob);
        assert!(matches!(env.body, Body::Sealed { .. }));
        assert_eq!(
            env.header.recipient,
            Some((bob.id.node_key(), PartyIndex::unchecked(2)))
        );
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back, env);
        let opened = back.open(&bob.id, bob.index, &alice.public()).unwrap();
        assert_eq!(opened, m);
    }

    #[test]
    fn empty_payloads_round_trip() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let m = message(&alice, Some(&bob), &[]);
        let env = Envelope::seal(
            &alice.id,
            KEY_ID,
            ProtocolKind::Sign,
            &m,
            Some(&bob.public()),
        )
        .unwrap();
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back.open(&bob.id, bob.index, &alice.public()).unwrap(), m);
    }

    #[test]
    fn serde_carries_the_wire_form_as_a_byte_string() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let (m, env) = p2p(&alice, &bob);
        let mut cbor = Vec::new();
        ciborium::into_writer(&env, &mut cbor).unwrap();
        let back: Envelope = ciborium::from_reader(cbor.as_slice()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.open(&bob.id, bob.index, &alice.public()).unwrap(), m);
        // JSON has no byte strings: an array of numbers, decoded the same way.
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
        // A corrupt byte string is a deserialization error, not a panic.
        let mut bad = Vec::new();
        ciborium::into_writer(&ciborium::Value::Bytes(vec![9, 9, 9]), &mut bad).unwrap();
        assert!(ciborium::from_reader::<Envelope, _>(bad.as_slice()).is_err());
    }

    #[test]
    fn the_relay_sees_only_ciphertext_for_p2p() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let (_, env) = p2p(&alice, &bob);
        let wire = env.to_bytes();
        assert!(!contains(&wire, &SECRET));
        assert!(!contains(&wire, &SECRET[..16]));
        let mut cbor = Vec::new();
        ciborium::into_writer(&env, &mut cbor).unwrap();
        assert!(!contains(&cbor, &SECRET[..16]));
        // Debug output names lengths, never payload bytes.
        let debug = format!("{env:?}");
        assert!(!debug.contains("SECRET"));
        let (_, b) = broadcast(&alice);
        assert!(!format!("{b:?}").contains("broadcast payload"));
    }

    #[test]
    fn a_third_party_cannot_open_a_p2p_envelope() {
        let (alice, bob, carol) = (
            Party::new("alice", 0),
            Party::new("bob", 1),
            Party::new("carol", 2),
        );
        let (_, env) = p2p(&alice, &bob);
        // Not addressed to carol, under her own index or bob's.
        assert_eq!(
            env.open(&carol.id, carol.index, &alice.public()),
            Err(EnvelopeError::NotForMe)
        );
        assert_eq!(
            env.open(&carol.id, bob.index, &alice.public()),
            Err(EnvelopeError::NotForMe)
        );
        // Readdressing it to carol breaks the signature.
        let mut readdressed = env.clone();
        readdressed.header.recipient = Some((carol.id.node_key(), carol.index));
        assert_eq!(
            readdressed.open(&carol.id, carol.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
        // And her key does not decrypt it regardless of the checks.
        let Body::Sealed {
            encapped_key,
            ciphertext,
        } = &env.body
        else {
            panic!("p2p envelopes are sealed");
        };
        let aad = header_bytes(&env.header);
        assert_eq!(
            open_payload(&carol.id, encapped_key, ciphertext, &aad),
            Err(EnvelopeError::Open)
        );
        assert_eq!(
            open_payload(&bob.id, encapped_key, ciphertext, &aad).unwrap(),
            SECRET
        );
    }

    #[test]
    fn misaddressed_p2p_is_refused() {
        let (alice, p2, p3) = (
            Party::new("alice", 0),
            Party::new("p2", 2),
            Party::new("p3", 3),
        );
        let (_, env) = p2p(&alice, &p2);
        assert_eq!(
            env.open(&p3.id, p3.index, &alice.public()),
            Err(EnvelopeError::NotForMe)
        );
        // The right key under the wrong party index is refused too.
        assert_eq!(
            env.open(&p2.id, p3.index, &alice.public()),
            Err(EnvelopeError::NotForMe)
        );
    }

    /// Every rewrite of a signed field by the relay makes `open` fail.
    #[test]
    fn every_field_altered_by_the_relay_is_refused() {
        let (alice, bob, carol) = (
            Party::new("alice", 0),
            Party::new("bob", 1),
            Party::new("carol", 2),
        );
        let (_, p2p_env) = p2p(&alice, &bob);
        let (_, bc_env) = broadcast(&alice);

        type Edit = Box<dyn Fn(&mut Envelope)>;
        let carol_key = carol.id.node_key();
        let edits: Vec<(&str, Edit)> = vec![
            (
                "session",
                Box::new(|e| e.header.session = SessionId::from_bytes([8; 32])),
            ),
            ("key id", Box::new(|e| e.header.key_id = "k-other".into())),
            (
                "protocol",
                Box::new(|e| e.header.protocol = ProtocolKind::Refresh),
            ),
            ("round", Box::new(|e| e.header.round += 1)),
            (
                "sender party",
                Box::new(|e| e.header.sender_party = PartyIndex::unchecked(5)),
            ),
            (
                "recipient party",
                Box::new(|e| {
                    e.header.recipient = match e.header.recipient {
                        Some((k, _)) => Some((k, PartyIndex::unchecked(4))),
                        None => Some((e.header.sender, PartyIndex::unchecked(1))),
                    }
                }),
            ),
            (
                "recipient key",
                Box::new(move |e| {
                    e.header.recipient = e.header.recipient.map(|(_, p)| (carol_key, p))
                }),
            ),
            ("recipient dropped", Box::new(|e| e.header.recipient = None)),
            (
                "body",
                Box::new(|e| match &mut e.body {
                    Body::Broadcast(b) => b[0] ^= 1,
                    Body::Sealed { ciphertext, .. } => ciphertext[0] ^= 1,
                }),
            ),
            (
                "body extended",
                Box::new(|e| match &mut e.body {
                    Body::Broadcast(b) => b.push(0),
                    Body::Sealed { ciphertext, .. } => ciphertext.push(0),
                }),
            ),
            (
                "encapsulated key",
                Box::new(|e| match &mut e.body {
                    Body::Broadcast(b) => b.clear(),
                    Body::Sealed { encapped_key, .. } => encapped_key[0] ^= 1,
                }),
            ),
            ("signature", Box::new(|e| e.signature[10] ^= 1)),
        ];

        for (env, kind, applicable) in [
            (&p2p_env, "p2p", edits.len()),
            (&bc_env, "broadcast", edits.len() - 2), // no recipient key to change or drop
        ] {
            // Unaltered, it opens.
            env.open(&bob.id, bob.index, &alice.public()).unwrap();
            let mut applied = 0;
            for (field, edit) in &edits {
                let mut altered = env.clone();
                edit(&mut altered);
                if altered == *env {
                    continue; // the edit does not apply to this kind
                }
                applied += 1;
                // Through the wire, as the relay would send it.
                let wire = Envelope::from_bytes(&altered.to_bytes()).unwrap();
                let err = wire.open(&bob.id, bob.index, &alice.public());
                assert_eq!(
                    err,
                    Err(EnvelopeError::BadSignature),
                    "{kind}: altered {field} was not refused by the signature"
                );
            }
            assert_eq!(applied, applicable, "{kind}");
        }
    }

    #[test]
    fn an_unknown_identity_cannot_speak_for_a_pinned_sender() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let mallory = Identity::generate("mallory");
        // Mallory seals as party 0, naming her own key: refused against alice's pinned key.
        let m = message(&alice, Some(&bob), b"forged");
        let env = Envelope::seal(
            &mallory,
            KEY_ID,
            ProtocolKind::Sign,
            &m,
            Some(&bob.public()),
        )
        .unwrap();
        assert_eq!(
            env.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::SenderKeyMismatch)
        );
        // Claiming alice's key, signed (and re-signed) by mallory: the signature fails.
        let mut claimed = env.clone();
        claimed.header.sender = alice.id.node_key();
        assert_eq!(
            claimed.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
        claimed.signature = mallory.sign(&claimed.signed_bytes());
        assert_eq!(
            claimed.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
        // The same for a broadcast.
        let b = message(&alice, None, b"forged broadcast");
        let mut env = Envelope::seal(&mallory, KEY_ID, ProtocolKind::Sign, &b, None).unwrap();
        env.header.sender = alice.id.node_key();
        env.signature = mallory.sign(&env.signed_bytes());
        assert_eq!(
            env.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn replay_into_another_session_fails_and_opened_messages_carry_the_signed_session() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        for (_, env) in [p2p(&alice, &bob), broadcast(&alice)] {
            let opened = env.open(&bob.id, bob.index, &alice.public()).unwrap();
            assert_eq!(opened.session, session());
            assert_eq!(opened.session, env.header.session);
            let mut moved = env.clone();
            moved.header.session = SessionId::from_bytes([9; 32]);
            assert_eq!(
                moved.open(&bob.id, bob.index, &alice.public()),
                Err(EnvelopeError::BadSignature)
            );
        }
    }

    #[test]
    fn body_kind_must_match_addressing() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        // A broadcast turned into a sealed body by the relay.
        let (_, bc) = broadcast(&alice);
        let mut sealed = bc.clone();
        sealed.body = Body::Sealed {
            encapped_key: [1; 32],
            ciphertext: vec![0; 32],
        };
        assert_eq!(
            sealed.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
        // A sealed message turned into a clear one.
        let (_, pp) = p2p(&alice, &bob);
        let mut clear = pp.clone();
        clear.body = Body::Broadcast(SECRET.to_vec());
        assert_eq!(
            clear.open(&bob.id, bob.index, &alice.public()),
            Err(EnvelopeError::BadSignature)
        );
        // Even validly signed by the sender, a mismatched kind is refused.
        for mut env in [sealed, clear] {
            env.signature = alice.id.sign(&env.signed_bytes());
            assert_eq!(
                env.open(&bob.id, bob.index, &alice.public()),
                Err(EnvelopeError::BodyKind)
            );
        }
    }

    #[test]
    fn seal_checks_its_inputs() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let p2p_msg = message(&alice, Some(&bob), b"x");
        let bc_msg = message(&alice, None, b"x");
        let kind = ProtocolKind::Sign;
        assert_eq!(
            Envelope::seal(&alice.id, KEY_ID, kind, &p2p_msg, None),
            Err(EnvelopeError::RecipientMismatch)
        );
        assert_eq!(
            Envelope::seal(&alice.id, KEY_ID, kind, &bc_msg, Some(&bob.public())),
            Err(EnvelopeError::RecipientMismatch)
        );
        for bad in ["", "UPPER", "with space", "k/1", &"a".repeat(65), "é"] {
            assert!(matches!(
                Envelope::seal(&alice.id, bad, kind, &bc_msg, None),
                Err(EnvelopeError::KeyId { .. })
            ));
        }
        assert!(Envelope::seal(&alice.id, &"a".repeat(64), kind, &bc_msg, None).is_ok());
        let mut big = bc_msg.clone();
        big.payload = vec![0; MAX_PAYLOAD + 1];
        assert!(matches!(
            Envelope::seal(&alice.id, KEY_ID, kind, &big, None),
            Err(EnvelopeError::PayloadTooLarge(_))
        ));
        let mut far = bc_msg.clone();
        far.sender = PartyIndex::unchecked(MAX_PARTIES);
        assert_eq!(
            Envelope::seal(&alice.id, KEY_ID, kind, &far, None),
            Err(EnvelopeError::PartyIndex(MAX_PARTIES))
        );
    }

    #[test]
    fn out_of_range_fields_encode_to_refused_bytes() {
        let alice = Party::new("alice", 0);
        let (_, env) = broadcast(&alice);
        let mut long = env.clone();
        long.header.key_id = "a".repeat(300);
        assert!(matches!(
            Envelope::from_bytes(&long.to_bytes()),
            Err(EnvelopeError::KeyId { .. })
        ));
        assert!(matches!(
            long.open(&alice.id, alice.index, &alice.public()),
            Err(EnvelopeError::KeyId { .. })
        ));
        let mut far = env.clone();
        far.header.sender_party = PartyIndex::unchecked(u16::MAX);
        assert_eq!(
            Envelope::from_bytes(&far.to_bytes()),
            Err(EnvelopeError::PartyIndex(u16::MAX))
        );
    }

    #[test]
    fn decoder_refuses_malformed_input() {
        let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
        let (_, env) = p2p(&alice, &bob);
        let wire = env.to_bytes();
        assert_eq!(
            Envelope::from_bytes(&[]),
            Err(EnvelopeError::Truncated("version"))
        );
        let mut v = wire.clone();
        v[0] = 2;
        assert_eq!(Envelope::from_bytes(&v), Err(EnvelopeError::Version(2)));
        for cut in 1..wire.len() {
            assert!(matches!(
                Envelope::from_bytes(&wire[..cut]),
                Err(EnvelopeError::Truncated(_))
            ));
        }
        let mut long = wire.clone();
        long.push(0);
        assert_eq!(
            Envelope::from_bytes(&long),
            Err(EnvelopeError::TrailingBytes(1))
        );
        let protocol_at = 1 + 32 + 1 + KEY_ID.len();
        let mut p = wire.clone();
        p[protocol_at] = 0;
        assert_eq!(Envelope::from_bytes(&p), Err(EnvelopeError::Protocol(0)));
        let tag_at = protocol_at + 1 + 2 + 32 + 2;
        let mut t = wire.clone();
        t[tag_at] = 7;
        assert_eq!(
            Envelope::from_bytes(&t),
            Err(EnvelopeError::Tag {
                field: "recipient",
                tag: 7
            })
        );
        assert!(matches!(
            Envelope::from_bytes(&vec![0u8; MAX_ENVELOPE + 1]),
            Err(EnvelopeError::TooLarge(_))
        ));
    }

    #[test]
    fn wire_form_snapshot_is_stable() {
        let env = Envelope {
            header: EnvelopeHeader {
                session: SessionId::from_bytes([0xab; 32]),
                key_id: "k-1".into(),
                protocol: ProtocolKind::Presign,
                round: 2,
                sender: NodeKey([0x11; 32]),
                sender_party: PartyIndex::unchecked(1),
                recipient: Some((NodeKey([0x22; 32]), PartyIndex::unchecked(3))),
            },
            body: Body::Sealed {
                encapped_key: [0x33; 32],
                ciphertext: vec![0x44; 16],
            },
            signature: [0x55; 64],
        };
        // version | session | key id "k-1" | Presign | round 2 | sender | party 1
        // | p2p: recipient key, party 3 | sealed: encapped key, 16-byte ciphertext | signature
        let expected = format!(
            "01{}036b2d3103{}{}0001{}{}0003{}{}00000010{}{}",
            "ab".repeat(32),
            "0002",
            "11".repeat(32),
            "01",
            "22".repeat(32),
            "01",
            "33".repeat(32),
            "44".repeat(16),
            "55".repeat(64),
        );
        assert_eq!(hex::encode(env.to_bytes()), expected);
        assert_eq!(Envelope::from_bytes(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn protocol_codes_are_stable_and_distinct() {
        let codes: Vec<u8> = ProtocolKind::ALL.iter().map(|p| p.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5]);
        for p in ProtocolKind::ALL {
            assert_eq!(ProtocolKind::from_code(p.code()), Some(p));
        }
        assert_eq!(ProtocolKind::from_code(0), None);
        assert_eq!(ProtocolKind::from_code(6), None);
    }

    fn arb_key() -> impl Strategy<Value = NodeKey> {
        any::<[u8; 32]>().prop_map(NodeKey)
    }

    fn arb_envelope() -> impl Strategy<Value = Envelope> {
        let header = (
            any::<[u8; 32]>(),
            "[a-z0-9_-]{1,64}",
            proptest::sample::select(ProtocolKind::ALL.to_vec()),
            any::<u16>(),
            arb_key(),
            0..MAX_PARTIES,
            proptest::option::of((arb_key(), 0..MAX_PARTIES)),
        )
            .prop_map(
                |(session, key_id, protocol, round, sender, party, recipient)| EnvelopeHeader {
                    session: SessionId::from_bytes(session),
                    key_id,
                    protocol,
                    round,
                    sender,
                    sender_party: PartyIndex::unchecked(party),
                    recipient: recipient.map(|(k, p)| (k, PartyIndex::unchecked(p))),
                },
            );
        let body = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048).prop_map(Body::Broadcast),
            (
                any::<[u8; 32]>(),
                proptest::collection::vec(any::<u8>(), AEAD_TAG_LEN..2048)
            )
                .prop_map(|(encapped_key, ciphertext)| Body::Sealed {
                    encapped_key,
                    ciphertext
                }),
        ];
        (header, body, proptest::collection::vec(any::<u8>(), 64)).prop_map(
            |(header, body, sig)| Envelope {
                header,
                body,
                signature: sig.try_into().unwrap(),
            },
        )
    }

    proptest! {
        #[test]
        fn wire_form_round_trips(env in arb_envelope()) {
            let bytes = env.to_bytes();
            let back = Envelope::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.to_bytes(), bytes);
            prop_assert_eq!(back, env);
        }

        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let _ = Envelope::from_bytes(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_envelopes(
            env in arb_envelope(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = env.to_bytes();
            for (at, x) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            let _ = Envelope::from_bytes(&bytes);
            let _ = Envelope::from_bytes(&bytes[..cut.index(bytes.len())]);
        }

        #[test]
        fn sealed_payloads_of_any_size_open(len in 0usize..4096, round in any::<u16>()) {
            let (alice, bob) = (Party::new("alice", 0), Party::new("bob", 1));
            let mut m = message(&alice, Some(&bob), &vec![0x5a; len]);
            m.round = round;
            let env = Envelope::seal(&alice.id, KEY_ID, ProtocolKind::Reshare, &m, Some(&bob.public()))
                .unwrap();
            let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
            prop_assert_eq!(back.open(&bob.id, bob.index, &alice.public()).unwrap(), m);
        }
    }
}
