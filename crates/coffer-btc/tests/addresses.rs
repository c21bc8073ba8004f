//! Addresses against published BIP vectors and the `bitcoin` crate's own constructors; parsing
//! errors are typed.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::key::{CompressedPublicKey, Keypair, Secp256k1, XOnlyPublicKey};
use bitcoin::secp256k1::SecretKey;
use bitcoin::Address;
use coffer_btc::{
    address, p2tr_address, p2wpkh_address, parse_address, taproot_output_key, BtcError, Network,
    Spend,
};

const BIP84_PUBKEY: &str = "0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c";
const BIP84_ADDRESS: &str = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu";
const BIP86_INTERNAL: &str = "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115";
const BIP86_OUTPUT: &str = "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c";
const BIP86_ADDRESS: &str = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";

#[test]
fn bip84_first_receive_address_matches() {
    let key = hex::decode(BIP84_PUBKEY).unwrap();
    assert_eq!(
        p2wpkh_address(&key, Network::Mainnet).unwrap(),
        BIP84_ADDRESS
    );
    assert_eq!(
        address(Spend::P2wpkh, &key, Network::Mainnet).unwrap(),
        BIP84_ADDRESS
    );
}

#[test]
fn bip86_first_address_and_output_key_match() {
    let key = hex::decode(BIP86_INTERNAL).unwrap();
    assert_eq!(p2tr_address(&key, Network::Mainnet).unwrap(), BIP86_ADDRESS);
    assert_eq!(
        address(Spend::P2tr, &key, Network::Mainnet).unwrap(),
        BIP86_ADDRESS
    );
    let output = taproot_output_key(&key).unwrap();
    assert_eq!(hex::encode(output), BIP86_OUTPUT);
    // The output key is the address's witness program (decoded by the bech32 crate).
    let (_, version, program) = bitcoin::bech32::segwit::decode(BIP86_ADDRESS).unwrap();
    assert_eq!(version.to_u8(), 1);
    assert_eq!(program, output.to_vec());
}

#[test]
fn addresses_match_the_bitcoin_crate_on_every_network() {
    let secp = Secp256k1::new();
    for seed in 1u8..=20 {
        let sk = SecretKey::from_slice(&[seed; 32]).unwrap();
        let compressed = CompressedPublicKey(sk.public_key(&secp));
        let (xonly, _) = Keypair::from_secret_key(&secp, &sk).x_only_public_key();
        for (ours, theirs, prefix) in [
            (Network::Mainnet, bitcoin::Network::Bitcoin, "bc1"),
            (Network::Testnet, bitcoin::Network::Testnet, "tb1"),
            (Network::Signet, bitcoin::Network::Signet, "tb1"),
            (Network::Regtest, bitcoin::Network::Regtest, "bcrt1"),
        ] {
            let wpkh = p2wpkh_address(&compressed.to_bytes(), ours).unwrap();
            assert_eq!(wpkh, Address::p2wpkh(&compressed, theirs).to_string());
            assert!(wpkh.starts_with(&format!("{prefix}q")), "{wpkh}");
            let tr = p2tr_address(&xonly.serialize(), ours).unwrap();
            assert_eq!(tr, Address::p2tr(&secp, xonly, None, theirs).to_string());
            assert!(tr.starts_with(&format!("{prefix}p")), "{tr}");
            // And they parse back to the bitcoin crate's scripts.
            assert_eq!(
                parse_address(&tr, ours).unwrap(),
                Address::p2tr(&secp, xonly, None, theirs)
                    .script_pubkey()
                    .to_bytes()
            );
        }
    }
}

#[test]
fn output_key_is_the_tweak_the_bitcoin_crate_computes() {
    use bitcoin::key::TapTweak;
    let secp = Secp256k1::new();
    let internal = XOnlyPublicKey::from_slice(&hex::decode(BIP86_INTERNAL).unwrap()).unwrap();
    let (tweaked, _) = internal.tap_tweak(&secp, None);
    assert_eq!(
        taproot_output_key(&internal.serialize()).unwrap(),
        tweaked.to_x_only_public_key().serialize()
    );
}

