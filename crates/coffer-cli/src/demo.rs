//! `coffer demo`: the README's first command. Starts an ephemeral cluster (a server and
//! three signer processes, as `coffer dev` does, in a temporary directory), creates a key per
//! scheme by DKG across the three signers, signs with two of them at the root and at a
//! derived child key, and checks every signature with the same independent verifiers as
//! `coffer ceremony verify`. Then the custody product, through the API with the credentials
//! `coffer dev` bootstraps (tenant `acme`): a vault, a wallet and an address per scheme
//! (Ed25519 and BIP340), the starter policy signed by the admin quorum, a transfer request
//! per wallet by the initiator, refused when the initiator approves it, approved by two
//! approvers, signed by the signers and checked by an independent verifier, and the audit
//! log exported and verified offline. Progress goes to stderr; one JSON object to stdout.
//! Stops the cluster and removes the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::Digest;

use coffer_policy::Decision;
use coffer_proto::{verify, Scheme};

use crate::amount::format_amount;
use crate::client::{read_credential, unix_now, ApiClient, DevInfo};
use crate::output::{cell, items};
use crate::policy_cmd::{PolicyDoc, TemplateOptions};
use crate::tx_cmd::TxRequest;
use crate::{emit, Failure};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Keep the cluster's data in this directory (default: a temporary directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The demo's directory: the one given (kept), or a fresh temporary one (`true`: remove it
/// afterwards).
pub(crate) fn demo_dir(given: Option<PathBuf>) -> (PathBuf, bool) {
    match given {
        Some(d) => (d, false),
        None => {
            let mut tag = [0u8; 8];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tag);
            (
                std::env::temp_dir().join(format!("coffer-demo-{}", hex::encode(tag))),
                true,
            )
        }
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    let (dir, temporary) = demo_dir(args.dir);
    let result = demo_in(&dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    emit(&result?)
}

fn demo_in(dir: &std::path::Path) -> Result<Value, Failure> {
    eprintln!(
        "starting a cluster: a server and 3 signer processes in {}",
        dir.display()
    );
    crate::dev::setup(dir, 3)?;
    let listen = "127.0.0.1:0"
        .parse()
        .map_err(|_| Failure("address".into()))?;
    let mut cluster = crate::dev::start(dir, listen, 2, 60, 0)?;
    let admin = cluster
        .info
        .admin_keys
        .first()
        .ok_or_else(|| Failure("no admin credential".into()))?;
    let client = ApiClient::new(&cluster.info.api_url, read_credential(admin)?);
    let text = b"coffer demo: a key no one holds";
    let mut results = Vec::new();
    for scheme in [
        Scheme::Ed25519,
        Scheme::SchnorrBip340,
        Scheme::EcdsaSecp256k1,
    ] {
        let started = std::time::Instant::now();
        eprintln!("{}: key generation across 3 signers", scheme.name());
        let key = crate::key_cmd::create(&client, scheme.name(), Some(2))?;
        let key_id = key["key_id"].as_str().unwrap_or_default().to_string();
        let message: Vec<u8> = match scheme {
            Scheme::Ed25519 => text.to_vec(),
            _ => sha2::Sha256::digest(text).to_vec(),
        };
        let mut signatures = Vec::new();
        for path in ["m", "m/0/7"] {
            let sig = crate::key_cmd::sign(
                &client,
                &key_id,
                crate::key_cmd::ToSign::Message(&hex::encode(&message)),
                Some(path),
            )?;
            let public_key = hex::decode(sig["public_key"].as_str().unwrap_or_default())?;
            let signature = hex::decode(sig["signature"].as_str().unwrap_or_default())?;
            if !verify::verify(scheme, &public_key, &message, &signature)? {
                return Err(Failure(format!(
                    "{} signature at {path} does not verify",
                    scheme.name()
                )));
            }
            signatures.push(json!({
                "path": path,
                "public_key": sig["public_key"],
                "signature": sig["signature"],
                "signers": sig["signers"],
                "verified": true,
            }));
        }
        eprintln!(
            "{}: done in {:.1} s",
            scheme.name(),
            started.elapsed().as_secs_f64()
        );
        results.push(json!({
            "scheme": scheme.name(),
            "key_id": key_id,
            "public_key": key["public_key"],
            "threshold": key["threshold"],
            "parties": key["parties"],
            "message": hex::encode(&message),
            "signatures": signatures,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    let custody = custody(dir, &mut cluster.info)?;
    drop(cluster);
    Ok(json!({
        "cluster": { "signers": 3, "threshold": 2 },
        "keys": results,
        "custody": custody,
    }))
}

/// A transfer the custody part requests from a wallet of its own.
struct Transfer {
    /// The vault key's scheme the wallet uses.
    scheme: Scheme,
    /// The wallet's name.
    wallet: &'static str,
    /// The wallet's asset.
    asset: &'static str,
    /// The amount, as typed on the command line.
    amount: &'static str,
    /// The destination.
    to: &'static str,
    /// The memo.
    memo: &'static str,
}

/// One transfer per scheme the demo vault holds (both sign in well under a second).
const TRANSFERS: [Transfer; 2] = [
    Transfer {
        scheme: Scheme::Ed25519,
        wallet: "payouts",
        asset: "SOL",
        amount: "1.5sol",
        to: "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
        memo: "first payout",
    },
    Transfer {
        scheme: Scheme::SchnorrBip340,
        wallet: "reserve",
        asset: "BTC",
        amount: "0.05btc",
        to: "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
        memo: "to cold storage",
    },
];

/// How long the demo waits for a request to be signed.
const SIGN_TIMEOUT: Duration = Duration::from_secs(120);

/// A client calling as the dev credential `name`.
fn user(info: &DevInfo, name: &str) -> Result<ApiClient, Failure> {
    let c = info
        .credentials
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Failure(format!("the dev tenant has no credential {name:?}")))?;
    Ok(ApiClient::new(&info.api_url, read_credential(&c.key_file)?))
}

/// The dev user whose credential is `key` (hex), or the key itself.
fn name_of(info: &DevInfo, key: &Value) -> String {
    info.credentials
        .iter()
        .find(|c| Some(c.public_key.as_str()) == key.as_str())
        .map(|c| c.name.clone())
        .unwrap_or_else(|| cell(key))
}

/// A non-empty string field of an API answer.
fn text(v: &Value, what: &str, field: &str) -> Result<String, Failure> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Failure(format!("the server's {what} has no {field}: {v}")))
}

/// `approvers 1/2, ...` from a request's `required`.
fn required_text(tx: &Value) -> String {
    let r: Vec<String> = items(tx, "required")
        .iter()
        .map(|r| {
            format!(
                "{} {}/{}",
                cell(&r["group"]),
                cell(&r["have"]),
                cell(&r["need"])
            )
        })
        .collect();
    if r.is_empty() {
        "no approvals".into()
    } else {
        r.join(", ")
    }
}

/// The custody walk-through on the running cluster, as the users `coffer dev` bootstraps
/// (created here, in the demo's directory). Returns the `custody` part of the output.
fn custody(dir: &Path, info: &mut DevInfo) -> Result<Value, Failure> {
    crate::dev::bootstrap(dir, info)?;
    let info: &DevInfo = info;
    let tenant = info.tenant.clone().ok_or_else(|| {
        Failure("the server has no custody API: no tenant was bootstrapped".into())
    })?;
    let who: Vec<String> = info
        .credentials
        .iter()
        .map(|c| format!("{} ({})", c.name, c.role))
        .collect();
    eprintln!(
        "custody: tenant acme ({tenant}), a credential per role: {}",
        who.join(", ")
    );
    let ops = user(info, "ops")?;
    let ivan = user(info, "ivan")?;
    let approvers = [("alice", user(info, "alice")?), ("bob", user(info, "bob")?)];
    let audrey = user(info, "audrey")?;

    // The vault: a key per scheme by DKG, and a wallet with an address on each.
    let started = Instant::now();
    let schemes: Vec<&str> = TRANSFERS.iter().map(|t| t.scheme.name()).collect();
    let vault =
        crate::vault_cmd::create_vault(&ops, &json!({ "name": "treasury", "schemes": schemes }))?;
    let vault_id = text(&vault, "vault", "id")?;
    let keys: Vec<String> = items(&vault, "keys")
        .iter()
        .map(|k| {
            format!(
                "{} {} ({}-of-{})",
                cell(&k["scheme"]),
                cell(&k["key_id"]),
                cell(&k["threshold"]),
                cell(&k["parties"])
            )
        })
        .collect();
    eprintln!(
        "custody: ops created vault treasury {vault_id} in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        keys.join(", ")
    );
    let mut wallets = Vec::new();
    for t in &TRANSFERS {
        let wallet = ops.call(
            "POST",
            &format!("/v1/vaults/{vault_id}/wallets"),
            Some(&json!({ "name": t.wallet, "scheme": t.scheme.name(), "asset": t.asset })),
        )?;
        let wallet_id = text(&wallet, "wallet", "id")?;
        let address = ops.call(
            "POST",
            &format!("/v1/wallets/{wallet_id}/addresses"),
            Some(&json!({})),
        )?;
        eprintln!(
            "custody: wallet {} {wallet_id} ({} on the {} key), address {}: public key {}",
            t.wallet,
            t.asset,
            t.scheme.name(),
            cell(&address["path"]),
            cell(&address["public_key"])
        );
        wallets.push((wallet_id, address));
    }

    // The policy: the starter template, signed offline by the admin quorum, set by ops.
    let version = vault["policy_version"]
        .as_u64()
        .unwrap_or(0)
        .saturating_add(1);
    let policy = crate::policy_cmd::template(
        &vault_id,
        version,
        info,
        &TemplateOptions {
            approvers_group: "approvers",
            initiators_group: "initiators",
            min_approvals: 2,
            large: None,
            asset: None,
        },
    )?;
    let admin_keys = crate::policy_cmd::dev_admin_keys(dir, info)?;
    let refs: Vec<(String, &SigningKey)> = admin_keys
        .iter()
        .map(|(n, k)| (n.clone(), k.signing_key()))
        .collect();
    let (signed_policy, signed_by) =
        crate::policy_cmd::sign_doc(PolicyDoc::Unsigned(policy), &refs)?;
    let set = crate::policy_cmd::set_signed(&ops, &vault_id, &signed_policy)?;
    let groups: Vec<String> = signed_policy
        .policy
        .groups
        .iter()
        .map(|(g, members)| {
            let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            format!("{g} = {}", names.join(", "))
        })
        .collect();
    eprintln!(
        "custody: policy version {} (hash {}) signed offline by {} and set by ops; groups: {}",
        cell(&set["version"]),
        cell(&set["hash"]),
        signed_by.join(", "),
        groups.join("; ")
    );
    let rules = serde_json::to_value(&signed_policy.policy.rules)?;
    for r in items(&json!({ "rules": rules }), "rules") {
        eprintln!("custody:   rule {}", crate::policy_cmd::rule_line(r));
    }

    // A request per wallet: ivan asks, cannot approve, alice and bob approve, the signers sign.
    let mut transactions = Vec::new();
    let mut refusal = Value::Null;
    for (t, (wallet_id, address)) in TRANSFERS.iter().zip(&wallets) {
        let wallet = ivan.call("GET", &format!("/v1/wallets/{wallet_id}"), None)?;
        let tx = crate::tx_cmd::create(
            &ivan,
            &wallet,
            None,
            TxRequest {
                amount: t.amount,
                to: t.to,
                memo: t.memo,
                address_index: 0,
                request_id: crate::tx_cmd::random_request_id(),
                now: unix_now(),
                expires_in: 3600,
            },
        )?;
        let id = text(&tx, "transaction", "id")?;
        let (intent, hash) = crate::tx_cmd::checked_intent(&tx)?;
        eprintln!(
            "custody: ivan requested {} to {} ({:?}) from {}: request {id}, {}; rule {} matched, needs {}",
            format_amount(intent.amount, &intent.asset),
            intent.destination,
            intent.memo,
            intent.path,
            cell(&tx["state"]),
            cell(&tx["rule"]),
            required_text(&tx)
        );
        if tx["state"] != "pending_approval" {
            return Err(Failure(format!(
                "request {id} is {}, not pending approval ({})",
                cell(&tx["state"]),
                cell(&tx["reason"])
            )));
        }
        if refusal.is_null() {
            match crate::tx_cmd::decide(false, &ivan, &id, Decision::Approve, 3600, None) {
                Ok(_) => {
                    return Err(Failure(format!(
                        "the server accepted ivan's approval of his own request {id}"
                    )))
                }
                Err(e) => {
                    eprintln!("custody: ivan tries to approve {id}: refused: {}", e.0);
                    refusal = json!({ "who": "ivan", "transaction_id": id, "error": e.0 });
                }
            }
        }
        for (name, client) in &approvers {
            let (after, _) =
                crate::tx_cmd::decide(false, client, &id, Decision::Approve, 3600, None)?;
            eprintln!(
                "custody: {name} approved {id}, signing the intent hash {} recomputed from the intent: {} ({})",
                hex::encode(hash),
                cell(&after["state"]),
                required_text(&after)
            );
        }
        let signed = crate::tx_cmd::wait(&ivan, &id, SIGN_TIMEOUT, Some("signed"), false)?;
        let (signed_intent, signed_hash) = crate::tx_cmd::checked_intent(&signed)?;
        if signed_hash != hash {
            return Err(Failure(format!(
                "request {id}: the signed request's intent is not the one approved"
            )));
        }
        let public_key = text(&signed, "transaction", "public_key")?;
        if Some(public_key.as_str()) != address["public_key"].as_str() {
            return Err(Failure(format!(
                "request {id}: signed under {public_key}, not the address's key {}",
                cell(&address["public_key"])
            )));
        }
        let signature = text(&signed, "transaction", "signature")?;
        let message = signed_intent.message();
        if !verify::verify(
            t.scheme,
            &hex::decode(&public_key)?,
            &message,
            &hex::decode(&signature)?,
        )? {
            return Err(Failure(format!(
                "request {id}: the {} signature does not verify",
                t.scheme.name()
            )));
        }
        let mut approved_by: Vec<String> = items(&signed, "approvals")
            .iter()
            .filter(|a| a["decision"] == "approve")
            .map(|a| name_of(info, &a["approver"]))
            .collect();
        approved_by.sort();
        let verifier = match t.scheme {
            Scheme::Ed25519 => "ed25519-dalek",
            _ => "libsecp256k1",
        };
        eprintln!(
            "custody: {id} signed by {} after approvals by {}: {} signature {signature} under {public_key} (the address's key), verified by {verifier} over the intent's message {}",
            items(&signed, "signers")
                .iter()
                .map(cell)
                .collect::<Vec<_>>()
                .join(" and "),
            approved_by.join(" and "),
            t.scheme.name(),
            hex::encode(message)
        );
        transactions.push(json!({
            "id": id,
            "scheme": t.scheme.name(),
            "wallet_id": wallet_id,
            "intent": signed["intent"],
            "intent_hash": hex::encode(signed_hash),
            "message": hex::encode(message),
            "state": signed["state"],
            "rule": signed["rule"],
            "policy_version": signed["policy_version"],
            "approved_by": approved_by,
            "signers": signed["signers"],
            "address_public_key": address["public_key"],
            "public_key": public_key,
            "signature": signature,
            "verified": true,
        }));
    }

    // The audit log: exported by the auditor, verified here, offline.
    let export = audrey.call("GET", "/v1/audit/export", None)?;
    let chains = crate::audit_cmd::verify_export_answer(&export)?;
    let chain = chains
        .iter()
        .find(|c| c.tenant == tenant)
        .ok_or_else(|| Failure(format!("the audit export has no chain for tenant {tenant}")))?;
    let entries = coffer_server::audit::parse_export(crate::audit_cmd::export_text(&export)?)
        .map_err(|e| Failure(format!("the audit export: {e}")))?;
    for tx in &transactions {
        let id = cell(&tx["id"]);
        let trail: Vec<String> = entries
            .iter()
            .filter(|e| e.object == id)
            .map(|e| format!("{} ({})", e.action, name_of(info, &json!(e.actor))))
            .collect();
        if !trail.iter().any(|a| a.starts_with("transaction.signed")) {
            return Err(Failure(format!(
                "the audit export does not record that {id} was signed"
            )));
        }
        eprintln!("custody: audit trail of {id}: {}", trail.join(", "));
    }
    eprintln!(
        "custody: audrey exported the audit log of acme: {} entries, every hash and link verified offline; head {}",
        chain.entries, chain.head
    );
    Ok(json!({
        "tenant": tenant,
        "vault_id": vault_id,
        "policy": { "version": set["version"], "hash": set["hash"], "signed_by": signed_by },
        "transactions": transactions,
        "refused": refusal,
        "audit": { "entries": chain.entries, "head": chain.head, "verified": true },
    }))
}
