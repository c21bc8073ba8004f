//! Alerts: the server's side of [`coffer_alerts`]. [`raise`] stores a detector's finding as
//! an alert and appends it (`alert.raised`) to the tenant's audit chain in one database
//! transaction, and counts it; it is the hook point other parts of the server (and, later,
//! webhooks) use. The `on_*` hooks feed the detectors from what the server sees (request
//! creation, refused authentications, credential and policy changes, signer refusals and
//! aborts, audit verification failures) and never fail their caller: an alert that cannot be
//! raised is logged and the request proceeds. [`silence_watch`] raises once per silence
//! for a signer not heard from for longer than a limit. The routes list and acknowledge
//! alerts (`GET /v1/alerts`, `GET /v1/alerts/{id}`, `POST /v1/alerts/{id}/ack`) and set the
//! tenant's working hours (`GET`/`PUT /v1/tenant/working-hours`).
//!
//! Roles: admins, approvers and auditors of a tenant list its alerts; admins acknowledge
//! them. Platform operators list and acknowledge the platform's alerts (failures that name
//! no tenant, such as bursts from unknown keys).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use coffer_alerts::burst::{auth_failure_burst, BurstBy, BurstLimits, Bursts};
use coffer_alerts::hours::WorkingHours;
use coffer_alerts::{anomaly, destination, events, velocity, Finding, Payment, Severity, Subject};

use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::{AuditEvent, PLATFORM};
use crate::custody::caller::{Authed, Role};
use crate::db::alerts::{AlertFilter, AlertRecord};
use crate::db::{unix_now, DbError, TxRecord};

/// Longest acknowledgement reason, in bytes.
pub const MAX_ACK_REASON: usize = 1024;

/// Past requests of a wallet the payment detectors look at.
pub const HISTORY_LIMIT: i64 = 1000;

/// The detectors' thresholds and the in-memory burst counters (in [`AppState`]).
#[derive(Clone)]
pub struct AlertState {
    inner: Arc<Inner>,
}

struct Inner {
    config: AlertConfig,
    by_credential: Mutex<Bursts>,
    by_source: Mutex<Bursts>,
}

/// Thresholds of the detectors the server runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertConfig {
    /// Velocity spikes.
    pub velocity: velocity::Thresholds,
    /// The anomaly score.
    pub anomaly: anomaly::AnomalyThresholds,
    /// Failed-authentication bursts.
    pub bursts: BurstLimits,
    /// A signer silent for longer than this is reported.
    pub signer_silence: Duration,
    /// How often silence is checked.
    pub silence_check_every: Duration,
}

impl AlertConfig {
    /// The defaults: see each detector's; a signer silent for 5 minutes, checked every 30 s.
    pub fn standard() -> Self {
        AlertConfig {
            signer_silence: Duration::from_secs(300),
            silence_check_every: Duration::from_secs(30),
            ..AlertConfig::default()
        }
    }
}

impl AlertState {
    /// State with `config`.
    pub fn new(config: AlertConfig) -> Self {
        AlertState {
            inner: Arc::new(Inner {
                config,
                by_credential: Mutex::new(Bursts::default()),
                by_source: Mutex::new(Bursts::default()),
            }),
        }
    }

    /// The thresholds.
    pub fn config(&self) -> &AlertConfig {
        &self.inner.config
    }
}

/// An alert as the API shows it (and as webhooks will carry it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `al-<hex>`.
    pub id: String,
    /// The tenant (or `_platform`).
    pub tenant: String,
    /// The vault concerned.
    pub vault: Option<String>,
    /// The wallet concerned.
    pub wallet: Option<String>,
    /// The kind (`velocity_spike`, `first_destination`, ...).
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// One human sentence.
    pub explanation: String,
    /// What the detector saw.
    pub evidence: Value,
    /// Whom it concerns.
    pub subject: Value,
    /// Unix seconds.
    pub created_at: i64,
    /// The acknowledging credential, once acknowledged.
    pub acked_by: Option<String>,
    /// When.
    pub acked_at: Option<i64>,
    /// Why.
    pub ack_reason: Option<String>,
}

