//! The signature schemes and protocol backends Coffer offers, with their names on the CLI
//! and in share files.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// A signature scheme.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Scheme {
    /// ECDSA over secp256k1 (Bitcoin SegWit v0, Ethereum).
    #[serde(rename = "ecdsa-secp256k1")]
    EcdsaSecp256k1,
    /// BIP340 Schnorr over secp256k1 (Taproot).
    #[serde(rename = "schnorr-bip340")]
    SchnorrBip340,
    /// Ed25519 (Solana).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl Scheme {
    /// Every scheme, in display order.
    pub const ALL: [Scheme; 3] = [
        Scheme::EcdsaSecp256k1,
        Scheme::SchnorrBip340,
        Scheme::Ed25519,
    ];

    /// The name used on the command line and in files.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Scheme::SchnorrBip340 => "schnorr-bip340",
            Scheme::Ed25519 => "ed25519",
        }
    }

    /// The backend that implements this scheme in this build.
    pub const fn default_backend(self) -> Backend {
        match self {
            Scheme::EcdsaSecp256k1 => Backend::Cggmp24,
            Scheme::SchnorrBip340 | Scheme::Ed25519 => Backend::Frost,
        }
    }

    /// Length of a public key in Coffer's encoding.
    pub const fn public_key_len(self) -> usize {
        match self {
            Scheme::EcdsaSecp256k1 => 33,
            Scheme::SchnorrBip340 | Scheme::Ed25519 => 32,
        }
    }

    /// Required message length, or `None` when any length is signed.
    pub const fn message_len(self) -> Option<usize> {
        match self {
            Scheme::EcdsaSecp256k1 | Scheme::SchnorrBip340 => Some(32),
            Scheme::Ed25519 => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown scheme name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheme {0:?}: expected ecdsa-secp256k1, schnorr-bip340 or ed25519")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheme(s.chars().take(64).collect()))
    }
}

/// The protocol implementation behind a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Backend {
    /// LFDT-Lockness `cggmp24` (audited by Kudelski as `cggmp21`): threshold ECDSA with
    /// Paillier-based presignatures.
    #[serde(rename = "cggmp24")]
    Cggmp24,
    /// Zcash Foundation FROST 3.0 (audited core): threshold Schnorr.
    #[serde(rename = "frost")]
    Frost,
    /// 0xCarbon `dkls23` 0.6.2 (OT-based DKLs23, UNAUDITED): threshold ECDSA without Paillier.
    #[serde(rename = "dkls23")]
    Dkls23,
}

impl Backend {
    /// The name used in files and listings.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Cggmp24 => "cggmp24",
            Backend::Frost => "frost",
            Backend::Dkls23 => "dkls23",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_round_trip_and_unknown_names_are_refused() {
        for s in Scheme::ALL {
            assert_eq!(s.name().parse::<Scheme>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert!("ecdsa".parse::<Scheme>().is_err());
        assert!("ED25519".parse::<Scheme>().is_err());
    }
}
