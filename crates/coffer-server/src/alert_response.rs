//! Automatic responses to alerts: per tenant, an admin chooses for each severity what the
//! server does by itself when an alert of that severity is raised: `notify` (store it, audit
//! it, send it to the webhooks: what every alert gets), `extra_approval` (every request on
//! the alert's vault that the alert stands over needs one approval more than its policy rule
//! asks, from another member: see [`extra_approval_alerts`]) or `freeze` (also freeze the
//! alert's vault at once, with a server-signed order every signer honours; only the admin
//! quorum can unfreeze). A tenant without settings gets `notify` for every severity.
//!
//! An alert stands over every request on its vault while it is unacknowledged, and for good
//! over the request that raised it (its evidence names the request): acknowledging an alert
//! lifts the extra approval from the other requests, never from the one that raised it. The extra approval is the server's own
//! rule on top of the signed policy; it only ever makes the server stricter, so the signers,
//! which enforce the signed policy, need not know it.
//!
//! [`respond`] runs after the alert is committed and never fails its caller (an alert is
//! often raised on a request path): the freeze runs in a task of its own, and a failure to
//! freeze is logged and raised as an alert itself. Routes: `GET`/`PUT
//! /v1/tenant/alert-responses`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use coffer_alerts::Severity;

use crate::alerts::Alert;
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::custody::caller::{Authed, Role};
use crate::db::alerts::AlertRecord;
use crate::db::{unix_now, TxRecord};

/// What the server does when an alert is raised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Store, audit and send to webhooks (every alert gets this).
    #[default]
    Notify,
    /// Also hold the requests on the alert's vault for one approval more than the policy.
    ExtraApproval,
    /// Also freeze the alert's vault (alerts that name no vault only notify).
    Freeze,
}

/// The response per severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responses {
    /// For low alerts.
    #[serde(default)]
    pub low: Response,
    /// For medium alerts.
    #[serde(default)]
    pub medium: Response,
    /// For high alerts.
    #[serde(default)]
    pub high: Response,
    /// For critical alerts.
    #[serde(default)]
    pub critical: Response,
}

impl Responses {
    /// The response to an alert of `severity`.
    pub fn to(&self, severity: Severity) -> Response {
        match severity {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }

    /// Whether some severity is answered with an extra approval.
    pub fn ask_extra_approval(&self) -> bool {
        Severity::ALL
            .into_iter()
            .any(|sev| self.to(sev) == Response::ExtraApproval)
    }
}

/// The tenant's responses (all `notify` when none are set, or when the stored JSON is
/// unreadable, which is logged).
pub async fn of_tenant(s: &AppState, tenant: &str) -> Responses {
    match s.db.alert_responses(tenant).await {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::error!("alert responses of {tenant} do not parse: {e}");
            Responses::default()
        }),
        Ok(None) => Responses::default(),
        Err(e) => {
            tracing::error!("reading the alert responses of {tenant}: {e}");
            Responses::default()
        }
    }
}

/// Carries out the tenant's response to `alert` (already stored and audited).
pub async fn respond(s: &AppState, tenant: &str, alert: &Alert) {
    let Some(severity) = severity_of(&alert.severity) else {
        return;
    };
    if of_tenant(s, tenant).await.to(severity) != Response::Freeze {
        return;
    }
    let Some(vault_id) = alert.vault.clone() else {
        return;
    };
    let reason = freeze_reason(alert);
    let actor = format!("alert {}", alert.id);
    let (s, tenant) = (s.clone(), tenant.to_string());
    tokio::spawn(async move {
        let vault = match s.db.vault(&tenant, &vault_id).await {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("alert response: reading vault {vault_id}: {e}");
                return;
            }
        };
        match crate::custody::freeze::freeze_as(&s, &vault, &reason, &actor).await {
            Ok(_) => tracing::warn!(vault = %vault_id, %actor, "vault frozen by alert response"),
            Err(e) => tracing::error!("alert response: freezing vault {vault_id}: {e:?}"),
        }
    });
}

