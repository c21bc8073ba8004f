//! `coffer ceremony ...`: the offline ceremony commands (keygen, sign, refresh, derive,
//! verify) over encrypted share files.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer_proto::primes::PrimeSource;
use coffer_proto::share_file::{self, KdfParams, Passphrase};
use coffer_proto::{
    ceremony, hd, verify, DerivationPath, GroupParams, KeyShare, PartyIndex, Scheme, Signature,
};
use serde_json::json;

use crate::{emit, hexarg, Failure};

#[derive(Subcommand)]
pub(crate) enum CeremonyCommand {
    /// Runs keygen, sign and verify for all three schemes offline, in a temporary directory.
    Demo(crate::offline_demo::DemoArgs),
    /// Generates a key by DKG and writes one encrypted share file per party.
    Keygen(KeygenArgs),
    /// Signs a message with at least t shares of one key.
    Sign(SignArgs),
    /// Refreshes all n shares: same public key, new shares, next epoch.
    Refresh(RefreshArgs),
    /// Derives a child public key and chain code (no passphrase needed).
    Derive(DeriveArgs),
    /// Verifies a signature with an implementation independent of the signing library.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// ecdsa-secp256k1, schnorr-bip340 or ed25519.
    #[arg(long)]
    scheme: String,
    /// Shares needed to sign (t).
    #[arg(long)]
    threshold: u16,
    /// Share holders (n).
    #[arg(long)]
    parties: u16,
    /// Directory for share-1.json .. share-N.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct SignArgs {
    /// A share file (repeat; at least t of one key and epoch).
    #[arg(long = "share", required = true)]
    shares: Vec<PathBuf>,
    /// The message in hex (a 32-byte digest for ECDSA and BIP340).
    #[arg(long)]
    message: String,
    /// Non-hardened derivation path of the child key to sign with, e.g. m/0/7.
    #[arg(long, default_value = "m")]
    path: String,
}

#[derive(Args)]
pub(crate) struct RefreshArgs {
    /// Every share file of the key (refresh is an all-party protocol).
    #[arg(long = "share", required = true)]
    shares: Vec<PathBuf>,
    /// Directory for the refreshed share files.
    #[arg(long)]
    out: PathBuf,
    /// Remove this party (its number, 1-based) from the group: give every other party's
    /// share; the removed share stops working (FROST keys only; repeatable).
    #[arg(long = "remove-party")]
    remove: Vec<u32>,
}

#[derive(Args)]
pub(crate) struct DeriveArgs {
    /// A share file of the key (only its public header is read).
    #[arg(long)]
    share: PathBuf,
    /// Non-hardened derivation path, e.g. m/0/7; `m` is the root.
    #[arg(long)]
    path: String,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// ecdsa-secp256k1, schnorr-bip340 or ed25519.
    #[arg(long)]
    scheme: String,
    /// Public key in hex.
    #[arg(long)]
    public_key: String,
    /// Message in hex.
    #[arg(long)]
    message: String,
    /// Signature in hex (64 bytes).
    #[arg(long)]
    signature: String,
}

