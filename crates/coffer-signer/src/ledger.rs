//! The signer's own ledger of the transfers it agreed to sign, per key, kept as sealed blobs
//! in its share store (so it is encrypted, authenticated and rollback-checked like a share):
//!
//! - `ledger-<key>-s<seq>`: the receipt body this signer reserved at that place of the key's chain,
//!   and, once the session finished, the signature it produced;
//! - `ledger-<key>-head`: the next free sequence number this signer knows of, and the highest policy
//!   version it has accepted for the key (a server cannot go back to an older policy).
//!
//! A transfer whose chain transaction needs several signatures (one per Bitcoin input) keeps
//! one signed output per input in the same entry.
//!
//! A reservation is written *before* the signing session starts. A retry of the same job
//! (same receipt body) is allowed and, when this signer already finished it, answered from
//! the ledger without signing again; anything else at a used place is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use coffer_policy::{Hash32, ReceiptBody};

use crate::store::{ShareStore, StoreError};

/// One reserved place of a key's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The receipt body reserved (what this signer co-signs).
    pub body: ReceiptBody,
    /// The signature this signer's session produced, once finished (input 0).
    pub signed: Option<SignedOutput>,
    /// The signatures of the transaction's further inputs (1, 2, ...), once finished.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<u32, SignedOutput>,
}

impl Entry {
    /// The finished signature of `input`, if any.
    pub fn signed_input(&self, input: u32) -> Option<&SignedOutput> {
        match input {
            0 => self.signed.as_ref(),
            i => self.inputs.get(&i),
        }
    }
}

/// A finished signing, kept to answer a retry without signing twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutput {
    /// Signature (hex).
    pub signature: String,
    /// ECDSA recovery id.
    pub recovery_id: Option<u8>,
    /// Child public key (hex).
    pub public_key: String,
}

/// What a signer knows of a key's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The next sequence number not reserved by this signer.
    pub next_seq: u64,
    /// The highest policy version accepted for this key.
    pub policy_version: u64,
}

/// Why the ledger refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored entry does not decode.
    #[error("ledger entry {0} is corrupt")]
    Corrupt(String),
}

fn entry_name(key_id: &str, seq: u64) -> String {
    format!("ledger-{key_id}-s{seq}")
}

fn head_name(key_id: &str) -> String {
    format!("ledger-{key_id}-head")
}

/// The ledger inside a signer's store.
pub struct Ledger<'a> {
    store: &'a ShareStore,
}

impl<'a> Ledger<'a> {
    /// The ledger kept in `store`.
    pub fn new(store: &'a ShareStore) -> Self {
        Ledger { store }
    }

    /// What this signer knows of `key_id`'s chain.
    pub fn head(&self, key_id: &str) -> Result<Head, LedgerError> {
        let name = head_name(key_id);
        match self.store.get_blob(&name)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| LedgerError::Corrupt(name)),
            None => Ok(Head::default()),
        }
    }

    /// The entry at `seq`, if this signer reserved that place.
    pub fn entry(&self, key_id: &str, seq: u64) -> Result<Option<Entry>, LedgerError> {
        let name = entry_name(key_id, seq);
        match self.store.get_blob(&name)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| LedgerError::Corrupt(name)),
            None => Ok(None),
        }
    }

    /// The intent hash this signer recorded at `seq`, if any.
    pub fn intent_at(&self, key_id: &str, seq: u64) -> Result<Option<Hash32>, LedgerError> {
        Ok(self.entry(key_id, seq)?.map(|e| e.body.intent_hash))
    }

    /// Reserves `body`'s place (durably, before the session starts) and records the policy
    /// version used.
    pub fn reserve(&self, body: &ReceiptBody, policy_version: u64) -> Result<(), LedgerError> {
        self.write_entry(&Entry {
            body: body.clone(),
            signed: None,
            inputs: BTreeMap::new(),
        })?;
        let mut head = self.head(&body.key_id)?;
        head.next_seq = head.next_seq.max(body.seq.saturating_add(1));
        head.policy_version = head.policy_version.max(policy_version);
        let bytes = serde_json::to_vec(&head).map_err(|_| LedgerError::Corrupt("head".into()))?;
        self.store.put_blob(&head_name(&body.key_id), &bytes)?;
        Ok(())
    }

    /// Records the finished signature of `input` at a reserved place (keeping the others).
    pub fn finish(
        &self,
        body: &ReceiptBody,
        input: u32,
        output: SignedOutput,
    ) -> Result<(), LedgerError> {
        let mut entry = match self.entry(&body.key_id, body.seq)? {
            Some(e) if e.body == *body => e,
            _ => Entry {
                body: body.clone(),
                signed: None,
                inputs: BTreeMap::new(),
            },
        };
        match input {
            0 => entry.signed = Some(output),
            i => {
                entry.inputs.insert(i, output);
            }
        }
        self.write_entry(&entry)
    }

    fn write_entry(&self, e: &Entry) -> Result<(), LedgerError> {
        let name = entry_name(&e.body.key_id, e.body.seq);
        let bytes = serde_json::to_vec(e).map_err(|_| LedgerError::Corrupt(name.clone()))?;
        self.store.put_blob(&name, &bytes)?;
        Ok(())
    }
}
