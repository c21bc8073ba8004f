//! Audit checkpoints: every [`ServerConfig::checkpoint_every`] the server asks the
//! connected signers to co-sign the head of every audit chain that grew since its last
//! checkpoint ([`coffer_net::frames::Task::AuditCheckpoint`]). Each signer co-signs only a
//! head whose entries extend the head it co-signed before, so a server that rewrites its
//! log (even re-hashing every entry after the change) cannot get the new history co-signed,
//! and an export's checkpoints ([`crate::audit::verify_export`]) expose the rewrite.
//!
//! A round, per chain with entries beyond its last checkpoint: `from` is the fewest entries
//! any connected signer last co-signed for it (0 if it never did), the job carries the
//! entries from there (at most [`MAX_SEGMENT`] per job; a long catch-up takes several
//! jobs), and the checkpoint is stored with the signatures of every signer that answered
//! with the expected (entries, head). A successful checkpoint writes no audit entry (that
//! would move the head it pins). A refusal is the alarm for a rewritten log: it is logged
//! as an error and appended to the `_platform` chain as `audit.checkpoint_refused` (once
//! per chain, signer and reason), and the round goes on without that signer.
//!
//! [`ServerConfig::checkpoint_every`]: crate::ServerConfig::checkpoint_every

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use coffer_net::frames::{CheckpointJob, Job, Outcome, Task};
use coffer_net::NodeKey;
use coffer_policy::{PublicKey, Signature};
use coffer_proto::ids::SessionId;

use crate::api::AppState;
use crate::audit::{checkpoint_bytes, zero_head, AuditEvent, Checkpoint, CheckpointSignature};
use crate::coordinator::{self, name_of, JobError};
use crate::db::{unix_now, DbError};

/// Most entries sent in one checkpoint job (keeps frames well under the frame limit).
pub const MAX_SEGMENT: u64 = 2000;

/// The key id checkpoint jobs name (they concern no key).
pub const JOB_KEY_ID: &str = "audit-checkpoint";

/// Refusals already raised, per (chain, signer): the reason, so an unchanged refusal is
/// not appended to the platform chain every round.
type Alarms = HashMap<(String, NodeKey), String>;

/// Runs checkpoint rounds forever, one every `every`.
pub async fn run(s: AppState, every: Duration) {
    let mut alarms = Alarms::new();
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = round(&s, &mut alarms).await {
            tracing::error!("audit checkpoints: {e}");
        }
    }
}

/// One round over every chain.
async fn round(s: &AppState, alarms: &mut Alarms) -> Result<(), DbError> {
    let connected: Vec<(u16, NodeKey)> = s
        .roster
        .signers
        .iter()
        .enumerate()
        .filter(|(_, p)| s.hub.is_connected(&p.node_key))
        .filter_map(|(i, p)| u16::try_from(i).ok().map(|i| (i, p.node_key)))
        .collect();
    if connected.is_empty() {
        return Ok(());
    }
    for tenant in s.db.audit_tenants().await? {
        if let Err(e) = chain(s, &tenant, &connected, alarms).await {
            tracing::error!("audit checkpoint of {tenant}: {e}");
        }
    }
    Ok(())
}

