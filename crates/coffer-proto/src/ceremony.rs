//! The offline ceremony: every party of a group run in one process, for development,
//! rehearsal and tests. It puts all shares on one machine, which production never does
//! (there, shares are born on separate signers); callers say so to the user.

use crate::error::{ArgumentError, SessionError};
use crate::ids::{GroupParams, PartyIndex, SessionId};
use crate::path::DerivationPath;
use crate::primes::{PrimeSource, Primes};
use crate::protocol::{self, Signature};
use crate::scheme::Scheme;
use crate::session::{run_threaded, SessionFactory};
use crate::share::KeyShare;

/// Why an offline ceremony failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// Bad arguments or shares.
    #[error(transparent)]
    Argument(#[from] ArgumentError),
    /// A party's session failed.
    #[error("{party}: {source}")]
    Party {
        /// The party whose session reported the failure.
        party: PartyIndex,
        /// What it reported.
        source: SessionError,
    },
    /// A session could not be started.
    #[error(transparent)]
    Start(#[from] SessionError),
}

fn collect<O>(
    parties: &[PartyIndex],
    results: Vec<Result<O, SessionError>>,
) -> Result<Vec<O>, CeremonyError> {
    parties
        .iter()
        .zip(results)
        .map(|(party, r)| {
            r.map_err(|source| CeremonyError::Party {
                party: *party,
                source,
            })
        })
        .collect()
}

/// Runs DKG for all `n` parties; returns the shares in party order.
pub fn keygen(
    scheme: Scheme,
    params: GroupParams,
    primes: PrimeSource,
) -> Result<Vec<KeyShare>, CeremonyError> {
    let primes = if scheme == Scheme::EcdsaSecp256k1 {
        primes.take(usize::from(params.n()))?
    } else {
        Vec::new()
    };
    keygen_with_primes(scheme, params, primes)
}

/// Runs DKG for all `n` parties with the given primes (one set per party, ECDSA only).
pub fn keygen_with_primes(
    scheme: Scheme,
    params: GroupParams,
    primes: Vec<Primes>,
) -> Result<Vec<KeyShare>, CeremonyError> {
    let session = SessionId::random();
    let parties: Vec<PartyIndex> = params.parties().collect();
    let mut primes: Vec<Option<Primes>> = primes.into_iter().map(Some).collect();
    primes.resize_with(parties.len(), || None);
    let mut factories: Vec<(PartyIndex, SessionFactory<KeyShare>)> =
        Vec::with_capacity(parties.len());
    for (p, pr) in parties.iter().copied().zip(primes) {
        factories.push((
            p,
            Box::new(move || protocol::keygen(scheme, session, p, params, pr)),
        ));
    }
    collect(&parties, run_threaded(factories, |m, _| vec![m]))
}

/// Checks that `shares` can sign together and returns the first `t` of them by party index.
pub fn signing_shares(shares: &[KeyShare]) -> Result<Vec<&KeyShare>, ArgumentError> {
    let first = shares.first().ok_or(ArgumentError::TooFewSigners {
        given: 0,
        threshold: 2,
    })?;
    let params = first.params()?;
    for s in shares {
        if !s.same_key(first) {
            return Err(ArgumentError::MismatchedShares {
                reason: "the shares belong to different keys",
            });
        }
        if s.epoch() != first.epoch() {
            return Err(ArgumentError::MismatchedShares {
                reason: "the shares are from different refresh epochs",
            });
        }
    }
    let indices: Vec<PartyIndex> = shares.iter().map(KeyShare::party).collect();
    let set = crate::ids::signing_set_among(params.t(), &first.members(), &indices)?;
    Ok(set
        .iter()
        .filter_map(|p| shares.iter().find(|s| s.party() == *p))
        .collect())
}

/// Signs `message` (under the child at `path`) with the first `t` of `shares`.
pub fn sign(
    shares: &[KeyShare],
    message: &[u8],
    path: &DerivationPath,
) -> Result<Signature, CeremonyError> {
    sign_with(shares, message, path, false)
}

/// Signs a BIP341 sighash for a Taproot key-path spend of the P2TR output of the child key at
/// `path` ([`protocol::sign_taproot`]), with the first `t` shares.
pub fn sign_taproot(
    shares: &[KeyShare],
    message: &[u8],
    path: &DerivationPath,
) -> Result<Signature, CeremonyError> {
    sign_with(shares, message, path, true)
}

fn sign_with(
    shares: &[KeyShare],
    message: &[u8],
    path: &DerivationPath,
    taproot: bool,
) -> Result<Signature, CeremonyError> {
    let signers = signing_shares(shares)?;
    let set: Vec<PartyIndex> = signers.iter().map(|s| s.party()).collect();
    let session = SessionId::random();
    let mut factories: Vec<(PartyIndex, SessionFactory<Signature>)> =
        Vec::with_capacity(signers.len());
    for s in signers {
        let (share, set2, message, path) = (s.clone(), set.clone(), message.to_vec(), path.clone());
        factories.push((
            s.party(),
            Box::new(move || {
                if taproot {
                    protocol::sign_taproot(&share, session, &set2, &message, &path)
                } else {
                    protocol::sign(&share, session, &set2, &message, &path)
                }
            }),
        ));
    }
    let mut sigs = collect(&set, run_threaded(factories, |m, _| vec![m]))?;
    sigs.pop()
        .ok_or(CeremonyError::Argument(ArgumentError::TooFewSigners {
            given: 0,
            threshold: 2,
        }))
}

/// Refreshes all `n` shares of a key together; returns the new shares in party order.
pub fn refresh(shares: &[KeyShare], primes: PrimeSource) -> Result<Vec<KeyShare>, CeremonyError> {
    let first = shares.first().ok_or(ArgumentError::TooFewSigners {
        given: 0,
        threshold: 2,
    })?;
    let params = first.params()?;
    if shares.len() != usize::from(params.n()) {
        return Err(ArgumentError::MismatchedShares {
            reason: "refresh needs the shares of all parties",
        }
        .into());
    }
    // Same key, same epoch, all distinct parties (checked by `signing_shares`).
    signing_shares(shares)?;
    let mut sorted: Vec<&KeyShare> = shares.iter().collect();
    sorted.sort_by_key(|s| s.party());
    let session = SessionId::random();
    let mut primes = if first.scheme() == Scheme::EcdsaSecp256k1 {
        primes.take(sorted.len())?.into_iter().map(Some).collect()
    } else {
        Vec::new()
    };
    primes.resize_with(sorted.len(), || None);
    let mut factories: Vec<(PartyIndex, SessionFactory<KeyShare>)> =
        Vec::with_capacity(sorted.len());
    for (s, pr) in sorted.iter().zip(primes) {
        let share = (*s).clone();
        factories.push((
            s.party(),
            Box::new(move || protocol::refresh(&share, session, pr)),
        ));
    }
    let parties: Vec<PartyIndex> = sorted.iter().map(|s| s.party()).collect();
    collect(&parties, run_threaded(factories, |m, _| vec![m]))
}

/// Refreshes a FROST key among every member except `removed`: the removed parties' shares
/// no longer combine with anything. The shares of all remaining members must be given.
/// CGGMP keys cannot reshare (the library does not support it).
pub fn refresh_removing(
    shares: &[KeyShare],
    removed: &[PartyIndex],
) -> Result<Vec<KeyShare>, CeremonyError> {
    let first = shares.first().ok_or(ArgumentError::TooFewSigners {
        given: 0,
        threshold: 2,
    })?;
    if first.scheme() == Scheme::EcdsaSecp256k1 {
        return Err(ArgumentError::WrongScheme {
            expected: "schnorr-bip340 or ed25519 (cggmp24 cannot reshare)",
            actual: first.scheme().name(),
        }
        .into());
    }
    let old_members = first.members();
    if let Some(r) = removed.iter().find(|r| !old_members.contains(r)) {
        return Err(ArgumentError::PartyIndexOutOfRange {
            index: r.get(),
            parties: first.params()?.n(),
        }
        .into());
    }
    let remaining: Vec<PartyIndex> = old_members
        .iter()
        .copied()
        .filter(|m| !removed.contains(m))
        .collect();
    signing_shares(shares)?;
    let mut sorted: Vec<&KeyShare> = shares.iter().collect();
    sorted.sort_by_key(|s| s.party());
    let given: Vec<PartyIndex> = sorted.iter().map(|s| s.party()).collect();
    if given != remaining {
        return Err(ArgumentError::MismatchedShares {
            reason:
                "a reshare needs the shares of every remaining party, and none of the removed ones",
        }
        .into());
    }
    let session = SessionId::random();
    let mut factories: Vec<(PartyIndex, SessionFactory<KeyShare>)> =
        Vec::with_capacity(sorted.len());
    for s in &sorted {
        let (share, members) = ((*s).clone(), remaining.clone());
        factories.push((
            s.party(),
            Box::new(move || protocol::reshare_without(&share, session, &members)),
        ));
    }
    collect(&given, run_threaded(factories, |m, _| vec![m]))
}
