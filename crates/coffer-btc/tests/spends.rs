//! End-to-end spends: build → decode → sighashes → test signer → finalize, then every input of the
//! finalized transaction is verified by Bitcoin Core's consensus library (libbitcoinconsensus,
//! taproot flags on, all spent outputs given). Negative tests show the verifier can fail.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Amount, Transaction, Witness};
use coffer_btc::{build_psbt, decode, finalize, sighashes, BtcError, Network, Spend};
use common::{consensus_verify, destination, TestKey};

/// Builds, signs and finalizes a spend of `values` paying `amount`; returns the raw tx and the key.
fn spend(
    spend: Spend,
    values: &[u64],
    amount: u64,
    fee_rate: u64,
) -> (Vec<u8>, TestKey, Vec<coffer_btc::Utxo>) {
    let key = TestKey::new(spend, 0x11);
    let req = key.request(&destination(Spend::P2tr), amount, fee_rate, values);
    let psbt = build_psbt(&req).unwrap();
    let digests = sighashes(&psbt, Network::Regtest, spend, &key.public()).unwrap();
    let sigs = key.sign(&digests);
    let signed = finalize(&psbt, Network::Regtest, spend, &key.public(), &sigs).unwrap();
    let raw = hex::decode(&signed.raw_hex).unwrap();
    let tx: Transaction = deserialize(&raw).unwrap();
    assert_eq!(tx.compute_txid().to_string(), signed.txid);
    (raw, key, req.utxos)
}

#[test]
fn p2wpkh_and_p2tr_spends_of_one_two_and_three_inputs_pass_consensus() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        // Amounts chosen so that largest-first needs exactly n of the 4 utxos.
        for (n, amount) in [(1usize, 50_000u64), (2, 150_000), (3, 250_000)] {
            let values = [100_000, 90_000, 80_000, 1_000];
            let (raw, _key, utxos) = spend(kind, &values, amount, 7);
            let tx: Transaction = deserialize(&raw).unwrap();
            assert_eq!(tx.input.len(), n, "{kind} {n}");
            consensus_verify(&raw, &utxos).unwrap_or_else(|e| panic!("{kind} {n}-input: {e:?}"));

            // Fee: at least the requested rate over the real vsize, and the estimate is tight.
            let spent: u64 = values.iter().take(n).sum();
            let out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            let fee = spent - out;
            let vsize = u64::try_from(tx.vsize()).unwrap();
            assert!(fee >= 7 * vsize, "{kind}: fee {fee} < 7 × {vsize}");
            assert!(
                fee <= 7 * (vsize + n as u64 + 1),
                "{kind}: fee {fee} vs vsize {vsize}"
            );
            // Version 2, locktime 0, RBF sequence everywhere.
            assert_eq!(tx.version.0, 2);
            assert_eq!(tx.lock_time.to_consensus_u32(), 0);
            assert!(tx.input.iter().all(|i| i.sequence.0 == 0xFFFF_FFFD));
        }
    }
}

#[test]
fn finalize_refuses_a_signature_over_the_wrong_sighash_and_consensus_agrees() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let key = TestKey::new(kind, 0x22);
        let req = key.request(&destination(Spend::P2wpkh), 150_000, 3, &[100_000, 90_000]);
        let psbt = build_psbt(&req).unwrap();
        let digests = sighashes(&psbt, Network::Regtest, kind, &key.public()).unwrap();
        assert_eq!(digests.len(), 2);
        assert_ne!(digests[0], digests[1]);

        // Input 1 signed over input 0's digest.
        let mut sigs = key.sign(&digests);
        sigs[1] = key.sign(&[digests[0]])[0];
        assert_eq!(
            finalize(&psbt, Network::Regtest, kind, &key.public(), &sigs),
            Err(BtcError::SignatureInvalid { input: 1 })
        );
        // A flipped byte in input 0's signature.
        let mut flipped = key.sign(&digests);
        flipped[0][40] ^= 1;
        let err = finalize(&psbt, Network::Regtest, kind, &key.public(), &flipped).unwrap_err();
        assert!(
            matches!(
                err,
                BtcError::SignatureInvalid { input: 0 } | BtcError::SignatureEncoding { input: 0 }
            ),
            "{err:?}"
        );
        // A signature of another key.
        let other = TestKey::new(kind, 0x23);
        assert_eq!(
            finalize(
                &psbt,
                Network::Regtest,
                kind,
                &key.public(),
                &other.sign(&digests)
            ),
            Err(BtcError::SignatureInvalid { input: 0 })
        );
        // Wrong count.
        assert_eq!(
            finalize(&psbt, Network::Regtest, kind, &key.public(), &sigs[..1]),
            Err(BtcError::SignatureCount {
                expected: 2,
                got: 1
            })
        );

        // Forced into the witness anyway, Bitcoin Core's interpreter rejects it: the verifier can fail.
        let good = finalize(
            &psbt,
            Network::Regtest,
            kind,
            &key.public(),
            &key.sign(&digests),
        )
        .unwrap();
        let raw = hex::decode(&good.raw_hex).unwrap();
        consensus_verify(&raw, &req.utxos).unwrap();
        let mut tx: Transaction = deserialize(&raw).unwrap();
        let bad_sig = sigs[1];
        tx.input[1].witness = match kind {
            Spend::P2wpkh => {
                let sig = bitcoin::secp256k1::ecdsa::Signature::from_compact(&bad_sig).unwrap();
                let pk = bitcoin::secp256k1::PublicKey::from_slice(&key.public()).unwrap();
                Witness::p2wpkh(&bitcoin::ecdsa::Signature::sighash_all(sig), &pk)
            }
            Spend::P2tr => Witness::from_slice(&[bad_sig.to_vec()]),
        };
        let forged = serialize(&tx);
        let rejected = consensus_verify(&forged, &req.utxos).unwrap_err();
        assert_eq!(rejected.0, 1, "{kind}: {rejected:?}");

        // And a single flipped signature byte in an otherwise valid witness.
        let mut tx: Transaction = deserialize(&raw).unwrap();
        let mut items: Vec<Vec<u8>> = tx.input[0].witness.iter().map(<[u8]>::to_vec).collect();
        items[0][10] ^= 0x01;
        tx.input[0].witness = Witness::from_slice(&items);
        let rejected = consensus_verify(&serialize(&tx), &req.utxos).unwrap_err();
        assert_eq!(rejected.0, 0, "{kind}: {rejected:?}");
    }
}

