//! `coffer whoami`, `coffer tenant ...` and `coffer user ...`: who the caller is, tenants
//! (platform operators) and a tenant's users and their credentials.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use coffer_net::Identity;

use crate::client::{check_id, connect, ApiClient, ApiFailure, CommonArgs, Natural};
use crate::output::{cell, fields, items, show, table, time};
use crate::Failure;

/// The roles a tenant credential can hold.
pub(crate) const ROLES: [&str; 5] = ["admin", "initiator", "approver", "viewer", "auditor"];

/// `coffer whoami`.
#[derive(Args)]
pub(crate) struct WhoamiArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// `coffer tenant ...`.
#[derive(Args)]
pub(crate) struct TenantArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: TenantCommand,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Creates a tenant (platform operators).
    Create {
        /// The tenant's name.
        name: String,
    },
    /// Lists the tenants (platform operators).
    List,
}

/// `coffer user ...`.
#[derive(Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Adds a user with a credential (or a credential to an existing user of that name).
    Add {
        /// The user's name.
        name: String,
        /// admin, initiator, approver, viewer or auditor.
        #[arg(long)]
        role: String,
        /// The credential's Ed25519 public key, hex.
        #[arg(
            long,
            value_name = "HEX",
            required_unless_present = "generate",
            conflicts_with = "generate"
        )]
        key: Option<String>,
        /// Generates a new credential, writes its secret key to FILE (mode 0600) and
        /// registers its public key.
        #[arg(long, value_name = "FILE")]
        generate: Option<PathBuf>,
        /// The tenant (operators; default: the dev tenant). Tenant admins add to their own.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Lists the tenant's users and their credentials.
    List,
    /// Disables a credential: its requests are refused from now on.
    DisableKey {
        /// The credential's public key, hex.
        key: String,
    },
}

pub(crate) fn whoami(args: WhoamiArgs) -> Result<(), Failure> {
    let caller = connect(&args.common, Natural::Operator)?;
    let v = caller.client.call("GET", "/v1/whoami", None)?;
    show(args.common.json, &v, |v| {
        fields(&[
            ("as", caller.chosen.label.clone()),
            ("key", cell(&v["key"])),
            ("role", cell(&v["role"])),
            ("tenant", cell(&v["tenant"])),
            ("user", cell(&v["user"])),
        ])
    })
}

pub(crate) fn tenant(args: TenantArgs) -> Result<(), Failure> {
    let caller = connect(&args.common, Natural::Operator)?;
    match args.cmd {
        TenantCommand::Create { name } => {
            let v = caller
                .client
                .call("POST", "/v1/tenants", Some(&json!({ "name": name })))?;
            show(args.common.json, &v, tenant_text)
        }
        TenantCommand::List => {
            let v = caller.client.call("GET", "/v1/tenants", None)?;
            show(args.common.json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "tenants")
                    .iter()
                    .map(|t| vec![cell(&t["id"]), cell(&t["name"]), time(&t["created_at"])])
                    .collect();
                table(&["ID", "NAME", "CREATED"], &rows)
            })
        }
    }
}

fn tenant_text(v: &Value) -> String {
    fields(&[
        ("id", cell(&v["id"])),
        ("name", cell(&v["name"])),
        ("created", time(&v["created_at"])),
    ])
}

/// Checks a role name.
pub(crate) fn check_role(role: &str) -> Result<&str, Failure> {
    if ROLES.contains(&role) {
        Ok(role)
    } else {
        Err(Failure(format!(
            "{role:?} is not a role (one of {})",
            ROLES.join(", ")
        )))
    }
}

/// Checks a hex Ed25519 public key and returns it in lowercase.
pub(crate) fn check_public_key(key: &str) -> Result<String, Failure> {
    let bytes = crate::hexarg::parse("the key", key).map_err(Failure)?;
    if bytes.len() != 32 {
        return Err(Failure(format!(
            "the key has {} bytes; an Ed25519 public key has 32 (64 hex digits)",
            bytes.len()
        )));
    }
    Ok(hex::encode(bytes))
}

/// Writes a new credential file (mode 0600; an existing file is never overwritten) and
/// returns the identity.
pub(crate) fn generate_credential(path: &Path, name: &str) -> Result<Identity, Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let id = Identity::generate(name);
    let bytes = id.to_secret_bytes()?;
    let io = |e: std::io::Error| Failure(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(id)
}

/// Adds a user (or a credential to a user) with `POST /v1/users` (the role is checked by
/// the caller).
pub(crate) fn add_user_api(
    client: &ApiClient,
    name: &str,
    role: &str,
    key: &str,
    tenant: Option<&str>,
) -> Result<Value, ApiFailure> {
    let mut body = json!({ "name": name, "role": role, "key": key });
    if let Some(t) = tenant {
        body["tenant"] = json!(t);
    }
    client.call("POST", "/v1/users", Some(&body))
}

