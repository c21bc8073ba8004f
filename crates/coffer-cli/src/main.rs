//! The `coffer` command. A thin binary: argument parsing, the output contract (one JSON
//! object on stdout on success; on failure an empty stdout, a non-zero exit and a last
//! stderr line saying what is wrong), and calls into the library crates.

#![forbid(unsafe_code)]

mod bench_cmd;
mod ceremony_cmd;
mod client;
mod cluster_bench;
mod demo;
mod dev;
mod hexarg;
mod key_cmd;
mod logging;
mod node_cmd;
mod offline_demo;

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
}

/// A command's failure: the message for the last stderr line.
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
        Command::Signer(c) => node_cmd::signer(c),
        Command::Server(c) => node_cmd::server(c),
        Command::Bench(args) => bench_cmd::run(args),
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
