//! Transaction requests and their approvals. A request is an [`Intent`] built and signed by
//! its initiator; its id derives from the tenant and the intent's `request_id`, so posting
//! the same signed intent twice returns the first request (idempotent creation) and a
//! different intent under the same request id is a conflict. On creation the server
//! evaluates the vault's policy (first matching rule): a block rejects the request, an
//! allow with approvals waits for them, an allow without approvals goes to signing at once.
//! Approvers sign the intent hash with their own keys; the request moves on when the rule's
//! quorum is met, or is rejected when an approver rejects it.
//!
//! States: `pending_approval`, `approved`, `signing`, `signed`, `rejected`, `failed`,
//! `expired`. Every change is a compare-and-set on the state, written with its audit entry
//! in one database transaction.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use coffer_policy::{Approval, Context, Decision, Intent, PublicKey, Signature, Verdict};
use coffer_proto::path::DerivationPath;

use super::caller::{Authed, Caller, Role};
use super::policies::parse_stored;
use super::vaults::{child_public_key, load_vault, load_wallet, wallet_key};
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::db::{unix_now, ApprovalRecord, DbTx, TxRecord};

/// How far an intent's creation time may be from the server's clock.
pub const MAX_CREATION_SKEW_SECS: i64 = 300;

/// A request's id: derived from its tenant and the client's request id.
pub fn tx_id(tenant: &str, request_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0u8]);
    h.update(request_id.as_bytes());
    format!("tx-{}", &hex::encode(h.finalize())[..32])
}

/// A stored request's intent.
pub fn stored_intent(t: &TxRecord) -> Result<Intent, ApiError> {
    serde_json::from_str(&t.intent).map_err(|_| ApiError::internal("stored intent is corrupt"))
}

/// A stored approval of the request whose intent hash is `intent_hash`, as the policy
/// library's type.
pub fn stored_approval(a: &ApprovalRecord, intent_hash: &str) -> Result<Approval, ApiError> {
    let corrupt = || ApiError::internal("stored approval is corrupt");
    Ok(Approval {
        approver: a.approver.parse().map_err(|_| corrupt())?,
        intent_hash: {
            let mut h = [0u8; 32];
            hex::decode_to_slice(intent_hash, &mut h).map_err(|_| corrupt())?;
            h
        },
        decision: match a.decision.as_str() {
            "approve" => Decision::Approve,
            "reject" => Decision::Reject,
            _ => return Err(corrupt()),
        },
        expires_at: a.expires_at,
        signature: a.signature.parse().map_err(|_| corrupt())?,
    })
}

