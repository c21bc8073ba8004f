//! `coffer vault ...`, `coffer wallet ...` and `coffer address ...`: a tenant's vaults (one
//! threshold key per scheme, made by DKG on the signers), the wallets in them (an asset on
//! one of the vault's keys, at a derivation index) and their addresses.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::chain_cmd::{self, ChainSelect};
use crate::client::{check_id, connect, ApiClient, CommonArgs, Natural};
use crate::output::{cell, fields, items, show, table, time};
use crate::Failure;

/// The signature schemes a vault can hold keys for.
pub(crate) const SCHEMES: [&str; 3] = ["ecdsa-secp256k1", "schnorr-bip340", "ed25519"];

/// Who reads vaults by default: any credential of the tenant will do.
const READERS: Natural = Natural::Role(&["admin", "viewer", "initiator", "approver", "auditor"]);

/// `coffer vault ...`.
#[derive(Args)]
pub(crate) struct VaultArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: VaultCommand,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Creates a vault: a key per scheme by DKG across the signers (ECDSA waits for the
    /// signers' safe primes the first time: minutes).
    Create {
        /// The vault's name.
        name: String,
        /// A scheme to create a key for (repeat; default: all three).
        #[arg(long = "scheme", value_name = "S")]
        schemes: Vec<String>,
        /// Signatures needed (default: the server's).
        #[arg(long)]
        threshold: Option<u16>,
    },
    /// Lists the tenant's vaults.
    List,
    /// Shows a vault and its keys.
    Show {
        /// The vault id.
        id: String,
    },
    /// Freezes a vault: the server signs a freeze order and every signer refuses new
    /// signing sessions for the vault's keys until an admin quorum unfreezes it.
    Freeze {
        /// The vault id.
        id: String,
        /// Why (recorded in the order and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Unfreezes a vault with an order signed offline by a quorum of the admin keys the
    /// signers pinned (default: the dev roster's admin keys, as many as its quorum needs).
    Unfreeze {
        /// The vault id.
        id: String,
        /// An admin key file (repeat).
        #[arg(long = "admin-key", value_name = "FILE")]
        admin_keys: Vec<std::path::PathBuf>,
        /// Why (recorded in the order and the audit log).
        #[arg(long, default_value = "unfrozen by the admin quorum")]
        reason: String,
    },
}

/// `coffer wallet ...`.
#[derive(Args)]
pub(crate) struct WalletArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: WalletCommand,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Creates a wallet in a vault: an asset on the vault's key of a scheme.
    Create {
        /// The vault id.
        vault: String,
        /// The wallet's name.
        #[arg(long)]
        name: String,
        /// The vault key's scheme (ecdsa-secp256k1, schnorr-bip340, ed25519; with --chain,
        /// from the chain and --kind).
        #[arg(long)]
        scheme: Option<String>,
        /// The asset (BTC, ETH, SOL, or another name: amounts then in base units; with
        /// --chain, the chain's own or --token).
        #[arg(long)]
        asset: Option<String>,
        /// The chain its addresses are for: bitcoin, ethereum, solana.
        #[arg(long)]
        chain: Option<String>,
        /// The chain's network (bitcoin: mainnet, testnet, signet, regtest).
        #[arg(long)]
        network: Option<String>,
        /// Bitcoin address kind: p2wpkh (default) or p2tr.
        #[arg(long)]
        kind: Option<String>,
        /// Ethereum: an ERC-20 token contract the wallet holds instead of ETH.
        #[arg(long)]
        token: Option<String>,
    },
    /// Lists a vault's wallets.
    List {
        /// The vault id.
        vault: String,
    },
    /// Shows a wallet.
    Show {
        /// The wallet id.
        id: String,
    },
}

/// `coffer address ...`.
#[derive(Args)]
pub(crate) struct AddressArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: AddressCommand,
}

#[derive(Subcommand)]
enum AddressCommand {
    /// Derives the wallet's next address (m/<wallet index>/<address index>): give the wallet
    /// id, or --vault and --chain (the vault's wallet for that chain, made if there is none
    /// and you are an admin).
    New {
        /// The wallet id.
        wallet: Option<String>,
        #[command(flatten)]
        select: ChainSelect,
    },
    /// Lists a wallet's addresses.
    List {
        /// The wallet id.
        wallet: String,
    },
}

