//! A signer's co-signature of audit-log checkpoints ([`Task::AuditCheckpoint`]). The server
//! alone holds the audit chains, so it could rewrite history and re-hash every entry after
//! the change; each signer therefore remembers, per chain, the head it last co-signed
//! (a sealed blob `audit-<first 32 hex characters of SHA-256(tenant)>` of its share store,
//! holding the number of entries and the head) and co-signs a new head only if the entries
//! it is shown *extend* that head:
//!
//! 1. the segment is the tenant's entries from `from` on, contiguous, every hash correct,
//!    the first linking to `prev` ([`coffer_policy::audit::verify_segment`]);
//! 2. with `to = from + entries`, and (c, h) the count and head this signer holds: c > to
//!    (the chain went back) and c < from (the segment starts after what it knows) are
//!    refused; otherwise the segment's head at c must be h, else the log was rewritten;
//! 3. it stores (to, new head) and answers [`Outcome::Checkpointed`] with its node key's
//!    signature over [`coffer_policy::audit::checkpoint_bytes`].
//!
//! The job is answered at once, without a protocol session.
//!
//! [`Task::AuditCheckpoint`]: coffer_net::frames::Task::AuditCheckpoint

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use coffer_net::frames::{CheckpointJob, Outcome};
use coffer_policy::audit::{sign_checkpoint, verify_segment, zero_head};

use crate::node::SignerNode;
use crate::store::ShareStore;

/// Longest tenant id this signer keeps a checkpoint for (ids are short; the bound keeps a
/// hostile server from making refusals and state arbitrarily large).
pub const MAX_TENANT_LEN: usize = 256;

/// What a signer holds of one chain: the checkpoint it last co-signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The chain's tenant (checked on read: the blob name is a hash of it).
    pub tenant: String,
    /// Entries covered.
    pub entries: u64,
    /// The head after them (hex).
    pub head: String,
}

/// Why the checkpoint state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A stored state does not decode or names another tenant.
    #[error("audit checkpoint state {0} is corrupt")]
    Corrupt(String),
}

/// The blob holding this signer's checkpoint of `tenant`'s chain (tenant ids are arbitrary
/// strings: only a hash of them goes into the name).
pub fn blob_name(tenant: &str) -> String {
    let digest = hex::encode(Sha256::digest(tenant.as_bytes()));
    format!("audit-{}", &digest[..32])
}

/// The checkpoint this signer holds for `tenant` (0 entries and the zero head if none).
pub fn held(store: &ShareStore, tenant: &str) -> Result<Held, CheckpointError> {
    let name = blob_name(tenant);
    match store.get_blob(&name)? {
        Some(bytes) => {
            let h: Held = serde_json::from_slice(&bytes)
                .map_err(|_| CheckpointError::Corrupt(name.clone()))?;
            if h.tenant != tenant {
                return Err(CheckpointError::Corrupt(name));
            }
            Ok(h)
        }
        None => Ok(Held {
            tenant: tenant.to_string(),
            entries: 0,
            head: zero_head(),
        }),
    }
}

fn store_held(store: &ShareStore, h: &Held) -> Result<(), CheckpointError> {
    let name = blob_name(&h.tenant);
    let bytes = serde_json::to_vec(h).map_err(|_| CheckpointError::Corrupt(name.clone()))?;
    store.put_blob(&name, &bytes)?;
    Ok(())
}

fn refuse(reason: impl Into<String>) -> Outcome {
    Outcome::Refused {
        reason: reason.into(),
    }
}

/// Decides a checkpoint job: [`Outcome::Checkpointed`] when the entries extend the head
/// this signer holds (which it then advances), [`Outcome::Refused`] otherwise.
pub(crate) fn answer(node: &SignerNode, job: &CheckpointJob) -> Outcome {
    let tenant = &job.tenant;
    if tenant.len() > MAX_TENANT_LEN {
        return refuse(format!(
            "audit chain ids are at most {MAX_TENANT_LEN} bytes"
        ));
    }
    let head = match verify_segment(&job.entries, tenant, job.from, &job.prev) {
        Ok(h) => h,
        Err(e) => return refuse(format!("audit chain {tenant:?}: {e}")),
    };
    let Some(to) = u64::try_from(job.entries.len())
        .ok()
        .and_then(|n| job.from.checked_add(n))
    else {
        return refuse("audit segment too long");
    };
    let store = node.store();
    let mine = match held(store, tenant) {
        Ok(h) => h,
        Err(e) => return refuse(format!("audit chain {tenant:?}: {e}")),
    };
    let c = mine.entries;
    if c > to {
        return refuse(format!(
            "audit chain {tenant:?}: a checkpoint at {to} entries is older than the checkpoint \
             this signer holds ({c} entries): the chain cannot go back"
        ));
    }
    if c < job.from {
        return refuse(format!(
            "audit chain {tenant:?}: this signer last co-signed entry {c}; send the entries \
             from there (the segment starts at {})",
            job.from
        ));
    }
    // c is within [from, to]: the segment's head at c.
    let at_c = if c == job.from {
        Some(job.prev.as_str())
    } else {
        c.checked_sub(job.from)
            .and_then(|k| k.checked_sub(1))
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| job.entries.get(k))
            .map(|e| e.hash.as_str())
    };
    if at_c != Some(mine.head.as_str()) {
        return refuse(format!(
            "audit chain {tenant:?}: the entries up to {c} differ from the head this signer \
             co-signed: the log was rewritten"
        ));
    }
    let next = Held {
        tenant: tenant.clone(),
        entries: to,
        head,
    };
    if next != mine {
        if let Err(e) = store_held(store, &next) {
            return refuse(format!("audit chain {tenant:?}: {e}"));
        }
    }
    let signature = sign_checkpoint(node.identity().signing_key(), tenant, to, &next.head);
    Outcome::Checkpointed {
        entries: to,
        head: next.head,
        signature: hex::encode(signature.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blob_names_are_valid_whatever_the_tenant() {
        for t in ["t-1", "_platform", "", "Ünïcode / ../x", &"x".repeat(300)] {
            let n = blob_name(t);
            crate::store::validate_name(&n).unwrap();
            assert_eq!(n.len(), 38);
        }
        assert_ne!(blob_name("a"), blob_name("b"));
    }
}
