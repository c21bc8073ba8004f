//! The signer network with real processes: `coffer dev` starts a server and three signer
//! daemons; keys are made by DKG across them and signed by two of them, over TLS and
//! end-to-end envelopes; signatures are checked by independent verifiers (libsecp256k1,
//! ed25519-dalek). Then the faults: killed and restarted signers, a restarted server, a relay
//! that drops, duplicates, reorders or alters envelopes, an unknown identity.
//!
//! These tests build on the test binary, which carries the public test primes
//! (`COFFER_INSECURE_TEST_PRIMES=1`) and the relay fault switch (`COFFER_TEST_RELAY_FAULT`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

fn temp_dir(tag: &str) -> PathBuf {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    std::env::temp_dir().join(format!("coffer-cluster-{tag}-{}", hex::encode(b)))
}

/// A `coffer dev` cluster; killed (with its children) on drop.
struct Dev {
    child: Child,
    dir: PathBuf,
    extra: Vec<Child>,
}

impl Dev {
    fn start(tag: &str, env: &[(&str, &str)], extra_args: &[&str]) -> Dev {
        Self::start_in(temp_dir(tag), env, extra_args)
    }

    fn start_in(dir: PathBuf, env: &[(&str, &str)], extra_args: &[&str]) -> Dev {
        let mut cmd = Command::new(exe());
        cmd.args([
            "dev",
            "--data",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra_args)
        .env("COFFER_INSECURE_TEST_PRIMES", "1")
        .env("COFFER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("coffer dev printed nothing").unwrap();
        assert!(line.starts_with("coffer dev ready: http://"), "{line}");
        Dev {
            child,
            dir,
            extra: vec![],
        }
    }

    fn info(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("dev.json")).unwrap()).unwrap()
    }

    /// Runs `coffer key ...` against this cluster: Ok(JSON) or Err(last stderr line).
    fn key(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = vec!["key"];
        all.extend_from_slice(args);
        self.coffer(&all)
    }

    /// Runs `coffer ARGS --dev DIR` (with `--json` for the custody commands): Ok(JSON) or
    /// Err(last stderr line).
    fn coffer(&self, args: &[&str]) -> Result<Value, String> {
        let custody = !matches!(args.first(), Some(&"key"));
        let out = Command::new(exe())
            .args(args)
            .args(["--dev", self.dir.to_str().unwrap()])
            .args(if custody { &["--json"][..] } else { &[][..] })
            .current_dir(&self.dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{stderr}");
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        } else {
            assert!(out.stdout.is_empty());
            Err(stderr.lines().last().unwrap_or_default().to_string())
        }
    }

