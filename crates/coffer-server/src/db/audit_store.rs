//! Storage of the audit log's hash chains (one per tenant, see [`crate::audit`]). An entry
//! is appended inside the transaction of the change it records: the tenant's head is read
//! and the next entry inserted under the transaction's write lock, so entries of one
//! process never race; across processes the `(tenant_id, seq)` primary key makes the
//! later of two conflicting transactions fail.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::{big, col, ctx, uint, Db, DbError, DbTx};
use crate::audit::{AuditEntry, AuditEvent};

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

impl DbTx {
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
}
