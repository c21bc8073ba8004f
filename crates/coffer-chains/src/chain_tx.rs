//! [`ChainTx`]: the unsigned transaction an intent carries, its decoding and comparison with
//! the intent, the digests the signers sign, and the finished transaction.

use serde::{Deserialize, Serialize};

use crate::{Chain, ChainError, KeyScheme};

/// An unsigned chain transaction, as carried (JSON text) in `Intent::transaction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "chain", rename_all = "lowercase")]
pub enum ChainTx {
    /// A Bitcoin spend from one vault address (P2WPKH or P2TR key path).
    Bitcoin {
        /// The network the addresses are on.
        network: coffer_btc::Network,
        /// The kind of the spending vault address.
        spend: coffer_btc::Spend,
        /// The PSBT (BIP174), hex.
        psbt: String,
    },
    /// An Ethereum EIP-1559 transaction (native ETH or an ERC-20 `transfer`).
    Ethereum {
        /// The unsigned EIP-2718 payload (`0x02 || rlp(...)`), hex with `0x`.
        unsigned: String,
    },
    /// A Solana system-program transfer.
    Solana {
        /// The legacy message the fee payer signs, hex.
        message: String,
    },
    /// EIP-712 typed data signed by an Ethereum address (`eth_signTypedData_v4`). It moves
    /// nothing by itself; intents carrying it are of kind `eip712`.
    #[serde(rename = "ethereum-eip712")]
    EthereumTypedData {
        /// The standard typed-data JSON (types, primaryType, domain, message), as text.
        typed_data: String,
    },
    /// An EIP-191 personal message signed by an Ethereum address (`personal_sign`); intents
    /// carrying it are of kind `eip191`.
    #[serde(rename = "ethereum-eip191")]
    EthereumMessage {
        /// The message bytes, hex (with or without `0x`).
        message: String,
    },
}

/// The longest EIP-191 message signed (bytes).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// The destination of an EIP-191 message intent (it has no recipient).
pub const EIP191_DESTINATION: &str = "eip191";

/// The destination of an EIP-712 intent whose domain names no verifying contract.
pub const EIP712_NO_CONTRACT: &str = "eip712";

/// What a transaction does, as decoded by the chain code (never as claimed by anyone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// The chain.
    pub chain: String,
    /// `transfer`, or the off-chain message kind (`eip712`, `eip191`): the intent kind it
    /// must be carried by.
    pub kind: String,
    /// The asset moved: `BTC`, `ETH`, `ERC20:<checksummed contract>`, `SOL`.
    pub asset: String,
    /// The real recipient.
    pub destination: String,
    /// The amount in the asset's base unit (sats, wei or token units, lamports).
    pub amount: u128,
    /// The fee (Bitcoin), or the most the transaction can pay in fees (Ethereum), when known.
    pub fee: Option<u128>,
    /// The number of signatures the transaction needs (one per Bitcoin input).
    pub signatures: usize,
}

/// How the signers sign a digest of this transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignMode {
    /// Under the child key itself.
    Plain,
    /// Under the child key's BIP86 Taproot output key (P2TR key-path spends).
    TaprootKeyPath,
}

/// One signature for [`ChainTx::finalize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignaturePart {
    /// The 64 signature bytes (`r || s` for ECDSA).
    pub bytes: Vec<u8>,
    /// The ECDSA recovery id (Ethereum needs it).
    pub recovery_id: Option<u8>,
}

/// A finished transaction in its chain's own encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// Bitcoin: hex without `0x`; Ethereum: `0x` hex; Solana: base64.
    pub signed_tx: String,
    /// Bitcoin txid, Ethereum transaction hash, Solana first signature (base58).
    pub tx_id: String,
}

const TRANSFER: &str = "transfer";

fn message_decoded(kind: &str, destination: String) -> Decoded {
    Decoded {
        chain: Chain::Ethereum.name().into(),
        kind: kind.into(),
        asset: String::new(),
        destination,
        amount: 0,
        fee: None,
        signatures: 1,
    }
}

