//! The custody API end to end, on SQLite and on PostgreSQL (see `common` for the cluster):
//! a tenant, its users, a vault made by DKG, a wallet and an address, a policy signed by the
//! admin quorum, a request approved by two approvers and signed, with the signature checked
//! by an independent verifier and the audit chain verified; tenant isolation route by
//! route; hostile input refused with JSON errors and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::json;

use coffer_net::Identity;
use coffer_policy::{Policy, SignedPolicy};

use common::*;

#[test]
fn custody_walkthrough_isolation_and_hostile_input_on_sqlite() {
    suite(Cluster::start("sqlite", None));
}

/// The whole suite on one cluster (SQLite or PostgreSQL).
fn suite(c: Cluster) {
    let a = tenant(&c, "acme");
    let b = tenant(&c, "globex");
    let w = walkthrough(&c, &a, "ed25519");
    walkthrough(&c, &a, "schnorr-bip340");
    let entries_before = audit_ok(&c, &a);

    // Tenant isolation, route by route: B's credentials never see or touch A's objects.
    let a_admin = c.as_(&a.admin);
    let a_vault = w["vault_id"].as_str().unwrap().to_string();
    let a_wallet = w["id"].as_str().unwrap().to_string();
    let a_tx = c.as_(&a.viewer).ok("GET", "/v1/transactions", None)["transactions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for r in coffer_server::openapi::ROUTES {
        let path = r
            .path
            .replace(
                "{id}",
                if r.path.starts_with("/v1/vaults") {
                    &a_vault
                } else if r.path.starts_with("/v1/wallets") {
                    &a_wallet
                } else {
                    &a_tx
                },
            )
            .replace("{key}", &a.approvers[0].node_key().to_hex());
        if !r.path.contains('{') {
            continue;
        }
        for who in [
            &b.admin,
            &b.initiator,
            &b.approvers[0],
            &b.viewer,
            &b.auditor,
        ] {
            let (status, v) = c.as_(who).call(
                &r.method.to_uppercase(),
                &path,
                (r.method != "get").then(|| json!({})),
            );
            assert!(
                matches!(status, 400 | 403 | 404),
                "{} {path} as {}: {status} {v}",
                r.method,
                who.name()
            );
            assert!(v["error"]["code"].is_string(), "{v}");
        }
    }
    // Lists show only the caller's tenant.
    let listed = c.as_(&b.viewer).ok("GET", "/v1/vaults", None);
    assert_eq!(listed["vaults"].as_array().unwrap().len(), 0);
    let listed = c.as_(&b.viewer).ok("GET", "/v1/transactions", None);
    assert_eq!(listed["transactions"].as_array().unwrap().len(), 0);

    // Every documented route exists (unsigned: 401, or 200 for the public ones).
    for r in coffer_server::openapi::ROUTES {
        let path = r.path.replace("{id}", "x").replace("{key}", "x");
        let req = ureq::request(&r.method.to_uppercase(), &format!("{}{path}", c.base));
        let (status, _) = send(req, (r.method != "get").then_some(b"{}".as_slice()));
        let expected = if r.roles.is_empty() { 200 } else { 401 };
        assert_eq!(status, expected, "{} {path}", r.method);
    }

    // Hostile input: 4xx JSON errors, nothing written.
    let ivan = c.as_(&a.initiator);
    let count = |c: &Cluster| {
        c.as_(&a.viewer).ok("GET", "/v1/transactions", None)["transactions"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count(&c);
    let good = intent(&a, &w, "req-hostile", 10);
    let sig = coffer_policy::sign_initiation(a.initiator.signing_key(), &good);
    let mut body = json!({"intent": good, "initiator_signature": sig});
    for (label, mutate, code) in [
        ("malformed", None, 400),
        ("unknown field", Some(("extra", json!(1))), 400),
        ("negative amount", Some(("amount", json!("-5"))), 400),
        ("fractional amount", Some(("amount", json!("1.5"))), 400),
        ("amount as a number", Some(("amount", json!(5))), 400),
        (
            "overflowing amount",
            Some(("amount", json!("340282366920938463463374607431768211456"))),
            400,
        ),
        ("unknown wallet", Some(("wallet_id", json!("w-nope"))), 400),
    ] {
        let bytes = match mutate {
            None => b"{\"intent\": ".to_vec(),
            Some((field, value)) => {
                let mut b = body.clone();
                b["intent"][field] = value;
                b.to_string().into_bytes()
            }
        };
        let (status, v) = ivan.raw("POST", "/v1/transactions", &bytes);
        assert_eq!(status, code, "{label}: {v}");
        assert!(v["error"]["message"].is_string(), "{label}: {v}");
    }
    let (status, v) = ivan.raw("POST", "/v1/transactions", &vec![b' '; 70 * 1024]);
    assert_eq!(status, 413, "{v}");
    // An intent signed by someone else, and one altered after signing.
    body["intent"]["amount"] = json!("11");
    let (status, v) = ivan.call("POST", "/v1/transactions", Some(body.clone()));
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{v}"
    );
    // Unknown ids.
    let (status, _) = ivan.call("GET", "/v1/transactions/tx-nope", None);
    assert_eq!(status, 404);
    // A wrong signature, a stale timestamp, a replayed request, an unknown key.
    let path = "/v1/vaults";
    let mut headers = coffer_server::auth::sign_request(&a.viewer, "GET", path, b"");
    let replay = headers.clone();
    let mut req = ureq::get(&format!("{}{path}", c.base));
    for (k, v) in &replay {
        req = req.set(k, v);
    }
    assert_eq!(send(req, None).0, 200);
    let mut req = ureq::get(&format!("{}{path}", c.base));
    for (k, v) in &replay {
        req = req.set(k, v);
    }
    let (status, v) = send(req, None);
    assert_eq!(status, 401);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("replay"),
        "{v}"
    );
    for h in headers.iter_mut() {
        if h.0 == coffer_server::auth::TIMESTAMP {
            h.1 = (now() - 3600).to_string();
        }
    }
    let mut req = ureq::get(&format!("{}{path}", c.base));
    for (k, v) in &headers {
        req = req.set(k, v);
    }
    assert_eq!(send(req, None).0, 401);
    let stranger = Identity::generate("stranger");
    assert_eq!(c.as_(&stranger).call("GET", path, None).0, 401);
    assert_eq!(count(&c), before, "no request was written");
    // Roles: a viewer cannot create vaults, an approver cannot initiate.
    assert_eq!(
        c.as_(&a.viewer)
            .call("POST", "/v1/vaults", Some(json!({"name": "x"})))
            .0,
        403
    );
    let (status, _) = create_tx(
        &c,
        &Tenant {
            initiator: a.approvers[0].clone_identity(),
            ..tenant_view(&a)
        },
        &good,
    );
    assert_eq!(status, 403);
    // A policy signed by one admin only is refused.
    let short = SignedPolicy::sign(
        Policy {
            vault_id: a_vault.clone(),
            version: 9,
            groups: Default::default(),
            initiator_groups: vec![],
            rules: vec![],
        },
        &[c.admins[0].signing_key()],
    );
    let (status, v) = a_admin.call(
        "PUT",
        &format!("/v1/vaults/{a_vault}/policy"),
        Some(serde_json::to_value(&short).unwrap()),
    );
    assert_eq!(status, 400, "{v}");

    // Refused authentications were recorded, and the chain still verifies.
    let entries_after = audit_ok(&c, &a);
    assert!(entries_after > entries_before);
    let platform = c.as_(&c.admins[0]).ok("GET", "/v1/audit", None);
    assert!(
        platform["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "auth.refused"),
        "{platform}"
    );
    // Metrics and the OpenAPI document.
    let (status, metrics) = send(ureq::get(&format!("{}/metrics", c.base)), None);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("coffer_transactions_total{state=\"signed\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("coffer_auth_refused_total"), "{metrics}");
    let (_, doc) = send(ureq::get(&format!("{}/openapi.json", c.base)), None);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn custody_walkthrough_isolation_and_hostile_input_on_postgresql() {
    let scratch = match c_rt().block_on(coffer_server::db::testing::postgres_scratch()) {
        Ok(s) => s,
        Err(why) => {
            coffer_server::db::testing::not_run("custody", &why);
            return;
        }
    };
    suite(Cluster::start("pg", Some(scratch.url().to_string())));
    c_rt().block_on(scratch.drop_db()).unwrap();
}
