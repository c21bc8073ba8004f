//! Property tests: the PSBT decoders never panic on hostile bytes, and build → decode round-trips.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use coffer_btc::{build_psbt, decode, finalize, sighashes, BtcError, Network, Spend};
use common::{destination, TestKey};
use proptest::prelude::*;

fn any_spend() -> impl Strategy<Value = Spend> {
    prop_oneof![Just(Spend::P2wpkh), Just(Spend::P2tr)]
}

/// A valid PSBT to mutate (built once per call; cheap).
fn valid_psbt(kind: Spend) -> (TestKey, Vec<u8>) {
    let key = TestKey::new(kind, 0x41);
    let psbt = build_psbt(&key.request(
        &destination(Spend::P2tr),
        60_000,
        4,
        &[50_000, 40_000, 3_000],
    ))
    .unwrap();
    (key, psbt)
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), kind in any_spend()) {
        let key = TestKey::new(kind, 0x41).public();
        // Raw bytes, and the same bytes behind the PSBT magic so the parser goes deeper.
        let mut magic = b"psbt\xff".to_vec();
        magic.extend_from_slice(&bytes);
        for input in [&bytes, &magic] {
            let _ = decode(input, Network::Regtest, kind, &key);
            let _ = sighashes(input, Network::Regtest, kind, &key);
            let _ = finalize(input, Network::Regtest, kind, &key, &[[1u8; 64]]);
        }
    }

    #[test]
    fn decoders_never_panic_on_mutated_valid_psbts(
        kind in any_spend(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (key, mut psbt) = valid_psbt(kind);
        for (at, byte) in edits {
            let i = at.index(psbt.len());
            psbt[i] = byte;
        }
        if truncate {
            psbt.truncate(cut.index(psbt.len()));
        }
        let decoded = decode(&psbt, Network::Regtest, kind, &key.public());
        let digests = sighashes(&psbt, Network::Regtest, kind, &key.public());
        // Both see the same checks: either both succeed or both fail.
        prop_assert_eq!(decoded.is_ok(), digests.is_ok());
        if let Ok(d) = decoded {
            prop_assert_eq!(digests.map(|v| v.len()).ok(), Some(d.inputs));
        }
    }

    #[test]
    fn build_then_decode_round_trips_amount_and_destination(
        kind in any_spend(),
        dest_kind in any_spend(),
        values in proptest::collection::vec(1_000u64..5_000_000, 1..8),
        amount_frac in 0.0f64..1.0,
        fee_rate in 1u64..60,
    ) {
        let key = TestKey::new(kind, 0x51);
        let to = destination(dest_kind);
        let total: u64 = values.iter().sum();
        // Amount between the dust limit and everything (the top end is often unaffordable).
        let amount = 330 + (amount_frac * (total - 330) as f64) as u64;
        let req = key.request(&to, amount, fee_rate, &values);
        match build_psbt(&req) {
            Ok(psbt) => {
                let d = decode(&psbt, Network::Regtest, kind, &key.public()).unwrap();
                prop_assert_eq!(&d.destination, &to);
                prop_assert_eq!(d.amount, amount);
                prop_assert!(d.inputs >= 1 && d.inputs <= values.len());
                // The spent inputs are the d.inputs largest.
                let mut sorted = values.clone();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                let spent: u64 = sorted.iter().take(d.inputs).sum();
                prop_assert_eq!(d.amount + d.change + d.fee, spent);
                prop_assert!(d.change == 0 || d.change >= 294);
                // At least the rate times the smallest possible shape (1 P2TR input, 1 P2WPKH output: 99 vB).
                prop_assert!(d.fee >= fee_rate * 99, "fee {} too low", d.fee);
                prop_assert_eq!(sighashes(&psbt, Network::Regtest, kind, &key.public()).unwrap().len(), d.inputs);
            }
            Err(BtcError::InsufficientFunds { available, required, missing }) => {
                prop_assert_eq!(available, total);
                prop_assert!(required > available);
                prop_assert_eq!(missing, required - available);
            }
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
    }
}
