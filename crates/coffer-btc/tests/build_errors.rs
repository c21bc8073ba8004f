//! Every bad spend request listed for `build_psbt` is a typed error, raised before anything is signed.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use coffer_btc::{build_psbt, decode, BtcError, Network, Spend, Utxo, MAX_FEE_RATE};
use common::{destination, TestKey};

fn key() -> TestKey {
    TestKey::new(Spend::P2wpkh, 0x21)
}

#[test]
fn invalid_or_wrong_network_destinations_are_refused() {
    let k = key();
    let mut req = k.request(
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        10_000,
        1,
        &[50_000],
    );
    assert!(matches!(
        build_psbt(&req),
        Err(BtcError::AddressWrongNetwork {
            expected: Network::Regtest,
            ..
        })
    ));
    req.to = "not-an-address".to_owned();
    assert!(matches!(
        build_psbt(&req),
        Err(BtcError::AddressMalformed { .. })
    ));
    req.to = k.address(Network::Regtest);
    assert_eq!(build_psbt(&req), Err(BtcError::DestinationIsSource));
}

#[test]
fn zero_and_dust_amounts_are_refused() {
    let k = key();
    let req = k.request(&destination(Spend::P2wpkh), 0, 1, &[50_000]);
    assert_eq!(build_psbt(&req), Err(BtcError::ZeroAmount));
    // Dust limits at 3 sat/vB (Bitcoin Core): P2WPKH 294 sat, P2TR 330 sat.
    let req = k.request(&destination(Spend::P2wpkh), 293, 1, &[50_000]);
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::BelowDust {
            amount: 293,
            dust: 294
        })
    );
    let req = k.request(&destination(Spend::P2tr), 329, 1, &[50_000]);
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::BelowDust {
            amount: 329,
            dust: 330
        })
    );
    assert!(build_psbt(&k.request(&destination(Spend::P2tr), 330, 1, &[50_000])).is_ok());
}

#[test]
fn insufficient_funds_say_how_much_is_missing() {
    let k = key();
    // 1 input, 1 P2WPKH output, no change: 11 + 68 + 31 = 110 vB at 2 sat/vB = 220 sat.
    let req = k.request(&destination(Spend::P2wpkh), 50_000, 2, &[30_000, 20_000]);
    // Both inputs: 11 + 136 + 31 = 178 vB → 356 sat fee.
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::InsufficientFunds {
            available: 50_000,
            required: 50_356,
            missing: 356
        })
    );
    // Exactly enough: everything spent, no change.
    let req = k.request(
        &destination(Spend::P2wpkh),
        50_000 - 356,
        2,
        &[30_000, 20_000],
    );
    let psbt = build_psbt(&req).unwrap();
    let d = decode(&psbt, Network::Regtest, Spend::P2wpkh, &k.public()).unwrap();
    assert_eq!(
        (d.amount, d.change, d.fee, d.inputs),
        (50_000 - 356, 0, 356, 2)
    );
}

#[test]
fn overflowing_sums_and_fees_are_refused() {
    let k = key();
    let req = k.request(&destination(Spend::P2wpkh), 10_000, 1, &[u64::MAX, 1]);
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::Overflow {
            what: "sum of utxo values"
        })
    );
    let req = k.request(&destination(Spend::P2wpkh), u64::MAX, 1, &[u64::MAX]);
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::Overflow {
            what: "amount + fee"
        })
    );
}

#[test]
fn duplicate_outpoints_are_refused() {
    let k = key();
    let mut req = k.request(&destination(Spend::P2wpkh), 10_000, 1, &[50_000, 40_000]);
    req.utxos[1].txid = req.utxos[0].txid.clone();
    req.utxos[1].vout = req.utxos[0].vout;
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::DuplicateOutpoint {
            txid: req.utxos[0].txid.clone(),
            vout: req.utxos[0].vout
        })
    );
    // Same txid, other vout: fine. Same outpoint in upper case: still a duplicate.
    req.utxos[1].vout += 1;
    assert!(build_psbt(&req).is_ok());
    req.utxos[1].vout -= 1;
    req.utxos[1].txid = req.utxos[0].txid.to_uppercase();
    assert!(matches!(
        build_psbt(&req),
        Err(BtcError::DuplicateOutpoint { .. })
    ));
}