fn check_scheme(s: &str) -> Result<&str, Failure> {
    if SCHEMES.contains(&s) {
        Ok(s)
    } else {
        Err(Failure(format!(
            "{s:?} is not a scheme (one of {})",
            SCHEMES.join(", ")
        )))
    }
}

/// The body of `POST /v1/vaults`.
fn vault_body(name: &str, schemes: &[String], threshold: Option<u16>) -> Result<Value, Failure> {
    let mut body = json!({ "name": name });
    if !schemes.is_empty() {
        for s in schemes {
            check_scheme(s)?;
        }
        body["schemes"] = json!(schemes);
    }
    if let Some(t) = threshold {
        body["threshold"] = json!(t);
    }
    Ok(body)
}

/// Creates a vault, waiting (with a message every few seconds) while the signers still
/// generate their ECDSA safe primes.
pub(crate) fn create_vault(client: &ApiClient, body: &Value) -> Result<Value, Failure> {
    let started = Instant::now();
    loop {
        match client.call("POST", "/v1/vaults", Some(body)) {
            Ok(v) => return Ok(v),
            Err(e)
                if e.code == "primes_not_ready"
                    && started.elapsed() < Duration::from_secs(1800) =>
            {
                eprintln!("waiting ({} s): {}", started.elapsed().as_secs(), e.message);
                std::thread::sleep(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn vault_text(v: &Value) -> String {
    let head = fields(&[
        ("id", cell(&v["id"])),
        ("name", cell(&v["name"])),
        ("tenant", cell(&v["tenant"])),
        ("policy", policy_version(&v["policy_version"])),
        (
            "frozen",
            if v["frozen"] == json!(true) {
                format!(
                    "yes (order {}: {})",
                    cell(&v["freeze"]["seq"]),
                    cell(&v["freeze"]["reason"])
                )
            } else {
                "no".into()
            },
        ),
        ("created", time(&v["created_at"])),
    ]);
    let rows: Vec<Vec<String>> = items(v, "keys")
        .iter()
        .map(|k| {
            vec![
                cell(&k["scheme"]),
                cell(&k["key_id"]),
                format!("{}-of-{}", cell(&k["threshold"]), cell(&k["parties"])),
                cell(&k["epoch"]),
                cell(&k["public_key"]),
            ]
        })
        .collect();
    format!(
        "{head}\n\n{}",
        table(
            &["SCHEME", "KEY", "THRESHOLD", "EPOCH", "PUBLIC KEY"],
            &rows
        )
    )
}

fn policy_version(v: &Value) -> String {
    if v.is_null() {
        "none (coffer policy template, sign, set)".into()
    } else {
        format!("version {}", cell(v))
    }
}

pub(crate) fn wallet_text(v: &Value) -> String {
    fields(&[
        ("id", cell(&v["id"])),
        ("name", cell(&v["name"])),
        ("vault", cell(&v["vault_id"])),
        ("scheme", cell(&v["scheme"])),
        ("asset", cell(&v["asset"])),
        (
            "chain",
            format!("{} {}", cell(&v["chain"]), cell(&v["network"])),
        ),
        ("index", cell(&v["index"])),
        ("key", cell(&v["key_id"])),
        ("created", time(&v["created_at"])),
    ])
}

pub(crate) fn vault(args: VaultArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        VaultCommand::Create {
            name,
            schemes,
            threshold,
        } => {
            let body = vault_body(&name, &schemes, threshold)?;
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = create_vault(&caller.client, &body)?;
            show(json, &v, vault_text)
        }
        VaultCommand::List => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call("GET", "/v1/vaults", None)?;
            show(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "vaults")
                    .iter()
                    .map(|x| {
                        let schemes: Vec<String> = items(x, "keys")
                            .iter()
                            .map(|k| cell(&k["scheme"]))
                            .collect();
                        vec![
                            cell(&x["id"]),
                            cell(&x["name"]),
                            schemes.join(","),
                            cell(&x["policy_version"]),
                            time(&x["created_at"]),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "KEYS", "POLICY", "CREATED"], &rows)
            })
        }
        VaultCommand::Show { id } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/vaults/{}", check_id("vault", &id)?),
                None,
            )?;
            show(json, &v, vault_text)
        }
        VaultCommand::Freeze { id, reason } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller.client.call(
                "POST",
                &format!("/v1/vaults/{}/freeze", check_id("vault", &id)?),
                Some(&json!({ "reason": reason })),
            )?;
            show(json, &v, freeze_text)
        }
        VaultCommand::Unfreeze {
            id,
            admin_keys,
            reason,
        } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let id = check_id("vault", &id)?;
            let v = caller
                .client
                .call("GET", &format!("/v1/vaults/{id}"), None)?;
            let order = unfreeze_order(&v, &reason)?;
            let keys = crate::policy_cmd::load_keys(&admin_keys, &args.common)?;
            let mut signed = coffer_net::freeze::SignedFreezeOrder::unsigned(order);
            for (name, key) in &keys {
                signed
                    .add_admin_signature(key)
                    .map_err(|e| Failure(format!("cannot sign the unfreeze with {name}: {e}")))?;
            }
            let body = serde_json::to_value(&signed)?;
            let v =
                caller
                    .client
                    .call("POST", &format!("/v1/vaults/{id}/unfreeze"), Some(&body))?;
            show(json, &v, freeze_text)
        }
    }
}

