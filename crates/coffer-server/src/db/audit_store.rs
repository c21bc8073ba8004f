//! Storage of the audit log's hash chains (one per tenant, see [`crate::audit`]). An entry
//! is appended inside the transaction of the change it records: the tenant's head is read
//! and the next entry inserted under the transaction's write lock, so entries of one
//! process never race; across processes the `(tenant_id, seq)` primary key makes the
//! later of two conflicting transactions fail.
//!
//! Next to the chains: their checkpoints (`audit_checkpoints`), each a head co-signed by
//! signer nodes, with the signatures as JSON.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use coffer_policy::PublicKey;

use super::{big, col, ctx, uint, Db, DbError, DbTx};
use crate::audit::{AuditEntry, AuditEvent, Checkpoint, CheckpointSignature};

const COLUMNS: &str = "tenant_id, seq, at, actor, action, object, detail, prev, hash";

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, DbError> {
    const DOING: &str = "reading an audit entry";
    let detail: String = col(row, "detail", DOING)?;
    Ok(AuditEntry {
        tenant: col(row, "tenant_id", DOING)?,
        seq: uint(col(row, "seq", DOING)?, DOING, "seq")?,
        at: col(row, "at", DOING)?,
        actor: col(row, "actor", DOING)?,
        action: col(row, "action", DOING)?,
        object: col(row, "object", DOING)?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| DbError::bad(DOING, "detail column is not JSON"))?,
        prev: col(row, "prev", DOING)?,
        hash: col(row, "hash", DOING)?,
    })
}

async fn append(
    conn: &mut AnyConnection,
    event: AuditEvent,
    at: i64,
) -> Result<AuditEntry, DbError> {
    const DOING: &str = "appending an audit entry";
    let head = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1"
    ))
    .bind(&event.tenant)
    .fetch_optional(&mut *conn)
    .await
    .map_err(ctx(DOING))?;
    let head = head.as_ref().map(entry_from_row).transpose()?;
    let entry = AuditEntry::next(head.as_ref(), event, at);
    sqlx::query(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&entry.tenant)
    .bind(big(entry.seq, DOING, "seq")?)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.object)
    .bind(entry.detail.to_string())
    .bind(&entry.prev)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await
    .map_err(ctx(DOING))?;
    Ok(entry)
}

const CHECKPOINT_COLUMNS: &str = "tenant_id, entries, head, signatures";

fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint, DbError> {
    const DOING: &str = "reading an audit checkpoint";
    let signatures: String = col(row, "signatures", DOING)?;
    Ok(Checkpoint {
        tenant: col(row, "tenant_id", DOING)?,
        entries: uint(col(row, "entries", DOING)?, DOING, "entries")?,
        head: col(row, "head", DOING)?,
        signatures: serde_json::from_str(&signatures)
            .map_err(|_| DbError::bad(DOING, "signatures column is not a signature list"))?,
    })
}

impl DbTx {
    /// Records a checkpoint. A checkpoint of the same chain at the same point gains the
    /// signatures of signers it did not have (its head must be the same).
    pub async fn insert_checkpoint(&mut self, c: &Checkpoint, at: i64) -> Result<(), DbError> {
        const DOING: &str = "recording an audit checkpoint";
        let entries = big(c.entries, DOING, "entries")?;
        let existing = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints \
             WHERE tenant_id = $1 AND entries = $2"
        ))
        .bind(&c.tenant)
        .bind(entries)
        .fetch_optional(self.conn())
        .await
        .map_err(ctx(DOING))?;
        let to_json = |s: &[CheckpointSignature]| {
            serde_json::to_string(s).map_err(|_| DbError::bad(DOING, "signatures do not encode"))
        };
        match existing.as_ref().map(checkpoint_from_row).transpose()? {
            Some(old) => {
                if old.head != c.head {
                    return Err(DbError::other(
                        DOING,
                        format!(
                            "a checkpoint of {} at {} entries with another head exists",
                            c.tenant, c.entries
                        ),
                    ));
                }
                let mut merged = old.signatures;
                for sig in &c.signatures {
                    if !merged.iter().any(|m| m.signer == sig.signer) {
                        merged.push(sig.clone());
                    }
                }
                sqlx::query(
                    "UPDATE audit_checkpoints SET signatures = $1 \
                     WHERE tenant_id = $2 AND entries = $3",
                )
                .bind(to_json(&merged)?)
                .bind(&c.tenant)
                .bind(entries)
                .execute(self.conn())
                .await
                .map_err(ctx(DOING))?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (tenant_id, entries, head, signatures, at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&c.tenant)
                .bind(entries)
                .bind(&c.head)
                .bind(to_json(&c.signatures)?)
                .bind(at)
                .execute(self.conn())
                .await
                .map_err(ctx(DOING))?;
            }
        }
        Ok(())
    }

    /// Appends an entry to the event's tenant chain, inside the transaction (it is written
    /// only if the transaction commits).
    pub async fn append_audit(
        &mut self,
        event: AuditEvent,
        at: i64,
    ) -> Result<AuditEntry, DbError> {
        append(self.conn(), event, at).await
    }
}

