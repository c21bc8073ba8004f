//! Ledger receipts: the signers' co-signed, hash-linked record of every signing on a key.
//! They carry velocity history and replay protection between signers that did not take
//! part in each other's sessions.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::intent::{sha256, Canon};
use crate::keys::sign_bytes;
use crate::{Amount, Hash32, Intent, PolicyError, PublicKey, Signature};

/// One signing on a key's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// The key whose chain this is.
    pub key_id: String,
    /// Position in the chain, from 0.
    pub seq: u64,
    /// Hash of the previous body; zeros for seq 0.
    #[serde(with = "crate::hex32")]
    pub prev: Hash32,
    /// The signed intent's hash.
    #[serde(with = "crate::hex32")]
    pub intent_hash: Hash32,
    /// The intent's request id.
    pub request_id: String,
    /// The intent's wallet.
    pub wallet_id: String,
    /// The intent's asset.
    pub asset: String,
    /// The intent's amount.
    pub amount: Amount,
    /// When it was signed (unix seconds).
    pub at: i64,
}

/// A body with member signatures over `ReceiptBody::signing_bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The body.
    pub body: ReceiptBody,
    /// (signer, signature) pairs.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl ReceiptBody {
    /// The receipt for signing `intent` as `seq` after the body hashing to `prev`, at `at`.
    pub fn for_intent(intent: &Intent, seq: u64, prev: Hash32, at: i64) -> ReceiptBody {
        ReceiptBody {
            key_id: intent.key_id.clone(),
            seq,
            prev,
            intent_hash: intent.hash(),
            request_id: intent.request_id.clone(),
            wallet_id: intent.wallet_id.clone(),
            asset: intent.asset.clone(),
            amount: intent.amount,
            at,
        }
    }

    /// SHA-256 of `coffer-receipt-v1` and the fields in order: strings and hashes as
    /// (u32 BE length, bytes), the amount as its decimal string, seq as u64 BE, at as i64 BE.
    pub fn hash(&self) -> Hash32 {
        let mut c = Canon::new(b"coffer-receipt-v1");
        c.str(&self.key_id)
            .u64(self.seq)
            .bytes(&self.prev)
            .bytes(&self.intent_hash)
            .str(&self.request_id)
            .str(&self.wallet_id)
            .str(&self.asset)
            .str(&self.amount.to_string())
            .i64(self.at);
        sha256(&[&c.0])
    }

    /// "coffer-receipt-sig-v1" || hash.
    pub fn signing_bytes(&self) -> Vec<u8> {
        [b"coffer-receipt-sig-v1".as_slice(), &self.hash()].concat()
    }

    /// A member's signature over this body.
    pub fn sign(&self, sk: &SigningKey) -> Signature {
        sign_bytes(sk, &self.signing_bytes())
    }
}

impl Receipt {
    /// Every signature is by a member and valid, and at least `threshold` distinct members
    /// signed.
    pub fn verify(&self, members: &[PublicKey], threshold: u16) -> Result<(), PolicyError> {
        if threshold == 0 {
            return Err(PolicyError::ZeroThreshold);
        }
        let seq = self.body.seq;
        let msg = self.body.signing_bytes();
        let mut valid = BTreeSet::new();
        for (signer, sig) in &self.signatures {
            if !members.contains(signer) {
                return Err(PolicyError::UnknownSigner {
                    seq,
                    signer: *signer,
                });
            }
            signer
                .verify(&msg, sig)
                .map_err(|_| PolicyError::BadReceiptSignature {
                    seq,
                    signer: *signer,
                })?;
            valid.insert(*signer);
        }
        if valid.len() < usize::from(threshold) {
            return Err(PolicyError::ReceiptQuorum {
                seq,
                have: valid.len(),
                need: threshold,
            });
        }
        Ok(())
    }
}

