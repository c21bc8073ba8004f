//! Keys made across the signers (with their party membership), a record of every
//! signature, and the pool of ECDSA presignatures. Each method here is one statement (its
//! own transaction), except [`DbTx::insert_key`], which writes inside a larger one.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use coffer_net::NodeKey;
use coffer_proto::scheme::Scheme;

use super::{col, ctx, now, uint, Db, DbError, DbTx};

/// A key made across the signers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key id.
    pub id: String,
    /// The scheme.
    pub scheme: Scheme,
    /// Signing threshold.
    pub threshold: u16,
    /// Party index `i` is `parties[i]`.
    pub parties: Vec<NodeKey>,
    /// Group public key (hex).
    pub public_key: String,
    /// BIP32-style chain code the signers agreed on at key generation (hex; empty for keys
    /// recorded before chain codes were kept).
    #[serde(default)]
    pub chain_code: String,
    /// Current share epoch.
    pub epoch: u64,
    /// Party indices removed by resharing (their old shares no longer combine).
    pub removed: Vec<u16>,
    /// Unix seconds.
    pub created_at: i64,
}

const KEY_COLUMNS: &str =
    "id, scheme, threshold, parties, public_key, chain_code, epoch, removed, created_at";

async fn insert_key_on<'e, E>(e: E, k: &KeyRecord) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let parties = serde_json::to_string(&k.parties).unwrap_or_default();
    let epoch = super::big(k.epoch, "inserting a key", "epoch")?;
    sqlx::query(
        "INSERT INTO keys (id, scheme, threshold, parties, public_key, chain_code, epoch, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.id)
    .bind(k.scheme.name())
    .bind(i64::from(k.threshold))
    .bind(parties)
    .bind(&k.public_key)
    .bind(&k.chain_code)
    .bind(epoch)
    .bind(k.created_at)
    .execute(e)
    .await
    .map_err(ctx("inserting a key"))?;
    Ok(())
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, DbError> {
    const DOING: &str = "reading a key";
    let scheme: String = col(row, "scheme", DOING)?;
    let parties: String = col(row, "parties", DOING)?;
    let removed: String = col(row, "removed", DOING)?;
    Ok(KeyRecord {
        id: col(row, "id", DOING)?,
        scheme: scheme
            .parse()
            .map_err(|_| DbError::bad("unknown scheme in keys table", &scheme))?,
        threshold: uint(col(row, "threshold", DOING)?, DOING, "threshold")?,
        parties: serde_json::from_str(&parties)
            .map_err(|_| DbError::bad("parties column", "not a list of node keys"))?,
        public_key: col(row, "public_key", DOING)?,
        chain_code: col(row, "chain_code", DOING)?,
        epoch: uint(col(row, "epoch", DOING)?, DOING, "epoch")?,
        removed: serde_json::from_str(&removed)
            .map_err(|_| DbError::bad("removed column", "not a list of party indices"))?,
        created_at: col(row, "created_at", DOING)?,
    })
}

impl DbTx {
    /// Records a new key, inside the transaction (as [`Db::insert_key`]).
    pub async fn insert_key(&mut self, k: &KeyRecord) -> Result<(), DbError> {
        insert_key_on(self.conn(), k).await
    }
}

impl Db {
    /// Records a new key.
    pub async fn insert_key(&self, k: &KeyRecord) -> Result<(), DbError> {
        insert_key_on(&self.pool, k).await
    }

    /// Records a reshare: the new epoch and the parties removed so far.
    pub async fn set_reshared(&self, id: &str, epoch: u64, removed: &[u16]) -> Result<(), DbError> {
        sqlx::query("UPDATE keys SET epoch = $1, removed = $2 WHERE id = $3")
            .bind(super::big(epoch, "recording a reshare", "epoch")?)
            .bind(serde_json::to_string(removed).unwrap_or_else(|_| "[]".into()))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ctx("recording a reshare"))?;
        Ok(())
    }

    /// Sets a key's epoch after a refresh.
    pub async fn set_epoch(&self, id: &str, epoch: u64) -> Result<(), DbError> {
        sqlx::query("UPDATE keys SET epoch = $1 WHERE id = $2")
            .bind(super::big(epoch, "updating a key's epoch", "epoch")?)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ctx("updating a key's epoch"))?;
        Ok(())
    }

    /// One key.
    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a key"))?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing keys"))?;
        rows.iter().map(key_from_row).collect()
    }

    /// Records a signature.
    pub async fn insert_signature(
        &self,
        key_id: &str,
        path: &str,
        message: &str,
        signature: &str,
        signers: &[String],
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO signatures (key_id, path, message, signature, signers, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key_id)
        .bind(path)
        .bind(message)
        .bind(signature)
        .bind(serde_json::to_string(signers).unwrap_or_default())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(ctx("recording a signature"))?;
        Ok(())
    }

    /// The derivation paths a key signed at most recently (newest first, at most `limit`).
    pub async fn recent_paths(&self, key_id: &str, limit: i64) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT path FROM signatures WHERE key_id = $1 \
             GROUP BY path ORDER BY MAX(id) DESC LIMIT $2",
        )
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing recent paths"))?;
        rows.iter()
            .map(|r| r.try_get("path").map_err(ctx("reading a path")))
            .collect()
    }

    /// How many signatures a key has made.
    pub async fn signature_count(&self, key_id: &str) -> Result<i64, DbError> {
        sqlx::query("SELECT COUNT(*) AS n FROM signatures WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(ctx("counting signatures"))
    }

    /// Records a presignature the signers pooled (made in session `id`).
    pub async fn insert_presignature(
        &self,
        id: &str,
        key_id: &str,
        path: &str,
        signers: &[u16],
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO presignatures (id, key_id, path, signers, state, created_at) \
             VALUES ($1, $2, $3, $4, 'ready', $5)",
        )
        .bind(id)
        .bind(key_id)
        .bind(path)
        .bind(serde_json::to_string(signers).unwrap_or_default())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(ctx("recording a presignature"))?;
        Ok(())
    }

    /// Retires every pooled presignature of a key (after a refresh: signers discard theirs).
    pub async fn discard_presignatures(&self, key_id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE presignatures SET state = 'discarded' WHERE key_id = $1 AND state = 'ready'",
        )
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(ctx("discarding presignatures"))?;
        Ok(())
    }

    /// Pooled presignatures ready for `key_id` at `path`.
    pub async fn presignatures_ready(&self, key_id: &str, path: &str) -> Result<i64, DbError> {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM presignatures \
             WHERE key_id = $1 AND path = $2 AND state = 'ready'",
        )
        .bind(key_id)
        .bind(path)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(ctx("counting presignatures"))
    }

    /// Claims a ready presignature of `key_id` at `path` whose signers all satisfy
    /// `usable`, marking it used first (a presignature is never handed out twice, even if
    /// the server crashes right after). Returns its id and signer set.
    pub async fn claim_presignature(
        &self,
        key_id: &str,
        path: &str,
        usable: impl Fn(&[u16]) -> bool,
    ) -> Result<Option<(String, Vec<u16>)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, signers FROM presignatures \
             WHERE key_id = $1 AND path = $2 AND state = 'ready' ORDER BY created_at, id",
        )
        .bind(key_id)
        .bind(path)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing presignatures"))?;
        for row in rows {
            let id: String = col(&row, "id", "reading a presignature")?;
            let signers: String = col(&row, "signers", "reading a presignature")?;
            let Ok(signers) = serde_json::from_str::<Vec<u16>>(&signers) else {
                continue;
            };
            if !usable(&signers) {
                continue;
            }
            let done = sqlx::query(
                "UPDATE presignatures SET state = 'used' WHERE id = $1 AND state = 'ready'",
            )
            .bind(&id)
            .execute(&self.pool)
            .await
            .map_err(ctx("claiming a presignature"))?;
            if done.rows_affected() == 1 {
                return Ok(Some((id, signers)));
            }
        }
        Ok(None)
    }
}
