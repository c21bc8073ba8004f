//! `coffer backup ...`: offline recovery keys, the admin-signed recovery-key document, kit
//! export (one kit per signer), verification of a kit against the pinned roster and the
//! key on the server, and restoring a lost signer's data directory from its kit. The kit
//! format is `coffer_net::backup`'s; the ceremony is described in docs/backup.md.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::{Zeroize, Zeroizing};

use coffer_net::backup::{
    Kit, RecoveryHolder, RecoveryKeys, RecoverySecret, SignedRecoveryKeys, RECOVERY_KEYS_VERSION,
};
use coffer_net::NodeKey;
use coffer_signer::keysource::{KeyFileSource, KeySource, PassphraseSource};

use crate::client::{dev_dir, read_credential, ApiClient};
use crate::{emit, Failure};

/// Largest recovery-key or document file read.
const MAX_SMALL_FILE: u64 = 1024 * 1024;
const RECOVERY_KEY_KIND: &str = "coffer-recovery-key";

#[derive(Args)]
pub(crate) struct Target {
    /// The `coffer dev` directory to talk to (default: $COFFER_DEV, else ./coffer-dev).
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Accepted for symmetry with the custody commands (output is always JSON).
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(Subcommand)]
pub(crate) enum BackupCommand {
    /// Offline recovery keys (X25519): one per signer, each held by a different person.
    #[command(subcommand)]
    RecoveryKey(RecoveryKeyCommand),
    /// Writes the document naming each signer's recovery key, signed by the given admin
    /// keys (more admins can sign it later with `backup sign-recovery-keys`).
    RecoveryKeys {
        /// The key the document is for.
        #[arg(long)]
        key: String,
        /// SIGNER=RECOVERY_PUBLIC_KEY[@HOLDER] (signer by roster name; repeat per signer).
        #[arg(long, required = true)]
        recovery: Vec<String>,
        /// An admin credential that signs the document (repeat).
        #[arg(long)]
        admin_key: Vec<PathBuf>,
        /// Where to write the document (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Adds an admin's signature to a recovery-key document, in place.
    SignRecoveryKeys {
        /// The document.
        #[arg(long)]
        doc: PathBuf,
        /// The admin credential.
        #[arg(long)]
        admin_key: PathBuf,
    },
    /// Has every signer of the key write its backup kit, encrypted to its own recovery key.
    Export {
        /// The key.
        #[arg(long)]
        key: String,
        /// The admin-signed recovery-key document.
        #[arg(long)]
        recovery_keys: PathBuf,
        /// The key's vault (bound into each kit).
        #[arg(long)]
        vault: Option<String>,
        /// Directory for the kit files (created; existing kits are never overwritten).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Checks a kit: its signature by the signer's pinned key, its header against the key on
    /// the server, and with `--recovery-key` that it decrypts to that share.
    Verify {
        /// The kit file.
        #[arg(long)]
        kit: PathBuf,
        /// The key the kit must be for.
        #[arg(long)]
        key: Option<String>,
        /// The vault the kit must be for.
        #[arg(long)]
        vault: Option<String>,
        /// The recovery key file (to check the contents too).
        #[arg(long)]
        recovery_key: Option<PathBuf>,
        /// The admin-signed roster the signers pinned (default: the dev directory's).
        #[arg(long)]
        roster: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// Installs a kit's share (and the signer's identity) into a signer data directory.
    Restore {
        /// The kit file.
        #[arg(long)]
        kit: PathBuf,
        /// The kit's recovery key file.
        #[arg(long)]
        recovery_key: PathBuf,
        /// The signer's data directory (empty for a lost disk, or the signer's own).
        #[arg(long)]
        data: PathBuf,
        /// Key file for the store (created for a new store). Without it, the store key
        /// comes from the passphrase in COFFER_PASSPHRASE.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Restores a threshold of kits, each into its own scratch signer process, signs a
    /// test message with them, checks the signature under the key and records the result
    /// in the audit log.
    Drill {
        /// The key.
        #[arg(long)]
        key: String,
        /// Directory holding the kits (`*.kit.json`).
        #[arg(long)]
        kits: PathBuf,
        /// A recovery key file (repeat; each kit is matched to its own).
        #[arg(long, required = true)]
        recovery_key: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// One scratch signer of a drill (started by `backup drill`).
    #[command(hide = true)]
    DrillParty {
        #[arg(long)]
        kit: PathBuf,
        #[arg(long)]
        recovery_key: PathBuf,
        #[arg(long)]
        session: String,
        #[arg(long)]
        signers: String,
        #[arg(long)]
        message: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum RecoveryKeyCommand {
    /// Makes a recovery key pair: the secret file (mode 0600) and the public key printed.
    New {
        /// The secret file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The recovery key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryKeyFile {
    kind: String,
    version: u8,
    public: String,
    secret: SecretHex,
}

/// A hex secret, wiped on drop.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct SecretHex(String);

impl Drop for SecretHex {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure(format!("{}: {e}", path.display()))
}

fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    if len > MAX_SMALL_FILE {
        return Err(Failure(format!("{}: file too large", path.display())));
    }
    Ok(Zeroizing::new(std::fs::read(path).map_err(io_err(path))?))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn read_recovery_key(path: &Path) -> Result<RecoverySecret, Failure> {
    let bytes = read_small(path)?;
    let file: RecoveryKeyFile = serde_json::from_slice(&bytes)
        .map_err(|e| Failure(format!("{}: not a recovery key file: {e}", path.display())))?;
    if file.kind != RECOVERY_KEY_KIND || file.version != 1 {
        return Err(Failure(format!(
            "{}: not a version-1 recovery key file",
            path.display()
        )));
    }
    let raw = Zeroizing::new(
        hex::decode(&file.secret.0)
            .map_err(|_| Failure(format!("{}: secret is not hex", path.display())))?,
    );
    let arr: Zeroizing<[u8; 32]> = Zeroizing::new(
        raw.as_slice()
            .try_into()
            .map_err(|_| Failure(format!("{}: secret is not 32 bytes", path.display())))?,
    );
    let secret = RecoverySecret::from_bytes(&arr)?;
    if secret.public().to_hex() != file.public {
        return Err(Failure(format!(
            "{}: the public key does not match the secret",
            path.display()
        )));
    }
    Ok(secret)
}

fn read_kit(path: &Path) -> Result<Kit, Failure> {
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    if len > coffer_net::backup::MAX_KIT_LEN as u64 {
        return Err(Failure(format!(
            "{}: file too large for a kit",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Kit::from_bytes(&bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn read_doc(path: &Path) -> Result<SignedRecoveryKeys, Failure> {
    let bytes = read_small(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure(format!(
            "{}: not a recovery-key document: {e}",
            path.display()
        ))
    })
}

/// (name, node key) of every signer the server lists.
fn signers(client: &ApiClient) -> Result<Vec<(String, NodeKey)>, Failure> {
    let v = client.call("GET", "/v1/signers", None)?;
    let mut out = Vec::new();
    for s in v["signers"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or_default().to_string();
        let key: NodeKey = s["node_key"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|_| Failure("the server listed a signer without a node key".into()))?;
        out.push((name, key));
    }
    Ok(out)
}

fn recovery_keys(
    key: &str,
    recovery: &[String],
    admin_keys: &[PathBuf],
    out: &Path,
    target: Target,
) -> Result<Value, Failure> {
    let client = ApiClient::from_dev(&dev_dir(target.dev))?;
    let known = signers(&client)?;
    let mut holders = Vec::new();
    for r in recovery {
        let (signer, rest) = r
            .split_once('=')
            .ok_or_else(|| Failure(format!("--recovery {r:?}: use SIGNER=PUBLIC_KEY[@HOLDER]")))?;
        let (public, holder) = match rest.split_once('@') {
            Some((p, h)) => (p, h.to_string()),
            None => (rest, format!("holder of {signer}")),
        };
        let node_key = known
            .iter()
            .find(|(n, _)| n == signer)
            .map(|(_, k)| *k)
            .ok_or_else(|| Failure(format!("no signer named {signer:?}")))?;
        holders.push(RecoveryHolder {
            signer: node_key,
            holder,
            recovery_key: public.parse().map_err(Failure)?,
        });
    }
    let document = RecoveryKeys {
        version: RECOVERY_KEYS_VERSION,
        key_id: key.to_string(),
        holders,
    };
    document.check()?;
    let mut signatures = Vec::new();
    for path in admin_keys {
        signatures.push(document.sign_as_admin(&read_credential(path)?)?);
    }
    let signed = SignedRecoveryKeys {
        document,
        signatures,
    };
    write_new(out, &serde_json::to_vec_pretty(&signed)?, 0o644)?;
    Ok(json!({
        "document": out,
        "key_id": key,
        "holders": signed.document.holders.len(),
        "signatures": signed.signatures.len(),
    }))
}

fn export(
    key: &str,
    doc: &Path,
    vault: Option<String>,
    out: &Path,
    target: Target,
) -> Result<Value, Failure> {
    let client = ApiClient::from_dev(&dev_dir(target.dev))?;
    let doc = read_doc(doc)?;
    let v = client.call(
        "POST",
        &format!("/v1/keys/{}/backup", crate::client::check_id("key", key)?),
        Some(&json!({ "recovery_keys": doc, "vault_id": vault })),
    )?;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let mut files = Vec::new();
    for k in v["kits"].as_array().into_iter().flatten() {
        let text = k["kit"]
            .as_str()
            .ok_or_else(|| Failure("the server returned a kit without text".into()))?;
        let kit = Kit::from_bytes(text.as_bytes())?;
        kit.verify_signature()?;
        let signer = k["signer"].as_str().unwrap_or("signer");
        let safe: String = signer
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let path = out.join(format!(
            "{}-e{}-{}-p{}.kit.json",
            kit.header.key_id, kit.header.epoch, safe, kit.header.party_index
        ));
        write_new(&path, text.as_bytes(), 0o644)?;
        files.push(json!({
            "signer": signer,
            "party_index": kit.header.party_index,
            "recovery_key": kit.header.recovery_key,
            "file": path,
        }));
    }
    Ok(
        json!({ "key_id": v["key_id"], "epoch": v["epoch"], "vault_id": v["vault_id"], "kits": files }),
    )
}

fn verify(
    kit_path: &Path,
    key: Option<&str>,
    vault: Option<&str>,
    recovery_key: Option<&Path>,
    roster: Option<PathBuf>,
    target: Target,
) -> Result<Value, Failure> {
    let kit = read_kit(kit_path)?;
    kit.verify_signature()?;
    let h = &kit.header;
    if let Some(k) = key {
        if h.key_id != k {
            return Err(Failure(format!(
                "{}: the kit is for key {}, not {k}",
                kit_path.display(),
                h.key_id
            )));
        }
    }
    if let Some(v) = vault {
        if h.vault_id.as_deref() != Some(v) {
            return Err(Failure(format!(
                "{}: the kit is for vault {}, not {v}",
                kit_path.display(),
                h.vault_id.as_deref().unwrap_or("(none)")
            )));
        }
    }
    let dir = dev_dir(target.dev);
    let roster_path = roster.unwrap_or_else(|| dir.join("roster.json"));
    let signed = crate::node_cmd::read_roster(&roster_path)?;
    signed
        .check_for_enrolment()
        .map_err(|e| Failure(format!("{}: {e}", roster_path.display())))?;
    let Some((_, pinned)) = signed.roster.signer(&h.signer) else {
        return Err(Failure(format!(
            "the kit's signer {} is not in the pinned roster",
            h.signer
        )));
    };
    let client = ApiClient::from_dev(&dir)?;
    let record = client.call("GET", &format!("/v1/keys/{}", h.key_id), None)?;
    let mismatch = |what: &str| {
        Err(Failure(format!(
            "the kit's {what} does not match key {} on the server",
            h.key_id
        )))
    };
    if record["public_key"].as_str() != Some(h.group_public_key.as_str()) {
        return mismatch("group public key");
    }
    if record["scheme"].as_str() != Some(h.scheme.name()) {
        return mismatch("scheme");
    }
    let party_key = record["party_keys"]
        .get(usize::from(h.party_index))
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<NodeKey>().ok());
    if party_key != Some(h.signer) {
        return mismatch("party index or signer");
    }
    let epoch = record["epoch"].as_u64().unwrap_or(0);
    if epoch != h.epoch {
        return Err(Failure(format!(
            "the kit holds epoch {} of key {}, which is at epoch {epoch}: the share was refreshed since; export a new kit",
            h.epoch, h.key_id
        )));
    }
    let mut out = json!({
        "kit": kit_path,
        "key_id": h.key_id,
        "vault_id": h.vault_id,
        "signer": pinned.name,
        "party_index": h.party_index,
        "epoch": h.epoch,
        "signature": "valid",
        "matches_server": true,
        "decrypted": false,
    });
    if let Some(path) = recovery_key {
        let secret = read_recovery_key(path)?;
        coffer_signer::backup::open_kit(&kit, &secret)?;
        out["decrypted"] = json!(true);
    }
    Ok(out)
}

fn store_source(key_file: Option<&Path>) -> Result<Box<dyn KeySource>, Failure> {
    Ok(match key_file {
        Some(path) if !path.exists() => Box::new(KeyFileSource::create(path)?),
        Some(path) => Box::new(KeyFileSource::open(path)),
        None => Box::new(
            PassphraseSource::from_env()
                .map_err(|e| Failure(format!("{e} (set COFFER_PASSPHRASE or pass --key-file)")))?,
        ),
    })
}

fn restore(
    kit_path: &Path,
    recovery_key: &Path,
    data: &Path,
    key_file: Option<&Path>,
) -> Result<Value, Failure> {
    let kit = read_kit(kit_path)?;
    let secret = read_recovery_key(recovery_key)?;
    // Everything is checked before the store key file is created.
    coffer_signer::backup::open_kit(&kit, &secret)?;
    if let Some(parent) = key_file.filter(|k| !k.exists()).and_then(Path::parent) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let source = store_source(key_file)?;
    let report = coffer_signer::backup::restore(data, source.as_ref(), &kit, &secret)?;
    Ok(json!({
        "restored": true,
        "data": data,
        "key_id": report.key_id,
        "epoch": report.epoch,
        "signer": report.signer,
        "created_store": report.created_store,
    }))
}

/// Checks a kit's signature, signer and header against the key record from the server.
fn check_against(kit: &Kit, record: &Value) -> Result<(), Failure> {
    kit.verify_signature()?;
    let h = &kit.header;
    let party_key = record["party_keys"]
        .get(usize::from(h.party_index))
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<NodeKey>().ok());
    if record["public_key"].as_str() != Some(h.group_public_key.as_str())
        || record["scheme"].as_str() != Some(h.scheme.name())
        || party_key != Some(h.signer)
        || record["epoch"].as_u64() != Some(h.epoch)
    {
        return Err(Failure(format!(
            "kit of party {} does not match key {} on the server (stale or for another key)",
            h.party_index, h.key_id
        )));
    }
    Ok(())
}

fn drill(
    key: &str,
    kits_dir: &Path,
    recovery: &[PathBuf],
    target: Target,
) -> Result<Value, Failure> {
    let client = ApiClient::from_dev(&dev_dir(target.dev))?;
    let key = crate::client::check_id("key", key)?;
    let record = client.call("GET", &format!("/v1/keys/{key}"), None)?;
    let threshold = record["threshold"]
        .as_u64()
        .and_then(|t| usize::try_from(t).ok())
        .ok_or_else(|| Failure("the server's key record has no threshold".into()))?;
    let mut secrets = Vec::new();
    for path in recovery {
        secrets.push((path.clone(), read_recovery_key(path)?.public()));
    }
    let mut chosen: Vec<crate::drill::DrillKit> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(kits_dir)
        .map_err(io_err(kits_dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".kit.json"))
        .collect();
    entries.sort();
    for path in entries {
        let kit = read_kit(&path)?;
        if kit.header.key_id != key {
            continue;
        }
        check_against(&kit, &record)?;
        let Some((rfile, _)) = secrets.iter().find(|(_, p)| *p == kit.header.recovery_key) else {
            continue;
        };
        if chosen
            .iter()
            .any(|c| c.kit.header.party_index == kit.header.party_index)
        {
            continue;
        }
        if chosen.len() < threshold {
            chosen.push(crate::drill::DrillKit {
                kit_file: path.clone(),
                recovery_file: rfile.clone(),
                kit,
            });
        }
    }
    if chosen.len() < threshold {
        return Err(Failure(format!(
            "the drill needs {threshold} kits of key {key} with their recovery keys; found {}",
            chosen.len()
        )));
    }
    let scheme = chosen[0].kit.header.scheme;
    let public_key = record["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let result = crate::drill::run_parties(key, scheme, &public_key, &chosen);
    let report = match &result {
        Ok(v) => {
            json!({ "ok": true, "session": v["session"], "message": v["message"], "signature": v["signature"], "parties": v["parties"] })
        }
        Err(e) => {
            json!({ "ok": false, "reason": e.0, "parties": chosen.iter().map(|c| c.kit.header.party_index).collect::<Vec<_>>() })
        }
    };
    let recorded = client.call(
        "POST",
        &format!("/v1/keys/{key}/backup/drill"),
        Some(&report),
    )?;
    result?;
    Ok(recorded)
}

pub(crate) fn run(cmd: BackupCommand) -> Result<(), Failure> {
    match cmd {
        BackupCommand::RecoveryKey(RecoveryKeyCommand::New { out }) => {
            let secret = RecoverySecret::generate()?;
            let file = RecoveryKeyFile {
                kind: RECOVERY_KEY_KIND.into(),
                version: 1,
                public: secret.public().to_hex(),
                secret: SecretHex(hex::encode(&secret.secret_bytes()[..])),
            };
            let text = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
            write_new(&out, &text, 0o600)?;
            emit(&json!({ "recovery_key": secret.public(), "file": out }))
        }
        BackupCommand::RecoveryKeys {
            key,
            recovery,
            admin_key,
            out,
            target,
        } => emit(&recovery_keys(&key, &recovery, &admin_key, &out, target)?),
        BackupCommand::SignRecoveryKeys { doc, admin_key } => {
            let mut signed = read_doc(&doc)?;
            signed.document.check()?;
            let admin = read_credential(&admin_key)?;
            signed.signatures.retain(|s| s.admin != admin.node_key());
            signed
                .signatures
                .push(signed.document.sign_as_admin(&admin)?);
            let tmp = doc.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&signed)?).map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &doc).map_err(io_err(&doc))?;
            emit(&json!({ "document": doc, "signatures": signed.signatures.len() }))
        }
        BackupCommand::Export {
            key,
            recovery_keys,
            vault,
            out,
            target,
        } => emit(&export(&key, &recovery_keys, vault, &out, target)?),
        BackupCommand::Verify {
            kit,
            key,
            vault,
            recovery_key,
            roster,
            target,
        } => emit(&verify(
            &kit,
            key.as_deref(),
            vault.as_deref(),
            recovery_key.as_deref(),
            roster,
            target,
        )?),
        BackupCommand::Restore {
            kit,
            recovery_key,
            data,
            key_file,
        } => emit(&restore(&kit, &recovery_key, &data, key_file.as_deref())?),
        BackupCommand::Drill {
            key,
            kits,
            recovery_key,
            target,
        } => emit(&drill(&key, &kits, &recovery_key, target)?),
        BackupCommand::DrillParty {
            kit,
            recovery_key,
            session,
            signers,
            message,
        } => {
            let k = read_kit(&kit)?;
            let secret = read_recovery_key(&recovery_key)?;
            crate::drill::party(secret, k, &session, &signers, &message)
        }
    }
}