/// Checkpoints one chain if it grew since its last checkpoint.
async fn chain(
    s: &AppState,
    tenant: &str,
    connected: &[(u16, NodeKey)],
    alarms: &mut Alarms,
) -> Result<(), DbError> {
    let Some(head) = s.db.audit_head(tenant).await? else {
        return Ok(());
    };
    let count = head.seq.saturating_add(1);
    let last = s.db.last_checkpoint(tenant).await?.map(|c| c.entries);
    if last.is_some_and(|l| l >= count) {
        return Ok(());
    }
    let mut excluded: HashSet<NodeKey> = HashSet::new();
    // Each pass either stores a checkpoint further along, excludes a refusing signer, or
    // stops: bounded by the chain's length over MAX_SEGMENT plus the number of signers.
    loop {
        let mut marks = Vec::new();
        for (i, k) in connected.iter().filter(|(_, k)| !excluded.contains(k)) {
            let mark =
                s.db.last_cosigned(tenant, &PublicKey(k.0))
                    .await?
                    .unwrap_or(0);
            marks.push((*i, *k, mark));
        }
        let Some(from) = marks.iter().map(|(_, _, m)| *m).min() else {
            return Ok(());
        };
        if from >= count {
            return Ok(());
        }
        let to = count.min(from.saturating_add(MAX_SEGMENT));
        // Signers already past this segment (but within the chain) join a later pass;
        // one past the end of the chain is asked anyway, so that it raises the alarm.
        let parties: Vec<(u16, NodeKey)> = marks
            .iter()
            .filter(|(_, _, m)| *m <= to || *m > count)
            .map(|(i, k, _)| (*i, *k))
            .collect();
        let prev = match from.checked_sub(1) {
            None => zero_head(),
            Some(p) => match s.db.audit_from(tenant, p, 1).await?.pop() {
                Some(e) => e.hash,
                None => return Ok(()),
            },
        };
        let entries = s.db.audit_from(tenant, from, to - from).await?;
        if entries.len() as u64 != to - from {
            return Ok(());
        }
        let expected = entries
            .last()
            .map(|e| e.hash.clone())
            .unwrap_or(prev.clone());
        let job = Job {
            session: SessionId::random(),
            key_id: JOB_KEY_ID.into(),
            task: Task::AuditCheckpoint(Box::new(CheckpointJob {
                tenant: tenant.to_string(),
                from,
                prev,
                entries,
            })),
            parties,
            epoch: None,
        };
        match coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await {
            Ok(outcomes) => {
                let (signatures, failed) = cosignatures(s, tenant, to, &expected, &outcomes);
                // A signer that answered anything else sits out the rest of this round.
                excluded.extend(failed);
                if signatures.is_empty() {
                    return Ok(());
                }
                for sig in &signatures {
                    alarms.remove(&(tenant.to_string(), NodeKey(sig.signer.0)));
                }
                let checkpoint = Checkpoint {
                    tenant: tenant.to_string(),
                    entries: to,
                    head: expected,
                    signatures,
                };
                let mut tx = s.db.begin().await?;
                tx.insert_checkpoint(&checkpoint, unix_now()).await?;
                tx.commit().await?;
                tracing::debug!(
                    "audit checkpoint of {tenant} at {to} entries, co-signed by {}",
                    checkpoint.signatures.len()
                );
                if to >= count {
                    return Ok(());
                }
            }
            Err(JobError::Refused { by, reason }) => {
                let Some((_, key)) = connected.iter().find(|(_, k)| name_of(&s.roster, k) == by)
                else {
                    return Ok(());
                };
                excluded.insert(*key);
                alarm(s, alarms, tenant, *key, &by, &reason, to).await?;
            }
            Err(e) => {
                tracing::warn!("audit checkpoint of {tenant} at {to} entries: {e}");
                return Ok(());
            }
        }
    }
}

/// The signatures of the signers that co-signed `tenant`'s head `head` at `entries`, and
/// the signers that answered anything else.
fn cosignatures(
    s: &AppState,
    tenant: &str,
    entries: u64,
    head: &str,
    outcomes: &[(NodeKey, Outcome)],
) -> (Vec<CheckpointSignature>, Vec<NodeKey>) {
    let msg = checkpoint_bytes(tenant, entries, head);
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for (k, o) in outcomes {
        let signer = PublicKey(k.0);
        let valid = match o {
            Outcome::Checkpointed {
                entries: n,
                head: h,
                signature,
            } if *n == entries && h == head => signature
                .parse::<Signature>()
                .ok()
                .filter(|sig| signer.verify(&msg, sig).is_ok()),
            _ => None,
        };
        match valid {
            Some(signature) => out.push(CheckpointSignature { signer, signature }),
            None => {
                tracing::error!(
                    "audit checkpoint of {tenant} at {entries} entries: signer {} answered {o:?}",
                    name_of(&s.roster, k)
                );
                failed.push(*k);
            }
        }
    }
    (out, failed)
}

/// Raises the alarm for a refused checkpoint: an error in the log, and (once per chain,
/// signer and reason) an `audit.checkpoint_refused` entry in the platform chain.
async fn alarm(
    s: &AppState,
    alarms: &mut Alarms,
    tenant: &str,
    key: NodeKey,
    by: &str,
    reason: &str,
    entries: u64,
) -> Result<(), DbError> {
    tracing::error!(
        "signer {by} refused to co-sign the audit chain of {tenant} at {entries} entries: \
         {reason}"
    );
    let slot = (tenant.to_string(), key);
    if alarms.get(&slot).map(String::as_str) == Some(reason) {
        return Ok(());
    }
    s.db.append_audit(
        AuditEvent {
            tenant: crate::audit::PLATFORM.into(),
            actor: "server".into(),
            action: "audit.checkpoint_refused".into(),
            object: tenant.to_string(),
            detail: json!({
                "signer": by,
                "signer_key": key.to_hex(),
                "entries": entries,
                "reason": reason,
            }),
        },
        unix_now(),
    )
    .await?;
    alarms.insert(slot, reason.to_string());
    Ok(())
}
