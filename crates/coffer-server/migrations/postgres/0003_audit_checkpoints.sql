-- Audit checkpoints: a chain's head after its first `entries` entries, co-signed by the
-- signer nodes (each co-signs only heads that extend the one it co-signed before), so the
-- server cannot rewrite its log unnoticed. `signatures` is a JSON array of
-- {"signer": hex key, "signature": hex}; `at` is unix seconds.
CREATE TABLE audit_checkpoints (
    tenant_id TEXT NOT NULL,
    entries BIGINT NOT NULL,
    head TEXT NOT NULL,
    signatures TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entries)
);
