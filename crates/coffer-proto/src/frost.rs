//! Threshold Schnorr on ZF FROST 3.0, written once and generic over the ciphersuite:
//! BIP340 (`frost-secp256k1-tr`) and Ed25519 (`frost-ed25519`). Key generation and refresh
//! are the library's DKG and DKG-based refresh; signing is the library's two rounds, run
//! without a coordinator: every signer broadcasts its commitments, builds the same signing
//! package, broadcasts its signature share and aggregates (the library names a cheating
//! signer). Broadcasts are checked with an echo in the following round, so a party that
//! sends different values to different peers is caught and named.

use std::collections::BTreeMap;

use frost_core::keys::dkg;
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Abort, AbortReason, ArgumentError, Bug, SessionError};
use crate::ids::{signing_set_among, GroupParams, PartyIndex, SessionId};
use crate::message::{decode_payload, encode_payload, Message};
use crate::path::DerivationPath;
use crate::scheme::Scheme;
use crate::session::{check_echoes, Inbox};

/// What Coffer needs to know about a FROST ciphersuite beyond the library's trait.
pub trait FrostSuite: Ciphersuite + 'static {
    /// The scheme this ciphersuite implements.
    const SCHEME: Scheme;
    /// The same curve in `generic-ec`, for HD derivation with `hd-wallet`.
    type Curve: generic_ec::Curve;
    /// The non-hardened HD derivation used for this curve.
    type Hd: hd_wallet::HdWallet<Self::Curve>;
    /// Whether the library serializes scalars little-endian (Ed25519) or big-endian.
    const SCALAR_LITTLE_ENDIAN: bool;
    /// Coffer's encoding of a group public key (x-only for BIP340).
    fn encode_public_key(group_point: &[u8]) -> Result<Vec<u8>, Bug>;
    /// The packages HD derivation starts from. For BIP340 the public key is x-only, which
    /// denotes the point with even y, so the packages are negated when the group point's y
    /// is odd (the library's own `EvenY` conversion); Ed25519 uses them as they are.
    fn hd_parent(
        kp: KeyPackage<Self>,
        pkp: PublicKeyPackage<Self>,
    ) -> (KeyPackage<Self>, PublicKeyPackage<Self>);
    /// The packages for a Taproot key-path spend (BIP86: output key `Q = P + H_TapTweak(P)G`,
    /// no script tree), by the library's own BIP341 `Tweak`; only BIP340 has one.
    #[allow(clippy::type_complexity)]
    fn taproot_key_path(
        kp: KeyPackage<Self>,
        pkp: PublicKeyPackage<Self>,
    ) -> Result<(KeyPackage<Self>, PublicKeyPackage<Self>), ArgumentError>;
}

impl FrostSuite for frost_secp256k1_tr::Secp256K1Sha256TR {
    const SCHEME: Scheme = Scheme::SchnorrBip340;
    type Curve = generic_ec::curves::Secp256k1;
    type Hd = hd_wallet::Slip10;
    const SCALAR_LITTLE_ENDIAN: bool = false;
    fn encode_public_key(group_point: &[u8]) -> Result<Vec<u8>, Bug> {
        // Compressed SEC1 (33 bytes) to BIP340 x-only (32 bytes).
        group_point
            .get(1..33)
            .filter(|_| group_point.len() == 33)
            .map(<[u8]>::to_vec)
            .ok_or(Bug("unexpected secp256k1 point encoding"))
    }
    fn hd_parent(
        kp: KeyPackage<Self>,
        pkp: PublicKeyPackage<Self>,
    ) -> (KeyPackage<Self>, PublicKeyPackage<Self>) {
        use frost_secp256k1_tr::keys::EvenY;
        (kp.into_even_y(None), pkp.into_even_y(None))
    }
    fn taproot_key_path(
        kp: KeyPackage<Self>,
        pkp: PublicKeyPackage<Self>,
    ) -> Result<(KeyPackage<Self>, PublicKeyPackage<Self>), ArgumentError> {
        use frost_secp256k1_tr::keys::Tweak;
        Ok((kp.tweak::<&[u8]>(None), pkp.tweak::<&[u8]>(None)))
    }
}

