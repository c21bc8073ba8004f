//! The one error type of the policy layer. Messages carry context (rule, field, sequence
//! number, short key hex) and never secrets.

use crate::PublicKey;

/// Everything that can be refused by this crate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A hex field has the wrong length or characters.
    #[error("bad {what}: expected {expected_chars} lowercase hex characters")]
    BadHex {
        /// What was being decoded.
        what: &'static str,
        /// The expected number of characters.
        expected_chars: usize,
    },
    /// Bytes that are not a valid Ed25519 public key.
    #[error("invalid public key {}", .key.short())]
    BadKey {
        /// The key.
        key: PublicKey,
    },
    /// A signature that does not verify under the key.
    #[error("signature by {} does not verify", .key.short())]
    BadSignature {
        /// The key.
        key: PublicKey,
    },
    /// A malformed amount string.
    #[error("bad amount: {reason}")]
    BadAmount {
        /// Why.
        reason: &'static str,
    },
    /// An intent field breaks the rules of `Intent::validate`.
    #[error("invalid intent: {field} {reason}")]
    InvalidIntent {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The intent expired.
    #[error("intent expired at {expires_at} (now {now})")]
    IntentExpired {
        /// Its expiry.
        expires_at: i64,
        /// The time of the check.
        now: i64,
    },
    /// The initiator's signature over the intent does not verify.
    #[error("initiator signature by {} does not verify", .initiator.short())]
    BadInitiatorSignature {
        /// The initiator.
        initiator: PublicKey,
    },
    /// The initiator is not in an initiator group of the policy.
    #[error("initiator {} is not allowed to initiate by the policy", .initiator.short())]
    InitiatorNotAllowed {
        /// The initiator.
        initiator: PublicKey,
    },
    /// The policy is for another vault.
    #[error("policy is for vault {policy:?}, intent for vault {intent:?}")]
    VaultMismatch {
        /// The policy's vault.
        policy: String,
        /// The intent's vault.
        intent: String,
    },
    /// The intent was already signed (its hash is in the receipt history).
    #[error("intent already signed (receipt seq {seq})")]
    Replay {
        /// The receipt that signed it.
        seq: u64,
    },
    /// A policy that breaks the structural rules of `Policy::check`.
    #[error("invalid policy: {reason}")]
    InvalidPolicy {
        /// Why (names the rule or group).
        reason: String,
    },
    /// A quorum threshold of zero was asked for.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// A policy signature by a key that is not a pinned admin.
    #[error("policy signed by {}, which is not an admin", .admin.short())]
    UnknownAdmin {
        /// The signer.
        admin: PublicKey,
    },
    /// An admin's policy signature does not verify.
    #[error("policy signature by admin {} does not verify", .admin.short())]
    BadAdminSignature {
        /// The admin.
        admin: PublicKey,
    },
    /// Too few distinct admins signed the policy.
    #[error("policy signed by {have} of {of} admins, {need} needed")]
    QuorumNotMet {
        /// Distinct admins with a valid signature.
        have: usize,
        /// The threshold.
        need: u16,
        /// The number of pinned admins.
        of: usize,
    },
    /// An approval whose signature does not verify.
    #[error("approval by {} does not verify", .approver.short())]
    BadApproval {
        /// The approver.
        approver: PublicKey,
    },
    /// An approval for another intent.
    #[error("approval by {} is for another intent", .approver.short())]
    ApprovalForOtherIntent {
        /// The approver.
        approver: PublicKey,
    },
    /// The policy blocks the intent.
    #[error("blocked by {}", .rule.as_deref().map_or("default deny (no rule matched)".to_string(), |r| format!("rule {r:?}")))]
    Blocked {
        /// The blocking rule; `None` when no rule matched.
        rule: Option<String>,
    },
    /// Required approvals are missing, or a required approver rejected.
    #[error("approvals missing: {}{}", missing_text(.missing), rejected_text(.rejected_by))]
    ApprovalsMissing {
        /// (group, have, need) for each unmet requirement.
        missing: Vec<(String, u16, u16)>,
        /// Members of required groups who rejected.
        rejected_by: Vec<PublicKey>,
    },
    /// A receipt signed by a key that is not a signer.
    #[error("receipt seq {seq} signed by {}, which is not a member", .signer.short())]
    UnknownSigner {
        /// The receipt.
        seq: u64,
        /// The signer.
        signer: PublicKey,
    },
    /// A receipt signature that does not verify.
    #[error("receipt seq {seq}: signature by {} does not verify", .signer.short())]
    BadReceiptSignature {
        /// The receipt.
        seq: u64,
        /// The signer.
        signer: PublicKey,
    },
    /// A receipt with too few distinct member signatures.
    #[error("receipt seq {seq} has {have} member signatures, {need} needed")]
    ReceiptQuorum {
        /// The receipt.
        seq: u64,
        /// Distinct valid member signatures.
        have: usize,
        /// The threshold.
        need: u16,
    },
    /// A receipt of another key's chain.
    #[error("receipt seq {seq} is for key {key_id:?}")]
    WrongKey {
        /// The receipt.
        seq: u64,
        /// Its key.
        key_id: String,
    },
    /// Sequence numbers are not contiguous.
    #[error("receipt history has a gap: seq {got} after seq {after}")]
    HistoryGap {
        /// The previous receipt.
        after: u64,
        /// The receipt that follows it.
        got: u64,
    },
    /// A receipt's `prev` is not the hash of the previous body.
    #[error("receipt seq {seq} does not link to its predecessor")]
    BrokenLink {
        /// The receipt.
        seq: u64,
    },
    /// A receipt earlier in time than its predecessor.
    #[error("receipt seq {seq} is older than its predecessor")]
    TimeReversed {
        /// The receipt.
        seq: u64,
    },
    /// The history does not end at the chain head.
    #[error("receipt history ends at {}, the chain head is {}", opt(.got), opt(.expected))]
    HistoryEnd {
        /// The expected last seq (`None`: empty history expected).
        expected: Option<u64>,
        /// The last seq given.
        got: Option<u64>,
    },
    /// The history does not reach back far enough.
    #[error("receipt history starts at seq {first_seq} (at {first_at}); a receipt before {need_before} is needed")]
    HistoryIncomplete {
        /// The history must reach a receipt strictly before this time (or seq 0).
        need_before: i64,
        /// Its first seq.
        first_seq: u64,
        /// Its first time.
        first_at: i64,
    },
    /// One intent signed twice in the history.
    #[error("receipt seq {seq} repeats the intent of seq {first_seq}")]
    DuplicateIntent {
        /// The later receipt.
        seq: u64,
        /// The earlier one.
        first_seq: u64,
    },
}

fn opt(v: &Option<u64>) -> String {
    v.map_or("none".into(), |v| format!("seq {v}"))
}

fn missing_text(m: &[(String, u16, u16)]) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(g, have, need)| format!("{g:?} {have}/{need}"))
        .collect();
    parts.join(", ")
}

fn rejected_text(r: &[PublicKey]) -> String {
    if r.is_empty() {
        return String::new();
    }
    let keys: Vec<String> = r.iter().map(PublicKey::short).collect();
    format!("; rejected by {}", keys.join(", "))
}
