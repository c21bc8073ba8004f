//! The vault policy document (groups, initiator groups, ordered rules), its structural
//! check, and its signatures by a quorum of the tenant's admins.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::intent::sha256;
use crate::keys::{public_key_of, sign_bytes};
use crate::{Amount, Hash32, PolicyError, PublicKey, Signature};

/// A vault's policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The vault it governs.
    pub vault_id: String,
    /// Version, increasing with each change.
    pub version: u64,
    /// Group name -> members.
    pub groups: BTreeMap<String, Vec<Member>>,
    /// An intent's initiator must be a member of one of these groups; empty: of any group.
    pub initiator_groups: Vec<String>,
    /// Ordered rules: the first match decides; no match blocks.
    pub rules: Vec<Rule>,
}

/// A named key in a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Display name.
    pub name: String,
    /// Ed25519 key.
    pub key: PublicKey,
}

/// Conditions and what to do when they all hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name (reported in verdicts).
    pub name: String,
    /// Conditions (all must hold; none: always matches).
    #[serde(default)]
    pub when: Conditions,
    /// The action.
    pub action: Action,
}

/// Conditions of a rule; every present one must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The asset is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<String>>,
    /// amount >= this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_min: Option<Amount>,
    /// amount <= this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_max: Option<Amount>,
    /// The wallet's totals in the window, including this request, exceed a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity: Option<Velocity>,
    /// The destination is in this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<String>>,
    /// The destination is not in this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations_not: Option<Vec<String>>,
    /// `now` (UTC) is inside this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
    /// The initiator is a member of one of these groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_groups: Option<Vec<String>>,
    /// The intent's kind is one of these. Absent: transfers only. A rule matches an
    /// off-chain message (EIP-712, EIP-191) only when it names that kind here, so each kind
    /// of signing is allowed by its own rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<crate::IntentKind>>,
}

/// Limits over a sliding window, per wallet and asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Velocity {
    /// Window length in seconds (1 ..= 31 days).
    pub window_secs: u64,
    /// Largest allowed sum in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sum: Option<Amount>,
    /// Largest allowed number of transfers in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
}

/// Days and minutes of the week, UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// 0 = Monday .. 6 = Sunday (the weekday of `now`); empty: every day.
    pub days: Vec<u8>,
    /// Minutes after 00:00 UTC; inside is `[start, end)`, wrapping past midnight when
    /// start > end.
    pub start_minute: u16,
    /// See `start_minute`.
    pub end_minute: u16,
}

/// What a matching rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Allow once the approvals are there.
    Allow {
        /// Approvals required (all of them).
        #[serde(default)]
        approvals: Vec<Requirement>,
        /// Whether the initiator's own approval counts.
        #[serde(default)]
        allow_self_approval: bool,
    },
    /// Refuse.
    Block,
}

/// At least `min` distinct approvers from `group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Group name.
    pub group: String,
    /// How many distinct members must approve.
    pub min: u16,
}

/// A policy with admin signatures over `Policy::signing_bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Admin signatures.
    pub signatures: Vec<AdminSignature>,
}

/// One admin's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSignature {
    /// The admin.
    pub admin: PublicKey,
    /// Signature over the policy's signing bytes.
    pub signature: Signature,
}

const MAX_RULES: usize = 64;
const MAX_GROUPS: usize = 32;
const MAX_MEMBERS: usize = 64;
const MAX_WINDOW_SECS: u64 = 31 * 86_400;