/// A request as the API shows it.
pub async fn tx_json(s: &AppState, t: &TxRecord) -> Result<Value, ApiError> {
    let intent: Value = serde_json::from_str(&t.intent).unwrap_or(Value::Null);
    let approvals = s.db.approvals(&t.id).await?;
    let mut required = Vec::new();
    let extra_alerts = if t.state == "pending_approval" {
        crate::alert_response::extra_approval_alerts(s, t).await?
    } else {
        Vec::new()
    };
    if let (Some(p), Ok(i)) = (s.db.current_policy(&t.vault_id).await?, stored_intent(t)) {
        let signed = parse_stored(&p)?;
        let verdict = coffer_policy::evaluate(
            &signed.policy,
            &i,
            &Context {
                now: unix_now(),
                history: &[],
            },
        );
        let list: Vec<Approval> = approvals
            .iter()
            .filter_map(|a| stored_approval(a, &t.intent_hash).ok())
            .collect();
        if let Ok(report) =
            coffer_policy::check_approvals(&signed.policy, &verdict, &i, &list, unix_now())
        {
            required = report
                .counted
                .iter()
                .map(|(g, have, need)| json!({"group": g, "have": have, "need": need}))
                .collect();
        }
    }
    let public_key = match (s.db.key(&t.key_id).await?, stored_intent(t)) {
        (Some(k), Ok(i)) => i
            .path
            .parse::<DerivationPath>()
            .ok()
            .and_then(|p| child_public_key(&k, &p).ok())
            .map(hex::encode),
        _ => None,
    };
    // What the chain transaction does, decoded here (never as anyone claims it).
    let chain = match (s.db.key(&t.key_id).await?, stored_intent(t)) {
        (Some(k), Ok(i)) => match (&i.transaction, i.path.parse::<DerivationPath>()) {
            (Some(text), Ok(p)) => {
                match (
                    coffer_chains::ChainTx::parse(text),
                    child_public_key(&k, &p),
                ) {
                    (Ok(tx), Ok(child)) => match tx.decode(&child) {
                        Ok(d) => json!(d),
                        Err(e) => json!({"error": e.to_string()}),
                    },
                    _ => json!({"error": "the transaction does not parse"}),
                }
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    };
    let signers: Value = t
        .signers
        .as_deref()
        .and_then(|x| serde_json::from_str(x).ok())
        .unwrap_or(Value::Null);
    Ok(json!({
        "id": t.id,
        "vault_id": t.vault_id,
        "wallet_id": t.wallet_id,
        "key_id": t.key_id,
        "state": t.state,
        "intent": intent,
        "intent_hash": t.intent_hash,
        "rule": t.rule,
        "reason": t.reason,
        "policy_version": t.policy_version,
        "approvals": approvals.iter().map(|a| json!({
            "approver": a.approver,
            "decision": a.decision,
            "expires_at": a.expires_at,
            "reason": a.reason,
            "created_at": a.created_at,
        })).collect::<Vec<_>>(),
        "required": required,
        // Alerts whose automatic response asks one approval more than `required` shows.
        "extra_approval_for": extra_alerts,
        "seq": t.seq,
        "signature": t.signature,
        "recovery_id": t.recovery_id,
        "signatures": t.signatures.as_deref().and_then(|x| serde_json::from_str::<Value>(x).ok()),
        "chain": chain,
        "signed_tx": t.signed_tx,
        "tx_id": t.chain_tx_id,
        "public_key": public_key,
        "signers": signers,
        "attempts": t.attempts,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "expires_at": t.expires_at,
    }))
}

/// A chain transaction is decoded here too, under the child key derived from the vault key,
/// so that a transaction that does not match its intent, or cannot be signed by the key, is
/// refused before any signing session starts (the signers check it again themselves).
async fn check_chain_tx(
    s: &AppState,
    key_id: &str,
    path: &DerivationPath,
    intent: &Intent,
    text: &str,
    wallet_chain: Option<&str>,
) -> Result<coffer_chains::Decoded, ApiError> {
    let k =
        s.db.key(key_id)
            .await?
            .ok_or_else(|| ApiError::internal("key missing"))?;
    let tx = coffer_chains::ChainTx::parse(text)
        .map_err(|e| ApiError::bad_request(format!("intent transaction: {e}")))?;
    if let Some(chain) = wallet_chain {
        if tx.chain().name() != chain {
            return Err(ApiError::bad_request(format!(
                "the wallet is on {chain}, the intent's transaction is for {}",
                tx.chain()
            )));
        }
    }
    if tx.scheme().name() != k.scheme.name() {
        return Err(ApiError::bad_request(format!(
            "a {} transaction of this kind is signed with a {} key; the wallet's key is {}",
            tx.chain(),
            tx.scheme().name(),
            k.scheme.name()
        )));
    }
    let child = child_public_key(&k, path)?;
    tx.check_intent(
        &child,
        intent.kind.name(),
        &intent.asset,
        &intent.destination,
        intent.amount.0,
    )
    .map_err(|e| ApiError::bad_request(format!("intent transaction: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTx {
    intent: Intent,
    initiator_signature: Signature,
}

/// `POST /v1/transactions` (initiators).
pub async fn create(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Initiator])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: NewTx = a.json()?;
    let intent = req.intent;
    if intent.tenant != tenant {
        return Err(ApiError::bad_request(
            "the intent names another tenant than the caller's",
        ));
    }
    if intent.initiator != PublicKey(a.caller.key.0) {
        return Err(ApiError::bad_request(
            "the intent's initiator must be the calling credential",
        ));
    }
    intent
        .validate()
        .map_err(|e| ApiError::bad_request(format!("intent: {e}")))?;
    coffer_policy::verify_initiation(&intent, &req.initiator_signature)
        .map_err(|e| ApiError::bad_request(format!("initiator signature: {e}")))?;
    let now = unix_now();
    if (intent.created_at - now).abs() > MAX_CREATION_SKEW_SECS {
        return Err(ApiError::bad_request(format!(
            "the intent's created_at is more than {MAX_CREATION_SKEW_SECS} s from the server's clock"
        )));
    }
    if intent.expires_at <= now {
        return Err(ApiError::bad_request("the intent has already expired"));
    }
    let id = tx_id(&tenant, &intent.request_id);
    let intent_hash = hex::encode(intent.hash());
    if let Some(existing) = s.db.tx(&tenant, &id).await? {
        if existing.intent_hash == intent_hash {
            return Ok(Json(tx_json(&s, &existing).await?));
        }
        return Err(ApiError::conflict(format!(
            "request id {:?} was already used for another intent",
            intent.request_id
        )));
    }
    let wallet = load_wallet(&s, &a.caller, &intent.wallet_id).await?;
    let vault = load_vault(&s, &a.caller, &wallet.vault_id).await?;
    super::freeze::ensure_not_frozen(&s, &vault.id).await?;
    if intent.vault_id != vault.id {
        return Err(ApiError::bad_request(
            "the intent's vault is not the wallet's",
        ));
    }
    let key_id = wallet_key(&vault, &wallet).ok_or_else(|| ApiError::internal("wallet key"))?;
    if intent.key_id != key_id {
        return Err(ApiError::bad_request(format!(
            "the wallet signs with key {key_id}, the intent names {}",
            intent.key_id
        )));
    }
    if intent.asset != wallet.asset {
        return Err(ApiError::bad_request(format!(
            "the wallet holds {}, the intent moves {}",
            wallet.asset, intent.asset
        )));
    }
    let path: DerivationPath = intent
        .path
        .parse()
        .map_err(|e| ApiError::bad_request(format!("intent path: {e}")))?;
    if path.indices().len() != 2 || path.indices()[0] != wallet.index {
        return Err(ApiError::bad_request(format!(
            "the intent's path must be m/{}/<address index> (the wallet's addresses)",
            wallet.index
        )));
    }
    if let Some(text) = &intent.transaction {
        check_chain_tx(&s, key_id, &path, &intent, text, wallet.chain.as_deref()).await?;
    }
    let policy_record = s.db.current_policy(&vault.id).await?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no_policy",
            format!(
                "vault {} has no policy: nothing can be signed until admins sign one",
                vault.id
            ),
        )
    })?;
    let signed_policy = parse_stored(&policy_record)?;
    let policy = &signed_policy.policy;
    let since = coffer_policy::lookback_since(policy, &intent, now);
    let history = super::signing::window(&s, key_id, since, None).await?;
    let verdict = coffer_policy::evaluate(
        policy,
        &intent,
        &Context {
            now,
            history: &history,
        },
    );
    let (state, rule, reason) = match &verdict {
        Verdict::Block { rule } => (
            "rejected",
            rule.clone(),
            Some(match rule {
                Some(r) => format!("blocked by policy rule {r:?}"),
                None => "no policy rule allows it (default deny)".to_string(),
            }),
        ),
        Verdict::Allow { rule, .. } => {
            if !policy.may_initiate(&intent.initiator) {
                (
                    "rejected",
                    Some(rule.clone()),
                    Some("the initiator is not a member of the policy's initiator groups".into()),
                )
            } else {
                let report = coffer_policy::check_approvals(policy, &verdict, &intent, &[], now)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                if report.satisfied {
                    ("approved", Some(rule.clone()), None)
                } else {
                    ("pending_approval", Some(rule.clone()), None)
                }
            }
        }
    };
    // A request the rule approves at once waits, pending, until the detectors have run when
    // the tenant answers some alerts with an extra approval (released below if none asks
    // it; a crash in between leaves it pending, the safe side).
    let hold =
        state == "approved" && crate::alert_response::may_ask_extra_approval(&s, &tenant).await;
    let state = if hold { "pending_approval" } else { state };
    let record = TxRecord {
        id: id.clone(),
        tenant_id: tenant.clone(),
        vault_id: vault.id.clone(),
        wallet_id: wallet.id.clone(),
        key_id: key_id.to_string(),
        intent: serde_json::to_string(&intent).map_err(|_| ApiError::internal("intent"))?,
        intent_hash: intent_hash.clone(),
        initiator: intent.initiator.to_string(),
        initiator_signature: req.initiator_signature.to_string(),
        state: state.to_string(),
        rule: rule.clone(),
        reason: reason.clone(),
        policy_version: policy.version as i64,
        seq: None,
        receipt_body: None,
        signature: None,
        recovery_id: None,
        signers: None,
        signatures: None,
        signed_tx: None,
        chain_tx_id: None,
        attempts: 0,
        created_at: now,
        updated_at: now,
        expires_at: intent.expires_at,
    };
    let mut tx = s.db.begin().await?;
    tx.insert_tx(&record)
        .await
        .map_err(ApiError::on_conflict("request id already used"))?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "transaction.created".into(),
            object: id.clone(),
            detail: json!({
                "intent_hash": intent_hash,
                "wallet": wallet.id,
                "asset": intent.asset,
                "amount": intent.amount.to_string(),
                "destination": intent.destination,
                "request_id": intent.request_id,
            }),
        },
        now,
    )
    .await?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: "server".into(),
            action: format!("transaction.{state}"),
            object: id.clone(),
            detail: json!({"rule": rule, "reason": reason, "policy_version": policy.version}),
        },
        now,
    )
    .await?;
    // The events go into the outbox with the change (delivered later, never here).
    crate::webhooks::enqueue_transaction(
        &mut tx,
        &record,
        "transaction.created",
        state,
        reason.as_deref(),
        now,
    )
    .await?;
    if state != "pending_approval" {
        crate::webhooks::enqueue_transaction(
            &mut tx,
            &record,
            &format!("transaction.{state}"),
            state,
            reason.as_deref(),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    s.metrics.transaction(state);
    // Detectors run on the recorded request; they never fail or block its creation.
    crate::alerts::on_transaction(&s, &record, &intent).await;
    let state = if hold {
        release_unless_extra_approval(&s, &record).await?
    } else {
        state
    };
    let record = TxRecord {
        state: state.to_string(),
        ..record
    };
    if state == "approved" {
        super::signing::spawn(s.clone(), tenant, id.clone());
    }
    Ok(Json(tx_json(&s, &record).await?))
}

/// Moves pending request `t` to `next` (`approved` or `rejected`) with its audit entry and
/// webhook event, inside `tx`; false if it was no longer pending.
async fn move_on(
    tx: &mut DbTx,
    t: &TxRecord,
    next: &str,
    reason: Option<&str>,
    detail: Value,
    now: i64,
) -> Result<bool, ApiError> {
    if !tx
        .transition(&t.id, &["pending_approval"], next, reason, now)
        .await?
    {
        return Ok(false);
    }
    tx.append_audit(
        AuditEvent {
            tenant: t.tenant_id.clone(),
            actor: "server".into(),
            action: format!("transaction.{next}"),
            object: t.id.clone(),
            detail,
        },
        now,
    )
    .await?;
    crate::webhooks::enqueue_transaction(tx, t, &format!("transaction.{next}"), next, reason, now)
        .await?;
    Ok(true)
}

/// After the detectors ran on a request its rule approves at once: approves it, unless an
/// alert asks an extra approval of it (then it stays pending, audited with the alerts).
/// Returns the state it is in.
async fn release_unless_extra_approval(
    s: &AppState,
    t: &TxRecord,
) -> Result<&'static str, ApiError> {
    let alerts = crate::alert_response::extra_approval_alerts(s, t).await?;
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let state = if alerts.is_empty() {
        move_on(&mut tx, t, "approved", None, json!({"approvals": 0}), now).await?;
        "approved"
    } else {
        tx.append_audit(
            AuditEvent {
                tenant: t.tenant_id.clone(),
                actor: "server".into(),
                action: "transaction.extra_approval_required".into(),
                object: t.id.clone(),
                detail: json!({"alerts": alerts}),
            },
            now,
        )
        .await?;
        "pending_approval"
    };
    tx.commit().await?;
    s.metrics.transaction(state);
    Ok(state)
}

