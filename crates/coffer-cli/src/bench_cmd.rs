//! `coffer bench`: the performance suite (see the `coffer-bench` crate), printed as a table,
//! or as one JSON object with `--json`; and `coffer bench cluster`, signing through a real
//! cluster against the raw libraries (see [`crate::cluster_bench`]).

use clap::{Args, Subcommand};
use coffer_proto::primes::PrimeSource;

use crate::{emit, Failure};

/// `coffer bench [--quick] [--json]`, or `coffer bench cluster ...`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    cmd: Option<BenchCommand>,
    /// Fewer samples; CGGMP's multi-second operations only at 2-of-3.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Benchmarks beyond the in-process suite.
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Signing through an ephemeral cluster versus the raw libraries, in one run.
    ///
    /// A server and three signer processes (2-of-3) on this machine: latency p50/p99 and
    /// throughput per concurrency level for the FROST schemes; CGGMP ECDSA interactive and
    /// presigned, and the presignature pool's rate and CPU cost, within a time budget.
    /// Every signature is verified independently.
    Cluster(crate::cluster_bench::ClusterArgs),
}

pub(crate) fn run(args: BenchArgs) -> Result<(), Failure> {
    if let Some(BenchCommand::Cluster(c)) = args.cmd {
        return crate::cluster_bench::run(c);
    }
    let source = PrimeSource::from_env();
    eprintln!(
        "preparing safe primes for 5 parties{} (not measured)...",
        if source.is_secure() {
            ", about a minute per party"
        } else {
            " from the public test pool"
        }
    );
    let started = std::time::Instant::now();
    let primes = source.take(5)?;
    eprintln!("primes ready in {:.0} s", started.elapsed().as_secs_f64());
    let report = coffer_bench::run(
        coffer_bench::Options { quick: args.quick },
        &primes,
        |step| eprintln!("bench: {step}"),
    )?;
    if args.json {
        let value = serde_json::to_value(&report).map_err(|e| Failure(e.to_string()))?;
        emit(&serde_json::json!({ "bench": value, "quick": args.quick }))
    } else {
        print!("{}", coffer_bench::render(&report));
        Ok(())
    }
}
