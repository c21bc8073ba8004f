//! Reading the audit log: a tenant's auditors and admins read and export their tenant's
//! chain (operators read the platform chain), and ask the server to verify it. An export
//! carries the chain's checkpoints co-signed by the signers ([`crate::custody::checkpoints`])
//! and is checked offline with [`crate::audit::verify_export`]: every hash, every link, and
//! every co-signed head still in the chain.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

use super::caller::{Authed, Role};
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::{self, Export, PLATFORM};

fn chain_of(a: &Authed) -> Result<String, ApiError> {
    a.caller
        .require(&[Role::Auditor, Role::Admin, Role::Operator])?;
    Ok(a.caller.tenant.clone().unwrap_or_else(|| PLATFORM.into()))
}

/// `GET /v1/audit?after=SEQ&limit=N`.
pub async fn list(State(s): State<AppState>, RawQuery(q): RawQuery, a: Authed) -> ApiResult {
    let chain = chain_of(&a)?;
    let mut after = None;
    let mut limit = 100;
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" => {
                after = Some(
                    v.parse::<u64>()
                        .map_err(|_| ApiError::bad_request("after must be an entry number"))?,
                )
            }
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| ApiError::bad_request("limit must be 1 to 1000"))?
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {k:?}"
                )))
            }
        }
    }
    let entries = s.db.audit(&chain, after, limit).await?;
    Ok(Json(json!({ "tenant": chain, "entries": entries })))
}

/// The chain with its checkpoints. The checkpoints are read first: entries are only ever
/// appended, so every checkpoint read covers entries that the read after it returns.
async fn load(s: &AppState, chain: &str) -> Result<Export, ApiError> {
    let checkpoints = s.db.checkpoints(chain).await?;
    let entries = s.db.audit_all(chain).await?;
    Ok(Export {
        entries,
        checkpoints,
    })
}

/// A failed verification: counted, raised as a Critical alert on the chain, and a 409.
async fn broken(s: &AppState, chain: &str, e: audit::AuditError) -> ApiError {
    s.metrics.audit_broken();
    crate::alerts::on_audit_failure(s, chain, &e.to_string()).await;
    ApiError::new(StatusCode::CONFLICT, "audit_broken", e.to_string())
}

/// `GET /v1/audit/export`: the whole chain, one JSON entry per line, then its checkpoints
/// (one `{"checkpoint": ...}` line each), with the server's own verification of it.
pub async fn export(State(s): State<AppState>, a: Authed) -> ApiResult {
    let chain = chain_of(&a)?;
    let export = load(&s, &chain).await?;
    let verified = match audit::verify_export(&export) {
        Ok(v) => v,
        Err(e) => return Err(broken(&s, &chain, e).await),
    };
    Ok(Json(json!({
        "tenant": chain,
        "export": audit::to_export_full(&export.entries, &export.checkpoints),
        "checkpoints": export.checkpoints.len(),
        "verified": verified.iter().find(|c| c.tenant == chain).map(|c| json!({
            "entries": c.entries,
            "head": c.head,
            "checkpoints": c.checkpoints,
            "checkpoint_signers": c.checkpoint_signers,
        })),
    })))
}

/// `GET /v1/audit/verify`: the chain and its checkpoints.
pub async fn verify(State(s): State<AppState>, a: Authed) -> ApiResult {
    let chain = chain_of(&a)?;
    let export = load(&s, &chain).await?;
    let chains = match audit::verify_export(&export) {
        Ok(v) => v,
        Err(e) => return Err(broken(&s, &chain, e).await),
    };
    Ok(Json(json!({"ok": true, "chains": chains})))
}
