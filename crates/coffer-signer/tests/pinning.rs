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

    /// An honest 2-of-n Ed25519 key generation of `key_id` among `parties`: every party's
    /// outcome, each checked to be `KeyReady`.
    async fn keygen_ed25519(
        &mut self,
        key_id: &str,
        parties: &[(u16, NodeKey)],
    ) -> HashMap<NodeKey, Outcome> {
        let job = Job {
            session: SessionId::random(),
            key_id: key_id.into(),
            task: Task::Keygen {
                scheme: Scheme::Ed25519,
                threshold: 2,
            },
            parties: parties.to_vec(),
            epoch: None,
        };
        let outcomes = self.run(job, |_| None).await;
        assert!(
            outcomes
                .values()
                .all(|o| matches!(o, Outcome::KeyReady { .. })),
            "{outcomes:?}"
        );
        outcomes
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
        // After a refusal the others get half a second to report, then are cancelled (as
        // the real coordinator does), so a party left waiting does not hang the test.
        let mut cancel_at: Option<tokio::time::Instant> = None;
        while outcomes.len() < job.parties.len() {
            let wait = match cancel_at {
                Some(at) => at.saturating_duration_since(tokio::time::Instant::now()),
                None => Duration::from_secs(60),
            };
            let Ok(next) = tokio::time::timeout(wait, self.inbox.recv()).await else {
                assert!(cancel_at.is_some(), "signers went quiet");
                for (_, k) in &job.parties {
                    if !outcomes.contains_key(k) {
                        let _ = self.writers[k].send(ToSigner::Cancel {
                            session: job.session,
                            reason: "another party refused".into(),
                        });
                    }
                }
                break;
            };
            let (from, frame) = next.unwrap();
            match frame {
                ToServer::Finished { session, outcome } if session == job.session => {
                    if matches!(outcome, Outcome::Refused { .. }) && cancel_at.is_none() {
                        cancel_at = Some(tokio::time::Instant::now() + Duration::from_millis(500));
                    }
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

/// Three signer daemons enrolled in a roster of three admins (quorum 2, dev mode on), all
/// connected to a fake server.
struct Setup {
    root: PathBuf,
    admins: Vec<Identity>,
    nodes: Vec<Arc<SignerNode>>,
    keys: Vec<NodeKey>,
    all: Vec<(u16, NodeKey)>,
    roster: Roster,
    fake: FakeServer,
    /// The server's identity (it signs freeze orders).
    server: Identity,
}

async fn setup(tag: &str) -> Setup {
    let root = temp(tag);
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
    let server_copy = Identity::from_secret_bytes(&server.to_secret_bytes().unwrap()).unwrap();
    let (addr, accepting) = FakeServer::start(server, 3).await;
    for node in &nodes {
        tokio::spawn(coffer_signer::daemon::run(node.clone(), addr.to_string()));
    }
    let fake = accepting.await.unwrap();
    let keys: Vec<NodeKey> = publics.iter().map(|p| p.node_key).collect();
    let all: Vec<(u16, NodeKey)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u16, *k))
        .collect();

    Setup {
        root,
        admins,
        nodes,
        keys,
        all,
        roster,
        fake,
        server: server_copy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signers_check_every_job_against_what_they_pinned() {
    let Setup {
        root,
        admins,
        nodes,
        keys,
        all,
        roster,
        mut fake,
        ..
    } = setup("all").await;
    // Honest key generation.
    fake.keygen_ed25519("k-pin", &all).await;

    let sign = |parties: Vec<(u16, NodeKey)>, message: &[u8]| Job {
        session: SessionId::random(),
        key_id: "k-pin".into(),
        task: Task::Sign {
            message: message.to_vec(),
            path: "m".into(),
        },
        parties,
        epoch: Some(0),
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

mod intents {
    //! Transfers: the signers check the initiator, the pinned admins' policy, the approvals
    //! and the co-signed receipt chain themselves.
    use super::*;
    use coffer_net::frames::IntentJob;
    use coffer_policy::{
        Action, Amount, Approval, Conditions, Decision, Intent, IntentKind, Member, Policy,
        PublicKey, Receipt, ReceiptBody, Requirement, Rule, SignedPolicy, Velocity,
    };

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    struct People {
        initiator: Identity,
        approvers: Vec<Identity>,
    }

    fn policy(version: u64, people: &People, velocity_max: u128) -> Policy {
        let member = |id: &Identity| Member {
            name: id.name().to_string(),
            key: PublicKey(id.node_key().0),
        };
        Policy {
            vault_id: "v-1".into(),
            version,
            groups: [
                (
                    "approvers".to_string(),
                    people.approvers.iter().map(member).collect(),
                ),
                ("initiators".to_string(), vec![member(&people.initiator)]),
            ]
            .into_iter()
            .collect(),
            initiator_groups: vec!["initiators".into()],
            rules: vec![
                Rule {
                    name: "velocity".into(),
                    when: Conditions {
                        velocity: Some(Velocity {
                            window_secs: 3600,
                            max_sum: Some(Amount(velocity_max)),
                            max_count: None,
                        }),
                        ..Default::default()
                    },
                    action: Action::Block,
                },
                Rule {
                    name: "two approvers".into(),
                    when: Conditions::default(),
                    action: Action::Allow {
                        approvals: vec![Requirement {
                            group: "approvers".into(),
                            min: 2,
                        }],
                        allow_self_approval: false,
                    },
                },
            ],
        }
    }

    fn intent(people: &People, request: &str, amount: u128) -> Intent {
        Intent {
            tenant: "t-1".into(),
            vault_id: "v-1".into(),
            key_id: "k-pol".into(),
            request_id: request.into(),
            wallet_id: "w-1".into(),
            path: "m/0/0".into(),
            asset: "SOL".into(),
            amount: Amount(amount),
            destination: "dest".into(),
            memo: String::new(),
            initiator: PublicKey(people.initiator.node_key().0),
            created_at: now(),
            expires_at: now() + 3600,
            transaction: None,
            kind: Default::default(),
        }
    }

    fn approvals(by: &[&Identity], i: &Intent) -> Vec<Approval> {
        by.iter()
            .map(|a| Approval::sign(a.signing_key(), i.hash(), Decision::Approve, now() + 600))
            .collect()
    }

    struct Ask<'a> {
        parties: Vec<(u16, NodeKey)>,
        intent: &'a Intent,
        initiator: &'a Identity,
        approvals: Vec<Approval>,
        policy: &'a SignedPolicy,
        history: &'a [Receipt],
    }

    fn job(ask: Ask) -> Job {
        let seq = ask.history.last().map(|r| r.body.seq + 1).unwrap_or(0);
        let prev = ask
            .history
            .last()
            .map(|r| r.body.hash())
            .unwrap_or([0u8; 32]);
        at_place(ask, seq, prev)
    }

    fn at_place(ask: Ask, seq: u64, prev: [u8; 32]) -> Job {
        Job {
            session: SessionId::random(),
            key_id: "k-pol".into(),
            task: Task::SignIntent(Box::new(IntentJob {
                intent: ask.intent.clone(),
                initiator_signature: coffer_policy::sign_initiation(
                    ask.initiator.signing_key(),
                    ask.intent,
                ),
                approvals: ask.approvals,
                policy: ask.policy.clone(),
                receipt: ReceiptBody::for_intent(ask.intent, seq, prev, now()),
                history: ask.history.to_vec(),
                input: 0,
            })),
            parties: ask.parties,
            epoch: Some(0),
        }
    }

    /// The co-signed receipt of a signed job, checked against the key's members.
    fn receipt(job: &Job, outcomes: &HashMap<NodeKey, Outcome>, keys: &[NodeKey]) -> Receipt {
        let Task::SignIntent(ij) = &job.task else {
            unreachable!()
        };
        let signatures = outcomes
            .iter()
            .map(|(k, o)| match o {
                Outcome::Signed {
                    receipt: Some(r), ..
                } => (PublicKey(k.0), r.parse().unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        let r = Receipt {
            body: ij.receipt.clone(),
            signatures,
        };
        let members: Vec<PublicKey> = keys.iter().map(|k| PublicKey(k.0)).collect();
        r.verify(&members, 2).unwrap();
        r
    }

    fn none_signed(o: &HashMap<NodeKey, Outcome>) -> bool {
        !o.values().any(|o| matches!(o, Outcome::Signed { .. }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signers_refuse_what_policy_and_approvals_do_not_allow_whatever_the_server_says() {
        let Setup {
            root,
            admins,
            keys,
            all,
            mut fake,
            ..
        } = setup("intents").await;
        let o = fake.keygen_ed25519("k-pol", &all).await;
        let Some(Outcome::KeyReady {
            public_key,
            chain_code: Some(chain_code),
            ..
        }) = o.values().next()
        else {
            panic!("{o:?}")
        };
        let group_key = hex::decode(public_key).unwrap();
        let chain_code: [u8; 32] = hex::decode(chain_code).unwrap().try_into().unwrap();
        let people = People {
            initiator: Identity::generate("ivan"),
            approvers: (0..3)
                .map(|i| Identity::generate(&format!("approver{i}")))
                .collect(),
        };
        let (alice, bob, carol) = (
            &people.approvers[0],
            &people.approvers[1],
            &people.approvers[2],
        );
        let v1 = SignedPolicy::sign(
            policy(1, &people, 100),
            &[admins[0].signing_key(), admins[1].signing_key()],
        );
        let pair = |a: usize, b: usize| vec![all[a], all[b]];

        // Honest: 60 with two approvals, signed by signers 0 and 1, at place 0.
        let i1 = intent(&people, "r1", 60);
        let j = job(Ask {
            parties: pair(0, 1),
            intent: &i1,
            initiator: &people.initiator,
            approvals: approvals(&[alice, bob], &i1),
            policy: &v1,
            history: &[],
        });
        let o = fake.run(j.clone(), |_| None).await;
        let r0 = receipt(&j, &o, &keys);
        // The signature verifies under the child key at m/0/0, derived independently.
        let (child, _) = coffer_proto::hd::derive_public(
            Scheme::Ed25519,
            &group_key,
            chain_code,
            &"m/0/0".parse().unwrap(),
        )
        .unwrap();
        for out in o.values() {
            let Outcome::Signed { signature, .. } = out else {
                panic!()
            };
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&child.clone().try_into().unwrap())
                .unwrap();
            vk.verify_strict(
                &i1.message(),
                &ed25519_dalek::Signature::from_slice(&hex::decode(signature).unwrap()).unwrap(),
            )
            .unwrap();
        }
        let history = vec![r0.clone()];

        // A server that skips an approval.
        let i2 = intent(&people, "r2", 10);
        let o = fake
            .run(
                job(Ask {
                    parties: pair(1, 2),
                    intent: &i2,
                    initiator: &people.initiator,
                    approvals: approvals(&[alice], &i2),
                    policy: &v1,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "approv")), "{o:?}");

        // A server that alters the amount after approval: the approvals and the initiator's
        // signature are over the original intent.
        let i3 = intent(&people, "r3", 10);
        let mut altered = i3.clone();
        altered.amount = Amount(99);
        let mut j = job(Ask {
            parties: pair(0, 2),
            intent: &altered,
            initiator: &people.initiator,
            approvals: approvals(&[alice, bob], &i3),
            policy: &v1,
            history: &history,
        });
        if let Task::SignIntent(ij) = &mut j.task {
            ij.initiator_signature =
                coffer_policy::sign_initiation(people.initiator.signing_key(), &i3);
        }
        let o = fake.run(j, |_| None).await;
        assert!(
            o.values().all(|o| refused(o, "")) && none_signed(&o),
            "{o:?}"
        );

        // A server that replays approvals given to another request.
        let i4 = intent(&people, "r4", 10);
        let o = fake
            .run(
                job(Ask {
                    parties: pair(0, 1),
                    intent: &i4,
                    initiator: &people.initiator,
                    approvals: approvals(&[alice, bob], &i1),
                    policy: &v1,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "another intent")), "{o:?}");

        // A server that replays a signed request at the next place, to other signers.
        let o = fake
            .run(
                job(Ask {
                    parties: pair(1, 2),
                    intent: &i1,
                    initiator: &people.initiator,
                    approvals: approvals(&[alice, bob], &i1),
                    policy: &v1,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "replay")), "{o:?}");

        // Velocity: 60 more within the hour is over the limit of 100. Asked of signers 1 and
        // 2 (signer 2 never saw the first transfer) with the receipt withheld: the chain is
        // incomplete and both refuse.
        let i5 = intent(&people, "r5", 60);
        let o = fake
            .run(
                at_place(
                    Ask {
                        parties: pair(1, 2),
                        intent: &i5,
                        initiator: &people.initiator,
                        approvals: approvals(&[bob, carol], &i5),
                        policy: &v1,
                        history: &[],
                    },
                    1,
                    r0.body.hash(),
                ),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "receipts")), "{o:?}");
        // With the receipt: the velocity rule blocks it, on both.
        let o = fake
            .run(
                job(Ask {
                    parties: pair(1, 2),
                    intent: &i5,
                    initiator: &people.initiator,
                    approvals: approvals(&[bob, carol], &i5),
                    policy: &v1,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "velocity")), "{o:?}");

        // A newer policy (limit 1000) lets it through; then the older policy is refused.
        let v2 = SignedPolicy::sign(
            policy(2, &people, 1000),
            &[admins[1].signing_key(), admins[2].signing_key()],
        );
        let j = job(Ask {
            parties: pair(1, 2),
            intent: &i5,
            initiator: &people.initiator,
            approvals: approvals(&[bob, carol], &i5),
            policy: &v2,
            history: &history,
        });
        let o_r1 = fake.run(j.clone(), |_| None).await;
        let r1 = receipt(&j, &o_r1, &keys);
        let history = vec![r0.clone(), r1.clone()];
        let i6 = intent(&people, "r6", 1);
        let o = fake
            .run(
                job(Ask {
                    parties: pair(1, 2),
                    intent: &i6,
                    initiator: &people.initiator,
                    approvals: approvals(&[alice, bob], &i6),
                    policy: &v1,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "older")), "{o:?}");

        // A policy signed by admins the signers never pinned.
        let rogue: Vec<Identity> = (0..2)
            .map(|i| Identity::generate(&format!("rogue{i}")))
            .collect();
        let forged = SignedPolicy::sign(
            policy(3, &people, u128::MAX),
            &[rogue[0].signing_key(), rogue[1].signing_key()],
        );
        let o = fake
            .run(
                job(Ask {
                    parties: pair(0, 1),
                    intent: &i6,
                    initiator: &people.initiator,
                    approvals: approvals(&[alice, bob], &i6),
                    policy: &forged,
                    history: &history,
                }),
                |_| None,
            )
            .await;
        assert!(o.values().all(|o| refused(o, "policy")), "{o:?}");

        // A fork: another transfer at place 1, asked of signers 0 and 1 (signer 1 holds
        // place 1 already): refused, nothing signed.
        let o = fake
            .run(
                at_place(
                    Ask {
                        parties: pair(0, 1),
                        intent: &i6,
                        initiator: &people.initiator,
                        approvals: approvals(&[alice, bob], &i6),
                        policy: &v2,
                        history: &history[..1],
                    },
                    1,
                    r0.body.hash(),
                ),
                |_| None,
            )
            .await;
        assert!(o.values().any(|o| refused(o, "another transfer")), "{o:?}");
        assert!(none_signed(&o), "{o:?}");

        // An identical retry of a finished job is answered from the ledger: the same
        // signature, no second signing.
        let mut retry = j.clone();
        retry.session = SessionId::random();
        let again = fake.run(retry.clone(), |_| None).await;
        assert_eq!(receipt(&retry, &again, &keys).body, r1.body);
        for (k, out) in &again {
            assert_eq!(out, &o_r1[k]);
        }

        let _ = std::fs::remove_dir_all(&root);
    }

    /// Chain transactions: every signer decodes the unsigned transaction the intent carries,
    /// under the child key it derives from its own share, signs only the digests it computed
    /// itself, and refuses a transaction that moves another amount, or to another
    /// destination, than the approved intent says, even when initiator and approvers signed
    /// it all. The finished transactions are checked by the chain code's own verification
    /// (and Bitcoin's by Bitcoin Core's consensus library, every input with all spent
    /// outputs).
    mod chains {
        use super::*;
        use coffer_chains::{btc, eth, sol, ChainTx, SignaturePart};

        struct Chain<'a> {
            fake: &'a mut FakeServer,
            all: &'a [(u16, NodeKey)],
            keys: &'a [NodeKey],
            people: &'a People,
            policy: &'a SignedPolicy,
            key_id: &'static str,
            history: Vec<Receipt>,
        }

        impl Chain<'_> {
            fn intent(
                &self,
                request: &str,
                asset: &str,
                to: &str,
                amount: u128,
                tx: &ChainTx,
            ) -> Intent {
                let mut i = intent(self.people, request, amount);
                i.key_id = self.key_id.into();
                i.asset = asset.into();
                i.destination = to.into();
                i.transaction = Some(tx.to_text());
                i
            }

            fn ask<'b>(&'b self, i: &'b Intent, input: u32) -> Job {
                let mut j = job(Ask {
                    parties: vec![self.all[0], self.all[2]],
                    intent: i,
                    initiator: &self.people.initiator,
                    approvals: approvals(
                        &[&self.people.approvers[0], &self.people.approvers[1]],
                        i,
                    ),
                    policy: self.policy,
                    history: &self.history,
                });
                j.key_id = self.key_id.into();
                if let Task::SignIntent(ij) = &mut j.task {
                    ij.input = input;
                }
                j
            }

            /// Signs every digest of an honest transaction (one session per input, the
            /// same receipt place) and returns the signatures in order.
            async fn sign_all(&mut self, i: &Intent, inputs: usize) -> Vec<SignaturePart> {
                let mut parts = Vec::new();
                let mut last = None;
                let mut body = None;
                for input in 0..inputs {
                    let mut j = self.ask(i, input as u32);
                    // Every input's session co-signs the same receipt (as the server sends).
                    if let Task::SignIntent(ij) = &mut j.task {
                        match &body {
                            None => body = Some(ij.receipt.clone()),
                            Some(b) => ij.receipt = b.clone(),
                        }
                    }
                    let o = self.fake.run(j.clone(), |_| None).await;
                    let mut sigs = o.values().map(|o| match o {
                        Outcome::Signed {
                            signature,
                            recovery_id,
                            ..
                        } => (signature.clone(), *recovery_id),
                        other => panic!("input {input}: {other:?}"),
                    });
                    let (sig, rec) = sigs.next().unwrap();
                    assert!(sigs.all(|(s, _)| s == sig), "the signers agree");
                    parts.push(SignaturePart {
                        bytes: hex::decode(sig).unwrap(),
                        recovery_id: rec,
                    });
                    last = Some((j, o));
                }
                let (j, o) = last.unwrap();
                self.history.push(receipt(&j, &o, self.keys));
                parts
            }

            /// Every signer refuses `i`, with `needle` in its reason.
            async fn refused_by_all(&mut self, i: &Intent, needle: &str) {
                let j = self.ask(i, 0);
                let o = self.fake.run(j, |_| None).await;
                assert!(o.values().all(|o| refused(o, needle)), "{needle}: {o:?}");
            }
        }

        async fn keygen(
            fake: &mut FakeServer,
            all: &[(u16, NodeKey)],
            key_id: &str,
            scheme: Scheme,
        ) -> Vec<u8> {
            let o = fake
                .run(
                    Job {
                        session: SessionId::random(),
                        key_id: key_id.into(),
                        task: Task::Keygen {
                            scheme,
                            threshold: 2,
                        },
                        parties: all.to_vec(),
                        epoch: None,
                    },
                    |_| None,
                )
                .await;
            let Some(Outcome::KeyReady {
                public_key,
                chain_code: Some(cc),
                ..
            }) = o.values().next()
            else {
                panic!("{o:?}")
            };
            let cc: [u8; 32] = hex::decode(cc).unwrap().try_into().unwrap();
            let (child, _) = coffer_proto::hd::derive_public(
                scheme,
                &hex::decode(public_key).unwrap(),
                cc,
                &"m/0/0".parse().unwrap(),
            )
            .unwrap();
            child
        }

        /// A typed-data document with a verifying contract (EIP-712).
        const TYPED: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"spender","type":"address"},{"name":"value","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"Token","chainId":1,"verifyingContract":"0xdAC17F958D2ee523a2206206994597C13D831ec7"},"message":{"spender":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","value":"1000"}}"#;

        fn btc_script(addr: &str) -> String {
            hex::encode(btc::parse_address(addr, btc::Network::Regtest).unwrap())
        }

        /// Bitcoin Core's script interpreter on every input, with all spent outputs.
        fn consensus_verify(raw_hex: &str, spent: &[(String, u64)]) {
            let raw = hex::decode(raw_hex).unwrap();
            let scripts: Vec<Vec<u8>> =
                spent.iter().map(|(s, _)| hex::decode(s).unwrap()).collect();
            let utxos: Vec<bitcoinconsensus::Utxo> = scripts
                .iter()
                .zip(spent)
                .map(|(s, (_, v))| bitcoinconsensus::Utxo {
                    script_pubkey: s.as_ptr(),
                    script_pubkey_len: s.len() as u32,
                    value: *v as i64,
                })
                .collect();
            for (i, (s, (_, v))) in scripts.iter().zip(spent).enumerate() {
                bitcoinconsensus::verify_with_flags(
                    s,
                    *v,
                    &raw,
                    Some(&utxos),
                    i,
                    bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
                )
                .unwrap_or_else(|e| panic!("input {i}: {e:?}"));
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn signers_decode_chain_transactions_and_refuse_ones_that_contradict_the_intent() {
            std::env::set_var("COFFER_INSECURE_TEST_PRIMES", "1");
            let Setup {
                root,
                admins,
                keys,
                all,
                mut fake,
                ..
            } = setup("chains").await;
            let people = People {
                initiator: Identity::generate("ivan"),
                approvers: (0..3)
                    .map(|i| Identity::generate(&format!("approver{i}")))
                    .collect(),
            };
            let v1 = SignedPolicy::sign(
                policy(1, &people, u128::MAX / 2),
                &[admins[0].signing_key(), admins[1].signing_key()],
            );
            let ed = keygen(&mut fake, &all, "k-sol", Scheme::Ed25519).await;
            let ecdsa = keygen(&mut fake, &all, "k-ecdsa", Scheme::EcdsaSecp256k1).await;
            let tr = keygen(&mut fake, &all, "k-tr", Scheme::SchnorrBip340).await;

            // --- Solana: a system transfer, signed by threshold Ed25519.
            let mut c = Chain {
                fake: &mut fake,
                all: &all,
                keys: &keys,
                people: &people,
                policy: &v1,
                key_id: "k-sol",
                history: vec![],
            };
            let from = sol::address(&ed).unwrap();
            let (to, other) = (
                sol::address(&[7u8; 32]).unwrap(),
                sol::address(&[8u8; 32]).unwrap(),
            );
            let blockhash = sol::address(&[9u8; 32]).unwrap();
            let sol_tx = |to: &str, lamports: u64| {
                ChainTx::solana(&sol::TransferRequest {
                    from: from.clone(),
                    to: to.into(),
                    lamports,
                    recent_blockhash: blockhash.clone(),
                })
                .unwrap()
            };
            let honest = sol_tx(&to, 60);
            let i = c.intent("sol-1", "SOL", &to, 60, &honest);
            let sigs = c.sign_all(&i, 1).await;
            let done = honest.finalize(&ed, &sigs).unwrap();
            assert!(done.tx_id.len() >= 64, "{done:?}");
            c.refused_by_all(
                &c.intent("sol-2", "SOL", &to, 60, &sol_tx(&other, 60)),
                "destination",
            )
            .await;
            c.refused_by_all(
                &c.intent("sol-3", "SOL", &to, 60, &sol_tx(&to, 61)),
                "amount",
            )
            .await;
            // A transaction paid by another key than the vault's child key at the path.
            let stranger = ChainTx::solana(&sol::TransferRequest {
                from: other.clone(),
                to: to.clone(),
                lamports: 60,
                recent_blockhash: blockhash.clone(),
            })
            .unwrap();
            c.refused_by_all(&c.intent("sol-4", "SOL", &to, 60, &stranger), "source")
                .await;

            // --- Ethereum: EIP-1559, threshold ECDSA with its recovery id.
            let mut c = Chain {
                fake: &mut fake,
                all: &all,
                keys: &keys,
                people: &people,
                policy: &v1,
                key_id: "k-ecdsa",
                history: vec![],
            };
            let vault_addr = eth::address(&ecdsa).unwrap();
            let (to, other) = (
                "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            );
            let eth_tx = |to: &str, value: u128, data: String| {
                ChainTx::ethereum(&eth::TxRequest {
                    chain_id: 31337,
                    nonce: 0,
                    gas_limit: 100_000,
                    max_fee_per_gas: 2_000_000_000,
                    max_priority_fee_per_gas: 1_000_000_000,
                    to: to.into(),
                    value,
                    data,
                })
                .unwrap()
            };
            let honest = eth_tx(to, 10, String::new());
            let i = c.intent("eth-1", "ETH", to, 10, &honest);
            let sigs = c.sign_all(&i, 1).await;
            let done = honest.finalize(&ecdsa, &sigs).unwrap();
            assert!(done.signed_tx.starts_with("0x02"), "{done:?}");
            assert_eq!(eth::address(&ecdsa).unwrap(), vault_addr);
            c.refused_by_all(
                &c.intent("eth-2", "ETH", to, 10, &eth_tx(other, 10, String::new())),
                "destination",
            )
            .await;
            c.refused_by_all(
                &c.intent("eth-3", "ETH", to, 10, &eth_tx(to, 11, String::new())),
                "amount",
            )
            .await;
            // ERC-20: the policy sees the token and the real recipient in the calldata, not
            // the contract the transaction is sent to.
            let token = "0xdAC17F958D2ee523a2206206994597C13D831ec7";
            let call = hex::encode(eth::erc20_transfer_data(other, 5).unwrap());
            let erc = eth_tx(token, 0, call);
            let asset = format!("ERC20:{token}");
            c.refused_by_all(&c.intent("eth-4", &asset, token, 5, &erc), "destination")
                .await;
            c.refused_by_all(&c.intent("eth-5", "ETH", other, 5, &erc), "asset")
                .await;
            let i = c.intent("eth-6", &asset, other, 5, &erc);
            let sigs = c.sign_all(&i, 1).await;
            erc.finalize(&ecdsa, &sigs).unwrap();
            let mut ecdsa_history = c.history.clone();

            // --- Bitcoin P2WPKH (ECDSA) and P2TR (BIP340, BIP86 tweak): two inputs each, one
            // signing session per input.
            for (key_id, child, spend) in [
                ("k-ecdsa", &ecdsa, btc::Spend::P2wpkh),
                ("k-tr", &tr, btc::Spend::P2tr),
            ] {
                let mut c = Chain {
                    fake: &mut fake,
                    all: &all,
                    keys: &keys,
                    people: &people,
                    policy: &v1,
                    key_id,
                    history: vec![],
                };
                if key_id == "k-ecdsa" {
                    // The Ethereum receipts above are this key's chain.
                    c.history = ecdsa_history.clone();
                }
                let source = btc::address(spend, child, btc::Network::Regtest).unwrap();
                let script = btc_script(&source);
                let utxos = vec![
                    btc::Utxo {
                        txid: "11".repeat(32),
                        vout: 0,
                        value: 40_000,
                        script_pubkey: script.clone(),
                    },
                    btc::Utxo {
                        txid: "22".repeat(32),
                        vout: 1,
                        value: 30_000,
                        script_pubkey: script.clone(),
                    },
                ];
                let to = btc::p2wpkh_address(
                    &hex::decode(
                        "0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c",
                    )
                    .unwrap(),
                    btc::Network::Regtest,
                )
                .unwrap();
                let other = btc::p2tr_address(
                    &hex::decode(
                        "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115",
                    )
                    .unwrap(),
                    btc::Network::Regtest,
                )
                .unwrap();
                let btc_tx = |to: &str, amount: u64| {
                    ChainTx::bitcoin(&btc::SpendRequest {
                        network: btc::Network::Regtest,
                        spend,
                        source_key: hex::encode(child),
                        to: to.into(),
                        amount,
                        fee_rate: 2,
                        utxos: utxos.clone(),
                    })
                    .unwrap()
                };
                let honest = btc_tx(&to, 50_000);
                let d = honest.decode(child).unwrap();
                assert_eq!(d.signatures, 2, "both inputs are needed");
                let i = c.intent(&format!("{key_id}-btc-1"), "BTC", &to, 50_000, &honest);
                let sigs = c.sign_all(&i, 2).await;
                let done = honest.finalize(child, &sigs).unwrap();
                consensus_verify(
                    &done.signed_tx,
                    &utxos
                        .iter()
                        .map(|u| (u.script_pubkey.clone(), u.value))
                        .collect::<Vec<_>>(),
                );
                c.refused_by_all(
                    &c.intent(
                        &format!("{key_id}-btc-2"),
                        "BTC",
                        &to,
                        50_000,
                        &btc_tx(&other, 50_000),
                    ),
                    "destination",
                )
                .await;
                c.refused_by_all(
                    &c.intent(
                        &format!("{key_id}-btc-3"),
                        "BTC",
                        &to,
                        50_000,
                        &btc_tx(&to, 50_001),
                    ),
                    "amount",
                )
                .await;
                // A server asking for an input the transaction does not have.
                let i = c.intent(&format!("{key_id}-btc-4"), "BTC", &to, 50_000, &honest);
                let j = c.ask(&i, 2);
                let o = c.fake.run(j, |_| None).await;
                assert!(o.values().all(|o| refused(o, "input 2")), "{o:?}");
                if key_id == "k-ecdsa" {
                    ecdsa_history = c.history.clone();
                }
            }

            // --- Off-chain Ethereum messages: EIP-712 typed data and EIP-191, each allowed
            // only by a rule that names its kind (v1 has transfer rules only).
            let mut c = Chain {
                fake: &mut fake,
                all: &all,
                keys: &keys,
                people: &people,
                policy: &v1,
                key_id: "k-ecdsa",
                history: ecdsa_history,
            };
            let typed = ChainTx::typed_data(TYPED).unwrap();
            let contract = typed.decode(&ecdsa).unwrap().destination;
            let personal = ChainTx::personal_message(b"coffer owns this address").unwrap();
            let message = |c: &Chain, request: &str, kind, to: &str, tx: &ChainTx| {
                let mut i = c.intent(request, "ETH", to, 0, tx);
                i.kind = kind;
                i
            };
            let (eip712, eip191) = (IntentKind::Eip712, IntentKind::Eip191);
            let i = message(&c, "msg-1", eip712, &contract, &typed);
            c.refused_by_all(&i, "default deny").await;
            let allow = |name: &str, kind| Rule {
                name: name.into(),
                when: Conditions {
                    kinds: Some(vec![kind]),
                    ..Default::default()
                },
                action: Action::Allow {
                    approvals: vec![Requirement {
                        group: "approvers".into(),
                        min: 2,
                    }],
                    allow_self_approval: false,
                },
            };
            let mut p = policy(2, &people, u128::MAX / 2);
            p.rules.insert(0, allow("typed data", eip712));
            let v2 = SignedPolicy::sign(p, &[admins[0].signing_key(), admins[1].signing_key()]);
            c.policy = &v2;
            let sigs = c.sign_all(&i, 1).await;
            let done = typed.finalize(&ecdsa, &sigs).unwrap();
            // alloy recovers the vault's address from the wallet signature over the digest
            // it computes itself from the typed data.
            let parsed: alloy_dyn_abi::TypedData = serde_json::from_str(TYPED).unwrap();
            let digest = parsed.eip712_signing_hash().unwrap();
            assert_eq!(done.tx_id, format!("{digest:#x}"));
            let sig_bytes = hex::decode(done.signed_tx.trim_start_matches("0x")).unwrap();
            let sig = alloy_primitives::Signature::try_from(sig_bytes.as_slice()).unwrap();
            assert_eq!(
                sig.recover_address_from_prehash(&digest)
                    .unwrap()
                    .to_checksum(None),
                vault_addr
            );
            // EIP-191 is another action: the typed-data rule does not allow it.
            let i = message(&c, "msg-2", eip191, "eip191", &personal);
            c.refused_by_all(&i, "default deny").await;
            // A message intent carrying a transfer, or a transfer carrying a message: the
            // signers decode the kind themselves.
            let transfer = eth_tx(to, 10, String::new());
            c.refused_by_all(&message(&c, "msg-3", eip712, &contract, &transfer), "kind")
                .await;
            c.refused_by_all(&c.intent("msg-4", "ETH", &contract, 1, &typed), "kind")
                .await;
            let mut p = policy(3, &people, u128::MAX / 2);
            p.rules.insert(0, allow("personal messages", eip191));
            let v3 = SignedPolicy::sign(p, &[admins[0].signing_key(), admins[1].signing_key()]);
            c.policy = &v3;
            let sigs = c.sign_all(&i, 1).await;
            let done = personal.finalize(&ecdsa, &sigs).unwrap();
            let sig_bytes = hex::decode(done.signed_tx.trim_start_matches("0x")).unwrap();
            let sig = alloy_primitives::Signature::try_from(sig_bytes.as_slice()).unwrap();
            assert_eq!(
                sig.recover_address_from_msg(b"coffer owns this address")
                    .unwrap()
                    .to_checksum(None),
                vault_addr
            );
            // Under v3 the typed-data rule is gone: EIP-712 is refused again.
            let i = message(&c, "msg-5", eip712, &contract, &typed);
            c.refused_by_all(&i, "default deny").await;
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    /// Sends `order` to every signer and returns each one's answer (`None`: in force).
    async fn order_all(
        fake: &mut FakeServer,
        keys: &[NodeKey],
        order: &coffer_net::freeze::SignedFreezeOrder,
    ) -> HashMap<NodeKey, Option<String>> {
        for k in keys {
            fake.writers[k]
                .send(ToSigner::Freeze(Box::new(order.clone())))
                .unwrap();
        }
        let mut answers = HashMap::new();
        while answers.len() < keys.len() {
            let (from, frame) = tokio::time::timeout(Duration::from_secs(30), fake.inbox.recv())
                .await
                .expect("signers answer freeze orders")
                .unwrap();
            if let ToServer::FreezeAck {
                vault_id,
                seq,
                refused,
                ..
            } = frame
            {
                if vault_id == order.order.vault_id && seq == order.order.seq {
                    answers.insert(from, refused);
                }
            }
        }
        answers
    }

    fn all_refused(answers: &HashMap<NodeKey, Option<String>>, needle: &str) -> bool {
        answers
            .values()
            .all(|a| a.as_deref().is_some_and(|r| r.contains(needle)))
    }

    fn all_accepted(answers: &HashMap<NodeKey, Option<String>>) -> bool {
        answers.values().all(|a| a.is_none())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_vault_signs_nothing_until_an_admin_quorum_unfreezes_it() {
        use coffer_net::freeze::{FreezeKind, FreezeOrder, SignedFreezeOrder};
        let Setup {
            root,
            admins,
            nodes,
            keys,
            all,
            mut fake,
            server,
            ..
        } = setup("freeze").await;
        fake.keygen_ed25519("k-pol", &all).await;
        let people = People {
            initiator: Identity::generate("ivan"),
            approvers: (0..3)
                .map(|i| Identity::generate(&format!("approver{i}")))
                .collect(),
        };
        let (alice, bob) = (&people.approvers[0], &people.approvers[1]);
        let v1 = SignedPolicy::sign(
            policy(1, &people, 1000),
            &[admins[0].signing_key(), admins[1].signing_key()],
        );
        let pair = |a: usize, b: usize| vec![all[a], all[b]];
        let i1 = intent(&people, "r1", 60);
        let transfer = |parties| {
            job(Ask {
                parties,
                intent: &i1,
                initiator: &people.initiator,
                approvals: approvals(&[alice, bob], &i1),
                policy: &v1,
                history: &[],
            })
        };
        let raw = |parties: Vec<(u16, NodeKey)>| Job {
            session: SessionId::random(),
            key_id: "k-pol".into(),
            task: Task::Sign {
                message: b"raw".to_vec(),
                path: "m".into(),
            },
            parties,
            epoch: Some(0),
        };
        let order = |kind, vault: &str, key: &str, seq, reason: &str| {
            FreezeOrder::new(kind, vault, vec![key.to_string()], seq, reason, now())
        };
        let freeze1 = SignedFreezeOrder::freeze_by_server(
            &server,
            order(FreezeKind::Freeze, "v-1", "k-pol", 1, "critical alert"),
        )
        .unwrap();

        // A freeze signed by anyone but the pinned server key is refused: nothing frozen.
        let rogue = Identity::generate("rogue");
        let forged = SignedFreezeOrder::freeze_by_server(
            &rogue,
            order(FreezeKind::Freeze, "v-1", "k-pol", 1, "forged"),
        )
        .unwrap();
        let a = order_all(&mut fake, &keys, &forged).await;
        assert!(
            all_refused(&a, "not signed by the pinned server key"),
            "{a:?}"
        );
        assert!(nodes.iter().all(|n| n.frozen("k-pol").unwrap().is_none()));

        // The server's freeze is accepted by every signer.
        let a = order_all(&mut fake, &keys, &freeze1).await;
        assert!(all_accepted(&a), "{a:?}");

        // Frozen: a fully approved transfer, a raw signing and a presignature are refused
        // by the signers themselves, whatever the server asks.
        let o = fake.run(transfer(pair(0, 1)), |_| None).await;
        assert!(
            o.values().all(|o| refused(o, "vault v-1 is frozen")) && none_signed(&o),
            "{o:?}"
        );
        let o = fake.run(raw(pair(1, 2)), |_| None).await;
        assert!(o.values().all(|o| refused(o, "is frozen")), "{o:?}");
        let presign = Job {
            session: SessionId::random(),
            key_id: "k-pol".into(),
            task: Task::Presign { path: "m".into() },
            parties: pair(0, 2),
            epoch: Some(0),
        };
        let o = fake.run(presign, |_| None).await;
        assert!(o.values().all(|o| refused(o, "is frozen")), "{o:?}");

        // The same sequence again with another text is a replay: refused.
        let again = SignedFreezeOrder::freeze_by_server(
            &server,
            order(FreezeKind::Freeze, "v-1", "k-pol", 1, "other text"),
        )
        .unwrap();
        let a = order_all(&mut fake, &keys, &again).await;
        assert!(all_refused(&a, "not newer"), "{a:?}");

        // Nor can it release the key with a later freeze that leaves it out.
        let narrower = SignedFreezeOrder::freeze_by_server(
            &server,
            order(FreezeKind::Freeze, "v-1", "k-other", 2, "narrower"),
        )
        .unwrap();
        let a = order_all(&mut fake, &keys, &narrower).await;
        assert!(all_refused(&a, "does not name key k-pol"), "{a:?}");

        // The server cannot unfreeze: its signature is not an admin's.
        let mut by_server =
            SignedFreezeOrder::unsigned(order(FreezeKind::Unfreeze, "v-1", "k-pol", 2, "server"));
        by_server.add_admin_signature(&server).unwrap();
        let a = order_all(&mut fake, &keys, &by_server).await;
        assert!(all_refused(&a, "0 valid signatures"), "{a:?}");
        // One admin is below the quorum of two.
        let mut one =
            SignedFreezeOrder::unsigned(order(FreezeKind::Unfreeze, "v-1", "k-pol", 2, "one"));
        one.add_admin_signature(&admins[0]).unwrap();
        let a = order_all(&mut fake, &keys, &one).await;
        assert!(all_refused(&a, "1 valid signatures"), "{a:?}");
        // A quorum's unfreeze of another vault leaves this one frozen.
        let mut other =
            SignedFreezeOrder::unsigned(order(FreezeKind::Unfreeze, "v-2", "k-other", 1, "v-2"));
        other.add_admin_signature(&admins[0]).unwrap();
        other.add_admin_signature(&admins[2]).unwrap();
        let a = order_all(&mut fake, &keys, &other).await;
        assert!(all_accepted(&a), "{a:?}");
        // A quorum's unfreeze re-labelled for this vault no longer verifies.
        let mut moved = other.clone();
        moved.order.vault_id = "v-1".into();
        moved.order.key_ids = vec!["k-pol".into()];
        moved.order.seq = 2;
        let a = order_all(&mut fake, &keys, &moved).await;
        assert!(all_refused(&a, "valid signatures"), "{a:?}");
        let o = fake.run(transfer(pair(0, 1)), |_| None).await;
        assert!(o.values().all(|o| refused(o, "is frozen")), "{o:?}");

        // The freeze survives a restart: the store reopened from disk still holds it.
        let dir = root.join("s0");
        let reopened =
            SignerNode::open(&dir, &KeyFileSource::open(&dir.join("store.key"))).unwrap();
        let f = reopened.frozen("k-pol").unwrap().expect("still frozen");
        assert_eq!((f.vault_id.as_str(), f.seq), ("v-1", 1));
        assert_eq!(reopened.freeze_seq("v-1").unwrap(), 1);
        drop(reopened);

        // Two admins unfreeze: accepted; the transfer is signed.
        let mut unfreeze =
            SignedFreezeOrder::unsigned(order(FreezeKind::Unfreeze, "v-1", "k-pol", 2, "clear"));
        unfreeze.add_admin_signature(&admins[1]).unwrap();
        unfreeze.add_admin_signature(&admins[2]).unwrap();
        let a = order_all(&mut fake, &keys, &unfreeze).await;
        assert!(all_accepted(&a), "{a:?}");
        let j = transfer(pair(0, 1));
        let o = fake.run(j.clone(), |_| None).await;
        receipt(&j, &o, &keys);

        // Replaying the old freeze (a genuine server signature, sequence 1) is refused.
        let a = order_all(&mut fake, &keys, &freeze1).await;
        assert!(all_refused(&a, "not newer"), "{a:?}");
        assert!(nodes.iter().all(|n| n.frozen("k-pol").unwrap().is_none()));
        let o = fake.run(raw(pair(1, 2)), |_| None).await;
        assert!(
            o.values().all(|o| matches!(o, Outcome::Signed { .. })),
            "{o:?}"
        );

        let _ = std::fs::remove_dir_all(&root);
    }
}

/// Audit checkpoints: each signer co-signs a chain's head only if the entries it is shown
/// extend the head it co-signed before, so a server that rewrites its log (and re-hashes
/// every entry after the change) cannot get the new history co-signed.
mod audit_checkpoints {
    use super::*;
    use coffer_net::frames::CheckpointJob;
    use coffer_policy::audit::{checkpoint_bytes, zero_head, AuditEntry, AuditEvent};
    use coffer_policy::{PublicKey, Signature};

    /// A tenant name that is no valid blob name (signers must hash it).
    const TENANT: &str = "Acme Corp / EU #1";

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let e = AuditEntry::next(
                out.last(),
                AuditEvent {
                    tenant: TENANT.into(),
                    actor: "server".into(),
                    action: "transaction.created".into(),
                    object: format!("tx-{i}"),
                    detail: serde_json::json!({"amount": (100 * i).to_string()}),
                },
                1_700_000_000 + i as i64,
            );
            out.push(e);
        }
        out
    }

    /// Changes entry `seq`, then re-hashes it and every later entry, fixing the links.
    fn rewrite(c: &[AuditEntry], seq: usize) -> Vec<AuditEntry> {
        let mut out = c.to_vec();
        out[seq].detail = serde_json::json!({"amount": "1"});
        for i in seq..out.len() {
            if i > seq {
                out[i].prev = out[i - 1].hash.clone();
            }
            out[i].hash = out[i].compute_hash();
        }
        out
    }

    /// Asks `parties` to checkpoint `c[from..to]`.
    fn job(parties: Vec<(u16, NodeKey)>, c: &[AuditEntry], from: usize, to: usize) -> Job {
        Job {
            session: SessionId::random(),
            key_id: "audit".into(),
            task: Task::AuditCheckpoint(Box::new(CheckpointJob {
                tenant: TENANT.into(),
                from: from as u64,
                prev: if from == 0 {
                    zero_head()
                } else {
                    c[from - 1].hash.clone()
                },
                entries: c[from..to].to_vec(),
            })),
            parties,
            epoch: None,
        }
    }

    /// Every party co-signed `c`'s head at `n` entries, with a valid node-key signature.
    fn cosigned(o: &HashMap<NodeKey, Outcome>, c: &[AuditEntry], n: usize) -> bool {
        o.iter().all(|(k, out)| match out {
            Outcome::Checkpointed {
                entries,
                head,
                signature,
            } => {
                let sig: Signature = signature.parse().unwrap();
                *entries == n as u64
                    && *head == c[n - 1].hash
                    && PublicKey(k.0)
                        .verify(&checkpoint_bytes(TENANT, *entries, head), &sig)
                        .is_ok()
            }
            _ => false,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signers_cosign_only_heads_that_extend_what_they_cosigned() {
        let Setup {
            root,
            nodes,
            keys,
            all,
            mut fake,
            ..
        } = setup("audit").await;
        let c = chain(12);

        // A checkpoint at 5, then one at 9 from there: co-signed by all three.
        let o = fake.run(job(all.clone(), &c, 0, 5), |_| None).await;
        assert!(o.len() == 3 && cosigned(&o, &c, 5), "{o:?}");
        let o = fake.run(job(all.clone(), &c, 5, 9), |_| None).await;
        assert!(o.len() == 3 && cosigned(&o, &c, 9), "{o:?}");
        // Each signer keeps its state in a sealed blob named by a hash of the tenant.
        let held = coffer_signer::checkpoint::held(nodes[0].store(), TENANT).unwrap();
        assert_eq!((held.entries, held.head.as_str()), (9, c[8].hash.as_str()));

        // The server rewrites entry 3 and re-hashes everything after it: the chain is
        // consistent by itself, but does not extend what the signers co-signed.
        let forged = rewrite(&c, 3);
        assert!(coffer_policy::audit::verify_chain(&forged).is_ok());
        let o = fake.run(job(all.clone(), &forged, 0, 12), |_| None).await;
        assert_eq!(o.len(), 3);
        assert!(o.values().all(|o| refused(o, "rewritten")), "{o:?}");
        // Nor from the signers' own point, linked to the rewritten entry 8.
        let o = fake.run(job(all.clone(), &forged, 9, 12), |_| None).await;
        assert!(o.values().all(|o| refused(o, "rewritten")), "{o:?}");
        // Their state did not move.
        let held = coffer_signer::checkpoint::held(nodes[2].store(), TENANT).unwrap();
        assert_eq!(held.entries, 9);

        // A checkpoint going back (to 4): refused.
        let o = fake.run(job(all.clone(), &c, 0, 4), |_| None).await;
        assert!(
            o.values().all(|o| refused(o, "older than the checkpoint")),
            "{o:?}"
        );

        // Signer 2 misses the checkpoint at 11.
        let pair = vec![all[0], all[1]];
        let o = fake.run(job(pair, &c, 9, 11), |_| None).await;
        assert!(o.len() == 2 && cosigned(&o, &c, 11), "{o:?}");
        // Offered only the entries after 11, it asks for the ones it has not seen.
        let o = fake.run(job(all.clone(), &c, 11, 12), |_| None).await;
        assert!(
            refused(&o[&keys[2]], "send the entries from there"),
            "{o:?}"
        );
        // The longer segment, from where it stopped (9): everyone co-signs 12, signers 0
        // and 1 checking it against their head at 11.
        let o = fake.run(job(all.clone(), &c, 9, 12), |_| None).await;
        assert!(o.len() == 3 && cosigned(&o, &c, 12), "{o:?}");
        // A retry of the same checkpoint is co-signed again (nothing changes).
        let o = fake.run(job(all.clone(), &c, 9, 12), |_| None).await;
        assert!(o.len() == 3 && cosigned(&o, &c, 12), "{o:?}");

        // A segment with a broken hash is refused before any state is looked at.
        let mut altered = c.clone();
        altered.push(AuditEntry::next(
            c.last(),
            AuditEvent {
                tenant: TENANT.into(),
                actor: "server".into(),
                action: "x.y".into(),
                object: String::new(),
                detail: serde_json::json!({}),
            },
            1_800_000_000,
        ));
        altered[12].actor = "someone else".into();
        let o = fake.run(job(all.clone(), &altered, 12, 13), |_| None).await;
        assert!(
            o.values().all(|o| refused(o, "do not match its hash")),
            "{o:?}"
        );

        let _ = std::fs::remove_dir_all(&root);
    }
}
