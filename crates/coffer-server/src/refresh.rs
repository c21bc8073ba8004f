//! Two-phase share renewal (refresh, and the FROST reshare that removes a signer): the
//! breach response. This module owns the orchestration across the signers and the routes
//! that refresh one key, every key of a vault, or every key of the platform.
//!
//! 0. **Check**: every party confirms (by committing it again, idempotently) that its
//!    committed epoch is the one the server recorded; a signer left with a staged share by
//!    an earlier commit that did not reach it commits it now.
//! 1. **Stage**: the refresh (or reshare) session runs; each signer *stages* its new share
//!    and keeps signing with the committed one. Every party must report the same, unchanged
//!    public key and the same new epoch; otherwise (abort, refusal, disconnect, stall, key
//!    mismatch) every party is sent [`Task::AbortEpoch`] and the key stays at its epoch.
//! 2. **Commit**: [`Task::CommitEpoch`] to every party, retried while a signer is briefly
//!    disconnected (its staged share survives a restart); the new epoch is recorded.
//! 3. **Prune**: once *every* party confirmed its commit, [`Task::PruneEpoch`] deletes the
//!    older share files.
//!
//! Every phase is appended to the platform audit chain (`key.refresh.*`). The design and
//! its failure cases are in `docs/refresh.md`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use coffer_net::frames::{Job, Outcome, Task};
use coffer_net::NodeKey;
use coffer_proto::ids::SessionId;
use coffer_proto::scheme::Scheme;

use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::{AuditEvent, PLATFORM};
use crate::coordinator::{self, name_of, JobError};
use crate::custody::caller::{Authed, Role};
use crate::db::{unix_now, KeyRecord};

/// How long phase 2 keeps retrying a commit to a signer that is not connected.
pub const COMMIT_RETRY: Duration = Duration::from_secs(30);
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What a renewal produced.
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The epoch before.
    pub old_epoch: u64,
    /// The epoch committed on every party.
    pub new_epoch: u64,
    /// The (unchanged) group public key, hex.
    pub public_key: String,
}

async fn audit(s: &AppState, actor: &str, action: &str, key_id: &str, detail: Value) {
    let event = AuditEvent {
        tenant: PLATFORM.to_string(),
        actor: actor.to_string(),
        action: action.to_string(),
        object: key_id.to_string(),
        detail,
    };
    if let Err(e) = s.db.append_audit(event, unix_now()).await {
        tracing::error!("cannot audit {action} of key {key_id}: {e}");
    }
}

