//! `coffer bench cluster`: signing through a real cluster, measured against the protocol
//! libraries called directly in the same process and the same run.
//!
//! The command starts an ephemeral cluster exactly as `coffer dev` does (a server and three
//! signer processes, threshold 2, API on loopback, in a temporary directory or in the new
//! directory given with `--keep`), with the server's signing pool off, waits until the
//! signers have finished generating their CGGMP safe primes (not measured; a few minutes on
//! a first start of a release build), and then measures:
//!
//! * **FROST (schnorr-bip340, ed25519).** One key per scheme by DKG across the three
//!   signers. At every concurrency level `C` (default 1, 16, 64) exactly `N` signing requests
//!   (default 1,000), each of a distinct message, spread over `C` client threads that each
//!   keep one HTTP connection (opened before timing). Pool off: every signature runs the
//!   full two-round protocol. Per-request latency is taken at the client; throughput is
//!   successful signatures over the level's wall clock. Baseline in the same run: frost-core
//!   called directly (`coffer_bench::raw`, 2-of-3, all parties in one thread, no network, no
//!   serialization), at least 100 samples, while the cluster is idle.
//! * **CGGMP ECDSA**, within `--ecdsa-seconds` (setup excluded): first the raw library in
//!   process with the cluster stopped (interactive signing, presigning, and the online step
//!   from a presignature); then the same cluster restarted with a pool of `--presign-pool`
//!   presignatures per key, one ECDSA key, and, in this order: the server filling the pool
//!   (wall clock, and CPU seconds of the server and signer processes per presignature from
//!   `/proc/PID/stat`), interactive signing of digests at concurrency 1 (pool full, so
//!   nothing runs in the background), and one-round signing from pooled presignatures at
//!   concurrency 1 (the pool refills in the background meanwhile, as in production; the
//!   throughput is therefore the sustained rate the refill allows).
//!
//! Every signature the cluster returns is checked afterwards, outside the timings, against
//! the key's public key with the independent verifiers (`coffer_proto::verify`:
//! libsecp256k1, ed25519-dalek); one that does not verify fails the command. HTTP errors are
//! counted as failures and reported. p99 is given only with at least 100 samples (else
//! `null`). `--quick` lowers the defaults (200 signatures, concurrency 1,16, 60 s of ECDSA,
//! pool 3); explicit flags still win.
//!
//! With `--json`, stdout holds one object:
//!
//! ```text
//! {"cluster_bench": {
//!   "signers": 3, "threshold": 2, "quick": false, "seconds": 612.0,
//!   "machine": {"cores": 2, "cpu": "model name", "build": "release",
//!               "insecure_test_primes": false},
//!   "settings": {"signatures": 1000, "concurrency": [1, 16, 64], "ecdsa_seconds": 300,
//!                "presign_pool": 8},
//!   "schemes": [
//!     {"scheme": "schnorr-bip340", "key_id": "k-..", "raw_p50_ms": 1.1,
//!      "raw": {"what": "..", "samples": 1000, "p50_ms": .., "p99_ms": .., "mean_ms": ..,
//!              "min_ms": .., "max_ms": .., "throughput_per_s": ..},
//!      "levels": [{"mode": "interactive", "concurrency": 1, "requests": 1000,
//!                  "signatures": 1000, "failures": 0, "first_error": null, "verified": 1000,
//!                  "p50_ms": .., "p99_ms": .., "mean_ms": .., "min_ms": .., "max_ms": ..,
//!                  "wall_s": .., "throughput_per_s": .., "ratio_p50_vs_raw": ..,
//!                  "throughput_vs_raw": .., "cpu_s_per_signature": null,
//!                  "pooled": 0}, ...],
//!      "interference": {"wall_s": .., "other_cpu_s": .., "other_cpu_share": ..},
//!      "notes": ".."},
//!     {"scheme": "ed25519", ...},
//!     {"scheme": "ecdsa-secp256k1", "key_id": "k-..", "raw_p50_ms": (interactive),
//!      "raw": {..}, "raw_presign": {..}, "raw_online": {..}, "keygen_s": ..,
//!      "budget_s": 300, "spent_s": ..,
//!      "pool": {"target": 8, "filled": 8, "complete": true, "seconds": ..,
//!               "presignatures_per_s": .., "cpu_s_per_presignature": ..,
//!               "seconds_per_presignature_vs_raw": .., "cpu_vs_raw_presign": ..},
//!      "levels": [{"mode": "interactive", ...},
//!                 {"mode": "presigned", ..., "not_presigned": 0}],
//!      "notes": ".."}]}}
//! ```
//!
//! `interference` is the CPU that processes outside the benchmark used while a scheme was
//! measured (/proc/stat minus this process and the cluster's): on a shared machine it tells
//! how much the numbers may be disturbed.
//!
//! Ratios: `ratio_p50_vs_raw` is the level's p50 over the raw p50 of the same operation;
//! `throughput_vs_raw` is the level's throughput over one thread running the raw library
//! back to back (1000 / raw mean in ms). For presigned ECDSA the latency is compared with the
//! raw online step and the sustained rate with raw presign + online.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest;

use coffer_bench::stats::summarize;
use coffer_proto::primes::{PrimeSource, Primes};
use coffer_proto::{verify, Scheme};

use crate::client::{read_credential, ApiClient};
use crate::key_cmd::{self, ToSign};
use crate::{emit, Failure};

/// Signer processes in the benchmark cluster.
const SIGNERS: u16 = 3;
/// Signatures needed: every measurement is 2-of-3.
const THRESHOLD: u16 = 2;
/// Seconds a signing session may stall before the server abandons it.
const SESSION_TIMEOUT_SECS: u64 = 120;
/// Highest concurrency accepted (one client thread and connection each).
const MAX_CONCURRENCY: usize = 256;
/// Fewest in-process samples of a FROST signature (p99 needs 100).
const RAW_FROST_MIN: usize = 200;
/// Longest wait for the first pooled presignature, whatever the budget.
const FIRST_PRESIGNATURE_LIMIT: Duration = Duration::from_secs(600);
/// How often the pool level is polled.
const POLL: Duration = Duration::from_millis(100);

