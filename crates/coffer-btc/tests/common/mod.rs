//! Test-only helpers: a test signer with plain secp256k1 secret keys (standing in for the
//! threshold signers), spend requests, and the independent verifier (Bitcoin Core's
//! libbitcoinconsensus) run on every input of a finalized transaction.
#![allow(dead_code)]

use bitcoin::consensus::deserialize;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
use bitcoin::{Transaction, Txid};
use coffer_btc::{Network, Spend, SpendRequest, Utxo};

/// A vault key held in one piece, for tests only.
pub struct TestKey {
    pub secret: SecretKey,
    pub spend: Spend,
}

impl TestKey {
    pub fn new(spend: Spend, seed: u8) -> Self {
        let secret = SecretKey::from_slice(&[seed.max(1); 32]).unwrap();
        TestKey { secret, spend }
    }

    /// The source key as the API takes it: 33-byte compressed, or 32-byte x-only internal key.
    pub fn public(&self) -> Vec<u8> {
        let secp = Secp256k1::new();
        match self.spend {
            Spend::P2wpkh => self.secret.public_key(&secp).serialize().to_vec(),
            Spend::P2tr => Keypair::from_secret_key(&secp, &self.secret)
                .x_only_public_key()
                .0
                .serialize()
                .to_vec(),
        }
    }

    pub fn address(&self, network: Network) -> String {
        coffer_btc::address(self.spend, &self.public(), network).unwrap()
    }

    pub fn script_hex(&self) -> String {
        hex::encode(
            coffer_btc::parse_address(&self.address(Network::Regtest), Network::Regtest).unwrap(),
        )
    }

    /// Signs each digest: low-S ECDSA (P2WPKH) or BIP340 with the BIP86-tweaked keypair (P2TR).
    pub fn sign(&self, digests: &[[u8; 32]]) -> Vec<[u8; 64]> {
        let secp = Secp256k1::new();
        digests
            .iter()
            .map(|d| {
                let msg = Message::from_digest(*d);
                match self.spend {
                    Spend::P2wpkh => secp.sign_ecdsa(&msg, &self.secret).serialize_compact(),
                    Spend::P2tr => {
                        let tweaked =
                            Keypair::from_secret_key(&secp, &self.secret).tap_tweak(&secp, None);
                        secp.sign_schnorr_no_aux_rand(&msg, &tweaked.to_keypair())
                            .serialize()
                    }
                }
            })
            .collect()
    }

    /// UTXOs of this key's address with the given values (distinct fake txids).
    pub fn utxos(&self, values: &[u64]) -> Vec<Utxo> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Utxo {
                txid: format!("{:02x}", i + 1).repeat(32),
                vout: u32::try_from(i).unwrap(),
                value: *v,
                script_pubkey: self.script_hex(),
            })
            .collect()
    }

    pub fn request(&self, to: &str, amount: u64, fee_rate: u64, values: &[u64]) -> SpendRequest {
        SpendRequest {
            network: Network::Regtest,
            spend: self.spend,
            source_key: hex::encode(self.public()),
            to: to.to_owned(),
            amount,
            fee_rate,
            utxos: self.utxos(values),
        }
    }
}

/// A regtest destination that is neither test key.
pub fn destination(spend: Spend) -> String {
    TestKey::new(spend, 0x77).address(Network::Regtest)
}

/// Verifies every input of `raw` with libbitcoinconsensus (all pre-taproot flags + taproot),
/// giving it every spent output (looked up by outpoint in `utxos`).
pub fn consensus_verify(
    raw: &[u8],
    utxos: &[Utxo],
) -> Result<(), (usize, bitcoinconsensus::Error)> {
    let tx: Transaction = deserialize(raw).unwrap();
    let spent: Vec<(Vec<u8>, u64)> = tx
        .input
        .iter()
        .map(|txin| {
            let u = utxos
                .iter()
                .find(|u| {
                    u.txid.parse::<Txid>().unwrap() == txin.previous_output.txid
                        && u.vout == txin.previous_output.vout
                })
                .expect("every input spends a listed utxo");
            (hex::decode(&u.script_pubkey).unwrap(), u.value)
        })
        .collect();
    let all: Vec<bitcoinconsensus::Utxo> = spent
        .iter()
        .map(|(script, value)| bitcoinconsensus::Utxo {
            script_pubkey: script.as_ptr(),
            script_pubkey_len: u32::try_from(script.len()).unwrap(),
            value: i64::try_from(*value).unwrap(),
        })
        .collect();
    for (i, (script, value)) in spent.iter().enumerate() {
        bitcoinconsensus::verify_with_flags(
            script,
            *value,
            raw,
            Some(&all),
            i,
            bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
        )
        .map_err(|e| (i, e))?;
    }
    Ok(())
}
