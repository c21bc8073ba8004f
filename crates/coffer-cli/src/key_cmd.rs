//! `coffer key ...`: keys over the network, before the custody API exists. `create` runs DKG
//! across the signers, `sign` signs a raw message with two of them (dev mode only),
//! `refresh` renews every share; output has the JSON shapes of the ceremony commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{dev_dir, read_dev_info, ApiClient};
use crate::{emit, Failure};

#[derive(Args)]
pub(crate) struct Target {
    /// The `coffer dev` directory to talk to (default: $COFFER_DEV, else ./coffer-dev).
    #[arg(long)]
    dev: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Creates a key by DKG across every signer.
    Create {
        /// ecdsa-secp256k1, schnorr-bip340 or ed25519.
        #[arg(long)]
        scheme: String,
        /// Signatures needed (default: the cluster's threshold).
        #[arg(long)]
        threshold: Option<u16>,
        #[command(flatten)]
        target: Target,
    },
    /// Signs a raw message (dev mode only): a 32-byte digest for ECDSA and BIP340, the
    /// message itself for Ed25519.
    Sign {
        /// The key id.
        #[arg(long)]
        key: String,
        /// The message or digest, hex.
        #[arg(
            long,
            required_unless_present = "preimage",
            conflicts_with = "preimage"
        )]
        message: Option<String>,
        /// Bytes the signers hash themselves (SHA-256; Ed25519 signs them as they are), hex.
        /// ECDSA signs these in one round from a pooled presignature when one is ready.
        #[arg(long)]
        preimage: Option<String>,
        /// Non-hardened derivation path, e.g. m/0/7 (default m).
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Refreshes every share of a key (new epoch, same public key).
    Refresh {
        /// The key id.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Reshares a FROST key without the named signers (same public key, next epoch; their
    /// old shares no longer combine with the new ones).
    Reshare {
        /// The key id.
        #[arg(long)]
        key: String,
        /// A signer to remove (by name; repeat for several).
        #[arg(long, required = true)]
        remove: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Lists keys.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Shows one key.
    Show {
        /// The key id.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Lists the signers and their state.
    Signers {
        #[command(flatten)]
        target: Target,
    },
}

/// Creates a key, waiting (with a message every few seconds) while signers still generate
/// their ECDSA safe primes.
pub(crate) fn create(
    client: &ApiClient,
    scheme: &str,
    threshold: Option<u16>,
) -> Result<Value, Failure> {
    let mut body = json!({ "scheme": scheme });
    if let Some(t) = threshold {
        body["threshold"] = json!(t);
    }
    let started = Instant::now();
    loop {
        match client.call("POST", "/v1/keys", Some(&body)) {
            Ok(v) => return Ok(v),
            Err(e)
                if e.code == "primes_not_ready"
                    && started.elapsed() < Duration::from_secs(1800) =>
            {
                eprintln!("waiting ({} s): {}", started.elapsed().as_secs(), e.message);
                std::thread::sleep(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What to sign: the scheme's message, or a preimage the signers hash.
pub(crate) enum ToSign<'a> {
    /// A digest (ECDSA, BIP340) or message (Ed25519), hex.
    Message(&'a str),
    /// Bytes to hash, hex.
    Preimage(&'a str),
}

/// Signs a message.
pub(crate) fn sign(
    client: &ApiClient,
    key: &str,
    what: ToSign<'_>,
    path: Option<&str>,
) -> Result<Value, Failure> {
    let mut body = match what {
        ToSign::Message(m) => json!({ "message": m }),
        ToSign::Preimage(p) => json!({ "preimage": p }),
    };
    if let Some(p) = path {
        body["path"] = json!(p);
    }
    Ok(client.call("POST", &format!("/v1/keys/{key}/sign"), Some(&body))?)
}

fn check_id(key: &str) -> Result<&str, Failure> {
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Failure(format!("{key:?} is not a key id")));
    }
    Ok(key)
}

pub(crate) fn run(cmd: KeyCommand) -> Result<(), Failure> {
    match cmd {
        KeyCommand::Create {
            scheme,
            threshold,
            target,
        } => {
            let dir = dev_dir(target.dev);
            let client = ApiClient::from_dev(&dir)?;
            let threshold = match threshold {
                Some(t) => Some(t),
                None => Some(read_dev_info(&dir)?.threshold),
            };
            emit(&create(&client, &scheme, threshold)?)
        }
        KeyCommand::Sign {
            key,
            message,
            preimage,
            path,
            target,
        } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            let what = match (&message, &preimage) {
                (Some(m), _) => ToSign::Message(m),
                (None, Some(p)) => ToSign::Preimage(p),
                (None, None) => return Err(Failure("give --message or --preimage".into())),
            };
            emit(&sign(&client, check_id(&key)?, what, path.as_deref())?)
        }
        KeyCommand::Refresh { key, target } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            emit(&client.call(
                "POST",
                &format!("/v1/keys/{}/refresh", check_id(&key)?),
                Some(&json!({})),
            )?)
        }
        KeyCommand::Reshare {
            key,
            remove,
            target,
        } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            emit(&client.call(
                "POST",
                &format!("/v1/keys/{}/reshare", check_id(&key)?),
                Some(&json!({ "remove": remove })),
            )?)
        }
        KeyCommand::List { target } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            emit(&client.call("GET", "/v1/keys", None)?)
        }
        KeyCommand::Show { key, target } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            emit(&client.call("GET", &format!("/v1/keys/{}", check_id(&key)?), None)?)
        }
        KeyCommand::Signers { target } => {
            let client = ApiClient::from_dev(&dev_dir(target.dev))?;
            emit(&client.call("GET", "/v1/signers", None)?)
        }
    }
}
