//! `coffer signer replace --remove NAME (--key ID ... | --vault ID)`: takes a compromised
//! signer out of keys. FROST keys are reshared among the remaining signers through the
//! server's two-phase reshare (`POST /v1/keys/{id}/reshare`): same public key and addresses,
//! next epoch, and the removed signer's share stops combining with the new ones. CGGMP
//! (ECDSA) keys cannot be reshared by their library: for them the command prints the
//! move-funds ceremony documented in `docs/refresh.md` and changes nothing.

use clap::Args;
use serde_json::{json, Value};

use crate::client::{check_id, connect, CommonArgs, Natural};
use crate::output::{cell, items, show, table};
use crate::Failure;

/// `coffer signer replace ...`.
#[derive(Args)]
pub(crate) struct ReplaceArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The signer to remove (its roster name).
    #[arg(long)]
    remove: String,
    /// A key to take it out of (repeat).
    #[arg(long = "key", value_name = "ID", required_unless_present = "vault")]
    keys: Vec<String>,
    /// Every key of this vault.
    #[arg(long, conflicts_with = "keys")]
    vault: Option<String>,
}

/// What an operator does for a CGGMP key, whose signer set cannot change.
const ECDSA_CEREMONY: &str = "cggmp24 cannot reshare: create a new ECDSA key without the compromised signer (roster update, then `coffer vault create`), move the funds to its addresses with ordinary transfers signed by the old key while a threshold of honest signers remains, then retire the old key (docs/refresh.md, \"Replacing a signer of an ECDSA key\")";

fn replace_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "keys")
        .iter()
        .map(|k| {
            let what = if k["reshared"] == json!(true) {
                format!(
                    "reshared without {}: epoch {}, same public key",
                    cell(&v["removed"]),
                    cell(&k["epoch"])
                )
            } else {
                cell(&k["action"])
            };
            vec![cell(&k["key_id"]), cell(&k["scheme"]), what]
        })
        .collect();
    table(&["KEY", "SCHEME", "RESULT"], &rows)
}

pub(crate) fn run(args: ReplaceArgs) -> Result<(), Failure> {
    let json = args.common.json;
    // (key id, scheme name when known)
    let mut targets: Vec<(String, Option<String>)> = Vec::new();
    if let Some(vault) = &args.vault {
        let reader = connect(&args.common, Natural::Role(&["admin"]))?;
        let v = reader.client.call(
            "GET",
            &format!("/v1/vaults/{}", check_id("vault", vault)?),
            None,
        )?;
        for k in items(&v, "keys") {
            let id = k["key_id"]
                .as_str()
                .ok_or_else(|| Failure("the server listed a vault key without an id".into()))?;
            targets.push((id.to_string(), k["scheme"].as_str().map(str::to_string)));
        }
    }
    for k in &args.keys {
        targets.push((check_id("key", k)?.to_string(), None));
    }
    let operator = connect(&args.common, Natural::Operator)?;
    let mut out = Vec::new();
    let mut failed = false;
    for (id, scheme) in targets {
        let scheme = match scheme {
            Some(s) => s,
            None => operator
                .client
                .call("GET", &format!("/v1/keys/{id}"), None)?["scheme"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        if scheme == "ecdsa-secp256k1" {
            out.push(json!({"key_id": id, "scheme": scheme, "reshared": false, "action": ECDSA_CEREMONY}));
            continue;
        }
        match operator.client.call(
            "POST",
            &format!("/v1/keys/{id}/reshare"),
            Some(&json!({ "remove": [args.remove] })),
        ) {
            Ok(k) => out.push(json!({
                "key_id": id,
                "scheme": scheme,
                "reshared": true,
                "epoch": k["epoch"],
                "public_key": k["public_key"],
            })),
            Err(e) => {
                failed = true;
                out.push(json!({"key_id": id, "scheme": scheme, "reshared": false, "action": format!("FAILED: {} ({})", e.message, e.code)}));
            }
        }
    }
    let v = json!({"removed": args.remove, "keys": out});
    show(json, &v, replace_text)?;
    if failed {
        return Err(Failure("some keys were not reshared (see above)".into()));
    }
    Ok(())
}
