//! Decoding untrusted PSBTs against the vault's source key: what the transaction pays, whether it
//! is consistent (every input spends the source address, one destination, at most one change
//! output, sums that add up), and the digests the signers sign (BIP143 / BIP341).
//!
//! This is the check every signer runs before signing, so it trusts nothing in the PSBT: amounts
//! come from `witness_utxo` and are summed with checked arithmetic, and the sighashes are computed
//! from the same validated structure that [`decode`] describes.

use bitcoin::hashes::Hash;
use bitcoin::key::{CompressedPublicKey, XOnlyPublicKey};
use bitcoin::psbt::Psbt;
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{Address, TxOut};
use serde::{Deserialize, Serialize};

use crate::address::{bip86_output_key, compressed_key, source_script, xonly_key};
use crate::{BtcError, Network, Spend};

/// What a PSBT does, decoded and checked against the source key: exactly one output paying somewhere other
/// than the source address (the destination) and at most one output paying the source address (change);
/// every input's witness_utxo present and paying the source script; no other outputs; sums checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// The destination address (on the network given to [`decode`]).
    pub destination: String,
    /// Satoshis paid to the destination.
    pub amount: u64,
    /// Satoshis paid back to the source address (0 without a change output).
    pub change: u64,
    /// Inputs minus outputs, in satoshis.
    pub fee: u64,
    /// Number of inputs.
    pub inputs: usize,
}

/// The source key in the form its signatures verify under.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SigningKey {
    /// P2WPKH: the compressed ECDSA key.
    Ecdsa(CompressedPublicKey),
    /// P2TR: the BIP86 output key (BIP340).
    Schnorr(XOnlyPublicKey),
}

/// A PSBT that passed every check of [`decode`].
pub(crate) struct Checked {
    pub(crate) psbt: Psbt,
    pub(crate) prevouts: Vec<TxOut>,
    pub(crate) decoded: Decoded,
    pub(crate) key: SigningKey,
    pub(crate) spend: Spend,
}

/// Deserializes and checks a PSBT; shared by [`decode`], [`sighashes`] and `finalize`.
pub(crate) fn check(
    bytes: &[u8],
    network: Network,
    spend: Spend,
    source_key: &[u8],
) -> Result<Checked, BtcError> {
    let key = match spend {
        Spend::P2wpkh => SigningKey::Ecdsa(compressed_key(source_key)?),
        Spend::P2tr => SigningKey::Schnorr(bip86_output_key(xonly_key(source_key)?)),
    };
    let source = source_script(spend, source_key)?;
    let psbt = Psbt::deserialize(bytes).map_err(|e| BtcError::PsbtMalformed {
        reason: e.to_string(),
    })?;
    let tx = &psbt.unsigned_tx;
    if tx.input.is_empty() {
        return Err(BtcError::PsbtNoInputs);
    }
    if psbt.inputs.len() != tx.input.len() || psbt.outputs.len() != tx.output.len() {
        return Err(BtcError::PsbtMalformed {
            reason: "psbt maps do not match the transaction's inputs and outputs".to_owned(),
        });
    }

    let mut prevouts = Vec::with_capacity(psbt.inputs.len());
    let mut total_in: u64 = 0;
    for (i, input) in psbt.inputs.iter().enumerate() {
        let utxo = input
            .witness_utxo
            .as_ref()
            .ok_or(BtcError::PsbtMissingWitnessUtxo { input: i })?;
        if utxo.script_pubkey != source {
            return Err(BtcError::PsbtForeignInput { input: i });
        }
        total_in = total_in
            .checked_add(utxo.value.to_sat())
            .ok_or(BtcError::Overflow {
                what: "sum of psbt inputs",
            })?;
        prevouts.push(utxo.clone());
    }

    let mut destinations = Vec::new();
    let mut changes = Vec::new();
    let mut total_out: u64 = 0;
    for (j, out) in tx.output.iter().enumerate() {
        let value = out.value.to_sat();
        let dust = out.script_pubkey.minimal_non_dust().to_sat();
        if value < dust {
            return Err(BtcError::PsbtDustOutput {
                output: j,
                value,
                dust,
            });
        }
        total_out = total_out.checked_add(value).ok_or(BtcError::Overflow {
            what: "sum of psbt outputs",
        })?;
        if out.script_pubkey == source {
            changes.push(value);
        } else {
            destinations.push((j, out));
        }
    }
    let (dest_index, dest) = match destinations.as_slice() {
        [] => return Err(BtcError::PsbtNoDestination),
        [one] => *one,
        more => return Err(BtcError::PsbtExtraDestination { count: more.len() }),
    };
    let change = match changes.as_slice() {
        [] => 0,
        [one] => *one,
        more => return Err(BtcError::PsbtExtraChange { count: more.len() }),
    };
    let address = Address::from_script(&dest.script_pubkey, network.to_bitcoin())
        .ok()
        .filter(|a| a.address_type().is_some())
        .ok_or(BtcError::PsbtNonStandardOutput { output: dest_index })?;
    let fee = total_in
        .checked_sub(total_out)
        .ok_or(BtcError::PsbtNegativeFee {
            inputs: total_in,
            outputs: total_out,
        })?;
    let decoded = Decoded {
        destination: address.to_string(),
        amount: dest.value.to_sat(),
        change,
        fee,
        inputs: tx.input.len(),
    };
    Ok(Checked {
        psbt,
        prevouts,
        decoded,
        key,
        spend,
    })
}

