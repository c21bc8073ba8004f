//! Vault freeze state: per vault the frozen flag, the sequence number of its latest freeze
//! or unfreeze order, the reason, and the signed order itself (JSON), which is what the
//! signers honour and what the server sends again to a signer that reconnects.

use sqlx::Row;

use super::{big, col, ctx, uint, Db, DbError, DbTx};

/// A vault's freeze state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FreezeRecord {
    /// Whether the vault is frozen now.
    pub frozen: bool,
    /// The latest order's sequence number (0: never frozen).
    pub seq: u64,
    /// The latest order's reason.
    pub reason: Option<String>,
    /// The latest signed order (JSON).
    pub order: Option<String>,
}

const DOING: &str = "reading a vault's freeze state";

fn from_row(row: &sqlx::any::AnyRow) -> Result<FreezeRecord, DbError> {
    let frozen: i64 = col(row, "frozen", DOING)?;
    let seq: i64 = col(row, "freeze_seq", DOING)?;
    Ok(FreezeRecord {
        frozen: frozen != 0,
        seq: uint(seq, DOING, "freeze sequence")?,
        reason: col(row, "freeze_reason", DOING)?,
        order: col(row, "freeze_order", DOING)?,
    })
}

impl Db {
    /// The freeze state of vault `id` (`None`: no such vault).
    pub async fn freeze_state(&self, id: &str) -> Result<Option<FreezeRecord>, DbError> {
        let row = sqlx::query(
            "SELECT frozen, freeze_seq, freeze_reason, freeze_order FROM vaults WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        row.as_ref().map(from_row).transpose()
    }

    /// The latest signed order of every vault that ever had one (JSON), for re-sending.
    pub async fn freeze_orders(&self) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT freeze_order FROM vaults WHERE freeze_order IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing freeze orders"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("freeze_order").map_err(ctx(DOING)))
            .collect()
    }

    /// The tenant owning vault `id`, whoever asks (platform operators act across tenants).
    pub async fn vault_tenant(&self, id: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT tenant_id FROM vaults WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("finding a vault's tenant"))?;
        Ok(row.map(|(t,)| t))
    }
}

impl DbTx {
    /// The freeze state of vault `id` inside this transaction.
    pub async fn freeze_state(&mut self, id: &str) -> Result<Option<FreezeRecord>, DbError> {
        let row = sqlx::query(
            "SELECT frozen, freeze_seq, freeze_reason, freeze_order FROM vaults WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(ctx(DOING))?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a new order for vault `id`, only if the stored sequence is still `prev_seq`.
    /// Returns whether it was recorded.
    pub async fn set_freeze(
        &mut self,
        id: &str,
        prev_seq: u64,
        state: &FreezeRecord,
    ) -> Result<bool, DbError> {
        let seq = big(state.seq, "recording a freeze", "freeze sequence")?;
        let prev = big(prev_seq, "recording a freeze", "freeze sequence")?;
        let done = sqlx::query(
            "UPDATE vaults SET frozen = $1, freeze_seq = $2, freeze_reason = $3, freeze_order = $4 \
             WHERE id = $5 AND freeze_seq = $6",
        )
        .bind(i64::from(state.frozen))
        .bind(seq)
        .bind(state.reason.clone())
        .bind(state.order.clone())
        .bind(id)
        .bind(prev)
        .execute(self.conn())
        .await
        .map_err(ctx("recording a freeze"))?;
        Ok(done.rows_affected() == 1)
    }
}
