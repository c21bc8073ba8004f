//! The server's durable state, on SQLite (the embedded default, one file) or PostgreSQL,
//! through `sqlx`'s `Any` driver: the keys made across the signers with every signature and
//! the presignature pool ([`keys`]), and the custody layer: tenants, users, credentials,
//! vaults, wallets, addresses and policies ([`custody`]), transaction requests and their
//! approvals ([`requests`]), vault freeze state ([`freeze`]), the signers' ledger receipts
//! ([`receipts`]) and the audit log's hash chains ([`audit_store`]), the alerts with the
//! tenants' settings ([`alerts`]), and the webhook endpoints with their durable outbox
//! ([`webhooks`]).
//!
//! The schema is created and upgraded by numbered migrations per backend ([`migrate`]).
//! SQL uses `$1, $2` placeholders and only the types both backends share: `BIGINT`
//! (`i64`; flags are 0/1, timestamps unix seconds) and `TEXT`.
//!
//! Writes that must be atomic go through a [`DbTx`] ([`Db::begin`]). Transactions are
//! serialized inside the process by a mutex the [`DbTx`] holds until it commits or is
//! dropped (dropping rolls back), so the audit chain's read-the-head-then-append is free of
//! races; across processes on PostgreSQL the chain's primary key makes the loser fail. The
//! single-statement methods on [`Db`] (the key, signature and presignature records) write
//! directly, as before.

pub mod alerts;
pub mod audit_store;
pub mod custody;
pub mod freeze;
pub mod keys;
pub mod migrate;
pub mod receipts;
pub mod requests;
#[doc(hidden)]
pub mod testing;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use custody::{
    AddressRecord, CredentialRecord, PolicyRecord, TenantRecord, UserRecord, VaultRecord,
    WalletRecord,
};
pub use keys::KeyRecord;
pub use receipts::ReceiptRecord;
pub use requests::{ApprovalRecord, Signed, TxRecord};
pub use webhooks::{DeliveryRecord, DueDelivery, EndpointRecord};

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite: one file, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A database failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("database ({doing}): {source}")]
pub struct DbError {
    doing: &'static str,
    #[source]
    source: sqlx::Error,
}

impl DbError {
    /// Whether the failure is a unique-constraint (or primary-key) violation: the record
    /// exists already (on either backend).
    pub fn is_conflict(&self) -> bool {
        matches!(
            &self.source,
            sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation
        )
    }

    /// A stored value that does not decode (a corrupt or foreign row).
    pub(crate) fn bad(doing: &'static str, what: &str) -> DbError {
        DbError {
            doing,
            source: sqlx::Error::Decode(what.to_string().into()),
        }
    }

    /// A failure that is not the database's own (configuration, schema version).
    pub(crate) fn other(doing: &'static str, what: String) -> DbError {
        DbError {
            doing,
            source: sqlx::Error::Configuration(what.into()),
        }
    }
}

pub(crate) fn ctx(doing: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError { doing, source }
}

/// Reads a column, naming what was being read on failure.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str, doing: &'static str) -> Result<T, DbError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name).map_err(ctx(doing))
}

/// A non-negative integer column that must fit `T` (`u32`, `u64`, `u16`, `u8`).
pub(crate) fn uint<T: TryFrom<i64>>(v: i64, doing: &'static str, what: &str) -> Result<T, DbError> {
    T::try_from(v).map_err(|_| DbError::bad(doing, &format!("{what} out of range: {v}")))
}

/// A `u64` as stored (`BIGINT`); values above `i64::MAX` are refused, never wrapped.
pub(crate) fn big(v: u64, doing: &'static str, what: &str) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError {
        doing,
        source: sqlx::Error::Encode(format!("{what} too large to store: {v}").into()),
    })
}

