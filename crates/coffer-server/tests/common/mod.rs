//! The custody test harness: a server in process with three signer daemons (real TLS, real
//! envelopes, real share stores), a signed-request HTTP client, and the steps of the
//! walk-through (tenant, vault, policy, request, approvals).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::Identity;
use coffer_policy::{
    Action, Approval, Conditions, Decision, Intent, Member, Policy, PublicKey, Requirement, Rule,
    SignedPolicy,
};
use coffer_server::ServerConfig;
use coffer_signer::keysource::KeyFileSource;
use coffer_signer::node::SignerNode;

pub fn temp(tag: &str) -> PathBuf {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    std::env::temp_dir().join(format!("coffer-custody-{tag}-{}", hex::encode(b)))
}

pub fn now() -> i64 {
    coffer_server::db::unix_now()
}

/// A server with three in-process signer daemons.
pub struct Cluster {
    pub rt: tokio::runtime::Runtime,
    pub base: String,
    pub admins: Vec<Identity>,
    pub dir: PathBuf,
    config: ServerConfig,
    running: Option<coffer_server::Running>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

impl Cluster {
    pub fn start(tag: &str, database_url: Option<String>) -> Cluster {
        Self::start_with(
            tag,
            database_url,
            coffer_server::ratelimit::Limits {
                per_second: 2000.0,
                burst: 4000.0,
            },
        )
    }

    /// A cluster whose API allows `limits` per credential.
    pub fn start_with(
        tag: &str,
        database_url: Option<String>,
        limits: coffer_server::ratelimit::Limits,
    ) -> Cluster {
        Self::start_full(tag, database_url, limits, Default::default())
    }

    /// A cluster whose webhook worker runs with `webhooks` (tests use tiny intervals).
    pub fn start_with_webhooks(
        tag: &str,
        database_url: Option<String>,
        webhooks: coffer_server::webhooks::WebhookConfig,
    ) -> Cluster {
        Self::start_full(
            tag,
            database_url,
            coffer_server::ratelimit::Limits {
                per_second: 2000.0,
                burst: 4000.0,
            },
            webhooks,
        )
    }

