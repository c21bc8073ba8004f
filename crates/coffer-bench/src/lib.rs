//! Coffer's performance suite, shared by `coffer bench` and the criterion benches: for every
//! scheme at 2-of-3 and 3-of-5, each protocol operation through (a) the raw library called
//! directly and (b) Coffer's sans-IO session layer, in the same run, plus single-party
//! signing as the floor. Speed is measured here, never asserted in tests.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dkls_raw;
pub mod floor;
pub mod ours;
pub mod raw;
pub mod stats;

use std::time::Duration;

use coffer_proto::primes::Primes;
use coffer_proto::{ceremony, GroupParams, KeyShare, Scheme};
use serde::Serialize;

use crate::stats::{sample, summarize, Budget, Summary};

/// A benchmark step that could not run.
#[derive(Debug, Clone)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Fewer samples, and CGGMP's multi-second operations (auxiliary data, presigning,
    /// signing, refresh) only at 2-of-3.
    pub quick: bool,
}

/// One operation at one group size.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Scheme name.
    pub scheme: &'static str,
    /// Operation.
    pub op: &'static str,
    /// `t-of-n`.
    pub group: String,
    /// The raw library.
    pub raw: Option<Summary>,
    /// Coffer's session layer.
    pub ours: Option<Summary>,
    /// ours / raw (medians).
    pub ratio: Option<f64>,
    /// ours / single-party signature (medians), for signing operations.
    pub vs_floor: Option<f64>,
    /// What the two columns measure when they differ in substance.
    pub note: &'static str,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Protocol rows.
    pub rows: Vec<Row>,
    /// Single-party signing floors by name.
    pub floors: Vec<(&'static str, Summary)>,
}

fn budget(quick: bool, weight: u8) -> Budget {
    match (quick, weight) {
        (true, 0) => Budget {
            max_samples: 100,
            time: Duration::from_secs(1),
            min_samples: 5,
        },
        (false, 0) => Budget {
            max_samples: 300,
            time: Duration::from_secs(3),
            min_samples: 10,
        },
        (true, 1) => Budget {
            max_samples: 3,
            time: Duration::from_secs(3),
            min_samples: 1,
        },
        (false, 1) => Budget {
            max_samples: 10,
            time: Duration::from_secs(15),
            min_samples: 3,
        },
        (true, _) => Budget {
            max_samples: 1,
            time: Duration::ZERO,
            min_samples: 1,
        },
        (false, _) => Budget {
            max_samples: 3,
            time: Duration::from_secs(60),
            min_samples: 1,
        },
    }
}

fn timed<T>(
    budget: Budget,
    mut f: impl FnMut() -> Result<T, BenchError>,
) -> Result<(Vec<Duration>, Vec<T>), BenchError> {
    let mut outputs = Vec::new();
    let mut error = None;
    let samples = sample(budget, || match f() {
        Ok(o) => outputs.push(o),
        Err(e) => error = Some(e),
    });
    match error {
        Some(e) => Err(e),
        None => Ok((samples, outputs)),
    }
}

fn row(
    scheme: Scheme,
    op: &'static str,
    g: GroupParams,
    raw: &[Duration],
    ours: &[Duration],
    floor: Option<&Summary>,
    note: &'static str,
) -> Row {
    let (raw, ours) = (summarize(raw), summarize(ours));
    Row {
        scheme: scheme.name(),
        op,
        group: format!("{}-of-{}", g.t(), g.n()),
        ratio: raw.zip(ours).map(|(r, o)| o.median_ms / r.median_ms),
        vs_floor: ours
            .zip(floor.copied())
            .map(|(o, f)| o.median_ms / f.median_ms),
        raw,
        ours,
        note,
    }
}

