//! Storage of alerts (table `alerts`) and of the tenants' settings the detectors read
//! (table `tenant_settings`: working hours). An alert is inserted in the same transaction as
//! its audit entry (see [`crate::alerts::raise`]); acknowledging is a compare-and-set on
//! `acked_at IS NULL`, so two acknowledgements cannot both succeed.

use sqlx::any::AnyRow;

use super::{col, ctx, Db, DbError, DbTx};

/// A column of `tenant_settings` (fixed names: never built from input).
#[derive(Clone, Copy, Debug)]
enum TenantSetting {
    WorkingHours,
    AlertResponses,
}

impl TenantSetting {
    /// The column and what a failure was doing.
    fn column(self) -> (&'static str, &'static str) {
        match self {
            TenantSetting::WorkingHours => ("working_hours", "setting working hours"),
            TenantSetting::AlertResponses => ("alert_responses", "setting alert responses"),
        }
    }
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    /// `al-<hex>`.
    pub id: String,
    /// Tenant id, or the platform chain's id.
    pub tenant_id: String,
    /// The vault concerned.
    pub vault_id: Option<String>,
    /// The wallet concerned.
    pub wallet_id: Option<String>,
    /// The kind's name.
    pub kind: String,
    /// The severity's name.
    pub severity: String,
    /// The severity's rank (0 low to 3 critical), for filtering.
    pub severity_rank: i64,
    /// One human sentence.
    pub explanation: String,
    /// JSON.
    pub evidence: String,
    /// JSON of the subject.
    pub subject: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Acknowledging credential.
    pub acked_by: Option<String>,
    /// When acknowledged.
    pub acked_at: Option<i64>,
    /// Why.
    pub ack_reason: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, vault_id, wallet_id, kind, severity, severity_rank, \
    explanation, evidence, subject, created_at, acked_by, acked_at, ack_reason";

fn from_row(row: &AnyRow) -> Result<AlertRecord, DbError> {
    const DOING: &str = "reading an alert";
    Ok(AlertRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        vault_id: col(row, "vault_id", DOING)?,
        wallet_id: col(row, "wallet_id", DOING)?,
        kind: col(row, "kind", DOING)?,
        severity: col(row, "severity", DOING)?,
        severity_rank: col(row, "severity_rank", DOING)?,
        explanation: col(row, "explanation", DOING)?,
        evidence: col(row, "evidence", DOING)?,
        subject: col(row, "subject", DOING)?,
        created_at: col(row, "created_at", DOING)?,
        acked_by: col(row, "acked_by", DOING)?,
        acked_at: col(row, "acked_at", DOING)?,
        ack_reason: col(row, "ack_reason", DOING)?,
    })
}

/// Filters of an alert listing.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    /// Only alerts of at least this severity rank.
    pub min_rank: Option<i64>,
    /// Only acknowledged (`Some(true)`) or unacknowledged (`Some(false)`) alerts.
    pub acked: Option<bool>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A past payment request of a wallet, as the detectors need it.
#[derive(Clone, Debug)]
pub struct PastRequest {
    /// The stored intent (JSON).
    pub intent: String,
    /// When it was created.
    pub created_at: i64,
}