#[test]
fn consensus_rejects_a_valid_signature_when_the_spent_amount_differs() {
    // BIP143/BIP341 commit to the amounts: the verifier must see the real ones.
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let (raw, _key, mut utxos) = spend(kind, &[100_000], 40_000, 2);
        consensus_verify(&raw, &utxos).unwrap();
        utxos[0].value += 1;
        assert!(consensus_verify(&raw, &utxos).is_err(), "{kind}");
    }
}

/// s' = n - s, the high-S twin of a valid signature.
fn high_s(sig: [u8; 64]) -> [u8; 64] {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36,
        0x41, 0x41,
    ];
    let mut out = sig;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[32 + i] = u8::try_from(d).unwrap();
    }
    out
}

#[test]
fn high_s_ecdsa_signatures_are_refused() {
    let key = TestKey::new(Spend::P2wpkh, 0x33);
    let req = key.request(&destination(Spend::P2tr), 10_000, 1, &[50_000]);
    let psbt = build_psbt(&req).unwrap();
    let digests = sighashes(&psbt, Network::Regtest, Spend::P2wpkh, &key.public()).unwrap();
    let sigs = key.sign(&digests);
    // The twin is a mathematically valid signature: libsecp256k1 accepts it once normalized.
    let twin = high_s(sigs[0]);
    let mut normalized = bitcoin::secp256k1::ecdsa::Signature::from_compact(&twin).unwrap();
    normalized.normalize_s();
    assert_eq!(normalized.serialize_compact(), sigs[0]);
    assert_eq!(
        finalize(
            &psbt,
            Network::Regtest,
            Spend::P2wpkh,
            &key.public(),
            &[twin]
        ),
        Err(BtcError::SignatureHighS { input: 0 })
    );
}

#[test]
fn finalize_checks_the_psbt_like_decode() {
    let key = TestKey::new(Spend::P2tr, 0x44);
    let req = key.request(&destination(Spend::P2wpkh), 10_000, 1, &[50_000]);
    let psbt = build_psbt(&req).unwrap();
    let digests = sighashes(&psbt, Network::Regtest, Spend::P2tr, &key.public()).unwrap();
    let other = TestKey::new(Spend::P2tr, 0x45);
    assert_eq!(
        finalize(
            &psbt,
            Network::Regtest,
            Spend::P2tr,
            &other.public(),
            &key.sign(&digests)
        ),
        Err(BtcError::PsbtForeignInput { input: 0 })
    );
    assert!(decode(&psbt, Network::Regtest, Spend::P2tr, &key.public()).is_ok());
}

#[test]
fn change_is_dropped_into_the_fee_below_dust() {
    for kind in [Spend::P2wpkh, Spend::P2tr] {
        let key = TestKey::new(kind, 0x55);
        // Find the exact no-change fee, then ask for an amount leaving 100 sat (< dust) of change.
        let probe = build_psbt(&key.request(&destination(kind), 20_000, 2, &[30_000])).unwrap();
        let d = decode(&probe, Network::Regtest, kind, &key.public()).unwrap();
        assert!(d.change > 0);
        let change_output_fee = if kind == Spend::P2wpkh {
            31 * 2
        } else {
            43 * 2
        };
        let amount = 30_000 - (d.fee - change_output_fee) - 100;
        let psbt = build_psbt(&key.request(&destination(kind), amount, 2, &[30_000])).unwrap();
        let d = decode(&psbt, Network::Regtest, kind, &key.public()).unwrap();
        assert_eq!(d.change, 0, "{kind}");
        assert_eq!(d.amount, amount);
        assert_eq!(d.amount + d.fee, 30_000);
        let sigs = key.sign(&sighashes(&psbt, Network::Regtest, kind, &key.public()).unwrap());
        let signed = finalize(&psbt, Network::Regtest, kind, &key.public(), &sigs).unwrap();
        let raw = hex::decode(signed.raw_hex).unwrap();
        let tx: Transaction = deserialize(&raw).unwrap();
        assert_eq!(tx.output.len(), 1);
        assert_eq!(tx.output[0].value, Amount::from_sat(amount));
        consensus_verify(&raw, &key.utxos(&[30_000])).unwrap();
    }
}
