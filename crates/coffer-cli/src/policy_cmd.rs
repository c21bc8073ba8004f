//! `coffer policy ...`: a vault's policy document. `template` writes a starter policy from
//! the dev credentials, `sign` signs it offline with admin keys (the quorum the signers
//! pinned), `set` uploads a signed policy, `show` and `history` read them back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use serde_json::Value;

use coffer_net::Identity;
use coffer_policy::{
    Action, Conditions, Member, Policy, PublicKey, Requirement, Rule, SignedPolicy,
};

use crate::amount::parse_amount;
use crate::client::{
    check_id, connect, dev_dir, optional_dev_info, read_credential, ApiClient, CommonArgs, DevInfo,
    Natural,
};
use crate::output::{cell, fields, items, short, show, table, time};
use crate::Failure;

const ADMINS: Natural = Natural::Role(&["admin"]);
const READERS: Natural = Natural::Role(&["admin", "viewer", "auditor", "approver", "initiator"]);

/// `coffer policy ...`.
#[derive(Args)]
pub(crate) struct PolicyArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Prints a starter policy for a vault (next version; groups from the dev credentials:
    /// approvers and initiators; by default every transfer needs 2 approvers).
    Template {
        /// The vault id.
        vault: String,
        /// The approvers' group name.
        #[arg(long, default_value = "approvers")]
        approvers_group: String,
        /// The initiators' group name.
        #[arg(long, default_value = "initiators")]
        initiators_group: String,
        /// Approvals a transfer needs (above --large, when given).
        #[arg(long, default_value_t = 2)]
        min_approvals: u16,
        /// Transfers of at least this amount need --min-approvals; smaller ones need 1.
        /// Base units, or a decimal with the --asset's unit (0.5btc).
        #[arg(long, value_name = "AMOUNT")]
        large: Option<String>,
        /// Restricts the rules to this asset (and gives --large its unit).
        #[arg(long)]
        asset: Option<String>,
    },
    /// Signs a policy (or adds signatures to a signed one) with admin keys, offline.
    Sign {
        /// The policy (or signed policy) JSON file.
        file: PathBuf,
        /// An admin key file (repeat; default: the dev roster's admin keys, as many as its
        /// quorum needs).
        #[arg(long = "admin-key", value_name = "FILE")]
        admin_keys: Vec<PathBuf>,
        /// Writes the signed policy to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Uploads a signed policy to a vault (an unsigned one is signed first with the dev
    /// admin keys).
    Set {
        /// The vault id.
        vault: String,
        /// The signed policy JSON file.
        file: PathBuf,
    },
    /// Shows a vault's current policy.
    Show {
        /// The vault id.
        vault: String,
    },
    /// Lists every version of a vault's policy.
    History {
        /// The vault id.
        vault: String,
    },
}

/// What a policy file holds.
#[derive(Debug)]
pub(crate) enum PolicyDoc {
    /// A policy nobody signed yet.
    Unsigned(Policy),
    /// A signed policy.
    Signed(SignedPolicy),
}

/// Reads a policy or a signed policy from JSON text.
pub(crate) fn parse_doc(text: &str) -> Result<PolicyDoc, Failure> {
    let v: Value = serde_json::from_str(text).map_err(|e| Failure(format!("not JSON: {e}")))?;
    if v.get("policy").is_some() || v.get("signatures").is_some() {
        serde_json::from_value(v)
            .map(PolicyDoc::Signed)
            .map_err(|e| Failure(format!("not a signed policy: {e}")))
    } else {
        serde_json::from_value(v)
            .map(PolicyDoc::Unsigned)
            .map_err(|e| Failure(format!("not a policy: {e}")))
    }
}

fn read_doc(path: &Path) -> Result<PolicyDoc, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    parse_doc(&text).map_err(|e| Failure(format!("{}: {}", path.display(), e.0)))
}