/// The unfreeze order for vault `v` (as `GET /v1/vaults/{id}` shows it): every key of the
/// vault, the sequence after the vault's current order.
fn unfreeze_order(v: &Value, reason: &str) -> Result<coffer_net::freeze::FreezeOrder, Failure> {
    let id = v["id"]
        .as_str()
        .ok_or_else(|| Failure("the server's vault has no id".into()))?;
    if v["frozen"] != json!(true) {
        return Err(Failure(format!("vault {id} is not frozen")));
    }
    let seq = v["freeze"]["seq"]
        .as_u64()
        .ok_or_else(|| Failure("the server shows no freeze sequence".into()))?;
    let key_ids: Vec<String> = items(v, "keys")
        .iter()
        .filter_map(|k| k["key_id"].as_str().map(str::to_string))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let order = coffer_net::freeze::FreezeOrder::new(
        coffer_net::freeze::FreezeKind::Unfreeze,
        id,
        key_ids,
        seq.saturating_add(1),
        reason,
        now,
    );
    order
        .check()
        .map_err(|e| Failure(format!("cannot build the unfreeze: {e}")))?;
    Ok(order)
}

fn freeze_text(v: &Value) -> String {
    let signers: Vec<String> = items(v, "signers")
        .iter()
        .map(|a| match a["refused"].as_str() {
            Some(why) => format!("{} refused: {why}", cell(&a["signer"])),
            None => format!(
                "{} at order {}",
                cell(&a["signer"]),
                cell(&a["current_seq"])
            ),
        })
        .collect();
    fields(&[
        ("vault", cell(&v["vault_id"])),
        ("frozen", cell(&v["frozen"])),
        ("order", cell(&v["seq"])),
        ("reason", cell(&v["reason"])),
        ("changed", cell(&v["changed"])),
        ("signers", signers.join("; ")),
    ])
}

pub(crate) fn wallet(args: WalletArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        WalletCommand::Create {
            vault,
            name,
            scheme,
            asset,
            chain,
            network,
            kind,
            token,
        } => {
            let body = match chain {
                Some(chain) => {
                    let mut body = chain_cmd::wallet_body(
                        &ChainSelect {
                            vault: None,
                            chain: Some(chain),
                            network,
                            kind,
                            token,
                        },
                        Some(&name),
                    )?;
                    for (field, given) in [("scheme", scheme), ("asset", asset)] {
                        if let Some(g) = given {
                            if body[field] != g.as_str() {
                                return Err(Failure(format!(
                                    "--{field} {g} does not fit the chain (it takes {})",
                                    cell(&body[field])
                                )));
                            }
                            body[field] = json!(g);
                        }
                    }
                    body
                }
                None => {
                    let scheme =
                        scheme.ok_or_else(|| Failure("give --scheme or --chain".into()))?;
                    check_scheme(&scheme)?;
                    let asset = asset
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| Failure("give --asset or --chain".into()))?;
                    json!({ "name": name, "scheme": scheme, "asset": asset })
                }
            };
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller.client.call(
                "POST",
                &format!("/v1/vaults/{}/wallets", check_id("vault", &vault)?),
                Some(&body),
            )?;
            show(json, &v, wallet_text)
        }
        WalletCommand::List { vault } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/vaults/{}/wallets", check_id("vault", &vault)?),
                None,
            )?;
            show(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "wallets")
                    .iter()
                    .map(|w| {
                        vec![
                            cell(&w["id"]),
                            cell(&w["name"]),
                            cell(&w["asset"]),
                            cell(&w["scheme"]),
                            cell(&w["index"]),
                            cell(&w["key_id"]),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "ASSET", "SCHEME", "INDEX", "KEY"], &rows)
            })
        }
        WalletCommand::Show { id } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/wallets/{}", check_id("wallet", &id)?),
                None,
            )?;
            show(json, &v, wallet_text)
        }
    }
}

