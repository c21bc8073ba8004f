//! Approvers' decisions: signed statements naming an intent hash, a decision and an expiry.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::keys::{public_key_of, sign_bytes};
use crate::{Hash32, PolicyError, PublicKey, Signature};

/// An approver's decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve the intent.
    Approve,
    /// Reject it (blocks it when the approver is in a required group).
    Reject,
}

/// A signed decision over an intent hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver's key.
    pub approver: PublicKey,
    /// The hash of the intent (`Intent::hash`).
    #[serde(with = "crate::hex32")]
    pub intent_hash: Hash32,
    /// The decision.
    pub decision: Decision,
    /// After this time (unix seconds, `expires_at <= now`) the approval no longer counts.
    pub expires_at: i64,
    /// Signature over `Approval::signing_bytes`.
    pub signature: Signature,
}

impl Approval {
    /// "coffer-approval-v1" || intent hash || decision (1 approve, 0 reject) || expiry i64 BE.
    pub fn signing_bytes(intent_hash: &Hash32, decision: Decision, expires_at: i64) -> Vec<u8> {
        let mut out = b"coffer-approval-v1".to_vec();
        out.extend_from_slice(intent_hash);
        out.push(u8::from(decision == Decision::Approve));
        out.extend_from_slice(&expires_at.to_be_bytes());
        out
    }

    /// Signs a decision.
    pub fn sign(
        sk: &SigningKey,
        intent_hash: Hash32,
        decision: Decision,
        expires_at: i64,
    ) -> Approval {
        Approval {
            approver: public_key_of(sk),
            intent_hash,
            decision,
            expires_at,
            signature: sign_bytes(sk, &Self::signing_bytes(&intent_hash, decision, expires_at)),
        }
    }

    /// Checks the signature (`BadApproval` when it does not verify).
    pub fn verify(&self) -> Result<(), PolicyError> {
        self.approver
            .verify(
                &Self::signing_bytes(&self.intent_hash, self.decision, self.expires_at),
                &self.signature,
            )
            .map_err(|_| PolicyError::BadApproval {
                approver: self.approver,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::sk;

    #[test]
    fn sign_verify_and_tamper() {
        let a = Approval::sign(&sk(3), [7; 32], Decision::Approve, 100);
        a.verify().unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"approve\""));
        assert_eq!(serde_json::from_str::<Approval>(&json).unwrap(), a);
        for f in [
            |a: &mut Approval| a.decision = Decision::Reject,
            |a: &mut Approval| a.expires_at += 1,
            |a: &mut Approval| a.intent_hash[0] ^= 1,
            |a: &mut Approval| a.approver = crate::testutil::pk(4),
        ] {
            let mut t = a.clone();
            f(&mut t);
            assert!(matches!(t.verify(), Err(PolicyError::BadApproval { .. })));
        }
    }
}
