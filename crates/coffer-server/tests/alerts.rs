//! Alerts end to end, on SQLite and (when reachable) PostgreSQL: a burst of unusual
//! withdrawals raises a critical anomaly alert with its evidence, a new destination and a
//! request outside the working hours raise theirs, a burst of badly signed requests raises a
//! failed-authentication alert per credential and per source, credential and policy changes
//! raise theirs; alerts are listed with filters and acknowledged once, with a reason, by a
//! role allowed to; every alert and acknowledgement is in the audit export and the chain still
//! verifies; and (SQLite) a tampered audit chain raises a critical alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

use common::*;

#[test]
fn alerts_are_raised_listed_acknowledged_and_audited_on_sqlite() {
    let c = Cluster::start("alerts", None);
    suite(&c);
    audit_tamper_raises_a_critical_alert(&c);
}

#[test]
fn alerts_are_raised_listed_acknowledged_and_audited_on_postgresql() {
    let scratch = match c_rt().block_on(coffer_server::db::testing::postgres_scratch()) {
        Ok(s) => s,
        Err(why) => {
            coffer_server::db::testing::not_run("alerts", &why);
            return;
        }
    };
    suite(&Cluster::start(
        "alerts-pg",
        Some(scratch.url().to_string()),
    ));
    c_rt().block_on(scratch.drop_db()).unwrap();
}

fn alerts(c: &Cluster, who: &coffer_net::Identity, query: &str) -> Vec<Value> {
    let v = c.as_(who).ok("GET", &format!("/v1/alerts{query}"), None);
    v["alerts"].as_array().unwrap().clone()
}

fn of_kind<'a>(list: &'a [Value], kind: &str) -> Vec<&'a Value> {
    list.iter().filter(|a| a["kind"] == kind).collect()
}

