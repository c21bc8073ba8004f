//! Vault freeze end to end (server in process, three signer daemons over real TLS): a tenant
//! admin freezes a vault; the server then refuses new requests and approvals of the vault
//! (409), and the signers themselves refuse a signing job the server sends anyway; an
//! unfreeze signed by one admin, or replayed, is refused; one signed by the admin quorum
//! lifts the freeze, the waiting request is signed and verifies; a restarted server sends
//! the latest order again to the reconnecting signers; every step is in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::json;

use coffer_net::frames::{Job, Task};
use coffer_net::freeze::{FreezeKind, FreezeOrder, SignedFreezeOrder};
use coffer_proto::ids::SessionId;

use common::*;

fn unfreeze_doc(
    vault: &serde_json::Value,
    seq: u64,
    admins: &[&coffer_net::Identity],
) -> serde_json::Value {
    let keys: Vec<String> = vault["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_string())
        .collect();
    let order = FreezeOrder::new(
        FreezeKind::Unfreeze,
        vault["id"].as_str().unwrap(),
        keys,
        seq,
        "incident closed",
        now(),
    );
    let mut signed = SignedFreezeOrder::unsigned(order);
    for a in admins {
        signed.add_admin_signature(a).unwrap();
    }
    serde_json::to_value(&signed).unwrap()
}

/// A presignature job (a signing-type session) sent straight to the signers, bypassing the
/// API's own checks, as a compromised server would.
fn presign_anyway(c: &Cluster, key_id: &str) -> Result<(), String> {
    let roster = coffer_server::load_roster(
        &c.dir,
        &coffer_server::load_identity(&c.dir).unwrap().node_key(),
    )
    .unwrap()
    .roster;
    let parties = roster
        .signers
        .iter()
        .take(2)
        .enumerate()
        .map(|(i, s)| (i as u16, s.node_key))
        .collect();
    let job = Job {
        session: SessionId::random(),
        key_id: key_id.to_string(),
        task: Task::Presign { path: "m".into() },
        parties,
        epoch: Some(0),
    };
    let hub = c.hub();
    c.rt.block_on(coffer_server::coordinator::run(
        &hub,
        &roster,
        job,
        std::time::Duration::from_secs(30),
    ))
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn a_frozen_vault_is_refused_by_server_and_signers_until_the_admin_quorum_unfreezes_it() {
    let mut c = Cluster::start("freeze", None);
    let t = tenant(&c, "acme");
    let (v, w) = vault(&c, &t, "ed25519", "SOL");
    let vid = v["id"].as_str().unwrap().to_string();
    let key_id = w["key_id"].as_str().unwrap().to_string();
    let admin = c.as_(&t.admin);

    // A request approved once before the freeze.
    let (status, tx) = create_tx(&c, &t, &intent(&t, &w, "before", 100));
    assert_eq!(status, 200, "{tx}");
    assert_eq!(approve(&c, &t.approvers[0], &tx).0, 200);

    // Only admins and operators freeze; a reason is required.
    let (status, _) = c.as_(&t.approvers[0]).call(
        "POST",
        &format!("/v1/vaults/{vid}/freeze"),
        Some(json!({"reason": "x"})),
    );
    assert_eq!(status, 403);
    let (status, _) = admin.call(
        "POST",
        &format!("/v1/vaults/{vid}/freeze"),
        Some(json!({"reason": " "})),
    );
    assert_eq!(status, 400);

    let frozen = admin.ok(
        "POST",
        &format!("/v1/vaults/{vid}/freeze"),
        Some(json!({"reason": "burst of withdrawals"})),
    );
    assert_eq!(frozen["frozen"], true, "{frozen}");
    assert_eq!(frozen["seq"], 1);
    let acks = frozen["signers"].as_array().unwrap();
    assert_eq!(acks.len(), 3, "{frozen}");
    assert!(acks
        .iter()
        .all(|a| a["refused"].is_null() && a["current_seq"] == 1));
    // Freezing again changes nothing.
    let again = admin.ok(
        "POST",
        &format!("/v1/vaults/{vid}/freeze"),
        Some(json!({"reason": "again"})),
    );
    assert_eq!(
        (again["changed"].clone(), again["seq"].clone()),
        (json!(false), json!(1))
    );
    let shown = c
        .as_(&t.viewer)
        .ok("GET", &format!("/v1/vaults/{vid}"), None);
    assert_eq!(shown["frozen"], true);
    assert_eq!(shown["freeze"]["reason"], "burst of withdrawals");

    // The server refuses new requests and approvals of the frozen vault.
    let (status, refused) = create_tx(&c, &t, &intent(&t, &w, "during", 100));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "vault_frozen");
    let (status, refused) = approve(&c, &t.approvers[1], &tx);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "vault_frozen");
    // A signing job sent anyway is refused by the signers themselves.
    let err = presign_anyway(&c, &key_id).unwrap_err();
    assert!(err.contains(&format!("vault {vid} is frozen")), "{err}");

    // One admin's unfreeze is below the quorum; the server signs no unfreeze of its own.
    let (status, v1) = admin.call(
        "POST",
        &format!("/v1/vaults/{vid}/unfreeze"),
        Some(unfreeze_doc(&shown, 2, &[&c.admins[0]])),
    );
    assert_eq!(status, 400, "{v1}");
    assert!(
        v1["error"]["message"].as_str().unwrap().contains("1 valid"),
        "{v1}"
    );
    // A sequence not above the freeze's is a replay.
    let (status, stale) = admin.call(
        "POST",
        &format!("/v1/vaults/{vid}/unfreeze"),
        Some(unfreeze_doc(&shown, 1, &[&c.admins[0], &c.admins[1]])),
    );
    assert_eq!(status, 409, "{stale}");
    assert_eq!(stale["error"]["code"], "stale_order");

    // The server restarts: the signers reconnect and get the latest order again (they
    // answer it as already in force), and the vault is still frozen.
    c.stop();
    c.restart();
    let shown = c
        .as_(&t.viewer)
        .ok("GET", &format!("/v1/vaults/{vid}"), None);
    assert_eq!(shown["frozen"], true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let acks = c.hub().acks(&vid);
        if acks.len() == 3 && acks.iter().all(|(_, a)| a.seq == 1 && a.refused.is_none()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{acks:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(presign_anyway(&c, &key_id)
        .unwrap_err()
        .contains("is frozen"));

    // Two admins unfreeze: accepted by the server and every signer.
    let doc = unfreeze_doc(&shown, 2, &[&c.admins[1], &c.admins[2]]);
    let admin = c.as_(&t.admin);
    let thawed = admin.ok(
        "POST",
        &format!("/v1/vaults/{vid}/unfreeze"),
        Some(doc.clone()),
    );
    assert_eq!(thawed["frozen"], false, "{thawed}");
    let acks = thawed["signers"].as_array().unwrap();
    assert!(
        acks.iter()
            .all(|a| a["refused"].is_null() && a["current_seq"] == 2),
        "{thawed}"
    );
    // The same unfreeze again is refused.
    let (status, replay) = admin.call("POST", &format!("/v1/vaults/{vid}/unfreeze"), Some(doc));
    assert_eq!(status, 409, "{replay}");

    // Signing works again: the waiting request is approved, signed and verifies.
    let (status, after) = approve(&c, &t.approvers[1], &tx);
    assert_eq!(status, 200, "{after}");
    let signed = wait_state(&c, &t, tx["id"].as_str().unwrap(), &["signed", "failed"]);
    assert_eq!(signed["state"], "signed", "{signed}");
    verify_signature(&signed, "ed25519");
    presign_anyway(&c, &key_id).unwrap();

    // Both steps are in the tenant's audit log, which verifies.
    audit_ok(&c, &t);
    let log = c.as_(&t.auditor).ok("GET", "/v1/audit", None);
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"vault.frozen"), "{actions:?}");
    assert!(actions.contains(&"vault.unfrozen"), "{actions:?}");
    let _ = std::fs::remove_dir_all(&c.dir);
}
