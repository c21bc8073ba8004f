//! Vault policies: versioned documents signed by a quorum of the roster's admin keys (the
//! keys every signer pinned at enrolment and copied into each key it made). The server
//! checks the quorum before it stores a version, and hands the current one to the signers
//! with every signing; they check it again themselves.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use coffer_policy::{PublicKey, SignedPolicy};

use super::caller::{Authed, Role};
use super::vaults::load_vault;
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::db::{unix_now, PolicyRecord};

/// The admin keys whose quorum signs policies, and the quorum.
pub fn policy_admin_keys(s: &AppState) -> (Vec<PublicKey>, u16) {
    (
        s.roster.admins.iter().map(|k| PublicKey(k.0)).collect(),
        s.roster.admin_threshold,
    )
}

/// A stored policy's signed document.
pub fn parse_stored(p: &PolicyRecord) -> Result<SignedPolicy, ApiError> {
    serde_json::from_str(&p.document).map_err(|_| ApiError::internal("stored policy is corrupt"))
}

fn policy_json(p: &PolicyRecord) -> Value {
    let document: Value = serde_json::from_str(&p.document).unwrap_or(Value::Null);
    json!({
        "vault_id": p.vault_id,
        "version": p.version,
        "hash": p.hash,
        "created_by": p.created_by,
        "created_at": p.created_at,
        "document": document,
    })
}

/// `GET /v1/policy/admins`.
pub async fn policy_admins(State(s): State<AppState>, a: Authed) -> ApiResult {
    let _ = a.caller;
    let (admins, threshold) = policy_admin_keys(&s);
    Ok(Json(json!({"admins": admins, "threshold": threshold})))
}

/// `PUT /v1/vaults/{id}/policy` (admins): stores a new version signed by the admin quorum.
pub async fn set_policy(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let v = load_vault(&s, &a.caller, &id).await?;
    let signed: SignedPolicy = a.json()?;
    if signed.policy.vault_id != v.id {
        return Err(ApiError::bad_request(format!(
            "the policy names vault {:?}, not {}",
            signed.policy.vault_id, v.id
        )));
    }
    let (admins, threshold) = policy_admin_keys(&s);
    signed
        .verify(&admins, threshold)
        .map_err(|e| ApiError::bad_request(format!("policy refused: {e}")))?;
    let current = s.db.current_policy(&v.id).await?;
    if let Some(c) = &current {
        if signed.policy.version <= c.version {
            return Err(ApiError::conflict(format!(
                "policy version {} is not newer than the current version {}",
                signed.policy.version, c.version
            )));
        }
    }
    // Group members that are not approver credentials of this tenant cannot approve
    // through the API: say so (the policy is still valid).
    let creds = s.db.credentials(&v.tenant_id).await?;
    let mut warnings = Vec::new();
    for (group, members) in &signed.policy.groups {
        for m in members {
            if !creds.iter().any(|c| c.key == m.key.to_string()) {
                warnings.push(format!(
                    "member {} of group {group} is not a credential of this tenant",
                    m.name
                ));
            }
        }
    }
    let now = unix_now();
    let record = PolicyRecord {
        vault_id: v.id.clone(),
        version: signed.policy.version,
        document: serde_json::to_string(&signed)
            .map_err(|_| ApiError::internal("policy encoding"))?,
        hash: hex::encode(signed.policy.hash()),
        created_by: a.caller.actor(),
        created_at: now,
    };
    let mut tx = s.db.begin().await?;
    tx.insert_policy(&record)
        .await
        .map_err(ApiError::on_conflict("that policy version exists"))?;
    tx.append_audit(
        AuditEvent {
            tenant: v.tenant_id.clone(),
            actor: a.caller.actor(),
            action: "policy.changed".into(),
            object: v.id.clone(),
            detail: json!({
                "version": record.version,
                "hash": record.hash,
                "previous": current.map(|c| c.version),
                "signed_by": signed.signatures.iter().map(|s| s.admin.to_string()).collect::<Vec<_>>(),
                "rules": signed.policy.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    crate::alerts::raise_logged(
        &s,
        &v.tenant_id,
        coffer_alerts::events::policy_change(
            &v.id,
            record.version,
            &record.hash,
            &a.caller.actor(),
        ),
    )
    .await;
    let mut out = policy_json(&record);
    out["warnings"] = json!(warnings);
    Ok(Json(out))
}

/// `GET /v1/vaults/{id}/policy`.
pub async fn show_policy(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let v = load_vault(&s, &a.caller, &id).await?;
    let p = s.db.current_policy(&v.id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_policy",
            format!("vault {} has no policy yet (coffer policy set)", v.id),
        )
    })?;
    Ok(Json(policy_json(&p)))
}

/// `GET /v1/vaults/{id}/policies`: every version.
pub async fn policy_history(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let v = load_vault(&s, &a.caller, &id).await?;
    let list = s.db.policies(&v.id).await?;
    Ok(Json(json!({
        "policies": list.iter().map(policy_json).collect::<Vec<_>>()
    })))
}
