//! `coffer webhook ...`: a tenant's webhook endpoints. `add` registers a URL (optionally
//! only for some event types) and prints its signing secret, which the server shows this
//! once; `list` shows the endpoints (never a secret); `deliveries` an endpoint's deliveries
//! with their state, attempts and last error; `retry` re-arms a dead delivery; `remove`
//! stops deliveries to an endpoint. Adding, removing and retrying are admin commands.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{check_id, connect, CommonArgs, Natural};
use crate::output::{cell, fields, items, show, table, time};
use crate::Failure;

/// Who reads endpoints by default: any credential of the tenant will do.
const READERS: Natural = Natural::Role(&["admin", "auditor", "viewer", "initiator", "approver"]);

/// `coffer webhook ...`.
#[derive(Args)]
pub(crate) struct WebhookArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: WebhookCommand,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Adds an endpoint (http or https) and prints its signing secret (shown this once).
    Add {
        /// Where deliveries are POSTed.
        url: String,
        /// Only these event types, comma-separated (default: every event), e.g.
        /// transaction.signed,transaction.failed.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Lists the tenant's endpoints.
    List,
    /// Shows an endpoint's deliveries, newest first.
    Deliveries {
        /// The endpoint id (wh-...).
        id: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Re-arms a dead delivery (its attempts start again).
    Retry {
        /// The delivery's event id (ev-...).
        event_id: String,
    },
    /// Removes an endpoint: nothing more is sent to it; its deliveries stay listed.
    Remove {
        /// The endpoint id (wh-...).
        id: String,
    },
}

/// The body of `POST /v1/webhooks`.
fn add_body(url: &str, events: &[String]) -> Value {
    let events: Vec<&str> = events
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if events.is_empty() {
        json!({ "url": url })
    } else {
        json!({ "url": url, "events": events })
    }
}

fn endpoint_text(v: &Value) -> String {
    let mut f = vec![
        ("id", cell(&v["id"])),
        ("url", cell(&v["url"])),
        (
            "events",
            if items(v, "events").is_empty() {
                "all".into()
            } else {
                cell(&v["events"])
            },
        ),
        ("created", time(&v["created_at"])),
    ];
    if !v["secret"].is_null() {
        f.push(("secret", cell(&v["secret"])));
    }
    let mut out = fields(&f);
    if !v["secret"].is_null() {
        out.push_str(
            "\nKeep the secret: it is shown only now. Check each delivery's Coffer-Signature \
             (HMAC-SHA256 over \"<t>.<event id>.<body>\" keyed with the secret's bytes).\n",
        );
    }
    out
}

fn deliveries_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "deliveries")
        .iter()
        .map(|d| {
            vec![
                cell(&d["event_id"]),
                cell(&d["event_type"]),
                cell(&d["data"]["request_id"]),
                cell(&d["state"]),
                cell(&d["attempts"]),
                cell(&d["last_error"]),
                time(&d["created_at"]),
            ]
        })
        .collect();
    table(
        &[
            "EVENT",
            "TYPE",
            "REQUEST",
            "STATE",
            "ATTEMPTS",
            "LAST ERROR",
            "CREATED",
        ],
        &rows,
    )
}

/// `coffer webhook ...`.
pub(crate) fn run(args: WebhookArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        WebhookCommand::Add { url, events } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller
                .client
                .call("POST", "/v1/webhooks", Some(&add_body(&url, &events)))?;
            show(json, &v, endpoint_text)
        }
        WebhookCommand::List => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call("GET", "/v1/webhooks", None)?;
            show(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v, "webhooks")
                    .iter()
                    .map(|e| {
                        vec![
                            cell(&e["id"]),
                            cell(&e["url"]),
                            if items(e, "events").is_empty() {
                                "all".into()
                            } else {
                                cell(&e["events"])
                            },
                            time(&e["created_at"]),
                        ]
                    })
                    .collect();
                table(&["ID", "URL", "EVENTS", "CREATED"], &rows)
            })
        }
        WebhookCommand::Deliveries { id, limit } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call(
                "GET",
                &format!(
                    "/v1/webhooks/{}/deliveries?limit={}",
                    check_id("webhook", &id)?,
                    limit.clamp(1, 1000)
                ),
                None,
            )?;
            show(json, &v, deliveries_text)
        }
        WebhookCommand::Retry { event_id } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller.client.call(
                "POST",
                &format!(
                    "/v1/webhooks/deliveries/{}/retry",
                    check_id("event", &event_id)?
                ),
                None,
            )?;
            show(json, &v, |d| {
                fields(&[
                    ("event", cell(&d["event_id"])),
                    ("state", cell(&d["state"])),
                    ("attempts", cell(&d["attempts"])),
                    ("last error", cell(&d["last_error"])),
                ])
            })
        }
        WebhookCommand::Remove { id } => {
            let caller = connect(&args.common, Natural::Role(&["admin"]))?;
            let v = caller.client.call(
                "DELETE",
                &format!("/v1/webhooks/{}", check_id("webhook", &id)?),
                None,
            )?;
            show(json, &v, |v| format!("removed {}", cell(&v["id"])))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_add_body_names_events_only_when_given() {
        assert_eq!(add_body("http://h/x", &[]), json!({"url": "http://h/x"}));
        assert_eq!(
            add_body(
                "http://h/x",
                &[
                    "transaction.signed".into(),
                    " transaction.failed".into(),
                    "".into()
                ]
            ),
            json!({"url": "http://h/x", "events": ["transaction.signed", "transaction.failed"]})
        );
    }

    #[test]
    fn the_secret_is_printed_with_a_warning_and_lists_say_all_events() {
        let text = endpoint_text(
            &json!({"id": "wh-1", "url": "http://h", "events": [], "created_at": 1, "secret": "ab"}),
        );
        assert!(
            text.contains("secret") && text.contains("shown only now"),
            "{text}"
        );
        assert!(text.contains("all"), "{text}");
        let text = endpoint_text(
            &json!({"id": "wh-1", "url": "http://h", "events": ["transaction.signed"], "created_at": 1}),
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
