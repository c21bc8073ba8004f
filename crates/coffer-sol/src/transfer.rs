//! System-program transfers: building the legacy message the signers sign, and decoding one
//! strictly for policy. Also owns the hostile-input parser of legacy messages shared with
//! [`crate::assemble`].

use bincode::Options;
use serde::{Deserialize, Serialize};
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_sanitize::Sanitize;
use solana_system_interface::instruction::{self as system_instruction, SystemInstruction};
use solana_system_interface::program::ID as SYSTEM_PROGRAM_ID;

use crate::address::{parse_hash, parse_pubkey};
use crate::{SolError, MAX_TRANSACTION_SIZE};

/// A system-program transfer to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Base58 vault address: the fee payer and only signer.
    pub from: String,
    /// Base58 recipient address.
    pub to: String,
    /// Amount in lamports (non-zero).
    pub lamports: u64,
    /// Base58 recent blockhash (32 bytes): the transaction's lifetime.
    pub recent_blockhash: String,
}

/// What a message does, for policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// Base58 fee payer, signer and debited account.
    pub from: String,
    /// Base58 recipient.
    pub to: String,
    /// Amount in lamports.
    pub lamports: u64,
    /// Base58 recent blockhash.
    pub recent_blockhash: String,
}

/// The serialized legacy message (what the Ed25519 signature covers): one system Transfer
/// instruction, fee payer = from.
///
/// Errors: lamports 0, to == from, bad addresses, bad blockhash, the system program's own address
/// as either party.
pub fn build_transfer(req: &TransferRequest) -> Result<Vec<u8>, SolError> {
    let from = parse_pubkey("from", &req.from)?;
    let to = parse_pubkey("to", &req.to)?;
    let blockhash = parse_hash("recent_blockhash", &req.recent_blockhash)?;
    if req.lamports == 0 {
        return Err(SolError::ZeroAmount);
    }
    if from == to {
        return Err(SolError::SelfTransfer {
            address: req.from.clone(),
        });
    }
    for (field, key) in [("from", &from), ("to", &to)] {
        if *key == SYSTEM_PROGRAM_ID {
            return Err(SolError::ReservedAddress {
                field,
                address: key.to_string(),
            });
        }
    }
    let ix = system_instruction::transfer(&from, &to, req.lamports);
    let message = Message::new_with_blockhash(&[ix], Some(&from), &blockhash);
    serialize_message(&message)
}

/// Strict: a legacy message with exactly one required signature (the fee payer = from), exactly
/// one instruction, which is a system-program Transfer from the fee payer to `to`; any other
/// program, extra instructions, extra signers, versioned messages, trailing bytes, out-of-range
/// account indices: typed errors, never panics.
pub fn decode_transfer(message: &[u8]) -> Result<Decoded, SolError> {
    let msg = parse_legacy_message(message)?;
    let ix = match msg.instructions.as_slice() {
        [ix] => ix,
        other => return Err(SolError::InstructionCount { got: other.len() }),
    };
    let key = |index: u8| key_at(&msg.account_keys, index);
    let program_id = key(ix.program_id_index)?;
    if *program_id != SYSTEM_PROGRAM_ID {
        return Err(SolError::NotSystemProgram {
            program_id: program_id.to_string(),
        });
    }
    let lamports = match decode_system_instruction(&ix.data)? {
        SystemInstruction::Transfer { lamports } => lamports,
        other => {
            return Err(SolError::NotTransfer {
                detail: format!("system instruction {other:?}"),
            })
        }
    };
    let (source, dest) = match ix.accounts.as_slice() {
        [source, dest] => (*source, *dest),
        other => {
            return Err(SolError::NotTransfer {
                detail: format!("a transfer names 2 accounts, this one {}", other.len()),
            })
        }
    };
    let fee_payer = key(0)?;
    let source_key = key(source)?;
    let dest_key = key(dest)?;
    if source != 0 || source_key != fee_payer {
        return Err(SolError::SourceNotFeePayer {
            source_address: source_key.to_string(),
            fee_payer: fee_payer.to_string(),
        });
    }
    if dest_key == fee_payer {
        return Err(SolError::SelfTransfer {
            address: fee_payer.to_string(),
        });
    }
    if *dest_key == SYSTEM_PROGRAM_ID {
        return Err(SolError::ReservedAddress {
            field: "to",
            address: dest_key.to_string(),
        });
    }
    if lamports == 0 {
        return Err(SolError::ZeroAmount);
    }
    let decoded = Decoded {
        from: fee_payer.to_string(),
        to: dest_key.to_string(),
        lamports,
        recent_blockhash: msg.recent_blockhash.to_string(),
    };
    // Everything policy sees is in `decoded`; anything else in the message (extra accounts,
    // other header flags, key order) must be exactly what `build_transfer` would produce.
    let canonical = build_transfer(&TransferRequest {
        from: decoded.from.clone(),
        to: decoded.to.clone(),
        lamports,
        recent_blockhash: decoded.recent_blockhash.clone(),
    })?;
    if canonical != message {
        return Err(SolError::NonCanonical {
            detail: "header or account list differs from the one-transfer layout",
        });
    }
    Ok(decoded)
}