impl FrostSuite for frost_ed25519::Ed25519Sha512 {
    const SCHEME: Scheme = Scheme::Ed25519;
    type Curve = generic_ec::curves::Ed25519;
    type Hd = hd_wallet::Edwards;
    const SCALAR_LITTLE_ENDIAN: bool = true;
    fn encode_public_key(group_point: &[u8]) -> Result<Vec<u8>, Bug> {
        if group_point.len() == 32 {
            Ok(group_point.to_vec())
        } else {
            Err(Bug("unexpected ed25519 point encoding"))
        }
    }
    fn hd_parent(
        kp: KeyPackage<Self>,
        pkp: PublicKeyPackage<Self>,
    ) -> (KeyPackage<Self>, PublicKeyPackage<Self>) {
        (kp, pkp)
    }
    fn taproot_key_path(
        _kp: KeyPackage<Self>,
        _pkp: PublicKeyPackage<Self>,
    ) -> Result<(KeyPackage<Self>, PublicKeyPackage<Self>), ArgumentError> {
        Err(ArgumentError::WrongScheme {
            expected: "schnorr-bip340",
            actual: "ed25519",
        })
    }
}

/// One party's FROST key share with the group's public data.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FrostShare<C: FrostSuite> {
    pub(crate) key_package: KeyPackage<C>,
    pub(crate) public_key_package: PublicKeyPackage<C>,
    /// Threshold, and `n` = the number of members.
    pub(crate) params: GroupParams,
    pub(crate) index: PartyIndex,
    pub(crate) chain_code: [u8; 32],
    /// The group's members, sorted. Empty means `0..n` (every share before the first
    /// reshare, and every share file written before this field existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<PartyIndex>,
}

impl<C: FrostSuite> core::fmt::Debug for FrostShare<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrostShare")
            .field("scheme", &C::SCHEME)
            .field("index", &self.index)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// The identifier FROST uses for a party: its index plus one.
pub(crate) fn identifier<C: Ciphersuite>(p: PartyIndex) -> Result<Identifier<C>, Bug> {
    Identifier::try_from(p.get().wrapping_add(1)).map_err(|_| Bug("party identifier"))
}

/// The chain code of a FROST key: FROST's DKG does not make one, so it is derived from the
/// group key by a domain-separated hash (documented in docs/hd-derivation.md).
pub(crate) fn derived_chain_code(scheme: Scheme, group_point: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(b"coffer/frost-chain-code/v1\0");
    h.update(scheme.name().as_bytes());
    h.update([0]);
    h.update(group_point);
    h.finalize().into()
}

impl<C: FrostSuite> FrostShare<C> {
    /// The group's members, sorted.
    pub(crate) fn members(&self) -> Vec<PartyIndex> {
        if self.members.is_empty() {
            self.params.parties().collect()
        } else {
            self.members.clone()
        }
    }

    /// The group's verifying key as the library encodes it.
    pub(crate) fn group_point(&self) -> Result<Vec<u8>, Bug> {
        self.public_key_package
            .verifying_key()
            .serialize()
            .map_err(|_| Bug("group key does not serialize"))
    }

