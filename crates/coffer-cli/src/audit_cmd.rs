//! `coffer audit ...`: the tenant's hash-chained audit log. `list` and `export` read it
//! through the API; `verify FILE` checks an export offline (every hash, every link, no gap)
//! with the same code the server uses, so a verifier needs no trust in the server;
//! `verify --server` asks the server to check its own chains.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use coffer_server::audit::{parse_export_full, verify_export, ChainSummary};

use crate::client::{connect, CommonArgs, Natural};
use crate::output::{cell, fields, items, short, show, table, time};
use crate::Failure;

const AUDITORS: Natural = Natural::Role(&["auditor", "admin"]);

/// `coffer audit ...`.
#[derive(Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Lists entries of the caller's tenant chain.
    List {
        /// Only entries after this sequence number.
        #[arg(long)]
        after: Option<u64>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Exports the chain (one JSON entry per line) after checking it here.
    Export {
        /// Writes the export to FILE (default: prints it).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verifies an export offline (no server needed), or with --server the server's chains.
    Verify {
        /// The export file.
        #[arg(required_unless_present = "server", conflicts_with = "server")]
        file: Option<PathBuf>,
        /// Asks the server to verify its chains instead.
        #[arg(long)]
        server: bool,
    },
}

/// Verifies an export's text; the error names the first bad entry.
pub(crate) fn verify_text(text: &str) -> Result<Vec<ChainSummary>, Failure> {
    let export =
        parse_export_full(text).map_err(|e| Failure(format!("the export is broken: {e}")))?;
    verify_export(&export).map_err(|e| Failure(format!("the export is broken: {e}")))
}

/// The export text of a `GET /v1/audit/export` answer.
pub(crate) fn export_text(v: &Value) -> Result<&str, Failure> {
    v["export"]
        .as_str()
        .ok_or_else(|| Failure("the server's export has no \"export\" text".into()))
}

/// Verifies a `GET /v1/audit/export` answer here ([`verify_text`]) and checks that the
/// tenant's head is the one the server reported. Returns the chains.
pub(crate) fn verify_export_answer(v: &Value) -> Result<Vec<ChainSummary>, Failure> {
    let chains = verify_text(export_text(v)?)?;
    let server_head = v["verified"]["head"].as_str();
    let ours = chains
        .iter()
        .find(|c| Some(c.tenant.as_str()) == v["tenant"].as_str())
        .map(|c| c.head.as_str());
    if server_head.is_some() && ours.is_some() && server_head != ours {
        return Err(Failure(format!(
            "the export's head {} is not the head the server reported ({})",
            ours.unwrap_or_default(),
            server_head.unwrap_or_default()
        )));
    }
    Ok(chains)
}

fn verify_file(path: &Path) -> Result<Vec<ChainSummary>, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    verify_text(&text).map_err(|e| Failure(format!("{}: {}", path.display(), e.0)))
}

fn chains_text(chains: &Value) -> String {
    let rows: Vec<Vec<String>> = chains
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|c| vec![cell(&c["tenant"]), cell(&c["entries"]), cell(&c["head"])])
        .collect();
    table(&["TENANT", "ENTRIES", "HEAD"], &rows)
}

fn entries_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "entries")
        .iter()
        .map(|e| {
            vec![
                cell(&e["seq"]),
                time(&e["at"]),
                short(&e["actor"]),
                cell(&e["action"]),
                cell(&e["object"]),
            ]
        })
        .collect();
    table(&["SEQ", "AT", "ACTOR", "ACTION", "OBJECT"], &rows)
}

