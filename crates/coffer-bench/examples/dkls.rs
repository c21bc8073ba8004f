//! Prints the DKLs23 rows of the suite alone: `cargo run --release -p coffer-bench --example
//! dkls [-- --quick]`.

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    match coffer_bench::run_dkls(coffer_bench::Options { quick }, |p| eprintln!("{p}")) {
        Ok(report) => print!("{}", coffer_bench::render(&report)),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
