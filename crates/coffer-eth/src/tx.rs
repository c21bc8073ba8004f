//! EIP-1559 transactions: building the unsigned encoding, strictly decoding it for policy
//! (native ETH and ERC-20 `transfer` only), its signing digest, and assembling the signed
//! EIP-2718 envelope from an externally produced (threshold) signature.

use alloy_consensus::transaction::RlpEcdsaEncodableTx;
use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, U256};
use alloy_rlp::Decodable;
use alloy_sol_types::SolCall;
use serde::{Deserialize, Serialize};

use crate::address::{address_of_secp, parse};
use crate::EthError;

/// Largest gas limit accepted (a mainnet block's gas limit order of magnitude).
pub const MAX_GAS_LIMIT: u64 = 30_000_000;

/// EIP-2718 type byte of EIP-1559 transactions.
const EIP1559_TYPE: u8 = 0x02;

mod erc20 {
    //! The one contract call Coffer understands.
    alloy_sol_types::sol! {
        function transfer(address to, uint256 amount) returns (bool);
    }
}

/// An EIP-1559 transfer to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRequest {
    /// EIP-155 chain id (nonzero).
    pub chain_id: u64,
    /// Sender's nonce.
    pub nonce: u64,
    /// Gas limit (1..=30 000 000).
    pub gas_limit: u64,
    /// Fee cap per gas, in wei.
    pub max_fee_per_gas: u128,
    /// Tip per gas, in wei (at most `max_fee_per_gas`).
    pub max_priority_fee_per_gas: u128,
    /// Recipient, or the token contract for an ERC-20 transfer ("0x" + 40 hex).
    pub to: String,
    /// Wei sent along (0 for ERC-20 transfers).
    pub value: u128,
    /// Call data as hex, may be empty, with or without "0x".
    #[serde(default)]
    pub data: String,
}

/// A native-ETH transfer (data empty) or an ERC-20 `transfer(recipient, amount)` call to `token`:
/// this returns the call data of the latter.
pub fn erc20_transfer_data(recipient: &str, amount: u128) -> Result<Vec<u8>, EthError> {
    let to = parse(recipient)?;
    Ok(erc20::transferCall {
        to,
        amount: U256::from(amount),
    }
    .abi_encode())
}

/// The unsigned transaction as signed: 0x02 || rlp([chain_id, nonce, max_priority_fee, max_fee, gas_limit, to, value, data, access_list=[]]).
/// Errors: chain_id 0, gas_limit 0 or > 30_000_000, max_priority_fee > max_fee, gas_limit*max_fee overflow (or value + that overflow), bad `to`, bad hex data.
pub fn build_eip1559(req: &TxRequest) -> Result<Vec<u8>, EthError> {
    check_fields(
        req.chain_id,
        req.gas_limit,
        req.max_fee_per_gas,
        req.max_priority_fee_per_gas,
        req.value,
    )?;
    let to = parse(&req.to)?;
    let hex_data = req.data.strip_prefix("0x").unwrap_or(&req.data);
    let data = hex::decode(hex_data).map_err(|source| EthError::BadHexData { source })?;
    let tx = TxEip1559 {
        chain_id: req.chain_id,
        nonce: req.nonce,
        gas_limit: req.gas_limit,
        max_fee_per_gas: req.max_fee_per_gas,
        max_priority_fee_per_gas: req.max_priority_fee_per_gas,
        to: TxKind::Call(to),
        value: U256::from(req.value),
        access_list: Default::default(),
        input: Bytes::from(data),
    };
    Ok(tx.encoded_for_signing())
}

/// Field checks shared by building and decoding; returns `gas_limit * max_fee_per_gas`.
fn check_fields(
    chain_id: u64,
    gas_limit: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    value: u128,
) -> Result<u128, EthError> {
    if chain_id == 0 {
        return Err(EthError::ZeroChainId);
    }
    if gas_limit == 0 || gas_limit > MAX_GAS_LIMIT {
        return Err(EthError::BadGasLimit {
            gas_limit,
            max: MAX_GAS_LIMIT,
        });
    }
    if max_priority_fee_per_gas > max_fee_per_gas {
        return Err(EthError::PriorityFeeAboveMaxFee {
            max_priority_fee_per_gas,
            max_fee_per_gas,
        });
    }
    let overflow = || EthError::CostOverflow {
        gas_limit,
        max_fee_per_gas,
        value,
    };
    let max_fee = u128::from(gas_limit)
        .checked_mul(max_fee_per_gas)
        .ok_or_else(overflow)?;
    max_fee.checked_add(value).ok_or_else(overflow)?;
    Ok(max_fee)
}

