//! Coffer's custody rules as pure functions: no I/O, no clock (`now` is always a
//! parameter), never a panic on hostile input. The server and every signer node run the
//! same code on the same inputs and so reach the same decisions.
//!
//! * A vault's [`Policy`] is an ordered list of rules: the first rule whose conditions all
//!   hold decides (allow with approval requirements, or block); no match blocks (default
//!   deny). It only counts when signed by a quorum of the tenant's admin keys, pinned at
//!   enrolment ([`SignedPolicy::verify`]).
//! * An [`Intent`] has one canonical encoding; its hash is what the initiator and the
//!   approvers sign and what the ledger records.
//! * A signer sees only the sessions it takes part in, so it cannot know by itself what
//!   other signing sets signed. Each signing therefore produces a [`Receipt`], co-signed by
//!   at least a threshold of signers and hash-linked to the previous one on the key's chain.
//!   A session carries the receipts covering the velocity and replay window; a signer
//!   refuses when that chain is incomplete or broken ([`verify_history`]). With 2t > n any
//!   two signing sets share a signer, so a forked sequence (two receipts for one seq) is
//!   refused by that shared signer.
//! * [`authorize`] is everything a signer checks before signing, in one call.

mod amount;
mod approval;
pub mod audit;
mod error;
mod eval;
mod intent;
mod keys;
mod policy;
mod receipt;
#[cfg(test)]
mod testutil;

pub use amount::Amount;
pub use approval::{Approval, Decision};
pub use error::PolicyError;
pub use eval::{
    authorize, check_approvals, check_approvals_with_extra, evaluate, lookback_since,
    window_totals, ApprovalReport, Authorized, Context, Verdict,
};
pub use intent::{
    initiator_bytes, sign_initiation, verify_initiation, Intent, IntentKind,
    MAX_INTENT_LIFETIME_SECS,
};
pub use keys::{hex32, public_key_of, Hash32, PublicKey, Signature};
pub use policy::{
    Action, AdminSignature, Conditions, Member, Policy, Requirement, Rule, SignedPolicy,
    TimeWindow, Velocity,
};
pub use receipt::{verify_history, Receipt, ReceiptBody};
