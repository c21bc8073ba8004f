-- Vault freeze: `frozen` (0/1), the sequence number of the latest freeze or unfreeze order
-- (increases per vault; signers refuse an order not above the last they accepted), its
-- reason, and the latest signed order itself (JSON: a freeze signed by the server's key or an
-- unfreeze signed by an admin quorum), which the server sends again to reconnecting signers.
ALTER TABLE vaults ADD COLUMN frozen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vaults ADD COLUMN freeze_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vaults ADD COLUMN freeze_reason TEXT;
ALTER TABLE vaults ADD COLUMN freeze_order TEXT;