/// What an unsigned EIP-1559 transaction does, for policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Sender's nonce.
    pub nonce: u64,
    /// Checksummed tx `to` (the token contract for ERC-20 transfers).
    pub to: String,
    /// Wei sent by the transaction itself.
    pub value: u128,
    /// `None` for native ETH; `Some(contract address, checksummed)` when `data` is exactly an ERC-20 transfer(address,uint256) call with value 0.
    pub token: Option<String>,
    /// The real recipient (tx `to` for ETH, the decoded recipient for ERC-20), checksummed.
    pub recipient: String,
    /// The amount (wei or token base units).
    pub amount: u128,
    /// gas_limit * max_fee_per_gas (checked): the most the transaction can pay in fees.
    pub max_fee: u128,
    /// Gas limit.
    pub gas_limit: u64,
}

/// Strict: type byte 2, canonical RLP, no trailing bytes, empty access list, `to` present (no contract creation), any non-empty `data` that is not an exact ERC-20 transfer is refused (EthError::UnsupportedCall), ERC-20 with nonzero value refused, amounts above u128 refused.
///
/// The field checks of [`build_eip1559`] (nonzero chain id, gas limit range, tip at most the
/// fee cap, no cost overflow) apply here too.
pub fn decode_eip1559(unsigned: &[u8]) -> Result<Decoded, EthError> {
    Ok(decode_strict(unsigned)?.1)
}

/// The strict decoder behind [`decode_eip1559`], also returning alloy's transaction.
fn decode_strict(unsigned: &[u8]) -> Result<(TxEip1559, Decoded), EthError> {
    let body = match unsigned.split_first() {
        Some((&EIP1559_TYPE, body)) => body,
        other => {
            return Err(EthError::WrongTxType {
                found: other.map(|(t, _)| *t),
            })
        }
    };
    let mut buf = body;
    let tx = TxEip1559::decode(&mut buf).map_err(|source| EthError::Rlp { source })?;
    if !buf.is_empty() {
        return Err(EthError::TrailingBytes { count: buf.len() });
    }
    // alloy-rlp already refuses leading zeros and non-minimal lengths; re-encoding is the
    // definitive check that exactly one byte string maps to this transaction.
    if tx.encoded_for_signing() != unsigned {
        return Err(EthError::NonCanonical);
    }
    if !tx.access_list.is_empty() {
        return Err(EthError::AccessListNotEmpty {
            entries: tx.access_list.len(),
        });
    }
    let to = match tx.to {
        TxKind::Call(to) => to,
        TxKind::Create => return Err(EthError::ContractCreation),
    };
    let value = u256_to_u128(tx.value)?;
    let max_fee = check_fields(
        tx.chain_id,
        tx.gas_limit,
        tx.max_fee_per_gas,
        tx.max_priority_fee_per_gas,
        value,
    )?;
    let (token, recipient, amount) = if tx.input.is_empty() {
        (None, to, value)
    } else {
        let (recipient, amount) = decode_erc20_transfer(&tx.input)?;
        if !tx.value.is_zero() {
            return Err(EthError::Erc20WithValue {
                value: tx.value.to_string(),
            });
        }
        (Some(to.to_checksum(None)), recipient, amount)
    };
    let decoded = Decoded {
        chain_id: tx.chain_id,
        nonce: tx.nonce,
        to: to.to_checksum(None),
        value,
        token,
        recipient: recipient.to_checksum(None),
        amount,
        max_fee,
        gas_limit: tx.gas_limit,
    };
    Ok((tx, decoded))
}

/// Recipient and amount of call data that is exactly an ERC-20 `transfer(address,uint256)`.
fn decode_erc20_transfer(data: &[u8]) -> Result<(Address, u128), EthError> {
    let unsupported = || EthError::UnsupportedCall {
        selector: data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()),
        len: data.len(),
    };
    let call = erc20::transferCall::abi_decode_validate(data).map_err(|_| unsupported())?;
    // Exact: no extra words, zero padding on the address word.
    if call.abi_encode() != data {
        return Err(unsupported());
    }
    Ok((call.to, u256_to_u128(call.amount)?))
}

fn u256_to_u128(v: U256) -> Result<u128, EthError> {
    u128::try_from(v).map_err(|_| EthError::AmountTooLarge {
        amount: v.to_string(),
    })
}

/// keccak256 of the unsigned encoding: the 32-byte digest the signers sign.
///
/// The encoding is first checked with [`decode_eip1559`]: nothing that policy cannot read
/// gets a digest.
pub fn signing_hash(unsigned: &[u8]) -> Result<[u8; 32], EthError> {
    decode_strict(unsigned)?;
    Ok(keccak256(unsigned).0)
}

/// A finished transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// "0x"-prefixed hex of the EIP-2718 envelope (what `eth_sendRawTransaction` takes).
    pub raw: String,
    /// "0x"-prefixed transaction hash.
    pub tx_hash: String,
}