/// Runs the suite. `primes` must hold at least 5 sets (reused across runs: prime
/// generation is not what is measured). `progress` receives a line per step.
pub fn run(
    opts: Options,
    primes: &[Primes],
    mut progress: impl FnMut(&str),
) -> Result<Report, BenchError> {
    if primes.len() < 5 {
        return Err(BenchError("the suite needs 5 prime sets".into()));
    }
    let q = opts.quick;
    let mut rows = Vec::new();
    progress("single-party floors");
    let floors = floor::measure(budget(q, 0));
    let floor_of = |name: &str| floors.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
    let sizes = [GroupParams::new(2, 3), GroupParams::new(3, 5)];
    let msg = [0x5au8; 32];
    for g in sizes {
        let g = g.map_err(|e| BenchError(e.to_string()))?;
        let (t, n) = (g.t(), g.n());
        for (scheme, floor_name) in [
            (Scheme::SchnorrBip340, "bip340 (libsecp256k1)"),
            (Scheme::Ed25519, "ed25519 (ed25519-dalek)"),
        ] {
            progress(&format!("{scheme} {t}-of-{n}"));
            let floor = floor_of(floor_name);
            macro_rules! frost_rows {
                ($C:ty) => {{
                    let (raw_kg, groups) = timed(budget(q, 0), || raw::frost_keygen::<$C>(t, n))?;
                    let (ours_kg, _) = timed(budget(q, 0), || ours::keygen(scheme, g))?;
                    rows.push(row(scheme, "keygen", g, &raw_kg, &ours_kg, None, ""));
                    let group = groups
                        .into_iter()
                        .next()
                        .ok_or(BenchError("no group".into()))?;
                    let shares = ceremony::keygen_with_primes(scheme, g, Vec::new())
                        .map_err(|e| BenchError(e.to_string()))?;
                    let (raw_s, _) = timed(budget(q, 0), || {
                        raw::frost_sign::<$C>(&group, usize::from(t), &msg)
                    })?;
                    let (ours_s, _) =
                        timed(budget(q, 0), || ours::sign(&shares, usize::from(t), &msg))?;
                    rows.push(row(
                        scheme,
                        "sign",
                        g,
                        &raw_s,
                        &ours_s,
                        floor.as_ref(),
                        "ours: every signer aggregates and the result is verified independently",
                    ));
                    let (raw_r, _) = timed(budget(q, 0), || raw::frost_refresh::<$C>(&group))?;
                    let (ours_r, _) = timed(budget(q, 0), || ours::refresh(&shares, None))?;
                    rows.push(row(scheme, "refresh", g, &raw_r, &ours_r, None, ""));
                }};
            }
            match scheme {
                Scheme::SchnorrBip340 => frost_rows!(frost_secp256k1_tr::Secp256K1Sha256TR),
                _ => frost_rows!(frost_ed25519::Ed25519Sha512),
            }
        }
        dkls_rows(
            q,
            g,
            msg,
            &floor_of("ecdsa (libsecp256k1)"),
            &mut rows,
            &mut progress,
        )?;
        let scheme = Scheme::EcdsaSecp256k1;
        progress(&format!("{scheme} {t}-of-{n}: keygen"));
        let p = |k: usize| primes[..k].to_vec();
        let (raw_kg, _) = timed(budget(q, 0), || raw::cggmp_keygen(t, n))?;
        let (ours_kg, _) = timed(budget(q, 0), || ours::keygen(scheme, g))?;
        rows.push(row(
            scheme,
            "keygen",
            g,
            &raw_kg,
            &ours_kg,
            None,
            "DKG without auxiliary data",
        ));
        let heavy = !(q && n > 3);
        if heavy {
            progress(&format!(
                "{scheme} {t}-of-{n}: auxiliary data (seconds per run)"
            ));
            let (raw_aux, _) = timed(budget(q, 2), || raw::cggmp_aux(p(usize::from(n))))?;
            let (ours_aux, _) = timed(budget(q, 2), || ours::aux(g, p(usize::from(n))))?;
            rows.push(row(
                scheme,
                "aux",
                g,
                &raw_aux,
                &ours_aux,
                None,
                "Paillier keys and proofs; primes pregenerated",
            ));
        }
        if !heavy {
            // --quick: CGGMP groups of five need seconds of auxiliary data per party.
            continue;
        }
        progress(&format!("{scheme} {t}-of-{n}: groups for signing"));
        let raw_shares = raw::cggmp_group(t, n, p(usize::from(n)))?;
        let shares: Vec<KeyShare> = ceremony::keygen_with_primes(scheme, g, p(usize::from(n)))
            .map_err(|e| BenchError(e.to_string()))?;
        progress(&format!("{scheme} {t}-of-{n}: presign, sign"));
        let (raw_pre, raw_presigs) = timed(budget(q, 1), || raw::cggmp_presign(&raw_shares, t))?;
        let (ours_pre, our_presigs) =
            timed(budget(q, 1), || ours::presign(&shares, usize::from(t)))?;
        rows.push(row(scheme, "presign", g, &raw_pre, &ours_pre, None, ""));
        let mut raw_presigs = raw_presigs.into_iter();
        let (raw_on, _) = timed(
            Budget {
                max_samples: raw_presigs.len(),
                time: Duration::from_secs(60),
                min_samples: 0,
            },
            || {
                raw::cggmp_online(
                    raw_presigs
                        .next()
                        .ok_or(BenchError("presignatures used up".into()))?,
                    &msg,
                )
            },
        )?;
        let mut our_presigs = our_presigs.into_iter();
        let (ours_on, _) = timed(
            Budget {
                max_samples: our_presigs.len(),
                time: Duration::from_secs(60),
                min_samples: 0,
            },
            || {
                ours::online(
                    our_presigs
                        .next()
                        .ok_or(BenchError("presignatures used up".into()))?,
                    &msg,
                )
            },
        )?;
        let floor = floor_of("ecdsa (libsecp256k1)");
        rows.push(row(
            scheme,
            "sign from presignature",
            g,
            &raw_on,
            &ours_on,
            floor.as_ref(),
            "ours also finds the recovery id with libsecp256k1",
        ));
        let (raw_s, _) = timed(budget(q, 1), || raw::cggmp_sign(&raw_shares, t, msg))?;
        let (ours_s, _) = timed(budget(q, 1), || ours::sign(&shares, usize::from(t), &msg))?;
        rows.push(row(
            scheme,
            "sign (interactive)",
            g,
            &raw_s,
            &ours_s,
            floor.as_ref(),
            "",
        ));
        {
            progress(&format!("{scheme} {t}-of-{n}: refresh (seconds per run)"));
            let (raw_r, _) = timed(budget(q, 2), || raw::cggmp_aux(p(usize::from(n))))?;
            let (ours_r, _) = timed(budget(q, 2), || {
                ours::refresh(&shares, Some(p(usize::from(n))))
            })?;
            rows.push(row(
                scheme,
                "refresh",
                g,
                &raw_r,
                &ours_r,
                None,
                "the library has no threshold refresh: raw is its aux-info part alone",
            ));
        }
    }
    Ok(Report { rows, floors })
}

