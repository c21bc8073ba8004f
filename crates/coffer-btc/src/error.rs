//! The crate's one error type, [`BtcError`]: every failure of address handling, PSBT building,
//! decoding, sighash computation, finalization and broadcast, with the context a caller can act on.
//!
//! Variants are grouped by whose fault they are: the caller's arguments (keys, requests, UTXOs),
//! an untrusted PSBT or address that is malformed or inconsistent, a signature that does not
//! verify, and the node we broadcast to.

use crate::Network;

/// Everything that can go wrong in `coffer-btc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtcError {
    // ---- Caller arguments: names and keys ----
    /// A network name that is not one of mainnet, bitcoin, testnet, signet, regtest.
    #[error(
        "unknown bitcoin network {name:?} (expected mainnet, bitcoin, testnet, signet or regtest)"
    )]
    UnknownNetwork {
        /// The name given.
        name: String,
    },
    /// A spend kind that is not p2wpkh or p2tr.
    #[error("unknown spend kind {name:?} (expected p2wpkh or p2tr)")]
    UnknownSpend {
        /// The name given.
        name: String,
    },
    /// A public key of the wrong length for its kind.
    #[error("{kind} key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Which key ("compressed secp256k1", "x-only").
        kind: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A public key of the right length that is not a valid curve point.
    #[error("{kind} key is not a valid secp256k1 point")]
    InvalidKey {
        /// Which key ("compressed secp256k1", "x-only").
        kind: &'static str,
    },
    /// A field that must be hex is not.
    #[error("{field} is not valid hex")]
    InvalidHex {
        /// Which field.
        field: &'static str,
    },

    // ---- Addresses (untrusted strings) ----
    /// The address's bech32/bech32m or base58 checksum is wrong.
    #[error("address {address:?} has an invalid checksum")]
    AddressChecksum {
        /// The address (truncated to 100 characters).
        address: String,
    },
    /// A bech32 address mixing upper and lower case.
    #[error("address {address:?} mixes upper and lower case")]
    AddressMixedCase {
        /// The address (truncated to 100 characters).
        address: String,
    },
    /// A valid address of another network.
    #[error("address {address:?} is not a {expected} address")]
    AddressWrongNetwork {
        /// The address (truncated to 100 characters).
        address: String,
        /// The network required.
        expected: Network,
    },
    /// A segwit address of a witness version we do not pay to (only v0 and v1 are known).
    #[error("address {address:?} uses unsupported witness version {version}")]
    AddressWitnessVersion {
        /// The address (truncated to 100 characters).
        address: String,
        /// The witness version it encodes.
        version: u8,
    },
    /// A well-formed address whose program is no standard output type (e.g. v1 with a 20-byte program).
    #[error("address {address:?} is not a standard output type")]
    AddressNonStandard {
        /// The address (truncated to 100 characters).
        address: String,
    },
    /// A string that is not an address at all.
    #[error("{address:?} is not a bitcoin address: {reason}")]
    AddressMalformed {
        /// The string (truncated to 100 characters).
        address: String,
        /// What the decoder said.
        reason: String,
    },

    // ---- UTXOs and spend requests (caller arguments) ----
    /// A UTXO string that is not `TXID:VOUT:SATS:SCRIPT_HEX`.
    #[error("utxo {input:?} is not TXID:VOUT:SATS:SCRIPT_HEX")]
    UtxoFormat {
        /// The string (truncated to 100 characters).
        input: String,
    },
    /// A UTXO txid that is not 64 hex characters.
    #[error("utxo txid {value:?} is not 64 hex characters")]
    UtxoTxid {
        /// The txid given (truncated to 100 characters).
        value: String,
    },
    /// A UTXO output index that is not a u32.
    #[error("utxo vout {value:?} is not a 32-bit output index")]
    UtxoVout {
        /// The value given (truncated to 100 characters).
        value: String,
    },
    /// A UTXO value that is not a u64 number of satoshis.
    #[error("utxo value {value:?} is not a number of satoshis")]
    UtxoValue {
        /// The value given (truncated to 100 characters).
        value: String,
    },
    /// A UTXO script that is not hex.
    #[error("utxo script {value:?} is not hex")]
    UtxoScript {
        /// The value given (truncated to 100 characters).
        value: String,
    },
    /// A spend request without UTXOs.
    #[error("no utxos to spend")]
    NoUtxos,
    /// The same outpoint given twice.
    #[error("utxo {txid}:{vout} is listed twice")]
    DuplicateOutpoint {
        /// Its txid.
        txid: String,
        /// Its output index.
        vout: u32,
    },
    /// A UTXO whose script is not the source address's script.
    #[error("utxo {txid}:{vout} does not pay the source address")]
    ForeignUtxo {
        /// Its txid.
        txid: String,
        /// Its output index.
        vout: u32,
    },
    /// A destination that is the source address itself (nothing would leave the vault).
    #[error("destination is the source address")]
    DestinationIsSource,
    /// An amount of zero.
    #[error("amount is zero")]
    ZeroAmount,
    /// An amount (or output) below the dust limit of its script.
    #[error("amount {amount} sat is below the dust limit {dust} sat of the destination")]
    BelowDust {
        /// The amount.
        amount: u64,
        /// The script's dust limit.
        dust: u64,
    },
    /// A fee rate of zero.
    #[error("fee rate is zero")]
    ZeroFeeRate,
    /// A fee rate above the sanity cap.
    #[error("fee rate {fee_rate} sat/vB is above the cap of {max} sat/vB")]
    AbsurdFeeRate {
        /// The rate given (or, in a decoded PSBT, its fee over its estimated vsize, rounded up).
        fee_rate: u64,
        /// The cap.
        max: u64,
    },
    /// The inputs do not cover amount plus fee.
    #[error("insufficient funds: {available} sat available, {required} sat required (amount + fee), {missing} sat missing")]
    InsufficientFunds {
        /// Sum of all UTXOs.
        available: u64,
        /// Amount plus the fee with every UTXO spent.
        required: u64,
        /// `required - available`.
        missing: u64,
    },
    /// A sum or product of amounts that does not fit in 64 bits.
    #[error("{what} overflows")]
    Overflow {
        /// Which computation.
        what: &'static str,
    },
    /// The transaction would exceed the standard weight limit.
    #[error("transaction weight {weight} WU exceeds the standard limit {max} WU")]
    TooLarge {
        /// Estimated weight.
        weight: u64,
        /// The limit.
        max: u64,
    },

    // ---- Untrusted PSBTs ----
    /// Bytes that are not a BIP174 PSBT.
    #[error("malformed psbt: {reason}")]
    PsbtMalformed {
        /// What the decoder said.
        reason: String,
    },
    /// A PSBT without inputs.
    #[error("psbt has no inputs")]
    PsbtNoInputs,
    /// A PSBT input without `witness_utxo`.
    #[error("psbt input {input} has no witness_utxo")]
    PsbtMissingWitnessUtxo {
        /// Input index.
        input: usize,
    },
    /// A PSBT input that does not spend from the source address.
    #[error("psbt input {input} does not spend from the source address")]
    PsbtForeignInput {
        /// Input index.
        input: usize,
    },
    /// A PSBT with no output paying somewhere other than the source.
    #[error("psbt has no destination output")]
    PsbtNoDestination,
    /// A PSBT with more than one output paying somewhere other than the source.
    #[error("psbt pays {count} outputs other than the source (exactly one allowed)")]
    PsbtExtraDestination {
        /// How many such outputs.
        count: usize,
    },
    /// A PSBT with more than one output paying the source.
    #[error("psbt pays the source address {count} times (at most one change output allowed)")]
    PsbtExtraChange {
        /// How many change outputs.
        count: usize,
    },
    /// A destination output whose script has no address form.
    #[error("psbt output {output} pays a script with no standard address")]
    PsbtNonStandardOutput {
        /// Output index.
        output: usize,
    },
    /// A PSBT output below the dust limit of its script.
    #[error("psbt output {output} pays {value} sat, below its dust limit {dust} sat")]
    PsbtDustOutput {
        /// Output index.
        output: usize,
        /// Its value.
        value: u64,
        /// Its dust limit.
        dust: u64,
    },
    /// Outputs worth more than the inputs.
    #[error("psbt outputs ({outputs} sat) exceed its inputs ({inputs} sat)")]
    PsbtNegativeFee {
        /// Sum of inputs.
        inputs: u64,
        /// Sum of outputs.
        outputs: u64,
    },
    /// The library refused to compute a sighash.
    #[error("cannot compute the sighash of input {input}: {reason}")]
    Sighash {
        /// Input index.
        input: usize,
        /// What the library said.
        reason: String,
    },

    // ---- Signatures from the signers ----
    /// Not one signature per input.
    #[error("{got} signatures for {expected} inputs")]
    SignatureCount {
        /// Number of inputs.
        expected: usize,
        /// Number of signatures given.
        got: usize,
    },
    /// A 64-byte value that does not parse as a signature (r or s out of range).
    #[error("signature for input {input} is not a valid encoding")]
    SignatureEncoding {
        /// Input index.
        input: usize,
    },
    /// An ECDSA signature with a high S value (non-standard, malleable).
    #[error("ecdsa signature for input {input} has a high S value")]
    SignatureHighS {
        /// Input index.
        input: usize,
    },
    /// A signature that does not verify against the input's sighash and key.
    #[error("signature for input {input} does not verify")]
    SignatureInvalid {
        /// Input index.
        input: usize,
    },

    // ---- The node ----
    /// The RPC endpoint could not be reached or answered with garbage.
    #[error("bitcoin rpc transport error: {reason}")]
    RpcTransport {
        /// What went wrong.
        reason: String,
    },
    /// The node rejected the call (e.g. the transaction).
    #[error("bitcoin rpc error {code}: {message}")]
    RpcRejected {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
}

/// Truncates untrusted text kept in an error to 100 characters.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}