/// Options of `coffer bench cluster`.
#[derive(Args)]
pub(crate) struct ClusterArgs {
    /// Signatures per FROST scheme and concurrency level [default: 1000; 200 with --quick].
    #[arg(long)]
    signatures: Option<usize>,
    /// Seconds for the ECDSA measurements, setup excluded [default: 300; 60 with --quick].
    #[arg(long)]
    ecdsa_seconds: Option<u64>,
    /// Concurrency levels, comma-separated [default: 1,16,64; 1,16 with --quick].
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// ECDSA presignatures the server keeps ready for the key [default: 8; 3 with --quick].
    #[arg(long)]
    presign_pool: Option<usize>,
    /// Smaller defaults (see above), for a fast check.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Keep the cluster's data (keys, logs) in this new directory instead of a removed
    /// temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// The resolved settings of one run.
#[derive(Clone, Debug, Serialize)]
struct Settings {
    /// Signatures per FROST scheme and level.
    signatures: usize,
    /// Concurrency levels for FROST.
    concurrency: Vec<usize>,
    /// ECDSA measurement budget in seconds.
    ecdsa_seconds: u64,
    /// Presignature pool target.
    presign_pool: usize,
}

impl Settings {
    fn from_args(a: &ClusterArgs) -> Result<Self, Failure> {
        let s = Settings {
            signatures: a.signatures.unwrap_or(if a.quick { 200 } else { 1000 }),
            concurrency: a.concurrency.clone().unwrap_or_else(|| {
                if a.quick {
                    vec![1, 16]
                } else {
                    vec![1, 16, 64]
                }
            }),
            ecdsa_seconds: a.ecdsa_seconds.unwrap_or(if a.quick { 60 } else { 300 }),
            presign_pool: a.presign_pool.unwrap_or(if a.quick { 3 } else { 8 }),
        };
        if s.signatures == 0 {
            return Err(Failure("--signatures must be at least 1".into()));
        }
        if s.concurrency.is_empty()
            || s.concurrency
                .iter()
                .any(|c| !(1..=MAX_CONCURRENCY).contains(c))
        {
            return Err(Failure(format!(
                "--concurrency takes levels between 1 and {MAX_CONCURRENCY}, comma-separated"
            )));
        }
        if !(1..=64).contains(&s.presign_pool) {
            return Err(Failure("--presign-pool must be between 1 and 64".into()));
        }
        Ok(s)
    }
}

/// In-process (raw library) samples of one operation.
#[derive(Clone, Debug, Serialize)]
struct RawStats {
    /// What was timed.
    what: &'static str,
    /// Number of samples.
    samples: usize,
    /// Median, ms.
    p50_ms: f64,
    /// 99th percentile, ms (only with at least 100 samples).
    p99_ms: Option<f64>,
    /// Mean, ms.
    mean_ms: f64,
    /// Fastest, ms.
    min_ms: f64,
    /// Slowest, ms.
    max_ms: f64,
    /// One thread back to back: 1000 / mean.
    throughput_per_s: f64,
}

impl RawStats {
    fn of(what: &'static str, d: &[Duration]) -> Option<Self> {
        let s = summarize(d)?;
        let mean = mean_ms(d)?;
        Some(RawStats {
            what,
            samples: s.samples,
            p50_ms: s.median_ms,
            p99_ms: s.p99_ms,
            mean_ms: mean,
            min_ms: s.min_ms,
            max_ms: s.max_ms,
            throughput_per_s: if mean > 0.0 { 1000.0 / mean } else { 0.0 },
        })
    }
}

/// Signing through the cluster at one concurrency level.
#[derive(Clone, Debug, Serialize)]
struct Level {
    /// `interactive` (the full signing protocol) or `presigned` (one round from the pool).
    mode: &'static str,
    /// Client threads, each with one connection.
    concurrency: usize,
    /// Requests sent.
    requests: usize,
    /// Signatures counted (for `presigned`: those made from a pooled presignature).
    signatures: usize,
    /// Requests that failed (HTTP or transport errors).
    failures: usize,
    /// The first failure's message.
    first_error: Option<String>,
    /// Signatures checked with the independent verifier (all of them).
    verified: usize,
    /// Median latency, ms.
    p50_ms: Option<f64>,
    /// 99th percentile latency, ms (only with at least 100 samples).
    p99_ms: Option<f64>,
    /// Mean latency, ms.
    mean_ms: Option<f64>,
    /// Fastest, ms.
    min_ms: Option<f64>,
    /// Slowest, ms.
    max_ms: Option<f64>,
    /// Wall clock of the level, s.
    wall_s: f64,
    /// Signatures per second of wall clock.
    throughput_per_s: f64,
    /// p50 / raw p50.
    ratio_p50_vs_raw: Option<f64>,
    /// Throughput / (1000 / raw mean ms).
    throughput_vs_raw: Option<f64>,
    /// CPU seconds of the server and signer processes per signature (ECDSA only).
    cpu_s_per_signature: Option<f64>,
    /// Responses the server signed from its pool (one round).
    pooled: usize,
    /// `presigned` mode: successful requests that were signed interactively instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_presigned: Option<usize>,
}

/// The server filling its ECDSA presignature pool.
#[derive(Clone, Debug, Serialize)]
struct PoolFill {
    /// The pool target (`--presign-pool`).
    target: usize,
    /// Presignatures ready at the end.
    filled: usize,
    /// Whether the target was reached within the budget.
    complete: bool,
    /// From key creation to the last presignature observed, s.
    seconds: f64,
    /// Presignatures per second of wall clock.
    presignatures_per_s: Option<f64>,
    /// CPU seconds of the server and signer processes per presignature.
    cpu_s_per_presignature: Option<f64>,
    /// Wall seconds per presignature / raw presign p50 (one thread, all parties).
    seconds_per_presignature_vs_raw: Option<f64>,
    /// CPU seconds per presignature / raw presign p50.
    cpu_vs_raw_presign: Option<f64>,
}

/// One scheme's results.
#[derive(Clone, Debug, Serialize)]
struct SchemeResult {
    /// Scheme name.
    scheme: &'static str,
    /// The cluster key used.
    key_id: String,
    /// The raw library's median for the scheme's signing (ECDSA: interactive).
    raw_p50_ms: Option<f64>,
    /// The raw library's signing samples.
    raw: Option<RawStats>,
    /// ECDSA: raw presigning.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_presign: Option<RawStats>,
    /// ECDSA: raw online step from a presignature.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_online: Option<RawStats>,
    /// ECDSA: cluster key generation (DKG and auxiliary data), s; setup, not in the budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    keygen_s: Option<f64>,
    /// ECDSA: the budget, s.
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_s: Option<u64>,
    /// ECDSA: time the measurements took, s.
    #[serde(skip_serializing_if = "Option::is_none")]
    spent_s: Option<f64>,
    /// ECDSA: the pool fill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<PoolFill>,
    /// Signing through the cluster.
    levels: Vec<Level>,
    /// CPU other processes on the machine used while this scheme was measured.
    interference: Option<Interference>,
    /// What the numbers mean.
    notes: String,
}

/// CPU that processes outside the benchmark (neither this process nor the cluster's) used
/// during a measurement, from /proc/stat: on a shared machine, a sign of noise.
#[derive(Clone, Copy, Debug, Serialize)]
struct Interference {
    /// Wall clock of the measurement, s.
    wall_s: f64,
    /// CPU seconds used by other processes.
    other_cpu_s: f64,
    /// That CPU as a share of all cores over the wall clock.
    other_cpu_share: f64,
}

impl Interference {
    fn new(wall_s: f64, other_cpu_s: f64, cores: usize) -> Interference {
        Interference {
            wall_s,
            other_cpu_s,
            other_cpu_share: if wall_s > 0.0 {
                other_cpu_s / (wall_s * cores.max(1) as f64)
            } else {
                0.0
            },
        }
    }