    /// Checks that the parts agree with each other and with the stated group (run after
    /// decoding a share from disk).
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let kp = &self.key_package;
        let pkp = &self.public_key_package;
        let members = self.members();
        if members.len() != usize::from(self.params.n()) || members.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("member list does not match the group");
        }
        if !members.contains(&self.index) {
            return Err("party index outside the group");
        }
        let member_ids: Option<Vec<_>> = members.iter().map(|m| identifier::<C>(*m).ok()).collect();
        if member_ids.as_deref()
            != Some(&pkp.verifying_shares().keys().copied().collect::<Vec<_>>()[..])
        {
            return Err("verifying shares do not match the members");
        }
        if identifier::<C>(self.index).ok() != Some(*kp.identifier()) {
            return Err("identifier does not match the party index");
        }
        if *kp.min_signers() != self.params.t() || pkp.min_signers() != Some(self.params.t()) {
            return Err("threshold does not match");
        }
        if pkp.verifying_shares().len() != usize::from(self.params.n()) {
            return Err("number of verifying shares does not match the group");
        }
        if kp.verifying_key() != pkp.verifying_key() {
            return Err("group keys differ");
        }
        if pkp.verifying_shares().get(kp.identifier()) != Some(kp.verifying_share()) {
            return Err("verifying share differs from the public package");
        }
        let derived: frost_core::keys::VerifyingShare<C> = (*kp.signing_share()).into();
        if &derived != kp.verifying_share() {
            return Err("secret share does not match its verifying share");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// DKG and refresh
// ---------------------------------------------------------------------------------------

/// A round-2 value with the sender's echo of round 1.
type Echoed<T> = (T, Vec<[u8; 32]>);

const ROUND_1: u16 = 1;
const ROUND_2: u16 = 2;

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct DkgRound1<C: Ciphersuite> {
    pub(crate) session: [u8; 32],
    pub(crate) package: dkg::round1::Package<C>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct DkgRound2<C: Ciphersuite> {
    pub(crate) session: [u8; 32],
    pub(crate) package: dkg::round2::Package<C>,
    /// Digest of every party's round-1 package as the sender received it, by party index.
    pub(crate) echo: Vec<[u8; 32]>,
}

enum DkgMode<C: FrostSuite> {
    Keygen,
    /// Refresh among the given members (all of the old group, or a subset that removes the
    /// others: FROST's refresh can shrink the group).
    Refresh(Box<FrostShare<C>>),
}

enum DkgState<C: Ciphersuite> {
    Round1(dkg::round1::SecretPackage<C>),
    Round2(dkg::round2::SecretPackage<C>),
    Done,
}

/// A FROST DKG or DKG-based refresh for one party.
pub(crate) struct FrostDkg<C: FrostSuite> {
    inbox: Inbox,
    me: PartyIndex,
    session: SessionId,
    t: u16,
    members: Vec<PartyIndex>,
    mode: DkgMode<C>,
    state: DkgState<C>,
    ids: BTreeMap<Identifier<C>, PartyIndex>,
    own_round1_digest: [u8; 32],
    round1: BTreeMap<Identifier<C>, dkg::round1::Package<C>>,
    round2: BTreeMap<Identifier<C>, Echoed<dkg::round2::Package<C>>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<FrostShare<C>, SessionError>>,
    finished: bool,
}

pub(crate) fn digest_of<T: Serialize>(value: &T) -> Result<[u8; 32], Bug> {
    let bytes = encode_payload(value)?;
    Ok(sha2::Sha256::digest(bytes).into())
}

/// Maps the library's culprits to party indices.
pub(crate) fn frost_abort<C: Ciphersuite>(
    ids: &BTreeMap<Identifier<C>, PartyIndex>,
    e: &frost_core::Error<C>,
    reason: AbortReason,
) -> SessionError {
    let mut culprits: Vec<PartyIndex> = e
        .culprits()
        .iter()
        .filter_map(|c| ids.get(c).copied())
        .collect();
    culprits.sort();
    culprits.dedup();
    let reason = match e {
        frost_core::Error::InvalidProofOfKnowledge { .. } => AbortReason::InvalidProof,
        frost_core::Error::InvalidSecretShare { .. } => AbortReason::InvalidShare,
        frost_core::Error::InvalidSignatureShare { .. } => AbortReason::InvalidSignatureShare,
        _ if culprits.is_empty() => AbortReason::Library {
            protocol: "frost",
            detail: e.to_string(),
        },
        _ => reason,
    };
    Abort { culprits, reason }.into()
}

impl<C: FrostSuite> FrostDkg<C> {
    /// Starts key generation for `me` in a group of `params`.
    pub(crate) fn keygen(
        session: SessionId,
        me: PartyIndex,
        params: GroupParams,
    ) -> Result<Self, SessionError> {
        Self::start(
            session,
            me,
            params.t(),
            params.parties().collect(),
            DkgMode::Keygen,
        )
    }

    /// Starts a refresh of `share`; all members take part.
    pub(crate) fn refresh(session: SessionId, share: &FrostShare<C>) -> Result<Self, SessionError> {
        Self::start(
            session,
            share.index,
            share.params.t(),
            share.members(),
            DkgMode::Refresh(Box::new(share.clone())),
        )
    }

    /// Starts a refresh among `members` only, removing every other member of the group:
    /// their shares no longer match anything. At least `t` members must remain.
    pub(crate) fn reshare_without(
        session: SessionId,
        share: &FrostShare<C>,
        members: &[PartyIndex],
    ) -> Result<Self, SessionError> {
        let old = share.members();
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        if let Some(stranger) = members.iter().find(|m| !old.contains(m)) {
            return Err(ArgumentError::PartyIndexOutOfRange {
                index: stranger.get(),
                parties: share.params.n(),
            }
            .into());
        }
        if members.len() < usize::from(share.params.t()) {
            return Err(ArgumentError::TooFewSigners {
                given: members.len(),
                threshold: share.params.t(),
            }
            .into());
        }
        Self::start(
            session,
            share.index,
            share.params.t(),
            members,
            DkgMode::Refresh(Box::new(share.clone())),
        )
    }

    fn start(
        session: SessionId,
        me: PartyIndex,
        t: u16,
        members: Vec<PartyIndex>,
        mode: DkgMode<C>,
    ) -> Result<Self, SessionError> {
        if !members.contains(&me) {
            return Err(ArgumentError::NotAParticipant { party: me }.into());
        }
        let n = u16::try_from(members.len()).map_err(|_| Bug("group size"))?;
        GroupParams::new(t, n)?;
        let mut ids = BTreeMap::new();
        for p in &members {
            ids.insert(identifier::<C>(*p)?, *p);
        }
        let my_id = identifier::<C>(me)?;
        let rng = rand_core::OsRng;
        let (secret, package) = match &mode {
            DkgMode::Keygen => dkg::part1::<C, _>(my_id, n, t, rng),
            DkgMode::Refresh(_) => {
                frost_core::keys::refresh::refresh_dkg_part1::<C, _>(my_id, n, t, rng)
            }
        }
        .map_err(|e| frost_abort(&ids, &e, AbortReason::InvalidOutput))?;
        let msg = DkgRound1 {
            session: *session.as_bytes(),
            package,
        };
        let own_round1_digest = digest_of(&msg.package)?;
        let payload = encode_payload(&msg)?;
        Ok(Self {
            inbox: Inbox::new(session, me, members.clone()),
            me,
            session,
            t,
            members,
            mode,
            state: DkgState::Round1(secret),
            ids,
            own_round1_digest,
            round1: BTreeMap::new(),
            round2: BTreeMap::new(),
            outgoing: vec![Message {
                session,
                sender: me,
                recipient: None,
                round: ROUND_1,
                payload,
            }],
            outcome: None,
            finished: false,
        })
    }

    fn echo(&self) -> Result<Vec<[u8; 32]>, Bug> {
        let mut out = Vec::with_capacity(self.members.len());
        for p in self.members.iter().copied() {
            if p == self.me {
                out.push(self.own_round1_digest);
            } else {
                let id = identifier::<C>(p)?;
                out.push(match self.round1.get(&id) {
                    Some(pkg) => digest_of(pkg)?,
                    None => [0; 32],
                });
            }
        }
        Ok(out)
    }

    fn advance(&mut self) -> Result<(), SessionError> {
        let others = self.members.len() - 1;
        if matches!(self.state, DkgState::Round1(_)) && self.round1.len() == others {
            let DkgState::Round1(secret) = std::mem::replace(&mut self.state, DkgState::Done)
            else {
                return Err(Bug("dkg state").into());
            };
            let (secret2, packages) = match &self.mode {
                DkgMode::Keygen => dkg::part2(secret, &self.round1),
                DkgMode::Refresh(_) => {
                    frost_core::keys::refresh::refresh_dkg_part2(secret, &self.round1)
                }
            }
            .map_err(|e| frost_abort(&self.ids, &e, AbortReason::InvalidProof))?;
            let echo = self.echo()?;
            for (id, package) in packages {
                let to = *self
                    .ids
                    .get(&id)
                    .ok_or(Bug("unknown identifier from part2"))?;
                let payload = encode_payload(&DkgRound2 {
                    session: *self.session.as_bytes(),
                    package,
                    echo: echo.clone(),
                })?;
                self.outgoing.push(Message {
                    session: self.session,
                    sender: self.me,
                    recipient: Some(to),
                    round: ROUND_2,
                    payload,
                });
            }
            self.state = DkgState::Round2(secret2);
        }
        if matches!(self.state, DkgState::Round2(_)) && self.round2.len() == others {
            let DkgState::Round2(secret2) = std::mem::replace(&mut self.state, DkgState::Done)
            else {
                return Err(Bug("dkg state").into());
            };
            self.check_echoes()?;
            let round2: BTreeMap<_, _> = self
                .round2
                .iter()
                .map(|(id, (p, _))| (*id, p.clone()))
                .collect();
            let (key_package, public_key_package, chain_code) = match &self.mode {
                DkgMode::Keygen => {
                    let (kp, pkp) = dkg::part3(&secret2, &self.round1, &round2)
                        .map_err(|e| frost_abort(&self.ids, &e, AbortReason::InvalidShare))?;
                    let point = pkp
                        .verifying_key()
                        .serialize()
                        .map_err(|_| Bug("group key"))?;
                    (kp, pkp, derived_chain_code(C::SCHEME, &point))
                }
                DkgMode::Refresh(old) => {
                    let r = frost_core::keys::refresh::refresh_dkg_shares(
                        &secret2,
                        &self.round1,
                        &round2,
                        old.public_key_package.clone(),
                        old.key_package.clone(),
                    );
                    match r {
                        Ok((kp, pkp)) => (kp, pkp, old.chain_code),
                        Err(e) => return Err(self.blame_refresh(&e)),
                    }
                }
            };
            let n = u16::try_from(self.members.len()).map_err(|_| Bug("group size"))?;
            let contiguous = self
                .members
                .iter()
                .copied()
                .eq((0..n).map(PartyIndex::unchecked));
            let share = FrostShare {
                key_package,
                public_key_package,
                params: GroupParams::new(self.t, n)?,
                index: self.me,
                chain_code,
                members: if contiguous {
                    Vec::new()
                } else {
                    self.members.clone()
                },
            };
            share
                .validate()
                .map_err(|_| SessionError::from(Abort::unattributed(AbortReason::InvalidOutput)))?;
            if let DkgMode::Refresh(old) = &self.mode {
                if share.public_key_package.verifying_key()
                    != old.public_key_package.verifying_key()
                {
                    return Err(Abort::unattributed(AbortReason::InvalidOutput).into());
                }
            }
            self.finished = true;
            self.outcome = Some(Ok(share));
        }
        Ok(())
    }

    fn check_echoes(&self) -> Result<(), SessionError> {
        let mine = self.echo()?;
        let mut echoes = Vec::with_capacity(self.round2.len());
        for (id, (_, echo)) in &self.round2 {
            echoes.push((
                *self.ids.get(id).ok_or(Bug("unknown sender id"))?,
                echo.as_slice(),
            ));
        }
        check_echoes(&mine, &self.members, echoes, ROUND_1, ROUND_2)
    }

    /// The library's refresh reports a bad sub-share without naming its dealer; find the
    /// dealer by checking each sub-share against its dealer's commitments alone.
    fn blame_refresh(&self, e: &frost_core::Error<C>) -> SessionError {
        if !matches!(e, frost_core::Error::InvalidSecretShare { .. }) {
            return frost_abort(&self.ids, e, AbortReason::InvalidShare);
        }
        let me = self.me.get();
        let x = generic_ec::Scalar::<C::Curve>::from(u64::from(me) + 1);
        let mut culprits = Vec::new();
        for (id, (package, _)) in &self.round2 {
            let Some(commitments) = self.round1.get(id) else {
                continue;
            };
            if !sub_share_matches::<C>(package, commitments, &x) {
                if let Some(p) = self.ids.get(id) {
                    culprits.push(*p);
                }
            }
        }
        Abort {
            culprits,
            reason: AbortReason::InvalidShare,
        }
        .into()
    }
}

/// Feldman check of a refresh sub-share against a zero-constant commitment (used only to
/// name the culprit after the library has already refused the sub-shares).
fn sub_share_matches<C: FrostSuite>(
    package: &dkg::round2::Package<C>,
    round1: &dkg::round1::Package<C>,
    x: &generic_ec::Scalar<C::Curve>,
) -> bool {
    use generic_ec::{Point, Scalar};
    let share_bytes = package.signing_share().serialize();
    let share = if C::SCALAR_LITTLE_ENDIAN {
        Scalar::<C::Curve>::from_le_bytes(&share_bytes)
    } else {
        Scalar::<C::Curve>::from_be_bytes(&share_bytes)
    };
    let Ok(share) = share else { return false };
    let Ok(coefficients) = round1.commitment().serialize() else {
        return false;
    };
    // Refresh commitments omit the constant term: they are the coefficients of x^1, x^2, ...
    let mut expected = Point::<C::Curve>::zero();
    let mut power = *x;
    for c in coefficients {
        let Ok(point) = Point::<C::Curve>::from_bytes(&c) else {
            return false;
        };
        expected += point * power;
        power *= x;
    }
    Point::generator() * share == expected
}

impl<C: FrostSuite> FrostDkg<C> {
    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        let id = identifier::<C>(from)?;
        let malformed = || {
            SessionError::from(Abort::blaming(
                from,
                AbortReason::MalformedMessage { round: m.round },
            ))
        };
        match (m.round, m.recipient.is_some()) {
            (ROUND_1, false) => {
                let msg: DkgRound1<C> = decode_payload(&m.payload).map_err(|_| malformed())?;
                if msg.session != *self.session.as_bytes() {
                    return Err(malformed());
                }
                self.round1.insert(id, msg.package);
            }
            (ROUND_2, true) => {
                let msg: DkgRound2<C> = decode_payload(&m.payload).map_err(|_| malformed())?;
                if msg.session != *self.session.as_bytes() {
                    return Err(malformed());
                }
                self.round2.insert(id, (msg.package, msg.echo));
            }
            _ => return Err(malformed()),
        }
        self.advance()
    }
}

// ---------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct SignRound1<C: Ciphersuite> {
    pub(crate) session: [u8; 32],
    pub(crate) commitments: frost_core::round1::SigningCommitments<C>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct SignRound2<C: Ciphersuite> {
    pub(crate) session: [u8; 32],
    pub(crate) share: frost_core::round2::SignatureShare<C>,
    /// Digest of every signer's commitments as the sender received them, in signer order.
    pub(crate) echo: Vec<[u8; 32]>,
}

/// The packages that sign at `path`: the HD child's, tweaked for a Taproot key-path spend when
/// `taproot`.
#[allow(clippy::type_complexity)]
pub(crate) fn signing_packages<C: FrostSuite>(
    share: &FrostShare<C>,
    path: &DerivationPath,
    taproot: bool,
) -> Result<(KeyPackage<C>, PublicKeyPackage<C>), SessionError> {
    let (kp, pkp) = crate::frost_hd::derive(share, path)?;
    if taproot {
        Ok(C::taproot_key_path(kp, pkp)?)
    } else {
        Ok((kp, pkp))
    }
}

/// A FROST signing run for one party: outputs the 64-byte signature.
pub(crate) struct FrostSign<C: FrostSuite> {
    inbox: Inbox,
    me: PartyIndex,
    session: SessionId,
    signers: Vec<PartyIndex>,
    ids: BTreeMap<Identifier<C>, PartyIndex>,
    key_package: KeyPackage<C>,
    public_key_package: PublicKeyPackage<C>,
    message: Vec<u8>,
    nonces: Option<frost_core::round1::SigningNonces<C>>,
    commitments: BTreeMap<Identifier<C>, frost_core::round1::SigningCommitments<C>>,
    signing_package: Option<frost_core::SigningPackage<C>>,
    shares: BTreeMap<Identifier<C>, Echoed<frost_core::round2::SignatureShare<C>>>,
    outgoing: Vec<Message>,
    outcome: Option<Result<Vec<u8>, SessionError>>,
    finished: bool,
}

impl<C: FrostSuite> FrostSign<C> {
    /// Starts signing `message` under the child key at `path` with the first `t` of `signers`
    /// (under its BIP86 Taproot output key when `taproot`).
    pub(crate) fn start(
        share: &FrostShare<C>,
        session: SessionId,
        signers: &[PartyIndex],
        message: &[u8],
        path: &DerivationPath,
        taproot: bool,
    ) -> Result<Self, SessionError> {
        let set = signing_set_among(share.params.t(), &share.members(), signers)?;
        if !set.contains(&share.index) {
            return Err(ArgumentError::NotAParticipant { party: share.index }.into());
        }
        let (key_package, public_key_package) = signing_packages(share, path, taproot)?;
        let mut ids = BTreeMap::new();
        for p in &set {
            ids.insert(identifier::<C>(*p)?, *p);
        }
        let (nonces, commitments) =
            frost_core::round1::commit(key_package.signing_share(), &mut rand_core::OsRng);
        let my_id = identifier::<C>(share.index)?;
        let payload = encode_payload(&SignRound1 {
            session: *session.as_bytes(),
            commitments,
        })?;
        let mut own = BTreeMap::new();
        own.insert(my_id, commitments);
        Ok(Self {
            inbox: Inbox::new(session, share.index, set.clone()),
            me: share.index,
            session,
            signers: set,
            ids,
            key_package,
            public_key_package,
            message: message.to_vec(),
            nonces: Some(nonces),
            commitments: own,
            signing_package: None,
            shares: BTreeMap::new(),
            outgoing: vec![Message {
                session,
                sender: share.index,
                recipient: None,
                round: ROUND_1,
                payload,
            }],
            outcome: None,
            finished: false,
        })
    }

    fn echo(&self) -> Result<Vec<[u8; 32]>, Bug> {
        self.ids
            .keys()
            .map(|id| match self.commitments.get(id) {
                Some(c) => digest_of(c),
                None => Ok([0; 32]),
            })
            .collect()
    }

    fn advance(&mut self) -> Result<(), SessionError> {
        let t = self.signers.len();
        if self.signing_package.is_none() && self.commitments.len() == t {
            let package = frost_core::SigningPackage::new(self.commitments.clone(), &self.message);
            let nonces = self.nonces.take().ok_or(Bug("nonces already used"))?;
            let share = frost_core::round2::sign(&package, &nonces, &self.key_package)
                .map_err(|e| frost_abort(&self.ids, &e, AbortReason::InvalidOutput))?;
            let echo = self.echo()?;
            let my_id = identifier::<C>(self.me)?;
            let payload = encode_payload(&SignRound2 {
                session: *self.session.as_bytes(),
                share,
                echo: echo.clone(),
            })?;
            self.shares.insert(my_id, (share, echo));
            self.outgoing.push(Message {
                session: self.session,
                sender: self.me,
                recipient: None,
                round: ROUND_2,
                payload,
            });
            self.signing_package = Some(package);
        }
        if let Some(package) = &self.signing_package {
            if self.shares.len() == t {
                let mine = self.echo()?;
                let mut echoes = Vec::with_capacity(self.shares.len());
                for (id, (_, echo)) in &self.shares {
                    echoes.push((
                        *self.ids.get(id).ok_or(Bug("unknown signer id"))?,
                        echo.as_slice(),
                    ));
                }
                check_echoes(&mine, &self.signers, echoes, ROUND_1, ROUND_2)?;
                let shares: BTreeMap<_, _> =
                    self.shares.iter().map(|(id, (s, _))| (*id, *s)).collect();
                let signature = frost_core::aggregate(package, &shares, &self.public_key_package)
                    .map_err(|e| {
                    frost_abort(&self.ids, &e, AbortReason::InvalidSignatureShare)
                })?;
                let bytes = signature
                    .serialize()
                    .map_err(|_| Bug("signature does not serialize"))?;
                self.finished = true;
                self.outcome = Some(Ok(bytes));
            }
        }
        Ok(())
    }

    fn handle_inner(&mut self, m: Message) -> Result<(), SessionError> {
        self.inbox.admit(&m)?;
        let from = m.sender;
        let id = identifier::<C>(from)?;
        let malformed = || {
            SessionError::from(Abort::blaming(
                from,
                AbortReason::MalformedMessage { round: m.round },
            ))
        };
        match (m.round, m.recipient.is_some()) {
            (ROUND_1, false) => {
                let msg: SignRound1<C> = decode_payload(&m.payload).map_err(|_| malformed())?;
                if msg.session != *self.session.as_bytes() {
                    return Err(malformed());
                }
                self.commitments.insert(id, msg.commitments);
            }
            (ROUND_2, false) => {
                let msg: SignRound2<C> = decode_payload(&m.payload).map_err(|_| malformed())?;
                if msg.session != *self.session.as_bytes() {
                    return Err(malformed());
                }
                self.shares.insert(id, (msg.share, msg.echo));
            }
            _ => return Err(malformed()),
        }
        self.advance()
    }
}

crate::session::explicit_session!(FrostDkg<C: FrostSuite>, FrostShare<C>);
crate::session::explicit_session!(FrostSign<C: FrostSuite>, Vec<u8>);
