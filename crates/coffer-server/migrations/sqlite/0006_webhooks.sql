-- Webhooks: a tenant's endpoints and the durable outbox of their deliveries.
--
-- An endpoint (`wh-<hex>`) receives the tenant's events whose type is in `events` (a JSON
-- array; empty: every event), each POSTed with an HMAC-SHA256 signature under `secret`
-- (32 random bytes, hex). Removing an endpoint disables it (`disabled` = 1): its delivery
-- history stays readable.
--
-- The outbox holds one row per event and endpoint (`ev-<hex>`, the event id the receiver
-- sees), written in the database transaction of the change that caused it. `state` is
-- `pending`, `delivered` or `dead` (attempts exhausted); `next_attempt_ms` is unix
-- milliseconds (backoff intervals are finer than seconds), `created_at` and
-- `delivered_at` unix seconds. `last_error` says why the last attempt failed (HTTP status
-- or transport failure; never a secret).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, disabled);
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT,
    delivered_at INTEGER
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_ms);
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox (endpoint_id, created_at);
