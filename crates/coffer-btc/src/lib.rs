//! Bitcoin for Coffer: P2WPKH and P2TR (BIP86) addresses, PSBTs built from caller-supplied UTXOs,
//! BIP143/BIP341 sighashes, finalized transactions.
//!
//! This crate is glue over the `bitcoin` crate (addresses, BIP174 PSBTs, sighashes, the taproot
//! tweak) and `secp256k1` (signature verification). It never holds private keys: the threshold
//! signers sign the digests returned by [`sighashes`] and hand back 64-byte signatures, which
//! [`finalize`] verifies before it puts them into witnesses.
//!
//! The flow: [`build_psbt`] (coordinator) → [`decode`] (every signer checks what it signs) →
//! [`sighashes`] → threshold signing → [`finalize`] → [`rpc::BitcoinRpc::send_raw_transaction`].
//!
//! Every function taking a PSBT, an address or a UTXO string treats it as hostile: no panics,
//! typed [`BtcError`]s, checked arithmetic on amounts.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod build;
mod decode;
mod error;
mod finalize;
pub mod rpc;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use address::{address, p2tr_address, p2wpkh_address, parse_address, taproot_output_key};
pub use build::{build_psbt, SpendRequest, Utxo, MAX_FEE_RATE};
pub use decode::{decode, sighashes, Decoded};
pub use error::BtcError;
pub use finalize::{finalize, SignedTx};

/// Which Bitcoin network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Bitcoin mainnet (`bc1…`).
    Mainnet,
    /// Testnet3 (`tb1…`).
    Testnet,
    /// Signet (`tb1…`).
    Signet,
    /// Regtest (`bcrt1…`).
    Regtest,
}

impl Network {
    /// The `bitcoin` crate's network.
    pub(crate) fn to_bitcoin(self) -> bitcoin::Network {
        match self {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }
}

impl FromStr for Network {
    type Err = BtcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "signet" => Ok(Network::Signet),
            "regtest" => Ok(Network::Regtest),
            other => Err(BtcError::UnknownNetwork {
                name: error::clip(other),
            }),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        })
    }
}

/// The kind of vault address that spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spend {
    /// Segwit v0 pay-to-witness-public-key-hash; ECDSA signatures (BIP143 sighash).
    P2wpkh,
    /// Taproot key-path spend of a BIP86 output; BIP340 Schnorr signatures (BIP341 sighash).
    P2tr,
}

impl FromStr for Spend {
    type Err = BtcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "p2wpkh" => Ok(Spend::P2wpkh),
            "p2tr" => Ok(Spend::P2tr),
            other => Err(BtcError::UnknownSpend {
                name: error::clip(other),
            }),
        }
    }
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Spend::P2wpkh => "p2wpkh",
            Spend::P2tr => "p2tr",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_spend_names_round_trip() {
        for n in [
            Network::Mainnet,
            Network::Testnet,
            Network::Signet,
            Network::Regtest,
        ] {
            assert_eq!(n.to_string().parse::<Network>(), Ok(n));
        }
        assert_eq!("bitcoin".parse::<Network>(), Ok(Network::Mainnet));
        assert!(matches!(
            "Mainnet".parse::<Network>(),
            Err(BtcError::UnknownNetwork { .. })
        ));
        for s in [Spend::P2wpkh, Spend::P2tr] {
            assert_eq!(s.to_string().parse::<Spend>(), Ok(s));
        }
        assert!(matches!(
            "p2pkh".parse::<Spend>(),
            Err(BtcError::UnknownSpend { .. })
        ));
    }

    #[test]
    fn serde_names_are_lowercase() {
        assert_eq!(
            serde_json::to_string(&Network::Regtest).ok().as_deref(),
            Some("\"regtest\"")
        );
        assert_eq!(
            serde_json::to_string(&Spend::P2tr).ok().as_deref(),
            Some("\"p2tr\"")
        );
    }
}
