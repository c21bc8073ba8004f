//! The OpenAPI 3.1 document served at `/openapi.json`, generated from [`ROUTES`], the one
//! table of every route with its summary and the roles it accepts. An integration test
//! calls every route in the table, so a route documented here but missing from the router
//! fails the build's tests.

use serde_json::{json, Map, Value};

/// One documented route.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path, with `{id}`-style parameters.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it (empty: no authentication).
    pub roles: &'static [&'static str],
}

const TENANT: &[&str] = &["admin", "initiator", "approver", "viewer", "auditor"];

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        roles: &[],
    },
    Route {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        roles: &[],
    },
    Route {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        roles: &[],
    },
    Route {
        method: "get",
        path: "/v1/whoami",
        summary: "The calling credential",
        roles: &[
            "operator",
            "admin",
            "initiator",
            "approver",
            "viewer",
            "auditor",
        ],
    },
    Route {
        method: "post",
        path: "/v1/tenants",
        summary: "Create a tenant",
        roles: &["operator"],
    },
    Route {
        method: "get",
        path: "/v1/tenants",
        summary: "List tenants",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/users",
        summary: "Add a user or a credential of a user",
        roles: &["operator", "admin"],
    },
    Route {
        method: "get",
        path: "/v1/users",
        summary: "List the tenant's users and credentials",
        roles: &["admin", "auditor"],
    },
    Route {
        method: "post",
        path: "/v1/credentials/{key}/disable",
        summary: "Disable a credential",
        roles: &["operator", "admin"],
    },
    Route {
        method: "post",
        path: "/v1/vaults",
        summary: "Create a vault: one key per scheme by DKG on the signers",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/vaults",
        summary: "List vaults",
        roles: TENANT,
    },
    Route {
        method: "get",
        path: "/v1/vaults/{id}",
        summary: "Show a vault",
        roles: TENANT,
    },
    Route {
        method: "post",
        path: "/v1/vaults/{id}/freeze",
        summary: "Freeze a vault: the server signs a freeze order every signer honours",
        roles: &["admin", "operator"],
    },
    Route {
        method: "post",
        path: "/v1/vaults/{id}/unfreeze",
        summary: "Unfreeze a vault with an order signed by the admin quorum",
        roles: &["admin", "operator"],
    },
    Route {
        method: "post",
        path: "/v1/vaults/{id}/wallets",
        summary: "Create a wallet on one of the vault's keys",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/vaults/{id}/wallets",
        summary: "List a vault's wallets",
        roles: TENANT,
    },
    Route {
        method: "get",
        path: "/v1/wallets/{id}",
        summary: "Show a wallet",
        roles: TENANT,
    },
    Route {
        method: "post",
        path: "/v1/wallets/{id}/addresses",
        summary: "Derive the wallet's next address (m/wallet/index)",
        roles: &["admin", "initiator"],
    },
    Route {
        method: "get",
        path: "/v1/wallets/{id}/addresses",
        summary: "List a wallet's addresses",
        roles: TENANT,
    },
    Route {
        method: "put",
        path: "/v1/vaults/{id}/policy",
        summary: "Set the vault's policy (signed by the admin quorum)",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/vaults/{id}/policy",
        summary: "The vault's current policy",
        roles: TENANT,
    },
    Route {
        method: "get",
        path: "/v1/vaults/{id}/policies",
        summary: "Every version of the vault's policy",
        roles: TENANT,
    },
    Route {
        method: "get",
        path: "/v1/policy/admins",
        summary: "The admin keys and quorum that sign policies",
        roles: &[
            "operator",
            "admin",
            "initiator",
            "approver",
            "viewer",
            "auditor",
        ],
    },
    Route {
        method: "post",
        path: "/v1/transactions",
        summary: "Create a transaction request from a signed intent (idempotent on request_id)",
        roles: &["initiator"],
    },
    Route {
        method: "get",
        path: "/v1/transactions",
        summary: "List transaction requests (?state=&limit=)",
        roles: TENANT,
    },
    Route {
        method: "get",
        path: "/v1/transactions/{id}",
        summary: "Show a transaction request",
        roles: TENANT,
    },
    Route {
        method: "post",
        path: "/v1/transactions/{id}/approve",
        summary: "Approve: a signature over the intent hash",
        roles: &["approver"],
    },
    Route {
        method: "post",
        path: "/v1/transactions/{id}/reject",
        summary: "Reject: a signature over the intent hash",
        roles: &["approver"],
    },
    Route {
        method: "get",
        path: "/v1/audit",
        summary: "Audit entries (?after=&limit=)",
        roles: &["auditor", "admin", "operator"],
    },
    Route {
        method: "get",
        path: "/v1/audit/export",
        summary: "Export the audit chain with its signer-co-signed checkpoints",
        roles: &["auditor", "admin", "operator"],
    },
    Route {
        method: "get",
        path: "/v1/audit/verify",
        summary: "Verify the audit chain and its checkpoints",
        roles: &["auditor", "admin", "operator"],
    },
    Route {
        method: "post",
        path: "/v1/webhooks",
        summary: "Add a webhook endpoint {url, events?}; its signing secret is returned this once",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/webhooks",
        summary: "List the tenant's webhook endpoints (no secrets)",
        roles: TENANT,
    },
    Route {
        method: "delete",
        path: "/v1/webhooks/{id}",
        summary: "Remove a webhook endpoint (its pending deliveries become dead)",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/webhooks/{id}/deliveries",
        summary: "An endpoint's deliveries: event id, type, state, attempts, last error (?limit=)",
        roles: TENANT,
    },
    Route {
        method: "post",
        path: "/v1/webhooks/deliveries/{id}/retry",
        summary: "Re-arm a dead delivery ({id} is its event id)",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/alerts",
        summary: "List alerts, newest first (query: severity = minimum low|medium|high|critical, acked=true|false, limit 1-1000); operators see the platform's",
        roles: &["operator", "admin", "approver", "auditor"],
    },
    Route {
        method: "get",
        path: "/v1/alerts/{id}",
        summary: "One alert with its evidence",
        roles: &["operator", "admin", "approver", "auditor"],
    },
    Route {
        method: "post",
        path: "/v1/alerts/{id}/ack",
        summary: "Acknowledge an alert with {\"reason\": \"...\"} (1-1024 bytes; audited; 409 if already acknowledged)",
        roles: &["operator", "admin"],
    },
    Route {
        method: "get",
        path: "/v1/tenant/working-hours",
        summary: "The tenant's working hours (alerts on activity outside them)",
        roles: TENANT,
    },
    Route {
        method: "put",
        path: "/v1/tenant/working-hours",
        summary: "Set the working hours, {\"working_hours\": \"Mon-Fri 08:00-18:00 +00:00\"} or null (audited)",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/tenant/alert-responses",
        summary: "What the server does by itself per alert severity (notify, extra_approval or freeze the vault)",
        roles: TENANT,
    },
    Route {
        method: "put",
        path: "/v1/tenant/alert-responses",
        summary: "Set the automatic responses, {\"critical\": \"freeze\", \"high\": \"extra_approval\"} (others notify; audited)",
        roles: &["admin"],
    },
    Route {
        method: "get",
        path: "/v1/signers",
        summary: "Signer health",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys",
        summary: "Create a bare key (operators)",
        roles: &["operator"],
    },
    Route {
        method: "get",
        path: "/v1/keys",
        summary: "List keys",
        roles: &["operator"],
    },
    Route {
        method: "get",
        path: "/v1/keys/{id}",
        summary: "Show a key",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys/{id}/sign",
        summary: "Sign a raw message (dev mode only)",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys/{id}/refresh",
        summary: "Refresh every share of a key",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys/{id}/reshare",
        summary: "Reshare a FROST key without some signers",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/vaults/{id}/refresh",
        summary: "Breach response: refresh every share of the vault's keys in two phases (allowed while frozen)",
        roles: &["admin", "operator"],
    },
    Route {
        method: "post",
        path: "/v1/incident/refresh",
        summary: "Breach response: refresh every key of the platform, {\"all\": true}",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys/{id}/backup",
        summary: "Export every signer's backup kit, encrypted to its own recovery key",
        roles: &["operator"],
    },
    Route {
        method: "post",
        path: "/v1/keys/{id}/backup/drill",
        summary: "Record a backup drill's result in the audit log (the signature is checked)",
        roles: &["operator"],
    },
];

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "4XX": {"description": "Refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if !r.roles.is_empty() {
            op["security"] = json!([{"signedRequest": []}]);
            op["x-coffer-roles"] = json!(r.roles);
        }
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Coffer custody API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every /v1 request is signed with the caller's Ed25519 credential over method, path, SHA-256 of the body, timestamp and nonce (headers x-coffer-key, x-coffer-timestamp, x-coffer-nonce, x-coffer-signature). Amounts are decimal strings in the asset's base unit. Webhook deliveries are POSTs signed with the endpoint's secret: Coffer-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret bytes, \"<t>.<event id>.<body>\")>, with Coffer-Event-Id and Coffer-Timestamp.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "signedRequest": {"type": "apiKey", "in": "header", "name": "x-coffer-signature"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
                },
            },
        },
    })
}