fn name_ok(what: &str, name: &str) -> Result<(), PolicyError> {
    if name.is_empty() || name.len() > 64 {
        return Err(invalid(format!(
            "{what} name {name:?} must be 1..=64 bytes"
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> PolicyError {
    PolicyError::InvalidPolicy { reason }
}

impl Policy {
    /// Structural validation (limits, names, references, ranges).
    pub fn check(&self) -> Result<(), PolicyError> {
        name_ok("vault", &self.vault_id)?;
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!(
                "{} rules, at most {MAX_RULES}",
                self.rules.len()
            )));
        }
        if self.groups.len() > MAX_GROUPS {
            return Err(invalid(format!(
                "{} groups, at most {MAX_GROUPS}",
                self.groups.len()
            )));
        }
        for (g, members) in &self.groups {
            name_ok("group", g)?;
            if members.len() > MAX_MEMBERS {
                return Err(invalid(format!(
                    "group {g:?} has more than {MAX_MEMBERS} members"
                )));
            }
            let mut seen = BTreeSet::new();
            for m in members {
                name_ok("member", &m.name)?;
                if !seen.insert(m.key) {
                    return Err(invalid(format!(
                        "group {g:?} lists key {} twice",
                        m.key.short()
                    )));
                }
            }
        }
        let exists = |g: &String, at: &str| match self.groups.contains_key(g) {
            true => Ok(()),
            false => Err(invalid(format!("{at} names unknown group {g:?}"))),
        };
        for g in &self.initiator_groups {
            exists(g, "initiator_groups")?;
        }
        for r in &self.rules {
            name_ok("rule", &r.name)?;
            let at = format!("rule {:?}", r.name);
            let w = &r.when;
            for g in w.initiator_groups.iter().flatten() {
                exists(g, &at)?;
            }
            if w.kinds.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid(format!(
                    "{at}: kinds is empty (omit it to match transfers only)"
                )));
            }
            if let (Some(min), Some(max)) = (w.amount_min, w.amount_max) {
                if min > max {
                    return Err(invalid(format!("{at}: amount_min above amount_max")));
                }
            }
            if let Some(v) = &w.velocity {
                if !(1..=MAX_WINDOW_SECS).contains(&v.window_secs) {
                    return Err(invalid(format!(
                        "{at}: velocity window must be 1s..=31 days"
                    )));
                }
                if v.max_sum.is_none() && v.max_count.is_none() {
                    return Err(invalid(format!(
                        "{at}: velocity needs max_sum or max_count"
                    )));
                }
            }
            if let Some(t) = &w.time_window {
                if t.start_minute >= 1440 || t.end_minute >= 1440 || t.start_minute == t.end_minute
                {
                    return Err(invalid(format!(
                        "{at}: time window minutes must be < 1440 and differ"
                    )));
                }
                if t.days.iter().any(|d| *d > 6) {
                    return Err(invalid(format!("{at}: days are 0 (Monday) ..= 6 (Sunday)")));
                }
            }
            if let Action::Allow { approvals, .. } = &r.action {
                for req in approvals {
                    exists(&req.group, &at)?;
                    let size = self.groups.get(&req.group).map_or(0, Vec::len);
                    if req.min == 0 || usize::from(req.min) > size {
                        return Err(invalid(format!(
                            "{at}: requirement on {:?} must be 1..={size}",
                            req.group
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The largest velocity window in seconds (0 if none).
    pub fn max_window_secs(&self) -> u64 {
        let windows = self.rules.iter().filter_map(|r| r.when.velocity.as_ref());
        windows.map(|v| v.window_secs).max().unwrap_or(0)
    }

    /// "coffer-policy-v1\n" || JSON. The JSON is deterministic: serde writes struct fields
    /// in declaration order, groups are a `BTreeMap` (sorted keys), absent conditions are
    /// skipped, and amounts, keys and signatures have one canonical string form.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = b"coffer-policy-v1\n".to_vec();
        // Cannot fail: every map key is a string and no serializer here returns an error.
        // Should it ever, the 0xff byte (never in JSON) keeps the result from equalling a
        // real policy's bytes.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.truncate(17);
            out.push(0xff);
        }
        out
    }

    /// SHA-256 of the signing bytes.
    pub fn hash(&self) -> Hash32 {
        sha256(&[&self.signing_bytes()])
    }

    /// Whether `key` is a member of `group`.
    pub fn is_member(&self, group: &str, key: &PublicKey) -> bool {
        self.groups
            .get(group)
            .is_some_and(|ms| ms.iter().any(|m| m.key == *key))
    }

    /// Whether `key` is a member of any group.
    pub fn is_any_member(&self, key: &PublicKey) -> bool {
        self.groups.values().flatten().any(|m| m.key == *key)
    }

    /// Whether `key` may initiate transfers: a member of one of the initiator groups, or of
    /// any group when none is named.
    pub fn may_initiate(&self, key: &PublicKey) -> bool {
        if self.initiator_groups.is_empty() {
            self.is_any_member(key)
        } else {
            self.initiator_groups.iter().any(|g| self.is_member(g, key))
        }
    }

    /// The member names `key` has in any group. A name identifies a person across groups:
    /// someone listed as an initiator under one key and as an approver under another is the
    /// same person, and cannot approve their own request under either key.
    pub fn names_of(&self, key: &PublicKey) -> BTreeSet<&str> {
        self.groups
            .values()
            .flatten()
            .filter(|m| m.key == *key)
            .map(|m| m.name.as_str())
            .collect()
    }
}

impl SignedPolicy {
    /// Signs `policy` with each admin key.
    pub fn sign(policy: Policy, admins: &[&SigningKey]) -> SignedPolicy {
        let mut sp = SignedPolicy {
            policy,
            signatures: Vec::new(),
        };
        for sk in admins {
            sp.add_signature(sk);
        }
        sp
    }

    /// Adds one admin's signature.
    pub fn add_signature(&mut self, sk: &SigningKey) {
        let signature = sign_bytes(sk, &self.policy.signing_bytes());
        self.signatures.push(AdminSignature {
            admin: public_key_of(sk),
            signature,
        });
    }

    /// The policy is structurally valid and at least `threshold` distinct `admins` signed it;
    /// a signature by anyone else, or one that does not verify, is an error.
    pub fn verify(&self, admins: &[PublicKey], threshold: u16) -> Result<(), PolicyError> {
        if threshold == 0 {
            return Err(PolicyError::ZeroThreshold);
        }
        self.policy.check()?;
        let msg = self.policy.signing_bytes();
        let mut valid = BTreeSet::new();
        for s in &self.signatures {
            if !admins.contains(&s.admin) {
                return Err(PolicyError::UnknownAdmin { admin: s.admin });
            }
            s.admin
                .verify(&msg, &s.signature)
                .map_err(|_| PolicyError::BadAdminSignature { admin: s.admin })?;
            valid.insert(s.admin);
        }
        if valid.len() < usize::from(threshold) {
            return Err(PolicyError::QuorumNotMet {
                have: valid.len(),
                need: threshold,
                of: admins.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::{arb_policy, pk, policy, sk};
    use proptest::prelude::*;

    fn broken(f: impl FnOnce(&mut Policy)) -> String {
        let mut p = policy();
        f(&mut p);
        match p.check() {
            Err(PolicyError::InvalidPolicy { reason }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_accepts_the_sample_and_refuses_each_defect() {
        policy().check().unwrap();
        let m = |k: u8| Member {
            name: format!("m{k}"),
            key: pk(k),
        };
        broken(|p| p.rules = vec![p.rules[0].clone(); 65]);
        broken(|p| (0..33).for_each(|i| _ = p.groups.insert(format!("g{i}"), vec![])));
        broken(|p| {
            _ = p
                .groups
                .insert("big".into(), (0..65).map(|i| m(i + 1)).collect())
        });
        assert!(broken(|p| _ = p.groups.insert("dup".into(), vec![m(1), m(1)])).contains("twice"));
        broken(|p| p.initiator_groups.push("nobody".into()));
        broken(|p| p.rules[0].when.initiator_groups = Some(vec!["nobody".into()]));
        broken(|p| {
            p.rules[0].action = Action::Allow {
                approvals: vec![Requirement {
                    group: "x".into(),
                    min: 1,
                }],
                allow_self_approval: false,
            }
        });
        broken(|p| {
            p.rules[0].action = Action::Allow {
                approvals: vec![Requirement {
                    group: "approvers".into(),
                    min: 0,
                }],
                allow_self_approval: false,
            }
        });
        broken(|p| {
            p.rules[0].action = Action::Allow {
                approvals: vec![Requirement {
                    group: "approvers".into(),
                    min: 4,
                }],
                allow_self_approval: false,
            }
        });
        let vel = |w, s: Option<u128>, c| {
            Some(Velocity {
                window_secs: w,
                max_sum: s.map(Amount),
                max_count: c,
            })
        };
        broken(|p| p.rules[0].when.velocity = vel(0, Some(1), None));
        broken(|p| p.rules[0].when.velocity = vel(MAX_WINDOW_SECS + 1, Some(1), None));
        broken(|p| p.rules[0].when.velocity = vel(60, None, None));
        let tw = |days: Vec<u8>, s, e| {
            Some(TimeWindow {
                days,
                start_minute: s,
                end_minute: e,
            })
        };
        broken(|p| p.rules[0].when.time_window = tw(vec![], 0, 1440));
        broken(|p| p.rules[0].when.time_window = tw(vec![7], 0, 10));
        broken(|p| p.rules[0].when.time_window = tw(vec![], 10, 10));
        broken(|p| {
            (p.rules[0].when.amount_min, p.rules[0].when.amount_max) =
                (Some(Amount(2)), Some(Amount(1)))
        });
        broken(|p| p.rules[0].name.clear());
        broken(|p| p.vault_id = "v".repeat(65));
        broken(|p| p.groups.get_mut("approvers").unwrap()[0].name.clear());
        let mut p = policy();
        p.rules[0].when.velocity = vel(MAX_WINDOW_SECS, None, Some(0));
        p.rules[0].when.time_window = tw(vec![0, 6], 1439, 0);
        p.check().unwrap();
        assert_eq!(p.max_window_secs(), MAX_WINDOW_SECS);
    }

    #[test]
    fn membership() {
        let p = policy();
        assert!(p.is_member("approvers", &pk(11)));
        assert!(!p.is_member("approvers", &pk(1)));
        assert!(!p.is_member("nobody", &pk(11)));
        assert!(p.is_any_member(&pk(1)));
        assert!(!p.is_any_member(&pk(99)));
    }

    #[test]
    fn admin_quorum() {
        let admins = [pk(50), pk(51), pk(52)];
        let sp = SignedPolicy::sign(policy(), &[&sk(50), &sk(51)]);
        sp.verify(&admins, 2).unwrap();
        assert_eq!(
            sp.verify(&admins, 3),
            Err(PolicyError::QuorumNotMet {
                have: 2,
                need: 3,
                of: 3
            })
        );
        assert!(sp
            .verify(&admins, 3)
            .unwrap_err()
            .to_string()
            .contains("2 of 3"));
        assert_eq!(sp.verify(&admins, 0), Err(PolicyError::ZeroThreshold));
        // The same admin twice counts once.
        let mut twice = SignedPolicy::sign(policy(), &[&sk(50)]);
        twice.add_signature(&sk(50));
        assert!(matches!(
            twice.verify(&admins, 2),
            Err(PolicyError::QuorumNotMet { have: 1, .. })
        ));
        let mut stranger = sp.clone();
        stranger.add_signature(&sk(60));
        assert_eq!(
            stranger.verify(&admins, 2),
            Err(PolicyError::UnknownAdmin { admin: pk(60) })
        );
        let mut tampered = sp.clone();
        tampered.policy.version += 1;
        assert_eq!(
            tampered.verify(&admins, 2),
            Err(PolicyError::BadAdminSignature { admin: pk(50) })
        );
        let mut bad = sp.clone();
        bad.policy.rules.clear();
        bad.policy.vault_id.clear();
        assert!(matches!(
            bad.verify(&admins, 1),
            Err(PolicyError::InvalidPolicy { .. })
        ));
    }

    #[test]
    fn json_is_strict_and_stable() {
        let p = policy();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""type":"allow""#) && !json.contains("null"));
        assert!(p
            .signing_bytes()
            .starts_with(b"coffer-policy-v1\n{\"vault_id\""));
        let mut v = serde_json::to_value(&p).unwrap();
        v["rules"][0]["when"]["color"] = "red".into();
        assert!(serde_json::from_value::<Policy>(v).is_err());
        let block: Action = serde_json::from_str(r#"{"type":"block"}"#).unwrap();
        assert_eq!(block, Action::Block);
        let allow: Action = serde_json::from_str(r#"{"type":"allow"}"#).unwrap();
        assert_eq!(
            allow,
            Action::Allow {
                approvals: vec![],
                allow_self_approval: false
            }
        );
        let rule: Rule = serde_json::from_str(r#"{"name":"r","action":{"type":"block"}}"#).unwrap();
        assert_eq!(rule.when, Conditions::default());
        assert_ne!(p.hash(), {
            let mut q = p.clone();
            q.version = 2;
            q.hash()
        });
    }

    /// The documented JSON form (the fuzz target `policy_json` edits the same sample).
    #[test]
    fn sample_json_parses() {
        let json = r#"{"vault_id":"vault-1","version":3,
          "groups":{"approvers":[{"name":"ann","key":"1111111111111111111111111111111111111111111111111111111111111111"},
                                 {"name":"bob","key":"2222222222222222222222222222222222222222222222222222222222222222"}],
                    "initiators":[{"name":"ivy","key":"3333333333333333333333333333333333333333333333333333333333333333"}]},
          "initiator_groups":["initiators"],
          "rules":[
            {"name":"night","when":{"time_window":{"days":[5,6],"start_minute":1320,"end_minute":360}},"action":{"type":"block"}},
            {"name":"fast","when":{"assets":["BTC"],"velocity":{"window_secs":86400,"max_sum":"1000","max_count":5}},
             "action":{"type":"allow","approvals":[{"group":"approvers","min":2}]}},
            {"name":"book","when":{"destinations":["bc1dest"],"amount_max":"1000"},"action":{"type":"allow"}},
            {"name":"rest","action":{"type":"allow","approvals":[{"group":"approvers","min":1}],"allow_self_approval":true}}]}"#;
        let p: Policy = serde_json::from_str(json).unwrap();
        p.check().unwrap();
        assert_eq!(p.rules.len(), 4);
        assert_eq!(p.max_window_secs(), 86_400);
    }

    proptest! {
        #[test]
        fn policy_json_round_trip(p in arb_policy()) {
            let json = serde_json::to_vec(&p).unwrap();
            let back: Policy = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&back, &p);
            prop_assert_eq!(back.signing_bytes(), p.signing_bytes());
            let _ = p.check();
        }
    }
}
