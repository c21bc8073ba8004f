//! Building unsigned spends: parsing caller-supplied UTXOs, deterministic coin selection, the fee
//! estimate, and the BIP174 PSBT handed to the signers.
//!
//! # Fee estimate
//!
//! The fee is `fee_rate × vsize`, where `vsize = ceil(weight / 4)` of the *signed* transaction,
//! estimated in weight units (WU) as an upper bound:
//!
//! * overhead: `4 × (4 version + 4 locktime + varint(#inputs) + varint(#outputs)) + 2` (segwit
//!   marker and flag);
//! * each input: `4 × 41` (outpoint 36, empty scriptSig length 1, sequence 4) plus its witness:
//!   P2WPKH `1 + 1 + 72 + 1 + 33 = 108` (item count, a DER signature of at most 71 bytes with low S
//!   plus the sighash byte, a compressed key) → 68 vB; P2TR key path `1 + 1 + 64 = 66` → 57.5 vB;
//! * each output: `4 × (8 value + varint(script length) + script length)`.
//!
//! Signatures are never longer than assumed, so the real fee rate is at least the requested one.

use std::collections::HashSet;
use std::str::FromStr;

use bitcoin::absolute::LockTime;
use bitcoin::psbt::Psbt;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use serde::{Deserialize, Serialize};

use crate::address::{checked_address, source_script, xonly_key};
use crate::error::clip;
use crate::{BtcError, Network, Spend};

/// The highest fee rate (sat/vB) [`build_psbt`] accepts and [`crate::decode`] tolerates.
pub const MAX_FEE_RATE: u64 = 10_000;

/// Bitcoin Core's standardness limit on transaction weight (`MAX_STANDARD_TX_WEIGHT`).
const MAX_STANDARD_WEIGHT: u64 = 400_000;

/// An unspent output the caller says the vault address owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utxo {
    /// 64 hex, display (reversed) order as block explorers show it.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Value in satoshis.
    pub value: u64,
    /// The output's scriptPubKey, hex.
    pub script_pubkey: String,
}

impl FromStr for Utxo {
    type Err = BtcError;

    /// Parses `TXID:VOUT:SATS:SCRIPT_HEX`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [txid, vout, value, script] = parts.as_slice() else {
            return Err(BtcError::UtxoFormat { input: clip(s) });
        };
        let txid = parse_txid(txid)?;
        let vout = vout
            .parse::<u32>()
            .map_err(|_| BtcError::UtxoVout { value: clip(vout) })?;
        let value = value
            .parse::<u64>()
            .map_err(|_| BtcError::UtxoValue { value: clip(value) })?;
        let script_bytes = parse_script(script)?;
        Ok(Utxo {
            txid: txid.to_string(),
            vout,
            value,
            script_pubkey: hex::encode(script_bytes),
        })
    }
}

fn parse_txid(s: &str) -> Result<Txid, BtcError> {
    if s.len() != 64 {
        return Err(BtcError::UtxoTxid { value: clip(s) });
    }
    Txid::from_str(s).map_err(|_| BtcError::UtxoTxid { value: clip(s) })
}