    fn start_full(
        tag: &str,
        database_url: Option<String>,
        limits: coffer_server::ratelimit::Limits,
        webhooks: coffer_server::webhooks::WebhookConfig,
    ) -> Cluster {
        std::env::set_var("COFFER_INSECURE_TEST_PRIMES", "1");
        let dir = temp(tag);
        let server_key = coffer_server::init(&dir).unwrap();
        let admins: Vec<Identity> = (0..3)
            .map(|i| Identity::generate(&format!("admin-{i}")))
            .collect();
        let mut publics = Vec::new();
        for i in 0..3 {
            let d = dir.join(format!("s{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let source = KeyFileSource::create(&d.join("store.key")).unwrap();
            publics.push(SignerNode::init(&d, &format!("signer-{i}"), &source).unwrap());
        }
        let roster = Roster {
            version: 1,
            signers: publics,
            admins: admins.iter().map(|a| a.node_key()).collect(),
            admin_threshold: 2,
            server: server_key,
            dev_mode: false,
        };
        let signed = SignedRoster {
            signatures: vec![
                roster.sign_as_admin(&admins[0]).unwrap(),
                roster.sign_as_admin(&admins[1]).unwrap(),
            ],
            roster,
        };
        std::fs::write(
            coffer_server::roster_path(&dir),
            serde_json::to_string(&signed).unwrap(),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = ServerConfig {
            data_dir: dir.clone(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            signer_listen: "127.0.0.1:0".parse().unwrap(),
            deadlines: Default::default(),
            presign_pool: 0,
            database_url,
            rate_limits: limits,
            checkpoint_every: Duration::from_secs(1),
            alerts: coffer_server::alerts::AlertConfig::standard(),
            webhooks,
        };
        let mut running = rt.block_on(coffer_server::start(&config)).unwrap();
        // A restart binds the same relay address, where the signers keep dialling.
        let mut config = config;
        config.signer_listen = running.signer_addr;
        for i in 0..3 {
            let d = dir.join(format!("s{i}"));
            let node = SignerNode::open(&d, &KeyFileSource::open(&d.join("store.key"))).unwrap();
            node.enrol(signed.clone()).unwrap();
            rt.spawn(coffer_signer::daemon::run(
                Arc::new(node),
                running.signer_addr.to_string(),
            ));
        }
        running = wait_connected(running, &signed.roster);
        Cluster {
            base: format!("http://{}", running.api_addr),
            rt,
            admins,
            dir,
            config,
            running: Some(running),
        }
    }

    /// Stops the server (as a crash would: tasks dropped mid-flight).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }

    /// Starts the server again on the same data and relay address; waits for the signers.
    pub fn restart(&mut self) {
        let running = self
            .rt
            .block_on(coffer_server::start(&self.config))
            .unwrap();
        let roster = coffer_server::load_roster(
            &self.dir,
            &coffer_server::load_identity(&self.dir).unwrap().node_key(),
        )
        .unwrap()
        .roster;
        let running = wait_connected(running, &roster);
        self.base = format!("http://{}", running.api_addr);
        self.running = Some(running);
    }

    /// The running server's hub (to send signers jobs the API would not).
    pub fn hub(&self) -> coffer_server::hub::Hub {
        self.running.as_ref().unwrap().hub.clone()
    }

    pub fn as_(&self, id: &Identity) -> Client {
        Client {
            base: self.base.clone(),
            id: id.clone_identity(),
        }
    }
}

fn wait_connected(running: coffer_server::Running, roster: &Roster) -> coffer_server::Running {
    let deadline = Instant::now() + Duration::from_secs(30);
    while roster
        .signers
        .iter()
        .any(|s| !running.hub.is_connected(&s.node_key))
    {
        assert!(Instant::now() < deadline, "signers did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

pub trait CloneIdentity {
    fn clone_identity(&self) -> Identity;
}

impl CloneIdentity for Identity {
    fn clone_identity(&self) -> Identity {
        Identity::from_secret_bytes(&self.to_secret_bytes().unwrap()).unwrap()
    }
}

/// A signed-request client.
pub struct Client {
    pub base: String,
    pub id: Identity,
}

pub fn send(req: ureq::Request, body: Option<&[u8]>) -> (u16, Value) {
    let result = match body {
        Some(b) => req.set("content-type", "application/json").send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

impl Client {
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let signed_path = path.split('?').next().unwrap();
        let mut req = ureq::request(method, &format!("{}{path}", self.base));
        for (k, v) in coffer_server::auth::sign_request(&self.id, method, signed_path, body) {
            req = req.set(k, &v);
        }
        send(req, (method != "GET").then_some(body))
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, &bytes)
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    pub fn key(&self) -> PublicKey {
        PublicKey(self.id.node_key().0)
    }
}

/// A tenant with its users.
pub struct Tenant {
    pub id: String,
    pub admin: Identity,
    pub initiator: Identity,
    pub approvers: Vec<Identity>,
    pub viewer: Identity,
    pub auditor: Identity,
}

pub fn tenant(c: &Cluster, name: &str) -> Tenant {
    let op = c.as_(&c.admins[0]);
    let t = op.ok("POST", "/v1/tenants", Some(json!({"name": name})));
    let id = t["id"].as_str().unwrap().to_string();
    let add = |user: &str, role: &str| {
        let k = Identity::generate(user);
        op.ok(
            "POST",
            "/v1/users",
            Some(json!({"name": user, "role": role, "key": k.node_key().to_hex(), "tenant": id})),
        );
        k
    };
    Tenant {
        admin: add("ops", "admin"),
        initiator: add("ivan", "initiator"),
        approvers: vec![
            add("alice", "approver"),
            add("bob", "approver"),
            add("carol", "approver"),
        ],
        viewer: add("vera", "viewer"),
        auditor: add("audrey", "auditor"),
        id,
    }
}

/// Vault with the given schemes, one wallet on `scheme`, a 2-of-3 approvers policy.
pub fn vault(c: &Cluster, t: &Tenant, scheme: &str, asset: &str) -> (Value, Value) {
    vault_needing(c, t, scheme, asset, 2)
}

/// [`vault`] whose policy's allowing rule needs `approvals` of the 3 approvers (0: none, the
/// rule approves at once; the rule is still named "two approvers").
pub fn vault_needing(
    c: &Cluster,
    t: &Tenant,
    scheme: &str,
    asset: &str,
    approvals: u16,
) -> (Value, Value) {
    let admin = c.as_(&t.admin);
    let v = admin.ok(
        "POST",
        "/v1/vaults",
        Some(json!({"name": format!("treasury-{scheme}-{approvals}"), "schemes": [scheme]})),
    );
    let vid = v["id"].as_str().unwrap();
    let w = admin.ok(
        "POST",
        &format!("/v1/vaults/{vid}/wallets"),
        Some(json!({"name": "hot", "scheme": scheme, "asset": asset})),
    );
    let policy = Policy {
        vault_id: vid.to_string(),
        version: 1,
        groups: [
            (
                "approvers".to_string(),
                t.approvers
                    .iter()
                    .map(|a| Member {
                        name: a.name().to_string(),
                        key: PublicKey(a.node_key().0),
                    })
                    .collect(),
            ),
            (
                "initiators".to_string(),
                vec![Member {
                    name: "ivan".into(),
                    key: PublicKey(t.initiator.node_key().0),
                }],
            ),
        ]
        .into_iter()
        .collect(),
        initiator_groups: vec!["initiators".into()],
        rules: vec![
            Rule {
                name: "huge is blocked".into(),
                when: Conditions {
                    amount_min: Some(coffer_policy::Amount(1_000_000_000)),
                    ..Default::default()
                },
                action: Action::Block,
            },
            Rule {
                name: "two approvers".into(),
                when: Conditions::default(),
                action: Action::Allow {
                    approvals: (approvals > 0)
                        .then(|| Requirement {
                            group: "approvers".into(),
                            min: approvals,
                        })
                        .into_iter()
                        .collect(),
                    allow_self_approval: false,
                },
            },
        ],
    };
    let signed = SignedPolicy::sign(
        policy,
        &[c.admins[0].signing_key(), c.admins[1].signing_key()],
    );
    admin.ok(
        "PUT",
        &format!("/v1/vaults/{vid}/policy"),
        Some(serde_json::to_value(&signed).unwrap()),
    );
    (v, w)
}

pub fn intent(t: &Tenant, w: &Value, request_id: &str, amount: u128) -> Intent {
    Intent {
        tenant: t.id.clone(),
        vault_id: w["vault_id"].as_str().unwrap().into(),
        key_id: w["key_id"].as_str().unwrap().into(),
        request_id: request_id.into(),
        wallet_id: w["id"].as_str().unwrap().into(),
        path: format!("m/{}/0", w["index"]),
        asset: w["asset"].as_str().unwrap().into(),
        amount: coffer_policy::Amount(amount),
        destination: "dest-1".into(),
        memo: "payroll".into(),
        initiator: PublicKey(t.initiator.node_key().0),
        created_at: now(),
        expires_at: now() + 3600,
        transaction: None,
        kind: Default::default(),
    }
}

pub fn create_tx(c: &Cluster, t: &Tenant, i: &Intent) -> (u16, Value) {
    let sig = coffer_policy::sign_initiation(t.initiator.signing_key(), i);
    c.as_(&t.initiator).call(
        "POST",
        "/v1/transactions",
        Some(json!({"intent": i, "initiator_signature": sig})),
    )
}

pub fn approve(c: &Cluster, who: &Identity, tx: &Value) -> (u16, Value) {
    let intent: Intent = serde_json::from_value(tx["intent"].clone()).unwrap();
    let a = Approval::sign(
        who.signing_key(),
        intent.hash(),
        Decision::Approve,
        now() + 600,
    );
    c.as_(who).call(
        "POST",
        &format!("/v1/transactions/{}/approve", tx["id"].as_str().unwrap()),
        Some(json!({"approval": a})),
    )
}

pub fn wait_state(c: &Cluster, t: &Tenant, id: &str, states: &[&str]) -> Value {
    let viewer = c.as_(&t.viewer);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tx = viewer.ok("GET", &format!("/v1/transactions/{id}"), None);
        if states.contains(&tx["state"].as_str().unwrap()) {
            return tx;
        }
        assert!(Instant::now() < deadline, "stuck: {tx}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn verify_signature(tx: &Value, scheme: &str) {
    let intent: Intent = serde_json::from_value(tx["intent"].clone()).unwrap();
    let sig = hex::decode(tx["signature"].as_str().unwrap()).unwrap();
    let pk = hex::decode(tx["public_key"].as_str().unwrap()).unwrap();
    let msg = intent.message();
    match scheme {
        "ed25519" => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.try_into().unwrap()).unwrap();
            vk.verify_strict(&msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
                .unwrap();
        }
        "schnorr-bip340" => {
            let secp = secp256k1::Secp256k1::verification_only();
            let xonly = secp256k1::XOnlyPublicKey::from_slice(&pk).unwrap();
            let sig = secp256k1::schnorr::Signature::from_slice(&sig).unwrap();
            secp.verify_schnorr(&sig, &secp256k1::Message::from_digest(msg), &xonly)
                .unwrap();
        }
        "ecdsa-secp256k1" => {
            let secp = secp256k1::Secp256k1::verification_only();
            let pk = secp256k1::PublicKey::from_slice(&pk).unwrap();
            let mut sig = secp256k1::ecdsa::Signature::from_compact(&sig).unwrap();
            // Low-S is what chains require; the signers must already produce it.
            let before = sig;
            sig.normalize_s();
            assert_eq!(before, sig, "high-S signature");
            secp.verify_ecdsa(&secp256k1::Message::from_digest(msg), &sig, &pk)
                .unwrap();
        }
        other => panic!("{other}"),
    }
}

pub fn audit_ok(c: &Cluster, t: &Tenant) -> u64 {
    let auditor = c.as_(&t.auditor);
    let v = auditor.ok("GET", "/v1/audit/verify", None);
    assert_eq!(v["ok"], true, "{v}");
    let export = auditor.ok("GET", "/v1/audit/export", None);
    let entries = coffer_server::audit::parse_export(export["export"].as_str().unwrap()).unwrap();
    let chains = coffer_server::audit::verify_chain(&entries).unwrap();
    chains[0].entries
}

/// The walk-through: vault, policy, request, two approvals, signature, audit.
pub fn walkthrough(c: &Cluster, t: &Tenant, scheme: &str) -> Value {
    let (_v, w) = vault(c, t, scheme, "SOL");
    let admin = c.as_(&t.admin);
    let addr = admin.ok(
        "POST",
        &format!("/v1/wallets/{}/addresses", w["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(addr["path"], format!("m/{}/0", w["index"]));
    let i = intent(t, &w, &format!("req-{scheme}"), 1500);
    let (status, tx) = create_tx(c, t, &i);
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["state"], "pending_approval");
    assert_eq!(tx["rule"], "two approvers");
    // Idempotent creation: the same signed intent returns the same request.
    let (status, again) = create_tx(c, t, &i);
    assert_eq!((status, &again["id"]), (200, &tx["id"]));
    // The initiator cannot approve (not an approver credential).
    let (status, _) = approve(c, &t.initiator, &tx);
    assert_eq!(status, 403);
    let (status, after_one) = approve(c, &t.approvers[0], &tx);
    assert_eq!(status, 200, "{after_one}");
    assert_eq!(after_one["state"], "pending_approval");
    let (status, again) = approve(c, &t.approvers[0], &tx);
    assert_eq!(status, 409, "{again}");
    let (status, after_two) = approve(c, &t.approvers[1], &tx);
    assert_eq!(status, 200, "{after_two}");
    let id = tx["id"].as_str().unwrap();
    let signed = wait_state(c, t, id, &["signed", "failed"]);
    assert_eq!(signed["state"], "signed", "{signed}");
    verify_signature(&signed, scheme);
    // The address the request pays from is the one the wallet derived.
    assert_eq!(signed["public_key"], addr["public_key"]);
    // Blocked by the first rule.
    let (status, blocked) = create_tx(
        c,
        t,
        &intent(t, &w, &format!("req-huge-{scheme}"), 5_000_000_000),
    );
    assert_eq!(status, 200);
    assert_eq!(blocked["state"], "rejected");
    assert_eq!(blocked["rule"], "huge is blocked");
    w
}

pub fn tenant_view(t: &Tenant) -> Tenant {
    Tenant {
        id: t.id.clone(),
        admin: t.admin.clone_identity(),
        initiator: t.initiator.clone_identity(),
        approvers: t.approvers.iter().map(|a| a.clone_identity()).collect(),
        viewer: t.viewer.clone_identity(),
        auditor: t.auditor.clone_identity(),
    }
}

pub fn c_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