pub(crate) fn address(args: AddressArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        AddressCommand::New { wallet, select } => {
            let caller = connect(&args.common, Natural::Role(&["admin", "initiator"]))?;
            let wallet = match wallet {
                Some(w) => w,
                None => cell(&chain_cmd::find_wallet(&caller.client, &select, true)?["id"]),
            };
            let v = caller.client.call(
                "POST",
                &format!("/v1/wallets/{}/addresses", check_id("wallet", &wallet)?),
                Some(&json!({})),
            )?;
            show(json, &v, |v| {
                let mut f = vec![
                    ("wallet", cell(&v["wallet_id"])),
                    ("index", cell(&v["index"])),
                    ("path", cell(&v["path"])),
                    ("public key", cell(&v["public_key"])),
                ];
                if !v["address"].is_null() {
                    f.push((
                        "chain",
                        format!("{} {}", cell(&v["chain"]), cell(&v["network"])),
                    ));
                    f.push(("address", cell(&v["address"])));
                }
                f.push(("created", time(&v["created_at"])));
                fields(&f)
            })
        }
        AddressCommand::List { wallet } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/wallets/{}/addresses", check_id("wallet", &wallet)?),
                None,
            )?;
            show(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "addresses")
                    .iter()
                    .map(|a| {
                        vec![
                            cell(&a["index"]),
                            cell(&a["path"]),
                            cell(&a["address"]),
                            cell(&a["public_key"]),
                            time(&a["created_at"]),
                        ]
                    })
                    .collect();
                table(
                    &["INDEX", "PATH", "ADDRESS", "PUBLIC KEY", "CREATED"],
                    &rows,
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_unfreeze_names_every_key_of_the_vault_at_the_next_sequence() {
        let v = json!({
            "id": "v-1",
            "frozen": true,
            "freeze": {"seq": 3, "reason": "alert"},
            "keys": [{"key_id": "k-a"}, {"key_id": "k-b"}],
        });
        let o = unfreeze_order(&v, "clear").unwrap();
        assert_eq!(o.kind, coffer_net::freeze::FreezeKind::Unfreeze);
        assert_eq!((o.vault_id.as_str(), o.seq), ("v-1", 4));
        assert_eq!(o.key_ids, vec!["k-a".to_string(), "k-b".to_string()]);
        let mut thawed = v.clone();
        thawed["frozen"] = json!(false);
        assert!(unfreeze_order(&thawed, "clear").is_err());
    }

    #[test]
    fn vault_bodies() {
        assert_eq!(vault_body("t", &[], None).unwrap(), json!({"name": "t"}));
        assert_eq!(
            vault_body("t", &["ed25519".into()], Some(2)).unwrap(),
            json!({"name": "t", "schemes": ["ed25519"], "threshold": 2})
        );
        assert!(vault_body("t", &["rsa".into()], None).is_err());
    }

    #[test]
    fn vault_text_shows_keys_and_policy() {
        let v = json!({"id": "v-1", "name": "treasury", "tenant": "t-1", "created_at": 0,
            "policy_version": null,
            "keys": [{"scheme": "ed25519", "key_id": "k-1", "public_key": "ab", "threshold": 2, "parties": 3, "epoch": 0}]});
        let t = vault_text(&v);
        assert!(
            t.contains("2-of-3") && t.contains("none (coffer policy"),
            "{t}"
        );
    }
}
