//! The evaluator: which rule decides an intent, whether its approvals are there, and
//! `authorize`, everything a signer checks before signing, in one call.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::intent::verify_initiation;
use crate::policy::{Action, Conditions, Requirement, TimeWindow, Velocity};
use crate::{Approval, Decision, Intent, Policy, PolicyError, PublicKey, ReceiptBody, Signature};

/// What the evaluator sees besides the policy and the intent.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The time of the decision, unix seconds.
    pub now: i64,
    /// The key's receipts covering the lookback window (any wallet; filtered here).
    pub history: &'a [ReceiptBody],
}

/// The policy's decision on an intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Verdict {
    /// A rule allows it once the approvals are there.
    Allow {
        /// The matching rule.
        rule: String,
        /// Its approval requirements.
        approvals: Vec<Requirement>,
        /// Whether the initiator's own approval counts.
        allow_self_approval: bool,
    },
    /// Blocked.
    Block {
        /// The blocking rule; `None` when no rule matched (default deny).
        rule: Option<String>,
    },
}

/// How the approvals measure up to the verdict's requirements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReport {
    /// Every requirement met and no rejection by a member of a required group (false for a
    /// Block verdict).
    pub satisfied: bool,
    /// (group, have, need) per requirement, in the rule's order.
    pub counted: Vec<(String, u16, u16)>,
    /// Members of required groups with a valid, unexpired rejection.
    pub rejected_by: Vec<PublicKey>,
}

/// The outcome of a successful `authorize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorized {
    /// The allowing rule.
    pub rule: String,
    /// The approvals that satisfied it.
    pub report: ApprovalReport,
}

