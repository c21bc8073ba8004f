//! The database layer on both backends: one suite exercising every method, run on a fresh
//! SQLite file and on a scratch PostgreSQL database (skipped, saying why, when no server is
//! reachable, unless `COFFER_REQUIRE_POSTGRES=1`), plus concurrent audit appends, migration
//! idempotence, and the upgrade of a database made before migrations existed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use coffer_net::Identity;
use coffer_proto::scheme::Scheme;
use coffer_server::audit::{verify_chain, AuditEvent, PLATFORM};
use coffer_server::db::testing::postgres_scratch;
use coffer_server::db::{
    AddressRecord, ApprovalRecord, Backend, CredentialRecord, Db, KeyRecord, PolicyRecord,
    ReceiptRecord, TenantRecord, TxRecord, UserRecord, VaultRecord, WalletRecord,
};
use serde_json::json;

fn rand_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    hex::encode(b)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coffer-db-{}", rand_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key_record(id: &str, scheme: Scheme, created_at: i64) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        scheme,
        threshold: 2,
        parties: (0..3)
            .map(|i| Identity::generate(&format!("s{i}")).node_key())
            .collect(),
        public_key: "02".to_string() + &"ab".repeat(32),
        chain_code: "cc".repeat(32),
        epoch: 0,
        removed: vec![],
        created_at,
    }
}

fn event(tenant: &str, action: &str, object: &str) -> AuditEvent {
    AuditEvent {
        tenant: tenant.into(),
        actor: "server".into(),
        action: action.into(),
        object: object.into(),
        detail: json!({"amount": "1500", "nested": {"z": 1, "a": [true, null, "x"]}, "n": -3}),
    }
}

fn tx_record(
    id: &str,
    tenant: &str,
    vault: &str,
    wallet: &str,
    key: &str,
    state: &str,
    at: i64,
) -> TxRecord {
    TxRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        vault_id: vault.into(),
        wallet_id: wallet.into(),
        key_id: key.into(),
        intent: json!({"to": "bc1q", "amount": "5"}).to_string(),
        intent_hash: "11".repeat(32),
        initiator: "aa".repeat(32),
        initiator_signature: "bb".repeat(64),
        state: state.into(),
        rule: None,
        reason: None,
        policy_version: 1,
        seq: None,
        receipt_body: None,
        signature: None,
        recovery_id: None,
        signers: None,
        signatures: None,
        signed_tx: None,
        chain_tx_id: None,
        attempts: 0,
        created_at: at,
        updated_at: at,
        expires_at: at + 100,
    }
}

