//! Coffer's signer network, the parts both ends share: node identities ([`identity`]), the
//! pinned roster of signers and admins ([`roster`]), signed and encrypted protocol envelopes
//! ([`envelope`]), vault freeze orders ([`freeze`]), share backup kits and
//! the admin-signed recovery-key documents ([`backup`]), the frames signers and server exchange ([`frames`]), and mutual TLS
//! authenticated by raw identity keys ([`tls`]).
//!
//! Trust model: a signer trusts only keys it pinned at enrolment (peers, admins, the server's
//! TLS key) and later rosters signed by a quorum of the pinned admins. The server relays
//! envelopes; it cannot read point-to-point payloads, forge a peer's message, or move a
//! message into another session.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backup;
pub mod envelope;
pub mod frames;
pub mod freeze;
pub mod identity;
pub mod roster;
pub mod tls;

pub use identity::{Identity, IdentityError, NodeKey, PublicIdentity, SealKey};
