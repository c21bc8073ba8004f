//! The crate's one error type, [`EthError`]: every failure names what was wrong and with which value.

/// Everything that can go wrong in `coffer-eth`.
///
/// Variants are grouped by whose fault they are: malformed caller input (addresses, keys,
/// transaction fields), a hostile or unsupported unsigned transaction, a bad signature from the
/// signers, malformed EIP-712 JSON, and the remote node (transport or RPC error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EthError {
    /// The public key is neither a valid 33-byte compressed nor 65-byte uncompressed secp256k1 point.
    #[error("invalid secp256k1 public key ({len} bytes)")]
    BadPublicKey {
        /// Length of the rejected input.
        len: usize,
    },
    /// An address did not start with "0x".
    #[error("address {input:?} does not start with \"0x\"")]
    AddressMissingPrefix {
        /// The rejected input.
        input: String,
    },
    /// An address did not have exactly 40 hex characters after "0x".
    #[error("address {input:?} has {len} characters after \"0x\", expected 40")]
    AddressLength {
        /// The rejected input.
        input: String,
        /// Number of characters after the prefix.
        len: usize,
    },
    /// An address contained a non-hex character.
    #[error("address {input:?} is not hexadecimal")]
    AddressNotHex {
        /// The rejected input.
        input: String,
    },
    /// A mixed-case address whose case does not match its EIP-55 checksum.
    #[error("address {input:?} has a bad EIP-55 checksum (expected {expected})")]
    BadChecksum {
        /// The rejected input.
        input: String,
        /// The correctly checksummed form of the same bytes.
        expected: String,
    },
    /// Chain id 0 is not a valid EIP-155 chain.
    #[error("chain id 0 is not allowed")]
    ZeroChainId,
    /// Gas limit 0 or above the allowed maximum.
    #[error("gas limit {gas_limit} outside 1..={max}")]
    BadGasLimit {
        /// The rejected gas limit.
        gas_limit: u64,
        /// The largest gas limit accepted.
        max: u64,
    },
    /// The priority fee (tip) exceeds the maximum fee per gas.
    #[error("max priority fee per gas {max_priority_fee_per_gas} exceeds max fee per gas {max_fee_per_gas}")]
    PriorityFeeAboveMaxFee {
        /// The tip.
        max_priority_fee_per_gas: u128,
        /// The fee cap.
        max_fee_per_gas: u128,
    },
    /// `gas_limit * max_fee_per_gas`, or `value` plus that, does not fit in a u128.
    #[error("fee or total cost overflows: gas limit {gas_limit} * max fee {max_fee_per_gas} (+ value {value})")]
    CostOverflow {
        /// The gas limit.
        gas_limit: u64,
        /// The fee cap per gas.
        max_fee_per_gas: u128,
        /// The transferred value.
        value: u128,
    },
    /// Transaction `data` is not valid hex.
    #[error("transaction data is not valid hex: {source}")]
    BadHexData {
        /// The hex decoder's complaint.
        #[source]
        source: hex::FromHexError,
    },
    /// The unsigned transaction does not start with the EIP-1559 type byte 0x02.
    #[error("not an EIP-1559 transaction: type byte {found:?}")]
    WrongTxType {
        /// The first byte found (`None` for empty input).
        found: Option<u8>,
    },
    /// The RLP body failed to decode.
    #[error("malformed RLP in unsigned transaction: {source}")]
    Rlp {
        /// The RLP decoder's complaint.
        #[source]
        source: alloy_rlp::Error,
    },
    /// Bytes remain after the RLP list.
    #[error("{count} trailing bytes after the transaction")]
    TrailingBytes {
        /// Number of extra bytes.
        count: usize,
    },
    /// The RLP decoded but is not the canonical encoding of what it decodes to.
    #[error("non-canonical RLP encoding")]
    NonCanonical,
    /// The access list is not empty (Coffer only signs plain transfers).
    #[error("access list must be empty, has {entries} entries")]
    AccessListNotEmpty {
        /// Number of access-list entries.
        entries: usize,
    },
    /// The transaction has no `to` (contract creation), which Coffer never signs.
    #[error("contract creation is not supported")]
    ContractCreation,
    /// Non-empty call data that is not an exact ERC-20 `transfer(address,uint256)` call.
    #[error("unsupported contract call (selector {selector:?}, {len} bytes of data)")]
    UnsupportedCall {
        /// The first four bytes of the data, when there are at least four.
        selector: Option<[u8; 4]>,
        /// Length of the call data.
        len: usize,
    },
    /// An ERC-20 transfer that also sends ETH.
    #[error("ERC-20 transfer with nonzero ETH value {value}")]
    Erc20WithValue {
        /// The ETH value (decimal string, may exceed u128).
        value: String,
    },
    /// An amount (ETH value or token amount) does not fit in a u128.
    #[error("amount {amount} exceeds u128")]
    AmountTooLarge {
        /// The amount (decimal string).
        amount: String,
    },
    /// The signature's S is in the upper half of the curve order (not low-S normalized).
    #[error("signature is not low-S normalized")]
    HighS,
    /// Recovery id other than 0 or 1.
    #[error("recovery id {id} is not 0 or 1")]
    BadRecoveryId {
        /// The rejected id.
        id: u8,
    },
    /// r or s is zero or not below the curve order, or recovery failed.
    #[error("invalid ECDSA signature: {source}")]
    BadSignature {
        /// libsecp256k1's complaint.
        #[source]
        source: secp256k1::Error,
    },
    /// The signature recovers to an address other than the expected signer.
    #[error("signature recovers {recovered}, expected {expected}")]
    SignerMismatch {
        /// The address the transaction must come from.
        expected: String,
        /// The address the signature actually recovers.
        recovered: String,
    },
    /// EIP-712 typed data is not valid JSON of the expected shape.
    #[error("EIP-712 typed data JSON is malformed: {source}")]
    TypedDataJson {
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// EIP-712 typed data is well-formed JSON but cannot be encoded (unknown type, bad value, ...).
    #[error("EIP-712 typed data cannot be encoded: {source}")]
    TypedDataEncoding {
        /// The EIP-712 encoder's complaint.
        #[source]
        source: alloy_dyn_abi::Error,
    },
    /// The EIP-712 domain chain id does not fit in a u64.
    #[error("EIP-712 domain chain id {chain_id} exceeds u64")]
    TypedDataChainId {
        /// The chain id (decimal string).
        chain_id: String,
    },
    /// The HTTP request to the node failed (connection, timeout, non-2xx status).
    #[error("RPC transport error calling {method}: {source}")]
    Transport {
        /// The JSON-RPC method.
        method: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The node answered with a JSON-RPC error object.
    #[error("RPC error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// JSON-RPC error message.
        message: String,
    },
    /// The node answered with something that is not the expected JSON-RPC result.
    #[error("unexpected RPC response to {method}: {detail}")]
    BadRpcResponse {
        /// The JSON-RPC method.
        method: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