#[test]
fn parse_returns_the_script_of_each_supported_type() {
    let wpkh = parse_address(BIP84_ADDRESS, Network::Mainnet).unwrap();
    assert_eq!(wpkh.len(), 22);
    assert_eq!(&wpkh[..2], &[0x00, 0x14]);
    let tr = parse_address(BIP86_ADDRESS, Network::Mainnet).unwrap();
    assert_eq!(hex::encode(&tr), format!("5120{BIP86_OUTPUT}"));
    // Uppercase bech32 is valid (QR codes).
    assert_eq!(
        parse_address(&BIP86_ADDRESS.to_uppercase(), Network::Mainnet).unwrap(),
        tr
    );
    // P2PKH and P2SH (base58).
    assert_eq!(
        parse_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", Network::Mainnet)
            .unwrap()
            .len(),
        25
    );
    assert_eq!(
        parse_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", Network::Mainnet)
            .unwrap()
            .len(),
        23
    );
    // Testnet P2WPKH is valid on testnet and signet, not on regtest (bcrt) or mainnet.
    let tb = p2wpkh_address(&hex::decode(BIP84_PUBKEY).unwrap(), Network::Testnet).unwrap();
    assert!(parse_address(&tb, Network::Signet).is_ok());
    assert!(matches!(
        parse_address(&tb, Network::Regtest),
        Err(BtcError::AddressWrongNetwork {
            expected: Network::Regtest,
            ..
        })
    ));
}

#[test]
fn wrong_checksum_is_a_checksum_error() {
    let mut bad = BIP84_ADDRESS.to_owned();
    bad.pop();
    bad.push('v');
    assert!(matches!(
        parse_address(&bad, Network::Mainnet),
        Err(BtcError::AddressChecksum { .. })
    ));
    // BIP350 invalid vector: a v1 program with a bech32 (not bech32m) checksum.
    assert!(matches!(
        parse_address(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            Network::Mainnet
        ),
        Err(BtcError::AddressChecksum { .. })
    ));
    // Base58 with a broken checksum.
    assert!(matches!(
        parse_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", Network::Mainnet),
        Err(BtcError::AddressChecksum { .. })
    ));
}

#[test]
fn mixed_case_is_refused() {
    let mixed = format!("BC1{}", &BIP84_ADDRESS[3..]);
    assert!(matches!(
        parse_address(&mixed, Network::Mainnet),
        Err(BtcError::AddressMixedCase { .. })
    ));
}

#[test]
fn wrong_network_is_refused() {
    assert_eq!(
        parse_address(BIP84_ADDRESS, Network::Testnet),
        Err(BtcError::AddressWrongNetwork {
            address: BIP84_ADDRESS.to_owned(),
            expected: Network::Testnet
        })
    );
    assert!(matches!(
        parse_address(BIP86_ADDRESS, Network::Regtest),
        Err(BtcError::AddressWrongNetwork { .. })
    ));
    assert!(matches!(
        parse_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", Network::Testnet),
        Err(BtcError::AddressWrongNetwork { .. })
    ));
}

#[test]
fn future_witness_versions_are_refused() {
    // BIP350 valid vectors of witness versions 2 and 16.
    assert_eq!(
        parse_address("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", Network::Mainnet),
        Err(BtcError::AddressWitnessVersion {
            address: "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs".to_owned(),
            version: 2
        })
    );
    assert!(matches!(
        parse_address("BC1SW50QGDZ25J", Network::Mainnet),
        Err(BtcError::AddressWitnessVersion { version: 16, .. })
    ));
}

#[test]
fn garbage_is_malformed() {
    for garbage in [
        "",
        "hello",
        "bc1",
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "\u{1F600}",
    ] {
        assert!(
            matches!(
                parse_address(garbage, Network::Mainnet),
                Err(BtcError::AddressMalformed { .. })
            ),
            "{garbage:?}: {:?}",
            parse_address(garbage, Network::Mainnet)
        );
    }
}
