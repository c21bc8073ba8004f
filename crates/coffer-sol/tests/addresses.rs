//! Addresses against independent base58 implementations (`bs58`, `solana-pubkey`'s parser) and
//! known vectors; malformed strings get typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use coffer_sol::{address, parse_address, SolError};
use ed25519_dalek::SigningKey;

#[test]
fn the_all_zero_key_is_the_system_program_address() {
    assert_eq!(
        address(&[0u8; 32]).unwrap(),
        "11111111111111111111111111111111"
    );
    assert_eq!(
        parse_address("11111111111111111111111111111111").unwrap(),
        "11111111111111111111111111111111"
    );
}

#[test]
fn known_program_addresses_round_trip() {
    // Published addresses: SPL Token and the Sysvar rent account.
    for a in [
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "SysvarRent111111111111111111111111111111111",
    ] {
        let bytes = bs58::decode(a).into_vec().unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(address(&bytes).unwrap(), a);
        assert_eq!(parse_address(a).unwrap(), a);
    }
}

#[test]
fn an_ed25519_public_key_encodes_as_bs58_does_and_decodes_back() {
    for seed in [[1u8; 32], [0xAB; 32], [0xFF; 32]] {
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let ours = address(&public).unwrap();
        assert_eq!(ours, bs58::encode(public).into_string());
        assert_eq!(bs58::decode(&ours).into_vec().unwrap(), public);
        assert_eq!(parse_address(&ours).unwrap(), ours);
    }
}

#[test]
fn public_keys_of_other_lengths_are_refused() {
    for len in [0usize, 31, 33, 64] {
        assert_eq!(
            address(&vec![5u8; len]),
            Err(SolError::PublicKeyLength { got: len })
        );
    }
}

#[test]
fn characters_outside_the_base58_alphabet_are_bad_base58() {
    // 0, O, I and l are not in the alphabet.
    for s in [
        "0OIl1111111111111111111111111111",
        "1111111111111111111111111111111O",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D!",
    ] {
        assert!(
            matches!(
                parse_address(s),
                Err(SolError::BadBase58 {
                    field: "address",
                    ..
                })
            ),
            "{s}: {:?}",
            parse_address(s)
        );
    }
}

#[test]
fn valid_base58_of_the_wrong_length_is_refused() {
    for len in [0usize, 1, 20, 31, 33, 64] {
        let s = bs58::encode(vec![0x42u8; len]).into_string();
        assert!(
            matches!(
                parse_address(&s),
                Err(SolError::WrongLength {
                    field: "address",
                    ..
                })
            ),
            "{len} bytes: {:?}",
            parse_address(&s)
        );
    }
}