fn suite(c: &Cluster) {
    let t = tenant(c, "acme");
    let (v, w) = vault(c, &t, "ed25519", "SOL");
    let vid = v["id"].as_str().unwrap();
    let wid = w["id"].as_str().unwrap();
    let approver = &t.approvers[0];

    // Credential and policy changes.
    let all = alerts(c, approver, "?limit=1000");
    let creds = of_kind(&all, "new_credential");
    assert_eq!(creds.len(), 7, "{all:?}");
    assert!(creds.iter().any(
        |a| a["subject"]["credential"] == t.admin.node_key().to_hex() && a["severity"] == "medium"
    ));
    let policy = of_kind(&all, "policy_change");
    assert_eq!(policy.len(), 1, "{all:?}");
    assert_eq!(policy[0]["vault"], vid);
    assert_eq!(policy[0]["evidence"]["version"], 1);

    // Usual withdrawals, then an unusual one to a new destination.
    let mut ids = Vec::new();
    for (n, amount) in [100u128, 110, 95, 105, 90, 100].into_iter().enumerate() {
        let (status, tx) = create_tx(c, &t, &intent(&t, &w, &format!("usual-{n}"), amount));
        assert_eq!(status, 200, "{tx}");
        ids.push(tx["id"].as_str().unwrap().to_string());
    }
    let after_usual = alerts(c, approver, "?limit=1000");
    assert!(
        of_kind(&after_usual, "anomaly").is_empty(),
        "{after_usual:?}"
    );
    let first = of_kind(&after_usual, "first_destination");
    assert_eq!(
        first.len(),
        1,
        "only the first payment to dest-1: {after_usual:?}"
    );
    assert_eq!(first[0]["evidence"]["request"], ids[0].as_str());
    let mut odd = intent(&t, &w, "unusual", 5_000_000);
    odd.destination = "dest-evil".into();
    let (status, tx) = create_tx(c, &t, &odd);
    assert_eq!(status, 200, "alerts never refuse a request: {tx}");
    assert_eq!(tx["state"], "pending_approval");
    let odd_id = tx["id"].as_str().unwrap();

    let high = alerts(c, approver, "?severity=high");
    let anomaly = of_kind(&high, "anomaly");
    assert_eq!(anomaly.len(), 1, "{high:?}");
    let a = anomaly[0];
    assert_eq!(a["severity"], "critical", "{a}");
    assert_eq!(a["wallet"], wid);
    assert_eq!(a["vault"], vid);
    assert_eq!(a["evidence"]["request"], odd_id);
    assert_eq!(a["evidence"]["amount"], "5000000");
    assert_eq!(a["evidence"]["median_amount"], 100.0);
    assert_eq!(a["evidence"]["history_payments"], 6);
    assert!(a["evidence"]["score"].as_f64().unwrap() >= 10.0, "{a}");
    assert!(
        a["evidence"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("5000000"),
        "{a}"
    );
    assert!(high
        .iter()
        .all(|x| x["severity"] == "high" || x["severity"] == "critical"));
    let firsts = of_kind(&alerts(c, approver, "?limit=1000"), "first_destination")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(firsts.len(), 2);
    assert!(
        firsts
            .iter()
            .any(|f| f["evidence"]["destination"] == "dest-evil"
                && f["evidence"]["request"] == odd_id)
    );

    // Working hours: set to the half of the day we are not in, then a request is outside.
    let admin = c.as_(&t.admin);
    let minute = now().rem_euclid(86_400) / 60;
    let hours = if minute < 720 {
        "Mon-Sun 12:00-24:00 +00:00"
    } else {
        "Mon-Sun 00:00-12:00 +00:00"
    };
    let (status, e) = admin.call(
        "PUT",
        "/v1/tenant/working-hours",
        Some(json!({"working_hours": "Mon-Fry 08:00-18:00 +00:00"})),
    );
    assert_eq!(status, 400, "{e}");
    let (status, _) = c.as_(&t.viewer).call(
        "PUT",
        "/v1/tenant/working-hours",
        Some(json!({"working_hours": hours})),
    );
    assert_eq!(status, 403);
    admin.ok(
        "PUT",
        "/v1/tenant/working-hours",
        Some(json!({"working_hours": hours})),
    );
    let (status, _) = create_tx(c, &t, &intent(&t, &w, "late", 101));
    assert_eq!(status, 200);
    let outside = of_kind(&alerts(c, approver, "?limit=1000"), "outside_working_hours")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(outside.len(), 1);
    assert_eq!(
        outside[0]["evidence"]["working_hours"],
        hours.replace("Mon-Sun", "Mon,Tue,Wed,Thu,Fri,Sat,Sun")
    );

    // A burst of badly signed requests from one credential (signed for another path).
    let viewer_key = t.viewer.node_key().to_hex();
    for _ in 0..10 {
        let mut req = ureq::get(&format!("{}/v1/vaults", c.base));
        for (k, v) in coffer_server::auth::sign_request(&t.viewer, "GET", "/v1/whoami", b"") {
            req = req.set(k, &v);
        }
        let (status, _) = send(req, None);
        assert_eq!(status, 401);
    }
    let bursts = of_kind(&alerts(c, approver, "?limit=1000"), "auth_failure_burst")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(
        bursts
            .iter()
            .any(|b| b["subject"]["credential"] == viewer_key
                && b["severity"] == "high"
                && b["evidence"]["count"] == 10),
        "{bursts:?}"
    );
    assert!(
        bursts.iter().any(|b| b["subject"]["source"] == "127.0.0.1"),
        "{bursts:?}"
    );

    // Listing filters and roles.
    let unacked = alerts(c, approver, "?acked=false&limit=1000");
    assert_eq!(unacked.len(), alerts(c, approver, "?limit=1000").len());
    assert_eq!(alerts(c, approver, "?limit=1").len(), 1);
    assert!(alerts(c, approver, "?severity=critical")
        .iter()
        .all(|a| a["severity"] == "critical"));
    for bad in [
        "?severity=urgent",
        "?acked=maybe",
        "?limit=0",
        "?colour=red",
    ] {
        let (status, e) = c
            .as_(approver)
            .call("GET", &format!("/v1/alerts{bad}"), None);
        assert_eq!(status, 400, "{bad}: {e}");
    }
    let (status, _) = c.as_(&t.initiator).call("GET", "/v1/alerts", None);
    assert_eq!(status, 403, "initiators do not see alerts");

    // Acknowledging.
    let id = a["id"].as_str().unwrap();
    let path = format!("/v1/alerts/{id}/ack");
    let (status, e) = c
        .as_(approver)
        .call("POST", &path, Some(json!({"reason": "looked"})));
    assert_eq!(status, 403, "{e}");
    for reason in ["", "   "] {
        let (status, e) = admin.call("POST", &path, Some(json!({"reason": reason})));
        assert_eq!(status, 400, "{e}");
    }
    let (status, _) = admin.call("POST", &path, Some(json!({"reason": "x".repeat(1025)})));
    assert_eq!(status, 400);
    let (status, e) = admin.call(
        "POST",
        "/v1/alerts/al-0000000000000000/ack",
        Some(json!({"reason": "what"})),
    );
    assert_eq!(status, 404, "{e}");
    let acked = admin.ok(
        "POST",
        &path,
        Some(json!({"reason": "called the initiator: a test payment"})),
    );
    assert_eq!(acked["acked_by"], t.admin.node_key().to_hex());
    assert_eq!(acked["ack_reason"], "called the initiator: a test payment");
    let (status, e) = admin.call("POST", &path, Some(json!({"reason": "again"})));
    assert_eq!(status, 409, "{e}");
    let shown = c.as_(approver).ok("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(shown, acked);
    let done = alerts(c, approver, "?acked=true");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["id"], id);
    assert!(alerts(c, approver, "?acked=false&limit=1000")
        .iter()
        .all(|a| a["id"] != id));

    // Another tenant sees none of it.
    let other = tenant(c, "globex");
    let (status, _) = c
        .as_(&other.admin)
        .call("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(status, 404);
    let (status, _) = c
        .as_(&other.admin)
        .call("POST", &path, Some(json!({"reason": "mine?"})));
    assert_eq!(status, 404);
    assert!(alerts(c, &other.admin, "?limit=1000")
        .iter()
        .all(|a| a["tenant"] == other.id.as_str()));

    // Every alert and the acknowledgement are in the audit log, which still verifies.
    audit_ok(c, &t);
    let export = c.as_(&t.auditor).ok("GET", "/v1/audit/export", None);
    let entries = coffer_server::audit::parse_export(export["export"].as_str().unwrap()).unwrap();
    let all = alerts(c, approver, "?limit=1000");
    assert!(all.len() >= 14, "{}", all.len());
    for a in &all {
        let e = entries
            .iter()
            .find(|e| e.action == "alert.raised" && e.object == a["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("alert {} not audited", a["id"]));
        assert_eq!(e.detail["kind"], a["kind"]);
        assert_eq!(e.detail["severity"], a["severity"]);
        assert_eq!(e.detail["evidence"], a["evidence"]);
    }
    assert!(entries
        .iter()
        .any(|e| e.action == "alert.acknowledged" && e.object == id));
    let metrics = ureq::get(&format!("{}/metrics", c.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("coffer_alerts_raised_total ")
                && l.split(' ').nth(1).unwrap().parse::<u64>().unwrap() >= all.len() as u64),
        "{metrics}"
    );
}

/// A row of the audit log changed behind the server's back: verification fails (409) and
/// a critical `audit_chain_failure` alert is raised for the tenant.
fn audit_tamper_raises_a_critical_alert(c: &Cluster) {
    let t = tenant(c, "tampered");
    c.rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", c.dir.join("coffer.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE audit_log SET detail = '{\"forged\":true}' WHERE tenant_id = $1 AND seq = 1",
        )
        .bind(&t.id)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
    let (status, e) = c.as_(&t.auditor).call("GET", "/v1/audit/verify", None);
    assert_eq!(status, 409, "{e}");
    let crit = alerts(c, &t.admin, "?severity=critical");
    let failures = of_kind(&crit, "audit_chain_failure");
    assert_eq!(failures.len(), 1, "{crit:?}");
    assert!(failures[0]["explanation"].as_str().unwrap().contains(&t.id));
}