/// Runs an answered-at-once epoch task on one party, retrying while it is not connected
/// (up to `patience`). Returns its `(committed, staged)` epochs.
async fn epoch_task(
    s: &AppState,
    k: &KeyRecord,
    party: (u16, NodeKey),
    task: Task,
    patience: Duration,
) -> Result<(u64, Option<u64>), JobError> {
    let until = tokio::time::Instant::now() + patience;
    loop {
        let job = Job {
            session: SessionId::random(),
            key_id: k.id.clone(),
            task: task.clone(),
            parties: vec![party],
            epoch: None,
        };
        match coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await {
            Ok(outcomes) => {
                return match outcomes.first() {
                    Some((_, Outcome::EpochState { committed, staged })) => {
                        Ok((*committed, *staged))
                    }
                    other => Err(JobError::Inconsistent(format!(
                        "{} answered {other:?} to {task:?}",
                        name_of(&s.roster, &party.1)
                    ))),
                };
            }
            Err(e @ (JobError::NotConnected(_) | JobError::Disconnected(_)))
                if tokio::time::Instant::now() < until =>
            {
                tracing::info!("{task:?} of key {}: {e}; retrying", k.id);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends `task` to every party in turn; each party's answer or error.
async fn to_all(
    s: &AppState,
    k: &KeyRecord,
    parties: &[(u16, NodeKey)],
    task: Task,
    patience: Duration,
) -> Vec<(String, Result<(u64, Option<u64>), JobError>)> {
    let mut out = Vec::with_capacity(parties.len());
    for p in parties {
        let r = epoch_task(s, k, *p, task.clone(), patience).await;
        out.push((name_of(&s.roster, &p.1), r));
    }
    out
}

fn failed_phase(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "refresh_failed",
        format!("{what}: {e}"),
    )
}

/// Renews `k`'s shares among `parties` with `task` ([`Task::Refresh`] or
/// [`Task::Reshare`]) in two phases (module documentation). On success the caller records
/// the new epoch (and, for a reshare, the removed parties) and then calls [`prune`].
pub async fn renew(
    s: &AppState,
    k: &KeyRecord,
    parties: Vec<(u16, NodeKey)>,
    task: Task,
    actor: &str,
) -> Result<Renewed, ApiError> {
    let names: Vec<String> = parties.iter().map(|(_, p)| name_of(&s.roster, p)).collect();
    // Phase 0: every party is at the epoch the server recorded.
    let commit_now = Task::CommitEpoch { epoch: k.epoch };
    for (name, r) in to_all(s, k, &parties, commit_now, Duration::ZERO).await {
        match r {
            Ok((committed, _)) if committed == k.epoch => {}
            Ok((committed, _)) => {
                return Err(ApiError::conflict(format!(
                    "signer {name} holds key {} at epoch {committed}, the server recorded epoch {}; refusing to refresh a split group",
                    k.id, k.epoch
                )))
            }
            Err(e) => return Err(failed_phase("checking the signers' epochs", e)),
        }
    }
    let next = k.epoch + 1;
    audit(
        s,
        actor,
        "key.refresh.started",
        &k.id,
        json!({"epoch": k.epoch, "next_epoch": next, "signers": names, "task": format!("{task:?}")}),
    )
    .await;
    // Phase 1: the session stages the new shares.
    let deadline = match k.scheme {
        Scheme::EcdsaSecp256k1 => s.deadlines.ecdsa_setup,
        _ => s.deadlines.other,
    };
    let job = Job {
        session: SessionId::random(),
        key_id: k.id.clone(),
        task,
        parties: parties.clone(),
        epoch: Some(k.epoch),
    };
    let staged = coordinator::run(&s.hub, &s.roster, job, deadline)
        .await
        .map_err(ApiError::from)
        .and_then(|outcomes| agreed_stage(s, k, next, &outcomes));
    let public_key = match staged {
        Ok(pk) => pk,
        Err(e) => {
            let aborted = to_all(
                s,
                k,
                &parties,
                Task::AbortEpoch { epoch: next },
                COMMIT_RETRY,
            )
            .await;
            let unreached: Vec<String> = aborted
                .iter()
                .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n} ({e})")))
                .collect();
            audit(
                s,
                actor,
                "key.refresh.aborted",
                &k.id,
                json!({"epoch": k.epoch, "abandoned_epoch": next, "reason": e.message(), "abort_not_confirmed_by": unreached}),
            )
            .await;
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "refresh_aborted",
                format!(
                    "the refresh of key {} failed and was rolled back; every signer keeps epoch {}: {}",
                    k.id,
                    k.epoch,
                    e.message()
                ),
            ));
        }
    };
    audit(
        s,
        actor,
        "key.refresh.staged",
        &k.id,
        json!({"epoch": next, "public_key": public_key}),
    )
    .await;
    // Phase 2: commit everywhere; a briefly disconnected signer is retried.
    let committed = to_all(
        s,
        k,
        &parties,
        Task::CommitEpoch { epoch: next },
        COMMIT_RETRY,
    )
    .await;
    let pending: Vec<String> = committed
        .iter()
        .filter(|(_, r)| !matches!(r, Ok((c, _)) if *c == next))
        .map(|(n, r)| match r {
            Ok((c, _)) => format!("{n} (at epoch {c})"),
            Err(e) => format!("{n} ({e})"),
        })
        .collect();
    audit(
        s,
        actor,
        "key.refresh.committed",
        &k.id,
        json!({"epoch": next, "not_confirmed_by": pending}),
    )
    .await;
    if !pending.is_empty() {
        // Some parties committed: the new epoch is the key's. The others still hold the
        // staged share; the next refresh of the key commits it first (phase 0).
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "commit_pending",
            format!(
                "key {} moved to epoch {next}, but these signers did not confirm their commit: {}; their staged share waits (it survives restarts): refresh the key again once they are back to finish. Old shares are kept until then.",
                k.id,
                pending.join(", ")
            ),
        ));
    }
    Ok(Renewed {
        old_epoch: k.epoch,
        new_epoch: next,
        public_key,
    })
}

/// Phase 3, after the caller recorded the new epoch: every party deletes older shares.
/// Returns the names of the parties that did not confirm (they keep an older file; the
/// next refresh's prune removes it).
pub async fn prune(
    s: &AppState,
    k: &KeyRecord,
    parties: &[(u16, NodeKey)],
    epoch: u64,
    actor: &str,
) -> Vec<String> {
    let pruned = to_all(s, k, parties, Task::PruneEpoch { epoch }, Duration::ZERO).await;
    let failed: Vec<String> = pruned
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n} ({e})")))
        .collect();
    audit(
        s,
        actor,
        "key.refresh.pruned",
        &k.id,
        json!({"epoch": epoch, "not_confirmed_by": failed}),
    )
    .await;
    failed
}