/// (sum, count) of the transfer receipts (a message signature has amount zero and moves
/// nothing, so it is not counted) with `at >= since` for this wallet and asset; the sum
/// saturates at `u128::MAX`, the count at `u32::MAX`.
pub fn window_totals(
    history: &[ReceiptBody],
    wallet_id: &str,
    asset: &str,
    since: i64,
) -> (u128, u32) {
    history
        .iter()
        .filter(|r| r.at >= since && r.wallet_id == wallet_id && r.asset == asset && r.amount.0 > 0)
        .fold((0u128, 0u32), |(s, c), r| {
            (s.saturating_add(r.amount.0), c.saturating_add(1))
        })
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// How far back a signer needs receipts: `min(now - max_window_secs, intent.created_at)`
/// (the velocity windows, and the intent's own lifetime so that a replay of it shows up).
pub fn lookback_since(policy: &Policy, intent: &Intent, now: i64) -> i64 {
    now.saturating_sub(secs(policy.max_window_secs()))
        .min(intent.created_at)
}

/// Holds when this request would push the window's totals over a limit.
fn velocity_exceeded(v: &Velocity, intent: &Intent, ctx: &Context) -> bool {
    let since = ctx.now.saturating_sub(secs(v.window_secs));
    let (sum, count) = window_totals(ctx.history, &intent.wallet_id, &intent.asset, since);
    let over_sum = v
        .max_sum
        .is_some_and(|max| sum.checked_add(intent.amount.0).is_none_or(|s| s > max.0));
    let over_count = v
        .max_count
        .is_some_and(|max| u64::from(count) + 1 > u64::from(max));
    over_sum || over_count
}

/// Weekday (0 = Monday) and minute of the day of a unix time, UTC. 1970-01-01 was a
/// Thursday (3).
fn weekday_minute(t: i64) -> (u8, u16) {
    let weekday = (t.div_euclid(86_400) + 3).rem_euclid(7);
    let minute = t.rem_euclid(86_400) / 60;
    (weekday as u8, minute as u16)
}

fn inside(w: &TimeWindow, now: i64) -> bool {
    let (day, m) = weekday_minute(now);
    let (s, e) = (w.start_minute, w.end_minute);
    let in_minutes = if s < e {
        s <= m && m < e
    } else {
        s > e && (m >= s || m < e)
    };
    (w.days.is_empty() || w.days.contains(&day)) && in_minutes
}

fn holds(policy: &Policy, c: &Conditions, intent: &Intent, ctx: &Context) -> bool {
    let in_list = |l: &Option<Vec<String>>, v: &str| l.as_ref().map(|l| l.iter().any(|x| x == v));
    let kind_ok = match &c.kinds {
        None => intent.kind.is_transfer(),
        Some(kinds) => kinds.contains(&intent.kind),
    };
    kind_ok
        && in_list(&c.assets, &intent.asset) != Some(false)
        && c.amount_min.is_none_or(|min| intent.amount >= min)
        && c.amount_max.is_none_or(|max| intent.amount <= max)
        && in_list(&c.destinations, &intent.destination) != Some(false)
        && in_list(&c.destinations_not, &intent.destination) != Some(true)
        && c.time_window.as_ref().is_none_or(|w| inside(w, ctx.now))
        && c.initiator_groups
            .as_ref()
            .is_none_or(|gs| gs.iter().any(|g| policy.is_member(g, &intent.initiator)))
        && c.velocity
            .as_ref()
            .is_none_or(|v| velocity_exceeded(v, intent, ctx))
}

/// The first rule whose conditions all hold decides; no match blocks.
pub fn evaluate(policy: &Policy, intent: &Intent, ctx: &Context) -> Verdict {
    for rule in &policy.rules {
        if holds(policy, &rule.when, intent, ctx) {
            return match &rule.action {
                Action::Allow {
                    approvals,
                    allow_self_approval,
                } => Verdict::Allow {
                    rule: rule.name.clone(),
                    approvals: approvals.clone(),
                    allow_self_approval: *allow_self_approval,
                },
                Action::Block => Verdict::Block {
                    rule: Some(rule.name.clone()),
                },
            };
        }
    }
    Verdict::Block { rule: None }
}

/// Counts the approvals against the verdict's requirements. An approval for another intent
/// or with a bad signature is an error; an expired one (`expires_at <= now`) is ignored;
/// each approver counts once per group; the initiator (by key, or by member name under
/// another key) counts only with `allow_self_approval`; a rejection by a member of a
/// required group fails the report.
pub fn check_approvals(
    policy: &Policy,
    verdict: &Verdict,
    intent: &Intent,
    approvals: &[Approval],
    now: i64,
) -> Result<ApprovalReport, PolicyError> {
    check_approvals_with_extra(policy, verdict, intent, approvals, now, 0)
}

/// [`check_approvals`] that also asks for `extra` approvals beyond the rule's: the report is
/// satisfied only when, besides every requirement, at least the sum of the requirements'
/// minimums plus `extra` distinct approvers (each counted once, members of a required group
/// or, under a rule that requires none, of any group; same initiator rules) approved. The server uses it when an alert's automatic
/// response asks for an extra approval; signers, bound to the signed policy, never see it
/// (it only ever makes the server stricter).
pub fn check_approvals_with_extra(
    policy: &Policy,
    verdict: &Verdict,
    intent: &Intent,
    approvals: &[Approval],
    now: i64,
    extra: u16,
) -> Result<ApprovalReport, PolicyError> {
    let hash = intent.hash();
    let (mut approve, mut reject) = (BTreeSet::new(), BTreeSet::new());
    for a in approvals {
        if a.intent_hash != hash {
            return Err(PolicyError::ApprovalForOtherIntent {
                approver: a.approver,
            });
        }
        a.verify()?;
        if a.expires_at > now {
            match a.decision {
                Decision::Approve => approve.insert(a.approver),
                Decision::Reject => reject.insert(a.approver),
            };
        }
    }
    let Verdict::Allow {
        approvals: reqs,
        allow_self_approval,
        ..
    } = verdict
    else {
        return Ok(ApprovalReport {
            satisfied: false,
            counted: Vec::new(),
            rejected_by: Vec::new(),
        });
    };
    if !allow_self_approval {
        approve.remove(&intent.initiator);
        // The same person under another key (same member name in the policy) is the
        // initiator too.
        let initiator_names = policy.names_of(&intent.initiator);
        if !initiator_names.is_empty() {
            approve.retain(|k| policy.names_of(k).is_disjoint(&initiator_names));
        }
    }
    let required = |k: &PublicKey| reqs.iter().any(|r| policy.is_member(&r.group, k));
    let rejected_by: Vec<PublicKey> = reject.into_iter().filter(|k| required(k)).collect();
    let counted: Vec<(String, u16, u16)> = reqs
        .iter()
        .map(|r| {
            let have = approve
                .iter()
                .filter(|k| policy.is_member(&r.group, k))
                .count();
            (
                r.group.clone(),
                u16::try_from(have).unwrap_or(u16::MAX),
                r.min,
            )
        })
        .collect();
    let mut satisfied =
        rejected_by.is_empty() && counted.iter().all(|(_, have, need)| have >= need);
    if extra > 0 {
        // Under a rule that asks for no approvals, any member of the policy's groups may
        // give the extra one.
        let counts = |k: &&PublicKey| {
            if reqs.is_empty() {
                policy.is_any_member(k)
            } else {
                required(k)
            }
        };
        let distinct = approve.iter().filter(counts).count();
        let need: usize =
            reqs.iter().map(|r| usize::from(r.min)).sum::<usize>() + usize::from(extra);
        satisfied &= distinct >= need;
    }
    Ok(ApprovalReport {
        satisfied,
        counted,
        rejected_by,
    })
}

/// Everything a signer checks before signing: the policy's structure, the intent's
/// structure and expiry, the vault, the initiator's signature and right to initiate, no
/// replay (the intent's hash is not in `ctx.history`), the verdict, and the approvals.
pub fn authorize(
    policy: &Policy,
    intent: &Intent,
    initiator_signature: &Signature,
    approvals: &[Approval],
    ctx: &Context,
) -> Result<Authorized, PolicyError> {
    policy.check()?;
    intent.validate()?;
    if intent.expires_at <= ctx.now {
        return Err(PolicyError::IntentExpired {
            expires_at: intent.expires_at,
            now: ctx.now,
        });
    }
    if policy.vault_id != intent.vault_id {
        return Err(PolicyError::VaultMismatch {
            policy: policy.vault_id.clone(),
            intent: intent.vault_id.clone(),
        });
    }
    verify_initiation(intent, initiator_signature)?;
    let initiator = &intent.initiator;
    if !policy.may_initiate(initiator) {
        return Err(PolicyError::InitiatorNotAllowed {
            initiator: *initiator,
        });
    }
    let hash = intent.hash();
    if let Some(r) = ctx.history.iter().find(|r| r.intent_hash == hash) {
        return Err(PolicyError::Replay { seq: r.seq });
    }
    let verdict = evaluate(policy, intent, ctx);
    let rule = match &verdict {
        Verdict::Block { rule } => return Err(PolicyError::Blocked { rule: rule.clone() }),
        Verdict::Allow { rule, .. } => rule.clone(),
    };
    let report = check_approvals(policy, &verdict, intent, approvals, ctx.now)?;
    if !report.satisfied {
        let missing = report
            .counted
            .iter()
            .filter(|(_, have, need)| have < need)
            .cloned()
            .collect();
        return Err(PolicyError::ApprovalsMissing {
            missing,
            rejected_by: report.rejected_by,
        });
    }
    Ok(Authorized { rule, report })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::*;
    use crate::{Amount, Member, Rule};
    use proptest::prelude::*;

    fn ctx(now: i64, history: &[ReceiptBody]) -> Context<'_> {
        Context { now, history }
    }

    fn rule(name: &str, when: Conditions, action: Action) -> Rule {
        Rule {
            name: name.into(),
            when,
            action,
        }
    }

    fn body(wallet: &str, asset: &str, amount: u128, at: i64) -> ReceiptBody {
        let mut i = intent();
        (i.wallet_id, i.asset, i.amount) = (wallet.into(), asset.into(), Amount(amount));
        ReceiptBody::for_intent(&i, 0, [0; 32], at)
    }

    /// The policy with `when -> block "guard"` in front of its rules.
    fn guarded(when: Conditions) -> Policy {
        let mut p = policy();
        p.rules.insert(0, rule("guard", when, Action::Block));
        p
    }

    fn rule_of(v: Verdict) -> Option<String> {
        match v {
            Verdict::Allow { rule, .. } => Some(rule),
            Verdict::Block { rule } => rule.map(|r| format!("block:{r}")),
        }
    }

    fn decide(p: &Policy, i: &Intent, now: i64, h: &[ReceiptBody]) -> Option<String> {
        rule_of(evaluate(p, i, &ctx(now, h)))
    }

    #[test]
    fn first_match_wins_and_default_deny() {
        let p = policy();
        let mut i = intent();
        let v = evaluate(&p, &i, &ctx(T0, &[]));
        assert_eq!(
            v,
            Verdict::Allow {
                rule: "small".into(),
                approvals: vec![req("approvers", 1)],
                allow_self_approval: false
            }
        );
        i.amount = Amount(1001);
        assert_eq!(decide(&p, &i, T0, &[]).unwrap(), "large");
        let btc = Conditions {
            assets: Some(vec!["BTC".into()]),
            ..Conditions::default()
        };
        assert_eq!(decide(&guarded(btc), &i, T0, &[]).unwrap(), "block:guard");
        let mut eth_only = policy();
        for r in &mut eth_only.rules {
            r.when.assets = Some(vec!["ETH".into()]);
        }
        assert_eq!(
            evaluate(&eth_only, &i, &ctx(T0, &[])),
            Verdict::Block { rule: None }
        );
        eth_only.rules.clear();
        assert_eq!(
            evaluate(&eth_only, &i, &ctx(T0, &[])),
            Verdict::Block { rule: None }
        );
    }

    #[test]
    fn simple_conditions() {
        let i = intent(); // 100 BTC to bc1dest by key 1
        let blocked =
            |when: Conditions| decide(&guarded(when), &i, T0, &[]) == Some("block:guard".into());
        let c = Conditions::default;
        let list = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(blocked(c()));
        assert!(blocked(Conditions {
            amount_min: Some(Amount(100)),
            ..c()
        }));
        assert!(!blocked(Conditions {
            amount_min: Some(Amount(101)),
            ..c()
        }));
        assert!(blocked(Conditions {
            amount_max: Some(Amount(100)),
            ..c()
        }));
        assert!(!blocked(Conditions {
            amount_max: Some(Amount(99)),
            ..c()
        }));
        assert!(!blocked(Conditions {
            assets: list(&["ETH"]),
            ..c()
        }));
        assert!(blocked(Conditions {
            destinations: list(&["x", "bc1dest"]),
            ..c()
        }));
        assert!(!blocked(Conditions {
            destinations: list(&[]),
            ..c()
        }));
        assert!(!blocked(Conditions {
            destinations_not: list(&["bc1dest"]),
            ..c()
        }));
        assert!(blocked(Conditions {
            destinations_not: list(&["other"]),
            ..c()
        }));
        assert!(blocked(Conditions {
            initiator_groups: list(&["approvers", "initiators"]),
            ..c()
        }));
        assert!(!blocked(Conditions {
            initiator_groups: list(&["treasury"]),
            ..c()
        }));
        // All present conditions must hold.
        assert!(!blocked(Conditions {
            amount_min: Some(Amount(1)),
            assets: list(&["ETH"]),
            ..c()
        }));
        // Kinds: absent matches transfers only; present, the kinds named.
        assert!(blocked(Conditions {
            kinds: Some(vec![crate::IntentKind::Transfer]),
            ..c()
        }));
        assert!(!blocked(Conditions {
            kinds: Some(vec![crate::IntentKind::Eip712]),
            ..c()
        }));
    }

    #[test]
    fn a_message_is_matched_only_by_a_rule_that_names_its_kind() {
        use crate::IntentKind::{Eip191, Eip712};
        let mut m = intent();
        (m.kind, m.amount, m.transaction) = (Eip712, Amount(0), Some("{}".into()));
        // The transfer rules of the test policy (no `kinds`) never match it: default deny.
        let p = policy();
        assert_eq!(decide(&p, &m, T0, &[]), None);
        let mut p = policy();
        p.rules.insert(
            0,
            rule(
                "typed-data",
                Conditions {
                    kinds: Some(vec![Eip712]),
                    destinations: Some(vec![m.destination.clone()]),
                    ..Conditions::default()
                },
                Action::Allow {
                    approvals: vec![],
                    allow_self_approval: false,
                },
            ),
        );
        p.check().unwrap();
        assert_eq!(decide(&p, &m, T0, &[]), Some("typed-data".into()));
        // An EIP-191 message is another action: the EIP-712 rule does not allow it.
        m.kind = Eip191;
        assert_eq!(decide(&p, &m, T0, &[]), None);
        // A transfer is not matched by the message rule either.
        let t = intent();
        assert_ne!(decide(&p, &t, T0, &[]), Some("typed-data".into()));
        // An empty list is refused (it would match nothing, silently).
        p.rules[0].when.kinds = Some(vec![]);
        assert!(p.check().is_err());
    }

    #[test]
    fn message_receipts_do_not_count_towards_velocity() {
        let p = velocity(None, Some(1));
        let h = [body("w1", "BTC", 0, T0 - 10)];
        assert_eq!(window_totals(&h, "w1", "BTC", T0 - 100), (0, 0));
        assert_ne!(decide(&p, &intent(), T0, &h), Some("block:guard".into()));
    }

    fn velocity(sum: Option<u128>, count: Option<u32>) -> Policy {
        let v = Velocity {
            window_secs: 3600,
            max_sum: sum.map(Amount),
            max_count: count,
        };
        guarded(Conditions {
            velocity: Some(v),
            ..Conditions::default()
        })
    }

    #[test]
    fn velocity_sum_boundary() {
        let p = velocity(Some(1000), None);
        let h = [
            body("w1", "BTC", 500, T0 - 10),
            body("w1", "BTC", 400, T0 - 3600),
        ];
        let mut i = intent();
        assert_eq!(decide(&p, &i, T0, &h).unwrap(), "small"); // 900 + 100 = 1000: allowed
        i.amount = Amount(101);
        assert_eq!(decide(&p, &i, T0, &h).unwrap(), "block:guard");
        // Overflowing sums exceed any limit.
        let huge = [body("w1", "BTC", u128::MAX, T0)];
        let p = velocity(Some(u128::MAX), None);
        assert_eq!(decide(&p, &i, T0, &huge).unwrap(), "block:guard");
    }

    #[test]
    fn velocity_count_boundary() {
        let p = velocity(None, Some(2));
        let one = [body("w1", "BTC", 1, T0)];
        let two = [body("w1", "BTC", 1, T0), body("w1", "BTC", 1, T0 - 5)];
        assert_eq!(decide(&p, &intent(), T0, &one).unwrap(), "small");
        assert_eq!(decide(&p, &intent(), T0, &two).unwrap(), "block:guard");
        assert_eq!(
            decide(&velocity(None, Some(0)), &intent(), T0, &[]).unwrap(),
            "block:guard"
        );
    }

    #[test]
    fn velocity_counts_same_wallet_asset_and_window_only() {
        let h = [
            body("w1", "BTC", 1, T0 - 3600),
            body("w2", "BTC", 10, T0),
            body("w1", "ETH", 100, T0),
            body("w1", "BTC", 1000, T0 - 3601),
            body("w1", "BTC", 5, T0 + 10),
        ];
        assert_eq!(window_totals(&h, "w1", "BTC", T0 - 3600), (6, 2));
        assert_eq!(window_totals(&h, "w2", "BTC", T0 - 3600), (10, 1));
        assert_eq!(window_totals(&h, "w3", "BTC", i64::MIN), (0, 0));
        let p = velocity(Some(106), Some(3));
        assert_eq!(decide(&p, &intent(), T0, &h).unwrap(), "small");
        assert_eq!(
            decide(&velocity(Some(105), None), &intent(), T0, &h).unwrap(),
            "block:guard"
        );
    }

    #[test]
    fn time_windows() {
        assert_eq!(weekday_minute(0), (3, 0)); // Thursday 1970-01-01 00:00
        assert_eq!(weekday_minute(4 * 86_400), (0, 0)); // Monday
        assert_eq!(weekday_minute(-1), (2, 1439)); // Wednesday 23:59
        assert_eq!(weekday_minute(T0), (1, 1333)); // Tuesday 2023-11-14 22:13
        let _ = weekday_minute(i64::MIN);
        let w = |days: Vec<u8>, s, e| TimeWindow {
            days,
            start_minute: s,
            end_minute: e,
        };
        let day = w(vec![], 600, 1020);
        assert!(inside(&day, 600 * 60) && inside(&day, 1019 * 60 + 59));
        assert!(!inside(&day, 599 * 60 + 59) && !inside(&day, 1020 * 60));
        let night = w(vec![], 1320, 60);
        assert!(inside(&night, T0) && inside(&night, T0 + 2 * 3600)); // 22:13, 00:13
        assert!(!inside(&night, T0 + 3 * 3600) && !inside(&night, T0 - 3 * 3600)); // 01:13, 19:13
        let tuesday_night = w(vec![1], 1320, 60);
        assert!(inside(&tuesday_night, T0) && !inside(&tuesday_night, T0 + 2 * 3600));
        assert!(!inside(&w(vec![], 10, 10), T0));
        let p = guarded(Conditions {
            time_window: Some(night),
            ..Conditions::default()
        });
        assert_eq!(decide(&p, &intent(), T0, &[]).unwrap(), "block:guard");
        assert_eq!(decide(&p, &intent(), T0 + 3 * 3600, &[]).unwrap(), "small");
    }

    #[test]
    fn lookback() {
        let mut p = policy();
        let mut i = intent();
        assert_eq!(lookback_since(&p, &i, T0 + 10), T0);
        p.rules[0].when.velocity = Some(Velocity {
            window_secs: 86_400,
            max_sum: None,
            max_count: Some(5),
        });
        assert_eq!(lookback_since(&p, &i, T0 + 10), T0 + 10 - 86_400);
        i.created_at = i64::MIN;
        assert_eq!(lookback_since(&p, &i, i64::MIN + 5), i64::MIN);
    }

    /// Approval by key `k` of `i`, valid until T0 + 100.
    fn ok(k: u8, i: &Intent) -> Approval {
        Approval::sign(&sk(k), i.hash(), Decision::Approve, T0 + 100)
    }

    fn report(p: &Policy, i: &Intent, a: &[Approval]) -> Result<ApprovalReport, PolicyError> {
        check_approvals(p, &evaluate(p, i, &ctx(T0, &[])), i, a, T0)
    }

    #[test]
    fn approvals_count_distinct_members_per_group() {
        let p = policy();
        let mut i = intent();
        i.amount = Amount(5000); // large: approvers 2, treasury 1
        let r = report(&p, &i, &[ok(11, &i), ok(11, &i), ok(21, &i)]).unwrap();
        assert_eq!(
            r.counted,
            vec![("approvers".into(), 1, 2), ("treasury".into(), 1, 1)]
        );
        assert!(!r.satisfied);
        let r = report(&p, &i, &[ok(11, &i), ok(12, &i), ok(22, &i), ok(99, &i)]).unwrap();
        assert!(r.satisfied && r.rejected_by.is_empty());
        // One key in two groups counts for both.
        let mut q = p.clone();
        q.groups.get_mut("treasury").unwrap().push(Member {
            name: "x".into(),
            key: pk(11),
        });
        let r = report(&q, &i, &[ok(11, &i), ok(12, &i)]).unwrap();
        assert!(r.satisfied, "{r:?}");
        let block = Verdict::Block { rule: None };
        let r = check_approvals(&p, &block, &i, &[ok(11, &i)], T0).unwrap();
        assert!(!r.satisfied);
    }

    #[test]
    fn an_extra_approval_needs_one_more_distinct_approver_than_the_rule() {
        let p = policy();
        let mut i = intent();
        i.amount = Amount(5000); // large: approvers 2, treasury 1
        let v = evaluate(&p, &i, &ctx(T0, &[]));
        let three = [ok(11, &i), ok(12, &i), ok(21, &i)];
        let with = |a: &[Approval], extra| {
            check_approvals_with_extra(&p, &v, &i, a, T0, extra)
                .unwrap()
                .satisfied
        };
        assert!(with(&three, 0), "the rule alone is met");
        assert!(!with(&three, 1), "one approver more is needed");
        // A fourth distinct member of a required group meets it; a repeat, an outsider, an
        // or expired approval does not (the initiator is left out as in
        // `check_approvals`, see `self_approval_expiry_and_rejection`).
        assert!(with(&[ok(11, &i), ok(12, &i), ok(21, &i), ok(22, &i)], 1));
        assert!(!with(&[ok(11, &i), ok(12, &i), ok(21, &i), ok(21, &i)], 1));
        assert!(!with(&[ok(11, &i), ok(12, &i), ok(21, &i), ok(99, &i)], 1));
        let expired = Approval::sign(&sk(22), i.hash(), Decision::Approve, T0);
        assert!(!with(&[ok(11, &i), ok(12, &i), ok(21, &i), expired], 1));
        // A key in two required groups is still one approver.
        let mut q = p.clone();
        q.groups.get_mut("treasury").unwrap().push(Member {
            name: "x".into(),
            key: pk(11),
        });
        let v = evaluate(&q, &i, &ctx(T0, &[]));
        let r =
            check_approvals_with_extra(&q, &v, &i, &[ok(11, &i), ok(12, &i), ok(21, &i)], T0, 1);
        assert!(!r.unwrap().satisfied);
    }

    #[test]
    fn self_approval_expiry_and_rejection() {
        let mut p = policy();
        let mut i = intent();
        i.initiator = pk(11);
        assert!(!report(&p, &i, &[ok(11, &i)]).unwrap().satisfied);
        // The initiator under a second key, listed under the same member name, is still
        // the initiator.
        let mut twin = p.clone();
        let name = twin.groups["approvers"][0].name.clone();
        twin.groups
            .get_mut("approvers")
            .unwrap()
            .push(crate::Member { name, key: pk(14) });
        assert!(!report(&twin, &i, &[ok(14, &i)]).unwrap().satisfied);
        assert!(report(&twin, &i, &[ok(12, &i)]).unwrap().satisfied);
        p.rules[0].action = Action::Allow {
            approvals: vec![req("approvers", 1)],
            allow_self_approval: true,
        };
        assert!(report(&p, &i, &[ok(11, &i)]).unwrap().satisfied);
        let expired = Approval::sign(&sk(12), i.hash(), Decision::Approve, T0);
        let r = report(&p, &i, std::slice::from_ref(&expired)).unwrap();
        assert_eq!(r.counted, vec![("approvers".into(), 0, 1)]);
        let reject = |k, exp| Approval::sign(&sk(k), i.hash(), Decision::Reject, exp);
        let r = report(&p, &i, &[ok(11, &i), reject(12, T0 + 1)]).unwrap();
        assert!(!r.satisfied);
        assert_eq!(r.rejected_by, vec![pk(12)]);
        // A rejection by a non-member, or an expired one, does not block.
        assert!(
            report(&p, &i, &[ok(11, &i), reject(99, T0 + 1), reject(12, T0)])
                .unwrap()
                .satisfied
        );
    }

    #[test]
    fn approval_errors() {
        let p = policy();
        let i = intent();
        let mut other = i.clone();
        other.memo = "changed".into();
        let a = ok(11, &other);
        assert_eq!(
            report(&p, &i, &[a]),
            Err(PolicyError::ApprovalForOtherIntent { approver: pk(11) })
        );
        let mut forged = ok(12, &i);
        forged.signature.0[10] ^= 4;
        assert_eq!(
            report(&p, &i, &[ok(11, &i), forged]),
            Err(PolicyError::BadApproval { approver: pk(12) })
        );
        let mut reclaimed = ok(12, &i);
        reclaimed.approver = pk(13);
        assert_eq!(
            report(&p, &i, &[reclaimed]),
            Err(PolicyError::BadApproval { approver: pk(13) })
        );
    }

    fn auth(
        p: &Policy,
        i: &Intent,
        a: &[Approval],
        now: i64,
        h: &[ReceiptBody],
    ) -> Result<Authorized, PolicyError> {
        authorize(p, i, &sign_initiation_of(i), a, &ctx(now, h))
    }

    /// The initiation signature by the intent's initiator (keys are numbered 1..).
    fn sign_initiation_of(i: &Intent) -> crate::Signature {
        let k = (1..=99).find(|&k| pk(k) == i.initiator).unwrap();
        crate::sign_initiation(&sk(k), i)
    }

    #[test]
    fn authorize_happy_path_and_refusals() {
        let p = policy();
        let i = intent();
        let a = [ok(12, &i)];
        let done = auth(&p, &i, &a, T0, &[]).unwrap();
        assert_eq!(done.rule, "small");
        assert!(done.report.satisfied);

        let mut bad = i.clone();
        bad.amount = Amount(0);
        assert!(matches!(
            auth(&p, &bad, &a, T0, &[]),
            Err(PolicyError::InvalidIntent {
                field: "amount",
                ..
            })
        ));
        let expired = auth(&p, &i, &a, i.expires_at, &[]);
        assert_eq!(
            expired,
            Err(PolicyError::IntentExpired {
                expires_at: i.expires_at,
                now: i.expires_at
            })
        );
        let mut elsewhere = i.clone();
        elsewhere.vault_id = "vault-2".into();
        assert!(matches!(
            auth(&p, &elsewhere, &a, T0, &[]),
            Err(PolicyError::VaultMismatch { .. })
        ));
        let wrong_sig = authorize(
            &p,
            &i,
            &crate::sign_initiation(&sk(2), &i),
            &a,
            &ctx(T0, &[]),
        );
        assert_eq!(
            wrong_sig,
            Err(PolicyError::BadInitiatorSignature { initiator: pk(1) })
        );
        let mut outsider = i.clone();
        outsider.initiator = pk(11);
        let a11 = [ok(12, &outsider)];
        assert_eq!(
            auth(&p, &outsider, &a11, T0, &[]),
            Err(PolicyError::InitiatorNotAllowed { initiator: pk(11) })
        );
        let mut any_member = p.clone();
        any_member.initiator_groups.clear();
        auth(&any_member, &outsider, &a11, T0, &[]).unwrap();
        outsider.initiator = pk(99);
        let a99 = [ok(12, &outsider)];
        assert!(matches!(
            auth(&any_member, &outsider, &a99, T0, &[]),
            Err(PolicyError::InitiatorNotAllowed { .. })
        ));

        let mut signed = ReceiptBody::for_intent(&i, 7, [0; 32], T0);
        assert_eq!(
            auth(&p, &i, &a, T0, &[signed.clone()]),
            Err(PolicyError::Replay { seq: 7 })
        );
        signed.intent_hash[0] ^= 1;
        auth(&p, &i, &a, T0, &[signed]).unwrap();

        let guard = guarded(Conditions {
            assets: Some(vec!["BTC".into()]),
            ..Conditions::default()
        });
        assert_eq!(
            auth(&guard, &i, &a, T0, &[]),
            Err(PolicyError::Blocked {
                rule: Some("guard".into())
            })
        );
        let mut none = p.clone();
        none.rules.clear();
        let err = auth(&none, &i, &a, T0, &[]).unwrap_err();
        assert_eq!(err, PolicyError::Blocked { rule: None });
        assert!(err.to_string().contains("default deny"));

        let mut big = i.clone();
        big.amount = Amount(5000);
        let approvals = [
            ok(11, &big),
            Approval::sign(&sk(21), big.hash(), Decision::Reject, T0 + 5),
        ];
        let err = auth(&p, &big, &approvals, T0, &[]).unwrap_err();
        let want = vec![
            ("approvers".to_string(), 1, 2),
            ("treasury".to_string(), 0, 1),
        ];
        assert_eq!(
            err,
            PolicyError::ApprovalsMissing {
                missing: want,
                rejected_by: vec![pk(21)]
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("\"approvers\" 1/2") && text.contains(&pk(21).short()),
            "{text}"
        );

        let mut invalid = p.clone();
        invalid.initiator_groups.push("ghosts".into());
        assert!(matches!(
            auth(&invalid, &i, &a, T0, &[]),
            Err(PolicyError::InvalidPolicy { .. })
        ));
    }

    proptest! {
        #[test]
        fn evaluate_never_panics(
            p in arb_policy(),
            i in arb_intent(),
            h in proptest::collection::vec(arb_body(), 0..6),
            now in prop_oneof![0i64..20_000, any::<i64>()],
        ) {
            let c = ctx(now, &h);
            let v = evaluate(&p, &i, &c);
            let _ = lookback_since(&p, &i, now);
            let bogus = [Approval { approver: i.initiator, intent_hash: i.hash(), decision: Decision::Approve, expires_at: now, signature: crate::Signature([0; 64]) }];
            let _ = check_approvals(&p, &v, &i, &[], now);
            let _ = check_approvals(&p, &v, &i, &bogus, now);
            let _ = authorize(&p, &i, &crate::Signature([1; 64]), &[], &c);
            let _ = serde_json::to_string(&v);
        }
    }
}
