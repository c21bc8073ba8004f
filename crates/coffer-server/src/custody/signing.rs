//! Signing approved requests. One request at a time per key (a per-key lock), because each
//! signing takes the next place of the key's receipt chain:
//!
//! 1. `approved` -> `signing`: the server proposes the receipt body (next sequence number,
//!    hash of the previous receipt, time) and stores it with the request, so a retry after a
//!    crash proposes the very same body (the signers answer an identical retry from their
//!    ledgers and never sign twice);
//! 2. it sends the signers the intent, its initiator signature, the approvals, the current
//!    signed policy, the proposed receipt and the co-signed receipts of the window; each
//!    signer decides for itself ([`coffer_net::frames::Task::SignIntent`]);
//! 3. it checks the signature with an independent verifier against the child key it derives
//!    itself, assembles the receipt from the signers' co-signatures, and stores both with
//!    the `signed` state and its audit entry in one transaction.
//!
//! A signer's refusal fails the request (recorded with the signer's reason: a coordinator
//! asking for something not approved is an attack). Transient failures (a signer offline, a
//! stalled session) are retried with the same job, with backoff, for as long as it takes:
//! the signers that accepted it reserved its place in the key's chain, and no other intent
//! may take that place. At start-up, requests left `approved` or `signing` by a crash are
//! resumed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use coffer_net::frames::{IntentJob, Job, Outcome, Task};
use coffer_net::NodeKey;
use coffer_policy::{Approval, Intent, PublicKey, Receipt, ReceiptBody, Signature};
use coffer_proto::ids::SessionId;
use coffer_proto::path::DerivationPath;

use super::policies::parse_stored;
use super::transactions::{stored_approval, stored_intent};
use crate::api::{members, ApiError, AppState};
use crate::audit::AuditEvent;
use crate::coordinator::{self, name_of, JobError};
use crate::db::{unix_now, KeyRecord, TxRecord};

/// First pause before retrying a signing that failed for a transient reason.
pub const RETRY_BASE_MS: u64 = 250;
/// Longest pause between retries.
pub const RETRY_MAX_MS: u64 = 30_000;

/// Per-key locks: one signing at a time per key chain.
#[derive(Clone, Default)]
pub struct KeyLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl KeyLocks {
    pub(crate) fn of(&self, key_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key_id.to_string())
            .or_default()
            .clone()
    }
}

/// The key's co-signed receipts from the last one before `since` (so the chain reaches back
/// past it) up to, not including, `before` (all when `None`).
pub async fn receipts(
    s: &AppState,
    key_id: &str,
    since: i64,
    before: Option<u64>,
) -> Result<Vec<Receipt>, ApiError> {
    let from = s.db.receipt_seq_before(key_id, since).await?.unwrap_or(0);
    let mut out = Vec::new();
    for r in s.db.receipts_from(key_id, from).await? {
        if before.is_some_and(|b| r.seq >= b) {
            break;
        }
        let body: ReceiptBody = serde_json::from_str(&r.body)
            .map_err(|_| ApiError::internal("stored receipt is corrupt"))?;
        let signatures: Vec<(PublicKey, Signature)> = serde_json::from_str(&r.signatures)
            .map_err(|_| ApiError::internal("stored receipt is corrupt"))?;
        out.push(Receipt { body, signatures });
    }
    Ok(out)
}

/// The receipt bodies of the window (for evaluating velocity on the server's side).
pub async fn window(
    s: &AppState,
    key_id: &str,
    since: i64,
    before: Option<u64>,
) -> Result<Vec<ReceiptBody>, ApiError> {
    Ok(receipts(s, key_id, since, before)
        .await?
        .into_iter()
        .map(|r| r.body)
        .collect())
}

/// Starts signing request `id` of `tenant` in the background.
pub fn spawn(s: AppState, tenant: String, id: String) {
    tokio::spawn(async move {
        if let Err(e) = run(&s, &tenant, &id).await {
            tracing::error!("signing {id}: {}", e.message());
        }
    });
}

