//! Solana addresses: the base58 spelling of 32-byte Ed25519 public keys (via `solana-pubkey`).

use std::str::FromStr;

use solana_hash::Hash;
use solana_pubkey::{ParsePubkeyError, Pubkey};

use crate::SolError;

/// Base58 address of a 32-byte Ed25519 public key.
pub fn address(public_key: &[u8]) -> Result<String, SolError> {
    let key = Pubkey::try_from(public_key).map_err(|_| SolError::PublicKeyLength {
        got: public_key.len(),
    })?;
    Ok(key.to_string())
}

/// Parses a base58 address (exactly 32 bytes; typed errors for bad base58 / wrong length).
/// Returns the canonical string.
pub fn parse_address(s: &str) -> Result<String, SolError> {
    Ok(parse_pubkey("address", s)?.to_string())
}

/// Parses a base58 address into its key, for the named field.
pub(crate) fn parse_pubkey(field: &'static str, s: &str) -> Result<Pubkey, SolError> {
    let key = Pubkey::from_str(s).map_err(|e| match e {
        ParsePubkeyError::Invalid => SolError::BadBase58 {
            field,
            input: s.to_owned(),
        },
        ParsePubkeyError::WrongSize => SolError::WrongLength {
            field,
            input: s.to_owned(),
        },
    })?;
    let canonical = key.to_string();
    if canonical != s {
        return Err(SolError::NonCanonicalBase58 {
            field,
            input: s.to_owned(),
            canonical,
        });
    }
    Ok(key)
}

/// Parses a base58 blockhash (32 bytes).
pub(crate) fn parse_hash(field: &'static str, s: &str) -> Result<Hash, SolError> {
    // A blockhash is spelled exactly like an address: reuse the address parser's typed errors.
    let key = parse_pubkey(field, s)?;
    Ok(Hash::new_from_array(key.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_zero_key_is_the_system_program_address() {
        assert_eq!(
            address(&[0u8; 32]).unwrap(),
            "11111111111111111111111111111111"
        );
    }

    #[test]
    fn a_31_byte_key_is_refused() {
        assert_eq!(
            address(&[1u8; 31]),
            Err(SolError::PublicKeyLength { got: 31 })
        );
    }

    #[test]
    fn a_blockhash_parses_like_an_address() {
        let h = parse_hash("recent_blockhash", "11111111111111111111111111111112").unwrap();
        let mut want = [0u8; 32];
        want[31] = 1;
        assert_eq!(h.to_bytes(), want);
    }
}
