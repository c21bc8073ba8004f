//! Ethereum addresses: derivation from secp256k1 public keys and EIP-55 checksum parsing.

use alloy_primitives::Address;

use crate::EthError;

/// EIP-55 checksummed address ("0x" + 40 hex) of a secp256k1 public key (33-byte compressed or 65-byte uncompressed).
///
/// The key is validated as a curve point by libsecp256k1 before hashing.
pub fn address(public_key: &[u8]) -> Result<String, EthError> {
    Ok(address_of_key(public_key)?.to_checksum(None))
}

/// The 20-byte address of a public key (validated by libsecp256k1).
pub(crate) fn address_of_key(public_key: &[u8]) -> Result<Address, EthError> {
    let key = secp256k1::PublicKey::from_slice(public_key).map_err(|_| EthError::BadPublicKey {
        len: public_key.len(),
    })?;
    Ok(address_of_secp(&key))
}

/// The address of an already-validated libsecp256k1 public key.
pub(crate) fn address_of_secp(key: &secp256k1::PublicKey) -> Address {
    let uncompressed = key.serialize_uncompressed();
    // `serialize_uncompressed` is 0x04 || x || y; the address hashes x || y (64 bytes).
    let [_, raw @ ..] = uncompressed;
    Address::from_raw_public_key(&raw)
}

/// Parses "0x"-prefixed 40-hex address; all-lowercase or all-uppercase accepted, mixed case must match EIP-55 (else EthError::BadChecksum). Returns the checksummed form.
pub fn parse_address(s: &str) -> Result<String, EthError> {
    Ok(parse(s)?.to_checksum(None))
}

/// [`parse_address`], returning the raw address.
pub(crate) fn parse(s: &str) -> Result<Address, EthError> {
    let hex_part = s
        .strip_prefix("0x")
        .ok_or_else(|| EthError::AddressMissingPrefix {
            input: s.to_owned(),
        })?;
    if hex_part.len() != 40 {
        return Err(EthError::AddressLength {
            input: s.to_owned(),
            len: hex_part.chars().count(),
        });
    }
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| EthError::AddressNotHex {
        input: s.to_owned(),
    })?;
    let address = Address::from(bytes);
    let has_lower = hex_part.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex_part.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let expected = address.to_checksum(None);
        if expected != s {
            return Err(EthError::BadChecksum {
                input: s.to_owned(),
                expected,
            });
        }
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lowercase_and_all_uppercase_are_accepted() {
        let want = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert_eq!(parse_address(&want.to_lowercase()).unwrap(), want);
        let upper = format!("0x{}", want[2..].to_uppercase());
        assert_eq!(parse_address(&upper).unwrap(), want);
    }

    #[test]
    fn flipped_case_is_a_bad_checksum() {
        let bad = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(matches!(
            parse_address(bad),
            Err(EthError::BadChecksum { .. })
        ));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        // 40 bytes but not 40 chars: must be a typed error, never a slicing panic.
        let s = format!("0x{}", "é".repeat(20));
        assert!(parse_address(&s).is_err());
    }
}
