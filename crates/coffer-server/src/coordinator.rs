//! The coordinator: runs one protocol session across the signers it picks. It asks each
//! party to start, then waits until every party has reported its outcome, one disconnects,
//! or the session stalls past its deadline (then it names the parties it still waits for).
//! It decides nothing about keys: each signer checks the job against what it pinned.

use std::time::Duration;

use coffer_net::frames::{Job, Outcome, ToSigner};
use coffer_net::roster::Roster;
use coffer_net::NodeKey;

use crate::hub::{Hub, Progress};

/// Why a session did not produce an agreed result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Parties that are not connected, so the session was not started.
    #[error("signers not connected: {}", .0.join(", "))]
    NotConnected(Vec<String>),
    /// The deadline passed; these parties had not finished.
    #[error("session {session} stalled after {after_secs} s, still waiting for: {}", .waiting_for.join(", "))]
    Stalled {
        /// The session id (hex).
        session: String,
        /// Seconds waited.
        after_secs: u64,
        /// Names of parties without an outcome.
        waiting_for: Vec<String>,
    },
    /// A party disconnected mid-session.
    #[error("signer {0} disconnected during the session")]
    Disconnected(String),
    /// A party refused to take part.
    #[error("signer {by} refused: {reason}")]
    Refused {
        /// Who refused.
        by: String,
        /// Its reason.
        reason: String,
    },
    /// A party is not ready (safe primes still being generated).
    #[error("signer {by} is not ready: {reason}")]
    NotReady {
        /// Who.
        by: String,
        /// Its reason.
        reason: String,
    },
    /// The protocol aborted.
    #[error("protocol aborted ({reason}); blamed: {}", if .culprits.is_empty() { "nobody (the protocol cannot say)".to_string() } else { .culprits.join(", ") })]
    Aborted {
        /// The first abort reason reported.
        reason: String,
        /// Names of blamed parties.
        culprits: Vec<String>,
    },
    /// Parties reported different results (never expected from honest signers).
    #[error("signers disagree on the result: {0}")]
    Inconsistent(String),
}

/// A signer's display name from the roster.
pub fn name_of(roster: &Roster, key: &NodeKey) -> String {
    roster
        .signer(key)
        .map(|(_, s)| s.name.clone())
        .unwrap_or_else(|| key.short())
}

/// Runs `job` among its parties and returns every party's outcome, in party order. Any
/// refusal, abort or not-ready report is turned into the matching error.
pub async fn run(
    hub: &Hub,
    roster: &Roster,
    job: Job,
    deadline: Duration,
) -> Result<Vec<(NodeKey, Outcome)>, JobError> {
    let missing: Vec<String> = job
        .parties
        .iter()
        .filter(|(_, k)| !hub.is_connected(k))
        .map(|(_, k)| name_of(roster, k))
        .collect();
    if !missing.is_empty() {
        return Err(JobError::NotConnected(missing));
    }
    let session = job.session;
    let notify = hub
        .start_session(&job)
        .map_err(|k| JobError::Disconnected(name_of(roster, &k)))?;
    let started = tokio::time::Instant::now();
    let until = started + deadline;
    let result = loop {
        match hub.progress(&session) {
            Progress::Done(outcomes) => break Ok(outcomes),
            Progress::Left(k) => break Err(JobError::Disconnected(name_of(roster, &k))),
            Progress::Gone => break Err(JobError::Inconsistent("session vanished".into())),
            Progress::Waiting(waiting) => {
                // An early refusal or abort ends the session without waiting for the rest.
                if let Some(e) = early_failure(hub, roster, &job) {
                    break Err(e);
                }
                if tokio::time::timeout_at(until, notify.notified())
                    .await
                    .is_err()
                {
                    break Err(JobError::Stalled {
                        session: session.to_string(),
                        after_secs: started.elapsed().as_secs(),
                        waiting_for: waiting.iter().map(|k| name_of(roster, k)).collect(),
                    });
                }
            }
        }
    };
    hub.close_session(&session);
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            for (_, k) in &job.parties {
                hub.send(
                    k,
                    ToSigner::Cancel {
                        session,
                        reason: e.to_string(),
                    },
                );
            }
            return Err(e);
        }
    };
    if let Some(e) = failure_among(roster, &job, &outcomes) {
        return Err(e);
    }
    Ok(outcomes)
}

fn early_failure(hub: &Hub, roster: &Roster, job: &Job) -> Option<JobError> {
    let partial = hub.partial_outcomes(&job.session);
    partial
        .iter()
        .find_map(|(k, o)| failure_of(roster, k, o, &job.parties))
}

fn failure_among(roster: &Roster, job: &Job, outcomes: &[(NodeKey, Outcome)]) -> Option<JobError> {
    outcomes
        .iter()
        .find_map(|(k, o)| failure_of(roster, k, o, &job.parties))
}

fn failure_of(
    roster: &Roster,
    from: &NodeKey,
    outcome: &Outcome,
    parties: &[(u16, NodeKey)],
) -> Option<JobError> {
    let by = name_of(roster, from);
    match outcome {
        Outcome::Refused { reason } => Some(JobError::Refused {
            by,
            reason: reason.clone(),
        }),
        Outcome::NotReady { reason } => Some(JobError::NotReady {
            by,
            reason: reason.clone(),
        }),
        Outcome::Aborted { reason, culprits } => Some(JobError::Aborted {
            reason: format!("reported by {by}: {reason}"),
            culprits: culprits
                .iter()
                .map(|i| {
                    parties
                        .iter()
                        .find(|(p, _)| p == i)
                        .map(|(_, k)| name_of(roster, k))
                        .unwrap_or_else(|| format!("party {i}"))
                })
                .collect(),
        }),
        _ => None,
    }
}