    fn add(self, o: Interference, cores: usize) -> Interference {
        Interference::new(
            self.wall_s + o.wall_s,
            self.other_cpu_s + o.other_cpu_s,
            cores,
        )
    }
}

/// Busy clock ticks of the whole machine (every core), from the first line of /proc/stat.
fn system_busy_ticks() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    Some([0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum())
}

/// Watches the machine's CPU during a measurement.
struct Watch {
    started: Instant,
    system: Option<f64>,
    ours: f64,
}

/// CPU ticks of this process and the live processes in `pids`.
fn our_ticks(pids: &[u32]) -> f64 {
    std::iter::once(std::process::id())
        .chain(pids.iter().copied())
        .filter_map(process_cpu_ticks)
        .sum()
}

impl Watch {
    fn start(pids: &[u32]) -> Watch {
        Watch {
            started: Instant::now(),
            system: system_busy_ticks(),
            ours: our_ticks(pids),
        }
    }

    fn stop(&self, pids: &[u32], clk_tck: f64, cores: usize) -> Option<Interference> {
        let wall_s = self.started.elapsed().as_secs_f64();
        let system = system_busy_ticks()? - self.system?;
        let other_cpu_s = ((system - (our_ticks(pids) - self.ours)) / clk_tck).max(0.0);
        Some(Interference::new(wall_s, other_cpu_s, cores))
    }
}

/// The machine and build the numbers come from.
#[derive(Clone, Debug, Serialize)]
struct Machine {
    /// Cores available to this process.
    cores: usize,
    /// CPU model from /proc/cpuinfo.
    cpu: Option<String>,
    /// `release` or `debug`.
    build: &'static str,
    /// Whether the public test primes were used (test builds only).
    insecure_test_primes: bool,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
struct Report {
    /// Signer processes.
    signers: u16,
    /// Signatures needed.
    threshold: u16,
    /// `--quick` was given.
    quick: bool,
    /// Wall clock of the whole command, s.
    seconds: f64,
    /// Where it ran.
    machine: Machine,
    /// The settings used.
    settings: Settings,
    /// Per scheme.
    schemes: Vec<SchemeResult>,
}

/// The running cluster as the measurements see it.
struct Ctx {
    api_url: String,
    admin: PathBuf,
    pids: Vec<u32>,
    clk_tck: f64,
}

impl Ctx {
    /// A new client with its own connection.
    fn client(&self) -> Result<ApiClient, Failure> {
        Ok(ApiClient::new(&self.api_url, read_credential(&self.admin)?))
    }

