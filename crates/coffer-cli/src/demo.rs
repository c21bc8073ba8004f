//! `coffer demo`: the README's first command. Starts an ephemeral cluster (a server and
//! three signer processes, as `coffer dev` does, in a temporary directory), creates a key per
//! scheme by DKG across the three signers, signs with two of them at the root and at a
//! derived child key, and checks every signature with the same independent verifiers as
//! `coffer ceremony verify`. Prints one JSON object; stops the cluster and removes the
//! directory.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use sha2::Digest;

use coffer_proto::{verify, Scheme};

use crate::client::{read_credential, ApiClient};
use crate::{emit, Failure};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Keep the cluster's data in this directory (default: a temporary directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The demo's directory: the one given (kept), or a fresh temporary one (`true`: remove it
/// afterwards).
pub(crate) fn demo_dir(given: Option<PathBuf>) -> (PathBuf, bool) {
    match given {
        Some(d) => (d, false),
        None => {
            let mut tag = [0u8; 8];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tag);
            (
                std::env::temp_dir().join(format!("coffer-demo-{}", hex::encode(tag))),
                true,
            )
        }
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    let (dir, temporary) = demo_dir(args.dir);
    let result = demo_in(&dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    emit(&result?)
}

fn demo_in(dir: &std::path::Path) -> Result<Value, Failure> {
    eprintln!(
        "starting a cluster: a server and 3 signer processes in {}",
        dir.display()
    );
    crate::dev::setup(dir, 3)?;
    let listen = "127.0.0.1:0"
        .parse()
        .map_err(|_| Failure("address".into()))?;
    let cluster = crate::dev::start(dir, listen, 2, 60, 0)?;
    let admin = cluster
        .info
        .admin_keys
        .first()
        .ok_or_else(|| Failure("no admin credential".into()))?;
    let client = ApiClient::new(&cluster.info.api_url, read_credential(admin)?);
    let text = b"coffer demo: a key no one holds";
    let mut results = Vec::new();
    for scheme in [
        Scheme::Ed25519,
        Scheme::SchnorrBip340,
        Scheme::EcdsaSecp256k1,
    ] {
        let started = std::time::Instant::now();
        eprintln!("{}: key generation across 3 signers", scheme.name());
        let key = crate::key_cmd::create(&client, scheme.name(), Some(2))?;
        let key_id = key["key_id"].as_str().unwrap_or_default().to_string();
        let message: Vec<u8> = match scheme {
            Scheme::Ed25519 => text.to_vec(),
            _ => sha2::Sha256::digest(text).to_vec(),
        };
        let mut signatures = Vec::new();
        for path in ["m", "m/0/7"] {
            let sig = crate::key_cmd::sign(
                &client,
                &key_id,
                crate::key_cmd::ToSign::Message(&hex::encode(&message)),
                Some(path),
            )?;
            let public_key = hex::decode(sig["public_key"].as_str().unwrap_or_default())?;
            let signature = hex::decode(sig["signature"].as_str().unwrap_or_default())?;
            if !verify::verify(scheme, &public_key, &message, &signature)? {
                return Err(Failure(format!(
                    "{} signature at {path} does not verify",
                    scheme.name()
                )));
            }
            signatures.push(json!({
                "path": path,
                "public_key": sig["public_key"],
                "signature": sig["signature"],
                "signers": sig["signers"],
                "verified": true,
            }));
        }
        eprintln!(
            "{}: done in {:.1} s",
            scheme.name(),
            started.elapsed().as_secs_f64()
        );
        results.push(json!({
            "scheme": scheme.name(),
            "key_id": key_id,
            "public_key": key["public_key"],
            "threshold": key["threshold"],
            "parties": key["parties"],
            "message": hex::encode(&message),
            "signatures": signatures,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    drop(cluster);
    Ok(json!({ "cluster": { "signers": 3, "threshold": 2 }, "keys": results }))
}
