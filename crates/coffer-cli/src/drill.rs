//! `coffer backup drill`: proves that a key's backup kits and recovery keys still make the
//! key. The drill checks every kit against the key on the server, then restores a threshold
//! of them, **each into its own scratch signer process** (`coffer backup drill-party`, a
//! temporary data directory per kit, deleted afterwards: never two shares in one process),
//! relays the signing protocol's messages between those processes, checks the signature
//! under the key's group public key, and has the server record the result in the audit log
//! (`POST /v1/keys/{id}/backup/drill`; the server verifies the signature itself).
//!
//! Parent and party talk over the party's standard input and output, one line each:
//! `msg <hex>` (a protocol message, coffer-proto wire form), `sig <hex>` (the party's
//! signature), `err <text>`. The messages stay on this machine.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest;

use coffer_net::backup::{Kit, RecoverySecret};
use coffer_proto::ids::{PartyIndex, SessionId};
use coffer_proto::message::Message;
use coffer_proto::path::DerivationPath;
use coffer_proto::scheme::Scheme;
use coffer_proto::session::Session;
use coffer_signer::keysource::KeyFileSource;

use crate::Failure;

/// Longest a drill waits for its parties.
const DRILL_LIMIT: Duration = Duration::from_secs(300);

/// A kit chosen for the drill with its recovery key file.
pub(crate) struct DrillKit {
    pub kit_file: PathBuf,
    pub recovery_file: PathBuf,
    pub kit: Kit,
}

/// The test message a drill signs (a digest for ECDSA and BIP340).
fn drill_message(scheme: Scheme, key_id: &str, session: &SessionId) -> Vec<u8> {
    let text = format!("coffer backup drill of {key_id}, session {session}");
    match scheme {
        Scheme::Ed25519 => text.into_bytes(),
        _ => sha2::Sha256::digest(text.as_bytes()).to_vec(),
    }
}

struct Party {
    index: u16,
    child: Child,
    stdin: ChildStdin,
}

impl Drop for Party {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the drill with `kits` (a threshold of them, distinct parties): returns the
/// signature (hex), the message (hex) and the session.
pub(crate) fn run_parties(
    key_id: &str,
    scheme: Scheme,
    public_key: &str,
    kits: &[DrillKit],
) -> Result<Value, Failure> {
    let session = SessionId::random();
    let message = drill_message(scheme, key_id, &session);
    let signers: Vec<String> = kits
        .iter()
        .map(|k| k.kit.header.party_index.to_string())
        .collect();
    let exe = std::env::current_exe()?;
    let (tx, rx) = mpsc::channel::<(u16, String)>();
    let mut parties = Vec::new();
    for k in kits {
        let mut child = Command::new(&exe)
            .args(["backup", "drill-party", "--kit"])
            .arg(&k.kit_file)
            .arg("--recovery-key")
            .arg(&k.recovery_file)
            .args(["--session", &session.to_string()])
            .args(["--signers", &signers.join(",")])
            .args(["--message", &hex::encode(&message)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure(format!("cannot start a drill party: {e}")))?;
        let index = k.kit.header.party_index;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure("drill party without stdout".into()))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Failure("drill party without stdin".into()))?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((index, line)).is_err() {
                    break;
                }
            }
            let _ = tx.send((index, "eof".into()));
        });
        parties.push(Party {
            index,
            child,
            stdin,
        });
    }
    drop(tx);
    let until = Instant::now() + DRILL_LIMIT;
    let mut signatures: Vec<(u16, String)> = Vec::new();
    while signatures.len() < parties.len() {
        let left = until.saturating_duration_since(Instant::now());
        let (from, line) = rx
            .recv_timeout(left)
            .map_err(|_| Failure("the drill timed out waiting for its parties".into()))?;
        if let Some(h) = line.strip_prefix("msg ") {
            let bytes = hex::decode(h).map_err(|_| Failure("a drill party sent bad hex".into()))?;
            let m = Message::from_bytes(&bytes)?;
            for p in parties.iter_mut().filter(|p| p.index != from) {
                if m.recipient.is_none_or(|r| r.get() == p.index) {
                    // A party that already finished may have closed its input.
                    let _ = writeln!(p.stdin, "{h}");
                }
            }
        } else if let Some(sig) = line.strip_prefix("sig ") {
            signatures.push((from, sig.to_string()));
        } else if let Some(e) = line.strip_prefix("err ") {
            return Err(Failure(format!("drill party {from}: {e}")));
        } else if line == "eof" && !signatures.iter().any(|(i, _)| *i == from) {
            return Err(Failure(format!(
                "drill party {from} exited without a signature"
            )));
        }
    }
    let first = signatures
        .first()
        .map(|(_, s)| s.clone())
        .ok_or_else(|| Failure("no signature".into()))?;
    if signatures.iter().any(|(_, s)| *s != first) {
        return Err(Failure(
            "the drill parties produced different signatures".into(),
        ));
    }
    let pk = hex::decode(public_key).map_err(|_| Failure("bad public key".into()))?;
    let sig = hex::decode(&first).map_err(|_| Failure("bad signature".into()))?;
    if !coffer_proto::verify::verify(scheme, &pk, &message, &sig)? {
        return Err(Failure(
            "the drill's signature does not verify under the key".into(),
        ));
    }
    Ok(json!({
        "session": session.to_string(),
        "message": hex::encode(&message),
        "signature": first,
        "parties": kits.iter().map(|k| k.kit.header.party_index).collect::<Vec<_>>(),
    }))
}

