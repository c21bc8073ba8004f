-- Keys made across the signers, every signature, and the presignature pool.
-- IF NOT EXISTS: databases created before migrations existed already hold these tables.
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    scheme TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    parties TEXT NOT NULL,
    public_key TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    removed TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL,
    signature TEXT NOT NULL,
    signers TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS presignatures (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    signers TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signatures_key_path ON signatures (key_id, path);
CREATE INDEX IF NOT EXISTS presignatures_key_path_state ON presignatures (key_id, path, state);