fn public_key(hex_key: &str, who: &str) -> Result<PublicKey, Failure> {
    hex_key
        .parse()
        .map_err(|e| Failure(format!("dev.json: the key of {who}: {e}")))
}

/// The template's options.
pub(crate) struct TemplateOptions<'a> {
    /// Approvers' group name.
    pub approvers_group: &'a str,
    /// Initiators' group name.
    pub initiators_group: &'a str,
    /// Approvals for (large) transfers.
    pub min_approvals: u16,
    /// The large-transfer threshold, as typed.
    pub large: Option<&'a str>,
    /// The asset the rules apply to.
    pub asset: Option<&'a str>,
}

/// A starter policy: the dev approvers and initiators as groups; transfers need
/// `min_approvals` approvers (or, with `large`, that many from `large` up and 1 below).
pub(crate) fn template(
    vault_id: &str,
    version: u64,
    info: &DevInfo,
    opts: &TemplateOptions<'_>,
) -> Result<Policy, Failure> {
    let members = |role: &str| -> Result<Vec<Member>, Failure> {
        info.credentials
            .iter()
            .filter(|c| c.role == role)
            .map(|c| {
                Ok(Member {
                    name: c.name.clone(),
                    key: public_key(&c.public_key, &c.name)?,
                })
            })
            .collect()
    };
    let approvers = members("approver")?;
    let initiators = members("initiator")?;
    if approvers.is_empty() {
        return Err(Failure(
            "dev.json lists no approver credentials to put in the policy (write the policy by hand, or add approvers with `coffer user add`)".into(),
        ));
    }
    if opts.min_approvals == 0 || usize::from(opts.min_approvals) > approvers.len() {
        return Err(Failure(format!(
            "--min-approvals must be between 1 and {} (the approvers in dev.json)",
            approvers.len()
        )));
    }
    let mut groups = BTreeMap::new();
    groups.insert(opts.approvers_group.to_string(), approvers);
    let mut initiator_groups = Vec::new();
    if !initiators.is_empty() {
        groups.insert(opts.initiators_group.to_string(), initiators);
        initiator_groups.push(opts.initiators_group.to_string());
    }
    let assets = opts.asset.map(|a| vec![a.to_string()]);
    let allow = |min: u16| Action::Allow {
        approvals: vec![Requirement {
            group: opts.approvers_group.to_string(),
            min,
        }],
        allow_self_approval: false,
    };
    let rules = match opts.large {
        None => vec![Rule {
            name: format!("{}-of-{}", opts.min_approvals, opts.approvers_group),
            when: Conditions {
                assets: assets.clone(),
                ..Conditions::default()
            },
            action: allow(opts.min_approvals),
        }],
        Some(text) => {
            let large = parse_amount(text, opts.asset.unwrap_or(""))
                .map_err(|e| Failure(format!("--large: {e}")))?;
            vec![
                Rule {
                    name: "large".into(),
                    when: Conditions {
                        assets: assets.clone(),
                        amount_min: Some(large),
                        ..Conditions::default()
                    },
                    action: allow(opts.min_approvals),
                },
                Rule {
                    name: "small".into(),
                    when: Conditions {
                        assets: assets.clone(),
                        ..Conditions::default()
                    },
                    action: allow(1),
                },
            ]
        }
    };
    let policy = Policy {
        vault_id: vault_id.to_string(),
        version,
        groups,
        initiator_groups,
        rules,
    };
    policy
        .check()
        .map_err(|e| Failure(format!("the template is not a valid policy: {e}")))?;
    Ok(policy)
}

/// The dev roster's admin keys, as many as its quorum needs (all when the roster is not
/// readable).
pub(crate) fn dev_admin_keys(
    dir: &Path,
    info: &DevInfo,
) -> Result<Vec<(String, Identity)>, Failure> {
    let quorum = crate::node_cmd::read_roster(&dir.join("roster.json"))
        .map(|r| usize::from(r.roster.admin_threshold))
        .unwrap_or(info.admin_keys.len());
    info.admin_keys
        .iter()
        .take(quorum)
        .map(|p| {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| p.display().to_string());
            Ok((name, read_credential(p)?))
        })
        .collect()
}

