//! `coffer signer init|enrol|show` and `coffer server init` as an operator runs them: the
//! printed public identity, the admin-signed roster pinned from a file, and clear refusals
//! (a second init, a roster that does not list the signer, a roster without its quorum).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::{Identity, PublicIdentity};
use serde_json::Value;

fn coffer(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .env_remove("COFFER_PASSPHRASE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = if out.status.success() {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        assert!(out.stdout.is_empty());
        Value::Null
    };
    (
        out.status.success(),
        json,
        stderr.lines().last().unwrap_or_default().to_string(),
    )
}

fn init(dir: &Path, name: &str) -> PublicIdentity {
    let d = dir.join(name);
    let (ok, v, err) = coffer(&[
        "signer",
        "init",
        "--data",
        d.to_str().unwrap(),
        "--key-file",
        d.with_extension("key").to_str().unwrap(),
        "--name",
        name,
    ]);
    assert!(ok, "{err}");
    serde_json::from_value(v["identity"].clone()).unwrap()
}

#[test]
fn operators_create_signers_and_pin_an_admin_signed_roster() {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let dir = std::env::temp_dir().join(format!("coffer-signer-cli-{}", hex::encode(b)));
    std::fs::create_dir_all(&dir).unwrap();
    let ids: Vec<PublicIdentity> = ["a", "b"].iter().map(|n| init(&dir, n)).collect();
    assert_eq!(ids[0].name, "a");
    assert_ne!(ids[0].node_key, ids[1].node_key);

    // A second init on the same directory is refused.
    let a = dir.join("a");
    let key_a = dir.join("a.key");
    let (ok, _, err) = coffer(&[
        "signer",
        "init",
        "--data",
        a.to_str().unwrap(),
        "--key-file",
        key_a.to_str().unwrap(),
    ]);
    assert!(!ok && err.starts_with("error:"), "{err}");

    let (ok, v, err) = coffer(&[
        "server",
        "init",
        "--data",
        dir.join("server").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let server = v["server_key"].as_str().unwrap().parse().unwrap();

    let admins: Vec<Identity> = (0..2)
        .map(|i| Identity::generate(&format!("admin{i}")))
        .collect();
    let roster = Roster {
        version: 1,
        signers: ids.clone(),
        admins: admins.iter().map(|a| a.node_key()).collect(),
        admin_threshold: 2,
        server,
        dev_mode: false,
    };
    let write = |name: &str, signers: usize| {
        let signed = SignedRoster {
            signatures: admins[..signers]
                .iter()
                .map(|a| roster.sign_as_admin(a).unwrap())
                .collect(),
            roster: roster.clone(),
        };
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string(&signed).unwrap()).unwrap();
        path
    };
    let enrol = |roster: &Path| {
        coffer(&[
            "signer",
            "enrol",
            "--data",
            a.to_str().unwrap(),
            "--key-file",
            key_a.to_str().unwrap(),
            "--roster",
            roster.to_str().unwrap(),
        ])
    };

    // One admin signature of two: refused.
    let (ok, _, err) = enrol(&write("short.json", 1));
    assert!(!ok && err.contains("valid signatures"), "{err}");
    // The quorum: pinned.
    let (ok, v, err) = enrol(&write("roster.json", 2));
    assert!(ok, "{err}");
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["admin_threshold"], 2);
    let (ok, v, _) = coffer(&[
        "signer",
        "show",
        "--data",
        a.to_str().unwrap(),
        "--key-file",
        key_a.to_str().unwrap(),
    ]);
    assert!(ok);
    assert_eq!(v["enrolled"], true);
    assert_eq!(
        v["identity"]["node_key"],
        serde_json::json!(ids[0].node_key)
    );

    // A roster that does not list this signer is refused.
    let stranger_roster = Roster {
        signers: vec![ids[1].clone(), Identity::generate("c").public()],
        ..roster.clone()
    };
    let signed = SignedRoster {
        signatures: admins
            .iter()
            .map(|x| stranger_roster.sign_as_admin(x).unwrap())
            .collect(),
        roster: stranger_roster,
    };
    let b_dir = dir.join("b");
    let path = dir.join("other.json");
    std::fs::write(&path, serde_json::to_string(&signed).unwrap()).unwrap();
    let (ok, _, err) = coffer(&[
        "signer",
        "enrol",
        "--data",
        b_dir.join("..").join("a").to_str().unwrap(),
        "--key-file",
        key_a.to_str().unwrap(),
        "--roster",
        path.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("does not list"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