fn severity_of(name: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|sev| sev.as_str() == name)
}

/// Whether the tenant answers any severity with an extra approval.
pub async fn may_ask_extra_approval(s: &AppState, tenant: &str) -> bool {
    of_tenant(s, tenant).await.ask_extra_approval()
}

/// The alerts that ask an extra approval of request `t`: those on its vault that stand over
/// it (see the module doc) and whose severity the tenant answers with `extra_approval`.
/// Empty when none does.
pub async fn extra_approval_alerts(s: &AppState, t: &TxRecord) -> Result<Vec<String>, ApiError> {
    let responses = of_tenant(s, &t.tenant_id).await;
    if !responses.ask_extra_approval() {
        return Ok(Vec::new());
    }
    let alerts =
        s.db.alerts_over_request(&t.tenant_id, &t.vault_id, t.created_at)
            .await?;
    let raised_by_t = |a: &AlertRecord| {
        serde_json::from_str::<serde_json::Value>(&a.evidence)
            .map(|e| e["request"] == t.id.as_str())
            .unwrap_or(false)
    };
    Ok(alerts
        .into_iter()
        .filter(|a| a.acked_at.is_none() || raised_by_t(a))
        .filter(|a| {
            severity_of(&a.severity).map(|sev| responses.to(sev)) == Some(Response::ExtraApproval)
        })
        .map(|a| a.id)
        .collect())
}

/// `alert <id> (<severity> <kind>): <explanation>`, cut to the freeze reason's limit on a
/// character boundary.
fn freeze_reason(alert: &Alert) -> String {
    let full = format!(
        "alert {} ({} {}): {}",
        alert.id, alert.severity, alert.kind, alert.explanation
    );
    let mut end = full.len().min(coffer_net::freeze::MAX_REASON);
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    full[..end].to_string()
}

/// `GET /v1/tenant/alert-responses` (tenant roles).
pub async fn show(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let tenant = a.caller.tenant()?;
    Ok(Json(json!(of_tenant(&s, tenant).await)))
}

/// `PUT /v1/tenant/alert-responses` with `{"critical": "freeze", "high": "notify", ...}`
/// (severities left out are `notify`); admins; audited.
pub async fn set(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: Responses = a.json()?;
    let text = serde_json::to_string(&req).map_err(|_| ApiError::internal("responses"))?;
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    tx.set_alert_responses(&tenant, Some(&text), now).await?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "tenant.alert_responses_set".into(),
            object: tenant.clone(),
            detail: json!(req),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!(req)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn severities_map_to_their_response_and_default_to_notify() {
        let r: Responses = serde_json::from_str(r#"{"critical":"freeze"}"#).unwrap();
        assert_eq!(r.to(Severity::Critical), Response::Freeze);
        assert_eq!(r.to(Severity::High), Response::Notify);
        assert_eq!(
            Responses::default().to(Severity::Critical),
            Response::Notify
        );
        assert!(serde_json::from_str::<Responses>(r#"{"critical":"explode"}"#).is_err());
        assert!(serde_json::from_str::<Responses>(r#"{"severe":"freeze"}"#).is_err());
    }

    #[test]
    fn the_freeze_reason_is_cut_on_a_character_boundary() {
        let alert = Alert {
            explanation: "é".repeat(600),
            ..serde_json::from_value(json!({
                "id": "al-1", "tenant": "t", "vault": "v", "wallet": null, "kind": "anomaly",
                "severity": "critical", "explanation": "", "evidence": {}, "subject": {},
                "created_at": 0, "acked_by": null, "acked_at": null, "ack_reason": null
            }))
            .unwrap()
        };
        let r = freeze_reason(&alert);
        assert!(r.len() <= coffer_net::freeze::MAX_REASON && r.starts_with("alert al-1"));
    }
}
