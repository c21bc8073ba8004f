//! Ethereum for Coffer: EIP-55 addresses, EIP-1559 transactions, ERC-20 transfer decoding,
//! EIP-712 and EIP-191 digests, JSON-RPC broadcast.
//!
//! This crate is glue over alloy's crates (encodings, keccak, EIP-712) and libsecp256k1
//! (key parsing, signature recovery). It never holds private keys: signatures arrive as
//! 64-byte r||s plus a recovery id from the threshold signers, and are only accepted when they
//! are low-S and recover the vault's address.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod error;
mod message;
mod tx;

pub mod rpc;

#[cfg(feature = "anvil")]
pub mod anvil;

pub use address::{address, parse_address};
pub use error::EthError;
pub use message::{
    message_signature, personal_message_hash, signature_hex65, typed_data_hash, TypedSummary,
};
pub use tx::{
    assemble, build_eip1559, decode_eip1559, erc20_transfer_data, signing_hash, Decoded, SignedTx,
    TxRequest, MAX_GAS_LIMIT,
};