/// Parses hostile bytes as a legacy message with exactly one required signature, checking every
/// account index and running Solana's sanitizer. The result re-serializes to exactly `bytes`.
pub(crate) fn parse_legacy_message(bytes: &[u8]) -> Result<Message, SolError> {
    if bytes.len() > MAX_TRANSACTION_SIZE {
        return Err(SolError::MessageTooLarge {
            len: bytes.len(),
            max: MAX_TRANSACTION_SIZE,
        });
    }
    let first = *bytes.first().ok_or_else(|| SolError::Truncated {
        detail: "empty message".into(),
    })?;
    // Versioned messages set the top bit of the first byte; a legacy header's
    // num_required_signatures never does (at most 127 signatures fit a packet).
    if first & 0x80 != 0 {
        return Err(SolError::VersionedMessage { prefix: first });
    }
    let mut rest = bytes;
    let msg: Message = bincode_options()
        .deserialize_from(&mut rest)
        .map_err(|e| match *e {
            bincode::ErrorKind::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                SolError::Truncated {
                    detail: e.to_string(),
                }
            }
            _ => SolError::Malformed {
                detail: e.to_string(),
            },
        })?;
    if !rest.is_empty() {
        return Err(SolError::TrailingBytes { count: rest.len() });
    }
    if msg.header.num_required_signatures != 1 {
        return Err(SolError::SignerCount {
            got: msg.header.num_required_signatures,
        });
    }
    for ix in &msg.instructions {
        for index in std::iter::once(&ix.program_id_index).chain(ix.accounts.iter()) {
            key_at(&msg.account_keys, *index)?;
        }
    }
    msg.sanitize().map_err(|e| SolError::Sanitize {
        detail: e.to_string(),
    })?;
    // Short-vec lengths have one encoding each, so a parsed message re-serializes to its input;
    // checked anyway, because the signature covers the bytes and the wire carries the struct.
    if serialize_message(&msg)? != bytes {
        return Err(SolError::Malformed {
            detail: "message does not re-serialize to its own bytes".into(),
        });
    }
    Ok(msg)
}

/// The account key at `index`, or a typed error.
fn key_at(keys: &[Pubkey], index: u8) -> Result<&Pubkey, SolError> {
    keys.get(usize::from(index))
        .ok_or(SolError::AccountIndexOutOfRange {
            index,
            len: keys.len(),
        })
}

/// Decodes system-program instruction data (bincode, as the runtime does), refusing trailing bytes.
fn decode_system_instruction(data: &[u8]) -> Result<SystemInstruction, SolError> {
    bincode_options()
        .reject_trailing_bytes()
        .deserialize(data)
        .map_err(|e| SolError::NotTransfer {
            detail: format!("instruction data is not a system instruction: {e}"),
        })
}

/// Serializes a legacy message exactly as `Message::serialize` does (bincode, fixed-width ints).
pub(crate) fn serialize_message(msg: &Message) -> Result<Vec<u8>, SolError> {
    bincode_options()
        .serialize(msg)
        .map_err(|e| SolError::Encode {
            what: "legacy message",
            detail: e.to_string(),
        })
}

/// The bincode configuration of `bincode::serialize`/`deserialize` (fixed-width integers), with
/// a size limit so hostile length prefixes cannot ask for more than a packet.
fn bincode_options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(MAX_TRANSACTION_SIZE as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> TransferRequest {
        TransferRequest {
            from: Pubkey::new_from_array([7; 32]).to_string(),
            to: Pubkey::new_from_array([9; 32]).to_string(),
            lamports: 1_000,
            recent_blockhash: Pubkey::new_from_array([3; 32]).to_string(),
        }
    }

    #[test]
    fn a_built_transfer_decodes_to_its_request() {
        let r = req();
        let d = decode_transfer(&build_transfer(&r).unwrap()).unwrap();
        assert_eq!(
            (d.from, d.to, d.lamports, d.recent_blockhash),
            (r.from, r.to, r.lamports, r.recent_blockhash)
        );
    }

    #[test]
    fn zero_lamports_and_self_transfers_are_refused() {
        let mut r = req();
        r.lamports = 0;
        assert_eq!(build_transfer(&r), Err(SolError::ZeroAmount));
        let mut r = req();
        r.to = r.from.clone();
        assert!(matches!(
            build_transfer(&r),
            Err(SolError::SelfTransfer { .. })
        ));
    }

    #[test]
    fn the_system_program_cannot_receive() {
        let mut r = req();
        r.to = SYSTEM_PROGRAM_ID.to_string();
        assert!(matches!(
            build_transfer(&r),
            Err(SolError::ReservedAddress { field: "to", .. })
        ));
    }

    #[test]
    fn a_versioned_prefix_is_refused() {
        let mut m = build_transfer(&req()).unwrap();
        m.insert(0, 0x80);
        assert_eq!(
            decode_transfer(&m),
            Err(SolError::VersionedMessage { prefix: 0x80 })
        );
    }

    #[test]
    fn an_oversized_message_is_refused_before_parsing() {
        let m = vec![1u8; MAX_TRANSACTION_SIZE + 1];
        assert!(matches!(
            decode_transfer(&m),
            Err(SolError::MessageTooLarge { .. })
        ));
    }
}
