//! Criterion benchmarks of Coffer's own code on the signing path, so that a regression in
//! review shows up as a number: envelope seal and open (signed, HPKE-sealed point-to-point
//! messages), the envelope wire codec, the key-share secret codec, policy evaluation and the
//! full signer-side `authorize` (initiator signature, approvals, policy), and appending to
//! the audit hash chain.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use coffer_net::envelope::{Envelope, ProtocolKind};
use coffer_net::Identity;
use coffer_policy::audit::{AuditEntry, AuditEvent};
use coffer_policy::{
    Action, Amount, Approval, Conditions, Context, Decision, Intent, Member, Policy, PublicKey,
    ReceiptBody, Requirement, Rule, Velocity,
};
use coffer_proto::ids::{PartyIndex, SessionId};
use coffer_proto::message::Message;
use coffer_proto::{ceremony, GroupParams, KeyShare, Scheme};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::SigningKey;

fn envelopes(c: &mut Criterion) {
    let (alice, bob) = (Identity::generate("alice"), Identity::generate("bob"));
    let mut grp = c.benchmark_group("envelope");
    for size in [256usize, 4096] {
        let m = Message {
            session: SessionId::from_bytes([7; 32]),
            sender: PartyIndex::unchecked(1),
            recipient: Some(PartyIndex::unchecked(2)),
            round: 2,
            payload: vec![0x5a; size],
        };
        let sealed = Envelope::seal(
            &alice,
            "k-bench",
            ProtocolKind::Sign,
            &m,
            Some(&bob.public()),
        )
        .unwrap();
        let wire = sealed.to_bytes();
        grp.bench_function(format!("seal p2p {size} B"), |b| {
            b.iter(|| {
                Envelope::seal(
                    &alice,
                    "k-bench",
                    ProtocolKind::Sign,
                    &m,
                    Some(&bob.public()),
                )
                .unwrap()
            })
        });
        grp.bench_function(format!("open p2p {size} B"), |b| {
            b.iter(|| {
                sealed
                    .open(&bob, PartyIndex::unchecked(2), &alice.public())
                    .unwrap()
            })
        });
        grp.bench_function(format!("decode wire {size} B"), |b| {
            b.iter(|| Envelope::from_bytes(&wire).unwrap())
        });
        grp.bench_function(format!("encode wire {size} B"), |b| {
            b.iter(|| sealed.to_bytes())
        });
    }
    grp.finish();
}

fn share_codec(c: &mut Criterion) {
    let g = GroupParams::new(2, 3).unwrap();
    let mut grp = c.benchmark_group("share codec");
    let ecdsa = ceremony::keygen_with_primes(
        Scheme::EcdsaSecp256k1,
        g,
        coffer_testkit::test_primes().take(3).unwrap(),
    )
    .unwrap();
    let ed = ceremony::keygen_with_primes(Scheme::Ed25519, g, Vec::new()).unwrap();
    for (name, share) in [("ecdsa", &ecdsa[0]), ("ed25519", &ed[0])] {
        let bytes = share.encode_secret().unwrap();
        grp.bench_function(format!("encode {name}"), |b| {
            b.iter(|| share.encode_secret().unwrap())
        });
        grp.bench_function(format!("decode {name}"), |b| {
            b.iter(|| KeyShare::decode_secret(&bytes).unwrap())
        });
    }
    grp.finish();
}

const NOW: i64 = 1_800_000_000;

