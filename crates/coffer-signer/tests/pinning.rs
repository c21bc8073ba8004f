//! Signers never take the server's word: real signer daemons (in process, over real TLS)
//! face a hostile server that asks for jobs with parties outside the pinned roster, with a
//! key's party indices swapped, with raw messages after dev mode was switched off, that
//! announces rosters signed by admins it chose, and that injects an envelope forged in a
//! peer's name. Each is refused by the signers themselves; honest work still completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use coffer_net::envelope::{Envelope, ProtocolKind};
use coffer_net::frames::{read_frame, write_frame, Job, Outcome, Task, ToServer, ToSigner};
use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::{tls, Identity, NodeKey};
use coffer_proto::ids::{PartyIndex, SessionId};
use coffer_proto::message::Message;
use coffer_proto::scheme::Scheme;
use coffer_signer::keysource::KeyFileSource;
use coffer_signer::node::SignerNode;

/// A server that does what the test says, over the real frames and TLS.
struct FakeServer {
    writers: HashMap<NodeKey, mpsc::UnboundedSender<ToSigner>>,
    inbox: mpsc::UnboundedReceiver<(NodeKey, ToServer)>,
}

impl FakeServer {
    async fn start(
        identity: Identity,
        n: usize,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<FakeServer>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config =
            tls::server_config(identity.signing_key(), Arc::new(|_: &NodeKey| true)).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handle = tokio::spawn(async move {
            let (in_tx, inbox) = mpsc::unbounded_channel();
            let mut writers = HashMap::new();
            while writers.len() < n {
                let (tcp, _) = listener.accept().await.unwrap();
                let tls = acceptor.accept(tcp).await.unwrap();
                let key = tls::peer_node_key(tls.get_ref().1).unwrap();
                let (mut r, mut w) = tokio::io::split(tls);
                let (tx, mut rx) = mpsc::unbounded_channel::<ToSigner>();
                tokio::spawn(async move {
                    while let Some(f) = rx.recv().await {
                        if write_frame(&mut w, &f).await.is_err() {
                            break;
                        }
                    }
                });
                let in_tx = in_tx.clone();
                tokio::spawn(async move {
                    while let Ok(Some(f)) = read_frame::<_, ToServer>(&mut r).await {
                        if in_tx.send((key, f)).is_err() {
                            break;
                        }
                    }
                });
                writers.insert(key, tx);
            }
            FakeServer { writers, inbox }
        });
        (addr, handle)
    }

    /// Starts `job`, relays its envelopes honestly (after `inject` had its say on the first
    /// relayed envelope), and returns every party's outcome.
    async fn run(
        &mut self,
        job: Job,
        mut inject: impl FnMut(&Envelope) -> Option<Envelope>,
    ) -> HashMap<NodeKey, Outcome> {
        for (_, k) in &job.parties {
            self.writers[k].send(ToSigner::Start(job.clone())).unwrap();
        }
        let mut outcomes = HashMap::new();
        while outcomes.len() < job.parties.len() {
            let (from, frame) = tokio::time::timeout(Duration::from_secs(60), self.inbox.recv())
                .await
                .expect("signers went quiet")
                .unwrap();
            match frame {
                ToServer::Finished { session, outcome } if session == job.session => {
                    outcomes.insert(from, outcome);
                }
                ToServer::Relay(env) if env.header.session == job.session => {
                    let targets: Vec<NodeKey> = match env.header.recipient {
                        Some((k, _)) => vec![k],
                        None => job
                            .parties
                            .iter()
                            .map(|(_, k)| *k)
                            .filter(|k| *k != from)
                            .collect(),
                    };
                    for t in targets {
                        if let Some(forged) = inject(&env) {
                            self.writers[&t].send(ToSigner::Relay(forged)).unwrap();
                        }
                        self.writers[&t].send(ToSigner::Relay(env.clone())).unwrap();
                    }
                }
                _ => {}
            }
        }
        outcomes
    }
}

fn temp(tag: &str) -> PathBuf {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    std::env::temp_dir().join(format!("coffer-pinning-{tag}-{}", hex::encode(b)))
}

