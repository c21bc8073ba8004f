-- Alerts raised by the detectors (coffer-alerts): one row per finding, scoped to a tenant
-- (or to the platform chain, `_platform`, for failures that name no tenant), with the
-- evidence the detector saw (JSON) and, once a user acknowledges it, who, when and why.
-- Every alert is also an entry of its tenant's audit chain (`alert.raised`).
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    vault_id TEXT,
    wallet_id TEXT,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    explanation TEXT NOT NULL,
    evidence TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    acked_by TEXT,
    acked_at INTEGER,
    ack_reason TEXT
);
CREATE INDEX alerts_tenant_created ON alerts (tenant_id, created_at);
-- Per-tenant settings an admin sets through the API: working hours in the text form of
-- coffer_alerts::hours::WorkingHours (NULL: no working hours, the detector is off), and the
-- automatic response per alert severity (JSON of coffer_server::alerts::Responses; NULL:
-- notify only).
CREATE TABLE tenant_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    working_hours TEXT,
    alert_responses TEXT,
    updated_at INTEGER NOT NULL
);