#[test]
fn no_utxos_and_foreign_utxos_are_refused() {
    let k = key();
    let req = k.request(&destination(Spend::P2wpkh), 10_000, 1, &[]);
    assert_eq!(build_psbt(&req), Err(BtcError::NoUtxos));
    // A utxo of another address, even one that would not be selected.
    let mut req = k.request(&destination(Spend::P2wpkh), 10_000, 1, &[50_000, 1_000]);
    req.utxos[1].script_pubkey = TestKey::new(Spend::P2wpkh, 0x22).script_hex();
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::ForeignUtxo {
            txid: req.utxos[1].txid.clone(),
            vout: 1
        })
    );
    // A P2TR utxo of the same secret key is still foreign to the P2WPKH address.
    req.utxos[1].script_pubkey = TestKey::new(Spend::P2tr, 0x21).script_hex();
    assert!(matches!(
        build_psbt(&req),
        Err(BtcError::ForeignUtxo { .. })
    ));
    req.utxos[1].script_pubkey = "zz".to_owned();
    assert!(matches!(build_psbt(&req), Err(BtcError::UtxoScript { .. })));
    req.utxos[1] = Utxo {
        txid: "abc".to_owned(),
        ..req.utxos[0].clone()
    };
    assert!(matches!(build_psbt(&req), Err(BtcError::UtxoTxid { .. })));
}

#[test]
fn zero_and_absurd_fee_rates_are_refused() {
    let k = key();
    let req = k.request(&destination(Spend::P2wpkh), 10_000, 0, &[50_000]);
    assert_eq!(build_psbt(&req), Err(BtcError::ZeroFeeRate));
    let req = k.request(
        &destination(Spend::P2wpkh),
        10_000,
        MAX_FEE_RATE + 1,
        &[50_000_000],
    );
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::AbsurdFeeRate {
            fee_rate: 10_001,
            max: 10_000
        })
    );
    let req = k.request(
        &destination(Spend::P2wpkh),
        10_000,
        MAX_FEE_RATE,
        &[50_000_000],
    );
    assert!(build_psbt(&req).is_ok());
}

#[test]
fn bad_source_keys_are_refused() {
    let k = key();
    let mut req = k.request(&destination(Spend::P2wpkh), 10_000, 1, &[50_000]);
    req.source_key = "xyz".to_owned();
    assert_eq!(
        build_psbt(&req),
        Err(BtcError::InvalidHex {
            field: "source_key"
        })
    );
    req.source_key = "02".repeat(32);
    assert!(matches!(
        build_psbt(&req),
        Err(BtcError::KeyLength {
            expected: 33,
            got: 32,
            ..
        })
    ));
}

#[test]
fn selection_is_largest_first_and_independent_of_utxo_order() {
    let k = key();
    let a = build_psbt(&k.request(
        &destination(Spend::P2tr),
        70_000,
        3,
        &[10_000, 60_000, 30_000, 20_000],
    ))
    .unwrap();
    let mut req = k.request(
        &destination(Spend::P2tr),
        70_000,
        3,
        &[10_000, 60_000, 30_000, 20_000],
    );
    req.utxos.reverse();
    assert_eq!(build_psbt(&req).unwrap(), a);
    let d = decode(&a, Network::Regtest, Spend::P2wpkh, &k.public()).unwrap();
    assert_eq!(d.inputs, 2); // 60_000 + 30_000
    assert_eq!(d.amount + d.change + d.fee, 90_000);
}

#[test]
fn utxo_strings_and_requests_round_trip_through_serde() {
    let k = key();
    let u = &k.utxos(&[1234])[0];
    let s = format!("{}:{}:{}:{}", u.txid, u.vout, u.value, u.script_pubkey);
    assert_eq!(&s.parse::<Utxo>().unwrap(), u);
    let req = k.request(&destination(Spend::P2tr), 1_000, 1, &[5_000]);
    let json = serde_json::to_string(&req).unwrap();
    assert!(
        json.contains("\"network\":\"regtest\"") && json.contains("\"spend\":\"p2wpkh\""),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<coffer_btc::SpendRequest>(&json).unwrap(),
        req
    );
}
