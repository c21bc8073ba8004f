//! Finished transactions: the externally produced Ed25519 signature is verified over the message
//! under the fee payer's key, then attached to make the wire transaction.

use base64::Engine as _;
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use serde::{Deserialize, Serialize};
use solana_signature::Signature;
use solana_transaction::Transaction;

use crate::transfer::parse_legacy_message;
use crate::SolError;

/// A finished transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The wire transaction, standard base64 (what `sendTransaction` takes with
    /// `{"encoding":"base64"}`).
    pub raw_base64: String,
    /// The first (only) signature, base58: the transaction id.
    pub signature: String,
}

/// Verifies the signature over `message` under the fee payer's key (ed25519-dalek
/// `verify_strict`) and builds the wire transaction.
///
/// `message` must be a legacy message with exactly one required signature (what
/// [`crate::build_transfer`] produces); it is parsed as hostile input.
pub fn assemble(message: &[u8], signature: &[u8; 64]) -> Result<SignedTx, SolError> {
    let msg = parse_legacy_message(message)?;
    let fee_payer = msg.account_keys.first().ok_or(SolError::Sanitize {
        detail: "no fee payer".into(),
    })?;
    let key =
        VerifyingKey::from_bytes(&fee_payer.to_bytes()).map_err(|_| SolError::FeePayerNotAKey {
            address: fee_payer.to_string(),
        })?;
    key.verify_strict(message, &DalekSignature::from_bytes(signature))
        .map_err(|_| SolError::BadSignature {
            fee_payer: fee_payer.to_string(),
        })?;
    let sig = Signature::from(*signature);
    let tx = Transaction {
        signatures: vec![sig],
        message: msg,
    };
    let wire = bincode::serialize(&tx).map_err(|e| SolError::Encode {
        what: "transaction",
        detail: e.to_string(),
    })?;
    // The signature covers `message`; the wire must carry exactly those bytes after the
    // signature list (parse_legacy_message already checked that the struct re-serializes to them).
    if !wire.ends_with(message) {
        return Err(SolError::Encode {
            what: "transaction",
            detail: "wire message differs from the signed message".into(),
        });
    }
    Ok(SignedTx {
        raw_base64: base64::engine::general_purpose::STANDARD.encode(&wire),
        signature: sig.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    use crate::{address, build_transfer, TransferRequest};

    fn signed_message() -> (Vec<u8>, [u8; 64]) {
        let key = SigningKey::from_bytes(&[42; 32]);
        let message = build_transfer(&TransferRequest {
            from: address(key.verifying_key().as_bytes()).unwrap(),
            to: address(&[9; 32]).unwrap(),
            lamports: 5,
            recent_blockhash: address(&[3; 32]).unwrap(),
        })
        .unwrap();
        let sig = key.sign(&message).to_bytes();
        (message, sig)
    }

    #[test]
    fn the_wire_is_one_signature_then_the_message() {
        let (message, sig) = signed_message();
        let tx = assemble(&message, &sig).unwrap();
        let wire = base64::engine::general_purpose::STANDARD
            .decode(&tx.raw_base64)
            .unwrap();
        let mut want = vec![1u8];
        want.extend_from_slice(&sig);
        want.extend_from_slice(&message);
        assert_eq!(wire, want);
        assert_eq!(bs58_of(&sig), tx.signature);
    }

    fn bs58_of(bytes: &[u8]) -> String {
        bs58::encode(bytes).into_string()
    }

    #[test]
    fn a_flipped_signature_bit_is_refused() {
        let (message, mut sig) = signed_message();
        sig[10] ^= 1;
        assert!(matches!(
            assemble(&message, &sig),
            Err(SolError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_signature_over_other_bytes_is_refused() {
        let (mut message, sig) = signed_message();
        let last = message.len() - 1;
        message[last] ^= 1; // lamports changed after signing
        assert!(matches!(
            assemble(&message, &sig),
            Err(SolError::BadSignature { .. })
        ));
    }
}
