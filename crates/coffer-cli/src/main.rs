//! The `coffer` command. A thin binary: argument parsing, the output contract (on success
//! one JSON object on stdout, or for the custody commands readable text unless `--json`;
//! on failure an empty stdout, a non-zero exit and a last stderr line saying what is
//! wrong), and calls into the library crates.

#![forbid(unsafe_code)]

mod admin_cmd;
mod alerts_cmd;
mod amount;
mod audit_cmd;
mod backup_cmd;
mod bench_cmd;
mod ceremony_cmd;
mod chain_cmd;
mod client;
mod cluster_bench;
mod demo;
mod dev;
mod drill;
mod hexarg;
mod incident_cmd;
mod key_cmd;
mod logging;
mod node_cmd;
mod offline_demo;
mod output;
mod policy_cmd;
mod replace_cmd;
mod tx_cmd;
mod vault_cmd;
mod webhook_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Coffer: MPC custody. Nobody ever holds a whole private key.
#[derive(Parser)]
#[command(name = "coffer", version, about, disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per process: the size of the chain options does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Offline ceremonies: every party in this process (development, rehearsal and tests).
    #[command(subcommand)]
    Ceremony(ceremony_cmd::CeremonyCommand),
    /// Runs the whole path once on an ephemeral cluster (a server and three signer
    /// processes): a key per scheme by DKG, signatures by two signers, independent checks.
    Demo(demo::DemoArgs),
    /// A local cluster for development: a server on SQLite and N signer processes.
    Dev(dev::DevArgs),
    /// Keys across the signers (dev mode: before the custody API).
    #[command(subcommand)]
    Key(key_cmd::KeyCommand),
    /// A signer node: identity, enrolment, daemon.
    #[command(subcommand)]
    Signer(node_cmd::SignerCommand),
    /// The server: relay, sessions, API.
    #[command(subcommand)]
    Server(node_cmd::ServerCommand),
    /// Measures every protocol through the raw libraries and through Coffer, in one run.
    Bench(bench_cmd::BenchArgs),
    /// Prints the build's version and security-relevant build features.
    Version,
    /// Who the calling credential is (key, role, tenant, user).
    Whoami(admin_cmd::WhoamiArgs),
    /// Tenants (platform operators).
    Tenant(admin_cmd::TenantArgs),
    /// A tenant's users and their credentials.
    User(admin_cmd::UserArgs),
    /// Vaults: a threshold key per scheme, made by DKG on the signers.
    Vault(vault_cmd::VaultArgs),
    /// Wallets: an asset on one of a vault's keys.
    Wallet(vault_cmd::WalletArgs),
    /// A wallet's addresses.
    Address(vault_cmd::AddressArgs),
    /// A vault's policy: groups and rules, signed by a quorum of admin keys.
    Policy(policy_cmd::PolicyArgs),
    /// Transfer requests: create, approve, reject, list, show, wait.
    Tx(tx_cmd::TxArgs),
    /// The hash-chained audit log: list, export, verify.
    Audit(audit_cmd::AuditArgs),
    /// Alerts the server's detectors raised: list, show, ack.
    Alerts(alerts_cmd::AlertsArgs),
    /// Webhook endpoints: add (prints the signing secret once), list, deliveries, retry,
    /// remove.
    Webhook(webhook_cmd::WebhookArgs),
    /// Breach response: refresh every share of a vault's keys, or of every key.
    Incident(incident_cmd::IncidentArgs),
    /// Share backups: recovery keys, kit export, verify, restore.
    #[command(subcommand)]
    Backup(backup_cmd::BackupCommand),
}

