//! Addresses: known vectors, cross-checked against alloy + k256 (an independent curve library).
// Tests: a panic is a failed test, so unwrap/expect are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_eth::{address, parse_address, EthError};

#[test]
fn secret_one_has_the_well_known_address() {
    let sk = secp256k1::SecretKey::from_slice(&{
        let mut b = [0u8; 32];
        b[31] = 1;
        b
    })
    .unwrap();
    let pk = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &sk);
    // The well-known vector. (Written "...Cb7B8C..." in some notes: that casing is not EIP-55,
    // alloy's own checksum agrees with "...Cb7b8C...".)
    let want = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf";
    assert_eq!(address(&pk.serialize()).unwrap(), want);
    assert_eq!(address(&pk.serialize_uncompressed()).unwrap(), want);
    assert!(alloy_primitives::Address::parse_checksummed(want, None).is_ok());
    assert!(matches!(
        parse_address("0x7E5F4552091A69125d5DfCb7B8C2659029395Bdf"),
        Err(EthError::BadChecksum { .. })
    ));
}

#[test]
fn address_matches_alloy_from_public_key_for_many_keys() {
    for i in 1u8..=20 {
        let secret = [i; 32];
        let k = k256::ecdsa::SigningKey::from_slice(&secret).unwrap();
        let alloy_addr = alloy_primitives::Address::from_public_key(k.verifying_key());
        let sk = secp256k1::SecretKey::from_slice(&secret).unwrap();
        let pk = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &sk);
        assert_eq!(
            address(&pk.serialize()).unwrap(),
            alloy_addr.to_checksum(None)
        );
    }
}

#[test]
fn eip55_spec_examples_parse_to_themselves() {
    for a in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
    ] {
        let want = alloy_primitives::Address::parse_checksummed(a, None)
            .unwrap()
            .to_checksum(None);
        assert_eq!(parse_address(a).unwrap(), want);
        assert_eq!(parse_address(&a.to_lowercase()).unwrap(), want);
    }
}

#[test]
fn bad_addresses_give_typed_errors() {
    assert!(matches!(
        parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
        Err(EthError::BadChecksum { .. })
    ));
    assert!(matches!(
        parse_address("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        Err(EthError::AddressMissingPrefix { .. })
    ));
    assert!(matches!(
        parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA"),
        Err(EthError::AddressLength { len: 38, .. })
    ));
    assert!(matches!(
        parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"),
        Err(EthError::AddressNotHex { .. })
    ));
    assert!(matches!(
        address(&[0u8; 33]),
        Err(EthError::BadPublicKey { len: 33 })
    ));
    assert!(matches!(
        address(&[4u8; 64]),
        Err(EthError::BadPublicKey { len: 64 })
    ));
}
