//! Chain transactions (hostile: in an intent from the server, or a node's reply): the
//! Bitcoin PSBT decoder and sighash computation, the EIP-1559 decoder, the Solana message
//! decoder, EIP-712 typed data and EIP-191 messages, UTXO and address parsers, and `ChainTx` JSON through decode,
//! digests and finalize, never panic; the decoders agree with the digest functions on what
//! they accept.
//!
//! Raw bytes rarely form a valid transaction, so each input is also applied as a one-byte
//! edit to a valid transaction of each chain.
#![no_main]

use coffer_chains::{btc, eth, sol, ChainTx, SignaturePart};
use libfuzzer_sys::fuzz_target;

/// The secp256k1 generator (a valid compressed key and x-only key).
const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// A small EIP-712 document (a domain with a verifying contract and one struct).
const TYPED: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"verifyingContract","type":"address"}],"Order":[{"name":"amount","type":"uint256"},{"name":"to","type":"address"}]},"primaryType":"Order","domain":{"name":"X","verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"amount":"5","to":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}}"#;

fn keys() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let g = hex::decode(G).unwrap_or_default();
    (g.clone(), g[1..].to_vec(), vec![0x11; 32])
}

fn samples() -> Vec<(ChainTx, Vec<u8>)> {
    let (ecdsa, xonly, ed) = keys();
    let mut out = Vec::new();
    for (spend, key) in [(btc::Spend::P2wpkh, &ecdsa), (btc::Spend::P2tr, &xonly)] {
        let Ok(source) = btc::address(spend, key, btc::Network::Regtest) else {
            continue;
        };
        let Ok(script) = btc::parse_address(&source, btc::Network::Regtest) else {
            continue;
        };
        let utxo = |b: u8, value| btc::Utxo {
            txid: hex::encode([b; 32]),
            vout: 0,
            value,
            script_pubkey: hex::encode(&script),
        };
        // Pay the generator's address of the other kind (never the source itself).
        let to = match spend {
            btc::Spend::P2wpkh => btc::address(btc::Spend::P2tr, &xonly, btc::Network::Regtest),
            btc::Spend::P2tr => btc::address(btc::Spend::P2wpkh, &ecdsa, btc::Network::Regtest),
        };
        let Ok(to) = to else { continue };
        if let Ok(tx) = ChainTx::bitcoin(&btc::SpendRequest {
            network: btc::Network::Regtest,
            spend,
            source_key: hex::encode(key),
            to,
            amount: 50_000,
            fee_rate: 2,
            utxos: vec![utxo(1, 40_000), utxo(2, 30_000)],
        }) {
            out.push((tx, key.clone()));
        }
    }
    if let Ok(tx) = ChainTx::ethereum(&eth::TxRequest {
        chain_id: 1,
        nonce: 7,
        gas_limit: 100_000,
        max_fee_per_gas: 30,
        max_priority_fee_per_gas: 1,
        to: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
        value: 0,
        data: hex::encode(
            eth::erc20_transfer_data("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 5)
                .unwrap_or_default(),
        ),
    }) {
        out.push((tx, ecdsa.clone()));
    }
    if let (Ok(from), Ok(to)) = (sol::address(&ed), sol::address(&[0x22; 32])) {
        if let Ok(tx) = ChainTx::solana(&sol::TransferRequest {
            from,
            to,
            lamports: 5,
            recent_blockhash: sol::address(&[0x33; 32]).unwrap_or_default(),
        }) {
            out.push((tx, ed.clone()));
        }
    }
    if let Ok(tx) = ChainTx::personal_message(b"coffer") {
        out.push((tx, ecdsa.clone()));
    }
    if let Ok(tx) = ChainTx::typed_data(TYPED) {
        out.push((tx, ecdsa.clone()));
    }
    out
}

/// Every entry point on one transaction under one key: never a panic, and the digests exist
/// exactly when the transaction decodes.
fn exercise(tx: &ChainTx, key: &[u8]) {
    let decoded = tx.decode(key);
    let digests = tx.digests(key);
    if let Ok(d) = &decoded {
        let n = digests.as_ref().map(Vec::len).unwrap_or(0);
        assert_eq!(n, d.signatures, "decoded but the digests disagree: {tx:?}");
        let _ = tx.check_intent(key, &d.kind, &d.asset, &d.destination, d.amount);
        let sigs = vec![
            SignaturePart {
                bytes: vec![1; 64],
                recovery_id: Some(0)
            };
            n
        ];
        assert!(
            tx.finalize(key, &sigs).is_err(),
            "a made-up signature was accepted"
        );
    }
    let again = ChainTx::parse(&tx.to_text());
    assert_eq!(
        again.ok().as_ref(),
        Some(tx),
        "the JSON text does not round trip"
    );
}

fn raw(data: &[u8]) {
    let (ecdsa, xonly, _) = keys();
    for net in [btc::Network::Mainnet, btc::Network::Regtest] {
        let a = btc::decode(data, net, btc::Spend::P2wpkh, &ecdsa);
        let b = btc::sighashes(data, net, btc::Spend::P2wpkh, &ecdsa);
        assert_eq!(a.is_ok(), b.is_ok(), "decode and sighashes disagree");
        let _ = btc::decode(data, net, btc::Spend::P2tr, &xonly);
        let _ = btc::sighashes(data, net, btc::Spend::P2tr, &xonly);
    }
    if let Ok(d) = eth::decode_eip1559(data) {
        assert!(
            eth::signing_hash(data).is_ok(),
            "decoded but no signing hash: {d:?}"
        );
    }
    let _ = sol::decode_transfer(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<btc::Utxo>();
        let _ = btc::parse_address(text, btc::Network::Mainnet);
        let _ = eth::parse_address(text);
        let _ = sol::parse_address(text);
        let _ = eth::typed_data_hash(text);
        if let Ok(tx) = ChainTx::parse(text) {
            let (ecdsa, xonly, ed) = keys();
            for key in [&ecdsa, &xonly, &ed] {
                exercise(&tx, key);
            }
        }
    }
}

static SAMPLES: std::sync::OnceLock<Vec<(ChainTx, Vec<u8>)>> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    raw(data);
    for (tx, key) in SAMPLES.get_or_init(samples) {
        let mut bytes = match &tx {
            ChainTx::Bitcoin { psbt, .. } => hex::decode(psbt).unwrap_or_default(),
            ChainTx::Ethereum { unsigned } => {
                hex::decode(unsigned.trim_start_matches("0x")).unwrap_or_default()
            }
            ChainTx::Solana { message } | ChainTx::EthereumMessage { message } => {
                hex::decode(message).unwrap_or_default()
            }
            ChainTx::EthereumTypedData { typed_data } => typed_data.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            continue;
        }
        if let [op, byte, lo, hi, ..] = *data {
            let at = usize::from(u16::from_le_bytes([lo, hi])) % bytes.len();
            match op % 3 {
                0 => bytes[at] = byte,
                1 => _ = bytes.remove(at),
                _ => bytes.truncate(at),
            }
        }
        let edited = match &tx {
            ChainTx::Bitcoin { network, spend, .. } => ChainTx::Bitcoin {
                network: *network,
                spend: *spend,
                psbt: hex::encode(&bytes),
            },
            ChainTx::Ethereum { .. } => ChainTx::Ethereum {
                unsigned: format!("0x{}", hex::encode(&bytes)),
            },
            ChainTx::Solana { .. } => ChainTx::Solana {
                message: hex::encode(&bytes),
            },
            ChainTx::EthereumMessage { .. } => ChainTx::EthereumMessage {
                message: hex::encode(&bytes),
            },
            ChainTx::EthereumTypedData { .. } => ChainTx::EthereumTypedData {
                typed_data: String::from_utf8_lossy(&bytes).into_owned(),
            },
        };
        exercise(&edited, key);
    }
});
