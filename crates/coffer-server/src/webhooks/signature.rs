//! Webhook signatures, for the server that sends and for receivers that check: pure
//! functions, no I/O, no clock (the caller passes `now`).
//!
//! A delivery carries three headers:
//!
//! - `Coffer-Event-Id: ev-<hex>`: the event's id, the same on every retry of it;
//! - `Coffer-Timestamp: <unix seconds>`: when this attempt was signed;
//! - `Coffer-Signature: t=<unix seconds>,v1=<hex>`: `v1` is
//!   `HMAC-SHA256(key, "<t>.<event id>.<body>")`, where `key` is the 32 bytes the
//!   endpoint's hex secret encodes and `body` the exact request body bytes.
//!
//! [`verify`] refuses, with a typed [`VerifyError`], a malformed header, a signature that
//! does not match (wrong secret, altered body, id or timestamp), a timestamp outside the
//! tolerance (a stale capture replayed later, or a clock far ahead), and an event id the
//! receiver's [`ReplayGuard`] has already accepted (a replayed delivery). A receiver should
//! answer 2xx to [`VerifyError::Replayed`]: the sender retries an event whose
//! acknowledgement it did not get, with the same event id.
//!
//! The HMAC is the `hmac` crate's; the comparison is its constant-time `verify_slice`.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The event id header.
pub const EVENT_ID_HEADER: &str = "Coffer-Event-Id";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "Coffer-Timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "Coffer-Signature";

/// The tolerance receivers should use unless they have a reason not to (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Longest event id accepted.
pub const MAX_EVENT_ID_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The three signed headers of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Coffer-Event-Id`.
    pub event_id: String,
    /// `Coffer-Timestamp`.
    pub timestamp: String,
    /// `Coffer-Signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs, to set on a request.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (EVENT_ID_HEADER, &self.event_id),
            (TIMESTAMP_HEADER, &self.timestamp),
            (SIGNATURE_HEADER, &self.signature),
        ]
    }

    /// Reads the headers through `get` (a case-insensitive header lookup of the receiver's
    /// HTTP library); a missing one is [`VerifyError::MissingHeader`].
    pub fn from_lookup<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<SignedHeaders, VerifyError> {
        let one = |name: &'static str| {
            get(name)
                .map(str::to_string)
                .ok_or(VerifyError::MissingHeader(name))
        };
        Ok(SignedHeaders {
            event_id: one(EVENT_ID_HEADER)?,
            timestamp: one(TIMESTAMP_HEADER)?,
            signature: one(SIGNATURE_HEADER)?,
        })
    }
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header is absent.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// A header does not have the documented form.
    #[error("the {header} header is malformed: {reason}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `Coffer-Timestamp` and the signature's `t=` differ.
    #[error("the timestamp header ({header}) is not the signed one ({signed})")]
    TimestampMismatch {
        /// `Coffer-Timestamp`.
        header: i64,
        /// `t=` of `Coffer-Signature`.
        signed: i64,
    },
    /// The HMAC does not match: another secret, or the body, id or timestamp were altered.
    #[error("the signature does not match (wrong secret, or the body, event id or timestamp was altered)")]
    BadSignature,
    /// Signed longer ago than the tolerance allows.
    #[error("the delivery was signed {age} s ago, beyond the tolerance of {tolerance} s")]
    Stale {
        /// Seconds since it was signed.
        age: i64,
        /// The tolerance.
        tolerance: i64,
    },
    /// Signed further in the future than the tolerance allows.
    #[error(
        "the delivery is signed {ahead} s in the future, beyond the tolerance of {tolerance} s"
    )]
    FromTheFuture {
        /// Seconds ahead of the receiver's clock.
        ahead: i64,
        /// The tolerance.
        tolerance: i64,
    },
    /// This event id was accepted before: a replayed delivery.
    #[error("event {event_id} was already accepted (a replayed delivery)")]
    Replayed {
        /// The event id.
        event_id: String,
    },
}

/// Remembers accepted event ids so a replayed delivery is refused. Entries need only be
/// kept until their timestamp falls out of the tolerance window: older deliveries are
/// refused as stale anyway.
pub trait ReplayGuard {
    /// Records `event_id` as accepted, to be kept until `keep_until` (unix seconds).
    /// Returns `false` when it was already recorded (nothing changes then).
    fn first_acceptance(&mut self, event_id: &str, keep_until: i64, now: i64) -> bool;
}

/// An in-memory [`ReplayGuard`] (one process; a receiver with several instances needs a
/// shared store behind the trait).
#[derive(Debug, Default, Clone)]
pub struct MemoryReplayGuard {
    seen: HashMap<String, i64>,
}