/// Every method of [`Db`] and [`coffer_server::db::DbTx`], on a fresh database.
async fn suite(db: Db) {
    assert_eq!(
        db.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );

    // --- Legacy key, signature and presignature records ---
    let k1 = key_record("k-ecdsa", Scheme::EcdsaSecp256k1, 10);
    db.insert_key(&k1).await.unwrap();
    assert_eq!(db.key("k-ecdsa").await.unwrap(), Some(k1.clone()));
    assert_eq!(db.key("nope").await.unwrap(), None);
    let dup = db.insert_key(&k1).await.unwrap_err();
    assert!(dup.is_conflict(), "{dup}");
    db.set_epoch("k-ecdsa", 3).await.unwrap();
    db.set_reshared("k-ecdsa", 4, &[2]).await.unwrap();
    let k1_now = db.key("k-ecdsa").await.unwrap().unwrap();
    assert_eq!((k1_now.epoch, k1_now.removed.clone()), (4, vec![2]));
    for (path, msg) in [("m/0", "aa"), ("m/1", "bb"), ("m/0", "cc")] {
        db.insert_signature("k-ecdsa", path, msg, "sig", &["s0".into(), "s1".into()])
            .await
            .unwrap();
    }
    assert_eq!(db.signature_count("k-ecdsa").await.unwrap(), 3);
    assert_eq!(db.signature_count("nope").await.unwrap(), 0);
    assert_eq!(
        db.recent_paths("k-ecdsa", 10).await.unwrap(),
        vec!["m/0", "m/1"]
    );
    assert_eq!(db.recent_paths("k-ecdsa", 1).await.unwrap(), vec!["m/0"]);
    db.insert_presignature("p1", "k-ecdsa", "m/0", &[0, 1])
        .await
        .unwrap();
    db.insert_presignature("p2", "k-ecdsa", "m/0", &[1, 2])
        .await
        .unwrap();
    assert_eq!(db.presignatures_ready("k-ecdsa", "m/0").await.unwrap(), 2);
    let claimed = db
        .claim_presignature("k-ecdsa", "m/0", |s| !s.contains(&0))
        .await
        .unwrap();
    assert_eq!(claimed, Some(("p2".to_string(), vec![1, 2])));
    assert_eq!(db.presignatures_ready("k-ecdsa", "m/0").await.unwrap(), 1);
    assert_eq!(
        db.claim_presignature("k-ecdsa", "m/0", |s| !s.contains(&0))
            .await
            .unwrap(),
        None
    );
    db.discard_presignatures("k-ecdsa").await.unwrap();
    assert_eq!(db.presignatures_ready("k-ecdsa", "m/0").await.unwrap(), 0);
    assert_eq!(db.keys().await.unwrap().len(), 1);

    // --- Tenants ---
    let t1 = TenantRecord {
        id: "t-1".into(),
        name: "acme".into(),
        created_at: 100,
    };
    let t2 = TenantRecord {
        id: "t-2".into(),
        name: "globex".into(),
        created_at: 101,
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_tenant(&t1).await.unwrap();
    tx.insert_tenant(&t2).await.unwrap();
    let e0 = tx
        .append_audit(event(PLATFORM, "tenant.created", "t-1"), 100)
        .await
        .unwrap();
    let e1 = tx
        .append_audit(event("t-1", "tenant.created", "t-1"), 100)
        .await
        .unwrap();
    assert_eq!((e0.seq, e1.seq), (0, 0));
    tx.commit().await.unwrap();
    assert_eq!(db.tenants().await.unwrap(), vec![t1.clone(), t2.clone()]);
    assert_eq!(db.tenant("t-2").await.unwrap(), Some(t2.clone()));
    assert_eq!(db.tenant("t-9").await.unwrap(), None);
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_tenant(&TenantRecord {
            id: "t-3".into(),
            name: "acme".into(),
            created_at: 1,
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    drop(tx);

    // Foreign keys are enforced (and a violation is not a "conflict").
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_user(&UserRecord {
            id: "u-x".into(),
            tenant_id: "t-none".into(),
            name: "x".into(),
            created_at: 1,
        })
        .await
        .unwrap_err();
    assert!(!err.is_conflict(), "{err}");
    drop(tx);

    // --- Users and credentials ---
    let u1 = UserRecord {
        id: "u-1".into(),
        tenant_id: "t-1".into(),
        name: "alice".into(),
        created_at: 110,
    };
    let u2 = UserRecord {
        id: "u-2".into(),
        tenant_id: "t-2".into(),
        name: "alice".into(),
        created_at: 111,
    };
    let c1 = CredentialRecord {
        key: "c1".repeat(32),
        tenant_id: "t-1".into(),
        user_id: "u-1".into(),
        role: "admin".into(),
        created_at: 112,
        disabled: false,
    };
    let c2 = CredentialRecord {
        key: "c2".repeat(32),
        role: "approver".into(),
        created_at: 113,
        ..c1.clone()
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_user(&u1).await.unwrap();
    tx.insert_user(&u2).await.unwrap(); // same name, other tenant
    tx.insert_credential(&c1).await.unwrap();
    tx.insert_credential(&c2).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.users("t-1").await.unwrap(), vec![u1.clone()]);
    assert_eq!(db.users("t-2").await.unwrap(), vec![u2.clone()]);
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_user(&UserRecord {
            id: "u-3".into(),
            ..u1.clone()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_credential(&CredentialRecord {
            tenant_id: "t-2".into(),
            user_id: "u-2".into(),
            ..c1.clone()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    drop(tx);
    assert_eq!(db.credential(&c1.key).await.unwrap(), Some(c1.clone()));
    assert_eq!(db.credential("ff").await.unwrap(), None);
    assert_eq!(
        db.credentials("t-1").await.unwrap(),
        vec![c1.clone(), c2.clone()]
    );
    assert_eq!(db.credentials("t-2").await.unwrap(), vec![]);
    let mut tx = db.begin().await.unwrap();
    assert!(tx.set_credential_disabled(&c2.key, true).await.unwrap());
    assert!(!tx.set_credential_disabled("ff", true).await.unwrap());
    tx.commit().await.unwrap();
    assert!(db.credential(&c2.key).await.unwrap().unwrap().disabled);
    let mut tx = db.begin().await.unwrap();
    tx.set_credential_disabled(&c2.key, false).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!db.credential(&c2.key).await.unwrap().unwrap().disabled);

    // --- Vaults (with a key inserted in the same transaction) ---
    let k2 = key_record("k-ed", Scheme::Ed25519, 120);
    let v1 = VaultRecord {
        id: "v-1".into(),
        tenant_id: "t-1".into(),
        name: "treasury".into(),
        created_at: 121,
        keys: vec![
            ("ecdsa-secp256k1".into(), "k-ecdsa".into()),
            ("ed25519".into(), "k-ed".into()),
        ],
    };
    let v2 = VaultRecord {
        id: "v-2".into(),
        tenant_id: "t-2".into(),
        keys: vec![],
        ..v1.clone()
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_key(&k2).await.unwrap();
    tx.insert_vault(&v1).await.unwrap();
    tx.insert_vault(&v2).await.unwrap(); // same name, other tenant
    tx.commit().await.unwrap();
    assert_eq!(db.key("k-ed").await.unwrap(), Some(k2.clone()));
    assert_eq!(db.vaults("t-1").await.unwrap(), vec![v1.clone()]);
    assert_eq!(db.vaults("t-2").await.unwrap(), vec![v2.clone()]);
    assert_eq!(db.vault("t-1", "v-1").await.unwrap(), Some(v1.clone()));
    assert_eq!(
        db.vault("t-2", "v-1").await.unwrap(),
        None,
        "tenant scoping"
    );
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_vault(&VaultRecord {
            id: "v-3".into(),
            keys: vec![],
            ..v1.clone()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    drop(tx);

    // --- Wallets and addresses ---
    let mut tx = db.begin().await.unwrap();
    assert_eq!(tx.next_wallet_index("v-1").await.unwrap(), 0);
    let w0 = WalletRecord {
        id: "w-0".into(),
        tenant_id: "t-1".into(),
        vault_id: "v-1".into(),
        name: "hot".into(),
        scheme: "ecdsa-secp256k1".into(),
        asset: "BTC".into(),
        index: 0,
        chain: Some("bitcoin".into()),
        network: Some("regtest".into()),
        created_at: 130,
    };
    tx.insert_wallet(&w0).await.unwrap();
    assert_eq!(tx.next_wallet_index("v-1").await.unwrap(), 1);
    let w1 = WalletRecord {
        id: "w-1".into(),
        name: "cold".into(),
        index: 1,
        chain: None,
        network: None,
        created_at: 131,
        ..w0.clone()
    };
    tx.insert_wallet(&w1).await.unwrap();
    assert_eq!(tx.next_address_index("w-0").await.unwrap(), 0);
    let a0 = AddressRecord {
        wallet_id: "w-0".into(),
        index: 0,
        path: "m/0/0".into(),
        public_key: "02".repeat(33),
        created_at: 132,
    };
    tx.insert_address(&a0).await.unwrap();
    assert_eq!(tx.next_address_index("w-0").await.unwrap(), 1);
    let a1 = AddressRecord {
        index: 1,
        path: "m/0/1".into(),
        ..a0.clone()
    };
    tx.insert_address(&a1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        db.wallets("t-1", "v-1").await.unwrap(),
        vec![w0.clone(), w1.clone()]
    );
    assert_eq!(
        db.wallets("t-2", "v-1").await.unwrap(),
        vec![],
        "tenant scoping"
    );
    assert_eq!(db.wallet("t-1", "w-1").await.unwrap(), Some(w1.clone()));
    assert_eq!(
        db.wallet("t-2", "w-1").await.unwrap(),
        None,
        "tenant scoping"
    );
    assert_eq!(
        db.addresses("w-0").await.unwrap(),
        vec![a0.clone(), a1.clone()]
    );
    assert_eq!(db.addresses("w-1").await.unwrap(), vec![]);
    for dup in [
        WalletRecord {
            id: "w-9".into(),
            index: 7,
            ..w0.clone()
        },
        WalletRecord {
            id: "w-9".into(),
            name: "other".into(),
            ..w0.clone()
        },
    ] {
        let mut tx = db.begin().await.unwrap();
        let err = tx.insert_wallet(&dup).await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
    }
    let mut tx = db.begin().await.unwrap();
    assert!(tx.insert_address(&a0).await.unwrap_err().is_conflict());
    drop(tx);

    // --- Policies ---
    assert_eq!(db.current_policy("v-1").await.unwrap(), None);
    let p1 = PolicyRecord {
        vault_id: "v-1".into(),
        version: 1,
        document: json!({"version": 1}).to_string(),
        hash: "01".repeat(32),
        created_by: c1.key.clone(),
        created_at: 140,
    };
    let p2 = PolicyRecord {
        version: 2,
        document: json!({"version": 2}).to_string(),
        created_at: 141,
        ..p1.clone()
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_policy(&p1).await.unwrap();
    tx.insert_policy(&p2).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.current_policy("v-1").await.unwrap(), Some(p2.clone()));
    assert_eq!(
        db.policies("v-1").await.unwrap(),
        vec![p1.clone(), p2.clone()]
    );
    assert_eq!(db.policies("v-2").await.unwrap(), vec![]);
    let mut tx = db.begin().await.unwrap();
    assert!(tx.insert_policy(&p1).await.unwrap_err().is_conflict());
    drop(tx);

    // --- Transaction requests ---
    let r1 = tx_record(
        "tx-1",
        "t-1",
        "v-1",
        "w-0",
        "k-ecdsa",
        "pending_approval",
        200,
    );
    let r2 = tx_record("tx-2", "t-1", "v-1", "w-0", "k-ecdsa", "approved", 210);
    let r3 = tx_record("tx-3", "t-1", "v-1", "w-1", "k-ecdsa", "rejected", 220);
    let r4 = tx_record("tx-4", "t-2", "v-2", "w-0", "k-ecdsa", "approved", 205);
    let mut tx = db.begin().await.unwrap();
    for r in [&r1, &r2, &r3, &r4] {
        tx.insert_tx(r).await.unwrap();
    }
    tx.append_audit(event("t-1", "transaction.created", "tx-1"), 200)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let err = tx.insert_tx(&r1).await.unwrap_err();
    assert!(err.is_conflict(), "duplicate tx id: {err}");
    drop(tx);
    assert_eq!(db.tx("t-1", "tx-1").await.unwrap(), Some(r1.clone()));
    assert_eq!(db.tx("t-2", "tx-1").await.unwrap(), None, "tenant scoping");

    // Compare-and-set.
    let mut tx = db.begin().await.unwrap();
    assert!(!tx
        .transition("tx-1", &["approved"], "signing", None, 300)
        .await
        .unwrap());
    assert!(!tx
        .transition("tx-nope", &["pending_approval"], "approved", None, 300)
        .await
        .unwrap());
    assert!(!tx
        .transition("tx-1", &[], "approved", None, 300)
        .await
        .unwrap());
    assert!(tx
        .transition(
            "tx-1",
            &["pending_approval", "approved"],
            "approved",
            None,
            301
        )
        .await
        .unwrap());
    assert!(!tx
        .transition("tx-1", &["pending_approval"], "approved", None, 302)
        .await
        .unwrap());
    tx.set_policy_outcome("tx-1", Some("large"), 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let got = db.tx("t-1", "tx-1").await.unwrap().unwrap();
    assert_eq!(
        (
            got.state.as_str(),
            got.updated_at,
            got.rule.as_deref(),
            got.policy_version,
            got.reason.as_deref()
        ),
        ("approved", 301, Some("large"), 2, None)
    );

    // Signing, a retry, the signature.
    let mut tx = db.begin().await.unwrap();
    tx.set_signing("tx-1", 5, "{\"seq\":5}", 310).await.unwrap();
    tx.note_attempt("tx-1", 311).await.unwrap();
    tx.commit().await.unwrap();
    let got = db.tx("t-1", "tx-1").await.unwrap().unwrap();
    assert_eq!(
        (
            got.state.as_str(),
            got.seq,
            got.receipt_body.as_deref(),
            got.attempts,
            got.updated_at
        ),
        ("signing", Some(5), Some("{\"seq\":5}"), 2, 311)
    );
    let mut tx = db.begin().await.unwrap();
    let finished = coffer_chains::Finished {
        signed_tx: "0200".into(),
        tx_id: "ab".repeat(32),
    };
    tx.set_signed(
        "tx-1",
        &coffer_server::db::Signed {
            signatures: &["5a".repeat(64), "5b".repeat(64)],
            recovery_id: Some(1),
            signers: &["s0".into(), "s2".into()],
            finished: Some(&finished),
        },
        320,
    )
    .await
    .unwrap();
    tx.set_policy_outcome("tx-3", None, 2).await.unwrap();
    assert!(tx
        .transition("tx-3", &["rejected"], "failed", Some("why not"), 321)
        .await
        .unwrap());
    assert!(tx
        .transition("tx-3", &["failed"], "failed", None, 322)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let got = db.tx("t-1", "tx-1").await.unwrap().unwrap();
    assert_eq!(got.state, "signed");
    assert_eq!(got.signature, Some("5a".repeat(64)));
    assert_eq!(got.recovery_id, Some(1));
    assert_eq!(got.signed_tx.as_deref(), Some("0200"));
    assert_eq!(got.chain_tx_id, Some("ab".repeat(32)));
    let all: Vec<String> = serde_json::from_str(got.signatures.as_deref().unwrap()).unwrap();
    assert_eq!(all, vec!["5a".repeat(64), "5b".repeat(64)]);
    let signers: Vec<String> = serde_json::from_str(got.signers.as_deref().unwrap()).unwrap();
    assert_eq!(signers, vec!["s0", "s2"]);
    let got3 = db.tx("t-1", "tx-3").await.unwrap().unwrap();
    assert_eq!(
        (got3.reason.as_deref(), got3.rule),
        (Some("why not"), None),
        "None keeps the reason"
    );

    let ids = |v: Vec<TxRecord>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.txs("t-1", None, 10).await.unwrap()),
        vec!["tx-3", "tx-2", "tx-1"]
    );
    assert_eq!(
        ids(db.txs("t-1", None, 2).await.unwrap()),
        vec!["tx-3", "tx-2"]
    );
    assert_eq!(
        ids(db.txs("t-1", Some("signed"), 10).await.unwrap()),
        vec!["tx-1"]
    );
    assert_eq!(ids(db.txs("t-2", None, 10).await.unwrap()), vec!["tx-4"]);
    assert_eq!(
        ids(db.txs_in_states(&["approved", "signing"]).await.unwrap()),
        vec!["tx-4", "tx-2"],
        "every tenant, oldest first"
    );
    assert!(db.txs_in_states(&[]).await.unwrap().is_empty());
    // r2 (approved) expires at 310, r4 (approved) at 305; tx-1 is signed.
    assert_eq!(ids(db.expirable(304).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(db.expirable(305).await.unwrap()), vec!["tx-4"]);
    assert_eq!(ids(db.expirable(1000).await.unwrap()), vec!["tx-4", "tx-2"]);
    assert_eq!(
        db.tx_counts("t-1").await.unwrap(),
        vec![
            ("approved".to_string(), 1),
            ("failed".to_string(), 1),
            ("signed".to_string(), 1)
        ]
    );
    assert!(db.tx_counts("t-9").await.unwrap().is_empty());

    // --- Approvals ---
    let ap1 = ApprovalRecord {
        tx_id: "tx-2".into(),
        approver: "a1".repeat(32),
        decision: "approve".into(),
        expires_at: 999,
        signature: "ee".repeat(64),
        reason: None,
        created_at: 400,
    };
    let ap2 = ApprovalRecord {
        approver: "a2".repeat(32),
        decision: "reject".into(),
        reason: Some("no".into()),
        created_at: 401,
        ..ap1.clone()
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_approval(&ap1).await.unwrap();
    tx.insert_approval(&ap2).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let err = tx
        .insert_approval(&ApprovalRecord {
            decision: "reject".into(),
            ..ap1.clone()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "second decision by one approver: {err}");
    drop(tx);
    assert_eq!(
        db.approvals("tx-2").await.unwrap(),
        vec![ap1.clone(), ap2.clone()]
    );
    assert!(db.approvals("tx-1").await.unwrap().is_empty());

    // --- Receipts ---
    assert_eq!(db.last_receipt("k-ecdsa").await.unwrap(), None);
    assert_eq!(db.receipt_seq_before("k-ecdsa", 1000).await.unwrap(), None);
    let receipts: Vec<ReceiptRecord> = (0..3u64)
        .map(|i| ReceiptRecord {
            key_id: "k-ecdsa".into(),
            seq: i,
            body: json!({"seq": i}).to_string(),
            signatures: json!([format!("sig{i}")]).to_string(),
            at: 100 * (i as i64 + 1),
        })
        .collect();
    let mut tx = db.begin().await.unwrap();
    for r in &receipts {
        tx.insert_receipt(r).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(tx
        .insert_receipt(&receipts[1])
        .await
        .unwrap_err()
        .is_conflict());
    drop(tx);
    assert_eq!(
        db.last_receipt("k-ecdsa").await.unwrap(),
        Some(receipts[2].clone())
    );
    assert_eq!(
        db.receipts_from("k-ecdsa", 1).await.unwrap(),
        receipts[1..].to_vec()
    );
    assert_eq!(db.receipts_from("k-ecdsa", 0).await.unwrap(), receipts);
    assert!(db.receipts_from("k-ecdsa", 3).await.unwrap().is_empty());
    assert!(db.receipts_from("k-ed", 0).await.unwrap().is_empty());
    assert_eq!(db.receipt_seq_before("k-ecdsa", 100).await.unwrap(), None);
    assert_eq!(
        db.receipt_seq_before("k-ecdsa", 101).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        db.receipt_seq_before("k-ecdsa", 250).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        db.receipt_seq_before("k-ecdsa", 1000).await.unwrap(),
        Some(2)
    );

    // --- A rolled-back transaction leaves nothing ---
    let before = db.audit_all("t-1").await.unwrap();
    let mut tx = db.begin().await.unwrap();
    tx.insert_tx(&tx_record(
        "tx-rb",
        "t-1",
        "v-1",
        "w-0",
        "k-ecdsa",
        "pending_approval",
        500,
    ))
    .await
    .unwrap();
    tx.append_audit(event("t-1", "transaction.created", "tx-rb"), 500)
        .await
        .unwrap();
    drop(tx); // no commit
    assert_eq!(db.tx("t-1", "tx-rb").await.unwrap(), None);
    assert_eq!(db.audit_all("t-1").await.unwrap(), before);
    let mut tx = db.begin().await.unwrap();
    tx.append_audit(event("t-1", "x.y", "z"), 501)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(db.audit_all("t-1").await.unwrap(), before);

    // --- The audit chain, appended over several transactions ---
    for i in 0..3 {
        let mut tx = db.begin().await.unwrap();
        tx.append_audit(event("t-1", "vault.created", &format!("v-{i}")), 600 + i)
            .await
            .unwrap();
        tx.append_audit(event("t-2", "vault.created", &format!("v-{i}")), 600 + i)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let refused = db
        .append_audit(event(PLATFORM, "auth.refused", ""), 700)
        .await
        .unwrap();
    assert_eq!(refused.seq, 1);
    let all1 = db.audit_all("t-1").await.unwrap();
    assert_eq!(all1.len(), 5);
    assert_eq!(
        all1.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(
        all1[2].detail,
        event("t-1", "", "").detail,
        "detail round-trips"
    );
    let summary = verify_chain(&all1).unwrap();
    assert_eq!(
        (summary[0].entries, summary[0].head.clone()),
        (5, all1[4].hash.clone())
    );
    let mut everything = Vec::new();
    for t in db.audit_tenants().await.unwrap() {
        everything.extend(db.audit_all(&t).await.unwrap());
    }
    assert_eq!(verify_chain(&everything).unwrap().len(), 3);
    assert_eq!(
        db.audit_tenants().await.unwrap(),
        vec![PLATFORM, "t-1", "t-2"]
    );
    assert_eq!(db.audit("t-1", None, 2).await.unwrap(), all1[..2].to_vec());
    assert_eq!(
        db.audit("t-1", Some(1), 100).await.unwrap(),
        all1[2..].to_vec()
    );
    assert_eq!(db.audit("t-1", Some(4), 100).await.unwrap(), vec![]);
    assert_eq!(db.audit("t-9", None, 100).await.unwrap(), vec![]);
    assert_eq!(
        db.audit_from("t-1", 3, 100).await.unwrap(),
        all1[3..].to_vec()
    );
    assert_eq!(
        db.audit_from("t-1", 1, 2).await.unwrap(),
        all1[1..3].to_vec()
    );
    assert_eq!(db.audit_head("t-1").await.unwrap().as_ref(), all1.last());
    assert_eq!(db.audit_head("t-9").await.unwrap(), None);
    checkpoints(&db, &all1).await;
}

/// Checkpoints: stored with their signatures, merged when a signer co-signs the same point
/// later, and each signer's highest co-signed point found from the signatures.
async fn checkpoints(db: &Db, chain: &[coffer_server::audit::AuditEntry]) {
    use coffer_policy::PublicKey;
    use coffer_server::audit::{
        sign_checkpoint, verify_export, Checkpoint, CheckpointSignature, Export,
    };
    let signers: Vec<Identity> = (0..3)
        .map(|i| Identity::generate(&format!("s{i}")))
        .collect();
    let pk = |i: usize| PublicKey(signers[i].node_key().0);
    let at = |n: u64, who: &[usize]| Checkpoint {
        tenant: "t-1".into(),
        entries: n,
        head: chain[n as usize - 1].hash.clone(),
        signatures: who
            .iter()
            .map(|i| CheckpointSignature {
                signer: pk(*i),
                signature: sign_checkpoint(
                    signers[*i].signing_key(),
                    "t-1",
                    n,
                    &chain[n as usize - 1].hash,
                ),
            })
            .collect(),
    };
    assert_eq!(db.last_checkpoint("t-1").await.unwrap(), None);
    assert_eq!(db.last_cosigned("t-1", &pk(0)).await.unwrap(), None);
    let mut tx = db.begin().await.unwrap();
    tx.insert_checkpoint(&at(2, &[0, 1, 2]), 800).await.unwrap();
    tx.insert_checkpoint(&at(4, &[0, 1]), 801).await.unwrap();
    tx.commit().await.unwrap();
    // Signer 2 co-signs 4 later: the same checkpoint gains its signature.
    let mut tx = db.begin().await.unwrap();
    tx.insert_checkpoint(&at(4, &[2, 1]), 802).await.unwrap();
    tx.commit().await.unwrap();
    // Another head at a point already checkpointed is refused.
    let mut other = at(5, &[0]);
    other.entries = 4;
    let mut tx = db.begin().await.unwrap();
    assert!(tx.insert_checkpoint(&other, 803).await.is_err());
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    tx.insert_checkpoint(&at(5, &[0]), 804).await.unwrap();
    tx.commit().await.unwrap();

    let all = db.checkpoints("t-1").await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.entries).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    assert_eq!(all[1].signatures.len(), 3);
    assert_eq!(all[1], {
        let mut merged = at(4, &[0, 1]);
        merged.signatures.push(at(4, &[2]).signatures[0].clone());
        merged
    });
    assert_eq!(db.last_checkpoint("t-1").await.unwrap(), Some(at(5, &[0])));
    assert_eq!(db.last_cosigned("t-1", &pk(0)).await.unwrap(), Some(5));
    assert_eq!(db.last_cosigned("t-1", &pk(1)).await.unwrap(), Some(4));
    assert_eq!(db.last_cosigned("t-1", &pk(2)).await.unwrap(), Some(4));
    assert_eq!(db.last_cosigned("t-2", &pk(0)).await.unwrap(), None);
    assert!(db.checkpoints("t-2").await.unwrap().is_empty());
    let summary = verify_export(&Export {
        entries: chain.to_vec(),
        checkpoints: all,
    })
    .unwrap();
    assert_eq!(summary[0].checkpoints, 3);
    assert_eq!(summary[0].checkpoint_signers.len(), 3);
}

/// 8 tasks each append 20 entries to one tenant's chain, each through its own transaction.
async fn concurrent_audit(db: Db) {
    let tenant = "t-concurrent";
    let mut tasks = Vec::new();
    for task in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let mut tx = db.begin().await.unwrap();
                tx.append_audit(
                    event(tenant, "test.append", &format!("{task}-{i}")),
                    1000 + i,
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let chain = db.audit_all(tenant).await.unwrap();
    assert_eq!(chain.len(), 160);
    assert_eq!(verify_chain(&chain).unwrap()[0].entries, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_suite() {
    let dir = temp_dir();
    let path = dir.join("coffer.db");
    let db = Db::open(&path).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    suite(db.clone()).await;
    concurrent_audit(db.clone()).await;
    assert!(dir.join("coffer.db-wal").exists(), "WAL journal");

    // `$N` placeholders bind by number on SQLite, not by order of appearance.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (b, a): (i64, String) = sqlx::query_as("SELECT $2 AS b, $1 AS a")
        .bind("one")
        .bind(2i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((b, a.as_str()), (2, "one"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM coffer_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 7);
    pool.close().await;
    db.close().await;

    // Re-opening applies nothing and keeps everything (by path and by URL).
    let again = Db::open(&path).await.unwrap();
    assert_eq!(
        again.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(again.tenants().await.unwrap().len(), 2);
    again.close().await;
    let by_url = Db::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(
        by_url.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(by_url.audit_all("t-concurrent").await.unwrap().len(), 160);
    by_url.close().await;

    assert!(Db::connect("sqlite::memory:").await.is_err());
    assert!(Db::connect("mysql://localhost/x").await.is_err());
    let fresh = Db::connect(&format!("sqlite://{}", dir.join("by-url.db").display()))
        .await
        .unwrap();
    assert_eq!(
        fresh.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    fresh.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A database written before migrations existed (today's schema, made on open) upgrades in
/// place: its keys stay readable and the custody tables appear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_legacy_database_upgrades() {
    const LEGACY: &str = r#"
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, scheme TEXT NOT NULL, threshold INTEGER NOT NULL,
    parties TEXT NOT NULL, public_key TEXT NOT NULL, epoch INTEGER NOT NULL,
    removed TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL REFERENCES keys(id), path TEXT NOT NULL, message TEXT NOT NULL,
    signature TEXT NOT NULL, signers TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS presignatures (id TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL, signers TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL);
INSERT INTO keys (id, scheme, threshold, parties, public_key, epoch, created_at)
    VALUES ('k-old', 'ed25519', 2, '[]', 'abcd', 1, 5);
INSERT INTO signatures (key_id, path, message, signature, signers, created_at)
    VALUES ('k-old', 'm', 'aa', 'bb', '[]', 6);
"#;
    let dir = temp_dir();
    let path = dir.join("old.db");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY).execute(&pool).await.unwrap();
    pool.close().await;

    let db = Db::open(&path).await.unwrap();
    assert_eq!(
        db.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    let k = db.key("k-old").await.unwrap().unwrap();
    assert_eq!(
        (k.scheme, k.epoch, k.chain_code.as_str()),
        (Scheme::Ed25519, 1, "")
    );
    assert_eq!(db.signature_count("k-old").await.unwrap(), 1);
    assert!(db.tenants().await.unwrap().is_empty());
    db.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_suite() {
    let scratch = match postgres_scratch().await {
        Ok(s) => s,
        Err(why) => {
            coffer_server::db::testing::not_run("db", &why);
            return;
        }
    };
    eprintln!(
        "PostgreSQL suite running on scratch database {}",
        scratch.name()
    );
    let url = scratch.url().to_string();
    let run = tokio::spawn(async move {
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.backend(), Backend::Postgres);
        suite(db.clone()).await;
        concurrent_audit(db.clone()).await;
        db.close().await;
        let again = Db::connect(&url).await.unwrap();
        assert_eq!(
            again.schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(again.audit_all("t-concurrent").await.unwrap().len(), 160);
        again.close().await;
    })
    .await;
    scratch.drop_db().await.unwrap();
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}