impl Alert {
    fn from_record(r: AlertRecord) -> Alert {
        Alert {
            id: r.id,
            tenant: r.tenant_id,
            vault: r.vault_id,
            wallet: r.wallet_id,
            kind: r.kind,
            severity: r.severity,
            explanation: r.explanation,
            evidence: serde_json::from_str(&r.evidence).unwrap_or(Value::Null),
            subject: serde_json::from_str(&r.subject).unwrap_or(Value::Null),
            created_at: r.created_at,
            acked_by: r.acked_by,
            acked_at: r.acked_at,
            ack_reason: r.ack_reason,
        }
    }
}

fn rank(s: Severity) -> i64 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

/// Stores `finding` as an alert of `tenant` (a tenant id or [`PLATFORM`]) and appends it to
/// that tenant's audit chain, in one transaction; counts it.
pub async fn raise(s: &AppState, tenant: &str, finding: Finding) -> Result<Alert, DbError> {
    let now = unix_now();
    let record = AlertRecord {
        id: crate::custody::new_id("al-"),
        tenant_id: tenant.to_string(),
        vault_id: finding.subject.vault.clone(),
        wallet_id: finding.subject.wallet.clone(),
        kind: finding.kind.as_str().to_string(),
        severity: finding.severity.as_str().to_string(),
        severity_rank: rank(finding.severity),
        explanation: finding.explanation.clone(),
        evidence: finding.evidence.to_string(),
        subject: serde_json::to_value(&finding.subject)
            .unwrap_or(Value::Null)
            .to_string(),
        created_at: now,
        acked_by: None,
        acked_at: None,
        ack_reason: None,
    };
    let mut tx = s.db.begin().await?;
    tx.insert_alert(&record).await?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.to_string(),
            actor: "server".into(),
            action: "alert.raised".into(),
            object: record.id.clone(),
            detail: json!({
                "kind": record.kind,
                "severity": record.severity,
                "explanation": record.explanation,
                "evidence": finding.evidence,
                "subject": finding.subject,
            }),
        },
        now,
    )
    .await?;
    // Webhook endpoints that want `alert.raised` get it through the durable outbox, in the
    // same transaction as the alert itself.
    let alert = Alert::from_record(record.clone());
    let payload = serde_json::to_value(&alert).unwrap_or(Value::Null);
    tx.enqueue_event(tenant, crate::webhooks::ALERT_RAISED, &payload, now)
        .await?;
    tx.commit().await?;
    s.metrics.alert_raised();
    tracing::warn!(
        alert = %record.id,
        tenant = %tenant,
        kind = %record.kind,
        severity = %record.severity,
        "alert raised"
    );
    crate::alert_response::respond(s, tenant, &alert).await;
    Ok(alert)
}

/// Raises `finding`, logging (never returning) a failure: for hooks on request paths.
pub async fn raise_logged(s: &AppState, tenant: &str, finding: Finding) {
    let kind = finding.kind.as_str();
    if let Err(e) = raise(s, tenant, finding).await {
        tracing::error!("could not raise a {kind} alert for {tenant}: {e}");
    }
}

/// After a transaction request was recorded: velocity, first destination, working hours
/// and the anomaly score against the wallet's earlier requests.
pub async fn on_transaction(s: &AppState, t: &TxRecord, intent: &coffer_policy::Intent) {
    for f in transaction_findings(s, t, intent).await {
        raise_logged(s, &t.tenant_id, f).await;
    }
}