/// Checks a 64-byte r||s signature with recovery id over `digest` and returns the public key it
/// recovers: refuses recovery ids other than 0/1, invalid r/s, and high S.
pub(crate) fn recover_low_s(
    digest: [u8; 32],
    rs: &[u8; 64],
    recovery_id: u8,
) -> Result<secp256k1::PublicKey, EthError> {
    if recovery_id > 1 {
        return Err(EthError::BadRecoveryId { id: recovery_id });
    }
    let bad = |source| EthError::BadSignature { source };
    let standard = secp256k1::ecdsa::Signature::from_compact(rs).map_err(bad)?;
    let mut normalized = standard;
    normalized.normalize_s();
    if normalized != standard {
        return Err(EthError::HighS);
    }
    let recid = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(recovery_id)).map_err(bad)?;
    let recoverable =
        secp256k1::ecdsa::RecoverableSignature::from_compact(rs, recid).map_err(bad)?;
    secp256k1::SECP256K1
        .recover_ecdsa(&secp256k1::Message::from_digest(digest), &recoverable)
        .map_err(bad)
}

/// Checks that the low-S signature `rs` with `recovery_id` over `digest` recovers the
/// address `from` (checksummed): [`EthError::SignerMismatch`] when it recovers another.
pub(crate) fn check_signer(
    digest: [u8; 32],
    rs: &[u8; 64],
    recovery_id: u8,
    from: &str,
) -> Result<(), EthError> {
    let expected = parse(from)?;
    let recovered = address_of_secp(&recover_low_s(digest, rs, recovery_id)?);
    if recovered != expected {
        return Err(EthError::SignerMismatch {
            expected: expected.to_checksum(None),
            recovered: recovered.to_checksum(None),
        });
    }
    Ok(())
}

/// Adds the signature (y_parity = recovery_id). Refuses high-S, recovery ids other than 0/1, and a signature that does not recover `from` (checksummed address of the vault key).
pub fn assemble(
    unsigned: &[u8],
    rs: &[u8; 64],
    recovery_id: u8,
    from: &str,
) -> Result<SignedTx, EthError> {
    let (tx, _) = decode_strict(unsigned)?;
    check_signer(keccak256(unsigned).0, rs, recovery_id, from)?;
    let (r, s) = rs.split_at(32);
    let signature = Signature::new(
        U256::from_be_slice(r),
        U256::from_be_slice(s),
        recovery_id == 1,
    );
    let mut raw = Vec::with_capacity(tx.eip2718_encoded_length(&signature));
    tx.eip2718_encode(&signature, &mut raw);
    Ok(SignedTx {
        tx_hash: format!("0x{}", hex::encode(keccak256(&raw))),
        raw: format!("0x{}", hex::encode(raw)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> TxRequest {
        TxRequest {
            chain_id: 1,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 1,
            to: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
            value: 5,
            data: String::new(),
        }
    }

    #[test]
    fn build_refuses_bad_fields() {
        let mut r = req();
        r.gas_limit = 0;
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::BadGasLimit { .. })
        ));
        r.gas_limit = MAX_GAS_LIMIT + 1;
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::BadGasLimit { .. })
        ));
        let mut r = req();
        r.max_priority_fee_per_gas = 11;
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::PriorityFeeAboveMaxFee { .. })
        ));
        let mut r = req();
        r.max_fee_per_gas = u128::MAX;
        r.max_priority_fee_per_gas = 0;
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::CostOverflow { .. })
        ));
        let mut r = req();
        r.max_fee_per_gas = u128::MAX / 21_000;
        r.max_priority_fee_per_gas = 0;
        r.value = u128::MAX;
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::CostOverflow { .. })
        ));
        let mut r = req();
        r.data = "0xzz".into();
        assert!(matches!(
            build_eip1559(&r),
            Err(EthError::BadHexData { .. })
        ));
    }

    #[test]
    fn decode_refuses_trailing_bytes_and_wrong_type() {
        let mut raw = build_eip1559(&req()).unwrap();
        raw.push(0);
        assert!(matches!(
            decode_eip1559(&raw),
            Err(EthError::TrailingBytes { count: 1 })
        ));
        raw.pop();
        raw[0] = 1;
        assert!(matches!(
            decode_eip1559(&raw),
            Err(EthError::WrongTxType { found: Some(1) })
        ));
        assert!(matches!(
            decode_eip1559(&[]),
            Err(EthError::WrongTxType { found: None })
        ));
    }

    #[test]
    fn decode_refuses_contract_creation_and_access_lists() {
        let mut tx = TxEip1559 {
            chain_id: 1,
            gas_limit: 21_000,
            max_fee_per_gas: 1,
            to: TxKind::Create,
            ..Default::default()
        };
        assert!(matches!(
            decode_eip1559(&tx.encoded_for_signing()),
            Err(EthError::ContractCreation)
        ));
        tx.to = TxKind::Call(Address::ZERO);
        tx.access_list = alloy_eip2930_list();
        assert!(matches!(
            decode_eip1559(&tx.encoded_for_signing()),
            Err(EthError::AccessListNotEmpty { entries: 1 })
        ));
    }

    fn alloy_eip2930_list() -> alloy_eips::eip2930::AccessList {
        alloy_eips::eip2930::AccessList(vec![alloy_eips::eip2930::AccessListItem {
            address: Address::ZERO,
            storage_keys: vec![],
        }])
    }
}