fn check_message_len(message: &[u8]) -> Result<(), ChainError> {
    if message.is_empty() || message.len() > MAX_MESSAGE_BYTES {
        return Err(ChainError::Format(format!(
            "a personal message must be 1..={MAX_MESSAGE_BYTES} bytes, not {}",
            message.len()
        )));
    }
    Ok(())
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>, ChainError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).map_err(|e| ChainError::Format(format!("{what} is not hex: {e}")))
}

fn sig64(part: &SignaturePart, i: usize) -> Result<[u8; 64], ChainError> {
    part.bytes
        .as_slice()
        .try_into()
        .map_err(|_| ChainError::Signatures(format!("signature {i} is not 64 bytes")))
}

impl ChainTx {
    /// Builds a Bitcoin spend (input selection, change, fee) from caller-supplied UTXOs.
    pub fn bitcoin(req: &coffer_btc::SpendRequest) -> Result<Self, ChainError> {
        let psbt = coffer_btc::build_psbt(req)?;
        Ok(ChainTx::Bitcoin {
            network: req.network,
            spend: req.spend,
            psbt: hex::encode(psbt),
        })
    }

    /// Builds an EIP-1559 transaction.
    pub fn ethereum(req: &coffer_eth::TxRequest) -> Result<Self, ChainError> {
        let unsigned = coffer_eth::build_eip1559(req)?;
        Ok(ChainTx::Ethereum {
            unsigned: format!("0x{}", hex::encode(unsigned)),
        })
    }

    /// Builds a Solana system-program transfer.
    pub fn solana(req: &coffer_sol::TransferRequest) -> Result<Self, ChainError> {
        let message = coffer_sol::build_transfer(req)?;
        Ok(ChainTx::Solana {
            message: hex::encode(message),
        })
    }

    /// EIP-712 typed data to sign; refused unless it encodes (its digest can be computed).
    pub fn typed_data(json: &str) -> Result<Self, ChainError> {
        coffer_eth::typed_data_hash(json)?;
        Ok(ChainTx::EthereumTypedData {
            typed_data: json.to_string(),
        })
    }

    /// An EIP-191 personal message to sign (at most [`MAX_MESSAGE_BYTES`]).
    pub fn personal_message(message: &[u8]) -> Result<Self, ChainError> {
        check_message_len(message)?;
        Ok(ChainTx::EthereumMessage {
            message: hex::encode(message),
        })
    }

    /// Parses the JSON text an intent carries.
    pub fn parse(text: &str) -> Result<Self, ChainError> {
        serde_json::from_str(text).map_err(|e| ChainError::Format(e.to_string()))
    }

