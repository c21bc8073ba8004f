//! The audit log's hash chain: one chain per tenant (and one, `_platform`, for events that
//! belong to no tenant, such as a request signed by an unknown credential). Each entry
//! commits to the previous entry's hash, so changing, deleting or reordering any entry
//! breaks every hash after it. This module is pure: [`AuditEntry::next`] builds the next
//! entry, [`verify_chain`] checks an exported chain offline (`coffer audit verify`); the
//! server's database appends entries inside the same transaction as the change they record.
//!
//! The server alone could still rewrite history and re-hash everything after the change.
//! [`Checkpoint`]s close that gap: the signer nodes periodically co-sign a chain's head
//! ([`checkpoint_bytes`]), and each signer co-signs a new head only if the entries it is
//! shown extend the head it co-signed before ([`verify_segment`]). An export carries the
//! checkpoints next to the entries ([`to_export_full`]); [`verify_export`] checks that every
//! co-signed head is still in the chain.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::sign_bytes;
use crate::{PublicKey, Signature};

/// The chain of events that belong to no tenant.
pub const PLATFORM: &str = "_platform";

/// Domain tag of the bytes a signer signs for a checkpoint ([`checkpoint_bytes`]).
pub const CHECKPOINT_DOMAIN: &[u8] = b"coffer-audit-checkpoint-v1";

/// The `prev` of a chain's first entry, and the head of an empty chain: 32 zero bytes, hex.
pub fn zero_head() -> String {
    hex::encode([0u8; 32])
}

/// What a caller records: who did what to which object, with details (never secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Tenant id, or [`PLATFORM`].
    pub tenant: String,
    /// Who: a credential's key (hex), `server`, or a signer's name.
    pub actor: String,
    /// What happened, as `noun.verb` (`transaction.created`, `auth.refused`).
    pub action: String,
    /// The object's id (empty when there is none).
    pub object: String,
    /// Details (a JSON object).
    pub detail: serde_json::Value,
}

/// One entry of a tenant's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Tenant id, or [`PLATFORM`].
    pub tenant: String,
    /// Position in the tenant's chain, from 0.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Which object.
    pub object: String,
    /// Details.
    pub detail: serde_json::Value,
    /// The previous entry's hash (zeros for seq 0), hex.
    pub prev: String,
    /// This entry's hash, hex.
    pub hash: String,
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_be_bytes());
    out.extend_from_slice(field);
}