fn refused(o: &Outcome, needle: &str) -> bool {
    matches!(o, Outcome::Refused { reason } if reason.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signers_check_every_job_against_what_they_pinned() {
    let root = temp("all");
    let server = Identity::generate("server");
    let admins: Vec<Identity> = (0..3)
        .map(|i| Identity::generate(&format!("admin{i}")))
        .collect();
    let mut nodes = Vec::new();
    let mut publics = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("s{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let source = KeyFileSource::create(&dir.join("store.key")).unwrap();
        publics.push(SignerNode::init(&dir, &format!("signer-{i}"), &source).unwrap());
    }
    let roster = Roster {
        version: 1,
        signers: publics.clone(),
        admins: admins.iter().map(|a| a.node_key()).collect(),
        admin_threshold: 2,
        server: server.node_key(),
        dev_mode: true,
    };
    let signed = SignedRoster {
        signatures: vec![
            roster.sign_as_admin(&admins[0]).unwrap(),
            roster.sign_as_admin(&admins[1]).unwrap(),
        ],
        roster: roster.clone(),
    };
    for i in 0..3 {
        let dir = root.join(format!("s{i}"));
        let node = SignerNode::open(&dir, &KeyFileSource::open(&dir.join("store.key"))).unwrap();
        node.enrol(signed.clone()).unwrap();
        nodes.push(Arc::new(node));
    }
    let (addr, accepting) = FakeServer::start(server, 3).await;
    for node in &nodes {
        tokio::spawn(coffer_signer::daemon::run(node.clone(), addr.to_string()));
    }
    let mut fake = accepting.await.unwrap();
    let keys: Vec<NodeKey> = publics.iter().map(|p| p.node_key).collect();
    let all: Vec<(u16, NodeKey)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u16, *k))
        .collect();

    // Honest key generation.
    let keygen = Job {
        session: SessionId::random(),
        key_id: "k-pin".into(),
        task: Task::Keygen {
            scheme: Scheme::Ed25519,
            threshold: 2,
        },
        parties: all.clone(),
    };
    let outcomes = fake.run(keygen, |_| None).await;
    assert!(
        outcomes
            .values()
            .all(|o| matches!(o, Outcome::KeyReady { .. })),
        "{outcomes:?}"
    );

    let sign = |parties: Vec<(u16, NodeKey)>, message: &[u8]| Job {
        session: SessionId::random(),
        key_id: "k-pin".into(),
        task: Task::Sign {
            message: message.to_vec(),
            path: "m".into(),
        },
        parties,
    };

    // A party outside the pinned roster.
    let stranger = Identity::generate("stranger");
    let job = sign(vec![(0, keys[0]), (1, stranger.node_key())], b"x");
    fake.writers[&keys[0]]
        .send(ToSigner::Start(job.clone()))
        .unwrap();
    let outcome = loop {
        let (_, f) = fake.inbox.recv().await.unwrap();
        if let ToServer::Finished { session, outcome } = f {
            if session == job.session {
                break outcome;
            }
        }
    };
    assert!(refused(&outcome, "not in the pinned roster"), "{outcome:?}");

    // Swapped party indices for an existing key: refused by both.
    let o = fake
        .run(sign(vec![(0, keys[1]), (1, keys[0])], b"swap"), |_| None)
        .await;
    assert!(
        o.values().all(|o| refused(o, "does not hold that index")),
        "{o:?}"
    );

    // An envelope forged in signer-1's name (signed by a stranger) is refused by its
    // recipient, who keeps going with the genuine one: the signature is valid.
    let forged_once = std::sync::atomic::AtomicBool::new(false);
    let o = fake
        .run(
            sign(vec![(0, keys[0]), (1, keys[1])], b"forged envelope"),
            |env| {
                if env.header.sender != keys[1]
                    || forged_once.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    return None;
                }
                let m = Message {
                    session: env.header.session,
                    sender: PartyIndex::unchecked(1),
                    recipient: None,
                    round: env.header.round,
                    payload: b"forged payload".to_vec(),
                };
                let mut forged =
                    Envelope::seal(&stranger, "k-pin", ProtocolKind::Sign, &m, None).unwrap();
                forged.header.sender = keys[1];
                Some(forged)
            },
        )
        .await;
    assert!(forged_once.load(std::sync::atomic::Ordering::SeqCst));
    for outcome in o.values() {
        let Outcome::Signed {
            signature,
            public_key,
            ..
        } = outcome
        else {
            panic!("{o:?}")
        };
        let ok = coffer_proto::verify::verify(
            Scheme::Ed25519,
            &hex::decode(public_key).unwrap(),
            b"forged envelope",
            &hex::decode(signature).unwrap(),
        )
        .unwrap();
        assert!(ok);
    }

    // A roster the server signed with admins of its choosing: refused, pin unchanged.
    let rogue: Vec<Identity> = (0..2)
        .map(|i| Identity::generate(&format!("rogue{i}")))
        .collect();
    let mut hijack = roster.clone();
    hijack.version = 2;
    hijack.admins = rogue.iter().map(|a| a.node_key()).collect();
    hijack.admin_threshold = 1;
    let hijack = SignedRoster {
        signatures: vec![hijack.sign_as_admin(&rogue[0]).unwrap()],
        roster: hijack,
    };
    for k in &keys {
        fake.writers[k]
            .send(ToSigner::Roster(hijack.clone()))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(nodes.iter().all(|n| n.roster().unwrap().version == 1));

    // A genuine update by two pinned admins switches dev mode off: accepted; raw-message
    // signing is then refused by the signers themselves.
    let mut update = roster.clone();
    update.version = 2;
    update.dev_mode = false;
    let update = SignedRoster {
        signatures: vec![
            update.sign_as_admin(&admins[1]).unwrap(),
            update.sign_as_admin(&admins[2]).unwrap(),
        ],
        roster: update,
    };
    for k in &keys {
        fake.writers[k]
            .send(ToSigner::Roster(update.clone()))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(nodes.iter().all(|n| n.roster().unwrap().version == 2));
    let o = fake
        .run(sign(vec![(0, keys[0]), (2, keys[2])], b"raw"), |_| None)
        .await;
    assert!(o.values().all(|o| refused(o, "dev mode only")), "{o:?}");

    let _ = std::fs::remove_dir_all(&root);
}
