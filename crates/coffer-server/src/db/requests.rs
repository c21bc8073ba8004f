//! Transaction requests (a signed intent moving through `pending_approval`, `approved`,
//! `signing`, `signed`, `rejected`, `failed`, `expired`) and the approvers' decisions on
//! them. State changes are compare-and-set ([`DbTx::transition`]), so two actors racing on
//! one request cannot both move it.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{big, col, ctx, placeholders, uint, Db, DbError, DbTx};

/// A transaction request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Request id.
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The vault.
    pub vault_id: String,
    /// The wallet it spends from.
    pub wallet_id: String,
    /// The key that signs it.
    pub key_id: String,
    /// The intent (canonical JSON).
    pub intent: String,
    /// The intent's hash (hex): what approvers and signers sign over.
    pub intent_hash: String,
    /// The initiator's credential key (hex).
    pub initiator: String,
    /// The initiator's signature over the intent (hex).
    pub initiator_signature: String,
    /// Current state.
    pub state: String,
    /// The policy rule that matched, if any.
    pub rule: Option<String>,
    /// Why it was rejected, failed or expired.
    pub reason: Option<String>,
    /// The policy version it was evaluated under.
    pub policy_version: i64,
    /// Its position in the key's ledger, once signing started.
    pub seq: Option<u64>,
    /// The ledger receipt body proposed for it (JSON), once signing started: a retry
    /// re-sends the very same one.
    pub receipt_body: Option<String>,
    /// The signature (hex), once signed.
    pub signature: Option<String>,
    /// ECDSA recovery id, when the scheme has one.
    pub recovery_id: Option<u8>,
    /// The signers that signed (a JSON array of names), once signed.
    pub signers: Option<String>,
    /// Every signature (JSON array of hex, one per digest of a chain transaction), once signed.
    pub signatures: Option<String>,
    /// The finished chain transaction in its chain's encoding, once signed.
    pub signed_tx: Option<String>,
    /// Its id on chain (txid, transaction hash, first signature), once signed.
    pub chain_tx_id: Option<String>,
    /// Signing attempts so far.
    pub attempts: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Unix seconds after which an unsigned request expires.
    pub expires_at: i64,
}

/// An approver's decision on a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The request.
    pub tx_id: String,
    /// The approver's credential key (hex).
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Unix seconds until which the signed decision is valid.
    pub expires_at: i64,
    /// The approver's signature over the decision (hex).
    pub signature: String,
    /// The approver's reason, if given.
    pub reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

const TX_COLUMNS: &str = "id, tenant_id, vault_id, wallet_id, key_id, intent, intent_hash, \
     initiator, initiator_signature, state, rule, reason, policy_version, seq, receipt_body, \
     signature, recovery_id, signers, signatures, signed_tx, chain_tx_id, attempts, \
     created_at, updated_at, expires_at";

fn tx_from_row(row: &AnyRow) -> Result<TxRecord, DbError> {
    const DOING: &str = "reading a transaction";
    let seq: Option<i64> = col(row, "seq", DOING)?;
    let recovery_id: Option<i64> = col(row, "recovery_id", DOING)?;
    Ok(TxRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        vault_id: col(row, "vault_id", DOING)?,
        wallet_id: col(row, "wallet_id", DOING)?,
        key_id: col(row, "key_id", DOING)?,
        intent: col(row, "intent", DOING)?,
        intent_hash: col(row, "intent_hash", DOING)?,
        initiator: col(row, "initiator", DOING)?,
        initiator_signature: col(row, "initiator_signature", DOING)?,
        state: col(row, "state", DOING)?,
        rule: col(row, "rule", DOING)?,
        reason: col(row, "reason", DOING)?,
        policy_version: col(row, "policy_version", DOING)?,
        seq: seq.map(|s| uint(s, DOING, "seq")).transpose()?,
        receipt_body: col(row, "receipt_body", DOING)?,
        signature: col(row, "signature", DOING)?,
        recovery_id: recovery_id
            .map(|r| uint(r, DOING, "recovery id"))
            .transpose()?,
        signers: col(row, "signers", DOING)?,
        signatures: col(row, "signatures", DOING)?,
        signed_tx: col(row, "signed_tx", DOING)?,
        chain_tx_id: col(row, "chain_tx_id", DOING)?,
        attempts: uint(col(row, "attempts", DOING)?, DOING, "attempts")?,
        created_at: col(row, "created_at", DOING)?,
        updated_at: col(row, "updated_at", DOING)?,
        expires_at: col(row, "expires_at", DOING)?,
    })
}

