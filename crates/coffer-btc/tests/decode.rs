//! `decode` reports what a PSBT really pays and refuses tampered or inconsistent PSBTs.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::psbt::{Output, Psbt};
use bitcoin::{Amount, ScriptBuf, TxOut};
use coffer_btc::{build_psbt, decode, parse_address, sighashes, BtcError, Decoded, Network, Spend};
use common::{destination, TestKey};

fn built(kind: Spend) -> (TestKey, Vec<u8>, String) {
    let key = TestKey::new(kind, 0x31);
    let to = destination(Spend::P2tr);
    let psbt = build_psbt(&key.request(&to, 120_000, 5, &[100_000, 60_000, 5_000])).unwrap();
    (key, psbt, to)
}

fn tamper(psbt: &[u8], f: impl FnOnce(&mut Psbt)) -> Vec<u8> {
    let mut p = Psbt::deserialize(psbt).unwrap();
    f(&mut p);
    p.serialize()
}

#[test]
fn decoded_fields_describe_the_built_spend() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let (key, psbt, to) = built(kind);
        let d = decode(&psbt, Network::Regtest, kind, &key.public()).unwrap();
        // Two largest inputs (160_000), 1 destination + change; vsize from the documented formula.
        let vsize = match kind {
            Spend::P2wpkh => 11 + 2 * 68 + 43 + 31, // 10.5 overhead + inputs + P2TR dest + P2WPKH change, rounded up
            Spend::P2tr => 11 + 115 + 43 + 43,
        };
        assert_eq!(
            d,
            Decoded {
                destination: to.clone(),
                amount: 120_000,
                change: 160_000 - 120_000 - 5 * vsize,
                fee: 5 * vsize,
                inputs: 2
            }
        );
        // Cross-check against the bitcoin crate's own PSBT accounting.
        let p = Psbt::deserialize(&psbt).unwrap();
        assert_eq!(p.fee().unwrap().to_sat(), d.fee);
        assert!(p.inputs.iter().all(|i| i.witness_utxo.is_some()));
        assert_eq!(
            p.unsigned_tx.output[0].script_pubkey.as_bytes(),
            parse_address(&to, Network::Regtest).unwrap()
        );
        // Same bytes, same answer, whatever network's view is used for the source key.
        assert_eq!(
            sighashes(&psbt, Network::Regtest, kind, &key.public())
                .unwrap()
                .len(),
            2
        );
    }
}

#[test]
fn altered_destination_outputs_are_refused_or_reported() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let (key, psbt, to) = built(kind);
        let k = key.public();
        // Paying more than the inputs.
        let more = tamper(&psbt, |p| {
            p.unsigned_tx.output[0].value = Amount::from_sat(1_000_000)
        });
        assert!(matches!(
            decode(&more, Network::Regtest, kind, &k),
            Err(BtcError::PsbtNegativeFee { .. })
        ));
        // Paying a script with no address (OP_RETURN).
        let opret = tamper(&psbt, |p| {
            p.unsigned_tx.output[0].script_pubkey = ScriptBuf::new_op_return([1u8; 4])
        });
        assert_eq!(
            decode(&opret, Network::Regtest, kind, &k),
            Err(BtcError::PsbtNonStandardOutput { output: 0 })
        );
        // Redirected to the source: now there is no destination and two change outputs.
        let source = ScriptBuf::from_bytes(hex::decode(key.script_hex()).unwrap());
        let back = tamper(&psbt, |p| {
            p.unsigned_tx.output[0].script_pubkey = source.clone()
        });
        assert_eq!(
            decode(&back, Network::Regtest, kind, &k),
            Err(BtcError::PsbtNoDestination)
        );
        // Dust destination.
        let dust = tamper(&psbt, |p| {
            p.unsigned_tx.output[0].value = Amount::from_sat(1)
        });
        assert!(matches!(
            decode(&dust, Network::Regtest, kind, &k),
            Err(BtcError::PsbtDustOutput { output: 0, .. })
        ));
        // Redirected to another valid address: decode says so (the signer's policy compares it).
        let thief = TestKey::new(Spend::P2wpkh, 0x66).address(Network::Regtest);
        let thief_script = ScriptBuf::from_bytes(parse_address(&thief, Network::Regtest).unwrap());
        let stolen = tamper(&psbt, |p| {
            p.unsigned_tx.output[0].script_pubkey = thief_script.clone()
        });
        let d = decode(&stolen, Network::Regtest, kind, &k).unwrap();
        assert_eq!(d.destination, thief);
        assert_ne!(d.destination, to);
        // And the digests change with it: signatures over the original do not carry over.
        assert_ne!(
            sighashes(&stolen, Network::Regtest, kind, &k).unwrap(),
            sighashes(&psbt, Network::Regtest, kind, &k).unwrap()
        );
    }
}

