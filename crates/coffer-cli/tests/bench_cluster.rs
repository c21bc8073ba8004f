//! `coffer bench cluster` end to end, small: an ephemeral cluster of real processes, both
//! FROST schemes at two concurrency levels, CGGMP ECDSA within a short budget. Speed is not
//! asserted; the shape of the JSON, sample counts, zero failures and the ratios are.
//!
//! The test binary carries the public test primes (`COFFER_INSECURE_TEST_PRIMES=1`), so the
//! cluster needs no prime generation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_cluster_quick_json_reports_every_level() {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args([
            "bench",
            "cluster",
            "--quick",
            "--json",
            "--signatures",
            "50",
            "--concurrency",
            "1,4",
            "--ecdsa-seconds",
            "20",
        ])
        .env("COFFER_INSECURE_TEST_PRIMES", "1")
        .output()
        .expect("run coffer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "coffer failed:\n{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let b = &v["cluster_bench"];
    assert_eq!(b["signers"], 3);
    assert_eq!(b["threshold"], 2);
    assert!(b["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(b["machine"]["insecure_test_primes"], true);
    let schemes = b["schemes"].as_array().unwrap();
    let names: Vec<&str> = schemes
        .iter()
        .map(|s| s["scheme"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["schnorr-bip340", "ed25519", "ecdsa-secp256k1"]);
    for s in schemes {
        let name = s["scheme"].as_str().unwrap();
        assert!(s["raw_p50_ms"].as_f64().unwrap() > 0.0, "{name}: raw p50");
        assert!(!s["notes"].as_str().unwrap().is_empty(), "{name}: notes");
        let levels = s["levels"].as_array().unwrap();
        assert!(!levels.is_empty(), "{name}: levels");
        for l in levels {
            let what = format!("{name} {} c{}", l["mode"], l["concurrency"]);
            let sigs = l["signatures"].as_u64().unwrap();
            assert!(sigs > 0, "{what}: no signatures: {l}");
            assert_eq!(l["failures"], 0, "{what}: failures: {l}");
            assert!(l["verified"].as_u64().unwrap() >= sigs, "{what}: verified");
            assert!(l["p50_ms"].as_f64().unwrap() > 0.0, "{what}: p50");
            assert!(l["throughput_per_s"].as_f64().unwrap() > 0.0, "{what}");
            assert!(
                l["ratio_p50_vs_raw"].as_f64().unwrap() > 0.0,
                "{what}: ratio"
            );
            assert!(
                l["throughput_vs_raw"].as_f64().unwrap() > 0.0,
                "{what}: throughput ratio"
            );
            // p99 only with at least 100 samples.
            assert_eq!(l["p99_ms"].is_null(), sigs < 100, "{what}: p99");
        }
    }
    let frost = &schemes[0]["levels"];
    let conc: Vec<u64> = frost
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(conc, [1, 4]);
    for l in frost.as_array().unwrap() {
        assert_eq!(l["signatures"], 50);
    }
    // The raw FROST baseline has enough samples for a p99.
    assert!(schemes[0]["raw"]["samples"].as_u64().unwrap() >= 100);
    assert!(schemes[0]["raw"]["p99_ms"].as_f64().is_some());
    let ecdsa = &schemes[2];
    let modes: Vec<&str> = ecdsa["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["interactive", "presigned"]);
    let pool = &ecdsa["pool"];
    assert!(pool["filled"].as_u64().unwrap() >= 1, "pool: {pool}");
    assert!(pool["cpu_s_per_presignature"].as_f64().unwrap() > 0.0);
    assert!(ecdsa["raw_presign"]["p50_ms"].as_f64().unwrap() > 0.0);
}
