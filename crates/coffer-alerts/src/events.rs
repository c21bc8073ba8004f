//! Findings from single events: new credentials, role and policy changes, a signer refusing a
//! request, a protocol abort with its blamed parties, an audit chain that fails verification,
//! and a signer silent for longer than a limit.

use std::collections::HashMap;

use serde_json::json;

use crate::{AlertKind, Finding, Severity, Subject};

/// A credential was created for `user` with `role` (Medium for an admin credential, Low
/// otherwise).
pub fn new_credential(credential: &str, user: &str, role: &str, by: &str) -> Finding {
    let severity = if role == "admin" {
        Severity::Medium
    } else {
        Severity::Low
    };
    Finding {
        kind: AlertKind::NewCredential,
        severity,
        explanation: format!("new {role} credential for {user}, created by {by}"),
        evidence: json!({"credential": credential, "user": user, "role": role, "by": by}),
        subject: Subject {
            credential: Some(credential.to_string()),
            ..Subject::default()
        },
    }
}

/// A credential's role changed from `from` to `to` (`to` = `None`: disabled). High when it
/// gains the admin role, Medium otherwise.
pub fn role_change(credential: &str, from: &str, to: Option<&str>, by: &str) -> Finding {
    let severity = if to == Some("admin") && from != "admin" {
        Severity::High
    } else {
        Severity::Medium
    };
    let explanation = match to {
        Some(to) => format!("credential {credential} changed role from {from} to {to} by {by}"),
        None => format!("{from} credential {credential} disabled by {by}"),
    };
    Finding {
        kind: AlertKind::RoleChange,
        severity,
        explanation,
        evidence: json!({"credential": credential, "from": from, "to": to, "by": by}),
        subject: Subject {
            credential: Some(credential.to_string()),
            ..Subject::default()
        },
    }
}

/// A vault's policy changed to `version` (Medium).
pub fn policy_change(vault: &str, version: u64, policy_hash: &str, by: &str) -> Finding {
    Finding {
        kind: AlertKind::PolicyChange,
        severity: Severity::Medium,
        explanation: format!("policy of vault {vault} changed to version {version} by {by}"),
        evidence: json!({"vault": vault, "version": version, "policy_hash": policy_hash, "by": by}),
        subject: Subject {
            vault: Some(vault.to_string()),
            ..Subject::default()
        },
    }
}

/// Signer `signer` refused a job with `reason`. `approved` says whether the server believed
/// the request fully approved: a signer refusing an approved request disagrees with the
/// server (High); a coordinator asking for something not approved is an attack on the
/// signers (Critical).
pub fn signer_refused(
    subject: &Subject,
    signer: &str,
    reason: &str,
    request: Option<&str>,
    approved: bool,
) -> Finding {
    let severity = if approved {
        Severity::High
    } else {
        Severity::Critical
    };
    let explanation = if approved {
        format!("signer {signer} refused an approved request: {reason}")
    } else {
        format!("signer {signer} refused a request that was not approved (coordinator asked for an unapproved signature): {reason}")
    };
    let mut subject = subject.clone();
    subject.signer = Some(signer.to_string());
    Finding {
        kind: AlertKind::SignerRefused,
        severity,
        explanation,
        evidence: json!({"signer": signer, "reason": reason, "request": request, "approved": approved}),
        subject,
    }
}

/// A protocol session aborted blaming `culprits` (High; Medium when nobody is blamed).
pub fn protocol_abort(
    subject: &Subject,
    session: &str,
    reason: &str,
    culprits: &[String],
) -> Finding {
    let severity = if culprits.is_empty() {
        Severity::Medium
    } else {
        Severity::High
    };
    let explanation = if culprits.is_empty() {
        format!("protocol session {session} aborted without blame: {reason}")
    } else {
        format!(
            "protocol session {session} aborted blaming {}: {reason}",
            culprits.join(", ")
        )
    };
    let mut subject = subject.clone();
    subject.signer = culprits.first().cloned();
    Finding {
        kind: AlertKind::ProtocolAbort,
        severity,
        explanation,
        evidence: json!({"session": session, "reason": reason, "culprits": culprits}),
        subject,
    }
}

/// The audit chain failed verification (always Critical).
pub fn audit_chain_failure(scope: &str, detail: &str) -> Finding {
    Finding {
        kind: AlertKind::AuditChainFailure,
        severity: Severity::Critical,
        explanation: format!("audit chain of {scope} failed verification: {detail}"),
        evidence: json!({"scope": scope, "detail": detail}),
        subject: Subject::default(),
    }
}

/// Fires (High) when signer `signer`, last seen at `last_seen`, has been silent for more
/// than `limit_secs` at `now`.
pub fn signer_silent(signer: &str, last_seen: u64, now: u64, limit_secs: u64) -> Option<Finding> {
    let silent = now.saturating_sub(last_seen);
    if silent <= limit_secs {
        return None;
    }
    Some(Finding {
        kind: AlertKind::SignerSilent,
        severity: Severity::High,
        explanation: format!("signer {signer} silent for {silent} s (limit {limit_secs} s)"),
        evidence: json!({"signer": signer, "last_seen": last_seen, "now": now, "silent_secs": silent, "limit_secs": limit_secs}),
        subject: Subject {
            signer: Some(signer.to_string()),
            ..Subject::default()
        },
    })
}