impl MemoryReplayGuard {
    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn first_acceptance(&mut self, event_id: &str, keep_until: i64, now: i64) -> bool {
        self.seen.retain(|_, until| *until >= now);
        if self.seen.contains_key(event_id) {
            return false;
        }
        self.seen.insert(event_id.to_string(), keep_until);
        true
    }
}

fn mac(secret: &[u8], timestamp: i64, event_id: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(event_id.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

#[allow(clippy::panic)] // HMAC accepts every key length (RFC 2104); this is never reached.
fn unreachable_hmac() -> HmacSha256 {
    panic!("HMAC-SHA256 refused a key")
}

/// Signs a delivery of `body` for event `event_id` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], event_id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
    let tag = mac(secret, timestamp, event_id, body)
        .finalize()
        .into_bytes();
    SignedHeaders {
        event_id: event_id.to_string(),
        timestamp: timestamp.to_string(),
        signature: format!("t={timestamp},v1={}", hex::encode(tag)),
    }
}

fn parse_timestamp(text: &str, header: &'static str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Malformed {
            header,
            reason: "the timestamp must be 1 to 12 decimal digits",
        });
    }
    text.parse().map_err(|_| VerifyError::Malformed {
        header,
        reason: "the timestamp must be 1 to 12 decimal digits",
    })
}

/// `t=<digits>,v1=<64 hex>` into the timestamp and the 32-byte tag.
fn parse_signature(header: &str) -> Result<(i64, [u8; 32]), VerifyError> {
    const H: &str = SIGNATURE_HEADER;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = Some(parse_timestamp(v, H)?),
            Some(("v1", v)) if v1.is_none() => {
                let mut tag = [0u8; 32];
                hex::decode_to_slice(v, &mut tag).map_err(|_| VerifyError::Malformed {
                    header: H,
                    reason: "v1 must be 64 hex digits",
                })?;
                v1 = Some(tag);
            }
            _ => {
                return Err(VerifyError::Malformed {
                    header: H,
                    reason: "expected t=<unix seconds>,v1=<hex>",
                })
            }
        }
    }
    match (t, v1) {
        (Some(t), Some(v1)) => Ok((t, v1)),
        _ => Err(VerifyError::Malformed {
            header: H,
            reason: "expected t=<unix seconds>,v1=<hex>",
        }),
    }
}

