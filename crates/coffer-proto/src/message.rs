//! The protocol message every session sends and receives, and its versioned binary wire
//! form. The wire decoder treats its input as hostile: bounded lengths, typed errors, no
//! panics (a fuzz target drives it).
//!
//! Wire form, version 1 (all integers big-endian):
//! ```text
//! version u8 = 1 | session [32] | sender u16 | recipient u16 (0xFFFF = broadcast)
//! | round u16 | payload_len u32 | payload [payload_len]
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::{PartyIndex, SessionId, MAX_PARTIES};

/// Wire format version written by this build.
pub const WIRE_VERSION: u8 = 1;
/// Largest payload accepted (CGGMP auxiliary-data proofs are the largest messages).
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
const BROADCAST: u16 = 0xFFFF;
const HEADER_LEN: usize = 1 + 32 + 2 + 2 + 2 + 4;

/// One protocol message between the parties of a session.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The session it belongs to.
    pub session: SessionId,
    /// Who sent it (keygen party index).
    pub sender: PartyIndex,
    /// `None` for a broadcast, else the one recipient.
    pub recipient: Option<PartyIndex>,
    /// The session's round number for this message.
    pub round: u16,
    /// The protocol payload (CBOR of the library's message type).
    pub payload: Vec<u8>,
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("session", &self.session)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .field("round", &self.round)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why bytes do not decode as a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the fixed header.
    #[error("message truncated: {len} bytes, the header alone is {HEADER_LEN}")]
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// A version this build does not read.
    #[error("unsupported message version {0}")]
    Version(u8),
    /// A party index above the supported group size.
    #[error("party index {0} out of range")]
    PartyIndex(u16),
    /// Payload longer than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the limit")]
    PayloadTooLarge(u64),
    /// The declared payload length disagrees with the bytes present.
    #[error("payload length {declared} does not match the {actual} bytes present")]
    LengthMismatch {
        /// Declared length.
        declared: u64,
        /// Bytes after the header.
        actual: usize,
    },
}

impl Message {
    /// Encodes to the versioned wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(self.session.as_bytes());
        out.extend_from_slice(&self.sender.get().to_be_bytes());
        let recipient = self.recipient.map(PartyIndex::get).unwrap_or(BROADCAST);
        out.extend_from_slice(&recipient.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        // Payloads are produced by our own sessions and bounded by MAX_PAYLOAD < u32::MAX.
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(WireError::Truncated { len: bytes.len() })?;
        let rest = &bytes[HEADER_LEN..];
        if header[0] != WIRE_VERSION {
            return Err(WireError::Version(header[0]));
        }
        let mut session = [0u8; 32];
        session.copy_from_slice(&header[1..33]);
        let u16_at = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let sender = u16_at(33);
        let recipient = u16_at(35);
        let round = u16_at(37);
        let len = u32::from_be_bytes([header[39], header[40], header[41], header[42]]);
        if sender >= MAX_PARTIES {
            return Err(WireError::PartyIndex(sender));
        }
        let recipient = match recipient {
            BROADCAST => None,
            r if r < MAX_PARTIES => Some(PartyIndex::unchecked(r)),
            r => return Err(WireError::PartyIndex(r)),
        };
        if len as usize > MAX_PAYLOAD {
            return Err(WireError::PayloadTooLarge(u64::from(len)));
        }
        if rest.len() != len as usize {
            return Err(WireError::LengthMismatch {
                declared: u64::from(len),
                actual: rest.len(),
            });
        }
        Ok(Message {
            session: SessionId::from_bytes(session),
            sender: PartyIndex::unchecked(sender),
            recipient,
            round,
            payload: rest.to_vec(),
        })
    }
}

/// Why a payload does not decode as the protocol's message type. The decoder's own message
/// is not kept: a point-to-point payload may carry secret sub-shares it could quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload does not decode as a {0} message")]
pub struct PayloadError(&'static str);

/// Encodes a protocol value as a CBOR payload.
pub(crate) fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, crate::error::Bug> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|_| crate::error::Bug("a protocol message failed to encode"))?;
    Ok(out)
}

/// Decodes an untrusted CBOR payload into a protocol value.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PayloadError("size-bounded"));
    }
    ciborium::from_reader(payload).map_err(|_| PayloadError("protocol"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            any::<[u8; 32]>(),
            0..MAX_PARTIES,
            proptest::option::of(0..MAX_PARTIES),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..512),
        )
            .prop_map(|(s, from, to, round, payload)| Message {
                session: SessionId::from_bytes(s),
                sender: PartyIndex::unchecked(from),
                recipient: to.map(PartyIndex::unchecked),
                round,
                payload,
            })
    }

    proptest! {
        #[test]
        fn wire_form_round_trips(m in arb_message()) {
            prop_assert_eq!(Message::from_bytes(&m.to_bytes()).unwrap(), m);
        }

        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Message::from_bytes(&bytes);
        }

        #[test]
        fn any_truncation_or_extension_is_refused(m in arb_message(), cut in 1usize..16) {
            let bytes = m.to_bytes();
            let short = &bytes[..bytes.len().saturating_sub(cut)];
            prop_assert!(Message::from_bytes(short).is_err());
            let mut long = bytes.clone();
            long.push(0);
            prop_assert!(Message::from_bytes(&long).is_err());
        }
    }

    #[test]
    fn wire_form_snapshot_is_stable() {
        let m = Message {
            session: SessionId::from_bytes([0xab; 32]),
            sender: PartyIndex::unchecked(1),
            recipient: None,
            round: 3,
            payload: vec![1, 2],
        };
        assert_eq!(
            hex::encode(m.to_bytes()),
            format!("01{}0001ffff0003000000020102", "ab".repeat(32))
        );
    }
}
