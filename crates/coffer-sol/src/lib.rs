//! Solana for Coffer: base58 addresses, system-program transfers, signed transactions, RPC broadcast.
//!
//! Coffer signs with threshold Ed25519 (FROST); this crate is the Solana glue around it and never
//! holds a private key:
//!
//! 1. [`build_transfer`] serializes the legacy message of a system-program transfer: the bytes
//!    the Ed25519 signature covers.
//! 2. [`decode_transfer`] reads such a message back, strictly, so policy sees exactly what will be
//!    signed (anything but one plain transfer from the fee payer is refused with a typed error).
//! 3. [`assemble`] checks the 64-byte signature produced by the signers against the fee payer's
//!    key (`ed25519-dalek`, `verify_strict`) and builds the wire transaction.
//! 4. [`rpc::SolanaRpc`] broadcasts it; with the `litesvm` feature, [`litesvm`] executes it in the
//!    Solana runtime for tests.
//!
//! Encodings come from Solana's own split SDK crates (`solana-pubkey`, `solana-hash`,
//! `solana-message`, `solana-transaction`, `solana-system-interface`, `solana-signature`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod assemble;
mod error;
mod transfer;

#[cfg(feature = "litesvm")]
pub mod litesvm;
pub mod rpc;

pub use address::{address, parse_address};
pub use assemble::{assemble, SignedTx};
pub use error::SolError;
pub use transfer::{build_transfer, decode_transfer, Decoded, TransferRequest};

/// The largest serialized transaction Solana accepts (`PACKET_DATA_SIZE`): no message can be longer.
pub const MAX_TRANSACTION_SIZE: usize = 1232;