impl DbTx {
    /// Inserts an alert.
    pub async fn insert_alert(&mut self, a: &AlertRecord) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO alerts ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.vault_id)
        .bind(&a.wallet_id)
        .bind(&a.kind)
        .bind(&a.severity)
        .bind(a.severity_rank)
        .bind(&a.explanation)
        .bind(&a.evidence)
        .bind(&a.subject)
        .bind(a.created_at)
        .bind(&a.acked_by)
        .bind(a.acked_at)
        .bind(&a.ack_reason)
        .execute(self.conn())
        .await
        .map_err(ctx("recording an alert"))?;
        Ok(())
    }

    /// Acknowledges an unacknowledged alert; `false` when it was acknowledged already (or
    /// is not the tenant's).
    pub async fn ack_alert(
        &mut self,
        tenant_id: &str,
        id: &str,
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE alerts SET acked_by = $1, acked_at = $2, ack_reason = $3 \
             WHERE id = $4 AND tenant_id = $5 AND acked_at IS NULL",
        )
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(id)
        .bind(tenant_id)
        .execute(self.conn())
        .await
        .map_err(ctx("acknowledging an alert"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets (or clears, with `None`) a tenant's automatic alert responses (JSON).
    pub async fn set_alert_responses(
        &mut self,
        tenant_id: &str,
        responses: Option<&str>,
        at: i64,
    ) -> Result<(), DbError> {
        self.set_setting(TenantSetting::AlertResponses, tenant_id, responses, at)
            .await
    }

    /// Sets (or clears, with `None`) a tenant's working hours.
    pub async fn set_working_hours(
        &mut self,
        tenant_id: &str,
        hours: Option<&str>,
        at: i64,
    ) -> Result<(), DbError> {
        self.set_setting(TenantSetting::WorkingHours, tenant_id, hours, at)
            .await
    }

    /// Sets one column of the tenant's settings row, creating the row if needed.
    async fn set_setting(
        &mut self,
        setting: TenantSetting,
        tenant_id: &str,
        value: Option<&str>,
        at: i64,
    ) -> Result<(), DbError> {
        let (column, doing) = setting.column();
        let updated = sqlx::query(&format!(
            "UPDATE tenant_settings SET {column} = $1, updated_at = $2 WHERE tenant_id = $3"
        ))
        .bind(value)
        .bind(at)
        .bind(tenant_id)
        .execute(self.conn())
        .await
        .map_err(ctx(doing))?;
        if updated.rows_affected() == 0 {
            sqlx::query(&format!(
                "INSERT INTO tenant_settings (tenant_id, {column}, updated_at) VALUES ($1, $2, $3)"
            ))
            .bind(tenant_id)
            .bind(value)
            .bind(at)
            .execute(self.conn())
            .await
            .map_err(ctx(doing))?;
        }
        Ok(())
    }
}

impl Db {
    /// A tenant's alert.
    pub async fn alert(&self, tenant_id: &str, id: &str) -> Result<Option<AlertRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading an alert"))?;
        row.as_ref().map(from_row).transpose()
    }

    /// A tenant's alerts, newest first.
    pub async fn alerts(
        &self,
        tenant_id: &str,
        f: &AlertFilter,
    ) -> Result<Vec<AlertRecord>, DbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant_id = $1");
        if f.min_rank.is_some() {
            sql.push_str(" AND severity_rank >= $3");
        }
        match f.acked {
            Some(true) => sql.push_str(" AND acked_at IS NOT NULL"),
            Some(false) => sql.push_str(" AND acked_at IS NULL"),
            None => {}
        }
        sql.push_str(" ORDER BY created_at DESC, id LIMIT $2");
        let mut q = sqlx::query(&sql).bind(tenant_id).bind(f.limit);
        if let Some(r) = f.min_rank {
            q = q.bind(r);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing alerts"))?;
        rows.iter().map(from_row).collect()
    }

    /// The alerts on `vault_id` that may stand over a request made at `since`: those not yet
    /// acknowledged, and those raised at or after `since` (among them the alerts the request
    /// itself raised, which keep weighing on it once acknowledged), oldest first.
    pub async fn alerts_over_request(
        &self,
        tenant_id: &str,
        vault_id: &str,
        since: i64,
    ) -> Result<Vec<AlertRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE tenant_id = $1 AND vault_id = $2 \
             AND (acked_at IS NULL OR created_at >= $3) ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .bind(vault_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the alerts over a request"))?;
        rows.iter().map(from_row).collect()
    }

    /// A tenant's working hours (text form), if set.
    pub async fn working_hours(&self, tenant_id: &str) -> Result<Option<String>, DbError> {
        self.setting(TenantSetting::WorkingHours, tenant_id).await
    }

    /// A tenant's automatic alert responses (JSON), if an admin set them.
    pub async fn alert_responses(&self, tenant_id: &str) -> Result<Option<String>, DbError> {
        self.setting(TenantSetting::AlertResponses, tenant_id).await
    }

    /// One column of the tenant's settings row (`None` when unset).
    async fn setting(
        &self,
        setting: TenantSetting,
        tenant_id: &str,
    ) -> Result<Option<String>, DbError> {
        let (column, _) = setting.column();
        let row: Option<(Option<String>,)> = sqlx::query_as(&format!(
            "SELECT {column} FROM tenant_settings WHERE tenant_id = $1"
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a tenant setting"))?;
        Ok(row.and_then(|(v,)| v))
    }

    /// A wallet's earlier requests (not rejected, not `except`), newest first, at most
    /// `limit`.
    pub async fn wallet_history(
        &self,
        wallet_id: &str,
        except: &str,
        limit: i64,
    ) -> Result<Vec<PastRequest>, DbError> {
        const DOING: &str = "reading a wallet's history";
        let rows = sqlx::query(
            "SELECT intent, created_at FROM transactions WHERE wallet_id = $1 AND id <> $2 \
             AND state <> 'rejected' ORDER BY created_at DESC LIMIT $3",
        )
        .bind(wallet_id)
        .bind(except)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        rows.iter()
            .map(|r| {
                Ok(PastRequest {
                    intent: col(r, "intent", DOING)?,
                    created_at: col(r, "created_at", DOING)?,
                })
            })
            .collect()
    }
}
