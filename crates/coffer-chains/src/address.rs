//! Chain names, key schemes and addresses: which vault key a chain uses and the address of a
//! (child) public key on it.

use std::fmt;
use std::str::FromStr;

use crate::ChainError;

/// A chain Coffer builds transactions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// Bitcoin (P2WPKH from the ECDSA key, P2TR from the BIP340 key).
    Bitcoin,
    /// Ethereum (the ECDSA key).
    Ethereum,
    /// Solana (the Ed25519 key).
    Solana,
}

impl Chain {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Chain::Bitcoin => "bitcoin",
            Chain::Ethereum => "ethereum",
            Chain::Solana => "solana",
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Chain {
    type Err = ChainError;
    fn from_str(s: &str) -> Result<Self, ChainError> {
        match s.to_ascii_lowercase().as_str() {
            "bitcoin" | "btc" => Ok(Chain::Bitcoin),
            "ethereum" | "eth" => Ok(Chain::Ethereum),
            "solana" | "sol" => Ok(Chain::Solana),
            other => Err(ChainError::Unsupported(format!(
                "unknown chain {other:?} (bitcoin, ethereum or solana)"
            ))),
        }
    }
}

/// The vault key scheme a transaction is signed with (names as `coffer_proto::Scheme`'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyScheme {
    /// Threshold ECDSA over secp256k1 (33-byte compressed keys).
    Ecdsa,
    /// Threshold BIP340 Schnorr (32-byte x-only keys).
    Bip340,
    /// Threshold Ed25519 (32-byte keys).
    Ed25519,
}

impl KeyScheme {
    /// The scheme's name as the protocol layer spells it.
    pub fn name(self) -> &'static str {
        match self {
            KeyScheme::Ecdsa => "ecdsa-secp256k1",
            KeyScheme::Bip340 => "schnorr-bip340",
            KeyScheme::Ed25519 => "ed25519",
        }
    }

    /// The scheme named `name` (the protocol layer's spelling).
    pub fn from_name(name: &str) -> Result<Self, ChainError> {
        match name {
            "ecdsa-secp256k1" => Ok(KeyScheme::Ecdsa),
            "schnorr-bip340" => Ok(KeyScheme::Bip340),
            "ed25519" => Ok(KeyScheme::Ed25519),
            other => Err(ChainError::Unsupported(format!("unknown scheme {other:?}"))),
        }
    }
}

/// Checks that `chain` has addresses for `scheme` keys and knows `network`.
pub fn check_supported(
    chain: Chain,
    network: Option<&str>,
    scheme: KeyScheme,
) -> Result<(), ChainError> {
    let ok = matches!(
        (chain, scheme),
        (Chain::Bitcoin, KeyScheme::Ecdsa | KeyScheme::Bip340)
            | (Chain::Ethereum, KeyScheme::Ecdsa)
            | (Chain::Solana, KeyScheme::Ed25519)
    );
    if !ok {
        return Err(ChainError::Unsupported(format!(
            "{chain} has no address for a {} key",
            scheme.name()
        )));
    }
    match chain {
        Chain::Bitcoin => {
            network
                .unwrap_or("mainnet")
                .parse::<coffer_btc::Network>()?;
            Ok(())
        }
        Chain::Ethereum => check_network(chain, network, ETHEREUM_NETWORKS),
        Chain::Solana => check_network(chain, network, SOLANA_NETWORKS),
    }
}

const ETHEREUM_NETWORKS: &[&str] = &["mainnet", "sepolia", "holesky", "local"];
const SOLANA_NETWORKS: &[&str] = &["mainnet", "devnet", "testnet", "local"];

/// The address of `key` (a vault's child public key under `scheme`) on `chain`. `network`
/// names the Bitcoin network (mainnet, testnet, signet, regtest; mainnet when `None`); the
/// Ethereum and Solana address encodings are the same on every network, so a network given
/// there is only checked to be one Coffer knows.
pub fn address(
    chain: Chain,
    network: Option<&str>,
    scheme: KeyScheme,
    key: &[u8],
) -> Result<String, ChainError> {
    check_supported(chain, network, scheme)?;
    match chain {
        Chain::Bitcoin => {
            let network: coffer_btc::Network = network.unwrap_or("mainnet").parse()?;
            let spend = if scheme == KeyScheme::Bip340 {
                coffer_btc::Spend::P2tr
            } else {
                coffer_btc::Spend::P2wpkh
            };
            Ok(coffer_btc::address(spend, key, network)?)
        }
        Chain::Ethereum => Ok(coffer_eth::address(key)?),
        Chain::Solana => Ok(coffer_sol::address(key)?),
    }
}

fn check_network(chain: Chain, network: Option<&str>, known: &[&str]) -> Result<(), ChainError> {
    match network {
        Some(n) if !known.contains(&n) => Err(ChainError::Unsupported(format!(
            "unknown {chain} network {n:?} (one of {})",
            known.join(", ")
        ))),
        _ => Ok(()),
    }
}