    fn pid_of(&self, name: &str) -> u32 {
        let info = self.info();
        if name == "server" {
            return info["server"]["pid"].as_u64().unwrap() as u32;
        }
        info["signers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["pid"]
            .as_u64()
            .unwrap() as u32
    }

    fn kill(&self, name: &str) {
        let pid = self.pid_of(name);
        let ok = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Restarts a process the way `coffer dev` started it (same arguments).
    fn restart(&mut self, name: &str) {
        let info = self.info();
        let entry = if name == "server" {
            info["server"].clone()
        } else {
            info["signers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap()
                .clone()
        };
        let argv: Vec<String> = entry["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(exe())
            .args(&argv)
            .env("COFFER_INSECURE_TEST_PRIMES", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.extra.push(child);
    }

    fn wait_connected(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = self.key(&["signers"]) {
                let c = v["signers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["connected"] == true)
                    .count();
                if c == n {
                    return;
                }
            }
            assert!(Instant::now() < until, "signers did not reconnect");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        for c in self.extra.iter_mut().chain([&mut self.child]) {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::thread::sleep(Duration::from_millis(200));
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("cluster data and logs kept in {}", self.dir.display());
            for entry in std::fs::read_dir(self.dir.join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- {} (last lines)", entry.path().display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

fn message_for(scheme: &str, text: &[u8]) -> Vec<u8> {
    match scheme {
        "ed25519" => text.to_vec(),
        _ => sha2::Sha256::digest(text).to_vec(),
    }
}

/// Checks a signature with an implementation independent of Coffer's own code paths.
fn independently_valid(scheme: &str, public_key: &str, message: &[u8], signature: &str) -> bool {
    let pk = hex::decode(public_key).unwrap();
    let sig = hex::decode(signature).unwrap();
    match scheme {
        "ecdsa-secp256k1" => {
            let secp = secp256k1::Secp256k1::verification_only();
            let pk = secp256k1::PublicKey::from_slice(&pk).unwrap();
            let sig = secp256k1::ecdsa::Signature::from_compact(&sig).unwrap();
            let msg = secp256k1::Message::from_digest_slice(message).unwrap();
            secp.verify_ecdsa(&msg, &sig, &pk).is_ok()
        }
        "schnorr-bip340" => {
            let secp = secp256k1::Secp256k1::verification_only();
            let pk = secp256k1::XOnlyPublicKey::from_slice(&pk).unwrap();
            let sig = secp256k1::schnorr::Signature::from_slice(&sig).unwrap();
            let msg = secp256k1::Message::from_digest_slice(message).unwrap();
            secp.verify_schnorr(&sig, &msg, &pk).is_ok()
        }
        "ed25519" => {
            let pk = ed25519_dalek::VerifyingKey::from_bytes(&pk.try_into().unwrap()).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            pk.verify_strict(message, &sig).is_ok()
        }
        other => panic!("unknown scheme {other}"),
    }
}

fn sign_and_check(dev: &Dev, key: &Value, path: &str, text: &[u8]) -> Value {
    let scheme = key["scheme"].as_str().unwrap();
    let message = message_for(scheme, text);
    let sig = dev
        .key(&[
            "sign",
            "--key",
            key["key_id"].as_str().unwrap(),
            "--message",
            &hex::encode(&message),
            "--path",
            path,
        ])
        .unwrap_or_else(|e| panic!("{scheme} signing at {path} failed: {e}"));
    assert_eq!(sig["signers"].as_array().unwrap().len(), 2, "{sig}");
    assert!(
        independently_valid(
            scheme,
            sig["public_key"].as_str().unwrap(),
            &message,
            sig["signature"].as_str().unwrap()
        ),
        "{scheme} signature at {path} rejected by the independent verifier"
    );
    if path == "m" {
        assert_eq!(sig["public_key"], key["public_key"]);
    } else {
        assert_ne!(sig["public_key"], key["public_key"]);
    }
    sig
}

/// The server keeps a pool per key (ECDSA presignatures, FROST round-one nonces); online
/// signing spends one item in one round, and signs interactively when the pool is empty.
/// Signers hash the preimage themselves (Ed25519 signs it as it is).
fn pooled_signing(dev: &Dev, key: &Value) {
    let id = key["key_id"].as_str().unwrap();
    let scheme = key["scheme"].as_str().unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    while dev.key(&["show", "--key", id]).unwrap()["pool_ready"]
        .as_i64()
        .unwrap()
        < 2
    {
        assert!(Instant::now() < until, "the {scheme} pool did not fill");
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut pooled = 0;
    for i in 0..3 {
        let preimage = format!("withdrawal {i}").into_bytes();
        let path = if scheme == "ecdsa-secp256k1" {
            "m"
        } else {
            "m/4/2"
        };
        let sig = dev
            .key(&[
                "sign",
                "--key",
                id,
                "--preimage",
                &hex::encode(&preimage),
                "--path",
                path,
            ])
            .unwrap();
        let message = message_for(scheme, &preimage);
        assert_eq!(sig["message"], hex::encode(&message));
        assert!(independently_valid(
            scheme,
            sig["public_key"].as_str().unwrap(),
            &message,
            sig["signature"].as_str().unwrap()
        ));
        if sig["presigned"] == true {
            pooled += 1;
        }
    }
    assert!(
        pooled >= 2,
        "only {pooled} of 3 {scheme} signatures used the pool"
    );
}

#[test]
fn three_signer_processes_make_keys_and_two_sign_for_every_scheme() {
    let dev = Dev::start("all", &[], &[]);
    for scheme in ["ed25519", "schnorr-bip340", "ecdsa-secp256k1"] {
        let key = dev.key(&["create", "--scheme", scheme]).unwrap();
        assert_eq!(key["scheme"], scheme);
        assert_eq!(key["parties"], 3);
        assert_eq!(key["threshold"], 2);
        sign_and_check(&dev, &key, "m", b"root");
        sign_and_check(&dev, &key, "m/0/7", b"child");
        pooled_signing(&dev, &key);
        // Refresh: new epoch, same key; signing still works.
        let refreshed = dev
            .key(&["refresh", "--key", key["key_id"].as_str().unwrap()])
            .unwrap();
        assert_eq!(refreshed["public_key"], key["public_key"]);
        assert_eq!(refreshed["epoch"], 1);
        sign_and_check(&dev, &key, "m/1/2", b"after refresh");
    }
    // Resharing a FROST key without signer-3: same key, next epoch, two members left, and
    // the remaining pair signs; CGGMP keys refuse with a clear message.
    let key = dev.key(&["create", "--scheme", "schnorr-bip340"]).unwrap();
    let id = key["key_id"].as_str().unwrap();
    let reshared = dev
        .key(&["reshare", "--key", id, "--remove", "signer-3"])
        .unwrap();
    assert_eq!(reshared["public_key"], key["public_key"]);
    assert_eq!(reshared["epoch"], 1);
    assert_eq!(reshared["removed"], serde_json::json!(["signer-3"]));
    let sig = sign_and_check(&dev, &key, "m/9", b"after removing signer-3");
    assert!(!sig["signers"].to_string().contains("signer-3"));
    let ecdsa = dev.key(&["list"]).unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scheme"] == "ecdsa-secp256k1")
        .unwrap()
        .clone();
    let err = dev
        .key(&[
            "reshare",
            "--key",
            ecdsa["key_id"].as_str().unwrap(),
            "--remove",
            "signer-3",
        ])
        .unwrap_err();
    assert!(err.contains("cannot be reshared"), "{err}");

    // Bad input gets a clear error.
    let err = dev.key(&["create", "--scheme", "rsa"]).unwrap_err();
    assert!(err.contains("unknown scheme"), "{err}");
    let err = dev
        .key(&["sign", "--key", "k-0000", "--message", "00"])
        .unwrap_err();
    assert!(err.contains("no key"), "{err}");
}

#[test]
fn faults_with_real_processes() {
    let mut dev = Dev::start("faults", &[], &["--session-timeout", "8"]);
    let key = dev.key(&["create", "--scheme", "ed25519"]).unwrap();

    // Kill one of three signers: 2-of-3 still signs.
    dev.kill("signer-3");
    dev.wait_connected(2);
    sign_and_check(&dev, &key, "m/0/1", b"with signer-3 down");

    // Key generation needs every signer: a clear error naming the missing one.
    let err = dev.key(&["create", "--scheme", "ed25519"]).unwrap_err();
    assert!(err.contains("signer-3"), "{err}");

    // Restart it: it resumes with its shares. Kill signer-1 so signer-3's share is needed.
    dev.restart("signer-3");
    dev.wait_connected(3);
    dev.kill("signer-1");
    dev.wait_connected(2);
    let sig = sign_and_check(&dev, &key, "m/0/2", b"signer-3 is back");
    assert!(sig["signers"].to_string().contains("signer-3"));
    dev.restart("signer-1");
    dev.wait_connected(3);

    // Kill a signer during DKG (ECDSA key generation takes seconds): a clean abort naming it.
    let dir = dev.dir.clone();
    let creating = std::thread::spawn(move || {
        Command::new(exe())
            .args([
                "key",
                "create",
                "--scheme",
                "ecdsa-secp256k1",
                "--dev",
                dir.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(1500));
    dev.kill("signer-2");
    let out = creating.join().unwrap();
    assert!(
        !out.status.success(),
        "key generation survived a killed signer"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("signer-2"),
        "the abort must name the killed signer: {err}"
    );
    dev.restart("signer-2");
    dev.wait_connected(3);
    let ecdsa = dev.key(&["create", "--scheme", "ecdsa-secp256k1"]).unwrap();
    sign_and_check(&dev, &ecdsa, "m", b"retry after a killed signer");

    // Restart the server: signers reconnect on their own, keys are still there.
    dev.kill("server");
    assert!(dev.key(&["list"]).is_err());
    dev.restart("server");
    dev.wait_connected(3);
    let keys = dev.key(&["list"]).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    sign_and_check(&dev, &key, "m", b"after a server restart");
    sign_and_check(&dev, &ecdsa, "m/3", b"after a server restart");
    drop(dev);
}

/// A relay that misbehaves can make a session fail, never produce a wrong signature.
#[test]
fn a_misbehaving_relay_causes_aborts_never_wrong_signatures() {
    for fault in ["duplicate", "reorder", "drop", "alter"] {
        let dev = Dev::start(
            fault,
            &[("COFFER_TEST_RELAY_FAULT", fault)],
            &["--session-timeout", "5"],
        );
        let mut signed = 0;
        let mut failed = Vec::new();
        for scheme in ["ed25519", "schnorr-bip340"] {
            let key = match dev.key(&["create", "--scheme", scheme]) {
                Ok(k) => k,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            };
            for i in 0..3 {
                let message = message_for(scheme, format!("{fault} {i}").as_bytes());
                match dev.key(&[
                    "sign",
                    "--key",
                    key["key_id"].as_str().unwrap(),
                    "--message",
                    &hex::encode(&message),
                ]) {
                    Ok(sig) => {
                        assert!(independently_valid(
                            scheme,
                            sig["public_key"].as_str().unwrap(),
                            &message,
                            sig["signature"].as_str().unwrap()
                        ));
                        signed += 1;
                    }
                    Err(e) => failed.push(e),
                }
            }
        }
        eprintln!(
            "relay fault {fault}: {signed} signed, {} failed: {failed:?}",
            failed.len()
        );
        match fault {
            // Duplicates are refused as replays: everything still works.
            "duplicate" => assert!(failed.is_empty(), "{failed:?}"),
            // Dropped or altered envelopes stall or abort sessions, with a clear message.
            "drop" | "alter" => {
                assert!(!failed.is_empty());
                for e in &failed {
                    assert!(
                        e.contains("stalled") || e.contains("aborted"),
                        "unclear failure: {e}"
                    );
                }
            }
            _ => {}
        }
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// `coffer dev` stops cleanly on SIGTERM (its server and signers with it) and, restarted
/// on the same directory, serves the same keys.
#[test]
fn dev_stops_cleanly_on_sigterm_and_restarts_with_its_keys() {
    let dir = temp_dir("restart");
    let mut dev = Dev::start_in(dir.clone(), &[], &[]);
    let key = dev.key(&["create", "--scheme", "ed25519"]).unwrap();
    let info = dev.info();
    let pids: Vec<u32> = std::iter::once(info["server"]["pid"].as_u64().unwrap() as u32)
        .chain(
            info["signers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["pid"].as_u64().unwrap() as u32),
        )
        .collect();
    let ok = Command::new("kill")
        .args(["-TERM", &dev.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "coffer dev exited with {status}");
    let until = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < until, "children outlived coffer dev");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Keep the directory: the drop of the first handle must not remove it.
    let dir_kept = std::mem::replace(&mut dev.dir, temp_dir("unused"));
    drop(dev);
    let dev = Dev::start_in(dir_kept, &[], &[]);
    let keys = dev.key(&["list"]).unwrap();
    assert_eq!(keys["keys"][0]["key_id"], key["key_id"]);
    sign_and_check(&dev, &key, "m/1", b"after a restart of coffer dev");
}

/// The README's first command: an ephemeral cluster, a key per scheme, two signatures
/// each, all verified; the temporary directory is removed.
#[test]
fn coffer_demo_runs_the_whole_path_on_an_ephemeral_cluster() {
    let out = Command::new(exe())
        .arg("demo")
        .env("COFFER_INSECURE_TEST_PRIMES", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for k in keys {
        let scheme = k["scheme"].as_str().unwrap();
        let message = hex::decode(k["message"].as_str().unwrap()).unwrap();
        for s in k["signatures"].as_array().unwrap() {
            assert_eq!(s["signers"].as_array().unwrap().len(), 2);
            assert!(independently_valid(
                scheme,
                s["public_key"].as_str().unwrap(),
                &message,
                s["signature"].as_str().unwrap()
            ));
        }
    }
    // The custody part: a request per wallet (Ed25519 and BIP340), signed after two
    // approvals, the signature checked here over the intent's message (recomputed from the
    // intent) under the address's key; the initiator's own approval refused; the audit log
    // verified.
    let custody = &v["custody"];
    assert!(custody["vault_id"].as_str().unwrap().len() > 1, "{custody}");
    let txs = custody["transactions"].as_array().unwrap();
    let schemes: Vec<&str> = txs.iter().map(|t| t["scheme"].as_str().unwrap()).collect();
    assert_eq!(schemes, ["ed25519", "schnorr-bip340"], "{custody}");
    for t in txs {
        assert_eq!(t["state"], "signed", "{t}");
        assert_eq!(t["approved_by"], serde_json::json!(["alice", "bob"]), "{t}");
        assert_eq!(t["signers"].as_array().unwrap().len(), 2, "{t}");
        assert_eq!(t["public_key"], t["address_public_key"], "{t}");
        let intent: coffer_policy::Intent = serde_json::from_value(t["intent"].clone()).unwrap();
        assert_eq!(
            hex::encode(intent.hash()),
            t["intent_hash"].as_str().unwrap()
        );
        assert!(
            independently_valid(
                t["scheme"].as_str().unwrap(),
                t["public_key"].as_str().unwrap(),
                &intent.message(),
                t["signature"].as_str().unwrap()
            ),
            "{t}"
        );
    }
    assert_eq!(txs[0]["intent"]["amount"], "1500000000", "{custody}");
    assert_eq!(txs[0]["intent"]["asset"], "SOL", "{custody}");
    assert!(
        custody["refused"]["error"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{custody}"
    );
    assert_eq!(custody["audit"]["verified"], true, "{custody}");
    assert!(
        custody["audit"]["entries"].as_u64().unwrap() > 10,
        "{custody}"
    );
    for line in [
        "ivan requested",
        "alice approved",
        "bob approved",
        "audit log",
    ] {
        assert!(stderr.contains(line), "{stderr}");
    }
}

/// The README's walk-through, command by command, as a newcomer runs it: `coffer dev`
/// bootstraps a tenant and its users; a vault, a wallet and an address; a 2-of-3 approvers
/// policy signed by the admin quorum; a request by the initiator, two approvals, a signature
/// an independent verifier accepts; the audit log exported and verified offline. With
/// `COFFER_DATABASE_URL` the server runs on PostgreSQL (the second half of the test).
#[test]
fn the_readme_custody_walkthrough_runs_as_written() {
    walkthrough(Dev::start("walkthrough", &[], &[]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(coffer_server::db::testing::postgres_scratch()) {
        Ok(scratch) => {
            walkthrough(Dev::start(
                "walkthrough-pg",
                &[("COFFER_DATABASE_URL", scratch.url())],
                &[],
            ));
            rt.block_on(scratch.drop_db()).unwrap();
        }
        Err(why) => coffer_server::db::testing::not_run("walkthrough", &why),
    }
}

/// A request the webhook receiver got: its headers (names lowercased) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A webhook receiver for the walk-through: answers 200 and keeps what it got.
struct Hook {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Hook {
    fn start() -> Hook {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = got.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut parsed = None;
                while parsed.is_none() {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let headers: Vec<(String, String)> = head
                        .split("\r\n")
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        parsed = Some((headers, buf[end + 4..end + 4 + len].to_vec()));
                    }
                }
                if let Some(p) = parsed {
                    shared.lock().unwrap().push(p);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
        Hook { url, got }
    }
}

fn walkthrough(dev: Dev) {
    let info = dev.info();
    let names: Vec<&str> = info["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in ["ops", "ivan", "alice", "bob", "carol", "vera", "audrey"] {
        assert!(names.contains(&n), "{info}");
    }
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let vault = dev
        .coffer(&["vault", "create", "treasury", "--scheme", "ed25519"])
        .unwrap();
    let wallet = dev
        .coffer(&[
            "wallet",
            "create",
            &id(&vault),
            "--name",
            "payouts",
            "--scheme",
            "ed25519",
            "--asset",
            "SOL",
        ])
        .unwrap();
    let address = dev.coffer(&["address", "new", &id(&wallet)]).unwrap();
    // A webhook endpoint for signed requests (the secret is printed once, never listed).
    let hook = Hook::start();
    let endpoint = dev
        .coffer(&[
            "webhook",
            "add",
            &format!("{}/coffer", hook.url),
            "--events",
            "transaction.signed",
        ])
        .unwrap();
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    let listed = dev.coffer(&["webhook", "list", "--as", "vera"]).unwrap();
    assert_eq!(listed["webhooks"][0]["id"], endpoint["id"], "{listed}");
    assert!(!listed.to_string().contains(&secret));
    assert!(dev
        .coffer(&["webhook", "add", "ftp://example.com/x"])
        .unwrap_err()
        .contains("http or https"));
    let template = dev.coffer(&["policy", "template", &id(&vault)]).unwrap();
    std::fs::write(dev.dir.join("policy.json"), template.to_string()).unwrap();
    dev.coffer(&["policy", "set", &id(&vault), "policy.json"])
        .unwrap();
    let tx = dev
        .coffer(&[
            "tx",
            "create",
            "--wallet",
            &id(&wallet),
            "--amount",
            "1.5sol",
            "--to",
            "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "--memo",
            "first payout",
        ])
        .unwrap();
    assert_eq!(tx["state"], "pending_approval", "{tx}");
    assert_eq!(tx["intent"]["amount"], "1500000000", "{tx}");
    let txid = id(&tx);
    // The initiator cannot approve; two approvers do.
    assert!(dev
        .coffer(&["tx", "approve", &txid, "--as", "ivan"])
        .is_err());
    dev.coffer(&["tx", "approve", &txid, "--as", "alice"])
        .unwrap();
    dev.coffer(&["tx", "approve", &txid, "--as", "bob"])
        .unwrap();
    let signed = dev
        .coffer(&["tx", "wait", &txid, "--until", "signed", "--timeout", "120"])
        .unwrap();
    assert_eq!(signed["state"], "signed", "{signed}");
    // The endpoint got the signed event, signed with its secret.
    let until = Instant::now() + Duration::from_secs(30);
    let deliveries = loop {
        let d = dev
            .coffer(&["webhook", "deliveries", &id(&endpoint)])
            .unwrap();
        if d["deliveries"][0]["state"] == "delivered" {
            break d;
        }
        assert!(Instant::now() < until, "no delivery: {d}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(deliveries["deliveries"].as_array().unwrap().len(), 1);
    let (headers, body) = hook.got.lock().unwrap()[0].clone();
    let h = coffer_server::webhooks::signature::SignedHeaders::from_lookup(|name| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    })
    .unwrap();
    assert_eq!(h.event_id, deliveries["deliveries"][0]["event_id"]);
    coffer_server::webhooks::signature::verify(
        &hex::decode(&secret).unwrap(),
        &h,
        &body,
        coffer_server::db::unix_now(),
        300,
        &mut coffer_server::webhooks::signature::MemoryReplayGuard::default(),
    )
    .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "transaction.signed");
    assert_eq!(event["data"]["request_id"], txid.as_str());
    assert_eq!(event["data"]["amount"], "1500000000");
    dev.coffer(&["webhook", "remove", &id(&endpoint)]).unwrap();
    let listed = dev.coffer(&["webhook", "list"]).unwrap();
    assert!(
        listed["webhooks"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    // An independent verifier accepts the signature under the address's key.
    assert_eq!(signed["public_key"], address["public_key"]);
    let intent: coffer_policy::Intent = serde_json::from_value(signed["intent"].clone()).unwrap();
    let pk: [u8; 32] = hex::decode(signed["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig = hex::decode(signed["signature"].as_str().unwrap()).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify_strict(
            &intent.message(),
            &ed25519_dalek::Signature::from_slice(&sig).unwrap(),
        )
        .unwrap();
    // The audit log, exported and verified offline; a changed line is detected.
    dev.coffer(&["audit", "export", "--out", "audit.jsonl"])
        .unwrap();
    let verified = dev.coffer(&["audit", "verify", "audit.jsonl"]).unwrap();
    assert!(verified.to_string().contains("entries"), "{verified}");
    let text = std::fs::read_to_string(dev.dir.join("audit.jsonl")).unwrap();
    assert!(text.contains("\"amount\":\"1500000000\""), "{text}");
    std::fs::write(
        dev.dir.join("tampered.jsonl"),
        text.replacen("\"amount\":\"1500000000\"", "\"amount\":\"1500000001\"", 1),
    )
    .unwrap();
    assert!(dev.coffer(&["audit", "verify", "tampered.jsonl"]).is_err());
    // Alerts: the policy change and the first payment to the destination are listed; an
    // admin acknowledges one with a reason, once.
    let listed = dev.coffer(&["alerts", "list", "--unacked"]).unwrap();
    let list = listed["alerts"].as_array().unwrap();
    assert!(
        list.iter().any(|a| a["kind"] == "policy_change"),
        "{listed}"
    );
    let first = list
        .iter()
        .find(|a| a["kind"] == "first_destination" && a["evidence"]["request"] == txid.as_str())
        .unwrap_or_else(|| panic!("no first-destination alert: {listed}"));
    let alert = id(first);
    assert!(dev
        .coffer(&[
            "alerts",
            "ack",
            &alert,
            "--reason",
            "new payee",
            "--as",
            "alice"
        ])
        .is_err());
    let acked = dev
        .coffer(&[
            "alerts",
            "ack",
            &alert,
            "--reason",
            "new payee checked by phone",
        ])
        .unwrap();
    assert_eq!(acked["ack_reason"], "new payee checked by phone", "{acked}");
    assert!(dev
        .coffer(&["alerts", "ack", &alert, "--reason", "again"])
        .unwrap_err()
        .contains("already acknowledged"));
    assert!(dev
        .coffer(&["alerts", "list", "--severity", "urgent"])
        .is_err());
    let unacked = dev.coffer(&["alerts", "list", "--unacked"]).unwrap();
    assert!(unacked["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["id"] != alert.as_str()));
    let shown = dev.coffer(&["alerts", "show", &alert]).unwrap();
    assert_eq!(shown, acked);
}

/// An EIP-712 permit (the walk-through's typed data).
const PERMIT: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"spender","type":"address"},{"name":"value","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"Token","chainId":1,"verifyingContract":"0xdAC17F958D2ee523a2206206994597C13D831ec7"},"message":{"spender":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","value":"1000"}}"#;

/// The README's chain walk-through, command for command: from `coffer dev`, a vault with a
/// key per scheme, one address per chain, and four transfers approved by two approvers and
/// signed by the signers: a Bitcoin SegWit (P2WPKH) and a Bitcoin Taproot (P2TR) spend, each
/// input checked by Bitcoin Core's script interpreter with all spent outputs; an Ethereum
/// EIP-1559 transfer broadcast with `coffer tx broadcast` (eth_sendRawTransaction) to a local
/// node that mines it; a Solana transfer executed by LiteSVM with signature and blockhash
/// checks on. Bad input is refused before any signing starts.
#[test]
fn the_readme_chain_walkthrough_runs_as_written() {
    use coffer_eth::anvil::{Anvil, AnvilError};
    use coffer_eth::rpc::EthRpc;

    let dev = Dev::start("chains", &[], &[]);
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let vault = id(&dev.coffer(&["vault", "create", "treasury"]).unwrap());
    let template = dev.coffer(&["policy", "template", &vault]).unwrap();
    std::fs::write(dev.dir.join("policy.json"), template.to_string()).unwrap();
    dev.coffer(&["policy", "set", &vault, "policy.json"])
        .unwrap();
    let address = |chain: &[&str]| {
        let mut args = vec!["address", "new", "--vault", &vault, "--chain"];
        args.extend_from_slice(chain);
        let a = dev.coffer(&args).unwrap();
        assert!(a["address"].is_string(), "{a}");
        a
    };
    let segwit = address(&["bitcoin", "--network", "regtest"]);
    let taproot = address(&["bitcoin", "--network", "regtest", "--kind", "p2tr"]);
    let ether = address(&["ethereum"]);
    let solana = address(&["solana"]);
    let s = |v: &Value, f: &str| v[f].as_str().unwrap().to_string();
    assert!(s(&segwit, "address").starts_with("bcrt1q"), "{segwit}");
    assert!(s(&taproot, "address").starts_with("bcrt1p"), "{taproot}");
    assert!(s(&ether, "address").starts_with("0x"), "{ether}");
    // An independent derivation of the Ethereum address from the reported public key.
    let pk =
        secp256k1::PublicKey::from_slice(&hex::decode(s(&ether, "public_key")).unwrap()).unwrap();
    assert_eq!(
        s(&ether, "address"),
        coffer_eth::address(&pk.serialize_uncompressed()).unwrap()
    );

    // Approve a request by two approvers and wait until it is signed.
    let approve_and_sign = |tx: &Value| -> Value {
        assert_eq!(tx["state"], "pending_approval", "{tx}");
        let txid = id(tx);
        dev.coffer(&["tx", "approve", &txid, "--as", "alice"])
            .unwrap();
        dev.coffer(&["tx", "approve", &txid, "--as", "bob"])
            .unwrap();
        let signed = dev
            .coffer(&["tx", "wait", &txid, "--until", "signed", "--timeout", "300"])
            .unwrap();
        assert!(
            signed["signed_tx"].is_string() && signed["tx_id"].is_string(),
            "{signed}"
        );
        signed
    };

    // Bitcoin: the caller supplies the paying address's UTXOs (here two made-up outpoints
    // paying its script); Coffer selects, adds change, applies the fee rate.
    let dest = "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx";
    for from in [&segwit, &taproot] {
        let script = s(from, "script_pubkey");
        let utxos = [
            format!("{}:0:40000:{script}", "aa".repeat(32)),
            format!("{}:1:30000:{script}", "bb".repeat(32)),
        ];
        let kind = if from == &taproot { "p2tr" } else { "p2wpkh" };
        // Amounts above the inputs are refused before anything is signed.
        let err = dev
            .coffer(&[
                "tx",
                "create",
                "--vault",
                &vault,
                "--chain",
                "bitcoin",
                "--network",
                "regtest",
                "--kind",
                kind,
                "--to",
                dest,
                "--amount",
                "90000",
                "--utxo",
                &utxos[0],
                "--utxo",
                &utxos[1],
            ])
            .unwrap_err();
        assert!(
            err.contains("insufficient") || err.contains("missing"),
            "{err}"
        );
        let tx = dev
            .coffer(&[
                "tx",
                "create",
                "--vault",
                &vault,
                "--chain",
                "bitcoin",
                "--network",
                "regtest",
                "--kind",
                kind,
                "--to",
                dest,
                "--amount",
                "0.0005btc",
                "--fee-rate",
                "3",
                "--utxo",
                &utxos[0],
                "--utxo",
                &utxos[1],
            ])
            .unwrap();
        assert_eq!(tx["chain"]["signatures"], 2, "{tx}");
        let signed = approve_and_sign(&tx);
        let raw = hex::decode(s(&signed, "signed_tx")).unwrap();
        let spk = hex::decode(&script).unwrap();
        let spent = [
            bitcoinconsensus::Utxo {
                script_pubkey: spk.as_ptr(),
                script_pubkey_len: spk.len() as u32,
                value: 40_000,
            },
            bitcoinconsensus::Utxo {
                script_pubkey: spk.as_ptr(),
                script_pubkey_len: spk.len() as u32,
                value: 30_000,
            },
        ];
        for (i, value) in [40_000u64, 30_000].into_iter().enumerate() {
            bitcoinconsensus::verify_with_flags(
                &spk,
                value,
                &raw,
                Some(&spent),
                i,
                bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
            )
            .unwrap_or_else(|e| panic!("{kind} input {i}: {e:?}"));
        }
        assert_eq!(s(&signed, "tx_id").len(), 64);
    }

    // Off-chain Ethereum messages, signed by the vault's Ethereum address: each kind is
    // refused until a policy rule names it (`kinds`), then approved and signed like a
    // transfer; alloy recovers the vault address from the signatures.
    let sign_message = |how: &[&str]| {
        let mut args = vec![
            "tx",
            "sign-message",
            "--vault",
            &vault,
            "--chain",
            "ethereum",
        ];
        args.extend_from_slice(how);
        dev.coffer(&args).unwrap()
    };
    let text = "I control this address (coffer)";
    let refused = sign_message(&["--text", text]);
    assert_eq!(refused["state"], "rejected", "{refused}");
    let mut next = dev.coffer(&["policy", "template", &vault]).unwrap();
    let rules = next["rules"].as_array_mut().unwrap();
    for (name, kind) in [("personal messages", "eip191"), ("typed data", "eip712")] {
        let mut rule = rules[0].clone();
        rule["name"] = serde_json::json!(name);
        rule["when"] = serde_json::json!({ "kinds": [kind] });
        rules.insert(0, rule);
    }
    std::fs::write(dev.dir.join("messages.json"), next.to_string()).unwrap();
    dev.coffer(&["policy", "set", &vault, "messages.json"])
        .unwrap();
    let tx = sign_message(&["--text", text]);
    assert_eq!(tx["intent"]["kind"], "eip191", "{tx}");
    let signed = approve_and_sign(&tx);
    let recovered = |sig: &str, digest: Option<alloy_primitives::B256>| {
        let bytes = hex::decode(sig.trim_start_matches("0x")).unwrap();
        let sig = alloy_primitives::Signature::try_from(bytes.as_slice()).unwrap();
        match digest {
            None => sig.recover_address_from_msg(text.as_bytes()),
            Some(d) => sig.recover_address_from_prehash(&d),
        }
        .unwrap()
        .to_checksum(None)
    };
    assert_eq!(
        recovered(&s(&signed, "signed_tx"), None),
        s(&ether, "address")
    );
    std::fs::write(dev.dir.join("permit.json"), PERMIT).unwrap();
    let tx = sign_message(&["--typed-data", "permit.json"]);
    assert_eq!(
        tx["chain"]["destination"], "0xdAC17F958D2ee523a2206206994597C13D831ec7",
        "the verifying contract is what the policy sees: {tx}"
    );
    let signed = approve_and_sign(&tx);
    let typed: alloy_dyn_abi::TypedData = serde_json::from_str(PERMIT).unwrap();
    let digest = typed.eip712_signing_hash().unwrap();
    assert_eq!(
        recovered(&s(&signed, "signed_tx"), Some(digest)),
        s(&ether, "address")
    );

    // Ethereum: a local node (anvil); the vault address is funded from its dev account.
    match Anvil::start(31337) {
        Ok(node) => {
            let rpc = EthRpc::new(&node.url());
            let vault_eth = s(&ether, "address");
            rpc.send_value_from_dev_account(&node.dev_account(), &vault_eth, 10u128.pow(18))
                .unwrap();
            let to = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
            let before = rpc.balance(to).unwrap();
            // A chain id of 0 is refused before any signing.
            assert!(dev
                .coffer(&[
                    "tx",
                    "create",
                    "--vault",
                    &vault,
                    "--chain",
                    "ethereum",
                    "--to",
                    to,
                    "--amount",
                    "0.25eth",
                    "--nonce",
                    "0",
                    "--chain-id",
                    "0"
                ])
                .is_err());
            let tx = dev
                .coffer(&[
                    "tx",
                    "create",
                    "--vault",
                    &vault,
                    "--chain",
                    "ethereum",
                    "--to",
                    to,
                    "--amount",
                    "0.25eth",
                    "--nonce",
                    "0",
                    "--chain-id",
                    "31337",
                ])
                .unwrap();
            let signed = approve_and_sign(&tx);
            assert!(s(&signed, "signed_tx").starts_with("0x02"), "{signed}");
            let sent = dev
                .coffer(&["tx", "broadcast", &id(&signed), "--rpc", &node.url()])
                .unwrap();
            assert_eq!(sent["tx_id"], signed["tx_id"], "{sent}");
            let hash = s(&signed, "tx_id");
            let mut mined = None;
            for _ in 0..50 {
                mined = rpc.receipt_status(&hash).unwrap();
                if mined.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert_eq!(mined, Some(true), "mined and successful");
            assert_eq!(rpc.balance(to).unwrap() - before, 250_000_000_000_000_000);
        }
        Err(AnvilError::NotInstalled { path })
            if std::env::var("COFFER_REQUIRE_CHAIN_NODES").as_deref() != Ok("1") =>
        {
            eprintln!(
                "anvil not installed at {}: Ethereum node part NOT RUN",
                path.display()
            );
        }
        Err(e) => panic!("anvil: {e}"),
    }

    // Solana: LiteSVM, with the vault address funded; its blockhash goes into the transfer.
    let vault_sol = s(&solana, "address");
    if let Some(mut svm) =
        coffer_sol::litesvm::start_or_skip(&[(vault_sol.clone(), 2_000_000_000)]).unwrap()
    {
        let to = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
        let tx = dev
            .coffer(&[
                "tx",
                "create",
                "--vault",
                &vault,
                "--chain",
                "solana",
                "--to",
                to,
                "--amount",
                "0.5sol",
                "--blockhash",
                svm.blockhash(),
            ])
            .unwrap();
        let signed = approve_and_sign(&tx);
        let run = svm
            .execute(
                &s(&signed, "signed_tx"),
                &[to.to_string(), vault_sol.clone()],
            )
            .unwrap();
        assert!(run.ok, "{:?}", run.error);
        assert_eq!(run.balances[to], 500_000_000);
        assert_eq!(
            run.balances[&vault_sol],
            2_000_000_000 - 500_000_000 - 5_000
        );
    }
}

/// `coffer vault freeze` and `unfreeze` against real server and signer processes: every
/// signer acknowledges the server-signed freeze; the unfreeze, signed with the dev admin
/// quorum, is accepted by the server and every signer; a second unfreeze is refused.
#[test]
fn the_cli_freezes_a_vault_and_unfreezes_it_with_the_admin_quorum() {
    let dev = Dev::start("freeze", &[], &[]);
    let vault = dev
        .coffer(&["vault", "create", "treasury", "--scheme", "ed25519"])
        .unwrap();
    let vid = vault["id"].as_str().unwrap().to_string();
    let frozen = dev
        .coffer(&["vault", "freeze", &vid, "--reason", "incident drill"])
        .unwrap();
    assert_eq!(frozen["frozen"], true, "{frozen}");
    let acks = frozen["signers"].as_array().unwrap();
    assert_eq!(acks.len(), 3, "{frozen}");
    assert!(acks.iter().all(|a| a["refused"].is_null()), "{frozen}");
    let shown = dev.coffer(&["vault", "show", &vid]).unwrap();
    assert_eq!(shown["frozen"], true, "{shown}");
    assert_eq!(shown["freeze"]["reason"], "incident drill");
    let thawed = dev.coffer(&["vault", "unfreeze", &vid]).unwrap();
    assert_eq!(thawed["frozen"], false, "{thawed}");
    let acks = thawed["signers"].as_array().unwrap();
    assert!(
        acks.len() == 3
            && acks
                .iter()
                .all(|a| a["refused"].is_null() && a["current_seq"] == 2),
        "{thawed}"
    );
    let again = dev.coffer(&["vault", "unfreeze", &vid]).unwrap_err();
    assert!(again.contains("not frozen"), "{again}");
}

fn signer_store(dev: &Dev, name: &str) -> PathBuf {
    let info = dev.info();
    let s = info["signers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
        .clone();
    PathBuf::from(s["data"].as_str().unwrap()).join("store")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The share files (`<epoch>.share` and `<epoch>.staged`) of `key_id` in a signer's store.
fn share_files(dev: &Dev, signer: &str, key_id: &str) -> Vec<String> {
    let dir = signer_store(dev, signer).join("shares").join(key_id);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// Waits until every signer reports `key_id` at `epoch` (statuses are polled).
fn wait_epochs(dev: &Dev, key_id: &str, epoch: u64) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let v = dev.key(&["signers"]).unwrap();
        let epochs: Vec<Value> = v["signers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|k| k["key_id"] == key_id)
                    .map(|k| k["epoch"].clone())
                    .unwrap_or(Value::Null)
            })
            .collect();
        if epochs.len() == 3 && epochs.iter().all(|e| *e == serde_json::json!(epoch)) {
            return;
        }
        assert!(
            Instant::now() < until,
            "signers report {epochs:?} for {key_id}, expected {epoch}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The breach response with real processes: a refresh that fails mid-way (the last-round
/// messages to signer-1 are lost: the others stage their new shares, it stalls) rolls back on every
/// signer; `coffer incident refresh` then refreshes a frozen vault's keys and every key of
/// the platform (same public keys, next epoch, old files pruned), signing works after it,
/// and signer-1 restarted on a copy of its store taken before the incident is refused.
#[test]
fn incident_refresh_rolls_back_on_failure_and_refuses_old_shares() {
    let mut dev = Dev::start(
        "incident",
        &[("COFFER_TEST_RELAY_FAULT", "stall-first-refresh")],
        &["--session-timeout", "5"],
    );
    let signers = ["signer-1", "signer-2", "signer-3"];
    let key = dev.key(&["create", "--scheme", "ed25519"]).unwrap();
    let id = key["key_id"].as_str().unwrap().to_string();
    sign_and_check(&dev, &key, "m", b"before the incident");
    // What an attacker copies: signer-1's whole store, before any refresh.
    let stolen = dev.dir.join("stolen-signer-1-store");
    copy_dir(&signer_store(&dev, "signer-1"), &stolen);

    // 1. The failed refresh: rolled back everywhere, no staged file left.
    let err = dev.key(&["refresh", "--key", &id]).unwrap_err();
    assert!(
        err.contains("rolled back") && err.contains("keeps epoch 0"),
        "{err}"
    );
    wait_epochs(&dev, &id, 0);
    for s in signers {
        assert_eq!(share_files(&dev, s, &id), vec!["0.share"], "{s}");
    }
    // Every signer still signs with its epoch-0 share: signer-1 and signer-2, then
    // signer-2 and signer-3 (both had staged the abandoned epoch).
    sign_and_check(&dev, &key, "m/1", b"after the rollback");
    dev.kill("signer-1");
    let sig = sign_and_check(&dev, &key, "m/2", b"without signer-1");
    assert!(sig["signers"].to_string().contains("signer-3"), "{sig}");
    dev.restart("signer-1");
    dev.wait_connected(3);

    // 2. A frozen vault's keys are refreshed (the breach response runs during a freeze).
    let vault = dev
        .coffer(&["vault", "create", "treasury", "--scheme", "ed25519"])
        .unwrap();
    let vid = vault["id"].as_str().unwrap().to_string();
    dev.coffer(&["vault", "freeze", &vid, "--reason", "breach"])
        .unwrap();
    let out = dev
        .coffer(&["incident", "refresh", "--vault", &vid])
        .unwrap();
    assert_eq!(out["ok"], true, "{out}");
    let vkeys = out["keys"].as_array().unwrap();
    assert_eq!(vkeys.len(), 1, "{out}");
    assert_eq!(
        (
            &vkeys[0]["old_epoch"],
            &vkeys[0]["new_epoch"],
            &vkeys[0]["same_public_key"]
        ),
        (
            &serde_json::json!(0),
            &serde_json::json!(1),
            &Value::Bool(true)
        ),
        "{out}"
    );
    dev.coffer(&["vault", "unfreeze", &vid]).unwrap();

    // 3. Every key of the platform: same public keys, next epoch.
    let all = dev.coffer(&["incident", "refresh", "--all"]).unwrap();
    assert_eq!(all["ok"], true, "{all}");
    let keys = all["keys"].as_array().unwrap();
    assert!(keys.len() >= 2, "{all}");
    for k in keys {
        assert_eq!(k["same_public_key"], true, "{k}");
        assert_eq!(
            k["new_epoch"].as_u64().unwrap(),
            k["old_epoch"].as_u64().unwrap() + 1,
            "{k}"
        );
    }
    let mine = keys.iter().find(|k| k["key_id"] == id.as_str()).unwrap();
    assert_eq!(mine["public_key"], key["public_key"]);
    assert_eq!(mine["new_epoch"], 1);
    wait_epochs(&dev, &id, 1);
    // Old shares are gone once every signer confirmed its commit.
    for s in signers {
        assert_eq!(share_files(&dev, s, &id), vec!["1.share"], "{s}");
    }
    sign_and_check(&dev, &key, "m/3", b"after the incident");

    // 4. The stolen pre-incident store put back on signer-1: its share is refused.
    dev.kill("signer-1");
    let store = signer_store(&dev, "signer-1");
    std::fs::remove_dir_all(&store).unwrap();
    copy_dir(&stolen, &store);
    dev.restart("signer-1");
    dev.wait_connected(3);
    let message = hex::encode(b"with a stolen share");
    let err = dev
        .key(&["sign", "--key", &id, "--message", &message])
        .unwrap_err();
    assert!(
        err.contains("signer-1") && err.contains("restored from before a refresh"),
        "{err}"
    );
}

/// Runs `coffer ARGS` (no implied flags): Ok(JSON) or Err(last stderr line).
fn coffer_raw(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(exe()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        assert!(out.stdout.is_empty());
        Err(stderr.lines().last().unwrap_or_default().to_string())
    }
}

/// Backup kits with real processes: each signer encrypts its share to its own recovery
/// key named in an admin-quorum-signed document; a kit verifies against the pinned roster
/// and the server's key; signer-2's disk is wiped, restored from its kit, and signer-2
/// then signs with signer-3 (signer-1 down), checked by an independent verifier.
#[test]
fn backup_restores_a_lost_signer() {
    let mut dev = Dev::start("backup", &[], &[]);
    let d = dev.dir.to_str().unwrap().to_string();
    let key = dev.key(&["create", "--scheme", "ed25519"]).unwrap();
    let id = key["key_id"].as_str().unwrap().to_string();
    let work = dev.dir.join("backup-work");
    std::fs::create_dir_all(&work).unwrap();
    let p = |name: &str| work.join(name).to_str().unwrap().to_string();

    let mut recovery = Vec::new();
    for i in 1..=3 {
        let rk = coffer_raw(&[
            "backup",
            "recovery-key",
            "new",
            "--out",
            &p(&format!("rk-{i}.json")),
        ])
        .unwrap();
        recovery.push(rk["recovery_key"].as_str().unwrap().to_string());
    }
    let args: Vec<String> = recovery
        .iter()
        .enumerate()
        .map(|(i, r)| format!("signer-{}={r}@holder-{}", i + 1, i + 1))
        .collect();
    let admin1 = dev.dir.join("admin-1.key").to_str().unwrap().to_string();
    let admin2 = dev.dir.join("admin-2.key").to_str().unwrap().to_string();
    let mut cmd: Vec<&str> = vec!["backup", "recovery-keys", "--key", &id];
    for a in &args {
        cmd.extend(["--recovery", a]);
    }
    let doc = p("recovery-keys.json");
    cmd.extend(["--admin-key", &admin1, "--out", &doc, "--dev", &d]);
    coffer_raw(&cmd).unwrap();

    // One admin signature is not the quorum: every signer refuses, nothing is exported.
    let kits = p("kits");
    let export = [
        "backup",
        "export",
        "--key",
        &id,
        "--recovery-keys",
        &doc,
        "--out",
        &kits,
        "--dev",
        &d,
    ];
    let err = coffer_raw(&export).unwrap_err();
    assert!(
        err.contains("1 valid signatures") && err.contains("2 needed"),
        "{err}"
    );
    assert!(!std::path::Path::new(&kits).exists());
    coffer_raw(&[
        "backup",
        "sign-recovery-keys",
        "--doc",
        &doc,
        "--admin-key",
        &admin2,
    ])
    .unwrap();
    let exported = coffer_raw(&export).unwrap();
    let files: Vec<String> = exported["kits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 3, "{exported}");
    let kit_of = |signer: &str| {
        exported["kits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["signer"] == signer)
            .unwrap()["file"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kit2 = kit_of("signer-2");
    let rk2 = p("rk-2.json");

    // Verify: signature, header against the server's key, and decryption.
    let v = coffer_raw(&[
        "backup",
        "verify",
        "--kit",
        &kit2,
        "--key",
        &id,
        "--recovery-key",
        &rk2,
        "--dev",
        &d,
    ])
    .unwrap();
    assert_eq!(v["decrypted"], true, "{v}");
    assert_eq!(v["signer"], "signer-2");
    // The wrong recovery key, a kit for another key, a tampered header: clear errors.
    let err = coffer_raw(&[
        "backup",
        "verify",
        "--kit",
        &kit2,
        "--recovery-key",
        &p("rk-1.json"),
        "--dev",
        &d,
    ])
    .unwrap_err();
    assert!(err.contains("is not the kit's"), "{err}");
    let err = coffer_raw(&[
        "backup", "verify", "--kit", &kit2, "--key", "k-other", "--dev", &d,
    ])
    .unwrap_err();
    assert!(err.contains("not k-other"), "{err}");
    let err = coffer_raw(&[
        "backup", "verify", "--kit", &kit2, "--vault", "v-other", "--dev", &d,
    ])
    .unwrap_err();
    assert!(err.contains("not v-other"), "{err}");
    // An export bound to a vault the key is not in is refused by the server.
    let err = coffer_raw(&[
        "backup",
        "export",
        "--key",
        &id,
        "--recovery-keys",
        &doc,
        "--vault",
        "v-other",
        "--out",
        &p("other"),
        "--dev",
        &d,
    ])
    .unwrap_err();
    assert!(
        err.contains("not_found") || err.contains("not a key of vault"),
        "{err}"
    );
    let mut tampered: Value =
        serde_json::from_str(&std::fs::read_to_string(&kit2).unwrap()).unwrap();
    tampered["header"]["party_index"] = 0.into();
    let bad = p("tampered.kit.json");
    std::fs::write(&bad, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let err = coffer_raw(&["backup", "verify", "--kit", &bad, "--dev", &d]).unwrap_err();
    assert!(err.contains("signature does not verify"), "{err}");
    let text = std::fs::read_to_string(&kit2).unwrap();
    let truncated = p("truncated.kit.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let err = coffer_raw(&["backup", "verify", "--kit", &truncated, "--dev", &d]).unwrap_err();
    assert!(err.contains("not a backup kit"), "{err}");

    // Signer-2's disk is lost.
    let sdir = dev.dir.join("signer-2");
    dev.kill("signer-2");
    std::fs::remove_dir_all(&sdir).unwrap();
    let sd = sdir.to_str().unwrap().to_string();
    let store_key = sdir.join("store.key").to_str().unwrap().to_string();
    // A wrong recovery key writes nothing.
    let err = coffer_raw(&[
        "backup",
        "restore",
        "--kit",
        &kit2,
        "--recovery-key",
        &p("rk-3.json"),
        "--data",
        &sd,
        "--key-file",
        &store_key,
    ])
    .unwrap_err();
    assert!(err.contains("is not the kit's"), "{err}");
    assert!(!sdir.exists());
    let r = coffer_raw(&[
        "backup",
        "restore",
        "--kit",
        &kit2,
        "--recovery-key",
        &rk2,
        "--data",
        &sd,
        "--key-file",
        &store_key,
    ])
    .unwrap();
    assert_eq!(r["created_store"], true, "{r}");
    // The same kit again: not newer than what the store holds.
    let err = coffer_raw(&[
        "backup",
        "restore",
        "--kit",
        &kit2,
        "--recovery-key",
        &rk2,
        "--data",
        &sd,
        "--key-file",
        &store_key,
    ])
    .unwrap_err();
    assert!(err.contains("refusing to restore"), "{err}");

    // The restored signer signs with signer-3 while signer-1 is down.
    dev.restart("signer-2");
    dev.wait_connected(3);
    dev.kill("signer-1");
    dev.wait_connected(2);
    let sig = sign_and_check(&dev, &key, "m/0/9", b"signed by a restored signer");
    assert!(sig["signers"].to_string().contains("signer-2"), "{sig}");

    // The drill: one recovery key is below the threshold; two restore two kits, each in
    // its own scratch process, sign, and the server records the verified result.
    let rk1 = p("rk-1.json");
    let rk3 = p("rk-3.json");
    let err = coffer_raw(&[
        "backup",
        "drill",
        "--key",
        &id,
        "--kits",
        &kits,
        "--recovery-key",
        &rk1,
        "--dev",
        &d,
    ])
    .unwrap_err();
    assert!(err.contains("needs 2 kits"), "{err}");
    let drill = coffer_raw(&[
        "backup",
        "drill",
        "--key",
        &id,
        "--kits",
        &kits,
        "--recovery-key",
        &rk1,
        "--recovery-key",
        &rk3,
        "--dev",
        &d,
    ])
    .unwrap();
    assert_eq!(drill["ok"], true, "{drill}");
    assert_eq!(drill["parties"], serde_json::json!([0, 2]), "{drill}");
    assert!(drill["audit_seq"].as_u64().is_some(), "{drill}");
    drop(dev);
}

/// The README's scripted incident, command for command, from a fresh `coffer dev`: a tenant
/// rule freezes a vault on a critical alert; share backups are taken before anything
/// happens; usual payouts, then an unusual one raises a critical anomaly alert and the vault
/// freezes by itself (new requests refused); `coffer incident refresh` renews every share
/// (same public key, next epoch) while frozen; the backup kit taken before the incident is
/// refused; the admin quorum unfreezes; a payout is approved and signed again; every step is
/// in the verified audit log.
#[test]
fn the_readme_incident_runs_as_written() {
    let dev = Dev::start("incident-readme", &[], &[]);
    let d = dev.dir.to_str().unwrap().to_string();
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let vault = dev
        .coffer(&["vault", "create", "treasury", "--scheme", "ed25519"])
        .unwrap();
    let v = id(&vault);
    let key = vault["keys"][0]["key_id"].as_str().unwrap().to_string();
    let public_key = vault["keys"][0]["public_key"].clone();
    let wallet = dev
        .coffer(&[
            "wallet", "create", &v, "--name", "payouts", "--scheme", "ed25519", "--asset", "SOL",
        ])
        .unwrap();
    let w = id(&wallet);
    let template = dev.coffer(&["policy", "template", &v]).unwrap();
    std::fs::write(dev.dir.join("policy.json"), template.to_string()).unwrap();
    dev.coffer(&["policy", "set", &v, "policy.json"]).unwrap();
    dev.coffer(&["alerts", "responses", "--set", "critical=freeze"])
        .unwrap();

    // Backups before anything happens: one recovery key per signer, signed by the quorum.
    let p = |name: &str| dev.dir.join(name).to_str().unwrap().to_string();
    let mut recovery = Vec::new();
    for i in 1..=3 {
        let out = p(&format!("rk-{i}.json"));
        let rk = coffer_raw(&["backup", "recovery-key", "new", "--out", &out]).unwrap();
        recovery.push(rk["recovery_key"].as_str().unwrap().to_string());
    }
    let holders = ["alice", "bob", "carol"];
    let pairs: Vec<String> = (0..3)
        .map(|i| format!("signer-{}={}@{}", i + 1, recovery[i], holders[i]))
        .collect();
    let (admin1, admin2, doc) = (p("admin-1.key"), p("admin-2.key"), p("doc.json"));
    let mut cmd: Vec<&str> = vec!["backup", "recovery-keys", "--key", &key];
    for pair in &pairs {
        cmd.extend(["--recovery", pair]);
    }
    cmd.extend([
        "--admin-key",
        &admin1,
        "--admin-key",
        &admin2,
        "--out",
        &doc,
        "--dev",
        &d,
    ]);
    coffer_raw(&cmd).unwrap();
    let before = p("kits-before");
    let exported = coffer_raw(&[
        "backup",
        "export",
        "--key",
        &key,
        "--vault",
        &v,
        "--recovery-keys",
        &doc,
        "--out",
        &before,
        "--dev",
        &d,
    ])
    .unwrap();
    let old_kit = exported["kits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["signer"] == "signer-1")
        .and_then(|k| k["file"].as_str())
        .unwrap_or_else(|| panic!("no kit of signer-1: {exported}"))
        .to_string();

    // The incident: usual payouts, then an unusual one to a new destination.
    let pay = |amount: &str, to: &str, memo: &str| {
        dev.coffer(&[
            "tx", "create", "--wallet", &w, "--amount", amount, "--to", to, "--memo", memo,
        ])
    };
    let usual = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
    let evil = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
    for amount in ["1sol", "1.1sol", "0.95sol", "1.05sol", "0.9sol", "1sol"] {
        pay(amount, usual, "payroll").unwrap();
    }
    pay("5000sol", evil, "urgent").unwrap();
    let alerts = dev
        .coffer(&["alerts", "list", "--severity", "critical"])
        .unwrap();
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "anomaly" && a["vault"] == v.as_str()),
        "{alerts}"
    );
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = dev.coffer(&["vault", "show", &v]).unwrap();
        if shown["frozen"] == true {
            break;
        }
        assert!(Instant::now() < until, "the vault never froze: {shown}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = pay("1sol", usual, "payroll").unwrap_err();
    assert!(refused.contains("frozen"), "{refused}");

    // The response: every share renewed while frozen; the pre-incident kit is worthless.
    let refreshed = dev.coffer(&["incident", "refresh", "--vault", &v]).unwrap();
    let keys = refreshed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{refreshed}");
    assert_eq!(keys[0]["key_id"], key.as_str());
    assert_eq!(keys[0]["public_key"], public_key, "{refreshed}");
    assert_eq!(keys[0]["old_epoch"], 0);
    assert_eq!(keys[0]["new_epoch"], 1);
    let err = coffer_raw(&[
        "backup",
        "verify",
        "--kit",
        &old_kit,
        "--recovery-key",
        &p("rk-1.json"),
        "--dev",
        &d,
    ])
    .unwrap_err();
    assert!(
        err.contains("epoch 0") && err.contains("refreshed"),
        "{err}"
    );
    dev.coffer(&["vault", "unfreeze", &v]).unwrap();

    // Business as usual: a payout approved by two approvers is signed with the new shares.
    let tx = pay("1sol", usual, "payroll").unwrap();
    let txid = id(&tx);
    dev.coffer(&["tx", "approve", &txid, "--as", "alice"])
        .unwrap();
    dev.coffer(&["tx", "approve", &txid, "--as", "bob"])
        .unwrap();
    let signed = dev
        .coffer(&["tx", "wait", &txid, "--until", "signed", "--timeout", "120"])
        .unwrap();
    assert_eq!(signed["state"], "signed", "{signed}");

    // Every step is in the audit log, and the chain verifies offline.
    dev.coffer(&["audit", "export", "--out", "audit.jsonl"])
        .unwrap();
    dev.coffer(&["audit", "verify", "audit.jsonl"]).unwrap();
    let log = std::fs::read_to_string(dev.dir.join("audit.jsonl")).unwrap();
    for action in [
        "tenant.alert_responses_set",
        "key.backup_exported",
        "alert.raised",
        "vault.frozen",
        "vault.refreshed",
        "vault.unfrozen",
        "transaction.signed",
    ] {
        assert!(
            log.contains(&format!("\"{action}\"")),
            "no {action} in the audit log"
        );
    }
}