async fn transaction_findings(
    s: &AppState,
    t: &TxRecord,
    intent: &coffer_policy::Intent,
) -> Vec<Finding> {
    let history = match s
        .db
        .wallet_history(&t.wallet_id, &t.id, HISTORY_LIMIT)
        .await
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("alerts: reading the history of {}: {e}", t.wallet_id);
            return Vec::new();
        }
    };
    let mut payments = Vec::with_capacity(history.len());
    let mut destinations = Vec::with_capacity(history.len());
    for h in &history {
        if let Ok(i) = serde_json::from_str::<coffer_policy::Intent>(&h.intent) {
            payments.push(Payment {
                amount: i.amount.0,
                at: u64::try_from(h.created_at).unwrap_or(0),
            });
            destinations.push(i.destination);
        }
    }
    let subject = Subject::wallet(&t.vault_id, &t.wallet_id);
    let current = Payment {
        amount: intent.amount.0,
        at: u64::try_from(t.created_at).unwrap_or(0),
    };
    let cfg = s.alerts.config();
    let mut out = Vec::new();
    out.extend(velocity::velocity_spike(
        &subject,
        &payments,
        current,
        &cfg.velocity,
    ));
    out.extend(destination::first_destination(
        &subject,
        destinations.iter().map(String::as_str),
        &intent.destination,
        intent.amount.0,
    ));
    match s.db.working_hours(&t.tenant_id).await {
        Ok(Some(text)) => match text.parse::<WorkingHours>() {
            Ok(wh) => out.extend(coffer_alerts::hours::outside_working_hours(
                &subject,
                &wh,
                current.at,
                &format!("transaction request {}", t.id),
            )),
            Err(e) => tracing::error!("alerts: stored working hours of {}: {e}", t.tenant_id),
        },
        Ok(None) => {}
        Err(e) => tracing::error!("alerts: reading working hours: {e}"),
    }
    out.extend(anomaly::anomaly(&subject, &payments, current, &cfg.anomaly));
    for f in &mut out {
        if let Value::Object(m) = &mut f.evidence {
            m.insert("request".into(), json!(t.id));
        }
    }
    out
}

/// After a refused authentication: counts it per claimed credential and per source
/// address, and raises an alert when either starts a burst. `chain` is where the refusal
/// was audited; a burst of a credential known to a tenant is that tenant's alert.
pub async fn on_auth_failure(
    s: &AppState,
    chain: &str,
    credential: &str,
    peer: Option<SocketAddr>,
    reason: &str,
) {
    let now = unix_now().max(0) as u64;
    let limits = s.alerts.config().bursts;
    let tenant = if chain != PLATFORM {
        chain.to_string()
    } else if credential != "unknown" {
        match s.db.credential(credential).await {
            Ok(Some(c)) => c.tenant_id,
            _ => PLATFORM.to_string(),
        }
    } else {
        PLATFORM.to_string()
    };
    let what = format!("failed authentications (last: {reason})");
    let mut findings = Vec::new();
    if credential != "unknown" {
        let hit = s
            .alerts
            .inner
            .by_credential
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(credential, now, &limits);
        if let Some((count, first)) = hit {
            findings.push(auth_failure_burst(
                BurstBy::Credential,
                credential,
                count,
                first,
                now,
                &limits,
                &what,
            ));
        }
    }
    if let Some(p) = peer {
        let ip = p.ip().to_string();
        let hit = s
            .alerts
            .inner
            .by_source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(&ip, now, &limits);
        if let Some((count, first)) = hit {
            findings.push(auth_failure_burst(
                BurstBy::Source,
                &ip,
                count,
                first,
                now,
                &limits,
                &what,
            ));
        }
    }
    for f in findings {
        raise_logged(s, &tenant, f).await;
    }
}

/// A signer refused to sign request `t` after its own checks: the coordinator asked for
/// something the signer does not consider approved (Critical).
pub async fn on_signer_refused(s: &AppState, t: &TxRecord, signer: &str, reason: &str) {
    let subject = Subject::wallet(&t.vault_id, &t.wallet_id);
    let f = events::signer_refused(&subject, signer, reason, Some(&t.id), false);
    raise_logged(s, &t.tenant_id, f).await;
}

/// A signing session of request `t` aborted blaming `culprits`.
pub async fn on_abort(
    s: &AppState,
    t: &TxRecord,
    session: &str,
    reason: &str,
    culprits: &[String],
) {
    let subject = Subject::wallet(&t.vault_id, &t.wallet_id);
    let f = events::protocol_abort(&subject, session, reason, culprits);
    raise_logged(s, &t.tenant_id, f).await;
}

