-- Keys made across the signers, every signature, and the presignature pool.
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    scheme TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    parties TEXT NOT NULL,
    public_key TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    removed TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE TABLE signatures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL,
    signature TEXT NOT NULL,
    signers TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX signatures_key_path ON signatures (key_id, path);
CREATE TABLE presignatures (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    signers TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX presignatures_key_path_state ON presignatures (key_id, path, state);