fn parse_script(s: &str) -> Result<Vec<u8>, BtcError> {
    hex::decode(s).map_err(|_| BtcError::UtxoScript { value: clip(s) })
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRequest {
    /// The network of the source and destination addresses.
    pub network: Network,
    /// The kind of the source (vault) address.
    pub spend: Spend,
    /// Hex: 33-byte compressed key for P2wpkh, 32-byte x-only INTERNAL key for P2tr.
    pub source_key: String,
    /// Destination address.
    pub to: String,
    /// Satoshis to send to `to`.
    pub amount: u64,
    /// Sat per vbyte, 1 ..= [`MAX_FEE_RATE`].
    pub fee_rate: u64,
    /// The UTXOs of the source address to choose from.
    pub utxos: Vec<Utxo>,
}

fn varint_len(n: u64) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Estimated weight (WU) of the signed transaction; see the module documentation.
pub(crate) fn estimate_weight(
    spend: Spend,
    inputs: usize,
    output_script_lens: &[usize],
) -> Result<u64, BtcError> {
    let overflow = || BtcError::Overflow {
        what: "transaction weight",
    };
    let n_in = u64::try_from(inputs).map_err(|_| overflow())?;
    let n_out = u64::try_from(output_script_lens.len()).map_err(|_| overflow())?;
    let witness = match spend {
        Spend::P2wpkh => 108,
        Spend::P2tr => 66,
    };
    let per_input = 4 * 41 + witness;
    let mut weight = 4 * (4 + 4 + varint_len(n_in) + varint_len(n_out)) + 2;
    weight = n_in
        .checked_mul(per_input)
        .and_then(|w| w.checked_add(weight))
        .ok_or_else(overflow)?;
    for len in output_script_lens {
        let len = u64::try_from(*len).map_err(|_| overflow())?;
        let out = len
            .checked_add(8 + varint_len(len))
            .and_then(|b| b.checked_mul(4))
            .ok_or_else(overflow)?;
        weight = weight.checked_add(out).ok_or_else(overflow)?;
    }
    Ok(weight)
}

/// Estimated vsize (vB) of the signed transaction: `ceil(weight / 4)`.
pub(crate) fn estimate_vsize(
    spend: Spend,
    inputs: usize,
    output_script_lens: &[usize],
) -> Result<u64, BtcError> {
    Ok(estimate_weight(spend, inputs, output_script_lens)?.div_ceil(4))
}

/// `fee_rate × vsize`, checked.
fn fee_for(spend: Spend, inputs: usize, outs: &[usize], fee_rate: u64) -> Result<u64, BtcError> {
    estimate_vsize(spend, inputs, outs)?
        .checked_mul(fee_rate)
        .ok_or(BtcError::Overflow { what: "fee" })
}

/// A UTXO after validation.
struct Coin {
    outpoint: OutPoint,
    value: u64,
}

/// Selects inputs (every utxo's script must be the source address's script, else error), adds change back
/// to the source address (dropped into the fee when below the dust limit), applies the fee rate to an
/// estimated vsize of the final signed transaction, and returns the serialized PSBT (BIP174 bytes) with
/// `witness_utxo` set on every input. Version 2, locktime 0, sequence 0xFFFFFFFD (RBF).
///
/// Errors (all typed, all before anything is signed): invalid/wrong-network destination, amount 0 or below the
/// dust limit of the destination script, insufficient funds (amount + fee above the inputs; say how much is
/// missing), fee or sum overflow, duplicate outpoints, no utxos, fee_rate 0 or absurd (> 10_000 sat/vB).
///
/// Selection is largest-first (ties by txid, then vout) until amount + fee is covered; the fee is
/// computed as documented in the module (`fee_rate ×` estimated vsize). P2TR inputs carry
/// `tap_internal_key` (BIP371) as well.
pub fn build_psbt(req: &SpendRequest) -> Result<Vec<u8>, BtcError> {
    if req.fee_rate == 0 {
        return Err(BtcError::ZeroFeeRate);
    }
    if req.fee_rate > MAX_FEE_RATE {
        return Err(BtcError::AbsurdFeeRate {
            fee_rate: req.fee_rate,
            max: MAX_FEE_RATE,
        });
    }
    if req.amount == 0 {
        return Err(BtcError::ZeroAmount);
    }
    let key = hex::decode(&req.source_key).map_err(|_| BtcError::InvalidHex {
        field: "source_key",
    })?;
    let source = source_script(req.spend, &key)?;
    let destination = checked_address(&req.to, req.network)?.script_pubkey();
    if destination == source {
        return Err(BtcError::DestinationIsSource);
    }
    let dust = destination.minimal_non_dust().to_sat();
    if req.amount < dust {
        return Err(BtcError::BelowDust {
            amount: req.amount,
            dust,
        });
    }
    let mut coins = validate_utxos(&req.utxos, &source)?;
    let available = coins
        .iter()
        .try_fold(0u64, |acc, c| acc.checked_add(c.value))
        .ok_or(BtcError::Overflow {
            what: "sum of utxo values",
        })?;
    // Largest first; ties broken by outpoint so the selection never depends on input order.
    coins.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then_with(|| a.outpoint.txid.cmp(&b.outpoint.txid))
            .then_with(|| a.outpoint.vout.cmp(&b.outpoint.vout))
    });

    let with_change = [destination.len(), source.len()];
    let without_change = [destination.len()];
    let change_dust = source.minimal_non_dust().to_sat();
    let mut total: u64 = 0;
    let mut chosen: Option<(usize, Option<u64>)> = None;
    for (i, coin) in coins.iter().enumerate() {
        let n = i + 1;
        // Cannot overflow: bounded by `available`, whose sum was checked above.
        total = total.checked_add(coin.value).ok_or(BtcError::Overflow {
            what: "sum of utxo values",
        })?;
        let fee_change = fee_for(req.spend, n, &with_change, req.fee_rate)?;
        let need_change = req
            .amount
            .checked_add(fee_change)
            .ok_or(BtcError::Overflow {
                what: "amount + fee",
            })?;
        if let Some(change) = total.checked_sub(need_change) {
            if change >= change_dust {
                chosen = Some((n, Some(change)));
                break;
            }
        }
        let fee_plain = fee_for(req.spend, n, &without_change, req.fee_rate)?;
        let need_plain = req
            .amount
            .checked_add(fee_plain)
            .ok_or(BtcError::Overflow {
                what: "amount + fee",
            })?;
        if total >= need_plain {
            chosen = Some((n, None));
            break;
        }
    }
    let Some((n_inputs, change)) = chosen else {
        let fee = fee_for(req.spend, coins.len(), &without_change, req.fee_rate)?;
        let required = req.amount.checked_add(fee).ok_or(BtcError::Overflow {
            what: "amount + fee",
        })?;
        return Err(BtcError::InsufficientFunds {
            available,
            required,
            missing: required.saturating_sub(available),
        });
    };
    let outs: &[usize] = if change.is_some() {
        &with_change
    } else {
        &without_change
    };
    let weight = estimate_weight(req.spend, n_inputs, outs)?;
    if weight > MAX_STANDARD_WEIGHT {
        return Err(BtcError::TooLarge {
            weight,
            max: MAX_STANDARD_WEIGHT,
        });
    }

    let selected = coins.get(..n_inputs).unwrap_or(&coins[..0]);
    let mut output = vec![TxOut {
        value: Amount::from_sat(req.amount),
        script_pubkey: destination,
    }];
    if let Some(change) = change {
        output.push(TxOut {
            value: Amount::from_sat(change),
            script_pubkey: source.clone(),
        });
    }
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: selected
            .iter()
            .map(|c| TxIn {
                previous_output: c.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output,
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).map_err(|e| BtcError::PsbtMalformed {
        reason: e.to_string(),
    })?;
    let internal = match req.spend {
        Spend::P2tr => Some(xonly_key(&key)?),
        Spend::P2wpkh => None,
    };
    for (input, coin) in psbt.inputs.iter_mut().zip(selected) {
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(coin.value),
            script_pubkey: source.clone(),
        });
        input.tap_internal_key = internal;
    }
    Ok(psbt.serialize())
}