impl AuditEntry {
    /// The entry after `prev` (or the first entry of the chain), hashed.
    pub fn next(prev: Option<&AuditEntry>, event: AuditEvent, at: i64) -> AuditEntry {
        let (seq, prev) = match prev {
            Some(p) => (p.seq + 1, p.hash.clone()),
            None => (0, zero_head()),
        };
        let mut entry = AuditEntry {
            tenant: event.tenant,
            seq,
            at,
            actor: event.actor,
            action: event.action,
            object: event.object,
            detail: event.detail,
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 over every field but `hash`, each length-prefixed (the detail as JSON text).
    pub fn compute_hash(&self) -> String {
        let mut bytes = b"coffer-audit-v1".to_vec();
        put(&mut bytes, self.tenant.as_bytes());
        put(&mut bytes, &self.seq.to_be_bytes());
        put(&mut bytes, &self.at.to_be_bytes());
        put(&mut bytes, self.actor.as_bytes());
        put(&mut bytes, self.action.as_bytes());
        put(&mut bytes, self.object.as_bytes());
        put(&mut bytes, self.detail.to_string().as_bytes());
        put(&mut bytes, self.prev.as_bytes());
        hex::encode(Sha256::digest(&bytes))
    }
}

/// Why a chain does not verify (the first problem found, with its position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// An entry's hash does not match its contents (it was changed).
    #[error("entry {seq} of {tenant}: its contents do not match its hash (changed after it was written)")]
    Altered {
        /// Tenant.
        tenant: String,
        /// Position.
        seq: u64,
    },
    /// An entry does not commit to the entry before it (one was removed, inserted or moved).
    #[error("entry {seq} of {tenant}: does not follow the previous entry (an entry was removed, inserted or reordered)")]
    Broken {
        /// Tenant.
        tenant: String,
        /// Position.
        seq: u64,
    },
    /// Sequence numbers are not 0, 1, 2, ... per tenant.
    #[error("entry {found} of {tenant}: expected entry {expected} (missing or reordered entries)")]
    Gap {
        /// Tenant.
        tenant: String,
        /// Expected position.
        expected: u64,
        /// Position found.
        found: u64,
    },
    /// The export ends before a head the caller knows of (entries cut off at the end).
    #[error("the chain of {tenant} ends at {have} entries but {want} were checkpointed")]
    Truncated {
        /// Tenant.
        tenant: String,
        /// Entries present.
        have: u64,
        /// Entries expected.
        want: u64,
    },
    /// An entry of another tenant inside a tenant's segment.
    #[error("entry {seq} belongs to {found}, not to {tenant}")]
    ForeignEntry {
        /// The tenant whose segment it is.
        tenant: String,
        /// The tenant the entry names.
        found: String,
        /// Its position.
        seq: u64,
    },
    /// A checkpoint's head is not the chain's hash at that point: the entries its signers
    /// co-signed were changed, removed or reordered since (the chain was rewritten).
    #[error("the chain of {tenant} does not match the head its signers co-signed at {entries} entries (the log was rewritten)")]
    CheckpointMismatch {
        /// Tenant.
        tenant: String,
        /// Entries the checkpoint covers.
        entries: u64,
    },
    /// A checkpoint's signature does not verify.
    #[error(
        "checkpoint of {tenant} at {entries} entries: the signature of {signer} does not verify"
    )]
    CheckpointSignature {
        /// Tenant.
        tenant: String,
        /// Entries the checkpoint covers.
        entries: u64,
        /// The signer's key (hex).
        signer: String,
    },
    /// A checkpoint without any signature (it proves nothing).
    #[error("checkpoint of {tenant} at {entries} entries carries no signature")]
    CheckpointUnsigned {
        /// Tenant.
        tenant: String,
        /// Entries the checkpoint covers.
        entries: u64,
    },
    /// A line of an export does not parse.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// What a verified chain holds, per tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    /// Tenant.
    pub tenant: String,
    /// Entries.
    pub entries: u64,
    /// The last entry's hash (the head).
    pub head: String,
    /// Checkpoints of this chain that verified ([`verify_export`]; 0 from [`verify_chain`]).
    pub checkpoints: u64,
    /// Hex keys of every signer that co-signed one of those checkpoints, sorted (compare
    /// them with the roster you trust).
    pub checkpoint_signers: Vec<String>,
}

/// Verifies entries (any mix of tenants, each tenant's entries in order): every hash, every
/// link, no gap. Returns one summary per tenant, in order of first appearance.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<Vec<ChainSummary>, AuditError> {
    let mut heads: Vec<(String, u64, String)> = Vec::new();
    for e in entries {
        if e.compute_hash() != e.hash {
            return Err(AuditError::Altered {
                tenant: e.tenant.clone(),
                seq: e.seq,
            });
        }
        let slot = heads.iter_mut().find(|(t, _, _)| *t == e.tenant);
        let (expected, prev) = match &slot {
            Some((_, n, head)) => (*n, head.clone()),
            None => (0, zero_head()),
        };
        if e.seq != expected {
            return Err(AuditError::Gap {
                tenant: e.tenant.clone(),
                expected,
                found: e.seq,
            });
        }
        if e.prev != prev {
            return Err(AuditError::Broken {
                tenant: e.tenant.clone(),
                seq: e.seq,
            });
        }
        match slot {
            Some(s) => {
                s.1 += 1;
                s.2 = e.hash.clone();
            }
            None => heads.push((e.tenant.clone(), 1, e.hash.clone())),
        }
    }
    Ok(heads
        .into_iter()
        .map(|(tenant, entries, head)| ChainSummary {
            tenant,
            entries,
            head,
            checkpoints: 0,
            checkpoint_signers: Vec::new(),
        })
        .collect())
}