/// Signs a policy document with each key that has not signed it yet. Returns the signed
/// policy and the names of the keys that signed now.
pub(crate) fn sign_doc(
    doc: PolicyDoc,
    keys: &[(String, &SigningKey)],
) -> Result<(SignedPolicy, Vec<String>), Failure> {
    let mut sp = match doc {
        PolicyDoc::Unsigned(p) => SignedPolicy {
            policy: p,
            signatures: Vec::new(),
        },
        PolicyDoc::Signed(sp) => sp,
    };
    sp.policy
        .check()
        .map_err(|e| Failure(format!("refusing to sign an invalid policy: {e}")))?;
    let mut signed_now = Vec::new();
    for (name, sk) in keys {
        let pk = PublicKey(sk.verifying_key().to_bytes());
        if sp.signatures.iter().any(|s| s.admin == pk) {
            continue;
        }
        sp.add_signature(sk);
        signed_now.push(name.clone());
    }
    Ok((sp, signed_now))
}

pub(crate) fn load_keys(
    files: &[PathBuf],
    common: &CommonArgs,
) -> Result<Vec<(String, Identity)>, Failure> {
    if !files.is_empty() {
        return files
            .iter()
            .map(|p| Ok((p.display().to_string(), read_credential(p)?)))
            .collect();
    }
    let dir = dev_dir(common.dev.clone());
    let info = optional_dev_info(&dir)?.ok_or_else(|| {
        Failure(format!(
            "no admin keys: give --admin-key FILE (repeat for each admin), or a dev directory ({} has no dev.json)",
            dir.display()
        ))
    })?;
    dev_admin_keys(&dir, &info)
}

fn policy_text(v: &Value) -> String {
    let doc = &v["document"];
    let p = &doc["policy"];
    let signers: Vec<String> = items(doc, "signatures")
        .iter()
        .map(|s| short(&s["admin"]))
        .collect();
    let mut out = fields(&[
        ("vault", cell(&p["vault_id"])),
        ("version", cell(&v["version"])),
        ("hash", cell(&v["hash"])),
        ("set", time(&v["created_at"])),
        ("signed by", signers.join(", ")),
        ("initiators", cell(&p["initiator_groups"])),
    ]);
    out.push_str("\n\ngroups:\n");
    if let Some(groups) = p["groups"].as_object() {
        for (name, members) in groups {
            let names: Vec<String> = members
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|m| format!("{} ({})", cell(&m["name"]), short(&m["key"])))
                .collect();
            out.push_str(&format!("  {name}: {}\n", names.join(", ")));
        }
    }
    out.push_str("\nrules (the first match decides; no match blocks):\n");
    for (i, r) in items(p, "rules").iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", i + 1, rule_line(r)));
    }
    out
}

/// One rule in a line: `name: when ... -> action`.
pub(crate) fn rule_line(r: &Value) -> String {
    let conditions: Vec<String> = r["when"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", cell(v)))
                .collect()
        })
        .unwrap_or_default();
    let when = if conditions.is_empty() {
        "always".to_string()
    } else {
        conditions.join(" ")
    };
    let action = match r["action"]["type"].as_str() {
        Some("block") => "block".to_string(),
        Some("allow") => {
            let reqs: Vec<String> = items(&r["action"], "approvals")
                .iter()
                .map(|a| format!("{} of {}", cell(&a["min"]), cell(&a["group"])))
                .collect();
            let own = if r["action"]["allow_self_approval"] == true {
                " (the initiator's own approval counts)"
            } else {
                ""
            };
            if reqs.is_empty() {
                "allow without approval".into()
            } else {
                format!("allow after {}{own}", reqs.join(" and "))
            }
        }
        _ => cell(&r["action"]),
    };
    format!("{}: {when} -> {action}", cell(&r["name"]))
}