    /// CPU seconds (user + system) the server and signer processes have used so far.
    fn cpu_seconds(&self) -> Option<f64> {
        self.pids
            .iter()
            .map(|p| process_cpu_ticks(*p))
            .sum::<Option<f64>>()
            .map(|t| t / self.clk_tck)
    }
}

/// utime + stime of a process, in clock ticks.
fn process_cpu_ticks(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second for /proc (USER_HZ; 100 on Linux unless `getconf` says else).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn machine() -> Machine {
    Machine {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        }),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        insecure_test_primes: !PrimeSource::from_env().is_secure(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean_ms(d: &[Duration]) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    Some(d.iter().map(|x| ms(*x)).sum::<f64>() / d.len() as f64)
}

/// A cluster key.
struct Key {
    id: String,
    scheme: Scheme,
    public_key: Vec<u8>,
}

fn create_key(client: &ApiClient, scheme: Scheme) -> Result<Key, Failure> {
    let v = key_cmd::create(client, scheme.name(), Some(THRESHOLD))?;
    let id = v["key_id"]
        .as_str()
        .ok_or_else(|| Failure("the server returned a key without an id".into()))?
        .to_string();
    let public_key = hex::decode(v["public_key"].as_str().unwrap_or_default())
        .map_err(|e| Failure(format!("key {id}: public key: {e}")))?;
    Ok(Key {
        id,
        scheme,
        public_key,
    })
}

/// A signature the cluster returned.
struct Signed {
    message: Vec<u8>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
    presigned: bool,
}

/// One request: its latency and what came back.
struct Sample {
    latency: Duration,
    result: Result<Signed, String>,
}

/// How a request asks for its signature.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The digest (ECDSA, BIP340) or message (Ed25519) itself: the full signing protocol.
    Message,
    /// A preimage the signers hash: ECDSA signs it from a pooled presignature when one is
    /// ready.
    Preimage,
}

/// Sends signing request `i` (its text is unique per key, tag and index) and times it.
fn sign_one(client: &ApiClient, key: &Key, tag: &str, i: usize, mode: Mode) -> Sample {
    let text = format!("coffer bench cluster {} {tag} {i}", key.id);
    let digest = sha2::Sha256::digest(text.as_bytes()).to_vec();
    let (arg, message) = match mode {
        Mode::Message => (hex::encode(&digest), digest),
        Mode::Preimage => (
            hex::encode(text.as_bytes()),
            match key.scheme {
                Scheme::Ed25519 => text.into_bytes(),
                _ => digest,
            },
        ),
    };
    let what = match mode {
        Mode::Message => ToSign::Message(&arg),
        Mode::Preimage => ToSign::Preimage(&arg),
    };
    let started = Instant::now();
    let response = key_cmd::sign(client, &key.id, what, None);
    let latency = started.elapsed();
    let result = response
        .map_err(|Failure(m)| m)
        .and_then(|v| parse_signed(&v, message));
    Sample { latency, result }
}

fn parse_signed(v: &Value, message: Vec<u8>) -> Result<Signed, String> {
    let field = |name: &str| {
        hex::decode(v[name].as_str().unwrap_or_default())
            .map_err(|e| format!("response field {name}: {e}"))
    };
    Ok(Signed {
        signature: field("signature")?,
        public_key: field("public_key")?,
        presigned: v["presigned"].as_bool().unwrap_or(false),
        message,
    })
}

/// Checks every returned signature against the key's public key with the independent
/// verifier; the first that fails fails the run. Returns how many were checked.
fn verify_all(key: &Key, samples: &[Sample]) -> Result<usize, Failure> {
    let mut checked = 0;
    for (n, s) in samples.iter().enumerate() {
        let Ok(signed) = &s.result else { continue };
        if signed.public_key != key.public_key {
            return Err(Failure(format!(
                "{} key {}: response {n} names public key {} instead of the key's {}",
                key.scheme.name(),
                key.id,
                hex::encode(&signed.public_key),
                hex::encode(&key.public_key)
            )));
        }
        if !verify::verify(
            key.scheme,
            &key.public_key,
            &signed.message,
            &signed.signature,
        )? {
            return Err(Failure(format!(
                "{} key {}: signature {n} ({}) does not verify",
                key.scheme.name(),
                key.id,
                hex::encode(&signed.signature)
            )));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Ratios against a raw baseline.
fn ratios(
    p50: Option<f64>,
    throughput: f64,
    raw_p50: Option<&RawStats>,
    raw_rate: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let ratio = p50
        .zip(raw_p50.map(|r| r.p50_ms))
        .filter(|(_, r)| *r > 0.0)
        .map(|(p, r)| p / r);
    let vs = raw_rate.filter(|r| *r > 0.0).map(|r| throughput / r);
    (ratio, vs)
}

/// Summarizes a level's samples; `counted` selects the signatures its latency covers.
#[allow(clippy::too_many_arguments)]
fn level(
    mode: &'static str,
    concurrency: usize,
    samples: &[Sample],
    verified: usize,
    wall: Duration,
    raw_p50: Option<&RawStats>,
    raw_rate: Option<f64>,
    cpu: Option<f64>,
) -> Level {
    let counted: Vec<Duration> = samples
        .iter()
        .filter(|s| match &s.result {
            Ok(signed) => mode != "presigned" || signed.presigned,
            Err(_) => false,
        })
        .map(|s| s.latency)
        .collect();
    let ok = samples.iter().filter(|s| s.result.is_ok()).count();
    let summary = summarize(&counted);
    let wall_s = wall.as_secs_f64();
    let throughput = if wall_s > 0.0 {
        counted.len() as f64 / wall_s
    } else {
        0.0
    };
    let p50 = summary.map(|s| s.median_ms);
    let (ratio, vs) = ratios(p50, throughput, raw_p50, raw_rate);
    Level {
        mode,
        concurrency,
        requests: samples.len(),
        signatures: counted.len(),
        failures: samples.len() - ok,
        first_error: samples
            .iter()
            .find_map(|s| s.result.as_ref().err().cloned()),
        verified,
        p50_ms: p50,
        p99_ms: summary.and_then(|s| s.p99_ms),
        mean_ms: mean_ms(&counted),
        min_ms: summary.map(|s| s.min_ms),
        max_ms: summary.map(|s| s.max_ms),
        wall_s,
        throughput_per_s: throughput,
        ratio_p50_vs_raw: ratio,
        throughput_vs_raw: vs,
        cpu_s_per_signature: cpu
            .filter(|_| !samples.is_empty())
            .map(|c| c / samples.len() as f64),
        pooled: samples
            .iter()
            .filter(|s| s.result.as_ref().is_ok_and(|x| x.presigned))
            .count(),
        not_presigned: (mode == "presigned").then_some(ok - counted.len()),
    }
}

/// Exactly `count` requests over `concurrency` threads with one connection each (opened
/// before timing). Returns the samples and the wall clock from the first request's start to
/// the last one's end.
fn run_level(
    ctx: &Ctx,
    key: &Key,
    concurrency: usize,
    count: usize,
    tag: &str,
) -> Result<(Vec<Sample>, Duration), Failure> {
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let c = ctx.client()?;
        c.call("GET", &format!("/v1/keys/{}", key.id), None)?;
        clients.push(c);
    }
    let next = AtomicUsize::new(0);
    let per_worker: Vec<(Instant, Instant, Vec<Sample>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let next = &next;
                scope.spawn(move || {
                    let first = Instant::now();
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        out.push(sign_one(&client, key, tag, i, Mode::Message));
                    }
                    (first, Instant::now(), out)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if per_worker.len() != concurrency {
        return Err(Failure("a benchmark worker thread panicked".into()));
    }
    let start = per_worker.iter().map(|w| w.0).min();
    let end = per_worker.iter().map(|w| w.1).max();
    let wall = match (start, end) {
        (Some(s), Some(e)) => e.duration_since(s),
        _ => Duration::ZERO,
    };
    let samples = per_worker.into_iter().flat_map(|w| w.2).collect();
    Ok((samples, wall))
}

/// Times `f` at least `min` and at most `max` times, stopping after `limit`.
fn time_raw<T>(
    min: usize,
    max: usize,
    limit: Duration,
    mut f: impl FnMut(usize) -> Result<T, Failure>,
) -> Result<(Vec<Duration>, Vec<T>), Failure> {
    let started = Instant::now();
    let mut times = Vec::new();
    let mut outputs = Vec::new();
    while times.len() < max && (times.len() < min || started.elapsed() < limit) {
        let t = Instant::now();
        let out = f(times.len())?;
        times.push(t.elapsed());
        outputs.push(out);
    }
    Ok((times, outputs))
}

/// FROST signing by the library itself (frost-core via `coffer_bench::raw`), 2-of-3, after
/// one untimed warm-up signature.
fn raw_frost(scheme: Scheme) -> Result<Vec<Duration>, Failure> {
    let limit = Duration::from_secs(2);
    let digest = |i: usize| -> [u8; 32] {
        sha2::Sha256::digest(format!("coffer bench cluster raw {i}").as_bytes()).into()
    };
    let t = usize::from(THRESHOLD);
    let (times, _) = match scheme {
        Scheme::SchnorrBip340 => {
            let g =
                coffer_bench::raw::frost_keygen::<coffer_proto::share::Bip340>(THRESHOLD, SIGNERS)?;
            coffer_bench::raw::frost_sign(&g, t, &digest(usize::MAX))?;
            time_raw(RAW_FROST_MIN, 5000, limit, |i| {
                Ok(coffer_bench::raw::frost_sign(&g, t, &digest(i))?)
            })?
        }
        Scheme::Ed25519 => {
            let g = coffer_bench::raw::frost_keygen::<coffer_proto::share::Ed25519>(
                THRESHOLD, SIGNERS,
            )?;
            coffer_bench::raw::frost_sign(&g, t, &digest(usize::MAX))?;
            time_raw(RAW_FROST_MIN, 5000, limit, |i| {
                Ok(coffer_bench::raw::frost_sign(&g, t, &digest(i))?)
            })?
        }
        Scheme::EcdsaSecp256k1 => return Err(Failure("ECDSA is not a FROST scheme".into())),
    };
    Ok(times)
}

const FROST_NOTES: &str = "pool off: every cluster signature runs both FROST rounds; raw: frost-core called directly (2-of-3, first two parties, all in one thread: commit, sign, aggregate; no network, no serialization, no verification); cluster: an HTTP request to the server, which runs the two-round protocol with two signer processes over TLS with end-to-end sealed envelopes, checks the signature independently and records it in SQLite; latency per request at the client; throughput = signatures / wall clock of the level; every returned signature verified afterwards (libsecp256k1 / ed25519-dalek); p99 only with >= 100 samples";

fn frost_scheme(
    ctx: &Ctx,
    client: &ApiClient,
    scheme: Scheme,
    settings: &Settings,
) -> Result<SchemeResult, Failure> {
    eprintln!("{}: key generation across 3 signers", scheme.name());
    let key = create_key(client, scheme)?;
    eprintln!(
        "{}: raw library in process (>= {RAW_FROST_MIN} samples)",
        scheme.name()
    );
    let raw = RawStats::of(
        "frost-core 2-of-3 signing in one thread",
        &raw_frost(scheme)?,
    );
    let raw_rate = raw.as_ref().map(|r| r.throughput_per_s);
    let mut levels = Vec::new();
    for &c in &settings.concurrency {
        eprintln!(
            "{}: {} signatures through the cluster at concurrency {c}",
            scheme.name(),
            settings.signatures
        );
        let (samples, wall) = run_level(ctx, &key, c, settings.signatures, &format!("c{c}"))?;
        let verified = verify_all(&key, &samples)?;
        let l = level(
            "interactive",
            c,
            &samples,
            verified,
            wall,
            raw.as_ref(),
            raw_rate,
            None,
        );
        eprintln!(
            "{}: concurrency {c}: p50 {} ms, {:.1} signatures/s, {} failures",
            scheme.name(),
            fmt_opt(l.p50_ms, 2),
            l.throughput_per_s,
            l.failures
        );
        levels.push(l);
    }
    Ok(SchemeResult {
        scheme: scheme.name(),
        key_id: key.id,
        raw_p50_ms: raw.as_ref().map(|r| r.p50_ms),
        raw,
        raw_presign: None,
        raw_online: None,
        keygen_s: None,
        budget_s: None,
        spent_s: None,
        pool: None,
        levels,
        interference: None,
        notes: FROST_NOTES.into(),
    })
}

/// How many presignatures the server holds ready for `key`.
fn pool_ready(client: &ApiClient, key: &Key) -> Result<usize, Failure> {
    let v = client.call("GET", &format!("/v1/keys/{}", key.id), None)?;
    let ready = v["pool_ready"]
        .as_u64()
        .or_else(|| v["presignatures_ready"].as_u64())
        .unwrap_or(0);
    Ok(usize::try_from(ready).unwrap_or(usize::MAX))
}

/// The raw library's ECDSA numbers, measured while no cluster process runs.
struct EcdsaRaw {
    sign: Option<RawStats>,
    presign: Option<RawStats>,
    online: Option<RawStats>,
    /// Budget used.
    spent: Duration,
}

/// Each ECDSA phase may use the budget up to its cumulative share; time a phase leaves
/// unused passes on to the next.
fn allowance(budget: Duration, share: f64, spent: Duration) -> Duration {
    budget.mul_f64(share).saturating_sub(spent)
}

fn ecdsa_raw(settings: &Settings, raw_primes: Vec<Primes>) -> Result<EcdsaRaw, Failure> {
    let name = Scheme::EcdsaSecp256k1.name();
    let budget = Duration::from_secs(settings.ecdsa_seconds);
    let mut spent = Duration::ZERO;
    eprintln!("{name}: raw library group (keygen, auxiliary data; setup, not measured)");
    let shares = coffer_bench::raw::cggmp_group(THRESHOLD, SIGNERS, raw_primes)?;
    let digest =
        |i: usize| -> [u8; 32] { sha2::Sha256::digest(format!("raw ecdsa {i}").as_bytes()).into() };
    eprintln!("{name}: raw interactive signing");
    let started = Instant::now();
    let (raw_sign, _) = time_raw(1, 100, allowance(budget, 0.075, spent), |i| {
        Ok(coffer_bench::raw::cggmp_sign(
            &shares,
            THRESHOLD,
            digest(i),
        )?)
    })?;
    spent += started.elapsed();
    eprintln!("{name}: raw presigning and online steps");
    let started = Instant::now();
    let (raw_pre, presigs) = time_raw(1, 100, allowance(budget, 0.15, spent), |_| {
        Ok(coffer_bench::raw::cggmp_presign(&shares, THRESHOLD)?)
    })?;
    let mut raw_on = Vec::new();
    for (i, p) in presigs.into_iter().enumerate() {
        let t = Instant::now();
        coffer_bench::raw::cggmp_online(p, format!("raw online {i}").as_bytes())?;
        raw_on.push(t.elapsed());
    }
    spent += started.elapsed();
    let raw = RawStats::of(
        "cggmp24 2-of-3 interactive signing in one thread",
        &raw_sign,
    );
    let raw_presign = RawStats::of("cggmp24 2-of-3 presigning in one thread", &raw_pre);
    let raw_online = RawStats::of(
        "cggmp24 online step: 2 partial signatures and combine",
        &raw_on,
    );
    Ok(EcdsaRaw {
        sign: raw,
        presign: raw_presign,
        online: raw_online,
        spent,
    })
}

fn ecdsa_cluster(
    ctx: &Ctx,
    client: &ApiClient,
    settings: &Settings,
    raw: EcdsaRaw,
) -> Result<SchemeResult, Failure> {
    let scheme = Scheme::EcdsaSecp256k1;
    let name = scheme.name();
    let budget = Duration::from_secs(settings.ecdsa_seconds);
    let allowance = |share: f64, spent: Duration| allowance(budget, share, spent);
    let mut spent = raw.spent;
    let EcdsaRaw {
        sign: raw,
        presign: raw_presign,
        online: raw_online,
        ..
    } = raw;
    let mut notes = vec![
        format!("within a budget of {} s (setup excluded: the raw group's keygen and auxiliary data, and the cluster key's DKG and auxiliary data)", settings.ecdsa_seconds),
        "concurrency 1 only: a CGGMP signature is seconds of CPU and the machine has few cores".into(),
        "raw: cggmp24 under round-based's simulator via coffer_bench::raw (2-of-3, both signers in one thread, no serialization), measured while no cluster process ran; its presign time is therefore also its CPU time".into(),
        "cluster (restarted with the pool on, same keys and signers): CPU is user + system seconds of the server and signer processes (/proc/PID/stat)".into(),
        "the cluster's two signers compute in parallel on separate cores while the raw simulator runs both in one thread, so a latency ratio below 1 is possible; compare cpu_s_per_signature (and the pool's CPU per presignature) with the raw times, which are CPU times".into(),
    ];

    eprintln!(
        "{name}: key generation across 3 signers (setup, not measured in the budget); the server then fills its pool of {}",
        settings.presign_pool
    );
    let started = Instant::now();
    let key = create_key(client, scheme)?;
    let keygen_s = started.elapsed().as_secs_f64();

    // The pool fill, from key creation on.
    let t0 = Instant::now();
    let cpu0 = ctx.cpu_seconds();
    let limit = allowance(0.5, spent);
    let mut filled = 0;
    let mut last = (Duration::ZERO, cpu0);
    loop {
        let ready = pool_ready(client, &key)?;
        if ready > filled {
            filled = ready;
            last = (t0.elapsed(), ctx.cpu_seconds());
            eprintln!(
                "{name}: pool {filled}/{} after {:.1} s",
                settings.presign_pool,
                last.0.as_secs_f64()
            );
        }
        // At least one presignature, so that the presigned measurement has one to use.
        if filled >= settings.presign_pool
            || (filled > 0 && t0.elapsed() >= limit)
            || t0.elapsed() >= FIRST_PRESIGNATURE_LIMIT
        {
            break;
        }
        std::thread::sleep(POLL);
    }
    spent += t0.elapsed();
    let fill_s = last.0.as_secs_f64();
    let per = |x: f64| (filled > 0).then(|| x / filled as f64);
    let cpu_per_presig = last.1.zip(cpu0).and_then(|(b, a)| per(b - a));
    let raw_presign_s = raw_presign.as_ref().map(|r| r.p50_ms / 1000.0);
    let pool = PoolFill {
        target: settings.presign_pool,
        filled,
        complete: filled >= settings.presign_pool,
        seconds: fill_s,
        presignatures_per_s: (fill_s > 0.0 && filled > 0).then(|| filled as f64 / fill_s),
        cpu_s_per_presignature: cpu_per_presig,
        seconds_per_presignature_vs_raw: per(fill_s)
            .zip(raw_presign_s)
            .filter(|(_, r)| *r > 0.0)
            .map(|(s, r)| s / r),
        cpu_vs_raw_presign: cpu_per_presig
            .zip(raw_presign_s)
            .filter(|(_, r)| *r > 0.0)
            .map(|(c, r)| c / r),
    };
    notes.push(format!(
        "pool: the server presigns one at a time in the background from key creation on (it looks for work every second when idle); rate = presignatures / seconds until the last was observed (polled every {} ms)",
        POLL.as_millis()
    ));
    if !pool.complete {
        notes.push(format!(
            "the pool reached {filled} of {} within its share of the budget; the refill kept running during the interactive measurement",
            settings.presign_pool
        ));
    }

    // Interactive signing of digests, one at a time.
    eprintln!("{name}: interactive signing through the cluster (concurrency 1)");
    let limit = allowance(0.75, spent);
    let started = Instant::now();
    let cpu_a = ctx.cpu_seconds();
    let mut samples: Vec<Sample> = Vec::new();
    loop {
        let elapsed = started.elapsed();
        let typical = samples
            .iter()
            .map(|s| s.latency)
            .sum::<Duration>()
            .checked_div(u32::try_from(samples.len()).unwrap_or(u32::MAX))
            .unwrap_or_default();
        if !samples.is_empty() && elapsed + typical > limit {
            break;
        }
        samples.push(sign_one(
            client,
            &key,
            "interactive",
            samples.len(),
            Mode::Message,
        ));
    }
    let wall = started.elapsed();
    let cpu = ctx.cpu_seconds().zip(cpu_a).map(|(b, a)| b - a);
    spent += wall;
    let verified = verify_all(&key, &samples)?;
    let raw_rate = raw.as_ref().map(|r| r.throughput_per_s);
    let interactive = level(
        "interactive",
        1,
        &samples,
        verified,
        wall,
        raw.as_ref(),
        raw_rate,
        cpu,
    );
    eprintln!(
        "{name}: interactive: {} signatures, p50 {} ms",
        interactive.signatures,
        fmt_opt(interactive.p50_ms, 0)
    );

    // One-round signing from the pool, one at a time, waiting for the refill when empty.
    eprintln!("{name}: signing from pooled presignatures (concurrency 1)");
    let limit = allowance(1.0, spent);
    let started = Instant::now();
    let cpu_a = ctx.cpu_seconds();
    let mut samples: Vec<Sample> = Vec::new();
    loop {
        if !samples.is_empty() && started.elapsed() >= limit {
            break;
        }
        if pool_ready(client, &key)? == 0 {
            if started.elapsed() >= limit {
                break;
            }
            std::thread::sleep(POLL);
            continue;
        }
        samples.push(sign_one(
            client,
            &key,
            "presigned",
            samples.len(),
            Mode::Preimage,
        ));
    }
    let wall = started.elapsed();
    let cpu = ctx.cpu_seconds().zip(cpu_a).map(|(b, a)| b - a);
    spent += wall;
    let verified = verify_all(&key, &samples)?;
    let pooled_rate = raw_presign
        .as_ref()
        .zip(raw_online.as_ref())
        .map(|(p, o)| p.mean_ms + o.mean_ms)
        .filter(|m| *m > 0.0)
        .map(|m| 1000.0 / m);
    let presigned = level(
        "presigned",
        1,
        &samples,
        verified,
        wall,
        raw_online.as_ref(),
        pooled_rate,
        cpu,
    );
    eprintln!(
        "{name}: presigned: {} signatures, p50 {} ms",
        presigned.signatures,
        fmt_opt(presigned.p50_ms, 1)
    );
    notes.push("presigned: requests send a preimage (the signers hash it); one is sent only when the pool holds a presignature, so throughput is the sustained rate the background refill allows; latency is measured while that refill runs; its ratio is against the raw online step, its throughput against raw presign + online back to back; cpu_s_per_signature includes the refill".into());
    notes.push("p99 only with >= 100 samples (null otherwise)".into());

    Ok(SchemeResult {
        scheme: name,
        key_id: key.id,
        raw_p50_ms: raw.as_ref().map(|r| r.p50_ms),
        raw,
        raw_presign,
        raw_online,
        keygen_s: Some(keygen_s),
        budget_s: Some(settings.ecdsa_seconds),
        spent_s: Some(spent.as_secs_f64()),
        pool: Some(pool),
        levels: vec![interactive, presigned],
        interference: None,
        notes: notes.join("; "),
    })
}

/// Waits until every signer is connected and holds its safe primes with no generation
/// running, so that nothing competes with the measurements for the CPU.
fn wait_for_primes(client: &ApiClient) -> Result<(), Failure> {
    let target = coffer_signer::primes::TARGET as u64;
    let started = Instant::now();
    let mut told = started;
    loop {
        let v = client.call("GET", "/v1/signers", None)?;
        let list = v["signers"].as_array().cloned().unwrap_or_default();
        let ready = |s: &Value| {
            s["connected"] == true
                && s["primes_generating"] == false
                && s["primes_ready"].as_u64().unwrap_or(0) >= target
        };
        if !list.is_empty() && list.iter().all(ready) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(Failure(
                "the signers did not finish generating their safe primes within an hour".into(),
            ));
        }
        if told.elapsed() >= Duration::from_secs(20) {
            told = Instant::now();
            eprintln!(
                "waiting for the signers' safe primes ({} s; ready: {})",
                started.elapsed().as_secs(),
                list.iter()
                    .map(|s| format!(
                        "{} {}",
                        s["name"].as_str().unwrap_or("?"),
                        s["primes_ready"].as_u64().unwrap_or(0).min(target)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts the cluster in `dir` with a pool target and waits until its signers are idle.
fn start_cluster(dir: &Path, pool: usize) -> Result<(crate::dev::Cluster, Ctx), Failure> {
    let listen = "127.0.0.1:0"
        .parse()
        .map_err(|_| Failure("address".into()))?;
    let cluster = crate::dev::start(dir, listen, THRESHOLD, SESSION_TIMEOUT_SECS, pool)?;
    let admin = cluster
        .info
        .admin_keys
        .first()
        .ok_or_else(|| Failure("no admin credential".into()))?
        .clone();
    let mut pids = vec![cluster.info.server.pid];
    pids.extend(cluster.info.signers.iter().map(|s| s.pid));
    let ctx = Ctx {
        api_url: cluster.info.api_url.clone(),
        admin,
        pids,
        clk_tck: clock_ticks(),
    };
    wait_for_primes(&ctx.client()?)?;
    Ok((cluster, ctx))
}

fn bench_in(dir: &Path, settings: &Settings, quick: bool) -> Result<Report, Failure> {
    let run_started = Instant::now();
    let source = PrimeSource::from_env();
    eprintln!(
        "preparing safe primes for the raw CGGMP baseline (3 parties{}; not measured)",
        if source.is_secure() {
            ", a minute or more each"
        } else {
            ", public test pool"
        }
    );
    let raw_primes = std::thread::spawn(move || source.take(usize::from(SIGNERS)));
    eprintln!(
        "starting a cluster: a server and {SIGNERS} signer processes in {}, pool off; waiting for the signers' CGGMP safe primes (minutes on the first start of a release build; not measured)",
        dir.display()
    );
    crate::dev::setup(dir, SIGNERS)?;
    let (cluster, ctx) = start_cluster(dir, 0)?;
    let raw_primes = raw_primes
        .join()
        .map_err(|_| Failure("prime generation panicked".into()))??;
    eprintln!(
        "cluster ready after {:.0} s; measuring",
        run_started.elapsed().as_secs_f64()
    );
    let client = ctx.client()?;
    let cores = machine().cores;
    let mut schemes = Vec::new();
    for scheme in [Scheme::SchnorrBip340, Scheme::Ed25519] {
        let watch = Watch::start(&ctx.pids);
        let mut result = frost_scheme(&ctx, &client, scheme, settings)?;
        result.interference = watch.stop(&ctx.pids, ctx.clk_tck, cores);
        schemes.push(result);
    }
    drop(client);
    drop(cluster);
    let watch = Watch::start(&[]);
    let raw = ecdsa_raw(settings, raw_primes)?;
    let raw_interference = watch.stop(&[], ctx.clk_tck, cores);
    eprintln!(
        "restarting the cluster with a pool of {} presignatures per key",
        settings.presign_pool
    );
    let (cluster, ctx) = start_cluster(dir, settings.presign_pool)?;
    let watch = Watch::start(&ctx.pids);
    let mut result = ecdsa_cluster(&ctx, &ctx.client()?, settings, raw)?;
    result.interference = match (raw_interference, watch.stop(&ctx.pids, ctx.clk_tck, cores)) {
        (Some(a), Some(b)) => Some(a.add(b, cores)),
        (a, b) => a.or(b),
    };
    schemes.push(result);
    drop(cluster);
    Ok(Report {
        signers: SIGNERS,
        threshold: THRESHOLD,
        quick,
        seconds: run_started.elapsed().as_secs_f64(),
        machine: machine(),
        settings: settings.clone(),
        schemes,
    })
}

/// Runs `coffer bench cluster`.
pub(crate) fn run(args: ClusterArgs) -> Result<(), Failure> {
    let settings = Settings::from_args(&args)?;
    let (dir, temporary) = match &args.keep {
        Some(d) => {
            if d.join("roster.json").exists() {
                return Err(Failure(format!(
                    "{} already holds a cluster; --keep needs a new directory (earlier keys and pools would skew the numbers)",
                    d.display()
                )));
            }
            (d.clone(), false)
        }
        None => {
            let mut tag = [0u8; 8];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tag);
            (
                std::env::temp_dir().join(format!("coffer-bench-cluster-{}", hex::encode(tag))),
                true,
            )
        }
    };
    let result = bench_in(&dir, &settings, args.quick);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("cluster data and logs kept in {}", dir.display());
    }
    let report = result?;
    if args.json {
        let value = serde_json::to_value(&report).map_err(|e| Failure(e.to_string()))?;
        emit(&json!({ "cluster_bench": value }))
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

fn fmt_opt(x: Option<f64>, decimals: usize) -> String {
    x.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map(|v| {
        if v >= 10.0 {
            format!("{v:.0}x")
        } else {
            format!("{v:.2}x")
        }
    })
    .unwrap_or_else(|| "-".into())
}

/// The report as a table with notes.
fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "coffer bench cluster: {} signers, threshold {}, {} cores{}, {} build{}, {:.0} s in all\n\n",
        r.signers,
        r.threshold,
        r.machine.cores,
        r.machine
            .cpu
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        r.machine.build,
        if r.machine.insecure_test_primes {
            ", PUBLIC TEST PRIMES"
        } else {
            ""
        },
        r.seconds
    ));
    out.push_str(&format!(
        "{:<16} {:<12} {:>4} {:>6} {:>4} {:>9} {:>9} {:>9} {:>8} {:>10} {:>8} {:>9}\n",
        "scheme",
        "mode",
        "conc",
        "sigs",
        "fail",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "sig/s",
        "raw p50 ms",
        "p50/raw",
        "sig/s/raw"
    ));
    for s in &r.schemes {
        for l in &s.levels {
            let raw_p50 = if l.mode == "presigned" {
                s.raw_online.as_ref().map(|x| x.p50_ms)
            } else {
                s.raw_p50_ms
            };
            let d = if l.p50_ms.unwrap_or(0.0) >= 100.0 {
                0
            } else {
                2
            };
            out.push_str(&format!(
                "{:<16} {:<12} {:>4} {:>6} {:>4} {:>9} {:>9} {:>9} {:>8.2} {:>10} {:>8} {:>9}\n",
                s.scheme,
                l.mode,
                l.concurrency,
                l.signatures,
                l.failures,
                fmt_opt(l.p50_ms, d),
                fmt_opt(l.p99_ms, d),
                fmt_opt(l.mean_ms, d),
                l.throughput_per_s,
                fmt_opt(raw_p50, 3),
                fmt_ratio(l.ratio_p50_vs_raw),
                fmt_ratio(l.throughput_vs_raw),
            ));
        }
    }
    out.push('\n');
    for s in &r.schemes {
        if let Some(raw) = &s.raw {
            out.push_str(&format!(
                "{} raw: {}: {} samples, p50 {:.3} ms, p99 {}, mean {:.3} ms\n",
                s.scheme,
                raw.what,
                raw.samples,
                raw.p50_ms,
                raw.p99_ms
                    .map(|p| format!("{p:.3} ms"))
                    .unwrap_or_else(|| "- (< 100 samples)".into()),
                raw.mean_ms
            ));
        }
        for raw in [&s.raw_presign, &s.raw_online].into_iter().flatten() {
            out.push_str(&format!(
                "{} raw: {}: {} samples, p50 {:.3} ms, mean {:.3} ms\n",
                s.scheme, raw.what, raw.samples, raw.p50_ms, raw.mean_ms
            ));
        }
        if let Some(p) = &s.pool {
            out.push_str(&format!(
                "{} presignature pool: {} of {} in {:.1} s: {} presignatures/s, {} CPU-s per presignature (server + signers; raw library presign p50 {} s; cluster CPU / raw: {})\n",
                s.scheme,
                p.filled,
                p.target,
                p.seconds,
                fmt_opt(p.presignatures_per_s, 3),
                fmt_opt(p.cpu_s_per_presignature, 2),
                fmt_opt(s.raw_presign.as_ref().map(|x| x.p50_ms / 1000.0), 2),
                fmt_ratio(p.cpu_vs_raw_presign),
            ));
        }
        for l in &s.levels {
            if let Some(c) = l.cpu_s_per_signature {
                out.push_str(&format!(
                    "{} {}: {:.2} CPU-s per signature (server + signers)\n",
                    s.scheme, l.mode, c
                ));
            }
        }
        if let Some(i) = &s.interference {
            out.push_str(&format!(
                "{}: other processes on the machine used {:.1} CPU-s during its {:.0} s ({:.0}% of all cores)\n",
                s.scheme,
                i.other_cpu_s,
                i.wall_s,
                i.other_cpu_share * 100.0
            ));
        }
        if let (Some(k), Some(b), Some(sp)) = (s.keygen_s, s.budget_s, s.spent_s) {
            out.push_str(&format!(
                "{}: key generation {k:.1} s (setup); measurements {sp:.0} s of a {b} s budget\n",
                s.scheme
            ));
        }
    }
    out.push_str("\nnotes:\n");
    let mut printed: Vec<&str> = Vec::new();
    for s in &r.schemes {
        if printed.contains(&s.notes.as_str()) {
            continue;
        }
        printed.push(&s.notes);
        let names: Vec<&str> = r
            .schemes
            .iter()
            .filter(|o| o.notes == s.notes)
            .map(|o| o.scheme)
            .collect();
        out.push_str(&format!("  {}: {}\n", names.join(", "), s.notes));
    }
    out.push_str("  columns: sigs = signatures counted; p99 '-' = fewer than 100 samples; p50/raw = cluster p50 / raw-library p50; sig/s/raw = cluster throughput / one thread running the raw library back to back; every signature verified independently; --json for all fields\n");
    out
}