/// Resumes every request a crash left approved or signing.
pub async fn resume(s: &AppState) {
    match s.db.txs_in_states(&["approved", "signing"]).await {
        Ok(list) => {
            for t in list {
                tracing::info!("resuming request {} ({})", t.id, t.state);
                spawn(s.clone(), t.tenant_id.clone(), t.id.clone());
            }
        }
        Err(e) => tracing::error!("cannot list requests to resume: {e}"),
    }
}

/// Resumes the approved requests of vault `vault_id` (left waiting by a freeze).
pub async fn resume_vault(s: &AppState, vault_id: &str) {
    match s.db.txs_in_states(&["approved"]).await {
        Ok(list) => {
            for t in list.into_iter().filter(|t| t.vault_id == vault_id) {
                tracing::info!("resuming request {} after the unfreeze", t.id);
                spawn(s.clone(), t.tenant_id.clone(), t.id.clone());
            }
        }
        Err(e) => tracing::error!("cannot list requests to resume: {e}"),
    }
}

/// Expires requests whose intent expired before they were signed, every few seconds.
pub async fn expire_loop(s: AppState) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = unix_now();
        let Ok(list) = s.db.expirable(now).await else {
            continue;
        };
        for t in list {
            let result = async {
                let mut tx = s.db.begin().await?;
                if tx
                    .transition(
                        &t.id,
                        &["pending_approval", "approved"],
                        "expired",
                        Some("the intent expired before it was signed"),
                        now,
                    )
                    .await?
                {
                    tx.append_audit(
                        AuditEvent {
                            tenant: t.tenant_id.clone(),
                            actor: "server".into(),
                            action: "transaction.expired".into(),
                            object: t.id.clone(),
                            detail: json!({"expires_at": t.expires_at}),
                        },
                        now,
                    )
                    .await?;
                    crate::webhooks::enqueue_transaction(
                        &mut tx,
                        &t,
                        "transaction.expired",
                        "expired",
                        Some("the intent expired before it was signed"),
                        now,
                    )
                    .await?;
                }
                tx.commit().await
            }
            .await;
            if let Err(e) = result {
                tracing::error!("expiring {}: {e}", t.id);
            }
        }
    }
}

