//! Webhooks: a tenant's endpoints receive its events as signed HTTP POSTs, through a
//! durable outbox.
//!
//! - **Events.** An event is enqueued with [`DbTx::enqueue_event`] in the database
//!   transaction of the change it reports (or with [`enqueue`] for events that change
//!   nothing else): one outbox row per endpoint that wants its type, so an event exists
//!   exactly when its change committed, and survives a crash or restart until delivered.
//!   Today's events are the transaction requests' state changes ([`TRANSACTION_EVENTS`],
//!   data from [`transaction_data`]); `alert.raised` is reserved for alerts.
//! - **Delivery** ([`worker`]): a task started with the server polls due rows and POSTs
//!   each on the blocking pool with a per-request timeout. A 2xx marks it `delivered`;
//!   anything else (status, refused connection, timeout) counts an attempt and schedules
//!   the next one after [`WebhookConfig::backoff`] (exponential, capped) until
//!   `max_attempts`, after which the row is `dead` (dead-letter) until an admin re-arms it.
//!   The API only ever writes rows: a slow or hanging receiver never slows a request.
//! - **Signatures** ([`signature`]): `Coffer-Signature: t=<unix>,v1=<hex HMAC-SHA256>`
//!   over `"<t>.<event id>.<body>"`, with `Coffer-Event-Id` and `Coffer-Timestamp`; the
//!   module's `verify` is for receivers (stale timestamps and replayed event ids refused).
//! - **Routes** ([`routes`]): endpoints created (the secret shown once) and removed by
//!   admins, listed with their deliveries, dead deliveries re-armed.
//!
//! Delivery is at least once: a receiver that acknowledged an event whose acknowledgement
//! was lost receives it again with the same event id (its replay guard tells).

pub mod routes;
pub mod signature;
pub mod worker;

use std::time::Duration;

use serde_json::{json, Value};

use crate::db::{Db, DbError, DbTx, DeliveryRecord, TxRecord};

/// The transaction request events: `transaction.<state>` for each state a request enters
/// (`created` when it is recorded).
pub const TRANSACTION_EVENTS: &[&str] = &[
    "transaction.created",
    "transaction.approved",
    "transaction.rejected",
    "transaction.signed",
    "transaction.failed",
    "transaction.expired",
];

/// Raised alerts (fed into the outbox by the alert engine).
pub const ALERT_RAISED: &str = "alert.raised";

/// Whether `name` is an event type an endpoint may subscribe to.
pub fn is_event_type(name: &str) -> bool {
    TRANSACTION_EVENTS.contains(&name) || name == ALERT_RAISED
}

/// How deliveries are retried and timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The pause after the first failed attempt; doubled after each further one.
    pub base: Duration,
    /// The longest pause between attempts.
    pub cap: Duration,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// How often the worker looks for due deliveries.
    pub poll: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}

impl WebhookConfig {
    /// The pause before the next attempt after `attempts` failed ones (1 or more):
    /// `base * 2^(attempts-1)`, at most `cap`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// Enqueues an event of `tenant` in a transaction of its own: one outbox row per endpoint
/// that wants `event_type`. For events caused by a state change, enqueue with
/// [`DbTx::enqueue_event`] in the change's own transaction instead. Returns the event ids.
pub async fn enqueue(
    db: &Db,
    tenant: &str,
    event_type: &str,
    payload: &Value,
) -> Result<Vec<String>, DbError> {
    db.enqueue_event(tenant, event_type, payload, crate::db::unix_now())
        .await
}

/// Enqueues the event `transaction.<state>` (or `transaction.created`) for request `t`, in
/// `tx`.
pub async fn enqueue_transaction(
    tx: &mut DbTx,
    t: &TxRecord,
    event: &str,
    state: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    let data = transaction_data(t, state, reason);
    tx.enqueue_event(&t.tenant_id, event, &data, now)
        .await
        .map(|_| ())
}

/// What a transaction event says about request `t` (now in `state`): ids, amount, asset,
/// destination, rule and reason. Nothing secret (no signatures, no credentials).
pub fn transaction_data(t: &TxRecord, state: &str, reason: Option<&str>) -> Value {
    let intent: Value = serde_json::from_str(&t.intent).unwrap_or(Value::Null);
    json!({
        "request_id": t.id,
        "client_request_id": intent["request_id"],
        "vault_id": t.vault_id,
        "wallet_id": t.wallet_id,
        "state": state,
        "amount": intent["amount"],
        "asset": intent["asset"],
        "destination": intent["destination"],
        "rule": t.rule,
        "reason": reason.map(str::to_string).or_else(|| t.reason.clone()),
    })
}

/// The body POSTed for a delivery: the same bytes on every attempt.
pub fn body(d: &DeliveryRecord) -> Vec<u8> {
    let data: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
    json!({
        "id": d.id,
        "type": d.event_type,
        "tenant": d.tenant_id,
        "created_at": d.created_at,
        "data": data,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let c = WebhookConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(700),
            ..Default::default()
        };
        let got: Vec<u128> = (1..=6).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 700, 700, 700]);
        assert_eq!(c.backoff(0).as_millis(), 100);
        assert_eq!(c.backoff(u32::MAX), c.cap);
    }

    #[test]
    fn event_types_are_known_names_only() {
        assert!(is_event_type("transaction.signed"));
        assert!(is_event_type("alert.raised"));
        assert!(!is_event_type("transaction.*"));
        assert!(!is_event_type(""));
    }
}
