//! `coffer alerts ...`: the alerts the server's detectors raised for the caller's tenant
//! (`list`, newest first, filtered by minimum severity or unacknowledged ones) and their
//! acknowledgement with a reason (`ack`, admins; the server audits it).

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{check_id, connect, CommonArgs, Natural};
use crate::output::{cell, fields, items, show, table, time};
use crate::Failure;

/// Who lists alerts by default.
const READERS: Natural = Natural::Role(&["admin", "auditor", "approver"]);
/// Who acknowledges by default.
const ACKERS: Natural = Natural::Role(&["admin"]);
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// `coffer alerts ...`.
#[derive(Args)]
pub(crate) struct AlertsArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: AlertsCommand,
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Lists alerts, newest first.
    List {
        /// Only alerts of at least this severity (low, medium, high, critical).
        #[arg(long, value_name = "S")]
        severity: Option<String>,
        /// Only alerts nobody acknowledged yet.
        #[arg(long)]
        unacked: bool,
        /// At most this many (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Shows one alert with its evidence.
    Show {
        /// The alert's id (al-...).
        id: String,
    },
    /// Acknowledges an alert, saying why.
    Ack {
        /// The alert's id (al-...).
        id: String,
        /// Why (what was checked, what was done).
        #[arg(long)]
        reason: String,
    },
    /// Shows, or with --set changes, what the server does by itself per alert severity:
    /// `notify` (every alert), `extra_approval` (the alert's vault's requests need one approval
    /// more than their rule) or `freeze` (also freeze the alert's vault at once).
    Responses {
        /// SEVERITY=RESPONSE, e.g. critical=freeze (repeat; severities not given notify).
        #[arg(long = "set", value_name = "SEVERITY=RESPONSE")]
        set: Vec<String>,
    },
}

/// The body of `PUT /v1/tenant/alert-responses` from `--set severity=response` pairs.
fn responses_body(set: &[String]) -> Result<Value, Failure> {
    let mut body = serde_json::Map::new();
    for pair in set {
        let (severity, response) = pair.split_once('=').ok_or_else(|| {
            Failure(format!(
                "--set {pair:?}: write SEVERITY=RESPONSE (critical=freeze)"
            ))
        })?;
        if !["low", "medium", "high", "critical"].contains(&severity) {
            return Err(Failure(format!(
                "--set {pair:?}: the severity is low, medium, high or critical"
            )));
        }
        if !["notify", "extra_approval", "freeze"].contains(&response) {
            return Err(Failure(format!(
                "--set {pair:?}: the response is notify, extra_approval or freeze"
            )));
        }
        body.insert(severity.to_string(), json!(response));
    }
    Ok(Value::Object(body))
}

fn responses_text(v: &Value) -> String {
    fields(
        &["low", "medium", "high", "critical"]
            .iter()
            .map(|s| (*s, cell(&v[*s])))
            .collect::<Vec<_>>(),
    )
}

fn list_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "alerts")
        .iter()
        .map(|a| {
            vec![
                cell(&a["id"]),
                time(&a["created_at"]),
                cell(&a["severity"]),
                cell(&a["kind"]),
                if a["acked_at"].is_null() {
                    "-".into()
                } else {
                    "yes".into()
                },
                cell(&a["explanation"]),
            ]
        })
        .collect();
    table(
        &["ID", "AT", "SEVERITY", "KIND", "ACKED", "EXPLANATION"],
        &rows,
    )
}

fn alert_text(a: &Value) -> String {
    fields(&[
        ("id", cell(&a["id"])),
        ("at", time(&a["created_at"])),
        ("severity", cell(&a["severity"])),
        ("kind", cell(&a["kind"])),
        ("vault", cell(&a["vault"])),
        ("wallet", cell(&a["wallet"])),
        ("explanation", cell(&a["explanation"])),
        ("evidence", a["evidence"].to_string()),
        ("acked by", cell(&a["acked_by"])),
        ("acked at", time(&a["acked_at"])),
        ("reason", cell(&a["ack_reason"])),
    ])
}

/// The query string of `list`; refuses an unknown severity here, before any call.
fn list_query(
    severity: Option<&str>,
    unacked: bool,
    limit: Option<u32>,
) -> Result<String, Failure> {
    let mut query = Vec::new();
    if let Some(s) = severity {
        if !SEVERITIES.contains(&s) {
            return Err(Failure(format!(
                "unknown severity {s:?} (low, medium, high, critical)"
            )));
        }
        query.push(format!("severity={s}"));
    }
    if unacked {
        query.push("acked=false".into());
    }
    if let Some(l) = limit {
        query.push(format!("limit={l}"));
    }
    Ok(if query.is_empty() {
        "/v1/alerts".into()
    } else {
        format!("/v1/alerts?{}", query.join("&"))
    })
}

pub(crate) fn run(args: AlertsArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        AlertsCommand::List {
            severity,
            unacked,
            limit,
        } => {
            let path = list_query(severity.as_deref(), unacked, limit)?;
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call("GET", &path, None)?;
            show(json, &v, list_text)
        }
        AlertsCommand::Show { id } => {
            let id = check_id("alert", &id)?;
            let caller = connect(&args.common, READERS)?;
            let v = caller
                .client
                .call("GET", &format!("/v1/alerts/{id}"), None)?;
            show(json, &v, alert_text)
        }
        AlertsCommand::Responses { set } => {
            let v = if set.is_empty() {
                let caller = connect(&args.common, READERS)?;
                caller
                    .client
                    .call("GET", "/v1/tenant/alert-responses", None)?
            } else {
                let body = responses_body(&set)?;
                let caller = connect(&args.common, ACKERS)?;
                caller
                    .client
                    .call("PUT", "/v1/tenant/alert-responses", Some(&body))?
            };
            show(json, &v, responses_text)
        }
        AlertsCommand::Ack { id, reason } => {
            let id = check_id("alert", &id)?;
            if reason.trim().is_empty() {
                return Err(Failure("--reason must say why".into()));
            }
            let caller = connect(&args.common, ACKERS)?;
            let v = caller.client.call(
                "POST",
                &format!("/v1/alerts/{id}/ack"),
                Some(&json!({ "reason": reason })),
            )?;
            show(json, &v, alert_text)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn list_query_carries_the_filters_and_refuses_unknown_severities() {
        assert_eq!(list_query(None, false, None).unwrap(), "/v1/alerts");
        assert_eq!(
            list_query(Some("high"), true, Some(5)).unwrap(),
            "/v1/alerts?severity=high&acked=false&limit=5"
        );
        assert!(list_query(Some("urgent"), false, None).is_err());
    }

    #[test]
    fn responses_are_severity_response_pairs() {
        let body = responses_body(&[
            "critical=freeze".into(),
            "high=extra_approval".into(),
            "low=notify".into(),
        ])
        .unwrap();
        assert_eq!(
            body,
            json!({"critical": "freeze", "high": "extra_approval", "low": "notify"})
        );
        for bad in ["critical", "severe=freeze", "critical=explode"] {
            assert!(responses_body(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
