//! EIP-712 against the spec's own digest; EIP-191 against alloy's independent implementation.
// Tests: a panic is a failed test, so unwrap/expect are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use coffer_eth::{personal_message_hash, signature_hex65, typed_data_hash};

const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

#[test]
fn eip712_mail_example_has_the_spec_digest() {
    let (digest, summary) = typed_data_hash(MAIL).unwrap();
    assert_eq!(
        hex::encode(digest),
        "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    assert_eq!(summary.primary_type, "Mail");
    assert_eq!(summary.domain_name.as_deref(), Some("Ether Mail"));
    assert_eq!(summary.chain_id, Some(1));
    assert_eq!(
        summary.verifying_contract.as_deref(),
        Some("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
    );
}

#[test]
fn eip712_digest_changes_with_the_message() {
    let tampered = MAIL.replace("Hello, Bob!", "Hello, Eve!");
    assert_ne!(
        typed_data_hash(&tampered).unwrap().0,
        typed_data_hash(MAIL).unwrap().0
    );
}

#[test]
fn eip191_hash_matches_alloy_and_known_value() {
    assert_eq!(
        personal_message_hash(b"hello"),
        alloy_primitives::eip191_hash_message(b"hello").0
    );
    assert_eq!(
        hex::encode(personal_message_hash(b"hello")),
        "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
    );
    for msg in [&b""[..], b"x", &[0xffu8; 1000][..]] {
        assert_eq!(
            personal_message_hash(msg),
            alloy_primitives::eip191_hash_message(msg).0
        );
    }
}

#[test]
fn personal_sign_signature_recovers_in_alloy() {
    let (sk, pk) = common::test_key();
    let digest = personal_message_hash(b"coffer");
    let (rs, recid) = common::sign(&sk, digest);
    let sig_hex = signature_hex65(&rs, recid).unwrap();
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes[64], 27 + recid);
    let sig = alloy_primitives::Signature::try_from(bytes.as_slice()).unwrap();
    let recovered = sig.recover_address_from_msg(b"coffer").unwrap();
    assert_eq!(
        recovered.to_checksum(None),
        coffer_eth::address(&pk.serialize()).unwrap()
    );
    let (high, high_recid) = common::to_high_s(&rs, recid);
    assert!(signature_hex65(&high, high_recid).is_err());
}
