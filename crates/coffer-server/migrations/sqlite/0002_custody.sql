-- The custody layer: tenants, users, credentials, vaults (one key per scheme), wallets,
-- addresses, signed policies, transaction requests, approvals, signers' ledger receipts
-- and the audit log's hash chains. Timestamps are unix seconds; flags are 0/1.

-- The chain code agreed at key generation (hex; empty for keys made before it was kept):
-- addresses are derived from the group key and it.
ALTER TABLE keys ADD COLUMN chain_code TEXT NOT NULL DEFAULT '';

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE credentials (
    key TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX credentials_tenant ON credentials (tenant_id);
CREATE TABLE vaults (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE vault_keys (
    vault_id TEXT NOT NULL REFERENCES vaults(id),
    scheme TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES keys(id),
    PRIMARY KEY (vault_id, scheme)
);
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    vault_id TEXT NOT NULL REFERENCES vaults(id),
    name TEXT NOT NULL,
    scheme TEXT NOT NULL,
    asset TEXT NOT NULL,
    wallet_index INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (vault_id, name),
    UNIQUE (vault_id, wallet_index)
);
CREATE TABLE addresses (
    wallet_id TEXT NOT NULL REFERENCES wallets(id),
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (wallet_id, idx)
);
CREATE TABLE policies (
    vault_id TEXT NOT NULL REFERENCES vaults(id),
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (vault_id, version)
);
CREATE TABLE transactions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    vault_id TEXT NOT NULL REFERENCES vaults(id),
    wallet_id TEXT NOT NULL REFERENCES wallets(id),
    key_id TEXT NOT NULL REFERENCES keys(id),
    intent TEXT NOT NULL,
    intent_hash TEXT NOT NULL,
    initiator TEXT NOT NULL,
    initiator_signature TEXT NOT NULL,
    state TEXT NOT NULL,
    rule TEXT,
    reason TEXT,
    policy_version INTEGER NOT NULL,
    seq INTEGER,
    receipt_body TEXT,
    signature TEXT,
    recovery_id INTEGER,
    signers TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX transactions_tenant_created ON transactions (tenant_id, created_at);
CREATE INDEX transactions_state ON transactions (state);
CREATE TABLE approvals (
    tx_id TEXT NOT NULL REFERENCES transactions(id),
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    signature TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tx_id, approver)
);
CREATE TABLE receipts (
    key_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    signatures TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (key_id, seq)
);
CREATE TABLE audit_log (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
