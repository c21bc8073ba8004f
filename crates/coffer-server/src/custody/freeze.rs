//! Vault freeze and unfreeze. A freeze is an order signed by the server's identity key (the
//! key every signer pinned at enrolment) naming the vault, its keys, the next sequence number
//! of the vault and a reason; every signer then refuses new signing sessions for those keys.
//! The server also refuses to create, approve or sign the vault's transaction requests while
//! it is frozen. An unfreeze is a document signed by a quorum of the admin keys the signers
//! pinned (the server verifies it too, and cannot make one itself). Both are audited; the
//! latest order of each vault is stored with the vault and sent again to every signer that
//! connects. [`freeze_vault`] is the entry point for automatic responses (alert rules).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use coffer_net::freeze::{FreezeKind, FreezeOrder, SignedFreezeOrder, MAX_REASON};
use coffer_net::NodeKey;

use super::caller::{Authed, Caller, Role};
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::coordinator::name_of;
use crate::db::freeze::FreezeRecord;
use crate::db::{unix_now, VaultRecord};

/// How long a freeze or unfreeze waits for the connected signers' acknowledgements.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// Loads every vault's latest order into the hub at start, so reconnecting signers get it.
pub async fn load_orders(s: &AppState) -> Result<(), crate::db::DbError> {
    for text in s.db.freeze_orders().await? {
        match serde_json::from_str::<SignedFreezeOrder>(&text) {
            Ok(order) => s.hub.set_order(order),
            Err(e) => tracing::error!("a stored freeze order does not decode: {e}"),
        }
    }
    Ok(())
}

