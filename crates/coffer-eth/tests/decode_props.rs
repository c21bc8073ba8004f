//! Property tests: the strict decoder never panics on hostile bytes, and build -> decode
//! round-trips every valid request.
// Tests: a panic is a failed test, so unwrap/expect are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffer_eth::{build_eip1559, decode_eip1559, erc20_transfer_data, signing_hash, TxRequest};
use proptest::prelude::*;

fn checksum(bytes: [u8; 20]) -> String {
    alloy_primitives::Address::from(bytes).to_checksum(None)
}

fn valid_request() -> impl Strategy<Value = (TxRequest, Option<([u8; 20], u128)>)> {
    (
        1u64..,
        any::<u64>(),
        1u64..=30_000_000,
        any::<[u8; 20]>(),
        any::<u128>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of((any::<[u8; 20]>(), any::<u128>())),
    )
        .prop_map(|(chain_id, nonce, gas_limit, to, value, fee, tip, erc20)| {
            let max_fee_per_gas = u128::from(fee);
            let max_priority_fee_per_gas = u128::from(tip).min(max_fee_per_gas);
            let fees = u128::from(gas_limit) * max_fee_per_gas; // < 2^89: no overflow
            let value = if erc20.is_some() {
                0
            } else {
                value % (u128::MAX - fees)
            };
            let data = match erc20 {
                Some((r, amount)) => {
                    hex::encode(erc20_transfer_data(&checksum(r), amount).unwrap())
                }
                None => String::new(),
            };
            let req = TxRequest {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: checksum(to),
                value,
                data,
            };
            (req, erc20)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_eip1559(&bytes);
        let _ = signing_hash(&bytes);
    }

    #[test]
    fn decode_never_panics_on_typed_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut input = vec![2u8];
        input.extend(bytes);
        let _ = decode_eip1559(&input);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_transactions(
        (req, _) in valid_request(),
        pos in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<usize>(),
    ) {
        let mut raw = build_eip1559(&req).unwrap();
        let i = pos % raw.len();
        raw[i] = byte;
        let _ = decode_eip1559(&raw);
        raw.truncate(cut % (raw.len() + 1));
        let _ = decode_eip1559(&raw);
    }

    #[test]
    fn build_then_decode_round_trips((req, erc20) in valid_request()) {
        let raw = build_eip1559(&req).unwrap();
        let d = decode_eip1559(&raw).unwrap();
        prop_assert_eq!(d.chain_id, req.chain_id);
        prop_assert_eq!(d.nonce, req.nonce);
        prop_assert_eq!(d.gas_limit, req.gas_limit);
        prop_assert_eq!(&d.to, &req.to);
        prop_assert_eq!(d.value, req.value);
        prop_assert_eq!(d.max_fee, u128::from(req.gas_limit) * req.max_fee_per_gas);
        match erc20 {
            Some((r, amount)) => {
                prop_assert_eq!(d.token.as_deref(), Some(req.to.as_str()));
                prop_assert_eq!(d.recipient, checksum(r));
                prop_assert_eq!(d.amount, amount);
            }
            None => {
                prop_assert_eq!(d.token, None);
                prop_assert_eq!(&d.recipient, &req.to);
                prop_assert_eq!(d.amount, req.value);
            }
        }
    }
}