pub(crate) fn run(cmd: CeremonyCommand) -> Result<(), Failure> {
    match cmd {
        CeremonyCommand::Demo(a) => crate::offline_demo::run(a),
        CeremonyCommand::Keygen(a) => {
            let scheme: Scheme = a.scheme.parse()?;
            let params = GroupParams::new(a.threshold, a.parties)?;
            let pass = Passphrase::from_env()?;
            emit(&keygen(scheme, params, &a.out, &pass)?)
        }
        CeremonyCommand::Sign(a) => {
            let message = hexarg::parse("--message", &a.message)?;
            let path: DerivationPath = a.path.parse()?;
            let pass = Passphrase::from_env()?;
            let shares = load_shares(&a.shares, &pass)?;
            let sig = sign(&shares, &message, &path)?;
            emit(&signature_json(&sig, &message))
        }
        CeremonyCommand::Refresh(a) => {
            let pass = Passphrase::from_env()?;
            let shares = load_shares(&a.shares, &pass)?;
            let removed = a
                .remove
                .iter()
                .map(|n| {
                    n.checked_sub(1)
                        .and_then(|i| u16::try_from(i).ok())
                        .map(PartyIndex::unchecked)
                        .ok_or_else(|| {
                            Failure(format!("--remove-party {n}: party numbers start at 1"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            emit(&refresh(&shares, &removed, &a.out, &pass)?)
        }
        CeremonyCommand::Derive(a) => {
            let path: DerivationPath = a.path.parse()?;
            let header = share_file::read_header(&share_file::read_bounded(&a.share)?)?;
            let public_key = hexarg::parse("public key in share header", &header.public_key)?;
            let chain_code: [u8; 32] =
                hexarg::parse("chain code in share header", &header.chain_code)?
                    .try_into()
                    .map_err(|_| Failure("chain code in share header is not 32 bytes".into()))?;
            let (child, child_cc) =
                hd::derive_public(header.scheme, &public_key, chain_code, &path)?;
            emit(&json!({
                "public_key": hex::encode(child),
                "chain_code": hex::encode(child_cc),
                "path": path.to_string(),
            }))
        }
        CeremonyCommand::Verify(a) => {
            let scheme: Scheme = a.scheme.parse()?;
            let public_key = hexarg::parse("--public-key", &a.public_key)?;
            let message = hexarg::parse("--message", &a.message)?;
            let signature = hexarg::parse("--signature", &a.signature)?;
            if verify::verify(scheme, &public_key, &message, &signature)? {
                emit(&json!({ "valid": true }))
            } else {
                emit(&json!({ "valid": false }))?;
                Err(Failure("the signature is not valid".into()))
            }
        }
    }
}

fn warn_offline(n: usize) {
    eprintln!(
        "warning: offline ceremony: all {n} shares are on this machine. This is for development, \
         rehearsal and tests; production shares are born on separate signers."
    );
}

fn prime_source(scheme: Scheme, parties: usize) -> PrimeSource {
    let source = PrimeSource::from_env();
    if scheme == Scheme::EcdsaSecp256k1 {
        if source.is_secure() {
            eprintln!("generating safe primes for {parties} parties' Paillier keys (about a minute per party)...");
        } else {
            eprintln!("warning: using the PUBLIC test prime pool: this key is not secure");
        }
    }
    source
}

/// Refuses a directory that already holds share files; creates it if missing.
fn prepare_out_dir(dir: &Path) -> Result<(), Failure> {
    if dir.exists() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("share-") && name.ends_with(".json") {
                return Err(Failure(format!(
                    "{} already holds share files; refusing to overwrite",
                    dir.display()
                )));
            }
        }
    } else {
        std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Encrypts and writes shares as `share-<i>.json` (1-based); returns the paths in party order.
fn write_shares(
    shares: &[KeyShare],
    dir: &Path,
    pass: &Passphrase,
) -> Result<Vec<String>, Failure> {
    prepare_out_dir(dir)?;
    let mut sealed = Vec::with_capacity(shares.len());
    for s in shares {
        sealed.push((
            s.party().number(),
            share_file::seal(s, pass, KdfParams::default())?,
        ));
    }
    let mut paths = Vec::with_capacity(shares.len());
    for (number, bytes) in sealed {
        let path = dir.join(format!("share-{number}.json"));
        share_file::write_new(&path, &bytes)?;
        paths.push(path.display().to_string());
    }
    Ok(paths)
}

fn key_json(shares: &[KeyShare], paths: Vec<String>) -> Result<serde_json::Value, Failure> {
    let first = shares.first().ok_or_else(|| Failure("no shares".into()))?;
    let h = first.header()?;
    let mut out = json!({
        "scheme": h.scheme.name(),
        "public_key": h.public_key,
        "chain_code": h.chain_code,
        "threshold": h.threshold,
        "parties": h.parties,
        "epoch": h.epoch.0,
        "shares": paths,
    });
    if let Some(members) = h.members {
        out["members"] = json!(members
            .iter()
            .map(|m| u32::from(*m) + 1)
            .collect::<Vec<_>>());
    }
    Ok(out)
}

pub(crate) fn keygen(
    scheme: Scheme,
    params: GroupParams,
    out: &Path,
    pass: &Passphrase,
) -> Result<serde_json::Value, Failure> {
    prepare_out_dir(out)?;
    warn_offline(usize::from(params.n()));
    let primes = prime_source(scheme, usize::from(params.n()));
    eprintln!(
        "running {scheme} key generation, {}-of-{}...",
        params.t(),
        params.n()
    );
    let shares = ceremony::keygen(scheme, params, primes)?;
    let paths = write_shares(&shares, out, pass)?;
    key_json(&shares, paths)
}

pub(crate) fn load_shares(paths: &[PathBuf], pass: &Passphrase) -> Result<Vec<KeyShare>, Failure> {
    let mut shares: Vec<KeyShare> = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = share_file::read_bounded(path)?;
        let share = share_file::open(&bytes, pass)
            .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        if let Some(k) = shares
            .iter()
            .position(|s| s.party() == share.party() && s.same_key(&share))
        {
            return Err(Failure(format!(
                "{} and {} are the same party's share",
                paths[k].display(),
                path.display()
            )));
        }
        shares.push(share);
    }
    Ok(shares)
}

pub(crate) fn sign(
    shares: &[KeyShare],
    message: &[u8],
    path: &DerivationPath,
) -> Result<Signature, Failure> {
    let first = shares
        .first()
        .ok_or_else(|| Failure("no shares given".into()))?;
    verify::check_message(first.scheme(), message)?;
    let signers = ceremony::signing_shares(shares)?;
    warn_offline(signers.len());
    Ok(ceremony::sign(shares, message, path)?)
}

pub(crate) fn signature_json(sig: &Signature, message: &[u8]) -> serde_json::Value {
    let mut out = json!({
        "scheme": sig.scheme.name(),
        "public_key": hex::encode(&sig.public_key),
        "message": hex::encode(message),
        "signature": hex::encode(sig.bytes),
    });
    if let Some(id) = sig.recovery_id {
        out["recovery_id"] = json!(id);
    }
    out
}

fn refresh(
    shares: &[KeyShare],
    removed: &[PartyIndex],
    out: &Path,
    pass: &Passphrase,
) -> Result<serde_json::Value, Failure> {
    let first = shares
        .first()
        .ok_or_else(|| Failure("no shares given".into()))?;
    prepare_out_dir(out)?;
    warn_offline(shares.len());
    let new = if removed.is_empty() {
        let primes = prime_source(first.scheme(), shares.len());
        ceremony::refresh(shares, primes)?
    } else {
        ceremony::refresh_removing(shares, removed)?
    };
    let paths = write_shares(&new, out, pass)?;
    key_json(&new, paths)
}
