//! The audit log's hash chain: one chain per tenant (and one, `_platform`, for events that
//! belong to no tenant). The pure chain code (entries, hashing, verification, exports and
//! the checkpoints the signers co-sign) lives in [`coffer_policy::audit`], so signers and
//! offline verifiers run the very same code; it is re-exported here so that
//! `coffer_server::audit::...` paths keep working. The database appends entries inside the
//! same transaction as the change they record ([`crate::db::audit_store`]).

pub use coffer_policy::audit::*;