/// `$from, $from+1, ...` for `n` values (an `IN (...)` list).
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The server's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    writes: Arc<Mutex<()>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    now()
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path`: WAL journal, foreign keys
    /// on, 5 s busy timeout; applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::open_sqlite(opts).await
    }

    /// Connects to `sqlite://...` (created if missing unless the URL sets `mode=`) or
    /// `postgres://...` / `postgresql://...`, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(DbError::other(
                    "connecting",
                    "in-memory SQLite is not supported: every pooled connection would see \
                     its own database (use a file)"
                        .into(),
                ));
            }
            let mut opts = SqliteConnectOptions::from_str(url).map_err(ctx("parsing the URL"))?;
            if !url.contains("mode=") {
                opts = opts.create_if_missing(true);
            }
            Self::open_sqlite(opts).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            install_drivers();
            let pool = AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(ctx("connecting to PostgreSQL"))?;
            Self::ready(pool, Backend::Postgres).await
        } else {
            Err(DbError::other(
                "connecting",
                "unsupported database URL (expected sqlite://... or postgres://...)".into(),
            ))
        }
    }

    async fn open_sqlite(opts: SqliteConnectOptions) -> Result<Self, DbError> {
        // WAL is a persistent property of the file and switching to it takes an exclusive
        // lock that the busy timeout does not wait on: set it once, on one connection.
        let conn = opts
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(ctx("opening"))?;
        conn.close().await.map_err(ctx("opening"))?;
        // The Any driver rebuilds SQLite options from the URL: foreign keys on and a 5 s
        // busy timeout are sqlx's defaults there; they are set again on every connection.
        install_drivers();
        let any = AnyConnectOptions::from_url(&opts.to_url_lossy()).map_err(ctx("opening"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(any)
            .await
            .map_err(ctx("opening"))?;
        Self::ready(pool, Backend::Sqlite).await
    }

    async fn ready(pool: AnyPool, backend: Backend) -> Result<Self, DbError> {
        migrate::run(&pool, backend).await?;
        Ok(Db {
            pool,
            backend,
            writes: Arc::new(Mutex::new(())),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The schema versions applied, in order (from `coffer_migrations`).
    pub async fn schema_versions(&self) -> Result<Vec<u64>, DbError> {
        migrate::applied(&self.pool)
            .await?
            .into_iter()
            .map(|v| uint(v, "reading the schema version", "version"))
            .collect()
    }

    /// Closes every pooled connection (waits for those in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. It holds the process's write lock until it commits or
    /// is dropped (dropping rolls back); on SQLite it takes the database's write lock at
    /// once (`BEGIN IMMEDIATE`), so what it reads stays current until it commits.
    ///
    /// Do not call a writing method of [`Db`] while holding a [`DbTx`] on SQLite: it
    /// would wait on the transaction's lock (up to the busy timeout). Reads are fine.
    pub async fn begin(&self) -> Result<DbTx, DbError> {
        let guard = self.writes.clone().lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(ctx("starting a transaction"))?;
        Ok(DbTx { tx, _guard: guard })
    }
}

fn install_drivers() {
    // Idempotent (sqlx guards it with a `Once`).
    sqlx::any::install_default_drivers();
}

/// A write transaction ([`Db::begin`]): commit with [`DbTx::commit`]; dropping it without
/// committing rolls everything back.
pub struct DbTx {
    // Field order matters: the transaction is dropped (rolled back) before the write lock
    // is released.
    tx: sqlx::Transaction<'static, Any>,
    _guard: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for DbTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbTx")
    }
}

impl DbTx {
    /// Commits every write of the transaction.
    pub async fn commit(self) -> Result<(), DbError> {
        let DbTx { tx, _guard } = self;
        tx.commit().await.map_err(ctx("committing"))
    }

    /// Rolls every write back (as dropping does, but waits for it).
    pub async fn rollback(self) -> Result<(), DbError> {
        let DbTx { tx, _guard } = self;
        tx.rollback().await.map_err(ctx("rolling back"))
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}
