//! `coffer ceremony demo`: the offline demo (every party in this process). For each scheme it runs the offline ceremony
//! through the same code as `coffer ceremony`: DKG into encrypted share files, signing from
//! those files (at the root and at a derived child key), and verification by an independent
//! implementation. Prints one JSON object with the results.

use std::path::PathBuf;

use clap::Args;
use coffer_proto::share_file::Passphrase;
use coffer_proto::{verify, DerivationPath, GroupParams, Scheme};
use serde_json::json;
use sha2::Digest;

use crate::ceremony_cmd::{keygen, load_shares, sign, signature_json};
use crate::{emit, Failure};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Keep the share files in this directory (default: a temporary directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    let pass = match Passphrase::from_env() {
        Ok(p) => p,
        Err(_) => {
            let mut bytes = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
            eprintln!("COFFER_PASSPHRASE is not set: the demo encrypts its shares under a random passphrase");
            Passphrase::new(hex::encode(bytes))?
        }
    };
    let (dir, temporary) = crate::demo::demo_dir(args.dir);
    let result = run_in(&dir, &pass);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    emit(&result?)
}

fn run_in(dir: &std::path::Path, pass: &Passphrase) -> Result<serde_json::Value, Failure> {
    let params = GroupParams::new(2, 3)?;
    let child: DerivationPath = "m/0/7".parse()?;
    let mut results = Vec::new();
    for scheme in Scheme::ALL {
        eprintln!("== {scheme}: 2-of-3 key generation, signing, verification");
        let started = std::time::Instant::now();
        let key = keygen(scheme, params, &dir.join(scheme.name()), pass)?;
        let paths: Vec<PathBuf> = key["shares"]
            .as_array()
            .ok_or_else(|| Failure("keygen printed no share paths".into()))?
            .iter()
            .filter_map(|p| p.as_str().map(PathBuf::from))
            .collect();
        let text = format!("coffer demo: {scheme}");
        let message: Vec<u8> = match scheme.message_len() {
            Some(_) => sha2::Sha256::digest(text.as_bytes()).to_vec(),
            None => text.into_bytes(),
        };
        // Sign with parties 2 and 3 (any t of the n can), at the root and at m/0/7.
        let shares = load_shares(&paths[1..], pass)?;
        let mut signatures = Vec::new();
        for path in [DerivationPath::root(), child.clone()] {
            let sig = sign(&shares, &message, &path)?;
            let valid = verify::verify(scheme, &sig.public_key, &message, &sig.bytes)?;
            if !valid {
                return Err(Failure(format!(
                    "{scheme} signature at {path} did not verify"
                )));
            }
            let mut out = signature_json(&sig, &message);
            out["path"] = json!(path.to_string());
            out["valid"] = json!(valid);
            signatures.push(out);
        }
        eprintln!("   ok in {:.1} s", started.elapsed().as_secs_f64());
        results.push(json!({
            "scheme": scheme.name(),
            "public_key": key["public_key"],
            "threshold": 2,
            "parties": 3,
            "signatures": signatures,
        }));
    }
    Ok(json!({ "demo": "offline-ceremony", "results": results }))
}