/// Uploads a signed policy to `vault` (an admin's client): refuses one for another vault,
/// and checks the admin quorum here first (for a precise message; the server checks
/// again). Returns the server's answer (`version`, `hash`).
pub(crate) fn set_signed(
    client: &ApiClient,
    vault: &str,
    sp: &SignedPolicy,
) -> Result<Value, Failure> {
    let vault = check_id("vault", vault)?;
    if sp.policy.vault_id != vault {
        return Err(Failure(format!(
            "the policy is for vault {:?}, not {vault:?}",
            sp.policy.vault_id
        )));
    }
    if let Ok(admins) = client.call("GET", "/v1/policy/admins", None) {
        let keys: Result<Vec<PublicKey>, _> = items(&admins, "admins")
            .iter()
            .map(|a| cell(a).parse::<PublicKey>())
            .collect();
        if let (Ok(keys), Some(t)) = (keys, admins["threshold"].as_u64()) {
            let t = u16::try_from(t).unwrap_or(u16::MAX);
            sp.verify(&keys, t)
                .map_err(|e| Failure(format!("the policy would be refused: {e}")))?;
        }
    }
    let body = serde_json::to_value(sp)?;
    Ok(client.call("PUT", &format!("/v1/vaults/{vault}/policy"), Some(&body))?)
}

fn pretty(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| Failure(format!("cannot encode: {e}")))
}

