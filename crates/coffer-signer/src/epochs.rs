//! Phase 2 of a two-phase share refresh on a signer: the answers to
//! [`Task::CommitEpoch`], [`Task::AbortEpoch`] and [`Task::PruneEpoch`], given at once
//! without a protocol session, and the epoch check every job on an existing key passes.
//!
//! A refresh or reshare session only *stages* its new share ([`crate::store::ShareStore::stage`]);
//! this signer keeps signing with its committed share until the server, having seen every
//! party stage the same public key, sends the commit. A failed refresh is aborted (the
//! staged share dropped); older epochs are pruned only after every signer confirmed its
//! commit. See `docs/refresh.md`.
//!
//! [`Task::CommitEpoch`]: coffer_net::frames::Task::CommitEpoch
//! [`Task::AbortEpoch`]: coffer_net::frames::Task::AbortEpoch
//! [`Task::PruneEpoch`]: coffer_net::frames::Task::PruneEpoch

use coffer_net::frames::{Job, Outcome, Task};
use coffer_proto::share::KeyShare;

use crate::node::SignerNode;

fn refuse(reason: String) -> Outcome {
    Outcome::Refused { reason }
}

/// Answers a commit, abort or prune job for `job.key_id`; `None` for any other task.
pub fn answer(node: &SignerNode, job: &Job) -> Option<Outcome> {
    let key_id = &job.key_id;
    let done = match job.task {
        Task::CommitEpoch { epoch } => node
            .commit_epoch(key_id, epoch)
            .map_err(|e| format!("cannot commit epoch {epoch} of key {key_id}: {e}")),
        Task::AbortEpoch { epoch } => node
            .abort_epoch(key_id, epoch)
            .map(|_| ())
            .map_err(|e| format!("cannot abort epoch {epoch} of key {key_id}: {e}")),
        Task::PruneEpoch { epoch } => prune(node, key_id, epoch),
        _ => return None,
    };
    Some(match done.and_then(|()| state(node, key_id)) {
        Ok(o) => o,
        Err(reason) => refuse(reason),
    })
}

/// Deletes older epochs once `epoch` is the committed one (refused otherwise: pruning
/// before this signer's commit would leave it without any usable share).
fn prune(node: &SignerNode, key_id: &str, epoch: u64) -> Result<(), String> {
    let (committed, _) = node.epochs(key_id).map_err(|e| e.to_string())?;
    if committed != epoch {
        return Err(format!(
            "refusing to prune key {key_id} at epoch {epoch}: this signer's committed epoch is {committed}"
        ));
    }
    node.store()
        .prune(key_id)
        .map_err(|e| format!("cannot prune key {key_id}: {e}"))
}

fn state(node: &SignerNode, key_id: &str) -> Result<Outcome, String> {
    let (committed, staged) = node.epochs(key_id).map_err(|e| e.to_string())?;
    Ok(Outcome::EpochState { committed, staged })
}

/// Refuses a job whose epoch is not this signer's committed share's. A job that must name
/// one (`required`: signing and presigning) is refused without it.
pub fn check(job: &Job, share: &KeyShare, required: bool) -> Result<(), Outcome> {
    let mine = share.epoch().0;
    match job.epoch {
        Some(e) if e == mine => Ok(()),
        Some(e) => Err(refuse(format!(
            "key {}: the job is for epoch {e}, but this signer's committed share is at epoch {mine} \
             (a share restored from before a refresh, or a stale coordinator); refused",
            job.key_id
        ))),
        None if required => Err(refuse(format!(
            "key {}: the job names no key epoch; signing jobs must (this signer is at epoch {mine})",
            job.key_id
        ))),
        None => Ok(()),
    }
}