pub(crate) fn user(args: UserArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        UserCommand::Add {
            name,
            role,
            key,
            generate,
            tenant,
        } => {
            check_role(&role)?;
            let caller = connect(&args.common, Natural::Operator)?;
            // Operators name the tenant; a tenant admin's own tenant is implied.
            let tenant = match tenant {
                Some(t) => Some(t),
                None => {
                    let me = caller.client.call("GET", "/v1/whoami", None)?;
                    if me["role"] == "operator" {
                        Some(
                            caller
                                .info
                                .as_ref()
                                .and_then(|i| i.tenant.clone())
                                .ok_or_else(|| {
                                    Failure(
                                        "operators add users to a named tenant: give --tenant ID"
                                            .into(),
                                    )
                                })?,
                        )
                    } else {
                        None
                    }
                }
            };
            let (key, written) = match (key, generate) {
                (Some(k), _) => (check_public_key(&k)?, None),
                (None, Some(file)) => {
                    let id = generate_credential(&file, &name)?;
                    (id.node_key().to_hex(), Some(file))
                }
                (None, None) => return Err(Failure("give --key HEX or --generate FILE".into())),
            };
            let mut v = add_user_api(&caller.client, &name, &role, &key, tenant.as_deref())
                .map_err(Failure::from)
                .map_err(|e| match &written {
                    Some(f) => Failure(format!(
                        "{} (the new key stays in {}; register it with --key {key})",
                        e.0,
                        f.display()
                    )),
                    None => e,
                })?;
            if let Some(f) = &written {
                v["key_file"] = json!(f);
            }
            show(json, &v, |v| {
                let mut f = vec![
                    ("user", cell(&v["user_id"])),
                    ("name", cell(&v["name"])),
                    ("role", cell(&v["role"])),
                    ("key", cell(&v["key"])),
                    ("tenant", cell(&v["tenant"])),
                ];
                if let Some(file) = v.get("key_file") {
                    f.push(("key file", cell(file)));
                }
                fields(&f)
            })
        }
        UserCommand::List => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller.client.call("GET", "/v1/users", None)?;
            show(json, &v, users_text)
        }
        UserCommand::DisableKey { key } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let key = check_public_key(&key)?;
            let v = caller.client.call(
                "POST",
                &format!("/v1/credentials/{}/disable", check_id("credential", &key)?),
                Some(&json!({})),
            )?;
            show(json, &v, |v| {
                fields(&[("key", cell(&v["key"])), ("disabled", cell(&v["disabled"]))])
            })
        }
    }
}

fn users_text(v: &Value) -> String {
    let mut rows = Vec::new();
    for u in items(v, "users") {
        let creds = items(u, "credentials");
        if creds.is_empty() {
            rows.push(vec![
                cell(&u["name"]),
                cell(&u["user_id"]),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for c in creds {
            rows.push(vec![
                cell(&u["name"]),
                cell(&u["user_id"]),
                cell(&c["role"]),
                cell(&c["key"]),
                if c["disabled"] == true {
                    "disabled"
                } else {
                    "active"
                }
                .into(),
            ]);
        }
    }
    table(&["NAME", "USER", "ROLE", "KEY", "STATUS"], &rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn roles_and_keys_are_checked() {
        assert!(check_role("approver").is_ok());
        assert!(check_role("operator").is_err());
        assert!(check_role("Admin").is_err());
        let k = "AB".repeat(32);
        assert_eq!(check_public_key(&k).unwrap(), "ab".repeat(32));
        assert_eq!(
            check_public_key(&format!("0x{k}")).unwrap(),
            "ab".repeat(32)
        );
        assert!(check_public_key("abcd").is_err());
        assert!(check_public_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn generated_credentials_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("coffer-cli-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("carol.key");
        let id = generate_credential(&file, "carol").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = crate::client::read_credential(&file).unwrap();
        assert_eq!(back.node_key(), id.node_key());
        assert!(generate_credential(&file, "carol").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn user_table_lists_each_credential() {
        let v = json!({"users": [
            {"user_id": "u-1", "name": "alice", "credentials": [
                {"key": "aa", "role": "approver", "disabled": false},
                {"key": "bb", "role": "approver", "disabled": true}]},
            {"user_id": "u-2", "name": "nobody", "credentials": []}
        ]});
        let t = users_text(&v);
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(t.contains("disabled") && t.contains("active"));
    }
}