/// Only the DKLs23 rows, at 2-of-3 and 3-of-5 (for `cargo run --example dkls`).
pub fn run_dkls(opts: Options, mut progress: impl FnMut(&str)) -> Result<Report, BenchError> {
    let floors = floor::measure(budget(opts.quick, 0));
    let floor = floors
        .iter()
        .find(|(n, _)| *n == "ecdsa (libsecp256k1)")
        .map(|(_, s)| *s);
    let mut rows = Vec::new();
    for (t, n) in [(2, 3), (3, 5)] {
        let g = GroupParams::new(t, n).map_err(|e| BenchError(e.to_string()))?;
        dkls_rows(opts.quick, g, [0x5a; 32], &floor, &mut rows, &mut progress)?;
    }
    Ok(Report { rows, floors })
}

/// DKLs23 (the `dkls23` crate, UNAUDITED) keygen, sign and refresh at one group size.
fn dkls_rows(
    q: bool,
    g: GroupParams,
    msg: [u8; 32],
    floor: &Option<Summary>,
    rows: &mut Vec<Row>,
    progress: &mut impl FnMut(&str),
) -> Result<(), BenchError> {
    let scheme = Scheme::EcdsaSecp256k1;
    let (t, n) = (g.t(), g.n());
    let (t8, n8) = (
        u8::try_from(t).map_err(|_| BenchError("t too large".into()))?,
        u8::try_from(n).map_err(|_| BenchError("n too large".into()))?,
    );
    progress(&format!("{scheme} (dkls23) {t}-of-{n}"));
    let (raw_kg, raw_groups) = timed(budget(q, 1), || dkls_raw::dkls_keygen(t8, n8))?;
    let (ours_kg, our_groups) = timed(budget(q, 1), || ours::dkls_keygen(g))?;
    rows.push(row(
        scheme,
        "keygen (dkls23)",
        g,
        &raw_kg,
        &ours_kg,
        None,
        "OT setup included",
    ));
    let raw_parties = raw_groups
        .into_iter()
        .next()
        .ok_or(BenchError("no group".into()))?;
    let shares = our_groups
        .into_iter()
        .next()
        .ok_or(BenchError("no group".into()))?;
    let (raw_s, _) = timed(budget(q, 0), || {
        dkls_raw::dkls_sign(&raw_parties, usize::from(t), msg)
    })?;
    let (ours_s, _) = timed(budget(q, 0), || {
        ours::dkls_sign(&shares, usize::from(t), msg)
    })?;
    rows.push(row(
        scheme,
        "sign (dkls23)",
        g,
        &raw_s,
        &ours_s,
        floor.as_ref(),
        "ours: every signature verified independently",
    ));
    let (raw_r, _) = timed(budget(q, 1), || dkls_raw::dkls_refresh(&raw_parties))?;
    let (ours_r, _) = timed(budget(q, 1), || ours::dkls_refresh(&shares))?;
    rows.push(row(
        scheme,
        "refresh (dkls23)",
        g,
        &raw_r,
        &ours_r,
        None,
        "the library's complete refresh (new OT setup)",
    ));
    Ok(())
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn fmt_ms(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{} ms [{}, {}]",
            ms(s.median_ms),
            ms(s.min_ms),
            ms(s.max_ms)
        ),
        None => "-".into(),
    }
}

