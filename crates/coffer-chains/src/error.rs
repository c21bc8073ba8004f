//! The facade's error: which chain refused what, or which intent field the transaction
//! contradicts.

use thiserror::Error;

/// Why a chain transaction was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The transaction text is not a valid [`crate::ChainTx`].
    #[error("transaction: {0}")]
    Format(String),
    /// Bitcoin refused it.
    #[error("bitcoin: {0}")]
    Bitcoin(#[from] coffer_btc::BtcError),
    /// Ethereum refused it.
    #[error("ethereum: {0}")]
    Ethereum(#[from] coffer_eth::EthError),
    /// Solana refused it.
    #[error("solana: {0}")]
    Solana(#[from] coffer_sol::SolError),
    /// The transaction does something other than the intent says.
    #[error("the transaction's {field} is {decoded}, but the intent says {intent}")]
    Mismatch {
        /// The field that differs (asset, destination, amount).
        field: &'static str,
        /// What the intent says.
        intent: String,
        /// What the transaction does.
        decoded: String,
    },
    /// The key has the wrong length or scheme for this chain.
    #[error("{chain} needs a {expected} key, got {actual} bytes")]
    Key {
        /// The chain.
        chain: &'static str,
        /// What it needs.
        expected: &'static str,
        /// The given length.
        actual: usize,
    },
    /// A signature is missing, extra or malformed.
    #[error("signatures: {0}")]
    Signatures(String),
    /// The chain or network name is unknown, or the chain has no address for this scheme.
    #[error("{0}")]
    Unsupported(String),
}
