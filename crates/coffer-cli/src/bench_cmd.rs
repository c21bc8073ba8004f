//! `coffer bench`: the performance suite (see the `coffer-bench` crate), printed as a table,
//! or as one JSON object with `--json`.

use clap::Args;
use coffer_proto::primes::PrimeSource;

use crate::{emit, Failure};

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Fewer samples; CGGMP's multi-second operations only at 2-of-3.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: BenchArgs) -> Result<(), Failure> {
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