/// The audit chain of `tenant` failed verification.
pub async fn on_audit_failure(s: &AppState, tenant: &str, detail: &str) {
    let f = events::audit_chain_failure(tenant, detail);
    raise_logged(s, tenant, f).await;
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Every `silence_check_every`, checks when each roster signer was last heard from (since
/// the server started, for one never heard from) and raises one platform alert per silence
/// longer than `signer_silence`; a signer heard from again may be reported again later.
pub async fn silence_watch(s: AppState) {
    let cfg = *s.alerts.config();
    let started = secs(SystemTime::now());
    let mut watch = events::SilenceWatch::default();
    let mut tick = tokio::time::interval(cfg.silence_check_every.max(Duration::from_millis(10)));
    loop {
        tick.tick().await;
        let now = secs(SystemTime::now());
        for signer in &s.roster.signers {
            let heard = s.hub.signer(&signer.node_key).last_seen.map(secs);
            let limit = cfg.signer_silence.as_secs();
            if let Some(f) = watch.observe(&signer.name, heard, started, now, limit) {
                raise_logged(&s, PLATFORM, f).await;
            }
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("alert")
}

/// Which alerts a caller sees: its tenant's, or the platform's for operators.
fn scope(a: &Authed, roles: &[Role]) -> Result<String, ApiError> {
    a.caller.require(roles)?;
    Ok(a.caller.chain().to_string())
}

const LISTERS: &[Role] = &[Role::Operator, Role::Admin, Role::Approver, Role::Auditor];
const ACKERS: &[Role] = &[Role::Operator, Role::Admin];

/// `GET /v1/alerts?severity=&acked=&limit=` (newest first; `severity` is the minimum).
pub async fn list(State(s): State<AppState>, RawQuery(q): RawQuery, a: Authed) -> ApiResult {
    let tenant = scope(&a, LISTERS)?;
    let mut f = AlertFilter {
        limit: 100,
        ..AlertFilter::default()
    };
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "severity" => {
                let sev = Severity::parse(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
                f.min_rank = Some(rank(sev));
            }
            "acked" => {
                f.acked = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::bad_request("acked must be true or false")),
                })
            }
            "limit" => {
                f.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| ApiError::bad_request("limit must be 1 to 1000"))?
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}",
                    k.chars().take(32).collect::<String>()
                )))
            }
        }
    }
    let list: Vec<Alert> =
        s.db.alerts(&tenant, &f)
            .await?
            .into_iter()
            .map(Alert::from_record)
            .collect();
    Ok(Json(json!({ "alerts": list })))
}

/// `GET /v1/alerts/{id}`.
pub async fn show(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    let tenant = scope(&a, LISTERS)?;
    let r = s.db.alert(&tenant, &id).await?.ok_or_else(not_found)?;
    Ok(Json(json!(Alert::from_record(r))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    reason: String,
}

/// `POST /v1/alerts/{id}/ack` with `{"reason": "..."}`: 409 when acknowledged already.
pub async fn ack(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    let tenant = scope(&a, ACKERS)?;
    let req: Ack = a.json()?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > MAX_ACK_REASON {
        return Err(ApiError::bad_request(format!(
            "reason must be 1 to {MAX_ACK_REASON} bytes of text"
        )));
    }
    let existing = s.db.alert(&tenant, &id).await?.ok_or_else(not_found)?;
    if existing.acked_at.is_some() {
        return Err(ApiError::conflict("the alert is already acknowledged"));
    }
    let now = unix_now();
    let by = a.caller.actor();
    let mut tx = s.db.begin().await?;
    if !tx.ack_alert(&tenant, &id, &by, reason, now).await? {
        return Err(ApiError::conflict("the alert is already acknowledged"));
    }
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: by.clone(),
            action: "alert.acknowledged".into(),
            object: id.clone(),
            detail: json!({"reason": reason, "kind": existing.kind, "severity": existing.severity}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let r = s.db.alert(&tenant, &id).await?.ok_or_else(not_found)?;
    Ok(Json(json!(Alert::from_record(r))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hours {
    working_hours: Option<String>,
}

/// `GET /v1/tenant/working-hours` (tenant roles).
pub async fn show_hours(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let tenant = a.caller.tenant()?;
    Ok(Json(
        json!({"working_hours": s.db.working_hours(tenant).await?}),
    ))
}

/// `PUT /v1/tenant/working-hours` with `{"working_hours": "Mon-Fri 08:00-18:00 +00:00"}`
/// (or `null` to switch the detector off); admins; audited.
pub async fn set_hours(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: Hours = a.json()?;
    let parsed = match &req.working_hours {
        Some(text) => Some(
            text.parse::<WorkingHours>()
                .map_err(|e| ApiError::bad_request(format!("working_hours: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    tx.set_working_hours(&tenant, parsed.as_deref(), now)
        .await?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "tenant.working_hours_set".into(),
            object: tenant.clone(),
            detail: json!({"working_hours": parsed}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"working_hours": parsed})))
}
