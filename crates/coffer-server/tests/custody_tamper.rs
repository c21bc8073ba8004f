//! A server that tampers with the signing job (drops an approval, raises the amount after
//! approval) is refused by every signer, and the refusal fails the request and is recorded
//! in the audit log and as a critical alert. Its own test binary: the fault switch is a process-wide variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::*;

#[test]
fn a_server_that_tampers_with_the_signing_job_is_refused_by_the_signers_and_it_is_recorded() {
    let c = Cluster::start("tamper", None);
    let t = tenant(&c, "acme");
    let (_v, w) = vault(&c, &t, "ed25519", "SOL");
    for (n, fault) in ["skip_approval", "alter_amount"].iter().enumerate() {
        std::env::set_var("COFFER_TEST_CUSTODY_FAULT", fault);
        let (_, tx) = create_tx(&c, &t, &intent(&t, &w, &format!("req-{n}"), 100));
        approve(&c, &t.approvers[0], &tx);
        approve(&c, &t.approvers[1], &tx);
        let done = wait_state(&c, &t, tx["id"].as_str().unwrap(), &["signed", "failed"]);
        assert_eq!(done["state"], "failed", "{fault}: {done}");
        assert!(
            done["reason"].as_str().unwrap().contains("refused"),
            "{fault}: {done}"
        );
        assert!(done["signature"].is_null());
    }
    std::env::remove_var("COFFER_TEST_CUSTODY_FAULT");
    let log = c.as_(&t.auditor).ok("GET", "/v1/audit?limit=1000", None);
    let refusals: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "signer.refused")
        .collect();
    assert_eq!(refusals.len(), 2, "{log}");
    // Each refusal is a critical alert naming the refusing signer and the request.
    let alerts = c
        .as_(&t.admin)
        .ok("GET", "/v1/alerts?severity=critical&limit=1000", None);
    let refused: Vec<&Value> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "signer_refused")
        .collect();
    assert_eq!(refused.len(), 2, "{alerts}");
    for a in &refused {
        assert!(a["subject"]["signer"].is_string(), "{a}");
        assert!(
            a["evidence"]["request"]
                .as_str()
                .unwrap()
                .starts_with("tx-"),
            "{a}"
        );
    }
    // An honest job afterwards still signs (the refusals reserved nothing).
    let (_, tx) = create_tx(&c, &t, &intent(&t, &w, "req-honest", 100));
    approve(&c, &t.approvers[0], &tx);
    approve(&c, &t.approvers[2], &tx);
    let done = wait_state(&c, &t, tx["id"].as_str().unwrap(), &["signed", "failed"]);
    assert_eq!(done["state"], "signed", "{done}");
    verify_signature(&done, "ed25519");
    audit_ok(&c, &t);
}
