//! Automatic responses to alerts, end to end with three signer daemons: an admin sets
//! "freeze on critical"; usual withdrawals (and a medium first-destination alert) leave the
//! vault alone; an unusual withdrawal raises a critical anomaly alert, and the server freezes
//! the alert's vault by itself: every signer acknowledges the server-signed order, new
//! requests are refused (409) and a signing job sent to the signers anyway is refused by
//! them; the setting and the freeze (by the alert) are in the verified audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

#[test]
fn a_critical_alert_freezes_its_vault_when_the_tenant_says_so() {
    let c = Cluster::start("alert-response", None);
    let t = tenant(&c, "acme");
    let (v, w) = vault(&c, &t, "ed25519", "SOL");
    let vid = v["id"].as_str().unwrap().to_string();
    let admin = c.as_(&t.admin);

    // Only admins set responses; unknown severities or responses are refused.
    let (status, body) = c.as_(&t.viewer).call(
        "PUT",
        "/v1/tenant/alert-responses",
        Some(json!({"critical": "freeze"})),
    );
    assert_eq!(status, 403, "{body}");
    for bad in [json!({"critical": "explode"}), json!({"severe": "freeze"})] {
        let (status, body) = admin.call("PUT", "/v1/tenant/alert-responses", Some(bad));
        assert_eq!(status, 400, "{body}");
    }
    let shown = c
        .as_(&t.viewer)
        .ok("GET", "/v1/tenant/alert-responses", None);
    assert_eq!(shown["critical"], "notify", "the default: {shown}");
    admin.ok(
        "PUT",
        "/v1/tenant/alert-responses",
        Some(json!({"critical": "freeze"})),
    );

    // Usual withdrawals: a medium first-destination alert, nothing frozen.
    for (n, amount) in [100u128, 110, 95, 105, 90, 100].into_iter().enumerate() {
        let (status, tx) = create_tx(&c, &t, &intent(&t, &w, &format!("usual-{n}"), amount));
        assert_eq!(status, 200, "{tx}");
    }
    let frozen = |c: &Cluster| -> Value {
        c.as_(&t.viewer)
            .ok("GET", &format!("/v1/vaults/{vid}"), None)
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(frozen(&c)["frozen"], false, "a medium alert only notifies");

    // An unusual withdrawal: a critical anomaly alert, and the vault freezes by itself.
    let mut odd = intent(&t, &w, "unusual", 5_000_000);
    odd.destination = "dest-evil".into();
    let (status, tx) = create_tx(&c, &t, &odd);
    assert_eq!(
        status, 200,
        "the request that raised the alert is recorded: {tx}"
    );
    let list = c
        .as_(&t.admin)
        .ok("GET", "/v1/alerts?severity=critical", None);
    let alert = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "anomaly")
        .cloned()
        .unwrap_or_else(|| panic!("no critical anomaly: {list}"));
    let alert_id = alert["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = frozen(&c);
        if shown["frozen"] == true {
            break shown;
        }
        assert!(Instant::now() < deadline, "the vault never froze: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reason = shown["freeze"]["reason"].as_str().unwrap();
    assert!(reason.contains(alert_id), "{shown}");

    // The server refuses new requests, and the signers refuse signing for the vault.
    let (status, refused) = create_tx(&c, &t, &intent(&t, &w, "after", 100));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "vault_frozen");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.hub().acks(&vid).len() < 3 {
        assert!(Instant::now() < deadline, "not every signer acknowledged");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Setting and freeze are audited; the chain verifies.
    audit_ok(&c, &t);
    let log = c.as_(&t.auditor).ok("GET", "/v1/audit?limit=1000", None);
    let entries = log["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["action"] == "tenant.alert_responses_set"));
    let freeze = entries
        .iter()
        .find(|e| e["action"] == "vault.frozen")
        .unwrap_or_else(|| panic!("no vault.frozen entry: {log}"));
    assert_eq!(freeze["actor"], format!("alert {alert_id}"), "{freeze}");
}

/// The critical anomaly alert of the newest request on `vault`.
fn critical_anomaly(c: &Cluster, t: &Tenant, vault: &str) -> String {
    let list = c
        .as_(&t.admin)
        .ok("GET", "/v1/alerts?severity=critical", None);
    list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "anomaly" && a["vault"] == vault)
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no critical anomaly on {vault}: {list}"))
        .to_string()
}

/// Six usual withdrawals from `w`, then an unusual one (a critical anomaly): the unusual
/// request as created.
fn usual_then_unusual(c: &Cluster, t: &Tenant, w: &Value, tag: &str) -> Value {
    for (n, amount) in [100u128, 110, 95, 105, 90, 100].into_iter().enumerate() {
        let (status, tx) = create_tx(c, t, &intent(t, w, &format!("{tag}-usual-{n}"), amount));
        assert_eq!(status, 200, "{tx}");
    }
    let mut odd = intent(t, w, &format!("{tag}-unusual"), 5_000_000);
    odd.destination = "dest-evil".into();
    let (status, tx) = create_tx(c, t, &odd);
    assert_eq!(status, 200, "{tx}");
    tx
}

#[test]
fn a_critical_alert_asks_one_approval_more_when_the_tenant_says_so() {
    let c = Cluster::start("alert-extra-approval", None);
    let t = tenant(&c, "acme");
    let admin = c.as_(&t.admin);
    admin.ok(
        "PUT",
        "/v1/tenant/alert-responses",
        Some(json!({"critical": "extra_approval"})),
    );
    assert_eq!(
        c.as_(&t.viewer)
            .ok("GET", "/v1/tenant/alert-responses", None)["critical"],
        "extra_approval"
    );

    // Policy: two of three approvers. The unusual request needs all three.
    let (v, w) = vault(&c, &t, "ed25519", "SOL");
    let vid = v["id"].as_str().unwrap();
    let odd = usual_then_unusual(&c, &t, &w, "two");
    let alert = critical_anomaly(&c, &t, vid);
    assert_eq!(odd["extra_approval_for"], json!([alert]), "{odd}");
    let (_, one) = approve(&c, &t.approvers[0], &odd);
    let (status, two) = approve(&c, &t.approvers[1], &odd);
    assert_eq!(status, 200, "{two}");
    assert_eq!(
        two["state"], "pending_approval",
        "the rule is met, the extra approval is not: {two}"
    );
    assert_eq!(one["extra_approval_for"], json!([alert]));
    let (status, three) = approve(&c, &t.approvers[2], &odd);
    assert_eq!(status, 200, "{three}");
    let id = odd["id"].as_str().unwrap();
    let signed = wait_state(&c, &t, id, &["signed", "failed"]);
    assert_eq!(signed["state"], "signed", "{signed}");
    verify_signature(&signed, "ed25519");

    // Acknowledging the alert lifts it for new requests: two approvals again.
    admin.ok(
        "POST",
        &format!("/v1/alerts/{alert}/ack"),
        Some(json!({"reason": "the treasurer confirmed the payment"})),
    );
    let (_, next) = create_tx(&c, &t, &intent(&t, &w, "two-after-ack", 100));
    assert_eq!(
        next["extra_approval_for"],
        json!([]),
        "{next}\n{}",
        admin.ok("GET", "/v1/alerts", None)
    );
    approve(&c, &t.approvers[0], &next);
    let (_, after) = approve(&c, &t.approvers[1], &next);
    assert_ne!(after["state"], "pending_approval", "{after}");

    // A rule that approves at once: the unusual request is held for one approval instead.
    let (v0, w0) = vault_needing(&c, &t, "ed25519", "SOL", 0);
    let vid0 = v0["id"].as_str().unwrap();
    let (_, usual) = create_tx(&c, &t, &intent(&t, &w0, "zero-first", 100));
    assert_eq!(
        usual["state"], "approved",
        "no alert asks anything: {usual}"
    );
    let held = usual_then_unusual(&c, &t, &w0, "zero");
    let alert0 = critical_anomaly(&c, &t, vid0);
    assert_eq!(held["state"], "pending_approval", "{held}");
    assert_eq!(held["extra_approval_for"], json!([alert0]));
    // The initiator cannot give it; an approver can.
    let (status, _) = approve(&c, &t.initiator, &held);
    assert_eq!(status, 403);
    let (status, released) = approve(&c, &t.approvers[0], &held);
    assert_eq!(status, 200, "{released}");
    let done = wait_state(&c, &t, held["id"].as_str().unwrap(), &["signed", "failed"]);
    assert_eq!(done["state"], "signed", "{done}");

    // Every step is in the verified audit chain.
    audit_ok(&c, &t);
    let log = c.as_(&t.auditor).ok("GET", "/v1/audit?limit=1000", None);
    let entries = log["entries"].as_array().unwrap();
    let held_entry = entries
        .iter()
        .find(|e| e["action"] == "transaction.extra_approval_required")
        .unwrap_or_else(|| panic!("no hold entry: {log}"));
    assert_eq!(held_entry["object"], held["id"]);
    assert!(entries.iter().any(|e| e["action"] == "alert.acknowledged"));
}
