//! Coffer's alert detectors: small pure functions (no IO, no clock, no async) that look at
//! what the server saw and return a [`Finding`] with a severity, a human explanation and the
//! evidence they used. The server ([`coffer-server`'s `alerts` module]) stores findings as
//! alerts, audits them and feeds them onwards; this crate owns only the decisions.
//!
//! - [`velocity`]: a wallet's amount or count in the last window against its own history;
//! - [`destination`]: the first payment to a destination;
//! - [`hours`]: activity outside the tenant's [`hours::WorkingHours`];
//! - [`burst`]: sliding-window counters of failed authentications per credential or source;
//! - [`events`]: new credentials, role and policy changes, signer refusals and aborts, audit
//!   chain failures, silent signers;
//! - [`anomaly`]: a per-wallet robust anomaly score over amounts and timing.
//!
//! Time is always passed in (Unix seconds), so every window is tested without sleeping.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anomaly;
pub mod burst;
pub mod destination;
pub mod events;
pub mod hours;
mod stats;
pub mod velocity;

use serde::{Deserialize, Serialize};

/// How serious a finding is, from low to critical (ordered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Unusual; someone should check.
    Medium,
    /// Likely an attack or a serious mistake.
    High,
    /// An attack in progress or broken integrity.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The severity's name (`low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// A severity by name.
    pub fn parse(s: &str) -> Result<Severity, UnknownName> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "severity",
                name: s.chars().take(32).collect(),
            })
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A wallet moved far more (or more often) in the last window than it usually does.
    VelocitySpike,
    /// A payment to a destination the wallet never paid before.
    FirstDestination,
    /// Activity outside the tenant's working hours.
    OutsideWorkingHours,
    /// A burst of failed authentications or bad request signatures.
    AuthFailureBurst,
    /// A credential was created.
    NewCredential,
    /// A user's role changed (or a credential was disabled).
    RoleChange,
    /// A vault's policy changed.
    PolicyChange,
    /// A signer refused a request.
    SignerRefused,
    /// A protocol session aborted, blaming parties.
    ProtocolAbort,
    /// The audit chain failed verification.
    AuditChainFailure,
    /// A signer has not been seen for longer than the limit.
    SignerSilent,
    /// A payment whose amount or timing is anomalous for its wallet.
    Anomaly,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 12] = [
        AlertKind::VelocitySpike,
        AlertKind::FirstDestination,
        AlertKind::OutsideWorkingHours,
        AlertKind::AuthFailureBurst,
        AlertKind::NewCredential,
        AlertKind::RoleChange,
        AlertKind::PolicyChange,
        AlertKind::SignerRefused,
        AlertKind::ProtocolAbort,
        AlertKind::AuditChainFailure,
        AlertKind::SignerSilent,
        AlertKind::Anomaly,
    ];

    /// The kind's name (snake case, as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::VelocitySpike => "velocity_spike",
            AlertKind::FirstDestination => "first_destination",
            AlertKind::OutsideWorkingHours => "outside_working_hours",
            AlertKind::AuthFailureBurst => "auth_failure_burst",
            AlertKind::NewCredential => "new_credential",
            AlertKind::RoleChange => "role_change",
            AlertKind::PolicyChange => "policy_change",
            AlertKind::SignerRefused => "signer_refused",
            AlertKind::ProtocolAbort => "protocol_abort",
            AlertKind::AuditChainFailure => "audit_chain_failure",
            AlertKind::SignerSilent => "signer_silent",
            AlertKind::Anomaly => "anomaly",
        }
    }

    /// A kind by name.
    pub fn parse(s: &str) -> Result<AlertKind, UnknownName> {
        AlertKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "alert kind",
                name: s.chars().take(32).collect(),
            })
    }
}

/// A name that is not one of an enumeration's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// Which enumeration.
    pub what: &'static str,
    /// The name given (at most 32 characters of it).
    pub name: String,
}

/// Whom or what a finding concerns; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// A vault id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    /// A wallet id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// A credential (public key, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// A signer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// A network source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Subject {
    /// A wallet of a vault.
    pub fn wallet(vault: &str, wallet: &str) -> Subject {
        Subject {
            vault: Some(vault.to_string()),
            wallet: Some(wallet.to_string()),
            ..Subject::default()
        }
    }
}

/// What a detector concluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: AlertKind,
    /// How serious.
    pub severity: Severity,
    /// One human sentence.
    pub explanation: String,
    /// What the detector saw: figures, ids, windows.
    pub evidence: serde_json::Value,
    /// Whom it concerns.
    pub subject: Subject,
}

/// A payment a wallet made (or asked for): its amount in the asset's base units and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Amount in base units.
    pub amount: u128,
    /// Unix seconds.
    pub at: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()).unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()).unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert!(Severity::parse("urgent").is_err());
        assert!(AlertKind::parse("").is_err());
        assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
    }
}