fn fmt_n(s: &Option<Summary>) -> String {
    s.map(|s| s.samples.to_string())
        .unwrap_or_else(|| "-".into())
}

/// The report as a text table: medians with min and max, sample counts, ratios.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<15} {:<22} {:<6} {:>28} {:>4} {:>28} {:>4} {:>8} {:>8}\n",
        "scheme",
        "operation",
        "group",
        "raw median [min, max]",
        "n",
        "ours median [min, max]",
        "n",
        "ours/raw",
        "vs floor"
    ));
    for r in &report.rows {
        out.push_str(&format!(
            "{:<15} {:<22} {:<6} {:>28} {:>4} {:>28} {:>4} {:>8} {:>8}\n",
            r.scheme,
            r.op,
            r.group,
            fmt_ms(&r.raw),
            fmt_n(&r.raw),
            fmt_ms(&r.ours),
            fmt_n(&r.ours),
            r.ratio
                .map(|x| format!("{x:.2}x"))
                .unwrap_or_else(|| "-".into()),
            r.vs_floor
                .map(|x| format!("{x:.0}x"))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    out.push_str("\nsingle-party floor (one signature, one core):\n");
    for (name, s) in &report.floors {
        out.push_str(&format!(
            "  {:<26} median {:.4} ms (min {:.4}, max {:.4}, {} samples{})\n",
            name,
            s.median_ms,
            s.min_ms,
            s.max_ms,
            s.samples,
            s.p99_ms
                .map(|p| format!(", p99 {p:.4}"))
                .unwrap_or_default()
        ));
    }
    out.push_str("\nnotes:\n");
    let mut seen = Vec::new();
    for r in &report.rows {
        if !r.note.is_empty() && !seen.contains(&(r.scheme, r.op)) {
            seen.push((r.scheme, r.op));
            out.push_str(&format!("  {} {}: {}\n", r.scheme, r.op, r.note));
        }
    }
    out.push_str("  all parties run in one thread in both columns; p99 is in --json (only with >= 100 samples)\n");
    out
}