/// Whether `id` has the form of an event id (`ev-` and lowercase hex, bounded).
pub fn is_event_id(id: &str) -> bool {
    id.len() <= MAX_EVENT_ID_LEN
        && id.strip_prefix("ev-").is_some_and(|h| {
            !h.is_empty() && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// Checks a delivery: the headers' form, the HMAC over timestamp, event id and `body`
/// under `secret` (in constant time), the timestamp within `tolerance_secs` of `now`, and
/// that `seen` has not accepted the event id before (it is recorded only when everything
/// else holds, so forged or stale deliveries never fill the guard).
pub fn verify(
    secret: &[u8],
    headers: &SignedHeaders,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
    seen: &mut impl ReplayGuard,
) -> Result<(), VerifyError> {
    if !is_event_id(&headers.event_id) {
        return Err(VerifyError::Malformed {
            header: EVENT_ID_HEADER,
            reason: "expected ev- and at most 61 lowercase hex digits",
        });
    }
    let header_t = parse_timestamp(&headers.timestamp, TIMESTAMP_HEADER)?;
    let (t, tag) = parse_signature(&headers.signature)?;
    if t != header_t {
        return Err(VerifyError::TimestampMismatch {
            header: header_t,
            signed: t,
        });
    }
    mac(secret, t, &headers.event_id, body)
        .verify_slice(&tag)
        .map_err(|_| VerifyError::BadSignature)?;
    let tolerance = tolerance_secs.max(0);
    if now.saturating_sub(t) > tolerance {
        return Err(VerifyError::Stale {
            age: now.saturating_sub(t),
            tolerance,
        });
    }
    if t.saturating_sub(now) > tolerance {
        return Err(VerifyError::FromTheFuture {
            ahead: t.saturating_sub(now),
            tolerance,
        });
    }
    if !seen.first_acceptance(&headers.event_id, t.saturating_add(tolerance), now) {
        return Err(VerifyError::Replayed {
            event_id: headers.event_id.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    const SECRET: [u8; 32] = [7u8; 32];
    const ID: &str = "ev-00112233445566778899aabbccddeeff";
    const NOW: i64 = 1_800_000_000;

    /// RFC 4231 test case 2 through the same HMAC: the primitive is the standard one.
    #[test]
    fn the_hmac_is_standard_hmac_sha256() {
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_delivery_verifies_once_and_its_replay_is_refused() {
        let body = br#"{"type":"transaction.signed"}"#;
        let h = sign(&SECRET, ID, NOW, body);
        assert_eq!(h.timestamp, NOW.to_string());
        assert!(h.signature.starts_with(&format!("t={NOW},v1=")));
        let mut seen = MemoryReplayGuard::default();
        verify(&SECRET, &h, body, NOW + 3, 300, &mut seen).unwrap();
        assert_eq!(
            verify(&SECRET, &h, body, NOW + 4, 300, &mut seen),
            Err(VerifyError::Replayed {
                event_id: ID.into()
            })
        );
        // A retry of the same event (new timestamp, new signature) is a replay too.
        let retry = sign(&SECRET, ID, NOW + 10, body);
        assert!(matches!(
            verify(&SECRET, &retry, body, NOW + 10, 300, &mut seen),
            Err(VerifyError::Replayed { .. })
        ));
    }

    #[test]
    fn wrong_secret_tampered_body_stale_and_future_deliveries_are_refused() {
        let body = b"{}";
        let h = sign(&SECRET, ID, NOW, body);
        let mut seen = MemoryReplayGuard::default();
        assert_eq!(
            verify(&[8u8; 32], &h, body, NOW, 300, &mut seen),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&SECRET, &h, b"{ }", NOW, 300, &mut seen),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&SECRET, &h, body, NOW + 301, 300, &mut seen),
            Err(VerifyError::Stale {
                age: 301,
                tolerance: 300
            })
        );
        assert_eq!(
            verify(&SECRET, &h, body, NOW - 301, 300, &mut seen),
            Err(VerifyError::FromTheFuture {
                ahead: 301,
                tolerance: 300
            })
        );
        // None of the refusals consumed the event id.
        assert!(seen.is_empty());
        verify(&SECRET, &h, body, NOW + 300, 300, &mut seen).unwrap();
    }

    #[test]
    fn altered_headers_are_refused() {
        let body = b"x";
        let h = sign(&SECRET, ID, NOW, body);
        let mut seen = MemoryReplayGuard::default();
        let other_id = SignedHeaders {
            event_id: "ev-01".into(),
            ..h.clone()
        };
        assert_eq!(
            verify(&SECRET, &other_id, body, NOW, 300, &mut seen),
            Err(VerifyError::BadSignature)
        );
        let moved = SignedHeaders {
            timestamp: (NOW + 1).to_string(),
            ..h.clone()
        };
        assert!(matches!(
            verify(&SECRET, &moved, body, NOW, 300, &mut seen),
            Err(VerifyError::TimestampMismatch { .. })
        ));
        // The signature's own timestamp moved (with the header): the HMAC no longer holds.
        let resigned = SignedHeaders {
            timestamp: (NOW + 1).to_string(),
            signature: h
                .signature
                .replace(&NOW.to_string(), &(NOW + 1).to_string()),
            ..h.clone()
        };
        assert_eq!(
            verify(&SECRET, &resigned, body, NOW, 300, &mut seen),
            Err(VerifyError::BadSignature)
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,v1=00,t=2",
            "t=-1,v1=00",
        ] {
            let hh = SignedHeaders {
                signature: bad.into(),
                ..h.clone()
            };
            assert!(
                matches!(
                    verify(&SECRET, &hh, body, NOW, 300, &mut seen),
                    Err(VerifyError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "ev-",
            "EV-00",
            "ev-XYZ",
            &format!("ev-{}", "a".repeat(62)),
        ] {
            let hh = SignedHeaders {
                event_id: bad.to_string(),
                ..h.clone()
            };
            assert!(
                matches!(
                    verify(&SECRET, &hh, body, NOW, 300, &mut seen),
                    Err(VerifyError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        let lookup = |name: &str| (name == EVENT_ID_HEADER).then_some(ID);
        assert_eq!(
            SignedHeaders::from_lookup(lookup),
            Err(VerifyError::MissingHeader(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn the_replay_guard_forgets_ids_after_their_window() {
        let mut g = MemoryReplayGuard::default();
        assert!(g.first_acceptance("ev-01", 100, 50));
        assert!(!g.first_acceptance("ev-01", 100, 60));
        assert!(g.first_acceptance("ev-02", 200, 101));
        assert_eq!(g.len(), 1);
    }

    proptest! {
        #[test]
        fn verify_accepts_what_sign_makes_and_no_single_byte_change(
            secret in proptest::collection::vec(any::<u8>(), 1..64),
            id_bytes in proptest::collection::vec(any::<u8>(), 1..16),
            t in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 1..512),
            at in any::<proptest::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let id = format!("ev-{}", hex::encode(&id_bytes));
            let h = sign(&secret, &id, t, &body);
            let mut seen = MemoryReplayGuard::default();
            let mut altered = body.clone();
            let i = at.index(altered.len());
            altered[i] ^= flip;
            prop_assert_eq!(
                verify(&secret, &h, &altered, t, 300, &mut seen),
                Err(VerifyError::BadSignature)
            );
            prop_assert_eq!(verify(&secret, &h, &body, t, 300, &mut seen), Ok(()));
        }
    }
}