/// Watches signers' last-seen times and reports each silence once: a signer silent past
/// the limit yields one finding, then nothing until it is heard from again (after which a
/// new silence is a new finding). A signer never heard from counts from `started`.
#[derive(Clone, Debug, Default)]
pub struct SilenceWatch {
    last_heard: HashMap<String, u64>,
    reported: HashMap<String, bool>,
}

impl SilenceWatch {
    /// One check of `signer`, last heard from at `heard` (if ever), at `now`.
    pub fn observe(
        &mut self,
        signer: &str,
        heard: Option<u64>,
        started: u64,
        now: u64,
        limit_secs: u64,
    ) -> Option<Finding> {
        let last = self.last_heard.entry(signer.to_string()).or_insert(started);
        if let Some(h) = heard {
            if h > *last {
                *last = h;
            }
        }
        let finding = signer_silent(signer, *last, now, limit_secs);
        let reported = self.reported.entry(signer.to_string()).or_insert(false);
        match finding {
            Some(f) if !*reported => {
                *reported = true;
                Some(f)
            }
            Some(_) => None,
            None => {
                *reported = false;
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn credential_and_role_findings_rank_admin_power_higher() {
        assert_eq!(
            new_credential("k", "u", "viewer", "ops").severity,
            Severity::Low
        );
        let f = new_credential("k", "u", "admin", "ops");
        assert_eq!(
            (f.kind, f.severity),
            (AlertKind::NewCredential, Severity::Medium)
        );
        assert_eq!(f.subject.credential.as_deref(), Some("k"));
        assert_eq!(
            role_change("k", "viewer", Some("admin"), "ops").severity,
            Severity::High
        );
        assert_eq!(
            role_change("k", "admin", None, "ops").severity,
            Severity::Medium
        );
        assert!(role_change("k", "admin", None, "ops")
            .explanation
            .contains("disabled"));
        let p = policy_change("v-1", 2, "ab", "ops");
        assert_eq!(
            (p.kind, p.evidence["version"].as_u64()),
            (AlertKind::PolicyChange, Some(2))
        );
    }

    #[test]
    fn a_refusal_of_an_unapproved_request_is_critical() {
        let s = Subject::wallet("v", "w");
        let crit = signer_refused(&s, "signer-2", "policy not satisfied", Some("tx-1"), false);
        assert_eq!(crit.severity, Severity::Critical);
        assert_eq!(crit.subject.signer.as_deref(), Some("signer-2"));
        assert_eq!(crit.subject.wallet.as_deref(), Some("w"));
        let high = signer_refused(&s, "signer-2", "busy", Some("tx-1"), true);
        assert_eq!(high.severity, Severity::High);
    }

    #[test]
    fn an_abort_names_the_blamed_signers() {
        let f = protocol_abort(
            &Subject::default(),
            "s-1",
            "bad proof",
            &["signer-3".into()],
        );
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.subject.signer.as_deref(), Some("signer-3"));
        assert!(f.explanation.contains("signer-3"));
        assert_eq!(
            protocol_abort(&Subject::default(), "s", "x", &[]).severity,
            Severity::Medium
        );
    }

    #[test]
    fn chain_failures_are_critical_and_silence_fires_only_past_the_limit() {
        assert_eq!(
            audit_chain_failure("tenant t", "entry 3").severity,
            Severity::Critical
        );
        assert!(signer_silent("s", 100, 160, 60).is_none());
        let f = signer_silent("s", 100, 161, 60).unwrap();
        assert_eq!(f.evidence["silent_secs"], 61);
        assert!(
            signer_silent("s", 200, 100, 60).is_none(),
            "clock behind: not silent"
        );
    }

    #[test]
    fn a_silence_is_reported_once_and_a_new_silence_again() {
        let mut w = SilenceWatch::default();
        // Never heard from: counted from the start (0).
        assert!(w.observe("s1", None, 0, 60, 60).is_none());
        assert!(w.observe("s1", None, 0, 61, 60).is_some());
        assert!(
            w.observe("s1", None, 0, 90, 60).is_none(),
            "once per silence"
        );
        assert!(w.observe("s1", None, 0, 900, 60).is_none());
        // Heard from again, then silent again: a new finding.
        assert!(w.observe("s1", Some(1000), 0, 1000, 60).is_none());
        assert!(w.observe("s1", None, 0, 1050, 60).is_none());
        let f = w.observe("s1", None, 0, 1061, 60).unwrap();
        assert_eq!(f.evidence["last_seen"], 1000);
        // Signers are watched apart.
        assert!(w.observe("s2", Some(1050), 0, 1061, 60).is_none());
    }
}