impl Db {
    /// Appends an entry in a transaction of its own (for events that change nothing else,
    /// such as a refused authentication).
    pub async fn append_audit(&self, event: AuditEvent, at: i64) -> Result<AuditEntry, DbError> {
        let mut tx = self.begin().await?;
        let entry = tx.append_audit(event, at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// A tenant's entries after position `after_seq` (from the start when `None`),
    /// ascending, at most `limit`.
    pub async fn audit(
        &self,
        tenant_id: &str,
        after_seq: Option<u64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, DbError> {
        const DOING: &str = "listing audit entries";
        let after = match after_seq {
            Some(s) => big(s, DOING, "seq")?,
            None => -1,
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// A tenant's whole chain, ascending.
    pub async fn audit_all(&self, tenant_id: &str) -> Result<Vec<AuditEntry>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 ORDER BY seq"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("exporting audit entries"))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Every tenant id that has a chain (including the platform's), sorted.
    pub async fn audit_tenants(&self) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT tenant_id FROM audit_log ORDER BY tenant_id")
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("listing audit chains"))?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// A tenant's entries from position `from_seq` on, ascending (at most `limit`).
    pub async fn audit_from(
        &self,
        tenant_id: &str,
        from_seq: u64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, DbError> {
        const DOING: &str = "reading audit entries";
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 AND seq >= $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(big(from_seq, DOING, "seq")?)
        .bind(big(limit, DOING, "limit")?)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        rows.iter().map(entry_from_row).collect()
    }

    /// A tenant's last entry (its head), if the chain has any.
    pub async fn audit_head(&self, tenant_id: &str) -> Result<Option<AuditEntry>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading an audit chain's head"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// A tenant's checkpoints, ascending by the entries they cover.
    pub async fn checkpoints(&self, tenant_id: &str) -> Result<Vec<Checkpoint>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 \
             ORDER BY entries"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing audit checkpoints"))?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// A tenant's latest checkpoint (covering the most entries).
    pub async fn last_checkpoint(&self, tenant_id: &str) -> Result<Option<Checkpoint>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tenant_id = $1 \
             ORDER BY entries DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading the last audit checkpoint"))?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// The most entries of `tenant_id`'s chain that `signer` co-signed (from the stored
    /// checkpoints' signatures), if it co-signed any.
    pub async fn last_cosigned(
        &self,
        tenant_id: &str,
        signer: &PublicKey,
    ) -> Result<Option<u64>, DbError> {
        const DOING: &str = "finding a signer's last audit checkpoint";
        // A cheap filter on the JSON text, then an exact check of the decoded signatures.
        let pattern = format!("%{signer}%");
        let rows = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints \
             WHERE tenant_id = $1 AND signatures LIKE $2 ORDER BY entries DESC LIMIT 8"
        ))
        .bind(tenant_id)
        .bind(&pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        for row in &rows {
            let c = checkpoint_from_row(row)?;
            if c.signatures.iter().any(|s| s.signer == *signer) {
                return Ok(Some(c.entries));
            }
        }
        if rows.len() < 8 {
            return Ok(None);
        }
        // Only a key appearing inside other signers' signature text gets here.
        Ok(self
            .checkpoints(tenant_id)
            .await?
            .iter()
            .rev()
            .find(|c| c.signatures.iter().any(|s| s.signer == *signer))
            .map(|c| c.entries))
    }
}
