//! Tenants, users and credentials. Platform operators (the roster's admin keys) create
//! tenants and their first users; a tenant's admins manage its users afterwards. A
//! credential is an Ed25519 public key with one role, belonging to one user of one tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use coffer_net::NodeKey;

use super::caller::{Authed, Role};
use super::{check_name, new_id};
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::{AuditEvent, PLATFORM};
use crate::db::{unix_now, CredentialRecord, TenantRecord, UserRecord};

/// `GET /v1/whoami`.
pub async fn whoami(State(s): State<AppState>, a: Authed) -> ApiResult {
    let c = &a.caller;
    let user_name = match (&c.tenant, &c.user) {
        (Some(t), Some(u)) => {
            s.db.users(t)
                .await?
                .into_iter()
                .find(|x| x.id == *u)
                .map(|x| x.name)
        }
        _ => None,
    };
    Ok(Json(json!({
        "key": c.key,
        "role": c.role.name(),
        "tenant": c.tenant,
        "user": c.user,
        "user_name": user_name,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

fn tenant_json(t: &TenantRecord) -> Value {
    json!({"id": t.id, "name": t.name, "created_at": t.created_at})
}

/// `POST /v1/tenants` (operators).
pub async fn create_tenant(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let req: NewTenant = a.json()?;
    check_name("tenant name", &req.name)?;
    let t = TenantRecord {
        id: new_id("t-"),
        name: req.name,
        created_at: unix_now(),
    };
    let mut tx = s.db.begin().await?;
    tx.insert_tenant(&t)
        .await
        .map_err(ApiError::on_conflict(format!(
            "a tenant named {:?} exists",
            t.name
        )))?;
    let event = |tenant: &str| AuditEvent {
        tenant: tenant.to_string(),
        actor: a.caller.actor(),
        action: "tenant.created".into(),
        object: t.id.clone(),
        detail: json!({"name": t.name}),
    };
    tx.append_audit(event(PLATFORM), t.created_at).await?;
    tx.append_audit(event(&t.id), t.created_at).await?;
    tx.commit().await?;
    Ok(Json(tenant_json(&t)))
}

/// `GET /v1/tenants` (operators).
pub async fn list_tenants(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let list = s.db.tenants().await?;
    Ok(Json(
        json!({"tenants": list.iter().map(tenant_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    key: String,
    tenant: Option<String>,
}

/// `POST /v1/users`: a user (or another credential of an existing user).
pub async fn add_user(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator, Role::Admin])?;
    let req: NewUser = a.json()?;
    let tenant = match (&a.caller.tenant, &req.tenant) {
        (Some(mine), None) => mine.clone(),
        (Some(mine), Some(t)) if t == mine => mine.clone(),
        (Some(_), Some(_)) => return Err(ApiError::not_found("tenant")),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "operators must name the tenant (\"tenant\")",
            ))
        }
    };
    if s.db.tenant(&tenant).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    check_name("user name", &req.name)?;
    let role = Role::tenant_role(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown role {:?} (admin, initiator, approver, viewer, auditor)",
            req.role
        ))
    })?;
    let key: NodeKey = req
        .key
        .parse()
        .map_err(|_| ApiError::bad_request("key must be an Ed25519 public key in hex"))?;
    if key.verifying_key().is_err() {
        return Err(ApiError::bad_request(
            "key is not a valid Ed25519 public key",
        ));
    }
    if s.roster.admins.contains(&key) {
        return Err(ApiError::bad_request(
            "a platform operator key cannot also be a tenant credential",
        ));
    }
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let existing =
        s.db.users(&tenant)
            .await?
            .into_iter()
            .find(|u| u.name == req.name);
    let user = match existing {
        Some(u) => u,
        None => {
            let u = UserRecord {
                id: new_id("u-"),
                tenant_id: tenant.clone(),
                name: req.name.clone(),
                created_at: now,
            };
            tx.insert_user(&u).await?;
            u
        }
    };
    let cred = CredentialRecord {
        key: key.to_hex(),
        tenant_id: tenant.clone(),
        user_id: user.id.clone(),
        role: role.name().to_string(),
        created_at: now,
        disabled: false,
    };
    tx.insert_credential(&cred)
        .await
        .map_err(ApiError::on_conflict("this key is already a credential"))?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "credential.added".into(),
            object: cred.key.clone(),
            detail: json!({"user": user.name, "user_id": user.id, "role": cred.role}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    crate::alerts::raise_logged(
        &s,
        &tenant,
        coffer_alerts::events::new_credential(&cred.key, &user.name, &cred.role, &a.caller.actor()),
    )
    .await;
    Ok(Json(json!({
        "user_id": user.id,
        "name": user.name,
        "role": cred.role,
        "key": cred.key,
        "tenant": tenant,
    })))
}

/// `GET /v1/users` (the tenant's admins and auditors).
pub async fn list_users(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin, Role::Auditor])?;
    let tenant = a.caller.tenant()?;
    let users = s.db.users(tenant).await?;
    let creds = s.db.credentials(tenant).await?;
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "user_id": u.id,
                "name": u.name,
                "created_at": u.created_at,
                "credentials": creds.iter().filter(|c| c.user_id == u.id).map(|c| json!({
                    "key": c.key, "role": c.role, "disabled": c.disabled, "created_at": c.created_at,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "users": list })))
}

/// `POST /v1/credentials/{key}/disable` (the tenant's admins, or an operator).
pub async fn disable_credential(
    State(s): State<AppState>,
    Path(key): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(&[Role::Operator, Role::Admin])?;
    let cred = s
        .db
        .credential(&key)
        .await?
        .filter(|c| a.caller.tenant.is_none() || a.caller.tenant.as_deref() == Some(&c.tenant_id))
        .ok_or_else(|| ApiError::not_found("credential"))?;
    if cred.key == a.caller.actor() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a credential cannot disable itself",
        ));
    }
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    tx.set_credential_disabled(&cred.key, true).await?;
    tx.append_audit(
        AuditEvent {
            tenant: cred.tenant_id.clone(),
            actor: a.caller.actor(),
            action: "credential.disabled".into(),
            object: cred.key.clone(),
            detail: json!({"role": cred.role}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    crate::alerts::raise_logged(
        &s,
        &cred.tenant_id,
        coffer_alerts::events::role_change(&cred.key, &cred.role, None, &a.caller.actor()),
    )
    .await;
    Ok(Json(json!({"key": cred.key, "disabled": true})))
}