impl Checked {
    /// One digest per input: BIP143 SIGHASH_ALL (P2WPKH) or BIP341 key-path SIGHASH_DEFAULT (P2TR).
    pub(crate) fn sighashes(&self) -> Result<Vec<[u8; 32]>, BtcError> {
        let mut cache = SighashCache::new(&self.psbt.unsigned_tx);
        let mut out = Vec::with_capacity(self.prevouts.len());
        for (i, prevout) in self.prevouts.iter().enumerate() {
            let digest = match self.spend {
                Spend::P2wpkh => cache
                    .p2wpkh_signature_hash(
                        i,
                        &prevout.script_pubkey,
                        prevout.value,
                        EcdsaSighashType::All,
                    )
                    .map(|h| h.to_byte_array())
                    .map_err(|e| BtcError::Sighash {
                        input: i,
                        reason: e.to_string(),
                    })?,
                Spend::P2tr => cache
                    .taproot_key_spend_signature_hash(
                        i,
                        &Prevouts::All(&self.prevouts),
                        TapSighashType::Default,
                    )
                    .map(|h| h.to_byte_array())
                    .map_err(|e| BtcError::Sighash {
                        input: i,
                        reason: e.to_string(),
                    })?,
            };
            out.push(digest);
        }
        Ok(out)
    }
}

/// Decodes a PSBT and checks it against the source key (see [`Decoded`] for what is checked).
///
/// `network` is the network the destination address is rendered for; `source_key` is the 33-byte
/// compressed key (P2wpkh) or the 32-byte x-only internal key (P2tr).
pub fn decode(
    psbt: &[u8],
    network: Network,
    spend: Spend,
    source_key: &[u8],
) -> Result<Decoded, BtcError> {
    Ok(check(psbt, network, spend, source_key)?.decoded)
}

/// The digests the signers sign, one per input in order: BIP143 (SIGHASH_ALL) for P2wpkh; BIP341 key-path
/// (SIGHASH_DEFAULT, all prevouts) for P2tr. Fails like `decode` on an inconsistent PSBT.
pub fn sighashes(
    psbt: &[u8],
    network: Network,
    spend: Spend,
    source_key: &[u8],
) -> Result<Vec<[u8; 32]>, BtcError> {
    check(psbt, network, spend, source_key)?.sighashes()
}
