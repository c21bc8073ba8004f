//! A change whose audit entry cannot be written does not happen: with the audit table made
//! to refuse inserts (a trigger, as a full disk or a broken table would), creating a request
//! fails and leaves no request behind; once the table accepts entries again, the same signed
//! intent goes through and the chain verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

async fn sql(dir: &std::path::Path, statement: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("coffer.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[test]
fn a_request_whose_audit_entry_cannot_be_written_fails_and_leaves_nothing() {
    let c = Cluster::start("auditfail", None);
    let t = tenant(&c, "acme");
    let (_v, w) = vault(&c, &t, "ed25519", "SOL");
    let i = intent(&t, &w, "req-audit", 7);
    c.rt.block_on(sql(
        &c.dir,
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
    ));
    let (status, v) = create_tx(&c, &t, &i);
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error"]["code"], "internal", "{v}");
    let viewer = c.as_(&t.viewer);
    let listed = viewer.ok("GET", "/v1/transactions", None);
    assert_eq!(
        listed["transactions"].as_array().unwrap().len(),
        0,
        "{listed}"
    );

    c.rt.block_on(sql(&c.dir, "DROP TRIGGER refuse_audit"));
    let (status, v) = create_tx(&c, &t, &i);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "pending_approval");
    audit_ok(&c, &t);
}
