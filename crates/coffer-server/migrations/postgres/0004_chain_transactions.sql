-- Chain transactions: a request whose intent carries an unsigned chain transaction is
-- finished into the chain's own encoding once every digest is signed. `signed_tx` is that
-- encoding (Bitcoin hex, Ethereum 0x hex, Solana base64), `chain_tx_id` its id on chain
-- (Bitcoin txid, Ethereum transaction hash, Solana first signature), `signatures` a JSON
-- array of every signature (hex), one per digest.
ALTER TABLE transactions ADD COLUMN signed_tx TEXT;
ALTER TABLE transactions ADD COLUMN chain_tx_id TEXT;
ALTER TABLE transactions ADD COLUMN signatures TEXT;
-- A wallet may name the chain (and network) its addresses are encoded for: bitcoin (P2WPKH
-- from an ECDSA key, P2TR from a BIP340 key), ethereum, solana.
ALTER TABLE wallets ADD COLUMN chain TEXT;
ALTER TABLE wallets ADD COLUMN network TEXT;
