//! Signing round trip: a test key stands in for the threshold signers; alloy (with k256) is the
//! independent verifier that decodes the raw transaction and recovers the signer.
// Tests: a panic is a failed test, so unwrap/expect are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use coffer_eth::{
    address, assemble, build_eip1559, decode_eip1559, erc20_transfer_data, signing_hash, EthError,
    TxRequest,
};

const RECIPIENT: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const TOKEN: &str = "0xdAC17F958D2ee523a2206206994597C13D831ec7";

fn eth_transfer() -> TxRequest {
    TxRequest {
        chain_id: 1,
        nonce: 7,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: RECIPIENT.into(),
        value: 1_234_567_890_000,
        data: String::new(),
    }
}

#[test]
fn assembled_transaction_is_recovered_by_alloy_as_the_vault() {
    let (sk, pk) = common::test_key();
    let vault = address(&pk.serialize()).unwrap();
    let unsigned = build_eip1559(&eth_transfer()).unwrap();
    let (rs, recid) = common::sign(&sk, signing_hash(&unsigned).unwrap());
    let signed = assemble(&unsigned, &rs, recid, &vault).unwrap();

    let raw = hex::decode(signed.raw.strip_prefix("0x").unwrap()).unwrap();
    let envelope = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    assert!(envelope.is_eip1559());
    assert_eq!(envelope.recover_signer().unwrap().to_checksum(None), vault);
    assert_eq!(format!("{:?}", envelope.tx_hash()), signed.tx_hash);
    assert_eq!(envelope.chain_id(), Some(1));
    assert_eq!(envelope.nonce(), 7);
    assert_eq!(
        envelope.value(),
        alloy_primitives::U256::from(1_234_567_890_000u128)
    );
    assert_eq!(envelope.to().unwrap().to_checksum(None), RECIPIENT);
}

#[test]
fn high_s_signature_is_refused() {
    let (sk, pk) = common::test_key();
    let vault = address(&pk.serialize()).unwrap();
    let unsigned = build_eip1559(&eth_transfer()).unwrap();
    let (rs, recid) = common::sign(&sk, signing_hash(&unsigned).unwrap());
    let (high, high_recid) = common::to_high_s(&rs, recid);
    assert!(matches!(
        assemble(&unsigned, &high, high_recid, &vault),
        Err(EthError::HighS)
    ));
}

#[test]
fn wrong_recovery_id_is_refused() {
    let (sk, pk) = common::test_key();
    let vault = address(&pk.serialize()).unwrap();
    let unsigned = build_eip1559(&eth_transfer()).unwrap();
    let (rs, recid) = common::sign(&sk, signing_hash(&unsigned).unwrap());
    assert!(matches!(
        assemble(&unsigned, &rs, recid ^ 1, &vault),
        Err(EthError::SignerMismatch { .. }) | Err(EthError::BadSignature { .. })
    ));
    assert!(matches!(
        assemble(&unsigned, &rs, 2, &vault),
        Err(EthError::BadRecoveryId { id: 2 })
    ));
    assert!(matches!(
        assemble(&unsigned, &rs, 27, &vault),
        Err(EthError::BadRecoveryId { id: 27 })
    ));
}

#[test]
fn signature_over_another_transaction_is_refused() {
    let (sk, pk) = common::test_key();
    let vault = address(&pk.serialize()).unwrap();
    let unsigned = build_eip1559(&eth_transfer()).unwrap();
    let mut other = eth_transfer();
    other.value += 1;
    let other = build_eip1559(&other).unwrap();
    let (rs, recid) = common::sign(&sk, signing_hash(&other).unwrap());
    assert!(matches!(
        assemble(&unsigned, &rs, recid, &vault),
        Err(EthError::SignerMismatch { .. })
    ));
}

