//! Crashes on the signing path resume cleanly and never sign twice. The server is stopped
//! and its database put back as a crash would have left it: (1) after the signers signed
//! but before the server stored the result, (2) after the approvals but before signing
//! began. Restarted, the server resumes both: in (1) the signers answer the identical job
//! from their ledgers with the very signature they made before (FROST signatures are
//! randomized, so a second signing would differ), in (2) the request is signed once.
//! (A request marked approved without its approvals would be refused by the signers.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

async fn sql(dir: &std::path::Path, statements: &[String]) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("coffer.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for s in statements {
        sqlx::query(s).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[test]
fn requests_interrupted_by_a_crash_resume_and_are_signed_once() {
    let mut c = Cluster::start("resume", None);
    let t = tenant(&c, "acme");
    let (_v, w) = vault(&c, &t, "ed25519", "SOL");
    let signed_once = |c: &Cluster, name: &str| {
        let (_, tx) = create_tx(c, &t, &intent(&t, &w, name, 5));
        approve(c, &t.approvers[0], &tx);
        approve(c, &t.approvers[1], &tx);
        wait_state(c, &t, tx["id"].as_str().unwrap(), &["signed", "failed"])
    };
    let first = signed_once(&c, "req-1");
    assert_eq!(first["state"], "signed", "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    let signature = first["signature"].as_str().unwrap().to_string();

    // (2) A second request, approved, whose signing never started.
    let (_, second) = create_tx(&c, &t, &intent(&t, &w, "req-2", 6));
    approve(&c, &t.approvers[0], &second);
    let second_id = second["id"].as_str().unwrap().to_string();
    let second_intent: coffer_policy::Intent =
        serde_json::from_value(second["intent"].clone()).unwrap();
    let late = coffer_policy::Approval::sign(
        t.approvers[1].signing_key(),
        second_intent.hash(),
        coffer_policy::Decision::Approve,
        now() + 600,
    );

    c.stop();
    c.rt.block_on(sql(
        &c.dir,
        &[
            // (1) The result of the first was never stored.
            format!("DELETE FROM receipts WHERE seq = {}", first["seq"]),
            format!("UPDATE transactions SET state = 'signing', signature = NULL, recovery_id = NULL, signers = NULL WHERE id = '{id}'"),
            // (2) The second approval of the second request was stored, and the request
            // marked approved, just before the crash.
            format!(
                "INSERT INTO approvals (tx_id, approver, decision, expires_at, signature, reason, created_at) VALUES ('{second_id}', '{}', 'approve', {}, '{}', NULL, {})",
                late.approver, late.expires_at, late.signature, now()
            ),
            format!("UPDATE transactions SET state = 'approved' WHERE id = '{second_id}'"),
        ],
    ));
    c.restart();

    let resumed = wait_state(&c, &t, &id, &["signed", "failed"]);
    assert_eq!(resumed["state"], "signed", "{resumed}");
    assert_eq!(
        resumed["signature"].as_str().unwrap(),
        signature,
        "the signers must answer from their ledgers, not sign again"
    );
    verify_signature(&resumed, "ed25519");
    let second = wait_state(&c, &t, &second_id, &["signed", "failed"]);
    assert_eq!(second["state"], "signed", "{second}");
    verify_signature(&second, "ed25519");
    assert_eq!(
        second["seq"].as_u64(),
        Some(first["seq"].as_u64().unwrap() + 1)
    );
    audit_ok(&c, &t);
}