pub(crate) fn run(args: AuditArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        AuditCommand::List { after, limit } => {
            let mut query = Vec::new();
            if let Some(a) = after {
                query.push(format!("after={a}"));
            }
            if let Some(l) = limit {
                query.push(format!("limit={l}"));
            }
            let path = if query.is_empty() {
                "/v1/audit".to_string()
            } else {
                format!("/v1/audit?{}", query.join("&"))
            };
            let caller = connect(&args.common, AUDITORS)?;
            let v = caller.client.call("GET", &path, None)?;
            show(json, &v, entries_text)
        }
        AuditCommand::Export { out } => {
            let caller = connect(&args.common, AUDITORS)?;
            let v = caller.client.call("GET", "/v1/audit/export", None)?;
            let text = export_text(&v)?;
            if let Some(file) = &out {
                std::fs::write(file, text)
                    .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
            }
            // Checked here too: an export the server calls verified but that does not verify
            // is reported (after it is written, for whoever investigates).
            let chains = verify_export_answer(&v)?;
            match out {
                Some(file) => {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("export");
                        o.insert("file".into(), json!(file));
                        o.insert("chains".into(), json!(chains));
                    }
                    show(json, &v, |v| {
                        format!(
                            "{}\n\n{}",
                            fields(&[
                                ("tenant", cell(&v["tenant"])),
                                ("written to", cell(&v["file"]))
                            ]),
                            chains_text(&v["chains"])
                        )
                    })
                }
                // Without --out the text is the export itself (redirect it to a file).
                None => show(json, &v, |_| text.to_string()),
            }
        }
        AuditCommand::Verify { file, server } => {
            if server {
                let caller = connect(&args.common, AUDITORS)?;
                let v = caller.client.call("GET", "/v1/audit/verify", None)?;
                return show(json, &v, |v| {
                    format!("ok: {}\n\n{}", cell(&v["ok"]), chains_text(&v["chains"]))
                });
            }
            let file = file.ok_or_else(|| Failure("give the export FILE or --server".into()))?;
            let chains = verify_file(&file)?;
            let v = json!({ "ok": true, "file": file, "chains": chains });
            show(json, &v, |v| {
                format!(
                    "{}: the chain verifies\n\n{}",
                    file.display(),
                    chains_text(&v["chains"])
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use coffer_server::audit::{to_export, AuditEntry, AuditEvent};

    fn chain() -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for (i, action) in ["tenant.created", "user.created", "vault.created"]
            .iter()
            .enumerate()
        {
            let e = AuditEntry::next(
                out.last(),
                AuditEvent {
                    tenant: "t-1".into(),
                    actor: "ab".repeat(32),
                    action: (*action).into(),
                    object: format!("o-{i}"),
                    detail: json!({}),
                },
                1_700_000_000 + i as i64,
            );
            out.push(e);
        }
        out
    }

    #[test]
    fn offline_verification_reports_heads_and_names_the_bad_entry() {
        let entries = chain();
        let text = to_export(&entries);
        let chains = verify_text(&text).unwrap();
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].entries, 3);
        assert_eq!(chains[0].head, entries[2].hash);
        let mut altered = entries.clone();
        altered[1].object = "o-x".into();
        let e = verify_text(&to_export(&altered)).unwrap_err().0;
        assert!(e.contains("entry 1 of t-1"), "{e}");
        let mut cut = entries.clone();
        cut.remove(1);
        let e = verify_text(&to_export(&cut)).unwrap_err().0;
        assert!(e.contains("t-1"), "{e}");
        let e = verify_text("{not json}\n").unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn files_are_read_and_named_in_errors() {
        let dir = std::env::temp_dir().join(format!("coffer-cli-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("export.jsonl");
        std::fs::write(&f, to_export(&chain())).unwrap();
        assert_eq!(verify_file(&f).unwrap()[0].entries, 3);
        let mut bad = chain();
        bad[2].detail = json!({"amount": "1"});
        std::fs::write(&f, to_export(&bad)).unwrap();
        let e = verify_file(&f).unwrap_err().0;
        assert!(e.contains("export.jsonl") && e.contains("entry 2"), "{e}");
        assert!(verify_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let t = chains_text(&json!([{"tenant": "t-1", "entries": 3, "head": "ab"}]));
        assert!(t.contains("t-1") && t.contains('3'));
        let t = entries_text(
            &json!({"entries": [{"seq": 0, "at": 0, "actor": "server", "action": "a.b", "object": ""}]}),
        );
        assert!(t.contains("a.b"), "{t}");
    }
}
