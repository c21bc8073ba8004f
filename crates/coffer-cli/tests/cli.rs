//! The `coffer` binary's contract, driven as a user would: one JSON object on stdout on
//! success; on failure an empty stdout, a non-zero exit, a last stderr line saying what is
//! wrong, and never a panic. ECDSA runs use the public test primes (test build only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PASS: &str = "correct horse battery staple";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "command failed: {}", self.stderr);
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one JSON object on stdout: {:?}",
            self.stdout
        );
        serde_json::from_str(lines[0]).unwrap()
    }

    /// Asserts the failure contract and returns the last stderr line.
    fn failure(&self) -> String {
        assert_ne!(self.code, 0, "expected a failure, got {}", self.stdout);
        assert!(
            self.stdout.is_empty(),
            "stdout must be empty on failure: {:?}",
            self.stdout
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        let last = self.stderr.lines().last().unwrap_or_default().to_string();
        assert!(
            last.starts_with("error:"),
            "last stderr line must say what is wrong: {:?}",
            self.stderr
        );
        last
    }
}

fn coffer(args: &[&str], pass: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    cmd.args(args)
        .env("COFFER_INSECURE_TEST_PRIMES", "1")
        .env_remove("COFFER_PASSPHRASE");
    if let Some(p) = pass {
        cmd.env("COFFER_PASSPHRASE", p);
    }
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn tmp(name: &str) -> PathBuf {
    let mut tag = [0u8; 6];
    getrandom(&mut tag);
    let dir = std::env::temp_dir().join(format!("coffer-cli-test-{name}-{}", hex(&tag)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn getrandom(buf: &mut [u8]) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = nanos ^ u128::from(std::process::id()) << 64;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed >> (8 * (i % 16))) as u8 ^ i as u8;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn keygen(scheme: &str, t: u16, n: u16, dir: &Path) -> Value {
    coffer(
        &[
            "ceremony",
            "keygen",
            "--scheme",
            scheme,
            "--threshold",
            &t.to_string(),
            "--parties",
            &n.to_string(),
            "--out",
            dir.to_str().unwrap(),
        ],
        Some(PASS),
    )
    .json()
}

fn share(dir: &Path, i: u16) -> String {
    dir.join(format!("share-{i}.json")).display().to_string()
}

fn sign(shares: &[String], message: &str, path: Option<&str>) -> Out {
    let mut args = vec!["ceremony".to_string(), "sign".into()];
    for s in shares {
        args.push("--share".into());
        args.push(s.clone());
    }
    args.push("--message".into());
    args.push(message.into());
    if let Some(p) = path {
        args.push("--path".into());
        args.push(p.into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    coffer(&refs, Some(PASS))
}

fn verify(scheme: &str, pk: &str, msg: &str, sig: &str) -> Out {
    coffer(
        &[
            "ceremony",
            "verify",
            "--scheme",
            scheme,
            "--public-key",
            pk,
            "--message",
            msg,
            "--signature",
            sig,
        ],
        None,
    )
}

fn full_flow(scheme: &str, message: &str) {
    let dir = tmp(scheme);
    let key = keygen(scheme, 2, 3, &dir);
    assert_eq!(key["scheme"], scheme);
    assert_eq!(key["threshold"], 2);
    assert_eq!(key["parties"], 3);
    assert_eq!(key["epoch"], 0);
    assert_eq!(key["chain_code"].as_str().unwrap().len(), 64);
    let shares: Vec<String> = key["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(shares, (1..=3).map(|i| share(&dir, i)).collect::<Vec<_>>());
    let pk = key["public_key"].as_str().unwrap().to_string();
    assert_eq!(pk, pk.to_lowercase());

    // Upper-case hex with a 0x prefix is accepted; output is lowercase without prefix.
    let sig = sign(
        &[shares[2].clone(), shares[0].clone()],
        &format!("0x{}", message.to_uppercase()),
        None,
    )
    .json();
    assert_eq!(sig["scheme"], scheme);
    assert_eq!(sig["public_key"], pk);
    assert_eq!(sig["message"], message.to_lowercase());
    let signature = sig["signature"].as_str().unwrap();
    assert_eq!(signature.len(), 128);
    assert_eq!(
        sig.get("recovery_id").is_some(),
        scheme == "ecdsa-secp256k1"
    );
    if let Some(r) = sig.get("recovery_id") {
        assert!(r == 0 || r == 1);
    }
    assert_eq!(
        verify(scheme, &pk, message, signature).json(),
        serde_json::json!({"valid": true})
    );

    // A derived child key signs under the key that `derive` prints.
    let derived = coffer(
        &[
            "ceremony", "derive", "--share", &shares[1], "--path", "m/0/7",
        ],
        None,
    )
    .json();
    assert_eq!(derived["path"], "m/0/7");
    let child_sig = sign(&shares[1..], message, Some("m/0/7")).json();
    assert_eq!(child_sig["public_key"], derived["public_key"]);
    verify(
        scheme,
        derived["public_key"].as_str().unwrap(),
        message,
        child_sig["signature"].as_str().unwrap(),
    )
    .json();
    let root = coffer(
        &["ceremony", "derive", "--share", &shares[0], "--path", "m"],
        None,
    )
    .json();
    assert_eq!(root["public_key"], pk);

    // Refresh: same key, next epoch, the new shares sign, old and new do not mix.
    let out = dir.join("epoch1");
    let mut args = vec!["ceremony", "refresh"];
    for s in &shares {
        args.extend(["--share", s.as_str()]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    let refreshed = coffer(&args, Some(PASS)).json();
    assert_eq!(refreshed["public_key"], pk);
    assert_eq!(refreshed["epoch"], 1);
    let new_sig = sign(&[share(&out, 1), share(&out, 3)], message, None).json();
    verify(scheme, &pk, message, new_sig["signature"].as_str().unwrap()).json();
    let mixed = sign(&[shares[0].clone(), share(&out, 2)], message, None).failure();
    assert!(mixed.contains("epoch"), "{mixed}");
    let _ = std::fs::remove_dir_all(dir);
}

const DIGEST: &str = "4b7a9d4cc2cf8b1e8e7a4be3b8e2f8b5a1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1";

#[test]
fn ecdsa_keygen_sign_derive_refresh_verify() {
    full_flow("ecdsa-secp256k1", DIGEST);
}

#[test]
fn bip340_keygen_sign_derive_refresh_verify() {
    full_flow("schnorr-bip340", DIGEST);
}

#[test]
fn ed25519_keygen_sign_derive_refresh_verify() {
    full_flow("ed25519", "48656c6c6f2c20436f6666657221");
}

#[test]
fn demo_runs_all_three_schemes() {
    let out = coffer(&["ceremony", "demo"], None).json();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        for s in r["signatures"].as_array().unwrap() {
            assert_eq!(s["valid"], true);
        }
    }
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tmp("bad-args");
    let d = dir.to_str().unwrap();
    let (pk33, z32, z63, z64, pk32) = (
        "02".repeat(33),
        "00".repeat(32),
        "00".repeat(63),
        "00".repeat(64),
        "00".repeat(32),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "ceremony",
                "keygen",
                "--scheme",
                "rsa",
                "--threshold",
                "2",
                "--parties",
                "3",
                "--out",
                d,
            ],
            "unknown scheme",
        ),
        (
            vec![
                "ceremony",
                "keygen",
                "--scheme",
                "ed25519",
                "--threshold",
                "4",
                "--parties",
                "3",
                "--out",
                d,
            ],
            "exceeds",
        ),
        (
            vec![
                "ceremony",
                "keygen",
                "--scheme",
                "ed25519",
                "--threshold",
                "1",
                "--parties",
                "3",
                "--out",
                d,
            ],
            "minimum",
        ),
        (
            vec![
                "ceremony",
                "keygen",
                "--scheme",
                "ed25519",
                "--threshold",
                "2",
                "--parties",
                "17",
                "--out",
                d,
            ],
            "maximum",
        ),
        (
            vec![
                "ceremony",
                "keygen",
                "--scheme",
                "ed25519",
                "--threshold",
                "x",
                "--parties",
                "3",
                "--out",
                d,
            ],
            "invalid value",
        ),
        (
            vec![
                "ceremony",
                "verify",
                "--scheme",
                "ed25519",
                "--public-key",
                "zz",
                "--message",
                "",
                "--signature",
                "00",
            ],
            "hex",
        ),
        (
            vec![
                "ceremony",
                "verify",
                "--scheme",
                "ecdsa-secp256k1",
                "--public-key",
                &pk33,
                "--message",
                "00",
                "--signature",
                &z64,
            ],
            "32-byte",
        ),
        (
            vec![
                "ceremony",
                "verify",
                "--scheme",
                "schnorr-bip340",
                "--public-key",
                &pk33,
                "--message",
                &z32,
                "--signature",
                &z64,
            ],
            "32 bytes",
        ),
        (
            vec![
                "ceremony",
                "verify",
                "--scheme",
                "ed25519",
                "--public-key",
                &pk32,
                "--message",
                "",
                "--signature",
                &z63,
            ],
            "64 bytes",
        ),
        (vec!["ceremony", "frobnicate"], "unrecognized"),
    ];
    for (args, expect) in cases {
        let last = coffer(&args, Some(PASS)).failure();
        assert!(last.contains(expect), "{args:?}: {last}");
    }
    // Keygen without a passphrase refuses to write plaintext.
    let last = coffer(
        &[
            "ceremony",
            "keygen",
            "--scheme",
            "ed25519",
            "--threshold",
            "2",
            "--parties",
            "3",
            "--out",
            d,
        ],
        None,
    )
    .failure();
    assert!(last.contains("COFFER_PASSPHRASE"), "{last}");
    let last = coffer(
        &[
            "ceremony",
            "keygen",
            "--scheme",
            "ed25519",
            "--threshold",
            "2",
            "--parties",
            "3",
            "--out",
            d,
        ],
        Some(""),
    )
    .failure();
    assert!(last.contains("COFFER_PASSPHRASE"), "{last}");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_shares_fail_cleanly() {
    let dir = tmp("bad-shares");
    let other = tmp("other-key");
    keygen("schnorr-bip340", 2, 3, &dir);
    keygen("schnorr-bip340", 2, 3, &other);
    let (s1, s2, s3) = (share(&dir, 1), share(&dir, 2), share(&dir, 3));

    // A directory that already holds shares is refused.
    let d = dir.to_str().unwrap();
    let last = coffer(
        &[
            "ceremony",
            "keygen",
            "--scheme",
            "ed25519",
            "--threshold",
            "2",
            "--parties",
            "3",
            "--out",
            d,
        ],
        Some(PASS),
    )
    .failure();
    assert!(last.contains("refusing"), "{last}");

    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![s1.clone()], "threshold"),
        (vec![s1.clone(), s1.clone()], "same party"),
        (vec![s1.clone(), share(&other, 2)], "different keys"),
    ];
    for (shares, expect) in cases {
        let last = sign(&shares, DIGEST, None).failure();
        assert!(last.contains(expect), "{shares:?}: {last}");
    }
    assert!(sign(&[s1.clone(), s2.clone()], &DIGEST[..62], None)
        .failure()
        .contains("32-byte"));
    assert!(sign(&[s1.clone(), s2.clone()], "xyz", None)
        .failure()
        .contains("hex"));
    assert!(sign(&[s1.clone(), s2.clone()], DIGEST, Some("m/0'"))
        .failure()
        .contains("hardened"));

    // Wrong passphrase.
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args([
            "ceremony",
            "sign",
            "--share",
            &s1,
            "--share",
            &s2,
            "--message",
            DIGEST,
        ])
        .env("COFFER_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    let wrong = Out {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(wrong.failure().contains("wrong passphrase"));

    // Corrupted, truncated, tampered-header and non-share files.
    let original = std::fs::read_to_string(&s3).unwrap();
    let corrupt = dir.join("corrupt.json");
    let mut v: Value = serde_json::from_str(&original).unwrap();
    let ct = v["ciphertext"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if ct.starts_with('0') { "1" } else { "0" },
        &ct[1..]
    );
    v["ciphertext"] = Value::String(flipped);
    std::fs::write(&corrupt, v.to_string()).unwrap();
    let tampered = dir.join("tampered.json");
    let mut v: Value = serde_json::from_str(&original).unwrap();
    v["header"]["threshold"] = Value::from(3);
    std::fs::write(&tampered, v.to_string()).unwrap();
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &original[..original.len() / 2]).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, [0xffu8, 0x00, 0x13]).unwrap();
    for bad in [&corrupt, &tampered, &truncated, &garbage] {
        let last = sign(&[s1.clone(), bad.display().to_string()], DIGEST, None).failure();
        assert!(last.contains(&bad.display().to_string()), "{last}");
    }
    let missing = sign(
        &[s1.clone(), dir.join("nope.json").display().to_string()],
        DIGEST,
        None,
    )
    .failure();
    assert!(missing.contains("nope.json"), "{missing}");

    // Derive needs no passphrase but refuses hardened steps and junk files.
    coffer(
        &["ceremony", "derive", "--share", &s1, "--path", "m/1"],
        None,
    )
    .json();
    assert!(coffer(
        &["ceremony", "derive", "--share", &s1, "--path", "m/1h"],
        None
    )
    .failure()
    .contains("hardened"));
    coffer(
        &[
            "ceremony",
            "derive",
            "--share",
            garbage.to_str().unwrap(),
            "--path",
            "m",
        ],
        None,
    )
    .failure();

    // Refresh needs every share.
    let out = dir.join("refreshed");
    let last = coffer(
        &[
            "ceremony",
            "refresh",
            "--share",
            &s1,
            "--share",
            &s2,
            "--out",
            out.to_str().unwrap(),
        ],
        Some(PASS),
    )
    .failure();
    assert!(last.contains("all parties"), "{last}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other);
}

#[test]
fn verify_reports_invalid_signatures_with_exit_1() {
    let dir = tmp("verify");
    let key = keygen("ed25519", 2, 2, &dir);
    let pk = key["public_key"].as_str().unwrap();
    let sig = sign(&[share(&dir, 1), share(&dir, 2)], "00", None).json();
    let s = sig["signature"].as_str().unwrap();
    let bad = verify("ed25519", pk, "01", s);
    assert_eq!(bad.code, 1);
    assert_eq!(bad.stdout.trim(), r#"{"valid":false}"#);
    assert!(bad.stderr.lines().last().unwrap().starts_with("error:"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refresh_can_remove_a_party_from_a_frost_group() {
    let dir = tmp("reshare");
    let key = keygen("ed25519", 2, 3, &dir);
    let pk = key["public_key"].as_str().unwrap().to_string();
    let out = dir.join("without-2");
    let (s1, s2, s3) = (share(&dir, 1), share(&dir, 2), share(&dir, 3));
    let o = out.to_str().unwrap();
    let res = coffer(
        &[
            "ceremony",
            "refresh",
            "--share",
            &s1,
            "--share",
            &s3,
            "--remove-party",
            "2",
            "--out",
            o,
        ],
        Some(PASS),
    )
    .json();
    assert_eq!(res["public_key"], pk.as_str());
    assert_eq!(res["parties"], 2);
    assert_eq!(res["epoch"], 1);
    assert_eq!(res["members"], serde_json::json!([1, 3]));
    let shares: Vec<String> = res["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(shares, vec![share(&out, 1), share(&out, 3)]);
    let sig = sign(&shares, "abcd", None).json();
    verify("ed25519", &pk, "abcd", sig["signature"].as_str().unwrap()).json();
    // The removed party's share does not sign with the new ones.
    sign(&[s2.clone(), share(&out, 1)], "abcd", None).failure();
    // Party numbers start at 1; ECDSA keys cannot reshare; the removed share must be left out.
    let o2 = dir.join("x");
    let o2 = o2.to_str().unwrap();
    assert!(coffer(
        &[
            "ceremony",
            "refresh",
            "--share",
            &s1,
            "--share",
            &s3,
            "--remove-party",
            "0",
            "--out",
            o2
        ],
        Some(PASS)
    )
    .failure()
    .contains("start at 1"));
    coffer(
        &[
            "ceremony",
            "refresh",
            "--share",
            &s1,
            "--share",
            &s2,
            "--share",
            &s3,
            "--remove-party",
            "2",
            "--out",
            o2,
        ],
        Some(PASS),
    )
    .failure();
    let _ = std::fs::remove_dir_all(dir);
}