/// Reads `?state=..&limit=..`.
fn query_params(q: Option<String>) -> Result<(Option<String>, i64), ApiError> {
    let mut state = None;
    let mut limit = 100;
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "state" => state = Some(v.to_string()),
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
    Ok((state, limit))
}

/// `GET /v1/transactions?state=&limit=`.
pub async fn list(State(s): State<AppState>, RawQuery(q): RawQuery, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let (state, limit) = query_params(q)?;
    let list =
        s.db.txs(a.caller.tenant()?, state.as_deref(), limit)
            .await?;
    let mut out = Vec::with_capacity(list.len());
    for t in &list {
        out.push(tx_json(&s, t).await?);
    }
    Ok(Json(json!({ "transactions": out })))
}

/// The caller's request `id`.
pub async fn load_tx(s: &AppState, c: &Caller, id: &str) -> Result<TxRecord, ApiError> {
    s.db.tx(c.tenant()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found("transaction"))
}

/// `GET /v1/transactions/{id}`.
pub async fn show(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let t = load_tx(&s, &a.caller, &id).await?;
    Ok(Json(tx_json(&s, &t).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    approval: Approval,
    reason: Option<String>,
}

/// `POST /v1/transactions/{id}/approve` (approvers).
pub async fn approve(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    decide(s, id, a, Decision::Approve).await
}

/// `POST /v1/transactions/{id}/reject` (approvers).
pub async fn reject(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    decide(s, id, a, Decision::Reject).await
}

async fn decide(s: AppState, id: String, a: Authed, decision: Decision) -> ApiResult {
    a.caller.require(&[Role::Approver])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: Decide = a.json()?;
    let approval = req.approval;
    if let Some(r) = &req.reason {
        if r.len() > 500 {
            return Err(ApiError::bad_request("reason is limited to 500 bytes"));
        }
    }
    if approval.approver != PublicKey(a.caller.key.0) {
        return Err(ApiError::bad_request(
            "the approval must be signed by the calling credential",
        ));
    }
    if approval.decision != decision {
        return Err(ApiError::bad_request(
            "the approval's decision does not match the route (approve / reject)",
        ));
    }
    approval
        .verify()
        .map_err(|e| ApiError::bad_request(format!("approval: {e}")))?;
    let now = unix_now();
    if approval.expires_at <= now {
        return Err(ApiError::bad_request("the approval has already expired"));
    }
    let mut tx = s.db.begin().await?;
    let t = load_tx(&s, &a.caller, &id).await?;
    if hex::encode(approval.intent_hash) != t.intent_hash {
        return Err(ApiError::bad_request(
            "the approval is for another intent (its hash differs from this request's)",
        ));
    }
    if t.state != "pending_approval" {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_pending",
            format!("the request is {}, not pending approval", t.state),
        ));
    }
    super::freeze::ensure_not_frozen(&s, &t.vault_id).await?;
    let extra_alerts = crate::alert_response::extra_approval_alerts(&s, &t).await?;
    let intent = stored_intent(&t)?;
    let p =
        s.db.current_policy(&t.vault_id)
            .await?
            .ok_or_else(|| ApiError::internal("policy missing"))?;
    let policy = parse_stored(&p)?.policy;
    if !policy.is_any_member(&approval.approver) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "this credential is in no approver group of the vault's policy",
        ));
    }
    let verdict = coffer_policy::evaluate(&policy, &intent, &Context { now, history: &[] });
    let self_ok = matches!(
        &verdict,
        Verdict::Allow {
            allow_self_approval: true,
            ..
        }
    );
    // The initiator's user, under any of its credentials, is the initiator.
    let same_user = match s.db.credential(&intent.initiator.to_string()).await? {
        Some(c) => a.caller.user.as_deref() == Some(c.user_id.as_str()),
        None => false,
    };
    if (approval.approver == intent.initiator || same_user)
        && !self_ok
        && decision == Decision::Approve
    {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "self_approval",
            "the initiator cannot approve their own request under this policy",
        ));
    }
    let record = ApprovalRecord {
        tx_id: t.id.clone(),
        approver: approval.approver.to_string(),
        decision: match decision {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
        .to_string(),
        expires_at: approval.expires_at,
        signature: approval.signature.to_string(),
        reason: req.reason.clone(),
        created_at: now,
    };
    let mut all: Vec<Approval> =
        s.db.approvals(&t.id)
            .await?
            .iter()
            .map(|a| stored_approval(a, &t.intent_hash))
            .collect::<Result<_, _>>()?;
    all.push(approval.clone());
    tx.insert_approval(&record)
        .await
        .map_err(ApiError::on_conflict(
            "this approver already decided on the request",
        ))?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: format!("approval.{}", record.decision),
            object: t.id.clone(),
            detail: json!({"intent_hash": t.intent_hash, "expires_at": approval.expires_at, "reason": req.reason}),
        },
        now,
    )
    .await?;
    let extra = u16::from(!extra_alerts.is_empty());
    let report =
        coffer_policy::check_approvals_with_extra(&policy, &verdict, &intent, &all, now, extra)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let next = if !report.rejected_by.is_empty() {
        Some("rejected")
    } else if report.satisfied {
        Some("approved")
    } else {
        None
    };
    if let Some(next) = next {
        let reason = (next == "rejected").then(|| {
            format!(
                "rejected by an approver{}",
                req.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        });
        move_on(
            &mut tx,
            &t,
            next,
            reason.as_deref(),
            json!({"approvals": all.len(), "reason": reason}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if let Some(next) = next {
        s.metrics.transaction(next);
        if next == "approved" {
            super::signing::spawn(s.clone(), tenant.clone(), t.id.clone());
        }
    }
    let t = load_tx(&s, &a.caller, &id).await?;
    Ok(Json(tx_json(&s, &t).await?))
}
