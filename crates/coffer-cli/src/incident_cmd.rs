//! `coffer incident refresh --vault ID | --all`: the breach response. Every share of every
//! key of a vault (or of the platform) is refreshed on every signer in two phases (staged,
//! then committed everywhere, old shares deleted last; a failure rolls the key back), and
//! the result is printed per key: old epoch -> new epoch, same public key.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{check_id, connect, CommonArgs, Natural};
use crate::output::{cell, items, show, table};
use crate::Failure;

/// `coffer incident ...`.
#[derive(Args)]
pub(crate) struct IncidentArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: IncidentCommand,
}

#[derive(Subcommand)]
enum IncidentCommand {
    /// Refreshes every share of a vault's keys (tenant admin) or of every key (--all,
    /// platform operator): new epoch, same public keys and addresses; stolen shares stop
    /// combining with the new ones. Allowed while the vault is frozen.
    Refresh {
        /// The vault whose keys to refresh.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        vault: Option<String>,
        /// Every key the platform holds.
        #[arg(long)]
        all: bool,
    },
}

fn refresh_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "keys")
        .iter()
        .map(|k| {
            let outcome = if k["ok"] == json!(true) {
                format!(
                    "epoch {} -> {}, {}",
                    cell(&k["old_epoch"]),
                    cell(&k["new_epoch"]),
                    if k["same_public_key"] == json!(true) {
                        "same public key"
                    } else {
                        "PUBLIC KEY CHANGED"
                    }
                )
            } else {
                format!(
                    "FAILED at epoch {}: {}",
                    cell(&k["old_epoch"]),
                    cell(&k["error"]["message"])
                )
            };
            vec![
                cell(&k["key_id"]),
                cell(&k["scheme"]),
                outcome,
                cell(&k["public_key"]),
            ]
        })
        .collect();
    table(&["KEY", "SCHEME", "REFRESH", "PUBLIC KEY"], &rows)
}

pub(crate) fn run(args: IncidentArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        IncidentCommand::Refresh { vault, all } => {
            let v = match (vault, all) {
                (Some(id), false) => {
                    let caller = connect(&args.common, Natural::Role(&["admin"]))?;
                    caller.client.call(
                        "POST",
                        &format!("/v1/vaults/{}/refresh", check_id("vault", &id)?),
                        Some(&json!({})),
                    )?
                }
                (None, true) => {
                    let caller = connect(&args.common, Natural::Operator)?;
                    caller.client.call(
                        "POST",
                        "/v1/incident/refresh",
                        Some(&json!({ "all": true })),
                    )?
                }
                _ => return Err(Failure("give exactly one of --vault ID and --all".into())),
            };
            show(json, &v, refresh_text)?;
            if v["ok"] == json!(true) {
                Ok(())
            } else {
                Err(Failure(
                    "some keys were not refreshed (each was rolled back to its epoch; see above)"
                        .into(),
                ))
            }
        }
    }
}