/// A command's failure: the message for the last stderr line.
#[derive(Debug)]
pub(crate) struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// Prints a JSON value as the single stdout object.
pub(crate) fn emit(value: &serde_json::Value) -> Result<(), Failure> {
    let text =
        serde_json::to_string(value).map_err(|e| Failure(format!("cannot encode output: {e}")))?;
    println!("{text}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            // Usage first, then the error itself as the last line.
            let rendered = e.render().to_string();
            let mut error_line = None;
            for line in rendered.lines().filter(|l| !l.trim().is_empty()) {
                if line.starts_with("error:") && error_line.is_none() {
                    error_line = Some(line.to_string());
                } else if !line.starts_with("For more information") {
                    eprintln!("{line}");
                }
            }
            eprintln!(
                "{}",
                error_line.unwrap_or_else(|| "error: invalid arguments".into())
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Ceremony(c) => ceremony_cmd::run(c),
        Command::Demo(args) => demo::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Key(c) => key_cmd::run(c),
        Command::Backup(c) => backup_cmd::run(c),
        Command::Signer(c) => node_cmd::signer(c),
        Command::Server(c) => node_cmd::server(c),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Whoami(args) => admin_cmd::whoami(args),
        Command::Tenant(args) => admin_cmd::tenant(args),
        Command::User(args) => admin_cmd::user(args),
        Command::Vault(args) => vault_cmd::vault(args),
        Command::Wallet(args) => vault_cmd::wallet(args),
        Command::Address(args) => vault_cmd::address(args),
        Command::Policy(args) => policy_cmd::run(args),
        Command::Tx(args) => tx_cmd::run(args),
        Command::Audit(args) => audit_cmd::run(args),
        Command::Alerts(args) => alerts_cmd::run(args),
        Command::Webhook(args) => webhook_cmd::run(args),
        Command::Incident(args) => incident_cmd::run(args),
        Command::Version => emit(&serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "insecure_test_primes": coffer_proto::primes::TEST_POOL_COMPILED_IN,
            "relay_faults": coffer_server::RELAY_FAULTS_COMPILED_IN,
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn custody_options_go_anywhere_after_the_group() {
        for args in [
            &["coffer", "vault", "list", "--json", "--as", "ops"][..],
            &["coffer", "--help"][..],
            &["coffer", "vault", "--json", "list"][..],
            &[
                "coffer", "tx", "approve", "r-1", "--as", "alice", "--dev", "/d",
            ][..],
            &[
                "coffer",
                "tx",
                "create",
                "--wallet",
                "w",
                "--amount",
                "0.5btc",
                "--to",
                "x",
                "--credential",
                "/k",
            ][..],
            &["coffer", "audit", "verify", "f.jsonl"][..],
            &["coffer", "audit", "verify", "--server"][..],
            &[
                "coffer",
                "webhook",
                "add",
                "https://hooks.example.com/coffer",
                "--events",
                "transaction.signed,transaction.failed",
                "--as",
                "ops",
            ][..],
            &["coffer", "webhook", "list", "--json"][..],
            &["coffer", "webhook", "deliveries", "wh-1", "--limit", "5"][..],
            &["coffer", "webhook", "retry", "ev-1"][..],
            &["coffer", "webhook", "remove", "wh-1"][..],
            &[
                "coffer",
                "whoami",
                "--as",
                "admin-2",
                "--api",
                "http://127.0.0.1:1",
            ][..],
            &[
                "coffer",
                "user",
                "add",
                "dora",
                "--role",
                "viewer",
                "--generate",
                "/tmp/x.key",
            ][..],
            &[
                "coffer",
                "policy",
                "sign",
                "p.json",
                "--admin-key",
                "a",
                "--admin-key",
                "b",
            ][..],
        ] {
            let r = Cli::try_parse_from(args);
            assert!(
                r.is_ok() || args.contains(&"--help"),
                "{args:?}: {:?}",
                r.err().map(|e| e.to_string())
            );
        }
        for bad in [
            &[
                "coffer",
                "tx",
                "approve",
                "r-1",
                "--as",
                "alice",
                "--credential",
                "/k",
            ][..],
            &["coffer", "audit", "verify"][..],
            &["coffer", "webhook", "add"][..],
            &["coffer", "webhook", "remove"][..],
            &["coffer", "audit", "verify", "f", "--server"][..],
            &["coffer", "user", "add", "dora", "--role", "viewer"][..],
            &[
                "coffer",
                "user",
                "add",
                "dora",
                "--role",
                "viewer",
                "--key",
                "ab",
                "--generate",
                "f",
            ][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
