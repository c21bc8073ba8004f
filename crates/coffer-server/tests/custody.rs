//! The custody API end to end, on SQLite and on PostgreSQL (see `common` for the cluster):
//! a tenant, its users, a vault made by DKG, a wallet and an address, a policy signed by the
//! admin quorum, a request approved by two approvers and signed, with the signature checked
//! by an independent verifier and the audit chain verified; tenant isolation route by
//! route; hostile input refused with JSON errors and nothing written; the audit log's
//! checkpoints co-signed by the three signers, which expose a rewritten history.
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
    chain_transactions(&c, &tenant(&c, "initech"));
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
    // The initiator's user with a second, approver credential cannot approve their own
    // request either.
    let ivan_approver = Identity::generate("ivan");
    c.as_(&c.admins[0]).ok(
        "POST",
        "/v1/users",
        Some(json!({"name": "ivan", "role": "approver", "key": ivan_approver.node_key().to_hex(), "tenant": a.id})),
    );
    let current = a_admin.ok("GET", &format!("/v1/vaults/{a_vault}/policy"), None);
    let mut next: coffer_policy::Policy =
        serde_json::from_value(current["document"]["policy"].clone()).unwrap();
    next.version += 1;
    next.groups
        .get_mut("approvers")
        .unwrap()
        .push(coffer_policy::Member {
            name: "ivan".into(),
            key: coffer_policy::PublicKey(ivan_approver.node_key().0),
        });
    let next = SignedPolicy::sign(
        next,
        &[c.admins[1].signing_key(), c.admins[2].signing_key()],
    );
    a_admin.ok(
        "PUT",
        &format!("/v1/vaults/{a_vault}/policy"),
        Some(serde_json::to_value(&next).unwrap()),
    );
    let (_, mine) = create_tx(&c, &a, &intent(&a, &w, "req-self", 3));
    let (status, v) = approve(&c, &ivan_approver, &mine);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("self_approval")),
        "{v}"
    );
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
    checkpoints_pin_the_log(&c, &a);
    // Metrics and the OpenAPI document.
    let (status, metrics) = send(ureq::get(&format!("{}/metrics", c.base)), None);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("coffer_transactions_total{state=\"signed\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("coffer_auth_refused_total"), "{metrics}");
    let (_, doc) = send(ureq::get(&format!("{}/openapi.json", c.base)), None);
    assert_eq!(doc["openapi"], "3.1.0");
}

