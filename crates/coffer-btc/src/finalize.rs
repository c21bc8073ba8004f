//! Finalizing: checking the signers' 64-byte signatures against the sighashes with libsecp256k1,
//! putting them into witnesses, and extracting the signed transaction.
//!
//! Nothing is returned unless every signature verifies, so a faulty or malicious signer cannot make
//! us broadcast (or hand out) a transaction that the network would reject.

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::{ecdsa, schnorr, Message, SECP256K1};
use bitcoin::{taproot, Witness};
use serde::{Deserialize, Serialize};

use crate::decode::{check, SigningKey};
use crate::{BtcError, Network, Spend};

/// A finished transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// Consensus encoding, hex, no 0x.
    pub raw_hex: String,
    /// Its txid (display order).
    pub txid: String,
}

/// Puts one 64-byte signature per input into the witnesses and extracts the transaction. P2wpkh: signatures are
/// compact (r||s) ECDSA; refuse high-S; witness `[DER||0x01, pubkey]`. P2tr: BIP340 signatures under the BIP86
/// output key; witness `[sig64]`. Every signature is verified (libsecp256k1 via the secp256k1 crate) against its
/// sighash before anything is returned: a wrong signature is an error naming the input.
///
/// The PSBT is checked exactly as by [`crate::decode`] first.
pub fn finalize(
    psbt: &[u8],
    network: Network,
    spend: Spend,
    source_key: &[u8],
    signatures: &[[u8; 64]],
) -> Result<SignedTx, BtcError> {
    let checked = check(psbt, network, spend, source_key)?;
    let digests = checked.sighashes()?;
    if signatures.len() != digests.len() {
        return Err(BtcError::SignatureCount {
            expected: digests.len(),
            got: signatures.len(),
        });
    }
    let mut witnesses = Vec::with_capacity(digests.len());
    for (input, (digest, sig)) in digests.iter().zip(signatures).enumerate() {
        let msg = Message::from_digest(*digest);
        let witness = match checked.key {
            SigningKey::Ecdsa(key) => {
                let parsed = ecdsa::Signature::from_compact(sig)
                    .map_err(|_| BtcError::SignatureEncoding { input })?;
                let mut normalized = parsed;
                normalized.normalize_s();
                if normalized != parsed {
                    return Err(BtcError::SignatureHighS { input });
                }
                SECP256K1
                    .verify_ecdsa(&msg, &parsed, &key.0)
                    .map_err(|_| BtcError::SignatureInvalid { input })?;
                Witness::p2wpkh(&bitcoin::ecdsa::Signature::sighash_all(parsed), &key.0)
            }
            SigningKey::Schnorr(output_key) => {
                let parsed = schnorr::Signature::from_slice(sig)
                    .map_err(|_| BtcError::SignatureEncoding { input })?;
                SECP256K1
                    .verify_schnorr(&parsed, &msg, &output_key)
                    .map_err(|_| BtcError::SignatureInvalid { input })?;
                Witness::p2tr_key_spend(&taproot::Signature {
                    signature: parsed,
                    sighash_type: bitcoin::sighash::TapSighashType::Default,
                })
            }
        };
        witnesses.push(witness);
    }
    let mut tx = checked.psbt.unsigned_tx;
    for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
        txin.witness = witness;
    }
    Ok(SignedTx {
        raw_hex: serialize_hex(&tx),
        txid: tx.compute_txid().to_string(),
    })
}