/// Parses every UTXO, refusing foreign scripts and duplicate outpoints.
fn validate_utxos(utxos: &[Utxo], source: &ScriptBuf) -> Result<Vec<Coin>, BtcError> {
    if utxos.is_empty() {
        return Err(BtcError::NoUtxos);
    }
    let mut seen = HashSet::new();
    let mut coins = Vec::with_capacity(utxos.len());
    for u in utxos {
        let txid = parse_txid(&u.txid)?;
        let script = parse_script(&u.script_pubkey)?;
        if script.as_slice() != source.as_bytes() {
            return Err(BtcError::ForeignUtxo {
                txid: txid.to_string(),
                vout: u.vout,
            });
        }
        let outpoint = OutPoint::new(txid, u.vout);
        if !seen.insert(outpoint) {
            return Err(BtcError::DuplicateOutpoint {
                txid: txid.to_string(),
                vout: u.vout,
            });
        }
        coins.push(Coin {
            outpoint,
            value: u.value,
        });
    }
    Ok(coins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_weights_match_the_documented_vbytes() {
        // One input, no outputs: the difference between 2 and 1 inputs is the per-input weight.
        let w = |spend, n| estimate_weight(spend, n, &[]).unwrap_or(0);
        assert_eq!(w(Spend::P2wpkh, 2) - w(Spend::P2wpkh, 1), 68 * 4);
        assert_eq!(w(Spend::P2tr, 2) - w(Spend::P2tr, 1), 230); // 57.5 vB
                                                                // Overhead 10.5 vB: version, locktime, two 1-byte counts, marker and flag.
        assert_eq!(w(Spend::P2tr, 0), 42);
        // A P2WPKH output (22-byte script) is 31 vB, a P2TR output (34 bytes) 43 vB.
        let o = |len| {
            estimate_weight(Spend::P2tr, 0, &[len]).unwrap_or(0)
                - estimate_weight(Spend::P2tr, 0, &[]).unwrap_or(0)
        };
        assert_eq!(o(22), 31 * 4);
        assert_eq!(o(34), 43 * 4);
        // 1-in 2-out P2TR: 42 + 230 + 172 + 172 = 616 WU = 154 vB.
        assert_eq!(estimate_vsize(Spend::P2tr, 1, &[34, 34]).ok(), Some(154));
    }

    #[test]
    fn varint_boundaries() {
        assert_eq!(varint_len(0xfc), 1);
        assert_eq!(varint_len(0xfd), 3);
        assert_eq!(varint_len(0x1_0000), 5);
        assert_eq!(varint_len(u64::MAX), 9);
    }

    #[test]
    fn utxo_strings_parse_field_by_field() {
        let txid = "aa".repeat(32);
        let ok: Result<Utxo, _> = format!("{txid}:1:5000:0014{}", "00".repeat(20)).parse();
        assert_eq!(ok.map(|u| (u.vout, u.value)), Ok((1, 5000)));
        assert!(matches!(
            "a:b:c".parse::<Utxo>(),
            Err(BtcError::UtxoFormat { .. })
        ));
        assert!(matches!(
            format!("{}:1:5:00", "zz".repeat(32)).parse::<Utxo>(),
            Err(BtcError::UtxoTxid { .. })
        ));
        assert!(matches!(
            format!("{txid}:-1:5:00").parse::<Utxo>(),
            Err(BtcError::UtxoVout { .. })
        ));
        assert!(matches!(
            format!("{txid}:1:1.5:00").parse::<Utxo>(),
            Err(BtcError::UtxoValue { .. })
        ));
        assert!(matches!(
            format!("{txid}:1:5:0").parse::<Utxo>(),
            Err(BtcError::UtxoScript { .. })
        ));
    }
}