fn approval_from_row(row: &AnyRow) -> Result<ApprovalRecord, DbError> {
    const DOING: &str = "reading an approval";
    Ok(ApprovalRecord {
        tx_id: col(row, "tx_id", DOING)?,
        approver: col(row, "approver", DOING)?,
        decision: col(row, "decision", DOING)?,
        expires_at: col(row, "expires_at", DOING)?,
        signature: col(row, "signature", DOING)?,
        reason: col(row, "reason", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

/// What a finished signing stores with a request.
pub struct Signed<'a> {
    /// Every signature (hex), one per digest; the first is also the `signature` column.
    pub signatures: &'a [String],
    /// The first signature's ECDSA recovery id.
    pub recovery_id: Option<u8>,
    /// The signers' names.
    pub signers: &'a [String],
    /// The finished chain transaction, when the intent carried one.
    pub finished: Option<&'a coffer_chains::Finished>,
}

impl DbTx {
    /// Records a request (an id taken already is a conflict).
    pub async fn insert_tx(&mut self, t: &TxRecord) -> Result<(), DbError> {
        const DOING: &str = "inserting a transaction";
        sqlx::query(&format!(
            "INSERT INTO transactions ({TX_COLUMNS}) VALUES ({})",
            placeholders(1, 25)
        ))
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.vault_id)
        .bind(&t.wallet_id)
        .bind(&t.key_id)
        .bind(&t.intent)
        .bind(&t.intent_hash)
        .bind(&t.initiator)
        .bind(&t.initiator_signature)
        .bind(&t.state)
        .bind(t.rule.clone())
        .bind(t.reason.clone())
        .bind(t.policy_version)
        .bind(t.seq.map(|s| big(s, DOING, "seq")).transpose()?)
        .bind(t.receipt_body.clone())
        .bind(t.signature.clone())
        .bind(t.recovery_id.map(i64::from))
        .bind(t.signers.clone())
        .bind(t.signatures.clone())
        .bind(t.signed_tx.clone())
        .bind(t.chain_tx_id.clone())
        .bind(i64::from(t.attempts))
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.expires_at)
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        Ok(())
    }

    /// Moves a request to state `to` if it is in one of the states `from` (compare and
    /// set); `reason`, when given, replaces the recorded reason. Returns whether it moved
    /// (false: no such request, or it was in another state).
    pub async fn transition(
        &mut self,
        id: &str,
        from: &[&str],
        to: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, DbError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE transactions SET state = $1, reason = COALESCE($2, reason), updated_at = $3 \
             WHERE id = $4 AND state IN ({})",
            placeholders(5, from.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(to)
            .bind(reason.map(str::to_string))
            .bind(now)
            .bind(id);
        for state in from {
            q = q.bind(*state);
        }
        let done = q
            .execute(self.conn())
            .await
            .map_err(ctx("changing a transaction's state"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a request as being signed at ledger position `seq` with the proposed receipt
    /// body (state `signing`, one more attempt).
    pub async fn set_signing(
        &mut self,
        id: &str,
        seq: u64,
        receipt_body: &str,
        now: i64,
    ) -> Result<(), DbError> {
        const DOING: &str = "marking a transaction as signing";
        sqlx::query(
            "UPDATE transactions SET state = 'signing', seq = $1, receipt_body = $2, \
             attempts = attempts + 1, updated_at = $3 WHERE id = $4",
        )
        .bind(big(seq, DOING, "seq")?)
        .bind(receipt_body)
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        Ok(())
    }

    /// Counts one more signing attempt of a request (its state is unchanged).
    pub async fn note_attempt(&mut self, id: &str, now: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE transactions SET attempts = attempts + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx("counting a signing attempt"))?;
        Ok(())
    }

    /// Records a request's signature (state `signed`).
    pub async fn set_signed(
        &mut self,
        id: &str,
        signed: &Signed<'_>,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE transactions SET state = 'signed', signature = $1, recovery_id = $2, \
             signers = $3, signatures = $4, signed_tx = $5, chain_tx_id = $6, updated_at = $7 \
             WHERE id = $8",
        )
        .bind(
            signed
                .signatures
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        )
        .bind(signed.recovery_id.map(i64::from))
        .bind(serde_json::to_string(signed.signers).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(signed.signatures).unwrap_or_else(|_| "[]".into()))
        .bind(signed.finished.map(|f| f.signed_tx.as_str()))
        .bind(signed.finished.map(|f| f.tx_id.as_str()))
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx("recording a transaction's signature"))?;
        Ok(())
    }

    /// Records which policy rule matched a request (if any) and the policy version.
    pub async fn set_policy_outcome(
        &mut self,
        id: &str,
        rule: Option<&str>,
        policy_version: i64,
    ) -> Result<(), DbError> {
        const DOING: &str = "recording a policy outcome";
        sqlx::query("UPDATE transactions SET rule = $1, policy_version = $2 WHERE id = $3")
            .bind(rule.map(str::to_string))
            .bind(policy_version)
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(ctx(DOING))?;
        Ok(())
    }

    /// Records an approver's decision (a second decision by the same approver is a
    /// conflict).
    pub async fn insert_approval(&mut self, a: &ApprovalRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO approvals (tx_id, approver, decision, expires_at, signature, reason, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.tx_id)
        .bind(&a.approver)
        .bind(&a.decision)
        .bind(a.expires_at)
        .bind(&a.signature)
        .bind(a.reason.clone())
        .bind(a.created_at)
        .execute(self.conn())
        .await
        .map_err(ctx("inserting an approval"))?;
        Ok(())
    }
}

impl Db {
    /// One of a tenant's requests (another tenant's is `None`).
    pub async fn tx(&self, tenant_id: &str, id: &str) -> Result<Option<TxRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a transaction"))?;
        row.as_ref().map(tx_from_row).transpose()
    }

    /// A tenant's requests, newest first, optionally only those in `state`; at most
    /// `limit`.
    pub async fn txs(
        &self,
        tenant_id: &str,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TxRecord>, DbError> {
        let rows = match state {
            Some(state) => {
                sqlx::query(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions WHERE tenant_id = $1 AND state = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ))
                .bind(tenant_id)
                .bind(state)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions WHERE tenant_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(tenant_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(ctx("listing transactions"))?;
        rows.iter().map(tx_from_row).collect()
    }

    /// Every tenant's requests in one of `states`, oldest first (to resume work after a
    /// restart).
    pub async fn txs_in_states(&self, states: &[&str]) -> Result<Vec<TxRecord>, DbError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE state IN ({}) ORDER BY created_at, id",
            placeholders(1, states.len())
        );
        let mut q = sqlx::query(&sql);
        for state in states {
            q = q.bind(*state);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing transactions by state"))?;
        rows.iter().map(tx_from_row).collect()
    }

    /// Requests still waiting (`pending_approval` or `approved`) whose deadline has come
    /// (`expires_at <= now`), oldest first.
    pub async fn expirable(&self, now: i64) -> Result<Vec<TxRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {TX_COLUMNS} FROM transactions \
             WHERE state IN ('pending_approval', 'approved') AND expires_at <= $1 \
             ORDER BY expires_at, id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing expired transactions"))?;
        rows.iter().map(tx_from_row).collect()
    }

    /// How many of a tenant's requests are in each state (states with none are absent),
    /// by state name.
    pub async fn tx_counts(&self, tenant_id: &str) -> Result<Vec<(String, i64)>, DbError> {
        sqlx::query_as(
            "SELECT state, COUNT(*) AS n FROM transactions WHERE tenant_id = $1 \
             GROUP BY state ORDER BY state",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("counting transactions"))
    }

    /// The decisions on a request, oldest first.
    pub async fn approvals(&self, tx_id: &str) -> Result<Vec<ApprovalRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT tx_id, approver, decision, expires_at, signature, reason, created_at \
             FROM approvals WHERE tx_id = $1 ORDER BY created_at, approver",
        )
        .bind(tx_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing approvals"))?;
        rows.iter().map(approval_from_row).collect()
    }
}
