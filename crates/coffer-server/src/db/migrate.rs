//! Schema migrations: numbered SQL files per backend (embedded in the binary), applied in
//! order, each in its own transaction, and recorded in `coffer_migrations`. Re-opening a
//! database applies only what is missing; a database migrated by a newer server (a version
//! this binary does not know) is refused rather than used with a schema it cannot read.
//! On PostgreSQL a session advisory lock keeps two servers starting at once from racing.

use std::future::Future;
use std::pin::Pin;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Executor};

use super::{ctx, now, Backend, DbError};

/// One migration.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number (applied in increasing order).
    pub version: i64,
    /// Its name (the file name without the number).
    pub name: &'static str,
    /// The SQL (several statements).
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys",
        sql: include_str!("../../migrations/sqlite/0001_keys.sql"),
    },
    Migration {
        version: 2,
        name: "custody",
        sql: include_str!("../../migrations/sqlite/0002_custody.sql"),
    },
    Migration {
        version: 3,
        name: "audit_checkpoints",
        sql: include_str!("../../migrations/sqlite/0003_audit_checkpoints.sql"),
    },
    Migration {
        version: 4,
        name: "chain_transactions",
        sql: include_str!("../../migrations/sqlite/0004_chain_transactions.sql"),
    },
    Migration {
        version: 5,
        name: "alerts",
        sql: include_str!("../../migrations/sqlite/0005_alerts.sql"),
    },
    Migration {
        version: 6,
        name: "webhooks",
        sql: include_str!("../../migrations/sqlite/0006_webhooks.sql"),
    },
    Migration {
        version: 7,
        name: "vault_freeze",
        sql: include_str!("../../migrations/sqlite/0007_vault_freeze.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys",
        sql: include_str!("../../migrations/postgres/0001_keys.sql"),
    },
    Migration {
        version: 2,
        name: "custody",
        sql: include_str!("../../migrations/postgres/0002_custody.sql"),
    },
    Migration {
        version: 3,
        name: "audit_checkpoints",
        sql: include_str!("../../migrations/postgres/0003_audit_checkpoints.sql"),
    },
    Migration {
        version: 4,
        name: "chain_transactions",
        sql: include_str!("../../migrations/postgres/0004_chain_transactions.sql"),
    },
    Migration {
        version: 5,
        name: "alerts",
        sql: include_str!("../../migrations/postgres/0005_alerts.sql"),
    },
    Migration {
        version: 6,
        name: "webhooks",
        sql: include_str!("../../migrations/postgres/0006_webhooks.sql"),
    },
    Migration {
        version: 7,
        name: "vault_freeze",
        sql: include_str!("../../migrations/postgres/0007_vault_freeze.sql"),
    },
];

/// The migrations of a backend, in order.
pub fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS coffer_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// An arbitrary constant naming Coffer's migration lock among advisory locks.
const PG_LOCK: i64 = 0x636f_6666_6572;

/// The versions applied so far, ascending.
pub(super) async fn applied(pool: &AnyPool) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM coffer_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(ctx("reading applied migrations"))?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// Applies every missing migration.
///
/// The future is boxed as `Send` here, so callers that `tokio::spawn` a future opening the
/// database never depend on rustc proving `Send` through sqlx's generic executor futures
/// (it cannot for `sqlx::raw_sql`: "implementation of `Executor` is not general enough").
pub(super) fn run(
    pool: &AnyPool,
    backend: Backend,
) -> Pin<Box<dyn Future<Output = Result<(), DbError>> + Send + '_>> {
    Box::pin(run_inner(pool, backend))
}

async fn run_inner(pool: &AnyPool, backend: Backend) -> Result<(), DbError> {
    let mut conn = pool.acquire().await.map_err(ctx("migrating"))?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_lock($1)) AS l")
            .bind(PG_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(ctx("taking the migration lock"))?;
    }
    let result = apply(&mut conn, backend).await;
    if backend == Backend::Postgres {
        let unlocked =
            sqlx::query("SELECT 1 AS unlocked FROM (SELECT pg_advisory_unlock($1)) AS u")
                .bind(PG_LOCK)
                .execute(&mut *conn)
                .await;
        if unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to the pool.
            let _ = conn.close().await;
        }
    }
    result
}

async fn apply(conn: &mut PoolConnection<Any>, backend: Backend) -> Result<(), DbError> {
    sqlx::query(CREATE_TABLE)
        .execute(&mut **conn)
        .await
        .map_err(ctx("creating coffer_migrations"))?;
    let done: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM coffer_migrations ORDER BY version")
            .fetch_all(&mut **conn)
            .await
            .map_err(ctx("reading applied migrations"))?;
    let done: Vec<i64> = done.into_iter().map(|(v,)| v).collect();
    let known = migrations(backend);
    let newest_known = known.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(v) = done.iter().copied().find(|v| *v > newest_known) {
        return Err(DbError::other(
            "migrating",
            format!(
                "the database has schema version {v}, newer than this server knows \
                 ({newest_known}): upgrade the server"
            ),
        ));
    }
    for m in known.iter().filter(|m| !done.contains(&m.version)) {
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(ctx("starting a migration"))?;
        // Several statements, no arguments: sent as one simple query.
        if let Err(e) = (&mut *tx).execute(m.sql).await {
            tracing::error!("migration {:04} ({}) failed: {e}", m.version, m.name);
            return Err(ctx("applying a migration")(e));
        }
        sqlx::query(
            "INSERT INTO coffer_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(ctx("recording a migration"))?;
        tx.commit().await.map_err(ctx("committing a migration"))?;
    }
    Ok(())
}
