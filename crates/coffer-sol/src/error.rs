//! The crate's error type: every way an address, a message, a signature or a node can be refused.

/// Everything that can go wrong in `coffer-sol`.
///
/// Variants name whose fault it is: the caller's arguments (addresses, amounts), the message
/// under review (hostile or unsupported bytes), the signers (a signature that does not verify) or
/// the node (RPC).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SolError {
    /// An Ed25519 public key must be exactly 32 bytes.
    #[error("an Ed25519 public key is 32 bytes, got {got}")]
    PublicKeyLength {
        /// The length given.
        got: usize,
    },
    /// A base58 string (address or blockhash) contains characters outside the base58 alphabet.
    #[error("{field} is not base58: {input:?}")]
    BadBase58 {
        /// Which value: "address", "recent_blockhash", ...
        field: &'static str,
        /// The string given.
        input: String,
    },
    /// A base58 string decodes to something other than 32 bytes.
    #[error("{field} does not decode to 32 bytes: {input:?}")]
    WrongLength {
        /// Which value.
        field: &'static str,
        /// The string given.
        input: String,
    },
    /// A base58 string decodes to 32 bytes but is not their canonical encoding.
    #[error("{field} is not in canonical base58 form: {input:?} (canonical: {canonical})")]
    NonCanonicalBase58 {
        /// Which value.
        field: &'static str,
        /// The string given.
        input: String,
        /// The canonical spelling of the same bytes.
        canonical: String,
    },
    /// A transfer of zero lamports.
    #[error("a transfer of 0 lamports")]
    ZeroAmount,
    /// A transfer whose recipient is its sender.
    #[error("transfer from {address} to itself")]
    SelfTransfer {
        /// The address on both sides.
        address: String,
    },
    /// The system program's own address as a party of a transfer.
    #[error("{field} is the system program's address {address}, which cannot be a transfer party")]
    ReservedAddress {
        /// Which party: "from" or "to".
        field: &'static str,
        /// The address.
        address: String,
    },
    /// The message is longer than a Solana transaction can be.
    #[error("message of {len} bytes exceeds the {max}-byte transaction limit")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message ends before its structure does.
    #[error("message truncated: {detail}")]
    Truncated {
        /// What was being read.
        detail: String,
    },
    /// The message is not a well-formed legacy message.
    #[error("malformed message: {detail}")]
    Malformed {
        /// The decoder's complaint.
        detail: String,
    },
    /// A versioned (v0 or later) message: only legacy messages are accepted.
    #[error("versioned message (prefix byte {prefix:#04x}); only legacy messages are accepted")]
    VersionedMessage {
        /// The first byte of the message.
        prefix: u8,
    },
    /// Bytes after the end of the message.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The message requires a number of signatures other than one (the fee payer's).
    #[error("message requires {got} signatures; exactly 1 (the fee payer's) is accepted")]
    SignerCount {
        /// The header's `num_required_signatures`.
        got: u8,
    },
    /// The message carries a number of instructions other than one.
    #[error("message has {got} instructions; exactly 1 is accepted")]
    InstructionCount {
        /// How many.
        got: usize,
    },
    /// An instruction refers to an account index outside the account list.
    #[error("account index {index} out of range ({len} accounts)")]
    AccountIndexOutOfRange {
        /// The index.
        index: u8,
        /// The number of accounts.
        len: usize,
    },
    /// Solana's own message sanitization refused the message.
    #[error("message fails Solana's sanitization: {detail}")]
    Sanitize {
        /// The sanitizer's complaint.
        detail: String,
    },
    /// The instruction is not for the system program.
    #[error("instruction for program {program_id}, not the system program")]
    NotSystemProgram {
        /// The program invoked.
        program_id: String,
    },
    /// The system instruction is not a plain `Transfer`.
    #[error("not a system transfer: {detail}")]
    NotTransfer {
        /// What differs.
        detail: String,
    },
    /// The transfer's source is not the fee payer (the only signer).
    #[error("transfer source {source_address} is not the fee payer {fee_payer}")]
    SourceNotFeePayer {
        /// The account debited.
        source_address: String,
        /// The fee payer.
        fee_payer: String,
    },
    /// The message holds a transfer, but not in the exact layout `build_transfer` produces
    /// (extra accounts, other writability flags, ...).
    #[error("message is not the canonical transfer layout: {detail}")]
    NonCanonical {
        /// What differs.
        detail: &'static str,
    },
    /// The fee payer's address is not a valid Ed25519 public key (an off-curve address).
    #[error("fee payer {address} is not an Ed25519 public key")]
    FeePayerNotAKey {
        /// The fee payer.
        address: String,
    },
    /// The signature does not verify over the message under the fee payer's key.
    #[error("signature does not verify under fee payer {fee_payer}")]
    BadSignature {
        /// The fee payer whose key was used.
        fee_payer: String,
    },
    /// Serializing a value failed (a bug: our values always serialize).
    #[error("encoding {what} failed: {detail}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's complaint.
        detail: String,
    },
    /// The RPC node could not be reached or answered with an HTTP error.
    #[error("RPC transport to {url} failed: {detail}")]
    RpcTransport {
        /// The node.
        url: String,
        /// What happened.
        detail: String,
    },
    /// The RPC node answered with a JSON-RPC error.
    #[error("RPC {method} failed with code {code}: {message}")]
    RpcError {
        /// The method called.
        method: &'static str,
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The RPC node's answer is not what the method returns.
    #[error("RPC {method} returned an unexpected response: {detail}")]
    RpcBadResponse {
        /// The method called.
        method: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}
