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
