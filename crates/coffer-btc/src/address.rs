//! Addresses: P2WPKH (bech32) and BIP86 P2TR (bech32m) addresses of vault keys, the BIP86 output
//! key, and parsing of untrusted destination addresses into scriptPubKeys with typed errors.
//!
//! Encodings, hashes and the taproot tweak all come from the `bitcoin` crate; this module only
//! checks lengths, maps errors and refuses what we do not pay to.

use bitcoin::address::{Address, NetworkUnchecked, ParseError};
use bitcoin::bech32::primitives::decode::{
    CharError, SegwitHrpstringError, UncheckedHrpstringError,
};
use bitcoin::key::{CompressedPublicKey, TapTweak, XOnlyPublicKey};
use bitcoin::secp256k1::SECP256K1;
use bitcoin::ScriptBuf;

use crate::error::clip;
use crate::{BtcError, Network, Spend};

const COMPRESSED: &str = "compressed secp256k1";
const XONLY: &str = "x-only";

/// Parses a 33-byte compressed secp256k1 public key.
pub(crate) fn compressed_key(bytes: &[u8]) -> Result<CompressedPublicKey, BtcError> {
    if bytes.len() != 33 {
        return Err(BtcError::KeyLength {
            kind: COMPRESSED,
            expected: 33,
            got: bytes.len(),
        });
    }
    CompressedPublicKey::from_slice(bytes).map_err(|_| BtcError::InvalidKey { kind: COMPRESSED })
}

/// Parses a 32-byte x-only public key.
pub(crate) fn xonly_key(bytes: &[u8]) -> Result<XOnlyPublicKey, BtcError> {
    if bytes.len() != 32 {
        return Err(BtcError::KeyLength {
            kind: XONLY,
            expected: 32,
            got: bytes.len(),
        });
    }
    XOnlyPublicKey::from_slice(bytes).map_err(|_| BtcError::InvalidKey { kind: XONLY })
}

/// The BIP86 output key of an internal key (`Q = P + int(hashTapTweak(P))·G`, no script tree).
///
/// The `bitcoin` crate's tweak can only fail if the tagged hash is not below the curve order or the
/// sum is the point at infinity: both require breaking SHA-256 or the discrete log, so they are
/// unreachable for any key, hostile or not.
pub(crate) fn bip86_output_key(internal: XOnlyPublicKey) -> XOnlyPublicKey {
    let (tweaked, _parity) = internal.tap_tweak(SECP256K1, None);
    tweaked.to_x_only_public_key()
}

/// The scriptPubKey of the vault address of `key` for `spend`.
pub(crate) fn source_script(spend: Spend, key: &[u8]) -> Result<ScriptBuf, BtcError> {
    match spend {
        Spend::P2wpkh => Ok(ScriptBuf::new_p2wpkh(&compressed_key(key)?.wpubkey_hash())),
        Spend::P2tr => Ok(ScriptBuf::new_p2tr(SECP256K1, xonly_key(key)?, None)),
    }
}

/// P2WPKH address (bech32) of a compressed secp256k1 public key (33 bytes).
pub fn p2wpkh_address(public_key: &[u8], network: Network) -> Result<String, BtcError> {
    let key = compressed_key(public_key)?;
    Ok(Address::p2wpkh(&key, network.to_bitcoin()).to_string())
}

/// P2TR address (bech32m) with the BIP86 key-path tweak of an x-only internal key (32 bytes).
pub fn p2tr_address(internal_key: &[u8], network: Network) -> Result<String, BtcError> {
    let key = xonly_key(internal_key)?;
    Ok(Address::p2tr(SECP256K1, key, None, network.to_bitcoin()).to_string())
}

/// The BIP86 output key (x-only, 32 bytes) of an internal key: what a key-path signature must verify under.
pub fn taproot_output_key(internal_key: &[u8]) -> Result<[u8; 32], BtcError> {
    Ok(bip86_output_key(xonly_key(internal_key)?).serialize())
}