async fn run(s: &AppState, tenant: &str, id: &str) -> Result<(), ApiError> {
    let t =
        s.db.tx(tenant, id)
            .await?
            .ok_or_else(|| ApiError::internal("request vanished"))?;
    // The key's chain is sequential: the lock is held until this request is signed or
    // refused, so later requests of the key queue behind it.
    let lock = s.custody_locks.of(&t.key_id);
    let mut guard = lock.lock().await;
    // After a crash, a request already holding a place of the chain goes first: a new
    // place can only follow the last receipt.
    while t.state == "approved" && holder_of_place(s, &t).await? {
        drop(guard);
        tokio::time::sleep(Duration::from_millis(100)).await;
        guard = lock.lock().await;
    }
    let _guard = guard;
    // Read under the lock: a share refresh (which holds it too) may move the key's epoch,
    // which every signing job carries.
    let key =
        s.db.key(&t.key_id)
            .await?
            .ok_or_else(|| ApiError::internal("key missing"))?;
    // A frozen vault signs nothing: the request waits, approved, for the unfreeze.
    if t.state == "approved" && super::freeze::is_frozen(s, &t.vault_id).await? {
        tracing::warn!("request {id} waits: vault {} is frozen", t.vault_id);
        return Ok(());
    }
    let mut failures: u32 = 0;
    loop {
        let t =
            s.db.tx(tenant, id)
                .await?
                .ok_or_else(|| ApiError::internal("request vanished"))?;
        let body = match (t.state.as_str(), &t.receipt_body) {
            ("approved", _) | ("signing", None) => propose(s, &t).await?,
            ("signing", Some(b)) => serde_json::from_str(b)
                .map_err(|_| ApiError::internal("stored receipt body is corrupt"))?,
            _ => return Ok(()),
        };
        let started = std::time::Instant::now();
        match attempt(s, &t, &key, &body).await {
            Ok(()) => {
                s.metrics.signed(started.elapsed());
                return Ok(());
            }
            Err(Failure::Refused { by, reason }) => {
                crate::alerts::on_signer_refused(s, &t, &by, &reason).await;
                fail(
                    s,
                    &t,
                    &format!("signer {by} refused: {reason}"),
                    Some((&by, &reason)),
                )
                .await?;
                return Ok(());
            }
            Err(Failure::Transient(e)) => {
                // The place in the chain is reserved for this intent on the signers that
                // accepted it: retry the very same job (never another intent there).
                failures = failures.saturating_add(1);
                let now = unix_now();
                let mut tx = s.db.begin().await?;
                tx.note_attempt(&t.id, now).await?;
                tx.append_audit(
                    AuditEvent {
                        tenant: t.tenant_id.clone(),
                        actor: "server".into(),
                        action: "transaction.signing_failed".into(),
                        object: t.id.clone(),
                        detail: json!({"error": e, "attempt": failures, "seq": body.seq}),
                    },
                    now,
                )
                .await?;
                tx.commit().await?;
                let backoff = RETRY_BASE_MS
                    .saturating_mul(1u64 << failures.min(6))
                    .min(RETRY_MAX_MS);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
        }
    }
}

/// Whether another request of `t`'s key holds a place of the chain not yet receipted.
async fn holder_of_place(s: &AppState, t: &TxRecord) -> Result<bool, ApiError> {
    Ok(s.db
        .txs_in_states(&["signing"])
        .await?
        .iter()
        .any(|o| o.key_id == t.key_id && o.id != t.id))
}

/// Takes the next place of the key's chain for `t` and records it (`approved` ->
/// `signing`).
async fn propose(s: &AppState, t: &TxRecord) -> Result<ReceiptBody, ApiError> {
    let intent = stored_intent(t)?;
    let (seq, prev) = match s.db.last_receipt(&t.key_id).await? {
        Some(r) => {
            let body: ReceiptBody = serde_json::from_str(&r.body)
                .map_err(|_| ApiError::internal("stored receipt is corrupt"))?;
            (r.seq + 1, body.hash())
        }
        None => (0, [0u8; 32]),
    };
    let now = unix_now();
    let body = ReceiptBody::for_intent(&intent, seq, prev, now);
    let mut tx = s.db.begin().await?;
    tx.set_signing(
        &t.id,
        seq,
        &serde_json::to_string(&body).map_err(|_| ApiError::internal("receipt encoding"))?,
        now,
    )
    .await?;
    tx.append_audit(
        AuditEvent {
            tenant: t.tenant_id.clone(),
            actor: "server".into(),
            action: "transaction.signing".into(),
            object: t.id.clone(),
            detail: json!({"seq": seq, "key": t.key_id}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(body)
}

enum Failure {
    Refused { by: String, reason: String },
    Transient(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Transient(e.message().to_string())
    }
}

/// The job the signers get for `t` with the proposed `body`.
pub async fn intent_job(
    s: &AppState,
    t: &TxRecord,
    body: &ReceiptBody,
) -> Result<IntentJob, ApiError> {
    let intent: Intent = stored_intent(t)?;
    let policy =
        s.db.current_policy(&t.vault_id)
            .await?
            .ok_or_else(|| ApiError::internal("policy missing"))?;
    let policy = parse_stored(&policy)?;
    let approvals: Vec<Approval> =
        s.db.approvals(&t.id)
            .await?
            .iter()
            .map(|a| stored_approval(a, &t.intent_hash))
            .collect::<Result<_, _>>()?;
    let since = coffer_policy::lookback_since(&policy.policy, &intent, body.at);
    let history = receipts(s, &t.key_id, since, Some(body.seq)).await?;
    Ok(IntentJob {
        initiator_signature: t
            .initiator_signature
            .parse()
            .map_err(|_| ApiError::internal("stored initiator signature"))?,
        intent,
        approvals,
        policy,
        receipt: body.clone(),
        history,
        input: 0,
    })
}

/// One signature from one session: the agreed signature and recovery id, the signers'
/// receipt co-signatures, and who took part.
struct Session {
    signature: String,
    recovery_id: Option<u8>,
    cosigs: Vec<(PublicKey, Signature)>,
    parties: Vec<(u16, NodeKey)>,
}

/// Runs one signing session for `job_body` (one digest) with the first `t` connected
/// members; the signers must agree on the signature and each co-sign the receipt.
/// `abort_of`: the request a protocol abort is reported against (an alert naming the
/// blamed signers).
async fn session(
    s: &AppState,
    k: &KeyRecord,
    job_body: IntentJob,
    abort_of: Option<&TxRecord>,
) -> Result<Session, Failure> {
    #[cfg(feature = "relay-faults")]
    let job_body = test_faults::tamper(job_body);
    let parties: Vec<(u16, NodeKey)> = members(k)
        .into_iter()
        .filter(|(_, p)| s.hub.is_connected(p))
        .take(usize::from(k.threshold))
        .collect();
    if parties.len() < usize::from(k.threshold) {
        return Err(Failure::Transient(format!(
            "only {} of the {} signers needed are connected",
            parties.len(),
            k.threshold
        )));
    }
    let job = Job {
        session: SessionId::random(),
        key_id: k.id.clone(),
        task: Task::SignIntent(Box::new(job_body)),
        parties: parties.clone(),
        epoch: Some(k.epoch),
    };
    let session_id = job.session.to_string();
    let outcomes = match coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await {
        Ok(o) => o,
        Err(JobError::Refused { by, reason }) => return Err(Failure::Refused { by, reason }),
        Err(e @ JobError::Aborted { .. }) => {
            if let (Some(t), JobError::Aborted { reason, culprits }) = (abort_of, &e) {
                crate::alerts::on_abort(s, t, &session_id, reason, culprits).await;
            }
            return Err(Failure::Transient(e.to_string()));
        }
        Err(e) => return Err(Failure::Transient(e.to_string())),
    };
    let mut agreed: Option<(String, Option<u8>)> = None;
    let mut cosigs: Vec<(PublicKey, Signature)> = Vec::new();
    for (node, o) in &outcomes {
        let Outcome::Signed {
            signature,
            recovery_id,
            receipt,
            ..
        } = o
        else {
            return Err(Failure::Transient(format!(
                "{} reported {o:?}",
                name_of(&s.roster, node)
            )));
        };
        match &agreed {
            None => agreed = Some((signature.clone(), *recovery_id)),
            Some(a) if a.0 == *signature => {}
            Some(_) => {
                return Err(Failure::Transient(
                    "the signers report different signatures".into(),
                ))
            }
        }
        let sig: Signature = receipt
            .as_deref()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                Failure::Transient(format!(
                    "{} sent no receipt signature",
                    name_of(&s.roster, node)
                ))
            })?;
        cosigs.push((PublicKey(node.0), sig));
    }
    let (signature, recovery_id) = agreed.ok_or_else(|| Failure::Transient("no outcome".into()))?;
    Ok(Session {
        signature,
        recovery_id,
        cosigs,
        parties,
    })
}

/// What the signers sign for an intent, computed here too to check their signatures.
struct ToSign {
    /// The chain transaction, if the intent carries one.
    tx: Option<coffer_chains::ChainTx>,
    /// The digests, one session each.
    digests: Vec<Vec<u8>>,
    /// The key every signature verifies under (the Taproot output key for P2TR).
    verify_key: Vec<u8>,
}

/// What the signers sign for `intent` under `child`: the chain transaction's digests with
/// the key each verifies under, or the intent message.
fn digests(k: &KeyRecord, intent: &Intent, child: &[u8]) -> Result<ToSign, Failure> {
    let Some(text) = &intent.transaction else {
        return Ok(ToSign {
            tx: None,
            digests: vec![intent.message().to_vec()],
            verify_key: child.to_vec(),
        });
    };
    let bad = |e: coffer_chains::ChainError| Failure::Transient(format!("stored transaction: {e}"));
    let tx = coffer_chains::ChainTx::parse(text).map_err(bad)?;
    let digests = tx.digests(child).map_err(bad)?;
    let verify_key = match tx.sign_mode() {
        coffer_chains::SignMode::TaprootKeyPath => coffer_chains::btc::taproot_output_key(child)
            .map_err(|e| bad(e.into()))?
            .to_vec(),
        coffer_chains::SignMode::Plain => child.to_vec(),
    };
    if tx.scheme().name() != k.scheme.name() {
        return Err(Failure::Transient(
            "the transaction needs another key".into(),
        ));
    }
    Ok(ToSign {
        tx: Some(tx),
        digests,
        verify_key,
    })
}

async fn attempt(
    s: &AppState,
    t: &TxRecord,
    k: &KeyRecord,
    body: &ReceiptBody,
) -> Result<(), Failure> {
    let job_body = intent_job(s, t, body).await?;
    let intent = job_body.intent.clone();
    let path: DerivationPath = intent
        .path
        .parse()
        .map_err(|_| Failure::Transient("stored path".into()))?;
    let child = super::vaults::child_public_key(k, &path)?;
    let ToSign {
        tx: chain_tx,
        digests,
        verify_key,
    } = digests(k, &intent, &child)?;
    // One session per digest (one per Bitcoin input); each signer answers a digest it
    // signed before from its ledger, so a retry after a failure resumes where it stopped.
    let mut sessions = Vec::with_capacity(digests.len());
    for (i, digest) in digests.iter().enumerate() {
        let mut job = job_body.clone();
        job.input = u32::try_from(i).map_err(|_| Failure::Transient("too many inputs".into()))?;
        let done = session(s, k, job, Some(t)).await?;
        // An independent check of every signature against the key derived here.
        let sig_bytes =
            hex::decode(&done.signature).map_err(|_| Failure::Transient("signature hex".into()))?;
        if !coffer_proto::verify::verify(k.scheme, &verify_key, digest, &sig_bytes).unwrap_or(false)
        {
            return Err(Failure::Transient(format!(
                "the signers' signature of digest {i} does not verify under the derived key"
            )));
        }
        sessions.push(done);
    }
    let first = sessions
        .first()
        .ok_or_else(|| Failure::Transient("nothing was signed".into()))?;
    let finished = match &chain_tx {
        None => None,
        Some(tx) => {
            let parts: Vec<coffer_chains::SignaturePart> = sessions
                .iter()
                .map(|d| {
                    Ok(coffer_chains::SignaturePart {
                        bytes: hex::decode(&d.signature)
                            .map_err(|_| Failure::Transient("signature hex".into()))?,
                        recovery_id: d.recovery_id,
                    })
                })
                .collect::<Result<_, Failure>>()?;
            Some(
                tx.finalize(&child, &parts)
                    .map_err(|e| Failure::Transient(format!("finishing the transaction: {e}")))?,
            )
        }
    };
    let receipt = Receipt {
        body: body.clone(),
        signatures: first.cosigs.clone(),
    };
    let members_keys: Vec<PublicKey> = k.parties.iter().map(|p| PublicKey(p.0)).collect();
    receipt
        .verify(&members_keys, k.threshold)
        .map_err(|e| Failure::Transient(format!("receipt: {e}")))?;
    let signer_names: Vec<String> = first
        .parties
        .iter()
        .map(|(_, p)| name_of(&s.roster, p))
        .collect();
    let signatures: Vec<String> = sessions.iter().map(|d| d.signature.clone()).collect();
    let now = unix_now();
    let store = async {
        let mut tx = s.db.begin().await?;
        tx.insert_receipt(&crate::db::ReceiptRecord {
            key_id: k.id.clone(),
            seq: body.seq,
            body: serde_json::to_string(&receipt.body).unwrap_or_default(),
            signatures: serde_json::to_string(&receipt.signatures).unwrap_or_default(),
            at: body.at,
        })
        .await?;
        tx.set_signed(
            &t.id,
            &crate::db::Signed {
                signatures: &signatures,
                recovery_id: first.recovery_id,
                signers: &signer_names,
                finished: finished.as_ref(),
            },
            now,
        )
        .await?;
        let mut detail =
            json!({"seq": body.seq, "signers": signer_names, "signature": first.signature});
        if let Some(f) = &finished {
            detail["tx_id"] = json!(f.tx_id);
            detail["signatures"] = json!(signatures.len());
        }
        tx.append_audit(
            AuditEvent {
                tenant: t.tenant_id.clone(),
                actor: "server".into(),
                action: "transaction.signed".into(),
                object: t.id.clone(),
                detail,
            },
            now,
        )
        .await?;
        crate::webhooks::enqueue_transaction(&mut tx, t, "transaction.signed", "signed", None, now)
            .await?;
        tx.commit().await
    };
    store.await.map_err(|e| Failure::Transient(e.to_string()))?;
    s.metrics.transaction("signed");
    Ok(())
}

/// Fails `t`, recording a signer's refusal when there was one.
async fn fail(
    s: &AppState,
    t: &TxRecord,
    reason: &str,
    refusal: Option<(&str, &str)>,
) -> Result<(), ApiError> {
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    if let Some((by, why)) = refusal {
        s.metrics.signer_refusal();
        tx.append_audit(
            AuditEvent {
                tenant: t.tenant_id.clone(),
                actor: by.to_string(),
                action: "signer.refused".into(),
                object: t.id.clone(),
                detail: json!({"reason": why, "seq": t.seq}),
            },
            now,
        )
        .await?;
    }
    if tx
        .transition(&t.id, &["approved", "signing"], "failed", Some(reason), now)
        .await?
    {
        tx.append_audit(
            AuditEvent {
                tenant: t.tenant_id.clone(),
                actor: "server".into(),
                action: "transaction.failed".into(),
                object: t.id.clone(),
                detail: json!({"reason": reason}),
            },
            now,
        )
        .await?;
        crate::webhooks::enqueue_transaction(
            &mut tx,
            t,
            "transaction.failed",
            "failed",
            Some(reason),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    s.metrics.transaction("failed");
    Ok(())
}

/// Test-only misbehaviour of the signing path (feature `relay-faults`, which CI checks no
/// release build carries): `COFFER_TEST_CUSTODY_FAULT=skip_approval` drops the last
/// approval, `alter_amount` raises the amount after approval (and in the receipt, so that
/// only the signatures can tell). The signers must refuse both; the tests check that the
/// refusal fails the request and is recorded.
#[cfg(feature = "relay-faults")]
mod test_faults {
    use coffer_net::frames::IntentJob;
    use coffer_policy::Amount;

    pub(super) fn tamper(mut job: IntentJob) -> IntentJob {
        match std::env::var("COFFER_TEST_CUSTODY_FAULT").as_deref() {
            Ok("skip_approval") => {
                job.approvals.pop();
            }
            Ok("alter_amount") => {
                job.intent.amount = Amount(job.intent.amount.0.saturating_add(1));
                job.receipt.amount = job.intent.amount;
                job.receipt.intent_hash = job.intent.hash();
            }
            _ => {}
        }
        job
    }
}