#[test]
fn erc20_transfer_decodes_token_recipient_and_amount_from_calldata() {
    let data = erc20_transfer_data(RECIPIENT, 5_000_000).unwrap();
    // Independent check of the calldata layout: selector of transfer(address,uint256).
    assert_eq!(
        &data[..4],
        &alloy_primitives::keccak256("transfer(address,uint256)")[..4]
    );
    let req = TxRequest {
        gas_limit: 65_000,
        to: TOKEN.into(),
        value: 0,
        data: hex::encode(&data),
        ..eth_transfer()
    };
    let d = decode_eip1559(&build_eip1559(&req).unwrap()).unwrap();
    assert_eq!(d.token.as_deref(), Some(TOKEN));
    assert_eq!(d.to, TOKEN);
    assert_eq!(d.recipient, RECIPIENT);
    assert_eq!(d.amount, 5_000_000);
    assert_eq!(d.value, 0);
    assert_eq!(d.max_fee, 65_000 * 30_000_000_000);

    // Same call with ETH attached: refused.
    let with_value = TxRequest {
        value: 1,
        ..req.clone()
    };
    assert!(matches!(
        decode_eip1559(&build_eip1559(&with_value).unwrap()),
        Err(EthError::Erc20WithValue { .. })
    ));
    // approve(address,uint256) has the same shape but is not a transfer: refused.
    let mut approve = data.clone();
    approve[..4].copy_from_slice(&alloy_primitives::keccak256("approve(address,uint256)")[..4]);
    let approve_req = TxRequest {
        data: hex::encode(&approve),
        ..req.clone()
    };
    assert!(matches!(
        decode_eip1559(&build_eip1559(&approve_req).unwrap()),
        Err(EthError::UnsupportedCall { .. })
    ));
    // A transfer with an extra trailing word is not exact: refused.
    let mut longer = data.clone();
    longer.extend_from_slice(&[0u8; 32]);
    let longer_req = TxRequest {
        data: hex::encode(&longer),
        ..req.clone()
    };
    assert!(matches!(
        decode_eip1559(&build_eip1559(&longer_req).unwrap()),
        Err(EthError::UnsupportedCall { .. })
    ));
    // Dirty padding on the address word: refused.
    let mut dirty = data.clone();
    dirty[4] = 1;
    let dirty_req = TxRequest {
        data: hex::encode(&dirty),
        ..req
    };
    assert!(matches!(
        decode_eip1559(&build_eip1559(&dirty_req).unwrap()),
        Err(EthError::UnsupportedCall { .. })
    ));
}

#[test]
fn erc20_amount_above_u128_is_refused() {
    let mut data = erc20_transfer_data(RECIPIENT, 1).unwrap();
    data[4 + 32 + 15] = 1; // sets bit 128 of the amount word
    let req = TxRequest {
        gas_limit: 65_000,
        to: TOKEN.into(),
        value: 0,
        data: format!("0x{}", hex::encode(&data)),
        ..eth_transfer()
    };
    assert!(matches!(
        decode_eip1559(&build_eip1559(&req).unwrap()),
        Err(EthError::AmountTooLarge { .. })
    ));
}

#[test]
fn native_transfer_decodes_as_eth() {
    let d = decode_eip1559(&build_eip1559(&eth_transfer()).unwrap()).unwrap();
    assert_eq!(d.token, None);
    assert_eq!(d.recipient, RECIPIENT);
    assert_eq!(d.amount, 1_234_567_890_000);
    assert_eq!(d.nonce, 7);
    assert_eq!(d.chain_id, 1);
}

#[test]
fn unsigned_encoding_matches_alloys_encoding_of_the_same_fields() {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(RECIPIENT.parse().unwrap()),
        value: alloy_primitives::U256::from(1_234_567_890_000u128),
        access_list: Default::default(),
        input: Default::default(),
    };
    let ours = build_eip1559(&eth_transfer()).unwrap();
    assert_eq!(ours, tx.encoded_for_signing());
    assert_eq!(signing_hash(&ours).unwrap(), tx.signature_hash().0);
}

#[test]
fn build_refuses_chain_id_zero() {
    let req = TxRequest {
        chain_id: 0,
        ..eth_transfer()
    };
    assert!(matches!(build_eip1559(&req), Err(EthError::ZeroChainId)));
}
