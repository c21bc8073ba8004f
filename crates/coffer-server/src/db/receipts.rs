//! Ledger receipts: each signer's record of what a key signed, at increasing sequence
//! numbers, co-signed by the signers. Signers check a spending velocity over a window of
//! these receipts, so a server that rotates which signers it asks cannot hide transfers.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{big, col, ctx, uint, Db, DbError, DbTx};

/// One receipt of a key's ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// The key.
    pub key_id: String,
    /// Position in the key's ledger.
    pub seq: u64,
    /// The receipt body (JSON).
    pub body: String,
    /// The signers' signatures over it (JSON).
    pub signatures: String,
    /// Unix seconds.
    pub at: i64,
}

fn receipt_from_row(row: &AnyRow) -> Result<ReceiptRecord, DbError> {
    const DOING: &str = "reading a receipt";
    Ok(ReceiptRecord {
        key_id: col(row, "key_id", DOING)?,
        seq: uint(col(row, "seq", DOING)?, DOING, "seq")?,
        body: col(row, "body", DOING)?,
        signatures: col(row, "signatures", DOING)?,
        at: col(row, "at", DOING)?,
    })
}

impl DbTx {
    /// Records a receipt (a position taken for the key is a conflict).
    pub async fn insert_receipt(&mut self, r: &ReceiptRecord) -> Result<(), DbError> {
        const DOING: &str = "inserting a receipt";
        sqlx::query(
            "INSERT INTO receipts (key_id, seq, body, signatures, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.key_id)
        .bind(big(r.seq, DOING, "seq")?)
        .bind(&r.body)
        .bind(&r.signatures)
        .bind(r.at)
        .execute(self.conn())
        .await
        .map_err(ctx(DOING))?;
        Ok(())
    }
}

impl Db {
    /// A key's latest receipt (highest position).
    pub async fn last_receipt(&self, key_id: &str) -> Result<Option<ReceiptRecord>, DbError> {
        let row = sqlx::query(
            "SELECT key_id, seq, body, signatures, at FROM receipts WHERE key_id = $1 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading the last receipt"))?;
        row.as_ref().map(receipt_from_row).transpose()
    }

    /// A key's receipts from position `from_seq` on, ascending.
    pub async fn receipts_from(
        &self,
        key_id: &str,
        from_seq: u64,
    ) -> Result<Vec<ReceiptRecord>, DbError> {
        const DOING: &str = "listing receipts";
        let rows = sqlx::query(
            "SELECT key_id, seq, body, signatures, at FROM receipts \
             WHERE key_id = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(key_id)
        .bind(big(from_seq, DOING, "seq")?)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// The greatest position of a key's receipts made strictly before `at` (where a
    /// velocity window starting at `at` begins), if any.
    pub async fn receipt_seq_before(&self, key_id: &str, at: i64) -> Result<Option<u64>, DbError> {
        const DOING: &str = "finding a receipt by time";
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT seq FROM receipts WHERE key_id = $1 AND at < $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(key_id)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        row.map(|(s,)| uint(s, DOING, "seq")).transpose()
    }
}