/// Checks a key's receipt history as a signer receives it: ascending, contiguous, linked by
/// hash, non-decreasing in time, for `key_id`, each receipt verified, no intent twice,
/// ending at `next_seq - 1` (empty iff `next_seq == 0`), and reaching back to seq 0 or to a
/// receipt strictly before `since`. Returns the bodies.
pub fn verify_history(
    history: &[Receipt],
    key_id: &str,
    members: &[PublicKey],
    threshold: u16,
    next_seq: u64,
    since: i64,
) -> Result<Vec<ReceiptBody>, PolicyError> {
    if threshold == 0 {
        return Err(PolicyError::ZeroThreshold);
    }
    let expected = next_seq.checked_sub(1);
    let got = history.last().map(|r| r.body.seq);
    if got != expected {
        return Err(PolicyError::HistoryEnd { expected, got });
    }
    let mut seen: BTreeMap<Hash32, u64> = BTreeMap::new();
    let mut prev: Option<&ReceiptBody> = None;
    for r in history {
        let b = &r.body;
        if b.key_id != key_id {
            return Err(PolicyError::WrongKey {
                seq: b.seq,
                key_id: b.key_id.clone(),
            });
        }
        match prev {
            None if b.seq == 0 && b.prev != [0; 32] => {
                return Err(PolicyError::BrokenLink { seq: 0 })
            }
            None => {}
            Some(p) => {
                if p.seq.checked_add(1) != Some(b.seq) {
                    return Err(PolicyError::HistoryGap {
                        after: p.seq,
                        got: b.seq,
                    });
                }
                if b.prev != p.hash() {
                    return Err(PolicyError::BrokenLink { seq: b.seq });
                }
                if b.at < p.at {
                    return Err(PolicyError::TimeReversed { seq: b.seq });
                }
            }
        }
        r.verify(members, threshold)?;
        if let Some(first_seq) = seen.insert(b.intent_hash, b.seq) {
            return Err(PolicyError::DuplicateIntent {
                seq: b.seq,
                first_seq,
            });
        }
        prev = Some(b);
    }
    if let Some(first) = history.first() {
        if first.body.seq != 0 && first.body.at >= since {
            return Err(PolicyError::HistoryIncomplete {
                need_before: since,
                first_seq: first.body.seq,
                first_at: first.body.at,
            });
        }
    }
    Ok(history.iter().map(|r| r.body.clone()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::{intent, pk, sk};

    const MEMBERS: [u8; 3] = [30, 31, 32];

    fn members() -> Vec<PublicKey> {
        MEMBERS.iter().map(|&i| pk(i)).collect()
    }

    fn cosign(body: ReceiptBody, by: &[u8]) -> Receipt {
        let signatures = by.iter().map(|&i| (pk(i), body.sign(&sk(i)))).collect();
        Receipt { body, signatures }
    }

    /// `n` receipts at times 100, 200, ...
    fn chain(n: u64) -> Vec<Receipt> {
        let mut out: Vec<Receipt> = Vec::new();
        for seq in 0..n {
            let mut i = intent();
            i.request_id = format!("r{seq}");
            let prev = out.last().map_or([0; 32], |r| r.body.hash());
            out.push(cosign(
                ReceiptBody::for_intent(&i, seq, prev, 100 * (seq as i64 + 1)),
                &[30, 31],
            ));
        }
        out
    }

    fn verify(h: &[Receipt], next: u64, since: i64) -> Result<Vec<ReceiptBody>, PolicyError> {
        verify_history(h, "key-1", &members(), 2, next, since)
    }

    /// Re-links and re-signs from `from` on after an edit, so that only the edit is wrong.
    fn relink(h: &mut [Receipt], from: usize) {
        for k in from.max(1)..h.len() {
            h[k].body.prev = h[k - 1].body.hash();
            h[k] = cosign(h[k].body.clone(), &[30, 31]);
        }
    }

    #[test]
    fn good_chains() {
        let h = chain(4);
        assert_eq!(verify(&h, 4, 0).unwrap().len(), 4);
        assert!(verify(&[], 0, 0).unwrap().is_empty());
        let none = verify_history(&[], "key-1", &members(), 0, 0, 0);
        assert_eq!(none, Err(PolicyError::ZeroThreshold));
        // A suffix reaching before `since` suffices.
        assert_eq!(verify(&h[2..], 4, 301).unwrap()[0].seq, 2);
        let json = serde_json::to_string(&h[0]).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), h[0]);
    }

    #[test]
    fn ends_and_coverage() {
        let h = chain(4);
        assert_eq!(
            verify(&h, 5, 0),
            Err(PolicyError::HistoryEnd {
                expected: Some(4),
                got: Some(3)
            })
        );
        assert_eq!(
            verify(&h[..0], 4, 0),
            Err(PolicyError::HistoryEnd {
                expected: Some(3),
                got: None
            })
        );
        assert_eq!(
            verify(&h, 0, 0),
            Err(PolicyError::HistoryEnd {
                expected: None,
                got: Some(3)
            })
        );
        assert_eq!(
            verify(&h[2..], 4, 300),
            Err(PolicyError::HistoryIncomplete {
                need_before: 300,
                first_seq: 2,
                first_at: 300
            })
        );
        // Seq 0 covers everything.
        verify(&h, 4, i64::MAX).unwrap();
    }

    #[test]
    fn gaps_links_order_and_time() {
        let h = chain(4);
        let gap = [h[0].clone(), h[2].clone(), h[3].clone()];
        assert_eq!(
            verify(&gap, 4, 0),
            Err(PolicyError::HistoryGap { after: 0, got: 2 })
        );
        let reordered = [h[1].clone(), h[0].clone(), h[2].clone(), h[3].clone()];
        assert_eq!(
            verify(&reordered, 4, 0),
            Err(PolicyError::HistoryGap { after: 1, got: 0 })
        );
        let mut broken = h.clone();
        broken[2].body.prev = [9; 32];
        broken[2] = cosign(broken[2].body.clone(), &[30, 31]);
        assert_eq!(
            verify(&broken, 4, 0),
            Err(PolicyError::BrokenLink { seq: 2 })
        );
        let mut first = h.clone();
        first[0].body.prev = [1; 32];
        first[0] = cosign(first[0].body.clone(), &[30, 31]);
        assert_eq!(
            verify(&first, 4, 0),
            Err(PolicyError::BrokenLink { seq: 0 })
        );
        let mut back = h.clone();
        back[2].body.at = 150;
        relink(&mut back, 2);
        assert_eq!(
            verify(&back, 4, 0),
            Err(PolicyError::TimeReversed { seq: 2 })
        );
        let mut other = h.clone();
        other[1].body.key_id = "key-2".into();
        relink(&mut other, 1);
        assert!(matches!(
            verify(&other, 4, 0),
            Err(PolicyError::WrongKey { seq: 1, .. })
        ));
        let mut dup = h.clone();
        dup[3].body.intent_hash = dup[1].body.intent_hash;
        relink(&mut dup, 3);
        assert_eq!(
            verify(&dup, 4, 0),
            Err(PolicyError::DuplicateIntent {
                seq: 3,
                first_seq: 1
            })
        );
    }

    #[test]
    fn signatures() {
        let h = chain(2);
        let mut few = h.clone();
        few[1] = cosign(few[1].body.clone(), &[30, 30]);
        assert_eq!(
            verify(&few, 2, 0),
            Err(PolicyError::ReceiptQuorum {
                seq: 1,
                have: 1,
                need: 2
            })
        );
        let mut stranger = h.clone();
        let extra = stranger[0].body.sign(&sk(40));
        stranger[0].signatures.push((pk(40), extra));
        assert_eq!(
            verify(&stranger, 2, 0),
            Err(PolicyError::UnknownSigner {
                seq: 0,
                signer: pk(40)
            })
        );
        let mut forged = h.clone();
        forged[1].signatures[0].1 .0[0] ^= 1;
        assert_eq!(
            verify(&forged, 2, 0),
            Err(PolicyError::BadReceiptSignature {
                seq: 1,
                signer: pk(30)
            })
        );
        let mut edited = h.clone();
        edited[1].body.amount = Amount(1_000_000);
        assert!(matches!(
            verify(&edited, 2, 0),
            Err(PolicyError::BadReceiptSignature { seq: 1, .. })
        ));
        assert_eq!(h[0].verify(&members(), 0), Err(PolicyError::ZeroThreshold));
        h[0].verify(&members(), 2).unwrap();
    }
}