/// The address of `key` for `spend` (33-byte key for P2wpkh, 32-byte x-only for P2tr).
pub fn address(spend: Spend, key: &[u8], network: Network) -> Result<String, BtcError> {
    match spend {
        Spend::P2wpkh => p2wpkh_address(key, network),
        Spend::P2tr => p2tr_address(key, network),
    }
}

/// Parses an address and checks it is valid for `network` (wrong checksum, wrong network, unknown
/// witness version: typed errors). Returns the scriptPubKey bytes.
///
/// Accepted: P2PKH, P2SH (base58) and P2WPKH, P2WSH, P2TR (bech32/bech32m). Segwit versions 2–16
/// are refused ([`BtcError::AddressWitnessVersion`]): nothing can spend them today.
pub fn parse_address(address: &str, network: Network) -> Result<Vec<u8>, BtcError> {
    Ok(checked_address(address, network)?
        .script_pubkey()
        .into_bytes())
}

/// [`parse_address`], returning the `bitcoin` crate's address.
pub(crate) fn checked_address(s: &str, network: Network) -> Result<Address, BtcError> {
    let lower = s.to_ascii_lowercase();
    if ["bc1", "tb1", "bcrt1"].iter().any(|p| lower.starts_with(p)) {
        // Decode the segwit form ourselves first: `Address::from_str` falls back to base58 on any
        // bech32 error, which would hide a bad checksum or mixed case behind a base58 error.
        match bitcoin::bech32::segwit::decode(s) {
            Err(e) => return Err(bech32_error(e.0, s)),
            Ok((_hrp, version, _program)) => {
                if version.to_u8() > 1 {
                    return Err(BtcError::AddressWitnessVersion {
                        address: clip(s),
                        version: version.to_u8(),
                    });
                }
            }
        }
    }
    let unchecked: Address<NetworkUnchecked> = s.parse().map_err(|e| parse_error(e, s))?;
    if !unchecked.is_valid_for_network(network.to_bitcoin()) {
        return Err(BtcError::AddressWrongNetwork {
            address: clip(s),
            expected: network,
        });
    }
    let checked = unchecked.assume_checked();
    if checked.address_type().is_none() {
        return Err(BtcError::AddressNonStandard { address: clip(s) });
    }
    Ok(checked)
}

fn bech32_error(e: SegwitHrpstringError, s: &str) -> BtcError {
    match e {
        SegwitHrpstringError::Unchecked(UncheckedHrpstringError::Char(CharError::MixedCase)) => {
            BtcError::AddressMixedCase { address: clip(s) }
        }
        SegwitHrpstringError::Checksum(_) => BtcError::AddressChecksum { address: clip(s) },
        SegwitHrpstringError::InvalidWitnessVersion(v) => BtcError::AddressWitnessVersion {
            address: clip(s),
            version: v.to_u8(),
        },
        other => BtcError::AddressMalformed {
            address: clip(s),
            reason: other.to_string(),
        },
    }
}

fn parse_error(e: ParseError, s: &str) -> BtcError {
    match e {
        ParseError::Base58(bitcoin::base58::Error::IncorrectChecksum(_)) => {
            BtcError::AddressChecksum { address: clip(s) }
        }
        ParseError::WitnessVersion(_) => BtcError::AddressMalformed {
            address: clip(s),
            reason: "invalid witness version".to_owned(),
        },
        other => BtcError::AddressMalformed {
            address: clip(s),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_are_checked_before_parsing() {
        assert_eq!(
            p2wpkh_address(&[2; 32], Network::Mainnet),
            Err(BtcError::KeyLength {
                kind: COMPRESSED,
                expected: 33,
                got: 32
            })
        );
        assert_eq!(
            p2tr_address(&[2; 33], Network::Mainnet),
            Err(BtcError::KeyLength {
                kind: XONLY,
                expected: 32,
                got: 33
            })
        );
        // 0x05 prefix is not a compressed key; x = 0 is not on the curve.
        assert_eq!(
            p2wpkh_address(&[5; 33], Network::Mainnet),
            Err(BtcError::InvalidKey { kind: COMPRESSED })
        );
        assert_eq!(
            taproot_output_key(&[0; 32]),
            Err(BtcError::InvalidKey { kind: XONLY })
        );
    }
}