pub(crate) fn run(args: PolicyArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        PolicyCommand::Template {
            vault,
            approvers_group,
            initiators_group,
            min_approvals,
            large,
            asset,
        } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/vaults/{}", check_id("vault", &vault)?),
                None,
            )?;
            let version = v["policy_version"].as_u64().unwrap_or(0).saturating_add(1);
            let info = caller.info.as_ref().ok_or_else(|| {
                Failure("the template takes its groups from a dev directory's dev.json".into())
            })?;
            let vault_id = v["id"].as_str().unwrap_or(&vault);
            let policy = template(
                vault_id,
                version,
                info,
                &TemplateOptions {
                    approvers_group: &approvers_group,
                    initiators_group: &initiators_group,
                    min_approvals,
                    large: large.as_deref(),
                    asset: asset.as_deref(),
                },
            )?;
            let value = serde_json::to_value(&policy)?;
            show(json, &value, |_| pretty(&policy).unwrap_or_default())
        }
        PolicyCommand::Sign {
            file,
            admin_keys,
            out,
        } => {
            let doc = read_doc(&file)?;
            let keys = load_keys(&admin_keys, &args.common)?;
            let refs: Vec<(String, &SigningKey)> = keys
                .iter()
                .map(|(n, k)| (n.clone(), k.signing_key()))
                .collect();
            let (sp, signed_now) = sign_doc(doc, &refs)?;
            if signed_now.is_empty() {
                eprintln!("every given key had signed already");
            } else {
                eprintln!("signed by {}", signed_now.join(", "));
            }
            let text = pretty(&sp)?;
            if let Some(out) = &out {
                std::fs::write(out, format!("{text}\n"))
                    .map_err(|e| Failure(format!("{}: {e}", out.display())))?;
            }
            let value = serde_json::to_value(&sp)?;
            show(json, &value, |_| match &out {
                Some(path) => fields(&[
                    ("written to", path.display().to_string()),
                    ("vault", sp.policy.vault_id.clone()),
                    ("version", sp.policy.version.to_string()),
                    ("hash", hex::encode(sp.policy.hash())),
                    ("signatures", sp.signatures.len().to_string()),
                ]),
                None => text.clone(),
            })
        }
        PolicyCommand::Set { vault, file } => {
            let caller = connect(&args.common, ADMINS)?;
            let doc = read_doc(&file)?;
            let sp = match doc {
                PolicyDoc::Signed(sp) => sp,
                PolicyDoc::Unsigned(p) => {
                    let info = caller.info.as_ref().ok_or_else(|| {
                        Failure(format!(
                            "{} is not signed: sign it with `coffer policy sign --admin-key FILE ...`",
                            file.display()
                        ))
                    })?;
                    let keys = dev_admin_keys(&caller.dir, info)?;
                    let refs: Vec<(String, &SigningKey)> = keys
                        .iter()
                        .map(|(n, k)| (n.clone(), k.signing_key()))
                        .collect();
                    let (sp, signed_now) = sign_doc(PolicyDoc::Unsigned(p), &refs)?;
                    eprintln!(
                        "{} was not signed: signed it with the dev admin keys {}",
                        file.display(),
                        signed_now.join(", ")
                    );
                    sp
                }
            };
            let vault = check_id("vault", &vault)?;
            let v = set_signed(&caller.client, vault, &sp)?;
            show(json, &v, |v| {
                fields(&[
                    ("vault", vault.to_string()),
                    ("version", cell(&v["version"])),
                    ("hash", cell(&v["hash"])),
                ])
            })
        }
        PolicyCommand::Show { vault } => {
            let caller = connect(&args.common, READERS)?;
            let vault = check_id("vault", &vault)?;
            let v = caller
                .client
                .call("GET", &format!("/v1/vaults/{vault}/policy"), None)
                .map_err(|e| {
                    if e.code == "no_policy" {
                        Failure(format!(
                            "vault {vault} has no policy yet (coffer policy template {vault} > p.json; coffer policy set {vault} p.json)"
                        ))
                    } else {
                        e.into()
                    }
                })?;
            show(json, &v, policy_text)
        }
        PolicyCommand::History { vault } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!("/v1/vaults/{}/policies", check_id("vault", &vault)?),
                None,
            )?;
            show(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "policies")
                    .iter()
                    .map(|p| {
                        vec![
                            cell(&p["version"]),
                            cell(&p["hash"]),
                            items(&p["document"], "signatures").len().to_string(),
                            time(&p["created_at"]),
                        ]
                    })
                    .collect();
                table(&["VERSION", "HASH", "SIGNATURES", "SET"], &rows)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::client::DevCredential;
    use serde_json::json;

    fn sk(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn info() -> DevInfo {
        let mut v: DevInfo = serde_json::from_value(json!({
            "api_url": "http://x", "signer_addr": "tls://x", "server_key": "00",
            "tls_trust_anchor": null, "admin_keys": [], "threshold": 2,
            "server": {"name": "server", "pid": 1, "argv": [], "data": "/d"}, "signers": []
        }))
        .unwrap();
        for (i, (name, role)) in [
            ("ops", "admin"),
            ("ivan", "initiator"),
            ("alice", "approver"),
            ("bob", "approver"),
            ("carol", "approver"),
        ]
        .iter()
        .enumerate()
        {
            v.credentials.push(DevCredential {
                name: (*name).into(),
                role: (*role).into(),
                key_file: PathBuf::from(format!("/d/{name}.key")),
                public_key: hex::encode(sk(i as u8 + 1).verifying_key().to_bytes()),
            });
        }
        v
    }

    fn opts() -> TemplateOptions<'static> {
        TemplateOptions {
            approvers_group: "approvers",
            initiators_group: "initiators",
            min_approvals: 2,
            large: None,
            asset: None,
        }
    }

    #[test]
    fn template_is_two_of_three_approvers() {
        let p = template("v-1", 1, &info(), &opts()).unwrap();
        assert_eq!(p.vault_id, "v-1");
        assert_eq!(p.version, 1);
        assert_eq!(p.groups["approvers"].len(), 3);
        assert_eq!(p.groups["initiators"].len(), 1);
        assert_eq!(p.initiator_groups, vec!["initiators".to_string()]);
        assert_eq!(p.rules.len(), 1);
        assert_eq!(
            p.rules[0].action,
            Action::Allow {
                approvals: vec![Requirement {
                    group: "approvers".into(),
                    min: 2
                }],
                allow_self_approval: false
            }
        );
        let line = rule_line(&serde_json::to_value(&p.rules[0]).unwrap());
        assert_eq!(line, "2-of-approvers: always -> allow after 2 of approvers");
    }

    #[test]
    fn template_with_a_large_threshold() {
        let mut o = opts();
        o.large = Some("1btc");
        o.asset = Some("BTC");
        let p = template("v-1", 4, &info(), &o).unwrap();
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.rules[0].when.amount_min.unwrap().0, 100_000_000);
        assert_eq!(p.rules[0].when.assets, Some(vec!["BTC".to_string()]));
        assert!(
            matches!(&p.rules[1].action, Action::Allow { approvals, .. } if approvals[0].min == 1)
        );
        o.asset = None;
        assert!(
            template("v-1", 4, &info(), &o).is_err(),
            "a unit needs --asset"
        );
        o.large = Some("5000");
        assert!(template("v-1", 4, &info(), &o).is_ok());
        let mut o = opts();
        o.min_approvals = 4;
        assert!(template("v-1", 1, &info(), &o)
            .unwrap_err()
            .0
            .contains("--min-approvals"));
        let mut i = info();
        i.credentials.retain(|c| c.role != "approver");
        assert!(template("v-1", 1, &i, &opts()).is_err());
    }

    #[test]
    fn signing_adds_each_admin_once_and_verifies() {
        let p = template("v-1", 1, &info(), &opts()).unwrap();
        let (a1, a2, a3) = (sk(10), sk(11), sk(12));
        let admins: Vec<PublicKey> = [&a1, &a2, &a3]
            .iter()
            .map(|k| PublicKey(k.verifying_key().to_bytes()))
            .collect();
        let (sp, now) =
            sign_doc(PolicyDoc::Unsigned(p.clone()), &[("admin-1".into(), &a1)]).unwrap();
        assert_eq!(now, vec!["admin-1".to_string()]);
        assert!(sp.verify(&admins, 2).is_err());
        // Adding to a signed policy read back from its JSON.
        let text = serde_json::to_string(&sp).unwrap();
        let doc = parse_doc(&text).unwrap();
        assert!(matches!(doc, PolicyDoc::Signed(_)));
        let (sp, now) = sign_doc(doc, &[("admin-1".into(), &a1), ("admin-2".into(), &a2)]).unwrap();
        assert_eq!(now, vec!["admin-2".to_string()]);
        assert_eq!(sp.signatures.len(), 2);
        sp.verify(&admins, 2).unwrap();
        // An unsigned document parses as a policy; junk does not parse.
        assert!(matches!(
            parse_doc(&serde_json::to_string(&p).unwrap()).unwrap(),
            PolicyDoc::Unsigned(_)
        ));
        assert!(parse_doc("{\"version\": 1}").is_err());
        assert!(parse_doc("[").is_err());
        // An invalid policy is not signed.
        let mut bad = p;
        bad.rules[0].action = Action::Allow {
            approvals: vec![Requirement {
                group: "nobody".into(),
                min: 1,
            }],
            allow_self_approval: false,
        };
        assert!(sign_doc(PolicyDoc::Unsigned(bad), &[("a".into(), &a1)]).is_err());
    }

    #[test]
    fn policy_text_lists_groups_and_rules() {
        let p = template("v-1", 1, &info(), &opts()).unwrap();
        let sp = SignedPolicy::sign(p, &[&sk(10)]);
        let v = json!({"version": 1, "hash": "ab", "created_at": 0, "document": sp});
        let t = policy_text(&v);
        assert!(
            t.contains("approvers: alice") && t.contains("1. 2-of-approvers"),
            "{t}"
        );
        let block =
            json!({"name": "deny", "when": {"destinations": ["x"]}, "action": {"type": "block"}});
        assert_eq!(rule_line(&block), "deny: destinations=x -> block");
    }
}
