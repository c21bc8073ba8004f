//! The audit log's hash chain: one chain per tenant (and one, `_platform`, for events that
//! belong to no tenant, such as a request signed by an unknown credential). Each entry
//! commits to the previous entry's hash, so changing, deleting or reordering any entry
//! breaks every hash after it. This module is pure: [`AuditEntry::next`] builds the next
//! entry, [`verify_chain`] checks an exported chain offline (`coffer audit verify`); the
//! database appends entries inside the same transaction as the change they record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain of events that belong to no tenant.
pub const PLATFORM: &str = "_platform";

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
            None => (0, hex::encode([0u8; 32])),
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
            None => (0, hex::encode([0u8; 32])),
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
        })
        .collect())
}

/// Parses an export (one JSON entry per line; blank lines ignored).
pub fn parse_export(text: &str) -> Result<Vec<AuditEntry>, AuditError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| AuditError::Malformed {
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Writes entries as an export (one JSON entry per line).
pub fn to_export(entries: &[AuditEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