fn sk(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn pk(i: u8) -> PublicKey {
    coffer_policy::public_key_of(&sk(i))
}

/// A realistic policy: ten rules (a velocity guard, destination lists, amount tiers), the
/// last one matching; approvers 10..15, initiator 1.
fn policy() -> Policy {
    let member = |i: u8| Member {
        name: format!("m{i}"),
        key: pk(i),
    };
    let allow = |min| Action::Allow {
        approvals: vec![Requirement {
            group: "approvers".into(),
            min,
        }],
        allow_self_approval: false,
    };
    let mut rules = vec![Rule {
        name: "velocity".into(),
        when: Conditions {
            velocity: Some(Velocity {
                window_secs: 86_400,
                max_sum: Some(Amount(u128::from(u64::MAX))),
                max_count: Some(10_000),
            }),
            ..Conditions::default()
        },
        action: Action::Block,
    }];
    for i in 0..8 {
        rules.push(Rule {
            name: format!("tier {i}"),
            when: Conditions {
                assets: Some(vec!["ETH".into(), "SOL".into()]),
                destinations_not: Some((0..20).map(|d| format!("blocked-{i}-{d}")).collect()),
                amount_min: Some(Amount(1_000_000 * (i + 1))),
                ..Conditions::default()
            },
            action: allow(3),
        });
    }
    rules.push(Rule {
        name: "default".into(),
        when: Conditions::default(),
        action: allow(2),
    });
    Policy {
        vault_id: "v-bench".into(),
        version: 1,
        groups: [
            ("approvers".to_string(), (10..15).map(member).collect()),
            ("initiators".to_string(), vec![member(1)]),
        ]
        .into_iter()
        .collect(),
        initiator_groups: vec!["initiators".into()],
        rules,
    }
}

fn intent() -> Intent {
    Intent {
        tenant: "t-bench".into(),
        vault_id: "v-bench".into(),
        key_id: "k-bench".into(),
        request_id: "req-bench".into(),
        wallet_id: "w-1".into(),
        path: "m/0/0".into(),
        asset: "BTC".into(),
        amount: Amount(500),
        destination: "bc1qdestination".into(),
        memo: String::new(),
        initiator: pk(1),
        created_at: NOW - 10,
        expires_at: NOW + 3600,
        transaction: None,
        kind: Default::default(),
    }
}

fn policy_eval(c: &mut Criterion) {
    let p = policy();
    let i = intent();
    // A day of history: 200 receipts of this wallet and others.
    let history: Vec<ReceiptBody> = (0..200)
        .map(|n| {
            let mut r = intent();
            r.wallet_id = format!("w-{}", n % 3);
            r.request_id = format!("r-{n}");
            ReceiptBody::for_intent(&r, n, [0; 32], NOW - 60 * i64::try_from(n).unwrap())
        })
        .collect();
    let ctx = Context {
        now: NOW,
        history: &history,
    };
    let sig = coffer_policy::sign_initiation(&sk(1), &i);
    let approvals: Vec<Approval> = [10u8, 11]
        .iter()
        .map(|k| Approval::sign(&sk(*k), i.hash(), Decision::Approve, NOW + 600))
        .collect();
    let mut grp = c.benchmark_group("policy");
    grp.bench_function("evaluate (10 rules, 200 receipts)", |b| {
        b.iter(|| coffer_policy::evaluate(&p, &i, &ctx))
    });
    grp.bench_function("authorize (signatures, approvals, policy)", |b| {
        b.iter(|| coffer_policy::authorize(&p, &i, &sig, &approvals, &ctx).unwrap())
    });
    grp.bench_function("intent hash", |b| b.iter(|| i.hash()));
    grp.finish();
}

fn audit_append(c: &mut Criterion) {
    let event = || AuditEvent {
        tenant: "t-bench".into(),
        actor: "server".into(),
        action: "transaction.signed".into(),
        object: "tx-0123456789abcdef".into(),
        detail: serde_json::json!({"amount": "500", "asset": "BTC", "rule": "default"}),
    };
    let head = AuditEntry::next(None, event(), NOW);
    let mut grp = c.benchmark_group("audit");
    grp.bench_function("append one entry", |b| {
        b.iter_batched(
            event,
            |e| AuditEntry::next(Some(&head), e, NOW),
            BatchSize::SmallInput,
        )
    });
    let chain: Vec<AuditEntry> = (0..1000).fold(Vec::new(), |mut v, n| {
        let e = AuditEntry::next(v.last(), event(), NOW + n);
        v.push(e);
        v
    });
    grp.bench_function("verify 1000 entries", |b| {
        b.iter(|| coffer_policy::audit::verify_chain(&chain).unwrap())
    });
    grp.finish();
}

criterion_group!(benches, envelopes, share_codec, policy_eval, audit_append);
criterion_main!(benches);