/// `coffer backup drill-party`: one scratch signer. Restores the kit into a temporary data
/// directory (the real restore path), reads its share back and signs.
pub(crate) fn party(
    recovery: RecoverySecret,
    kit_value: Kit,
    session: &str,
    signers: &str,
    message: &str,
) -> Result<(), Failure> {
    let out = std::io::stdout();
    let result = party_inner(recovery, kit_value, session, signers, message);
    if let Err(e) = &result {
        let mut o = out.lock();
        let _ = writeln!(o, "err {}", e.0.replace('\n', " "));
    }
    result
}

fn party_inner(
    recovery: RecoverySecret,
    kit: Kit,
    session: &str,
    signers: &str,
    message: &str,
) -> Result<(), Failure> {
    let session: [u8; 32] = hex::decode(session)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Failure("--session: 32 bytes hex".into()))?;
    let session = SessionId::from_bytes(session);
    let signers: Vec<PartyIndex> = signers
        .split(',')
        .map(|s| s.trim().parse::<u16>().map(PartyIndex::unchecked))
        .collect::<Result<_, _>>()
        .map_err(|_| Failure("--signers: comma-separated party indices".into()))?;
    let message = hex::decode(message).map_err(|_| Failure("--message: hex".into()))?;
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let scratch = std::env::temp_dir().join(format!("coffer-drill-{}", hex::encode(b)));
    let cleanup = Scratch(scratch.clone());
    std::fs::create_dir_all(&scratch)?;
    let source = KeyFileSource::create(&scratch.join("store.key"))?;
    coffer_signer::backup::restore(&scratch, &source, &kit, &recovery)?;
    let node = coffer_signer::node::SignerNode::open(&scratch, &source)?;
    let share = node.share(&kit.header.key_id)?;
    let mut s =
        coffer_proto::protocol::sign(&share, session, &signers, &message, &DerivationPath::root())?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let stdout = std::io::stdout();
    loop {
        {
            let mut o = stdout.lock();
            for m in s.take_outgoing() {
                writeln!(o, "msg {}", hex::encode(m.to_bytes()))?;
            }
            o.flush()?;
        }
        if let Some(outcome) = s.take_outcome() {
            let sig = outcome?;
            let mut o = stdout.lock();
            writeln!(o, "sig {}", hex::encode(sig.bytes))?;
            o.flush()?;
            drop(cleanup);
            return Ok(());
        }
        let Some(line) = lines.next() else {
            return Err(Failure("the drill closed the party's input".into()));
        };
        let bytes = hex::decode(line?.trim()).map_err(|_| Failure("bad relayed hex".into()))?;
        s.handle(Message::from_bytes(&bytes)?)?;
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