#[test]
fn extra_outputs_are_refused() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let (key, psbt, _) = built(kind);
        let k = key.public();
        let extra_dest = tamper(&psbt, |p| {
            p.unsigned_tx.output[1].value = Amount::from_sat(20_000);
            let script = p.unsigned_tx.output[0].script_pubkey.clone();
            p.unsigned_tx.output.push(TxOut {
                value: Amount::from_sat(10_000),
                script_pubkey: script,
            });
            p.outputs.push(Output::default());
        });
        assert_eq!(
            decode(&extra_dest, Network::Regtest, kind, &k),
            Err(BtcError::PsbtExtraDestination { count: 2 })
        );
        let extra_change = tamper(&psbt, |p| {
            p.unsigned_tx.output[1].value = Amount::from_sat(20_000);
            let script = p.unsigned_tx.output[1].script_pubkey.clone();
            p.unsigned_tx.output.push(TxOut {
                value: Amount::from_sat(10_000),
                script_pubkey: script,
            });
            p.outputs.push(Output::default());
        });
        assert_eq!(
            decode(&extra_change, Network::Regtest, kind, &k),
            Err(BtcError::PsbtExtraChange { count: 2 })
        );
    }
}

#[test]
fn inputs_not_owned_by_the_source_are_refused() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let (key, psbt, _) = built(kind);
        let k = key.public();
        let foreign = TestKey::new(kind, 0x67);
        let foreign_script = ScriptBuf::from_bytes(hex::decode(foreign.script_hex()).unwrap());
        let stolen = tamper(&psbt, |p| {
            if let Some(u) = p.inputs[1].witness_utxo.as_mut() {
                u.script_pubkey = foreign_script.clone();
            }
        });
        assert_eq!(
            decode(&stolen, Network::Regtest, kind, &k),
            Err(BtcError::PsbtForeignInput { input: 1 })
        );
        assert_eq!(
            sighashes(&stolen, Network::Regtest, kind, &k),
            Err(BtcError::PsbtForeignInput { input: 1 })
        );
        let missing = tamper(&psbt, |p| p.inputs[0].witness_utxo = None);
        assert_eq!(
            decode(&missing, Network::Regtest, kind, &k),
            Err(BtcError::PsbtMissingWitnessUtxo { input: 0 })
        );
        // The right PSBT checked against another vault's key.
        assert_eq!(
            decode(&psbt, Network::Regtest, kind, &foreign.public()),
            Err(BtcError::PsbtForeignInput { input: 0 })
        );
        // Inflated input values: an overflowing sum is an error; otherwise the fee grows and
        // decode reports it (and the digests, which commit to the amounts, change).
        let overflow = tamper(&psbt, |p| {
            if let Some(u) = p.inputs[0].witness_utxo.as_mut() {
                u.value = Amount::from_sat(u64::MAX);
            }
        });
        assert_eq!(
            decode(&overflow, Network::Regtest, kind, &k),
            Err(BtcError::Overflow {
                what: "sum of psbt inputs"
            })
        );
        let inflated = tamper(&psbt, |p| {
            if let Some(u) = p.inputs[0].witness_utxo.as_mut() {
                u.value = Amount::from_sat(u.value.to_sat() + 1_000);
            }
        });
        let before = decode(&psbt, Network::Regtest, kind, &k).unwrap();
        let after = decode(&inflated, Network::Regtest, kind, &k).unwrap();
        assert_eq!(after.fee, before.fee + 1_000);
        assert_ne!(
            sighashes(&inflated, Network::Regtest, kind, &k).unwrap()[0],
            sighashes(&psbt, Network::Regtest, kind, &k).unwrap()[0]
        );
    }
}

#[test]
fn garbage_and_wrong_keys_are_typed_errors() {
    let (key, psbt, _) = built(Spend::P2tr);
    assert!(matches!(
        decode(b"not a psbt", Network::Regtest, Spend::P2tr, &key.public()),
        Err(BtcError::PsbtMalformed { .. })
    ));
    assert!(matches!(
        decode(
            &psbt[..psbt.len() - 1],
            Network::Regtest,
            Spend::P2tr,
            &key.public()
        ),
        Err(BtcError::PsbtMalformed { .. })
    ));
    assert!(matches!(
        decode(&psbt, Network::Regtest, Spend::P2wpkh, &key.public()),
        Err(BtcError::KeyLength {
            expected: 33,
            got: 32,
            ..
        })
    ));
}
