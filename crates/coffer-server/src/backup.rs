//! Share backup export (`POST /v1/keys/{id}/backup`): the server hands every member of the
//! key the admin-signed recovery-key document and collects one backup kit per signer. The
//! server never sees a share: each signer checks the document against the admins it pinned
//! and encrypts its share to its own recovery key (see `coffer_net::backup` and the signer's
//! `backup` module). The server checks each kit's signature and header against the key
//! record before it returns them, and audits the export. A backup drill's result
//! (`POST /v1/keys/{id}/backup/drill`) is recorded in the audit log once its signature
//! verifies under the key.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use coffer_net::backup::{Kit, SignedRecoveryKeys};
use coffer_net::frames::{BackupJob, Job, Outcome, Task};
use coffer_policy::audit::PLATFORM;
use coffer_proto::ids::SessionId;

use crate::api::{members, ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::coordinator::{self, name_of, JobError};
use crate::custody::caller::{Authed, Role};
use crate::db::unix_now;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    /// Which recovery key each signer encrypts to, signed by the admin quorum.
    recovery_keys: SignedRecoveryKeys,
    /// The key's vault, bound into every kit (checked: the key must be the vault's).
    vault_id: Option<String>,
}

/// Exports a backup kit of every member's share of the key: every member must be connected
/// and agree; a signer that refuses (an unsigned document, say) fails the export.
pub async fn export(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let req: BackupRequest = a.json()?;
    let k =
        s.db.key(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("key"))?;
    // The server checks the document too (the signers do regardless): a clear 400 early.
    if req.recovery_keys.document.key_id != k.id {
        return Err(ApiError::bad_request(format!(
            "the recovery-key document is for key {}, not {}",
            req.recovery_keys.document.key_id, k.id
        )));
    }
    let tenant = match &req.vault_id {
        Some(v) => {
            let tenant =
                s.db.vault_tenant(v)
                    .await?
                    .ok_or_else(|| ApiError::not_found("vault"))?;
            let vault =
                s.db.vault(&tenant, v)
                    .await?
                    .ok_or_else(|| ApiError::not_found("vault"))?;
            if !vault.keys.iter().any(|(_, key)| *key == k.id) {
                return Err(ApiError::bad_request(format!(
                    "key {} is not a key of vault {v}",
                    k.id
                )));
            }
            tenant
        }
        None => PLATFORM.to_string(),
    };
    let parties = members(&k);
    let job = Job {
        session: SessionId::random(),
        key_id: k.id.clone(),
        task: Task::BackupExport(Box::new(BackupJob {
            recovery_keys: req.recovery_keys,
            vault_id: req.vault_id.clone(),
        })),
        parties: parties.clone(),
        epoch: Some(k.epoch),
    };
    let outcomes = coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await?;
    let mut kits = Vec::new();
    for (signer, outcome) in &outcomes {
        let name = name_of(&s.roster, signer);
        let Outcome::BackupKit { kit } = outcome else {
            return Err(JobError::Inconsistent(format!("{name} answered without a kit")).into());
        };
        let parsed = Kit::from_bytes(kit.as_bytes())
            .and_then(|p| p.verify_signature().map(|()| p))
            .map_err(|e| JobError::Inconsistent(format!("{name}'s kit: {e}")))?;
        let h = &parsed.header;
        let index = parties.iter().find(|(_, p)| p == signer).map(|(i, _)| *i);
        if h.signer != *signer
            || Some(h.party_index) != index
            || h.group_public_key != k.public_key
            || h.key_id != k.id
            || h.epoch != k.epoch
        {
            return Err(JobError::Inconsistent(format!(
                "{name}'s kit does not describe its share of key {}",
                k.id
            ))
            .into());
        }
        kits.push(json!({
            "signer": name,
            "party_index": h.party_index,
            "recovery_key": h.recovery_key,
            "kit": kit,
        }));
    }
    s.db.append_audit(
        AuditEvent {
            tenant,
            actor: a.caller.actor(),
            action: "key.backup_exported".into(),
            object: k.id.clone(),
            detail: json!({
                "vault_id": req.vault_id,
                "epoch": k.epoch,
                "kits": kits.iter().map(|v| json!({"signer": v["signer"], "recovery_key": v["recovery_key"]})).collect::<Vec<_>>(),
            }),
        },
        unix_now(),
    )
    .await?;
    Ok(Json(json!({
        "key_id": k.id,
        "epoch": k.epoch,
        "vault_id": req.vault_id,
        "kits": kits,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillReport {
    ok: bool,
    session: Option<String>,
    message: Option<String>,
    signature: Option<String>,
    parties: Vec<u16>,
    reason: Option<String>,
}

/// Records a backup drill's result (`POST /v1/keys/{id}/backup/drill`) in the audit log. A
/// success counts only if the signature verifies under the key's public key here, on a
/// message that names the key; a failure is recorded with its reason.
pub async fn drill(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let r: DrillReport = a.json()?;
    let k =
        s.db.key(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("key"))?;
    let ok = if r.ok {
        let decode = |v: &Option<String>, what: &str| {
            v.as_deref()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("a successful drill needs its {what} (hex)"))
                })
        };
        let message = decode(&r.message, "message")?;
        let signature = decode(&r.signature, "signature")?;
        let public_key = hex::decode(&k.public_key)
            .map_err(|_| ApiError::internal("stored public key is not hex"))?;
        let valid = coffer_proto::verify::verify(k.scheme, &public_key, &message, &signature)
            .unwrap_or(false);
        if !valid {
            return Err(ApiError::bad_request(
                "the drill's signature does not verify under the key",
            ));
        }
        true
    } else {
        false
    };
    let entry =
        s.db.append_audit(
            AuditEvent {
                tenant: PLATFORM.to_string(),
                actor: a.caller.actor(),
                action: "key.backup_drill".into(),
                object: k.id.clone(),
                detail: json!({
                    "ok": ok,
                    "epoch": k.epoch,
                    "session": r.session,
                    "message": r.message,
                    "signature": r.signature,
                    "parties": r.parties,
                    "reason": r.reason,
                }),
            },
            unix_now(),
        )
        .await?;
    Ok(Json(json!({
        "key_id": k.id,
        "ok": ok,
        "parties": r.parties,
        "signature": r.signature,
        "audit_seq": entry.seq,
        "audit_hash": entry.hash,
    })))
}
