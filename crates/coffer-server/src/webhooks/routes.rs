//! The webhook routes, scoped to the caller's tenant (another tenant's endpoint or
//! delivery is "not found"): admins create and remove endpoints and re-arm dead
//! deliveries; every tenant role lists endpoints (without secrets) and their deliveries.
//! The secret is returned once, by creation. Each change is audited in the transaction
//! that makes it; the audit entry names the URL without its query string.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::is_event_type;
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::custody::caller::{Authed, Role};
use crate::db::webhooks::unix_now_ms;
use crate::db::{unix_now, DeliveryRecord, EndpointRecord};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Most event types one endpoint may name.
pub const MAX_EVENTS: usize = 16;
/// Most enabled endpoints per tenant.
pub const MAX_ENDPOINTS: usize = 20;

/// Checks an endpoint URL: http or https, a host, at most [`MAX_URL_LEN`] bytes, no
/// credentials and no fragment. Returns it normalized.
pub fn check_url(text: &str) -> Result<String, ApiError> {
    if text.is_empty() || text.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(format!(
            "url must be 1 to {MAX_URL_LEN} bytes"
        )));
    }
    let url = url::Url::parse(text)
        .map_err(|e| ApiError::bad_request(format!("url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request(format!(
            "url must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("url must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::bad_request(
            "url must not carry credentials (the payloads are signed with the endpoint's secret)",
        ));
    }
    if url.fragment().is_some() {
        return Err(ApiError::bad_request("url must not have a fragment"));
    }
    let out = url.to_string();
    if out.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(format!(
            "url must be 1 to {MAX_URL_LEN} bytes"
        )));
    }
    Ok(out)
}

/// The URL as audit entries record it: without the query string (it may carry a token).
fn url_for_audit(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

fn endpoint_json(e: &EndpointRecord) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events,
        "created_at": e.created_at,
        "disabled": e.disabled,
    })
}

fn delivery_json(d: &DeliveryRecord) -> Value {
    json!({
        "event_id": d.id,
        "endpoint_id": d.endpoint_id,
        "event_type": d.event_type,
        "data": serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_attempt_ms": (d.state == "pending").then_some(d.next_attempt_ms),
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    events: Option<Vec<String>>,
}

/// `POST /v1/webhooks` (admins): `{url, events?}`; returns the endpoint with its secret,
/// shown this once.
pub async fn create(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: NewEndpoint = a.json()?;
    let url = check_url(&req.url)?;
    let mut events = req.events.unwrap_or_default();
    if events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "events names at most {MAX_EVENTS} event types"
        )));
    }
    if let Some(bad) = events.iter().find(|e| !is_event_type(e)) {
        return Err(ApiError::bad_request(format!(
            "unknown event type {:?} (known: {}, {})",
            bad.chars().take(64).collect::<String>(),
            super::TRANSACTION_EVENTS.join(", "),
            super::ALERT_RAISED
        )));
    }
    events.sort();
    events.dedup();
    if s.db.endpoints(&tenant).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::conflict(format!(
            "a tenant has at most {MAX_ENDPOINTS} webhook endpoints; remove one first"
        )));
    }
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret[..]);
    let now = unix_now();
    let record = EndpointRecord {
        id: crate::custody::new_id("wh-"),
        tenant_id: tenant.clone(),
        url,
        secret: hex::encode(&secret[..]),
        events,
        created_at: now,
        disabled: false,
    };
    let mut tx = s.db.begin().await?;
    tx.insert_endpoint(&record)
        .await
        .map_err(ApiError::on_conflict("endpoint id already used"))?;
    tx.append_audit(
        AuditEvent {
            tenant,
            actor: a.caller.actor(),
            action: "webhook.created".into(),
            object: record.id.clone(),
            detail: json!({"url": url_for_audit(&record.url), "events": record.events}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let mut out = endpoint_json(&record);
    out["secret"] = json!(record.secret);
    Ok(Json(out))
}

/// `GET /v1/webhooks`: the tenant's endpoints (no secrets).
pub async fn list(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let list = s.db.endpoints(a.caller.tenant()?).await?;
    Ok(Json(
        json!({"webhooks": list.iter().map(endpoint_json).collect::<Vec<_>>()}),
    ))
}

/// `DELETE /v1/webhooks/{id}` (admins): no more deliveries to it; its pending ones become
/// dead ("endpoint removed"); its history stays readable.
pub async fn remove(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    if !tx.disable_endpoint(&tenant, &id, now).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    tx.append_audit(
        AuditEvent {
            tenant,
            actor: a.caller.actor(),
            action: "webhook.removed".into(),
            object: id.clone(),
            detail: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": id, "removed": true})))
}

/// Reads `?limit=` (1 to 1000, default 100).
fn limit_param(q: Option<String>) -> Result<i64, ApiError> {
    let mut limit = 100;
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("limit", v) => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| ApiError::bad_request("limit must be 1 to 1000"))?
            }
            (k, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}",
                    k.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    Ok(limit)
}

/// `GET /v1/webhooks/{id}/deliveries?limit=`: newest first.
pub async fn deliveries(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let limit = limit_param(q)?;
    let e =
        s.db.endpoint(a.caller.tenant()?, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    let list = s.db.deliveries(&e.id, limit).await?;
    Ok(Json(json!({
        "endpoint": endpoint_json(&e),
        "deliveries": list.iter().map(delivery_json).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/webhooks/deliveries/{event_id}/retry` (admins): a dead delivery is pending
/// again, due at once, with its attempts reset.
pub async fn retry(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let d =
        s.db.delivery(&tenant, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
    let endpoint =
        s.db.endpoint(&tenant, &d.endpoint_id)
            .await?
            .ok_or_else(|| ApiError::internal("delivery without endpoint"))?;
    if endpoint.disabled {
        return Err(ApiError::conflict(
            "the delivery's endpoint was removed; nothing will be sent to it",
        ));
    }
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    if !tx.rearm_delivery(&tenant, &id, unix_now_ms()).await? {
        return Err(ApiError::conflict(format!(
            "only dead deliveries are retried; this one is {}",
            d.state
        )));
    }
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "webhook.retry".into(),
            object: id.clone(),
            detail: json!({"endpoint": d.endpoint_id, "attempts": d.attempts, "last_error": d.last_error}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let d =
        s.db.delivery(&tenant, &id)
            .await?
            .ok_or_else(|| ApiError::internal("delivery vanished"))?;
    Ok(Json(delivery_json(&d)))
}
