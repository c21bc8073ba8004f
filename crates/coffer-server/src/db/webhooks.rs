//! Webhook endpoints and the durable outbox of their deliveries (`webhook_endpoints`,
//! `webhook_outbox`, migration 0006). An event is enqueued with
//! [`DbTx::enqueue_event`] inside the transaction of the change that caused it: one outbox
//! row per matching endpoint, so the event exists exactly when the change does. The
//! delivery worker ([`crate::webhooks::worker`]) reads due rows ([`Db::due_deliveries`]),
//! claims each one with a compare-and-set lease ([`Db::claim_delivery`]) so that no two
//! workers post the same row at once, and records the outcome.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{col, ctx, uint, Db, DbError, DbTx};

/// A webhook endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// `wh-<hex>`.
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// The signing secret: 32 random bytes, hex.
    pub secret: String,
    /// The event types it receives (empty: all).
    pub events: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Removed (no new deliveries; history kept).
    pub disabled: bool,
}

impl std::fmt::Debug for EndpointRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl EndpointRecord {
    /// Whether the endpoint receives events of type `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        !self.disabled && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

/// One delivery: an event for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The event id (`ev-<hex>`) the receiver sees.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The event type (`transaction.signed`, ...).
    pub event_type: String,
    /// The event's data (JSON text).
    pub payload: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix milliseconds of the next attempt (while pending).
    pub next_attempt_ms: i64,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds of the successful attempt.
    pub delivered_at: Option<i64>,
}

/// A due delivery with what the worker needs to post it.
#[derive(Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: DeliveryRecord,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's secret (hex).
    pub secret: String,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("delivery", &self.delivery)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, secret, events, created_at, disabled";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, tenant_id, event_type, payload, created_at, \
     attempts, next_attempt_ms, state, last_error, delivered_at";

fn endpoint_from_row(row: &AnyRow) -> Result<EndpointRecord, DbError> {
    const DOING: &str = "reading a webhook endpoint";
    let events: String = col(row, "events", DOING)?;
    let disabled: i64 = col(row, "disabled", DOING)?;
    Ok(EndpointRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        url: col(row, "url", DOING)?,
        secret: col(row, "secret", DOING)?,
        events: serde_json::from_str(&events)
            .map_err(|_| DbError::bad(DOING, "events column is not a list of names"))?,
        created_at: col(row, "created_at", DOING)?,
        disabled: disabled != 0,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRecord, DbError> {
    const DOING: &str = "reading a webhook delivery";
    Ok(DeliveryRecord {
        id: col(row, "id", DOING)?,
        endpoint_id: col(row, "endpoint_id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        event_type: col(row, "event_type", DOING)?,
        payload: col(row, "payload", DOING)?,
        created_at: col(row, "created_at", DOING)?,
        attempts: uint(col(row, "attempts", DOING)?, DOING, "attempts")?,
        next_attempt_ms: col(row, "next_attempt_ms", DOING)?,
        state: col(row, "state", DOING)?,
        last_error: col(row, "last_error", DOING)?,
        delivered_at: col(row, "delivered_at", DOING)?,
    })
}

/// A fresh event id: `ev-` and 16 random bytes in hex.
pub fn new_event_id() -> String {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("ev-{}", hex::encode(b))
}

/// Unix milliseconds now.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl DbTx {
    /// Enqueues an event of `tenant`: one pending outbox row, due at once, per enabled
    /// endpoint of the tenant that wants `event_type`, written in this transaction (so it
    /// commits or rolls back with the change it reports). Returns the event ids.
    pub async fn enqueue_event(
        &mut self,
        tenant: &str,
        event_type: &str,
        payload: &serde_json::Value,
        now: i64,
    ) -> Result<Vec<String>, DbError> {
        const DOING: &str = "enqueueing a webhook event";
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND disabled = 0 ORDER BY id"
        ))
        .bind(tenant)
        .fetch_all(self.conn())
        .await
        .map_err(ctx(DOING))?;
        let endpoints = rows
            .iter()
            .map(endpoint_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let text = payload.to_string();
        let due = unix_now_ms();
        let mut ids = Vec::new();
        for e in endpoints.iter().filter(|e| e.wants(event_type)) {
            let id = new_event_id();
            sqlx::query(&format!(
                "INSERT INTO webhook_outbox ({DELIVERY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 'pending', NULL, NULL)"
            ))
            .bind(&id)
            .bind(&e.id)
            .bind(tenant)
            .bind(event_type)
            .bind(&text)
            .bind(now)
            .bind(due)
            .execute(self.conn())
            .await
            .map_err(ctx(DOING))?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Records a new endpoint.
    pub async fn insert_endpoint(&mut self, e: &EndpointRecord) -> Result<(), DbError> {
        const DOING: &str = "inserting a webhook endpoint";
        sqlx::query(&format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&e.id)
        .bind(&e.tenant_id)
        .bind(&e.url)
        .bind(&e.secret)
        .bind(serde_json::to_string(&e.events).unwrap_or_else(|_| "[]".into()))
        .bind(e.created_at)
        .bind(i64::from(e.disabled))
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        Ok(())
    }

    /// Disables a tenant's endpoint and gives up its pending deliveries (state `dead`,
    /// "endpoint removed"). Returns whether an enabled endpoint was disabled.
    pub async fn disable_endpoint(
        &mut self,
        tenant: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        const DOING: &str = "removing a webhook endpoint";
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET disabled = 1 \
             WHERE tenant_id = $1 AND id = $2 AND disabled = 0",
        )
        .bind(tenant)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_outbox SET state = 'dead', last_error = 'endpoint removed', \
             next_attempt_ms = $1 WHERE endpoint_id = $2 AND state = 'pending'",
        )
        .bind(now.saturating_mul(1000))
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        Ok(true)
    }

    /// Re-arms a tenant's dead delivery: pending, no attempts, due at `now_ms`. Returns
    /// whether it was dead (false: missing, another tenant's, or not dead).
    pub async fn rearm_delivery(
        &mut self,
        tenant: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_ms = $1 \
             WHERE tenant_id = $2 AND id = $3 AND state = 'dead'",
        )
        .bind(now_ms)
        .bind(tenant)
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(ctx("re-arming a webhook delivery"))?;
        Ok(done.rows_affected() == 1)
    }
}

