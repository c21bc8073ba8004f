//! Test support (not part of the server): a scratch PostgreSQL database made on the server
//! named by `COFFER_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`,
//! then the current user at `postgres://127.0.0.1:5432/test`), for suites that run on both
//! backends. Suites that find no server print why and skip, unless
//! `COFFER_REQUIRE_POSTGRES=1`.

use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};

/// The base URLs tried, in order.
pub fn base_urls() -> Vec<String> {
    match std::env::var("COFFER_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => vec![url],
        _ => vec![
            "postgres://postgres@127.0.0.1:5432/test".to_string(),
            "postgres://127.0.0.1:5432/test".to_string(),
        ],
    }
}

/// Whether the environment demands the PostgreSQL suites run (`COFFER_REQUIRE_POSTGRES=1`).
pub fn postgres_required() -> bool {
    std::env::var("COFFER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A scratch database, dropped by [`PgScratch::drop_db`].
#[derive(Debug)]
pub struct PgScratch {
    base: String,
    name: String,
    url: String,
}

/// `url` with its database (path) replaced by `name`, keeping any query string.
pub fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = head[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(head.len());
    let mut out = format!("{}/{name}", &head[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn connect(url: &str) -> Result<AnyConnection, String> {
    sqlx::any::install_default_drivers();
    match tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out connecting".into()),
    }
}

/// Hides a password in a URL (for messages).
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Creates a fresh database `coffer_test_<random hex>` on the first reachable base URL.
pub async fn postgres_scratch() -> Result<PgScratch, String> {
    let mut why = Vec::new();
    for base in base_urls() {
        let mut conn = match connect(&base).await {
            Ok(c) => c,
            Err(e) => {
                why.push(format!("{}: {e}", redact(&base)));
                continue;
            }
        };
        let mut b = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        let name = format!("coffer_test_{}", hex::encode(b));
        let created = conn
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await;
        let _ = conn.close().await;
        match created {
            Ok(_) => {
                let url = with_database(&base, &name);
                return Ok(PgScratch { base, name, url });
            }
            Err(e) => why.push(format!("{}: creating a database: {e}", redact(&base))),
        }
    }
    Err(why.join("; "))
}

impl PgScratch {
    /// The scratch database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database (even if connections to it remain open).
    pub async fn drop_db(self) -> Result<(), String> {
        let mut conn = connect(&self.base).await?;
        let forced = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let plain = format!("DROP DATABASE IF EXISTS {}", self.name);
        let result = match conn.execute(forced.as_str()).await {
            Ok(_) => Ok(()),
            // Servers before 13 have no FORCE.
            Err(_) => conn
                .execute(plain.as_str())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        let _ = conn.close().await;
        result
    }
}

/// Says plainly that a PostgreSQL suite did not run and why, written straight to the
/// process's standard error so that the test harness's output capture does not hide it;
/// panics instead when `COFFER_REQUIRE_POSTGRES=1` (CI, which provides the server).
#[allow(clippy::panic)]
pub fn not_run(suite: &str, why: &str) {
    if postgres_required() {
        panic!(
            "PostgreSQL suite {suite} required (COFFER_REQUIRE_POSTGRES=1) but cannot run: {why}"
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "PostgreSQL suite {suite} NOT RUN: {why} (set COFFER_TEST_DATABASE_URL to a server)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