/// 409 `vault_frozen` when vault `vault_id` is frozen.
pub async fn ensure_not_frozen(s: &AppState, vault_id: &str) -> Result<(), ApiError> {
    match s.db.freeze_state(vault_id).await? {
        Some(f) if f.frozen => Err(ApiError::new(
            StatusCode::CONFLICT,
            "vault_frozen",
            format!(
                "vault {vault_id} is frozen (order {}: {}); nothing is signed until an admin quorum unfreezes it",
                f.seq,
                f.reason.unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether vault `vault_id` is frozen now.
pub async fn is_frozen(s: &AppState, vault_id: &str) -> Result<bool, ApiError> {
    Ok(s.db.freeze_state(vault_id).await?.is_some_and(|f| f.frozen))
}

/// The vault the caller may freeze: a tenant admin's own, or any tenant's for a platform
/// operator.
async fn vault_for(s: &AppState, c: &Caller, id: &str) -> Result<VaultRecord, ApiError> {
    let tenant = match c.tenant() {
        Ok(t) => t.to_string(),
        Err(_) => {
            s.db.vault_tenant(id)
                .await?
                .ok_or_else(|| ApiError::not_found("vault"))?
        }
    };
    s.db.vault(&tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("vault"))
}

/// The freeze fields of a vault as the API shows them.
pub fn freeze_json(s: &AppState, vault_id: &str, f: &FreezeRecord) -> Value {
    let acks: Vec<Value> = s
        .hub
        .acks(vault_id)
        .into_iter()
        .map(|(k, a)| ack_json(s, &k, &a))
        .collect();
    json!({
        "frozen": f.frozen,
        "seq": f.seq,
        "reason": f.reason,
        "signers": acks,
    })
}

fn ack_json(s: &AppState, k: &NodeKey, a: &crate::hub::FreezeAck) -> Value {
    json!({
        "signer": name_of(&s.roster, k),
        "seq": a.seq,
        "current_seq": a.current_seq,
        "refused": a.refused,
    })
}

/// Sends `order` to the signers, waits for the connected ones to answer, and reports.
async fn distribute(s: &AppState, order: SignedFreezeOrder) -> Vec<Value> {
    let vault_id = order.order.vault_id.clone();
    let seq = order.order.seq;
    s.hub.set_order(order);
    let signers: Vec<NodeKey> = s.roster.signers.iter().map(|p| p.node_key).collect();
    s.hub
        .wait_acks(&vault_id, seq, &signers, ACK_WAIT)
        .await
        .into_iter()
        .map(|(k, a)| ack_json(s, &k, &a))
        .collect()
}

/// Freezes `vault_id` of `tenant` on behalf of the server (alert rules): see [`freeze_as`].
pub async fn freeze_vault(
    s: &AppState,
    tenant: &str,
    vault_id: &str,
    reason: &str,
) -> Result<Value, ApiError> {
    let vault =
        s.db.vault(tenant, vault_id)
            .await?
            .ok_or_else(|| ApiError::not_found("vault"))?;
    freeze_as(s, &vault, reason, "server").await
}

/// Freezes `vault`: signs the next order with the server's key, records it with an audit
/// entry in one transaction, sends it to every signer and waits briefly for their answers.
/// A vault already frozen stays as it is (`"changed": false`).
pub async fn freeze_as(
    s: &AppState,
    vault: &VaultRecord,
    reason: &str,
    actor: &str,
) -> Result<Value, ApiError> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "a freeze needs a reason of 1 to {MAX_REASON} bytes"
        )));
    }
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let current = tx
        .freeze_state(&vault.id)
        .await?
        .ok_or_else(|| ApiError::not_found("vault"))?;
    if current.frozen {
        tx.rollback().await?;
        let mut out = freeze_json(s, &vault.id, &current);
        out["vault_id"] = json!(vault.id);
        out["changed"] = json!(false);
        return Ok(out);
    }
    let seq = current.seq.saturating_add(1);
    let key_ids: Vec<String> = vault.keys.iter().map(|(_, k)| k.clone()).collect();
    let order = FreezeOrder::new(
        FreezeKind::Freeze,
        &vault.id,
        key_ids.clone(),
        seq,
        reason,
        now,
    );
    let signed = SignedFreezeOrder::freeze_by_server(&s.identity, order)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let text = serde_json::to_string(&signed)
        .map_err(|_| ApiError::internal("cannot encode the freeze order"))?;
    let state = FreezeRecord {
        frozen: true,
        seq,
        reason: Some(reason.to_string()),
        order: Some(text),
    };
    if !tx.set_freeze(&vault.id, current.seq, &state).await? {
        return Err(ApiError::conflict(
            "the vault's freeze state changed meanwhile; try again",
        ));
    }
    tx.append_audit(
        AuditEvent {
            tenant: vault.tenant_id.clone(),
            actor: actor.to_string(),
            action: "vault.frozen".into(),
            object: vault.id.clone(),
            detail: json!({"seq": seq, "reason": reason, "keys": key_ids}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::warn!("vault {} frozen (order {seq}): {reason}", vault.id);
    let acks = distribute(s, signed).await;
    Ok(json!({
        "vault_id": vault.id,
        "frozen": true,
        "seq": seq,
        "reason": reason,
        "changed": true,
        "signers": acks,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeRequest {
    reason: String,
}

/// `POST /v1/vaults/{id}/freeze {"reason"}` (tenant admins, platform operators).
pub async fn freeze(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin, Role::Operator])?;
    let req: FreezeRequest = a.json()?;
    let vault = vault_for(&s, &a.caller, &id).await?;
    Ok(Json(
        freeze_as(&s, &vault, &req.reason, &a.caller.actor()).await?,
    ))
}

/// `POST /v1/vaults/{id}/unfreeze` with an unfreeze document signed by the admin quorum
/// (tenant admins, platform operators carry it).
pub async fn unfreeze(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin, Role::Operator])?;
    let signed: SignedFreezeOrder = a.json()?;
    let vault = vault_for(&s, &a.caller, &id).await?;
    let order = &signed.order;
    if order.kind != FreezeKind::Unfreeze {
        return Err(ApiError::bad_request("the document is not an unfreeze"));
    }
    if order.vault_id != vault.id {
        return Err(ApiError::bad_request(format!(
            "the unfreeze names vault {:?}, not {}",
            order.vault_id, vault.id
        )));
    }
    if let Some((_, missing)) = vault.keys.iter().find(|(_, k)| !order.names(k)) {
        return Err(ApiError::bad_request(format!(
            "the unfreeze does not name the vault's key {missing}"
        )));
    }
    let admins: Vec<NodeKey> = s.roster.admins.clone();
    signed
        .verify_unfreeze(&admins, s.roster.admin_threshold)
        .map_err(|e| ApiError::bad_request(format!("unfreeze refused: {e}")))?;
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let current = tx
        .freeze_state(&vault.id)
        .await?
        .ok_or_else(|| ApiError::not_found("vault"))?;
    if !current.frozen {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_frozen",
            format!("vault {} is not frozen", vault.id),
        ));
    }
    if order.seq <= current.seq {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale_order",
            format!(
                "the unfreeze carries sequence {}, not above the vault's current order {} (replayed or out of date)",
                order.seq, current.seq
            ),
        ));
    }
    let text = serde_json::to_string(&signed)
        .map_err(|_| ApiError::internal("cannot encode the unfreeze order"))?;
    let state = FreezeRecord {
        frozen: false,
        seq: order.seq,
        reason: Some(order.reason.clone()),
        order: Some(text),
    };
    if !tx.set_freeze(&vault.id, current.seq, &state).await? {
        return Err(ApiError::conflict(
            "the vault's freeze state changed meanwhile; try again",
        ));
    }
    let signers: Vec<String> = signed
        .admin_signatures
        .iter()
        .map(|sig| sig.admin.to_hex())
        .collect();
    tx.append_audit(
        AuditEvent {
            tenant: vault.tenant_id.clone(),
            actor: a.caller.actor(),
            action: "vault.unfrozen".into(),
            object: vault.id.clone(),
            detail: json!({"seq": order.seq, "reason": order.reason, "admins": signers}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::warn!("vault {} unfrozen (order {})", vault.id, order.seq);
    let acks = distribute(&s, signed.clone()).await;
    // Requests approved before the freeze were left waiting: sign them now.
    super::signing::resume_vault(&s, &vault.id).await;
    Ok(Json(json!({
        "vault_id": vault.id,
        "frozen": false,
        "seq": order.seq,
        "reason": order.reason,
        "changed": true,
        "signers": acks,
    })))
}
