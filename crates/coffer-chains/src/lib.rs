//! One interface over Coffer's chains, shared by the CLI (which builds a transaction), the
//! server (which checks it before any signing session starts and finishes it afterwards)
//! and every signer (which decodes it itself and signs only the digests it computed).
//!
//! An intent that moves funds on a chain carries a [`ChainTx`]: the unsigned transaction in
//! the chain's own encoding (a PSBT, an EIP-1559 payload, a Solana message). Nobody signs
//! what the server claims a transaction does:
//!
//! - [`ChainTx::check_intent`] decodes it under the vault's child key and refuses unless the
//!   decoded asset, destination and amount are the intent's (policy is evaluated on those);
//! - [`ChainTx::digests`] computes what the threshold keys sign (one BIP143/BIP341 sighash
//!   per Bitcoin input, the EIP-1559 signing hash, the Solana message bytes);
//! - [`ChainTx::finalize`] puts the signatures in and returns the transaction in the chain's
//!   encoding with its id, after the chain library's own checks.
//!
//! The chain crates (`coffer-btc`, `coffer-eth`, `coffer-sol`) hold the chain-specific code.

mod address;
mod chain_tx;
mod error;

pub use address::{address, check_supported, Chain, KeyScheme};
pub use chain_tx::{
    ChainTx, Decoded, Finished, SignMode, SignaturePart, EIP191_DESTINATION, EIP712_NO_CONTRACT,
    MAX_MESSAGE_BYTES,
};
pub use error::ChainError;

pub use coffer_btc as btc;
pub use coffer_eth as eth;
pub use coffer_sol as sol;
