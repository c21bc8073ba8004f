//! Off-chain messages: EIP-191 `personal_sign` digests, EIP-712 typed-data digests with a policy
//! summary, and the 65-byte r||s||v signature encoding wallets expect for both.

use alloy_dyn_abi::TypedData;
use alloy_primitives::keccak256;
use serde::{Deserialize, Serialize};

use crate::EthError;

/// EIP-191 personal message digest: keccak256("\x19Ethereum Signed Message:\n" || len || msg).
///
/// `len` is the message's byte length in decimal ASCII.
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    const PREFIX: &[u8] = b"\x19Ethereum Signed Message:\n";
    let len = message.len().to_string();
    let mut buf = Vec::with_capacity(PREFIX.len() + len.len() + message.len());
    buf.extend_from_slice(PREFIX);
    buf.extend_from_slice(len.as_bytes());
    buf.extend_from_slice(message);
    keccak256(&buf).0
}

/// What an EIP-712 typed-data request is about, for policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedSummary {
    /// The `primaryType` of the message.
    pub primary_type: String,
    /// The domain's `name`, if given.
    pub domain_name: Option<String>,
    /// The domain's `chainId`, if given.
    pub chain_id: Option<u64>,
    /// The domain's `verifyingContract`, checksummed, if given.
    pub verifying_contract: Option<String>,
}

/// EIP-712 typed data (the standard JSON with types/primaryType/domain/message): its signing
/// digest, and a summary for policy.
pub fn typed_data_hash(json: &str) -> Result<([u8; 32], TypedSummary), EthError> {
    let typed: TypedData =
        serde_json::from_str(json).map_err(|source| EthError::TypedDataJson { source })?;
    let digest = typed
        .eip712_signing_hash()
        .map_err(|source| EthError::TypedDataEncoding { source })?;
    let chain_id = typed
        .domain
        .chain_id
        .map(|id| {
            u64::try_from(id).map_err(|_| EthError::TypedDataChainId {
                chain_id: id.to_string(),
            })
        })
        .transpose()?;
    let summary = TypedSummary {
        primary_type: typed.primary_type.clone(),
        domain_name: typed.domain.name.as_ref().map(|n| n.to_string()),
        chain_id,
        verifying_contract: typed.domain.verifying_contract.map(|a| a.to_checksum(None)),
    };
    Ok((digest.0, summary))
}

/// 65-byte r||s||v signature (v = 27 + recovery id) as wallets expect for personal_sign / eth_signTypedData, "0x" hex.
///
/// Refuses recovery ids other than 0/1, r or s out of range, and high S.
pub fn signature_hex65(rs: &[u8; 64], recovery_id: u8) -> Result<String, EthError> {
    if recovery_id > 1 {
        return Err(EthError::BadRecoveryId { id: recovery_id });
    }
    let standard = secp256k1::ecdsa::Signature::from_compact(rs)
        .map_err(|source| EthError::BadSignature { source })?;
    let mut normalized = standard;
    normalized.normalize_s();
    if normalized != standard {
        return Err(EthError::HighS);
    }
    let mut out = [0u8; 65];
    let (head, v) = out.split_at_mut(64);
    head.copy_from_slice(rs);
    v.fill(27 + recovery_id);
    Ok(format!("0x{}", hex::encode(out)))
}

/// The wallet signature (65 bytes r||s||v, "0x" hex) over a message `digest` (EIP-191 or
/// EIP-712), after checking that it recovers `from` (the vault address that signs it).
/// Refuses high S, recovery ids other than 0/1, and a signature by another key.
pub fn message_signature(
    digest: &[u8; 32],
    rs: &[u8; 64],
    recovery_id: u8,
    from: &str,
) -> Result<String, EthError> {
    crate::tx::check_signer(*digest, rs, recovery_id, from)?;
    signature_hex65(rs, recovery_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_hex65_appends_v() {
        let mut rs = [0u8; 64];
        rs[31] = 1;
        rs[63] = 1;
        let s = signature_hex65(&rs, 1).unwrap();
        assert_eq!(s.len(), 2 + 130);
        assert!(s.ends_with("011c"));
        assert!(matches!(
            signature_hex65(&rs, 2),
            Err(EthError::BadRecoveryId { id: 2 })
        ));
    }

    #[test]
    fn malformed_typed_data_is_a_typed_error() {
        assert!(matches!(
            typed_data_hash("{"),
            Err(EthError::TypedDataJson { .. })
        ));
        let unknown =
            r#"{"types":{"EIP712Domain":[]},"primaryType":"Nope","domain":{},"message":{}}"#;
        assert!(matches!(
            typed_data_hash(unknown),
            Err(EthError::TypedDataEncoding { .. })
        ));
    }
}