/// A server that rewrites its own log (an entry changed, every later one re-hashed) cannot
/// get it co-signed: the signers refuse, the refusal is raised in the platform chain, and
/// the server's own verification reports the broken checkpoint.
#[test]
fn a_rewritten_log_is_refused_by_the_signers() {
    use coffer_server::audit::{parse_export_full, verify_chain};
    let c = Cluster::start("rewrite", None);
    let t = tenant(&c, "initech");
    let auditor = c.as_(&t.auditor);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while auditor.ok("GET", "/v1/audit/export", None)["checkpoints"] == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Rewrite entry 1 of the tenant's chain in the database and re-hash everything after.
    let path = c.dir.join("coffer.db");
    c.rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let db = coffer_server::db::Db::open(&path).await.unwrap();
        let mut chain = db.audit_all(&t.id).await.unwrap();
        assert!(chain.len() >= 2);
        for i in 1..chain.len() {
            if i == 1 {
                chain[1].detail = json!({"rewritten": true});
            } else {
                chain[i].prev = chain[i - 1].hash.clone();
            }
            chain[i].hash = chain[i].compute_hash();
            sqlx::query("UPDATE audit_log SET detail = $1, prev = $2, hash = $3 WHERE tenant_id = $4 AND seq = $5")
                .bind(chain[i].detail.to_string())
                .bind(&chain[i].prev)
                .bind(&chain[i].hash)
                .bind(&t.id)
                .bind(chain[i].seq as i64)
                .execute(&pool)
                .await
                .unwrap();
        }
        assert!(verify_chain(&db.audit_all(&t.id).await.unwrap()).is_ok());
        db.close().await;
        pool.close().await;
    });
    // The server's own verification sees the checkpoint no longer matches.
    let (status, v) = auditor.call("GET", "/v1/audit/verify", None);
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rewritten"),
        "{v}"
    );
    // The chain grows: the next checkpoint is refused by the signers, and the refusal is
    // raised in the platform chain.
    let k = Identity::generate("after-rewrite");
    c.as_(&c.admins[0]).ok(
        "POST",
        "/v1/users",
        Some(json!({"name": "after-rewrite", "role": "viewer", "key": k.node_key().to_hex(), "tenant": t.id})),
    );
    let op = c.as_(&c.admins[0]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let refusals = loop {
        let v = op.ok("GET", "/v1/audit/export", None);
        let platform = parse_export_full(v["export"].as_str().unwrap()).unwrap();
        let refusals: Vec<_> = platform
            .entries
            .into_iter()
            .filter(|e| e.action == "audit.checkpoint_refused" && e.object == t.id)
            .collect();
        if refusals.len() == 3 {
            break refusals;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the signers did not refuse: {refusals:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for r in &refusals {
        assert!(
            r.detail["reason"].as_str().unwrap().contains("rewritten"),
            "{r:?}"
        );
    }
    // Raised once per signer and reason, not every round.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let v = op.ok("GET", "/v1/audit/export", None);
    let again = parse_export_full(v["export"].as_str().unwrap())
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == "audit.checkpoint_refused")
        .count();
    assert_eq!(again, 3);
    // The export is refused as broken, and no checkpoint was stored over the rewritten
    // history.
    let (status, v) = auditor.call("GET", "/v1/audit/export", None);
    assert_eq!(status, 409, "{v}");
    c.rt.block_on(async {
        let db = coffer_server::db::Db::open(&path).await.unwrap();
        let count = db.audit_all(&t.id).await.unwrap().len() as u64;
        let checkpoints = db.checkpoints(&t.id).await.unwrap();
        assert!(!checkpoints.is_empty());
        assert!(checkpoints.iter().all(|cp| cp.entries < count));
        db.close().await;
    });
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

/// The signers co-sign the tenant's chain within seconds (the harness checkpoints every
/// second); the export carries the checkpoints, and a history rewritten and re-hashed after
/// the fact passes the plain chain check but not the checkpoints.
fn checkpoints_pin_the_log(c: &Cluster, t: &Tenant) {
    use coffer_server::audit::{
        parse_export_full, to_export_full, verify_chain, verify_export, AuditError,
    };
    let roster = coffer_server::load_roster(
        &c.dir,
        &coffer_server::load_identity(&c.dir).unwrap().node_key(),
    )
    .unwrap()
    .roster;
    let mut signers: Vec<String> = roster.signers.iter().map(|s| s.node_key.to_hex()).collect();
    signers.sort();
    let auditor = c.as_(&t.auditor);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let (text, export) = loop {
        let v = auditor.ok("GET", "/v1/audit/export", None);
        let text = v["export"].as_str().unwrap().to_string();
        let export = parse_export_full(&text).unwrap();
        let by_all = export.checkpoints.iter().any(|cp| {
            let mut keys: Vec<String> =
                cp.signatures.iter().map(|s| s.signer.to_string()).collect();
            keys.sort();
            keys == signers
        });
        if by_all {
            assert_eq!(v["checkpoints"], export.checkpoints.len(), "{v}");
            assert_eq!(v["verified"]["checkpoint_signers"], json!(signers), "{v}");
            break (text, export);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint co-signed by the three signers within 15 s: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let chains = verify_export(&export).unwrap();
    let mine = chains.iter().find(|s| s.tenant == t.id).unwrap();
    assert!(mine.checkpoints >= 1);
    assert_eq!(mine.checkpoint_signers, signers);
    let verified = auditor.ok("GET", "/v1/audit/verify", None);
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(
        verified["chains"][0]["checkpoints"].as_u64().unwrap() >= 1,
        "{verified}"
    );

    // Rewrite entry 1 (covered by every checkpoint) and re-hash it and every later entry,
    // fixing the links, as a server rewriting its own history would.
    let mut forged = parse_export_full(&text).unwrap();
    assert!(forged.checkpoints.iter().all(|cp| cp.entries >= 2));
    for i in 1..forged.entries.len() {
        if i == 1 {
            forged.entries[1].detail = json!({"rewritten": true});
        } else {
            forged.entries[i].prev = forged.entries[i - 1].hash.clone();
        }
        forged.entries[i].hash = forged.entries[i].compute_hash();
    }
    let forged_text = to_export_full(&forged.entries, &forged.checkpoints);
    let forged = parse_export_full(&forged_text).unwrap();
    assert_ne!(forged.entries, export.entries);
    assert!(verify_chain(&forged.entries).is_ok());
    let err = verify_export(&forged).unwrap_err();
    assert!(
        matches!(err, AuditError::CheckpointMismatch { .. }),
        "{err}"
    );

    // The chain grows (a new user): the next checkpoint extends the last one, the signers
    // checking the new entries against the head they co-signed.
    let first = export
        .checkpoints
        .iter()
        .map(|cp| cp.entries)
        .max()
        .unwrap();
    let k = Identity::generate("late-viewer");
    c.as_(&c.admins[0]).ok(
        "POST",
        "/v1/users",
        Some(json!({"name": "late-viewer", "role": "viewer", "key": k.node_key().to_hex(), "tenant": t.id})),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let v = auditor.ok("GET", "/v1/audit/export", None);
        let export = parse_export_full(v["export"].as_str().unwrap()).unwrap();
        let summary = verify_export(&export).unwrap();
        let newest = export
            .checkpoints
            .iter()
            .max_by_key(|cp| cp.entries)
            .unwrap();
        if newest.entries > first {
            assert!(summary[0].checkpoints >= 2);
            assert_eq!(newest.signatures.len(), 3);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint past {first} entries within 15 s: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Nothing was refused along the way (no alarm in the platform chain).
    let platform = c.as_(&c.admins[0]).ok("GET", "/v1/audit/export", None);
    let platform = parse_export_full(platform["export"].as_str().unwrap()).unwrap();
    verify_export(&platform).unwrap();
    assert!(
        !platform
            .entries
            .iter()
            .any(|e| e.action == "audit.checkpoint_refused"),
        "{:?}",
        platform
            .entries
            .iter()
            .filter(|e| e.action == "audit.checkpoint_refused")
            .collect::<Vec<_>>()
    );
}

/// An intent carrying a Solana transfer: the server decodes it under the child key it
/// derives and refuses, before any signing, one that contradicts the intent or needs another
/// key (nothing is written); an honest one is signed and finished into the chain's encoding.
fn chain_transactions(c: &Cluster, t: &Tenant) {
    use coffer_chains::{btc, sol, ChainTx};
    let (_, w) = vault(c, t, "ed25519", "SOL");
    let wid = w["id"].as_str().unwrap();
    let addr = c.as_(&t.admin).ok(
        "POST",
        &format!("/v1/wallets/{wid}/addresses"),
        Some(json!({})),
    );
    let key = hex::decode(addr["public_key"].as_str().unwrap()).unwrap();
    let from = sol::address(&key).unwrap();
    let to = sol::address(&[0x42; 32]).unwrap();
    let transfer = |lamports| {
        ChainTx::solana(&sol::TransferRequest {
            from: from.clone(),
            to: to.clone(),
            lamports,
            recent_blockhash: sol::address(&[0x33; 32]).unwrap(),
        })
        .unwrap()
    };
    let with = |request: &str, amount: u128, tx: &ChainTx| {
        let mut i = intent(t, &w, request, amount);
        i.destination = to.clone();
        i.transaction = Some(tx.to_text());
        i
    };
    let viewer = c.as_(&t.viewer);
    // The amount differs from the transaction's.
    let (status, v) = create_tx(c, t, &with("chain-1", 70, &transfer(71)));
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("amount"),
        "{v}"
    );
    // A Bitcoin spend cannot be signed by the Ed25519 key.
    let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let btc_tx = ChainTx::Bitcoin {
        network: btc::Network::Regtest,
        spend: btc::Spend::P2wpkh,
        psbt: g.into(),
    };
    let (status, v) = create_tx(c, t, &with("chain-2", 70, &btc_tx));
    assert_eq!(status, 400, "{v}");
    // Not JSON of a transaction at all.
    let mut garbage = with("chain-3", 70, &transfer(70));
    garbage.transaction = Some("{\"chain\":\"solana\",\"message\":\"zz\"}".into());
    let (status, v) = create_tx(c, t, &garbage);
    assert_eq!(status, 400, "{v}");
    for r in ["chain-1", "chain-2", "chain-3"] {
        let (status, _) = viewer.call(
            "GET",
            &format!(
                "/v1/transactions/{}",
                coffer_server::custody::transactions::tx_id(&t.id, r)
            ),
            None,
        );
        assert_eq!(status, 404, "nothing was written for {r}");
    }
    // Honest: decoded by the server, approved, signed, finished.
    let (status, tx) = create_tx(c, t, &with("chain-4", 70, &transfer(70)));
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["chain"]["asset"], "SOL", "{tx}");
    assert_eq!(tx["chain"]["destination"], to.as_str(), "{tx}");
    for who in &t.approvers[..2] {
        let (status, v) = approve(c, who, &tx);
        assert_eq!(status, 200, "{v}");
    }
    let done = wait_state(c, t, tx["id"].as_str().unwrap(), &["signed", "failed"]);
    assert_eq!(done["state"], "signed", "{done}");
    let signed = done["signed_tx"].as_str().unwrap();
    assert!(!signed.starts_with("0x") && signed.len() > 100, "{done}");
    assert!(!done["tx_id"].as_str().unwrap().is_empty(), "{done}");
    assert_eq!(done["signatures"].as_array().unwrap().len(), 1);
}