/// Every party staged the same, unchanged public key at epoch `next`.
fn agreed_stage(
    s: &AppState,
    k: &KeyRecord,
    next: u64,
    outcomes: &[(NodeKey, Outcome)],
) -> Result<String, ApiError> {
    for (p, o) in outcomes {
        let who = name_of(&s.roster, p);
        match o {
            Outcome::KeyReady {
                public_key, epoch, ..
            } => {
                if *public_key != k.public_key {
                    return Err(JobError::Inconsistent(format!(
                        "{who} staged another public key ({public_key}, expected {})",
                        k.public_key
                    ))
                    .into());
                }
                if *epoch != next {
                    return Err(JobError::Inconsistent(format!(
                        "{who} staged epoch {epoch}, expected {next}"
                    ))
                    .into());
                }
            }
            other => return Err(JobError::Inconsistent(format!("{who} reported {other:?}")).into()),
        }
    }
    if outcomes.is_empty() {
        return Err(ApiError::internal("no outcome"));
    }
    Ok(k.public_key.clone())
}

/// Refreshes one key end to end (all four phases) under its signing lock, records the
/// epoch and retires the server's pooled presignatures.
pub async fn refresh_key(s: &AppState, k: &KeyRecord, actor: &str) -> Result<Renewed, ApiError> {
    let lock = s.custody_locks.of(&k.id);
    let _held = lock.lock().await;
    // Re-read under the lock: a concurrent refresh may have moved the epoch.
    let k =
        s.db.key(&k.id)
            .await?
            .ok_or_else(|| ApiError::not_found("key"))?;
    let parties = crate::api::members(&k);
    let keys: Vec<NodeKey> = parties.iter().map(|(_, p)| *p).collect();
    crate::api::check_ready(s, &keys, k.scheme)?;
    let renewed = renew(s, &k, parties.clone(), Task::Refresh, actor).await?;
    s.db.set_epoch(&k.id, renewed.new_epoch).await?;
    s.db.discard_presignatures(&k.id).await?;
    prune(s, &k, &parties, renewed.new_epoch, actor).await;
    Ok(renewed)
}

fn renewed_json(k: &KeyRecord, r: &Result<Renewed, ApiError>) -> Value {
    match r {
        Ok(r) => json!({
            "key_id": k.id,
            "scheme": k.scheme.name(),
            "ok": true,
            "old_epoch": r.old_epoch,
            "new_epoch": r.new_epoch,
            "public_key": r.public_key,
            "same_public_key": r.public_key == k.public_key,
        }),
        Err(e) => json!({
            "key_id": k.id,
            "scheme": k.scheme.name(),
            "ok": false,
            "old_epoch": k.epoch,
            "error": {"code": e.code(), "message": e.message()},
        }),
    }
}

/// Refreshes `keys` one after the other (each independently: one failure rolls back that
/// key only) and reports per key.
async fn refresh_many(s: &AppState, keys: Vec<KeyRecord>, actor: &str) -> Value {
    let mut out = Vec::new();
    for k in keys {
        let r = refresh_key(s, &k, actor).await;
        out.push(renewed_json(&k, &r));
    }
    let ok = out.iter().all(|v| v["ok"] == json!(true));
    json!({"ok": ok, "keys": out})
}

/// `POST /v1/vaults/{id}/refresh`: refreshes every key of the vault (tenant admins,
/// platform operators). Allowed while the vault is frozen: it is the breach response.
pub async fn refresh_vault(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(&[Role::Admin, Role::Operator])?;
    let tenant = match a.caller.tenant() {
        Ok(t) => t.to_string(),
        Err(_) => {
            s.db.vault_tenant(&id)
                .await?
                .ok_or_else(|| ApiError::not_found("vault"))?
        }
    };
    let vault =
        s.db.vault(&tenant, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("vault"))?;
    let mut keys = Vec::new();
    for (_, key_id) in &vault.keys {
        keys.push(
            s.db.key(key_id)
                .await?
                .ok_or_else(|| ApiError::internal(format!("vault key {key_id} is missing")))?,
        );
    }
    let actor = a.caller.actor();
    let mut out = refresh_many(&s, keys, &actor).await;
    out["vault_id"] = json!(vault.id);
    let event = AuditEvent {
        tenant: vault.tenant_id.clone(),
        actor,
        action: "vault.refreshed".into(),
        object: vault.id.clone(),
        detail: out.clone(),
    };
    s.db.append_audit(event, unix_now()).await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentRequest {
    /// Must be true: refresh every key the platform holds.
    all: bool,
}

/// `POST /v1/incident/refresh {"all": true}`: refreshes every key of the platform
/// (platform operators).
pub async fn refresh_all(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let req: IncidentRequest = a.json()?;
    if !req.all {
        return Err(ApiError::bad_request(
            "send {\"all\": true} to refresh every key (or POST /v1/vaults/{id}/refresh for one vault)",
        ));
    }
    let keys = s.db.keys().await?;
    let actor = a.caller.actor();
    let out = refresh_many(&s, keys, &actor).await;
    let event = AuditEvent {
        tenant: PLATFORM.to_string(),
        actor,
        action: "incident.refreshed".into(),
        object: "all".into(),
        detail: out.clone(),
    };
    s.db.append_audit(event, unix_now()).await?;
    Ok(Json(out))
}
