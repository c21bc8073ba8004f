//! Coffer's protocol core: threshold ECDSA (CGGMP24), threshold BIP340 Schnorr and Ed25519
//! (ZF FROST) behind one sans-IO [`Session`] API, with the key-share codec and encrypted
//! share files.
//!
//! No primitive is implemented here: the protocols come from `cggmp24` and `frost-core`,
//! curves from `generic-ec`, `k256` and `curve25519-dalek`, AEAD and KDF from RustCrypto. The
//! two pieces of cryptographic glue we own, threshold refresh of CGGMP keys
//! ([`zero_refresh`]) and the HD shift of FROST key packages (`frost_hd`), are isolated and
//! specified in `docs/`.
//!
//! A session is a state machine: start it with [`protocol::keygen`], [`protocol::sign`],
//! [`protocol::presign`] or [`protocol::refresh`], deliver incoming [`Message`]s with
//! [`Session::handle`], send what [`Session::take_outgoing`] yields, and read
//! [`Session::take_outcome`]. The offline ceremony ([`ceremony`]) drives all parties in one
//! process.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ceremony;
pub mod dkls;
pub mod ecdsa;
pub mod error;
pub mod frost;
mod frost_hd;
pub mod frost_pool;
pub mod hd;
pub mod ids;
mod join;
pub mod message;
pub mod path;
pub mod presigned;
pub mod primes;
pub mod protocol;
mod rb;
pub mod scheme;
pub mod session;
pub mod share;
pub mod share_file;
pub mod verify;
pub mod zero_refresh;

pub use error::{Abort, AbortReason, ArgumentError, RejectedMessage, SessionError};
pub use ids::{Epoch, GroupParams, PartyIndex, SessionId};
pub use message::Message;
pub use path::DerivationPath;
pub use protocol::Signature;
pub use scheme::{Backend, Scheme};
pub use session::{BoxedSession, Session};
pub use share::{KeyShare, ShareHeader};
#[cfg(test)]
mod malicious_tests;
