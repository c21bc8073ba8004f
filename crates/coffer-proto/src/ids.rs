//! Validated identifiers shared by every protocol: session ids, party indices, group
//! parameters and epochs. Untrusted numbers become these types only through validation.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ArgumentError;

/// The largest group Coffer supports (`n`); bounded so that message fan-out and
/// per-party proofs stay predictable.
pub const MAX_PARTIES: u16 = 16;

/// A fresh 32-byte identifier for one protocol run. It is bound into the protocol's
/// execution id and carried by every message, so a message from one run is refused by
/// every other run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// Wraps 32 bytes chosen by the caller (the coordinator, or a test).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A uniformly random session id from the operating system's generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The execution id handed to the protocol library: the session id under a
    /// domain-separated hash that also names the protocol, so that one session id can never
    /// make two different protocols accept each other's messages.
    pub(crate) fn execution_id(&self, protocol: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"coffer/execution-id/v1\0");
        h.update((protocol.len() as u64).to_be_bytes());
        h.update(protocol.as_bytes());
        h.update(self.0);
        h.finalize().into()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", hex::encode(self.0))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A party's index in the key-generation group, `0 <= i < n`. The same index is used in
/// every later protocol on that key (signing uses a subset of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartyIndex(u16);

impl PartyIndex {
    /// A party index checked against the group size.
    pub fn new(i: u16, params: GroupParams) -> Result<Self, ArgumentError> {
        if i < params.n() {
            Ok(Self(i))
        } else {
            Err(ArgumentError::PartyIndexOutOfRange {
                index: i,
                parties: params.n(),
            })
        }
    }

    /// An index taken as is; callers check it against a group with [`GroupParams::contains`].
    pub const fn unchecked(i: u16) -> Self {
        Self(i)
    }

    /// The zero-based index.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The one-based number shown to people ("party 1 of 3").
    pub const fn number(self) -> u32 {
        self.0 as u32 + 1
    }
}

impl fmt::Display for PartyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "party {}", self.number())
    }
}

/// Threshold `t` and group size `n`, with `2 <= t <= n <= 16`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawGroupParams", into = "RawGroupParams")]
pub struct GroupParams {
    t: u16,
    n: u16,
}

#[derive(Serialize, Deserialize)]
struct RawGroupParams {
    threshold: u16,
    parties: u16,
}

impl TryFrom<RawGroupParams> for GroupParams {
    type Error = ArgumentError;
    fn try_from(raw: RawGroupParams) -> Result<Self, Self::Error> {
        GroupParams::new(raw.threshold, raw.parties)
    }
}

impl From<GroupParams> for RawGroupParams {
    fn from(p: GroupParams) -> Self {
        RawGroupParams {
            threshold: p.t,
            parties: p.n,
        }
    }
}

impl GroupParams {
    /// Validates `2 <= t <= n <= 16`.
    pub fn new(t: u16, n: u16) -> Result<Self, ArgumentError> {
        if n > MAX_PARTIES {
            return Err(ArgumentError::TooManyParties {
                parties: n,
                max: MAX_PARTIES,
            });
        }
        if t < 2 {
            return Err(ArgumentError::ThresholdTooSmall { threshold: t });
        }
        if t > n {
            return Err(ArgumentError::ThresholdAboveParties {
                threshold: t,
                parties: n,
            });
        }
        Ok(Self { t, n })
    }

    /// The threshold: how many parties must sign.
    pub const fn t(self) -> u16 {
        self.t
    }

    /// The number of share holders.
    pub const fn n(self) -> u16 {
        self.n
    }

    /// Every party index of the group, in order.
    pub fn parties(self) -> impl Iterator<Item = PartyIndex> {
        (0..self.n).map(PartyIndex)
    }

    /// Whether `i` belongs to this group.
    pub const fn contains(self, i: PartyIndex) -> bool {
        i.0 < self.n
    }
}

/// The refresh generation of a key's shares: 0 at key generation, one more after each
/// refresh. Shares of different epochs never sign together.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch after a refresh.
    pub fn next(self) -> Result<Self, ArgumentError> {
        self.0
            .checked_add(1)
            .map(Epoch)
            .ok_or(ArgumentError::EpochExhausted)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Validates a signing set: between `t` and `n` distinct members of the group, sorted.
/// Returns exactly the first `t` of them by party index (the protocols take exactly `t`).
pub fn signing_set(
    params: GroupParams,
    parties: &[PartyIndex],
) -> Result<Vec<PartyIndex>, ArgumentError> {
    let members: Vec<PartyIndex> = params.parties().collect();
    signing_set_among(params.t(), &members, parties)
}

/// Like [`signing_set`], for a group whose members are not `0..n` (after a reshare that
/// removed parties).
pub fn signing_set_among(
    t: u16,
    members: &[PartyIndex],
    parties: &[PartyIndex],
) -> Result<Vec<PartyIndex>, ArgumentError> {
    let mut sorted = parties.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        if pair[0] == pair[1] {
            return Err(ArgumentError::DuplicateParty { party: pair[0] });
        }
    }
    if let Some(bad) = sorted.iter().find(|p| !members.contains(p)) {
        return Err(ArgumentError::PartyIndexOutOfRange {
            index: bad.get(),
            parties: u16::try_from(members.len()).unwrap_or(u16::MAX),
        });
    }
    if sorted.len() < usize::from(t) {
        return Err(ArgumentError::TooFewSigners {
            given: sorted.len(),
            threshold: t,
        });
    }
    sorted.truncate(usize::from(t));
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_params_accept_exactly_the_supported_range() {
        for n in 0..=20u16 {
            for t in 0..=20u16 {
                let ok = (2..=n).contains(&t) && n <= MAX_PARTIES;
                assert_eq!(GroupParams::new(t, n).is_ok(), ok, "t={t} n={n}");
            }
        }
    }

    #[test]
    fn signing_set_takes_the_first_t_distinct_members() {
        let p = GroupParams::new(2, 4).unwrap();
        let set = signing_set(p, &[PartyIndex(3), PartyIndex(1), PartyIndex(2)]).unwrap();
        assert_eq!(set, vec![PartyIndex(1), PartyIndex(2)]);
        assert!(matches!(
            signing_set(p, &[PartyIndex(1), PartyIndex(1)]),
            Err(ArgumentError::DuplicateParty { .. })
        ));
        assert!(matches!(
            signing_set(p, &[PartyIndex(1)]),
            Err(ArgumentError::TooFewSigners { .. })
        ));
        assert!(matches!(
            signing_set(p, &[PartyIndex(1), PartyIndex(4)]),
            Err(ArgumentError::PartyIndexOutOfRange { .. })
        ));
    }

    #[test]
    fn execution_ids_differ_per_protocol_and_session() {
        let a = SessionId::from_bytes([1; 32]);
        let b = SessionId::from_bytes([2; 32]);
        assert_ne!(a.execution_id("keygen"), a.execution_id("sign"));
        assert_ne!(a.execution_id("keygen"), b.execution_id("keygen"));
    }
}