    /// The JSON text an intent carries.
    pub fn to_text(&self) -> String {
        // Serializing plain strings and unit enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The chain.
    pub fn chain(&self) -> Chain {
        match self {
            ChainTx::Bitcoin { .. } => Chain::Bitcoin,
            ChainTx::Ethereum { .. }
            | ChainTx::EthereumTypedData { .. }
            | ChainTx::EthereumMessage { .. } => Chain::Ethereum,
            ChainTx::Solana { .. } => Chain::Solana,
        }
    }

    /// The vault key scheme that signs it.
    pub fn scheme(&self) -> KeyScheme {
        match self {
            ChainTx::Bitcoin {
                spend: coffer_btc::Spend::P2wpkh,
                ..
            }
            | ChainTx::Ethereum { .. }
            | ChainTx::EthereumTypedData { .. }
            | ChainTx::EthereumMessage { .. } => KeyScheme::Ecdsa,
            ChainTx::Bitcoin {
                spend: coffer_btc::Spend::P2tr,
                ..
            } => KeyScheme::Bip340,
            ChainTx::Solana { .. } => KeyScheme::Ed25519,
        }
    }

    /// How its digests are signed.
    pub fn sign_mode(&self) -> SignMode {
        match self {
            ChainTx::Bitcoin {
                spend: coffer_btc::Spend::P2tr,
                ..
            } => SignMode::TaprootKeyPath,
            _ => SignMode::Plain,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), ChainError> {
        let (expected, len) = match self.scheme() {
            KeyScheme::Ecdsa => ("33-byte compressed secp256k1", 33),
            KeyScheme::Bip340 => ("32-byte x-only secp256k1", 32),
            KeyScheme::Ed25519 => ("32-byte Ed25519", 32),
        };
        if key.len() != len {
            return Err(ChainError::Key {
                chain: self.chain().name(),
                expected,
                actual: key.len(),
            });
        }
        Ok(())
    }

    /// Decodes what the transaction does when signed by `key`, the vault's child public key
    /// at the intent's path (Bitcoin: the spending address's key; its inputs and change must
    /// belong to it; Solana: the fee payer must be it).
    pub fn decode(&self, key: &[u8]) -> Result<Decoded, ChainError> {
        self.check_key(key)?;
        match self {
            ChainTx::Bitcoin {
                network,
                spend,
                psbt,
            } => {
                let d = coffer_btc::decode(&unhex(psbt, "psbt")?, *network, *spend, key)?;
                Ok(Decoded {
                    chain: Chain::Bitcoin.name().into(),
                    kind: TRANSFER.into(),
                    asset: "BTC".into(),
                    destination: d.destination,
                    amount: u128::from(d.amount),
                    fee: Some(u128::from(d.fee)),
                    signatures: d.inputs,
                })
            }
            ChainTx::Ethereum { unsigned } => {
                let d = coffer_eth::decode_eip1559(&unhex(unsigned, "unsigned")?)?;
                let asset = match &d.token {
                    None => "ETH".to_string(),
                    Some(token) => format!("ERC20:{token}"),
                };
                Ok(Decoded {
                    chain: Chain::Ethereum.name().into(),
                    kind: TRANSFER.into(),
                    asset,
                    destination: d.recipient,
                    amount: d.amount,
                    fee: Some(d.max_fee),
                    signatures: 1,
                })
            }
            ChainTx::Solana { message } => {
                let d = coffer_sol::decode_transfer(&unhex(message, "message")?)?;
                let payer = coffer_sol::address(key)?;
                if d.from != payer {
                    return Err(ChainError::Mismatch {
                        field: "source",
                        intent: payer,
                        decoded: d.from,
                    });
                }
                Ok(Decoded {
                    chain: Chain::Solana.name().into(),
                    kind: TRANSFER.into(),
                    asset: "SOL".into(),
                    destination: d.to,
                    amount: u128::from(d.lamports),
                    fee: None,
                    signatures: 1,
                })
            }
            ChainTx::EthereumTypedData { typed_data } => {
                let (_, summary) = coffer_eth::typed_data_hash(typed_data)?;
                Ok(message_decoded(
                    "eip712",
                    summary
                        .verifying_contract
                        .unwrap_or_else(|| EIP712_NO_CONTRACT.into()),
                ))
            }
            ChainTx::EthereumMessage { message } => {
                check_message_len(&unhex(message, "message")?)?;
                Ok(message_decoded("eip191", EIP191_DESTINATION.into()))
            }
        }
    }

    /// Decodes the transaction and refuses unless it is of the intent's `kind` (`transfer`,
    /// `eip712`, `eip191`) and moves exactly `amount` of `asset` to `destination` (the
    /// intent's fields, which the policy was evaluated on). A message has no asset of its
    /// own (the intent names its wallet's), a destination (the EIP-712 verifying contract)
    /// and amount zero.
    pub fn check_intent(
        &self,
        key: &[u8],
        kind: &str,
        asset: &str,
        destination: &str,
        amount: u128,
    ) -> Result<Decoded, ChainError> {
        let d = self.decode(key)?;
        if d.kind != kind {
            return Err(ChainError::Mismatch {
                field: "kind",
                intent: kind.into(),
                decoded: d.kind,
            });
        }
        if d.kind == TRANSFER && d.asset != asset {
            return Err(ChainError::Mismatch {
                field: "asset",
                intent: asset.into(),
                decoded: d.asset,
            });
        }
        if d.destination != destination {
            return Err(ChainError::Mismatch {
                field: "destination",
                intent: destination.into(),
                decoded: d.destination,
            });
        }
        if d.amount != amount {
            return Err(ChainError::Mismatch {
                field: "amount",
                intent: amount.to_string(),
                decoded: d.amount.to_string(),
            });
        }
        Ok(d)
    }

    /// What the signers sign, in order: one BIP143 (P2WPKH) or BIP341 key-path (P2TR) sighash
    /// per Bitcoin input; the EIP-1559 signing hash; the Solana message bytes.
    pub fn digests(&self, key: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
        self.check_key(key)?;
        match self {
            ChainTx::Bitcoin {
                network,
                spend,
                psbt,
            } => Ok(
                coffer_btc::sighashes(&unhex(psbt, "psbt")?, *network, *spend, key)?
                    .into_iter()
                    .map(|h| h.to_vec())
                    .collect(),
            ),
            ChainTx::Ethereum { unsigned } => Ok(vec![coffer_eth::signing_hash(&unhex(
                unsigned, "unsigned",
            )?)?
            .to_vec()]),
            ChainTx::Solana { message } => {
                let bytes = unhex(message, "message")?;
                coffer_sol::decode_transfer(&bytes)?;
                Ok(vec![bytes])
            }
            ChainTx::EthereumTypedData { typed_data } => {
                Ok(vec![coffer_eth::typed_data_hash(typed_data)?.0.to_vec()])
            }
            ChainTx::EthereumMessage { message } => {
                let bytes = unhex(message, "message")?;
                check_message_len(&bytes)?;
                Ok(vec![coffer_eth::personal_message_hash(&bytes).to_vec()])
            }
        }
    }

    /// Puts one signature per digest in (in [`ChainTx::digests`] order) and returns the
    /// finished transaction; each chain crate verifies the signatures first.
    pub fn finalize(&self, key: &[u8], sigs: &[SignaturePart]) -> Result<Finished, ChainError> {
        self.check_key(key)?;
        let one = || -> Result<&SignaturePart, ChainError> {
            match sigs {
                [s] => Ok(s),
                _ => Err(ChainError::Signatures(format!(
                    "{} signatures for a transaction that takes one",
                    sigs.len()
                ))),
            }
        };
        // The one Ethereum signature: r || s, its recovery id, and the address it must
        // recover (the key's).
        let eth_one = || -> Result<([u8; 64], u8, String), ChainError> {
            let s = one()?;
            let rec = s.recovery_id.ok_or_else(|| {
                ChainError::Signatures("an Ethereum signature needs its recovery id".into())
            })?;
            Ok((sig64(s, 0)?, rec, coffer_eth::address(key)?))
        };
        match self {
            ChainTx::Bitcoin {
                network,
                spend,
                psbt,
            } => {
                let sigs = sigs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| sig64(s, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let t = coffer_btc::finalize(&unhex(psbt, "psbt")?, *network, *spend, key, &sigs)?;
                Ok(Finished {
                    signed_tx: t.raw_hex,
                    tx_id: t.txid,
                })
            }
            ChainTx::Ethereum { unsigned } => {
                let (rs, rec, from) = eth_one()?;
                let t = coffer_eth::assemble(&unhex(unsigned, "unsigned")?, &rs, rec, &from)?;
                Ok(Finished {
                    signed_tx: t.raw,
                    tx_id: t.tx_hash,
                })
            }
            ChainTx::Solana { message } => {
                let s = one()?;
                let t = coffer_sol::assemble(&unhex(message, "message")?, &sig64(s, 0)?)?;
                Ok(Finished {
                    signed_tx: t.raw_base64,
                    tx_id: t.signature,
                })
            }
            ChainTx::EthereumTypedData { .. } | ChainTx::EthereumMessage { .. } => {
                let (rs, rec, from) = eth_one()?;
                let digest: [u8; 32] = self
                    .digests(key)?
                    .pop()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| ChainError::Format("no message digest".into()))?;
                let signature = coffer_eth::message_signature(&digest, &rs, rec, &from)?;
                Ok(Finished {
                    signed_tx: signature,
                    tx_id: format!("0x{}", hex::encode(digest)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The secp256k1 generator as a compressed key.
    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    fn solana() -> (ChainTx, Vec<u8>) {
        let key = vec![0x11; 32];
        let tx = ChainTx::solana(&coffer_sol::TransferRequest {
            from: coffer_sol::address(&key).unwrap(),
            to: coffer_sol::address(&[0x22; 32]).unwrap(),
            lamports: 5,
            recent_blockhash: coffer_sol::address(&[0x33; 32]).unwrap(),
        })
        .unwrap();
        (tx, key)
    }

    #[test]
    fn the_text_round_trips_and_names_its_chain() {
        let (tx, _) = solana();
        let text = tx.to_text();
        assert!(text.starts_with(r#"{"chain":"solana""#), "{text}");
        assert_eq!(ChainTx::parse(&text).unwrap(), tx);
        assert!(ChainTx::parse(r#"{"chain":"dogecoin","x":"00"}"#).is_err());
        assert!(ChainTx::parse("not json").is_err());
        assert_eq!(tx.scheme(), KeyScheme::Ed25519);
        assert_eq!(tx.sign_mode(), SignMode::Plain);
    }

    #[test]
    fn check_intent_names_the_field_that_differs() {
        let (tx, key) = solana();
        let d = tx.decode(&key).unwrap();
        assert_eq!((d.asset.as_str(), d.amount, d.signatures), ("SOL", 5, 1));
        tx.check_intent(&key, "transfer", "SOL", &d.destination, 5)
            .unwrap();
        let field = |r: Result<Decoded, ChainError>| match r {
            Err(ChainError::Mismatch { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(tx.check_intent(&key, "transfer", "BTC", &d.destination, 5)),
            "asset"
        );
        assert_eq!(
            field(tx.check_intent(&key, "transfer", "SOL", "elsewhere", 5)),
            "destination"
        );
        assert_eq!(
            field(tx.check_intent(&key, "transfer", "SOL", &d.destination, 6)),
            "amount"
        );
        // Another key than the fee payer's.
        assert_eq!(field(tx.decode(&[0x44; 32])), "source");
        assert!(matches!(
            tx.decode(&[0x11; 33]),
            Err(ChainError::Key { .. })
        ));
    }

    #[test]
    fn bitcoin_and_ethereum_need_the_right_key_and_signature_count() {
        let g = hex::decode(G).unwrap();
        let script = coffer_btc::parse_address(
            &coffer_btc::address(
                coffer_btc::Spend::P2tr,
                &g[1..],
                coffer_btc::Network::Regtest,
            )
            .unwrap(),
            coffer_btc::Network::Regtest,
        )
        .unwrap();
        let tx = ChainTx::bitcoin(&coffer_btc::SpendRequest {
            network: coffer_btc::Network::Regtest,
            spend: coffer_btc::Spend::P2tr,
            source_key: hex::encode(&g[1..]),
            to: coffer_btc::address(coffer_btc::Spend::P2wpkh, &g, coffer_btc::Network::Regtest)
                .unwrap(),
            amount: 10_000,
            fee_rate: 1,
            utxos: vec![coffer_btc::Utxo {
                txid: "aa".repeat(32),
                vout: 0,
                value: 20_000,
                script_pubkey: hex::encode(script),
            }],
        })
        .unwrap();
        assert_eq!(tx.scheme(), KeyScheme::Bip340);
        assert_eq!(tx.sign_mode(), SignMode::TaprootKeyPath);
        assert_eq!(tx.digests(&g[1..]).unwrap().len(), 1);
        assert!(matches!(tx.digests(&g), Err(ChainError::Key { .. })));
        let bad = SignaturePart {
            bytes: vec![1; 64],
            recovery_id: None,
        };
        assert!(tx.finalize(&g[1..], &[]).is_err());
        assert!(
            tx.finalize(&g[1..], std::slice::from_ref(&bad)).is_err(),
            "verified first"
        );

        let eth = ChainTx::ethereum(&coffer_eth::TxRequest {
            chain_id: 1,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 1,
            to: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
            value: 7,
            data: String::new(),
        })
        .unwrap();
        assert_eq!(eth.scheme(), KeyScheme::Ecdsa);
        let d = eth.decode(&g).unwrap();
        assert_eq!(
            (d.asset.as_str(), d.amount, d.fee),
            ("ETH", 7, Some(210_000))
        );
        assert!(matches!(
            eth.finalize(&g, &[bad.clone(), bad.clone()]),
            Err(ChainError::Signatures(_))
        ));
        assert!(
            matches!(eth.finalize(&g, &[bad]), Err(ChainError::Signatures(_))),
            "no recovery id"
        );
    }

    const TYPED: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"verifyingContract","type":"address"}],"Order":[{"name":"amount","type":"uint256"}]},"primaryType":"Order","domain":{"name":"X","verifyingContract":"0xcccccccccccccccccccccccccccccccccccccccc"},"message":{"amount":"5"}}"#;

    /// Signs `digest` with secret key `b` repeated: (compressed public key, 64-byte r||s,
    /// recovery id), low S as libsecp256k1 makes it.
    fn sign(b: u8, digest: &[u8]) -> (Vec<u8>, SignaturePart) {
        let sk = secp256k1::SecretKey::from_slice(&[b; 32]).unwrap();
        let pk = sk.public_key(secp256k1::SECP256K1).serialize().to_vec();
        let msg = secp256k1::Message::from_digest(digest.try_into().unwrap());
        let (rec, rs) = secp256k1::SECP256K1
            .sign_ecdsa_recoverable(&msg, &sk)
            .serialize_compact();
        let part = SignaturePart {
            bytes: rs.to_vec(),
            recovery_id: Some(u8::try_from(rec.to_i32()).unwrap()),
        };
        (pk, part)
    }

    #[test]
    fn typed_data_is_its_own_kind_addressed_to_its_verifying_contract() {
        let tx = ChainTx::typed_data(TYPED).unwrap();
        assert!(tx.to_text().starts_with(r#"{"chain":"ethereum-eip712""#));
        assert_eq!(
            (tx.chain(), tx.scheme()),
            (Chain::Ethereum, KeyScheme::Ecdsa)
        );
        let (key, _) = sign(7, &[1; 32]);
        let d = tx.decode(&key).unwrap();
        let contract = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC";
        assert_eq!(
            (d.kind.as_str(), d.destination.as_str(), d.amount),
            ("eip712", contract, 0)
        );
        // The asset is the wallet's (a message has none): any is accepted; kind, destination
        // and amount are checked.
        tx.check_intent(&key, "eip712", "ETH", contract, 0).unwrap();
        let field = |r: Result<Decoded, ChainError>| match r {
            Err(ChainError::Mismatch { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(tx.check_intent(&key, "transfer", "ETH", contract, 0)),
            "kind"
        );
        assert_eq!(
            field(tx.check_intent(&key, "eip191", "ETH", contract, 0)),
            "kind"
        );
        assert_eq!(
            field(tx.check_intent(&key, "eip712", "ETH", "eip712", 0)),
            "destination"
        );
        assert_eq!(
            field(tx.check_intent(&key, "eip712", "ETH", contract, 1)),
            "amount"
        );
        // The digest is the EIP-712 signing hash; the finished signature is r||s||v by the key.
        let digests = tx.digests(&key).unwrap();
        assert_eq!(
            digests,
            vec![coffer_eth::typed_data_hash(TYPED).unwrap().0.to_vec()]
        );
        let (_, sig) = sign(7, &digests[0]);
        let done = tx.finalize(&key, std::slice::from_ref(&sig)).unwrap();
        assert_eq!(done.tx_id, format!("0x{}", hex::encode(&digests[0])));
        let v = 27 + sig.recovery_id.unwrap();
        assert_eq!(
            done.signed_tx,
            format!("0x{}{:02x}", hex::encode(&sig.bytes), v)
        );
        // Another key's signature is refused.
        let (_, other) = sign(8, &digests[0]);
        assert!(tx.finalize(&key, &[other]).is_err());
        // Without a verifying contract, the destination says so.
        let bare = TYPED
            .replace(
                r#","verifyingContract":"0xcccccccccccccccccccccccccccccccccccccccc""#,
                "",
            )
            .replace(r#",{"name":"verifyingContract","type":"address"}"#, "");
        let d = ChainTx::typed_data(&bare).unwrap().decode(&key).unwrap();
        assert_eq!(d.destination, EIP712_NO_CONTRACT);
        assert!(ChainTx::typed_data("{").is_err());
    }

    #[test]
    fn personal_messages_are_bounded_and_signed_as_eip191() {
        let (key, _) = sign(9, &[1; 32]);
        let tx = ChainTx::personal_message(b"I own this address").unwrap();
        let d = tx
            .check_intent(&key, "eip191", "ETH", EIP191_DESTINATION, 0)
            .unwrap();
        assert_eq!(d.kind, "eip191");
        let digests = tx.digests(&key).unwrap();
        assert_eq!(
            digests,
            vec![coffer_eth::personal_message_hash(b"I own this address").to_vec()]
        );
        let (_, sig) = sign(9, &digests[0]);
        let done = tx.finalize(&key, &[sig]).unwrap();
        assert_eq!(done.signed_tx.len(), 2 + 130);
        assert!(ChainTx::personal_message(b"").is_err());
        assert!(ChainTx::personal_message(&vec![b'a'; MAX_MESSAGE_BYTES + 1]).is_err());
        let long = ChainTx::EthereumMessage {
            message: "61".repeat(MAX_MESSAGE_BYTES + 1),
        };
        assert!(long.decode(&key).is_err() && long.digests(&key).is_err());
        // A transfer is not a message: an Ethereum transfer checked as eip191 is refused.
        let eth = ChainTx::ethereum(&coffer_eth::TxRequest {
            chain_id: 1,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 1,
            to: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
            value: 0,
            data: String::new(),
        })
        .unwrap();
        assert!(matches!(
            eth.check_intent(&key, "eip191", "ETH", EIP191_DESTINATION, 0),
            Err(ChainError::Mismatch { field: "kind", .. })
        ));
    }

    #[test]
    fn addresses_per_chain_and_scheme() {
        let g = hex::decode(G).unwrap();
        let a = crate::address(Chain::Bitcoin, Some("regtest"), KeyScheme::Ecdsa, &g).unwrap();
        assert!(a.starts_with("bcrt1q"), "{a}");
        let a = crate::address(Chain::Bitcoin, None, KeyScheme::Bip340, &g[1..]).unwrap();
        assert!(a.starts_with("bc1p"), "{a}");
        assert!(crate::address(Chain::Ethereum, None, KeyScheme::Ecdsa, &g)
            .unwrap()
            .starts_with("0x"));
        assert!(crate::address(Chain::Solana, None, KeyScheme::Ecdsa, &g).is_err());
        assert!(crate::address(Chain::Ethereum, Some("moon"), KeyScheme::Ecdsa, &g).is_err());
        assert!(crate::check_supported(Chain::Bitcoin, Some("nope"), KeyScheme::Ecdsa).is_err());
        assert_eq!("BTC".parse::<Chain>().unwrap(), Chain::Bitcoin);
        assert!("doge".parse::<Chain>().is_err());
    }
}