/// Checks a segment of `tenant`'s chain: `entries` must be the tenant's entries from
/// position `from` on, contiguous, each hash correct, the first one linking to `prev` (the
/// hash of entry `from - 1`, or [`zero_head`] when `from` is 0). Returns the head after the
/// segment (`prev` itself for an empty segment).
pub fn verify_segment(
    entries: &[AuditEntry],
    tenant: &str,
    from: u64,
    prev: &str,
) -> Result<String, AuditError> {
    if from == 0 && prev != zero_head() {
        return Err(AuditError::Broken {
            tenant: tenant.to_string(),
            seq: 0,
        });
    }
    let mut head = prev.to_string();
    let mut expected = from;
    for e in entries {
        if e.tenant != tenant {
            return Err(AuditError::ForeignEntry {
                tenant: tenant.to_string(),
                found: e.tenant.clone(),
                seq: e.seq,
            });
        }
        if e.seq != expected {
            return Err(AuditError::Gap {
                tenant: tenant.to_string(),
                expected,
                found: e.seq,
            });
        }
        if e.compute_hash() != e.hash {
            return Err(AuditError::Altered {
                tenant: tenant.to_string(),
                seq: e.seq,
            });
        }
        if e.prev != head {
            return Err(AuditError::Broken {
                tenant: tenant.to_string(),
                seq: e.seq,
            });
        }
        head = e.hash.clone();
        expected = expected.checked_add(1).ok_or_else(|| AuditError::Gap {
            tenant: tenant.to_string(),
            expected,
            found: e.seq,
        })?;
    }
    Ok(head)
}

/// What a signer signs for a checkpoint: [`CHECKPOINT_DOMAIN`], then the tenant, the number
/// of entries covered (u64 big-endian) and the head (hex text), each length-prefixed.
pub fn checkpoint_bytes(tenant: &str, entries: u64, head: &str) -> Vec<u8> {
    let mut out = CHECKPOINT_DOMAIN.to_vec();
    put(&mut out, tenant.as_bytes());
    put(&mut out, &entries.to_be_bytes());
    put(&mut out, head.as_bytes());
    out
}

/// A signer's signature over a checkpoint ([`checkpoint_bytes`]).
pub fn sign_checkpoint(sk: &SigningKey, tenant: &str, entries: u64, head: &str) -> Signature {
    sign_bytes(sk, &checkpoint_bytes(tenant, entries, head))
}

/// One signer's co-signature of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSignature {
    /// The signer's node key.
    pub signer: PublicKey,
    /// Its signature over [`checkpoint_bytes`].
    pub signature: Signature,
}

/// A chain's head after its first `entries` entries, co-signed by signer nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Tenant id, or [`PLATFORM`].
    pub tenant: String,
    /// How many entries it covers (the head is the hash of entry `entries - 1`).
    pub entries: u64,
    /// The head (hex; [`zero_head`] for 0 entries).
    pub head: String,
    /// The signers' co-signatures.
    pub signatures: Vec<CheckpointSignature>,
}

impl Checkpoint {
    /// The bytes every co-signature covers.
    pub fn bytes(&self) -> Vec<u8> {
        checkpoint_bytes(&self.tenant, self.entries, &self.head)
    }

    /// Checks every signature (any bad one is an error naming its signer) and returns the
    /// number of distinct signers.
    pub fn verify_signatures(&self) -> Result<usize, AuditError> {
        let msg = self.bytes();
        let mut signers = BTreeSet::new();
        for s in &self.signatures {
            s.signer
                .verify(&msg, &s.signature)
                .map_err(|_| AuditError::CheckpointSignature {
                    tenant: self.tenant.clone(),
                    entries: self.entries,
                    signer: s.signer.to_string(),
                })?;
            signers.insert(s.signer);
        }
        Ok(signers.len())
    }
}

/// An export: the entries and the checkpoints co-signed over them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Export {
    /// Entries, each tenant's in order.
    pub entries: Vec<AuditEntry>,
    /// Checkpoints.
    pub checkpoints: Vec<Checkpoint>,
}

/// The form of a checkpoint line of an export.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: Checkpoint,
}

/// Parses an export: one JSON entry per line, and lines `{"checkpoint": {...}}`; blank
/// lines ignored.
pub fn parse_export_full(text: &str) -> Result<Export, AuditError> {
    let mut out = Export::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |e: serde_json::Error| AuditError::Malformed {
            line: i + 1,
            reason: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(malformed)?;
        if value.get("checkpoint").is_some() {
            let c: CheckpointLine = serde_json::from_value(value).map_err(malformed)?;
            out.checkpoints.push(c.checkpoint);
        } else {
            out.entries
                .push(serde_json::from_value(value).map_err(malformed)?);
        }
    }
    Ok(out)
}