impl Db {
    /// Enqueues an event in a transaction of its own (for events that change nothing else);
    /// see [`DbTx::enqueue_event`].
    pub async fn enqueue_event(
        &self,
        tenant: &str,
        event_type: &str,
        payload: &serde_json::Value,
        now: i64,
    ) -> Result<Vec<String>, DbError> {
        let mut tx = self.begin().await?;
        let ids = tx.enqueue_event(tenant, event_type, payload, now).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// A tenant's endpoint (another tenant's is `None`), disabled ones included.
    pub async fn endpoint(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<EndpointRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a webhook endpoint"))?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// A tenant's enabled endpoints, oldest first.
    pub async fn endpoints(&self, tenant: &str) -> Result<Vec<EndpointRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND disabled = 0 ORDER BY created_at, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing webhook endpoints"))?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// One of a tenant's deliveries.
    pub async fn delivery(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<DeliveryRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a webhook delivery"))?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// An endpoint's deliveries, newest first, at most `limit`.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE endpoint_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing webhook deliveries"))?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Pending deliveries due at `now_ms` to enabled endpoints, the most overdue first, at
    /// most `limit`.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, DbError> {
        const DOING: &str = "listing due webhook deliveries";
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("o.{c} AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns}, e.url AS url, e.secret AS secret \
             FROM webhook_outbox o JOIN webhook_endpoints e ON e.id = o.endpoint_id \
             WHERE o.state = 'pending' AND o.next_attempt_ms <= $1 AND e.disabled = 0 \
             ORDER BY o.next_attempt_ms, o.id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    delivery: delivery_from_row(row)?,
                    url: col(row, "url", DOING)?,
                    secret: col(row, "secret", DOING)?,
                })
            })
            .collect()
    }

    /// Claims a due delivery for one attempt: moves its next attempt to `lease_until_ms`
    /// if it is still pending and due when it was read (`seen_next_ms`). Returns whether
    /// this caller won it; a crash during the attempt leaves it due again after the lease.
    pub async fn claim_delivery(
        &self,
        id: &str,
        seen_next_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_ms = $1 \
             WHERE id = $2 AND state = 'pending' AND next_attempt_ms = $3",
        )
        .bind(lease_until_ms)
        .bind(id)
        .bind(seen_next_ms)
        .execute(&self.pool)
        .await
        .map_err(ctx("claiming a webhook delivery"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a successful attempt (state `delivered`).
    pub async fn mark_delivered(&self, id: &str, now: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, \
             delivered_at = $1 WHERE id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(ctx("recording a webhook delivery"))?;
        Ok(())
    }

    /// Records a failed attempt: one more attempt, `error`, and either the next attempt at
    /// `next_ms` or, when `dead`, the dead-letter state.
    pub async fn mark_failed(
        &self,
        id: &str,
        error: &str,
        next_ms: i64,
        dead: bool,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $1, \
             next_attempt_ms = $2, state = $3 WHERE id = $4 AND state = 'pending'",
        )
        .bind(error)
        .bind(next_ms)
        .bind(if dead { "dead" } else { "pending" })
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(ctx("recording a failed webhook delivery"))?;
        Ok(())
    }
}
