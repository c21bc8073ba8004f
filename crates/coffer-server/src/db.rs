//! The server's durable state on SQLite (the embedded default): the keys made across the
//! signers, with their party membership, and a record of every signature. The schema is
//! created on open; each write is one transaction, so a crash never leaves half a record.

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use coffer_net::NodeKey;
use coffer_proto::scheme::Scheme;

const SCHEMA: &str = r#"
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
"#;

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
    /// Current share epoch.
    pub epoch: u64,
    /// Party indices removed by resharing (their old shares no longer combine).
    pub removed: Vec<u16>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A database failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("database ({doing}): {source}")]
pub struct DbError {
    doing: &'static str,
    #[source]
    source: sqlx::Error,
}

fn ctx(doing: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError { doing, source }
}

/// The server's database.
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(ctx("parsing the database path"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(ctx("opening"))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(ctx("creating the schema"))?;
        Ok(Db { pool })
    }

    /// Records a new key.
    pub async fn insert_key(&self, k: &KeyRecord) -> Result<(), DbError> {
        let parties = serde_json::to_string(&k.parties).unwrap_or_default();
        sqlx::query("INSERT INTO keys (id, scheme, threshold, parties, public_key, epoch, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&k.id)
            .bind(k.scheme.name())
            .bind(i64::from(k.threshold))
            .bind(parties)
            .bind(&k.public_key)
            .bind(k.epoch as i64)
            .bind(k.created_at)
            .execute(&self.pool)
            .await
            .map_err(ctx("inserting a key"))?;
        Ok(())
    }

    /// Records a reshare: the new epoch and the parties removed so far.
    pub async fn set_reshared(&self, id: &str, epoch: u64, removed: &[u16]) -> Result<(), DbError> {
        sqlx::query("UPDATE keys SET epoch = ?, removed = ? WHERE id = ?")
            .bind(epoch as i64)
            .bind(serde_json::to_string(removed).unwrap_or_else(|_| "[]".into()))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ctx("recording a reshare"))?;
        Ok(())
    }

    /// Sets a key's epoch after a refresh.
    pub async fn set_epoch(&self, id: &str, epoch: u64) -> Result<(), DbError> {
        sqlx::query("UPDATE keys SET epoch = ? WHERE id = ?")
            .bind(epoch as i64)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ctx("updating a key's epoch"))?;
        Ok(())
    }

    fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, DbError> {
        let bad = |what: &'static str| DbError {
            doing: what,
            source: sqlx::Error::Decode(what.into()),
        };
        let scheme: String = row.try_get("scheme").map_err(ctx("reading a key"))?;
        let parties: String = row.try_get("parties").map_err(ctx("reading a key"))?;
        let threshold: i64 = row.try_get("threshold").map_err(ctx("reading a key"))?;
        let epoch: i64 = row.try_get("epoch").map_err(ctx("reading a key"))?;
        Ok(KeyRecord {
            id: row.try_get("id").map_err(ctx("reading a key"))?,
            scheme: scheme
                .parse()
                .map_err(|_| bad("unknown scheme in keys table"))?,
            threshold: u16::try_from(threshold).map_err(|_| bad("threshold out of range"))?,
            parties: serde_json::from_str(&parties).map_err(|_| bad("parties column"))?,
            public_key: row.try_get("public_key").map_err(ctx("reading a key"))?,
            epoch: u64::try_from(epoch).map_err(|_| bad("epoch out of range"))?,
            removed: {
                let removed: String = row.try_get("removed").map_err(ctx("reading a key"))?;
                serde_json::from_str(&removed).map_err(|_| bad("removed column"))?
            },
            created_at: row.try_get("created_at").map_err(ctx("reading a key"))?,
        })
    }

    /// One key.
    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, DbError> {
        let row = sqlx::query("SELECT * FROM keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a key"))?;
        row.as_ref().map(Self::key_from_row).transpose()
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, DbError> {
        let rows = sqlx::query("SELECT * FROM keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing keys"))?;
        rows.iter().map(Self::key_from_row).collect()
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
        sqlx::query("INSERT INTO signatures (key_id, path, message, signature, signers, created_at) VALUES (?, ?, ?, ?, ?, ?)")
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
            "SELECT path FROM signatures WHERE key_id = ? GROUP BY path ORDER BY MAX(id) DESC LIMIT ?",
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
        sqlx::query("SELECT COUNT(*) AS n FROM signatures WHERE key_id = ?")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(ctx("counting signatures"))
    }
}

impl Db {
    /// Records a presignature the signers pooled (made in session `id`).
    pub async fn insert_presignature(
        &self,
        id: &str,
        key_id: &str,
        path: &str,
        signers: &[u16],
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO presignatures (id, key_id, path, signers, state, created_at) VALUES (?, ?, ?, ?, 'ready', ?)")
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
            "UPDATE presignatures SET state = 'discarded' WHERE key_id = ? AND state = 'ready'",
        )
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(ctx("discarding presignatures"))?;
        Ok(())
    }

    /// Pooled presignatures ready for `key_id` at `path`.
    pub async fn presignatures_ready(&self, key_id: &str, path: &str) -> Result<i64, DbError> {
        sqlx::query("SELECT COUNT(*) AS n FROM presignatures WHERE key_id = ? AND path = ? AND state = 'ready'")
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
        let rows = sqlx::query("SELECT id, signers FROM presignatures WHERE key_id = ? AND path = ? AND state = 'ready' ORDER BY created_at, id")
            .bind(key_id)
            .bind(path)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing presignatures"))?;
        for row in rows {
            let id: String = row.try_get("id").map_err(ctx("reading a presignature"))?;
            let signers: String = row
                .try_get("signers")
                .map_err(ctx("reading a presignature"))?;
            let Ok(signers) = serde_json::from_str::<Vec<u16>>(&signers) else {
                continue;
            };
            if !usable(&signers) {
                continue;
            }
            let done = sqlx::query(
                "UPDATE presignatures SET state = 'used' WHERE id = ? AND state = 'ready'",
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

/// Unix seconds now.
pub fn unix_now() -> i64 {
    now()
}
