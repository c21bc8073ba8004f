//! Shared fixtures and proptest strategies for the unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use crate::*;

/// Deterministic key number `i`.
pub fn sk(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// Public key number `i`.
pub fn pk(i: u8) -> PublicKey {
    public_key_of(&sk(i))
}

pub const T0: i64 = 1_700_000_000;

/// A valid intent by key 1.
pub fn intent() -> Intent {
    Intent {
        tenant: "acme".into(),
        vault_id: "vault-1".into(),
        key_id: "key-1".into(),
        request_id: "req-1".into(),
        wallet_id: "w1".into(),
        path: "m/0/3".into(),
        asset: "BTC".into(),
        amount: Amount(100),
        destination: "bc1dest".into(),
        memo: "rent".into(),
        initiator: pk(1),
        created_at: T0,
        expires_at: T0 + 3600,
        transaction: None,
        kind: Default::default(),
    }
}

fn members(keys: &[u8]) -> Vec<Member> {
    keys.iter()
        .map(|&k| Member {
            name: format!("m{k}"),
            key: pk(k),
        })
        .collect()
}

pub fn req(group: &str, min: u16) -> Requirement {
    Requirement {
        group: group.into(),
        min,
    }
}

pub fn allow(reqs: Vec<Requirement>) -> Action {
    Action::Allow {
        approvals: reqs,
        allow_self_approval: false,
    }
}

/// Initiators 1, 2; approvers 11, 12, 13; treasury 21, 22. Up to 1000: one approver;
/// above: two approvers and one of treasury.
pub fn policy() -> Policy {
    let groups = BTreeMap::from([
        ("initiators".to_string(), members(&[1, 2])),
        ("approvers".to_string(), members(&[11, 12, 13])),
        ("treasury".to_string(), members(&[21, 22])),
    ]);
    let small = Conditions {
        amount_max: Some(Amount(1000)),
        ..Conditions::default()
    };
    Policy {
        vault_id: "vault-1".into(),
        version: 1,
        groups,
        initiator_groups: vec!["initiators".into()],
        rules: vec![
            Rule {
                name: "small".into(),
                when: small,
                action: allow(vec![req("approvers", 1)]),
            },
            Rule {
                name: "large".into(),
                when: Conditions::default(),
                action: allow(vec![req("approvers", 2), req("treasury", 1)]),
            },
        ],
    }
}

fn name() -> impl Strategy<Value = String> {
    "[ab]{0,2}"
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        (0u128..300).prop_map(Amount),
        any::<u128>().prop_map(Amount)
    ]
}

fn key() -> impl Strategy<Value = PublicKey> {
    (1u8..5).prop_map(pk)
}

fn list() -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::of(proptest::collection::vec(name(), 0..3))
}

fn conditions() -> impl Strategy<Value = Conditions> {
    let velocity = (
        prop_oneof![0u64..1000, any::<u64>()],
        proptest::option::of(amount()),
        proptest::option::of(0u32..4),
    )
        .prop_map(|(window_secs, max_sum, max_count)| Velocity {
            window_secs,
            max_sum,
            max_count,
        });
    let window = (
        proptest::collection::vec(0u8..9, 0..3),
        0u16..1500,
        0u16..1500,
    )
        .prop_map(|(days, start_minute, end_minute)| TimeWindow {
            days,
            start_minute,
            end_minute,
        });
    (
        (
            list(),
            proptest::option::of(amount()),
            proptest::option::of(amount()),
        ),
        (
            proptest::option::of(velocity),
            list(),
            list(),
            proptest::option::of(window),
            list(),
        ),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(vec![
                crate::IntentKind::Transfer,
                crate::IntentKind::Eip712,
                crate::IntentKind::Eip191,
            ]),
            0..3,
        )),
    )
        .prop_map(
            |(
                (assets, amount_min, amount_max),
                (velocity, destinations, destinations_not, time_window, initiator_groups),
                kinds,
            )| {
                Conditions {
                    kinds,
                    assets,
                    amount_min,
                    amount_max,
                    velocity,
                    destinations,
                    destinations_not,
                    time_window,
                    initiator_groups,
                }
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    let reqs = proptest::collection::vec(
        (name(), 0u16..4).prop_map(|(group, min)| Requirement { group, min }),
        0..3,
    );
    prop_oneof![
        Just(Action::Block),
        (reqs, any::<bool>()).prop_map(|(approvals, allow_self_approval)| Action::Allow {
            approvals,
            allow_self_approval
        }),
    ]
}

/// Arbitrary (often structurally invalid) policies over small alphabets.
pub fn arb_policy() -> impl Strategy<Value = Policy> {
    let member = (name(), key()).prop_map(|(name, key)| Member { name, key });
    let groups =
        proptest::collection::btree_map(name(), proptest::collection::vec(member, 0..4), 0..4);
    let rule = (name(), conditions(), action()).prop_map(|(name, when, action)| Rule {
        name,
        when,
        action,
    });
    (
        name(),
        any::<u64>(),
        groups,
        proptest::collection::vec(name(), 0..3),
        proptest::collection::vec(rule, 0..5),
    )
        .prop_map(
            |(vault_id, version, groups, initiator_groups, rules)| Policy {
                vault_id,
                version,
                groups,
                initiator_groups,
                rules,
            },
        )
}

/// Arbitrary intents over small alphabets.
pub fn arb_intent() -> impl Strategy<Value = Intent> {
    (
        (name(), name(), name(), name()),
        (amount(), name(), key()),
        (prop_oneof![0i64..10_000, any::<i64>()], any::<i64>()),
    )
        .prop_map(
            |(
                (vault_id, wallet_id, asset, destination),
                (amount, memo, initiator),
                (created_at, expires_at),
            )| Intent {
                tenant: "t".into(),
                vault_id,
                key_id: "k".into(),
                request_id: "r".into(),
                wallet_id,
                path: "m/0".into(),
                asset,
                amount,
                destination,
                memo,
                initiator,
                created_at,
                expires_at,
                transaction: None,
                kind: Default::default(),
            },
        )
}

/// Arbitrary receipt bodies over the same alphabets.
pub fn arb_body() -> impl Strategy<Value = ReceiptBody> {
    (
        name(),
        name(),
        amount(),
        prop_oneof![0i64..10_000, any::<i64>()],
        any::<u64>(),
    )
        .prop_map(|(wallet_id, asset, amount, at, seq)| ReceiptBody {
            key_id: "k".into(),
            seq,
            prev: [0; 32],
            intent_hash: [seq as u8; 32],
            request_id: "r".into(),
            wallet_id,
            asset,
            amount,
            at,
        })
}