/// Parses the entries of an export (one JSON entry per line; checkpoint lines and blank
/// lines are skipped).
pub fn parse_export(text: &str) -> Result<Vec<AuditEntry>, AuditError> {
    parse_export_full(text).map(|e| e.entries)
}

/// Writes entries as an export (one JSON entry per line).
pub fn to_export(entries: &[AuditEntry]) -> String {
    to_export_full(entries, &[])
}

/// Writes entries (one JSON entry per line), then the checkpoints (one
/// `{"checkpoint": {...}}` line each).
pub fn to_export_full(entries: &[AuditEntry], checkpoints: &[Checkpoint]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    for c in checkpoints {
        let line = CheckpointLine {
            checkpoint: c.clone(),
        };
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Verifies an export: the entries ([`verify_chain`]), then every checkpoint: its head must
/// be the hash of entry `entries - 1` of its tenant (or [`zero_head`] for 0), a checkpoint
/// past the end of the chain means entries were cut off ([`AuditError::Truncated`]), and
/// every signature must verify. Each summary counts its chain's checkpoints and names
/// every signer that co-signed one.
pub fn verify_export(export: &Export) -> Result<Vec<ChainSummary>, AuditError> {
    let mut summaries = verify_chain(&export.entries)?;
    let mut hashes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &export.entries {
        hashes.entry(&e.tenant).or_default().push(&e.hash);
    }
    let mut signers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in &export.checkpoints {
        let chain = hashes
            .get(c.tenant.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let have = chain.len() as u64;
        if c.entries > have {
            return Err(AuditError::Truncated {
                tenant: c.tenant.clone(),
                have,
                want: c.entries,
            });
        }
        let expected = match c.entries.checked_sub(1) {
            None => zero_head(),
            Some(last) => usize::try_from(last)
                .ok()
                .and_then(|i| chain.get(i))
                .map(|h| h.to_string())
                .unwrap_or_default(),
        };
        if c.head != expected {
            return Err(AuditError::CheckpointMismatch {
                tenant: c.tenant.clone(),
                entries: c.entries,
            });
        }
        if c.signatures.is_empty() {
            return Err(AuditError::CheckpointUnsigned {
                tenant: c.tenant.clone(),
                entries: c.entries,
            });
        }
        c.verify_signatures()?;
        let names = signers.entry(c.tenant.clone()).or_default();
        names.extend(c.signatures.iter().map(|s| s.signer.to_string()));
        match summaries.iter_mut().find(|s| s.tenant == c.tenant) {
            Some(s) => s.checkpoints += 1,
            None => summaries.push(ChainSummary {
                tenant: c.tenant.clone(),
                entries: 0,
                head: zero_head(),
                checkpoints: 1,
                checkpoint_signers: Vec::new(),
            }),
        }
    }
    for s in &mut summaries {
        if let Some(names) = signers.remove(&s.tenant) {
            s.checkpoint_signers = names.into_iter().collect();
        }
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::public_key_of;
    use crate::testutil::sk;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let tenant = if i % 3 == 2 { PLATFORM } else { "t1" };
            let prev = out.iter().rev().find(|e| e.tenant == tenant);
            let e = AuditEntry::next(
                prev,
                AuditEvent {
                    tenant: tenant.into(),
                    actor: "server".into(),
                    action: "test.event".into(),
                    object: format!("obj-{i}"),
                    detail: serde_json::json!({"i": i, "amount": "5"}),
                },
                1_700_000_000 + i as i64,
            );
            out.push(e);
        }
        out
    }

    /// Details with floats (alert evidence: scores, medians) must read back to the very
    /// text they were hashed as; serde_json's default float parser is not exact, so the
    /// workspace enables `float_roundtrip` (without it, this fails for some of these values
    /// and a stored entry no longer matches its hash).
    #[test]
    fn float_details_survive_storage_as_text() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut prev: Option<AuditEntry> = None;
        for i in 0..2000u32 {
            // xorshift: reproducible, spread over magnitudes and mantissas.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            let score = if f.is_finite() { f } else { f64::from(i) / 7.0 };
            let e = AuditEntry::next(
                prev.as_ref(),
                AuditEvent {
                    tenant: "t1".into(),
                    actor: "server".into(),
                    action: "alert.raised".into(),
                    object: format!("al-{i}"),
                    detail: serde_json::json!({"score": score, "ratio": (x % 1_000_003) as f64 / 997.0}),
                },
                1_700_000_000,
            );
            // What the database gives back: the detail as stored text, parsed again.
            assert_eq!(back_text(&e), e.detail.to_string(), "entry {i}: {score:e}");
            prev = Some(e);
        }
    }

    fn back_text(e: &AuditEntry) -> String {
        serde_json::from_str::<serde_json::Value>(&e.detail.to_string())
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_written_chain_verifies_and_survives_export() {
        let c = chain(9);
        let s = verify_chain(&c).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].entries, 6);
        let back = parse_export(&to_export(&c)).unwrap();
        assert_eq!(back, c);
        assert_eq!(verify_chain(&back).unwrap(), s);
    }

    #[test]
    fn changing_deleting_or_reordering_any_entry_is_detected() {
        let c = chain(9);
        for i in 0..c.len() {
            let mut changed = c.clone();
            changed[i].detail = serde_json::json!({"i": i, "amount": "6"});
            assert!(matches!(
                verify_chain(&changed),
                Err(AuditError::Altered { .. })
            ));
            let mut rehashed = c.clone();
            rehashed[i].action = "other".into();
            rehashed[i].hash = rehashed[i].compute_hash();
            // Re-hashing the changed entry breaks the next one's link, unless it was
            // the tenant's last entry (a head the checkpoints pin).
            let last_of_tenant = !c[i + 1..].iter().any(|e| e.tenant == c[i].tenant);
            assert_eq!(
                verify_chain(&rehashed).is_err(),
                !last_of_tenant,
                "entry {i}"
            );
            let mut deleted = c.clone();
            deleted.remove(i);
            if !last_of_tenant {
                assert!(verify_chain(&deleted).is_err(), "deleting entry {i}");
            }
        }
        let mut swapped = c.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            verify_chain(&swapped),
            Err(AuditError::Gap { .. })
        ));
    }

    #[test]
    fn bad_export_lines_are_named() {
        let err = parse_export("{\"tenant\":1}\n").unwrap_err();
        assert!(matches!(err, AuditError::Malformed { line: 1, .. }));
    }

    /// A checkpoint of `tenant`'s first `n` entries of `c`, co-signed by keys `signers`.
    fn checkpoint(c: &[AuditEntry], tenant: &str, n: u64, signers: &[u8]) -> Checkpoint {
        let chain: Vec<&AuditEntry> = c.iter().filter(|e| e.tenant == tenant).collect();
        let head = match n {
            0 => zero_head(),
            n => chain[n as usize - 1].hash.clone(),
        };
        Checkpoint {
            tenant: tenant.into(),
            entries: n,
            signatures: signers
                .iter()
                .map(|i| CheckpointSignature {
                    signer: public_key_of(&sk(*i)),
                    signature: sign_checkpoint(&sk(*i), tenant, n, &head),
                })
                .collect(),
            head,
        }
    }

    /// Changes `tenant`'s entry `seq` and re-hashes it and every later entry of the tenant
    /// (fixing the links): what a server rewriting its own history would do.
    fn rewrite(c: &mut [AuditEntry], tenant: &str, seq: u64) {
        let mut prev: Option<String> = None;
        for e in c.iter_mut().filter(|e| e.tenant == tenant && e.seq >= seq) {
            if e.seq == seq {
                e.detail = serde_json::json!({"i": 99, "amount": "1000000"});
            }
            if let Some(p) = prev.take() {
                e.prev = p;
            }
            e.hash = e.compute_hash();
            prev = Some(e.hash.clone());
        }
    }

    #[test]
    fn a_segment_must_extend_the_given_head() {
        let c = chain(12);
        let t1: Vec<AuditEntry> = c.iter().filter(|e| e.tenant == "t1").cloned().collect();
        assert_eq!(t1.len(), 8);
        // The whole chain from 0, and a tail from 3 linked to entry 2.
        assert_eq!(
            verify_segment(&t1, "t1", 0, &zero_head()).unwrap(),
            t1[7].hash
        );
        assert_eq!(
            verify_segment(&t1[3..], "t1", 3, &t1[2].hash).unwrap(),
            t1[7].hash
        );
        // An empty segment keeps the head.
        assert_eq!(
            verify_segment(&[], "t1", 8, &t1[7].hash).unwrap(),
            t1[7].hash
        );
        // Wrong start, wrong link, a gap, a changed entry, another tenant's entry.
        assert!(matches!(
            verify_segment(&t1[3..], "t1", 2, &t1[1].hash),
            Err(AuditError::Gap { .. })
        ));
        assert!(matches!(
            verify_segment(&t1[3..], "t1", 3, &t1[1].hash),
            Err(AuditError::Broken { seq: 3, .. })
        ));
        assert!(matches!(
            verify_segment(&t1, "t1", 0, &t1[0].hash),
            Err(AuditError::Broken { seq: 0, .. })
        ));
        let mut gap = t1.clone();
        gap.remove(4);
        assert!(matches!(
            verify_segment(&gap, "t1", 0, &zero_head()),
            Err(AuditError::Gap { expected: 4, .. })
        ));
        let mut changed = t1.clone();
        changed[5].object = "other".into();
        assert!(matches!(
            verify_segment(&changed, "t1", 0, &zero_head()),
            Err(AuditError::Altered { seq: 5, .. })
        ));
        let platform: Vec<AuditEntry> =
            c.iter().filter(|e| e.tenant == PLATFORM).cloned().collect();
        assert!(matches!(
            verify_segment(&platform, "t1", 0, &zero_head()),
            Err(AuditError::ForeignEntry { .. })
        ));
        // A rewritten and re-hashed segment verifies by itself: only a head co-signed
        // before tells it apart.
        let mut rewritten = c.clone();
        rewrite(&mut rewritten, "t1", 3);
        let r1: Vec<AuditEntry> = rewritten.into_iter().filter(|e| e.tenant == "t1").collect();
        let new_head = verify_segment(&r1, "t1", 0, &zero_head()).unwrap();
        assert_ne!(new_head, t1[7].hash);
        assert_ne!(r1[4].hash, t1[4].hash);
    }

    #[test]
    fn an_export_with_checkpoints_round_trips_and_verifies() {
        let c = chain(12);
        let cps = vec![
            checkpoint(&c, "t1", 5, &[1, 2, 3]),
            checkpoint(&c, PLATFORM, 2, &[1, 2]),
            checkpoint(&c, "t1", 8, &[2, 3]),
            checkpoint(&c, "t2", 0, &[1]),
        ];
        let text = to_export_full(&c, &cps);
        assert_eq!(text.lines().count(), 16);
        let back = parse_export_full(&text).unwrap();
        assert_eq!(back.entries, c);
        assert_eq!(back.checkpoints, cps);
        // The plain parser still reads the entries of the new format.
        assert_eq!(parse_export(&text).unwrap(), c);
        let s = verify_export(&back).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].tenant.as_str(), s[0].entries, s[0].checkpoints),
            ("t1", 8, 2)
        );
        let mut all: Vec<String> = [1u8, 2, 3]
            .iter()
            .map(|i| public_key_of(&sk(*i)).to_string())
            .collect();
        all.sort();
        assert_eq!(s[0].checkpoint_signers, all);
        assert_eq!((s[1].tenant.as_str(), s[1].checkpoints), (PLATFORM, 1));
        assert_eq!(s[1].checkpoint_signers.len(), 2);
        assert_eq!(
            (s[2].tenant.as_str(), s[2].entries, s[2].checkpoints),
            ("t2", 0, 1)
        );
        // Without checkpoints the summary says so.
        let plain = verify_export(&Export {
            entries: c.clone(),
            checkpoints: vec![],
        })
        .unwrap();
        assert_eq!(plain, verify_chain(&c).unwrap());
        assert_eq!(plain[0].checkpoints, 0);
        // A checkpoint line with an unknown field is malformed.
        let bad = format!(
            "{}{{\"checkpoint\":{{\"tenant\":\"t1\",\"entries\":0,\"head\":\"{}\",\"signatures\":[],\"x\":1}}}}\n",
            to_export(&c),
            zero_head()
        );
        assert!(matches!(
            parse_export_full(&bad),
            Err(AuditError::Malformed { line: 13, .. })
        ));
    }

    #[test]
    fn a_forged_checkpoint_signature_is_named() {
        let c = chain(9);
        let mut cp = checkpoint(&c, "t1", 4, &[1, 2]);
        assert_eq!(cp.verify_signatures().unwrap(), 2);
        // Signer 2's signature over another head, presented as over this one.
        cp.signatures[1].signature = sign_checkpoint(&sk(2), "t1", 4, &c[0].hash);
        let err = verify_export(&Export {
            entries: c.clone(),
            checkpoints: vec![cp.clone()],
        })
        .unwrap_err();
        assert_eq!(
            err,
            AuditError::CheckpointSignature {
                tenant: "t1".into(),
                entries: 4,
                signer: public_key_of(&sk(2)).to_string(),
            }
        );
        // A signature by a key not its own.
        cp.signatures[1].signature = sign_checkpoint(&sk(3), "t1", 4, &cp.head);
        assert!(matches!(
            cp.verify_signatures(),
            Err(AuditError::CheckpointSignature { .. })
        ));
        // Moving a signature to another tenant's checkpoint breaks it too.
        let mut moved = checkpoint(&c, "t1", 4, &[1]);
        moved.tenant = PLATFORM.into();
        assert!(moved.verify_signatures().is_err());
        // No signature at all proves nothing.
        let mut unsigned = checkpoint(&c, "t1", 4, &[1]);
        unsigned.signatures.clear();
        assert!(matches!(
            verify_export(&Export {
                entries: c.clone(),
                checkpoints: vec![unsigned],
            }),
            Err(AuditError::CheckpointUnsigned { .. })
        ));
    }

    #[test]
    fn a_checkpoint_whose_head_is_not_in_the_chain_is_refused() {
        let c = chain(9);
        let mut cp = checkpoint(&c, "t1", 4, &[1, 2]);
        // Co-signed, but over the head of another point of the chain.
        cp.head = c[0].hash.clone();
        cp.signatures = vec![CheckpointSignature {
            signer: public_key_of(&sk(1)),
            signature: sign_checkpoint(&sk(1), "t1", 4, &cp.head),
        }];
        assert_eq!(
            verify_export(&Export {
                entries: c,
                checkpoints: vec![cp],
            })
            .unwrap_err(),
            AuditError::CheckpointMismatch {
                tenant: "t1".into(),
                entries: 4,
            }
        );
    }

    #[test]
    fn cutting_entries_after_a_checkpoint_is_truncation() {
        let c = chain(12);
        let cp = checkpoint(&c, "t1", 7, &[1, 2, 3]);
        // Drop t1's last two entries (6 and 7): the chain still verifies on its own.
        let cut: Vec<AuditEntry> = c
            .iter()
            .filter(|e| !(e.tenant == "t1" && e.seq >= 6))
            .cloned()
            .collect();
        assert!(verify_chain(&cut).is_ok());
        assert_eq!(
            verify_export(&Export {
                entries: cut,
                checkpoints: vec![cp.clone()],
            })
            .unwrap_err(),
            AuditError::Truncated {
                tenant: "t1".into(),
                have: 6,
                want: 7,
            }
        );
        // A chain missing altogether is truncated too.
        let others: Vec<AuditEntry> = c.iter().filter(|e| e.tenant != "t1").cloned().collect();
        assert!(matches!(
            verify_export(&Export {
                entries: others,
                checkpoints: vec![cp],
            }),
            Err(AuditError::Truncated { have: 0, .. })
        ));
    }

    #[test]
    fn rewriting_and_rehashing_everything_after_is_caught_by_a_checkpoint() {
        let c = chain(12);
        let cps = vec![checkpoint(&c, "t1", 5, &[1, 2, 3])];
        for seq in 0..5 {
            let mut rewritten = c.clone();
            rewrite(&mut rewritten, "t1", seq);
            assert_ne!(rewritten, c);
            // The chain alone cannot tell.
            assert!(verify_chain(&rewritten).is_ok(), "entry {seq}");
            let text = to_export_full(&rewritten, &cps);
            let err = verify_export(&parse_export_full(&text).unwrap()).unwrap_err();
            assert_eq!(
                err,
                AuditError::CheckpointMismatch {
                    tenant: "t1".into(),
                    entries: 5,
                },
                "entry {seq}"
            );
            assert!(err.to_string().contains("rewritten"));
        }
        // Rewriting after the checkpoint is beyond what it covers (the next one pins it).
        let mut later = c.clone();
        rewrite(&mut later, "t1", 6);
        assert!(verify_export(&Export {
            entries: later,
            checkpoints: cps,
        })
        .is_ok());
    }
}
