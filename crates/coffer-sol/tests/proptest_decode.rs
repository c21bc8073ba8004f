//! Property tests: `decode_transfer` never panics on arbitrary bytes, and build -> decode
//! round-trips arbitrary valid transfers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use coffer_sol::{address, build_transfer, decode_transfer, Decoded, TransferRequest};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_transfer(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_transfers(
        from in any::<[u8; 32]>(),
        to in any::<[u8; 32]>(),
        hash in any::<[u8; 32]>(),
        lamports in 1u64..,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        prop_assume!(from != to && from != [0; 32] && to != [0; 32]);
        let mut m = build_transfer(&TransferRequest {
            from: address(&from).unwrap(),
            to: address(&to).unwrap(),
            lamports,
            recent_blockhash: address(&hash).unwrap(),
        }).unwrap();
        for (at, byte) in edits {
            let n = m.len();
            m[at % n] = byte;
        }
        if let Ok(d) = decode_transfer(&m) {
            // Anything that still decodes is canonical: rebuilding gives the same bytes.
            let rebuilt = build_transfer(&TransferRequest {
                from: d.from, to: d.to, lamports: d.lamports, recent_blockhash: d.recent_blockhash,
            }).unwrap();
            prop_assert_eq!(rebuilt, m);
        }
    }

    #[test]
    fn build_then_decode_round_trips(
        from in any::<[u8; 32]>(),
        to in any::<[u8; 32]>(),
        hash in any::<[u8; 32]>(),
        lamports in 1u64..,
    ) {
        prop_assume!(from != to && from != [0; 32] && to != [0; 32]);
        let req = TransferRequest {
            from: address(&from).unwrap(),
            to: address(&to).unwrap(),
            lamports,
            recent_blockhash: address(&hash).unwrap(),
        };
        let decoded = decode_transfer(&build_transfer(&req).unwrap()).unwrap();
        prop_assert_eq!(decoded, Decoded {
            from: req.from, to: req.to, lamports: req.lamports, recent_blockhash: req.recent_blockhash,
        });
    }
}
