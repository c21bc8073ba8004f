//! Transfer intents: the canonical bytes and hashes that initiators, approvers and signers
//! sign, the structural validation, and the initiator's signature.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::sign_bytes;
use crate::{Amount, Hash32, PolicyError, PublicKey, Signature};

/// The longest allowed intent lifetime (`expires_at - created_at`): 7 days.
pub const MAX_INTENT_LIFETIME_SECS: i64 = 7 * 86_400;

/// The longest unsigned chain transaction an intent may carry (its JSON text).
pub const MAX_TRANSACTION_BYTES: usize = 32 * 1024;

/// A request to move `amount` of `asset` from a wallet of a vault to `destination`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Tenant id.
    pub tenant: String,
    /// Vault id (the policy's vault).
    pub vault_id: String,
    /// Key id (the signing key whose receipt chain records the signing).
    pub key_id: String,
    /// Request id (unique per tenant).
    pub request_id: String,
    /// Wallet id (velocity is counted per wallet and asset).
    pub wallet_id: String,
    /// Derivation path, like "m/0/3".
    pub path: String,
    /// Asset symbol.
    pub asset: String,
    /// Amount in the asset's base unit.
    pub amount: Amount,
    /// Destination address.
    pub destination: String,
    /// Free text.
    pub memo: String,
    /// The initiator's key.
    pub initiator: PublicKey,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry time, unix seconds.
    pub expires_at: i64,
    /// The unsigned chain transaction this intent moves the funds with (the JSON of a
    /// `coffer_chains::ChainTx`), when the transfer is a real chain transaction. Initiator,
    /// approvers and receipts sign it as part of the intent; each signer decodes it and
    /// refuses unless its decoded asset, destination and amount are this intent's. `None`:
    /// the signers sign [`Intent::message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// What the signature is for: a transfer (the default), or an off-chain message that
    /// moves nothing by itself (EIP-712 typed data, an EIP-191 personal message). A policy
    /// rule matches a message only when its `kinds` condition names that kind, so signing
    /// messages is refused until the admins allow it explicitly.
    #[serde(default, skip_serializing_if = "IntentKind::is_transfer")]
    pub kind: IntentKind,
}

/// What an intent asks the signers to sign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentKind {
    /// Move `amount` of `asset` to `destination`.
    #[default]
    Transfer,
    /// EIP-712 typed data (`eth_signTypedData_v4`); the destination is the domain's
    /// verifying contract (or `eip712` when it names none); the amount is zero.
    Eip712,
    /// An EIP-191 personal message (`personal_sign`); the destination is `eip191`; the
    /// amount is zero.
    Eip191,
}

impl IntentKind {
    /// Whether this is a transfer (the default, omitted from JSON and canonical bytes).
    pub fn is_transfer(&self) -> bool {
        *self == IntentKind::Transfer
    }

    /// The name used in JSON, policies and canonical bytes.
    pub fn name(&self) -> &'static str {
        match self {
            IntentKind::Transfer => "transfer",
            IntentKind::Eip712 => "eip712",
            IntentKind::Eip191 => "eip191",
        }
    }
}

/// Length-prefixed canonical encoder shared by intents and receipts.
pub(crate) struct Canon(pub(crate) Vec<u8>);

impl Canon {
    pub(crate) fn new(tag: &[u8]) -> Self {
        Canon(tag.to_vec())
    }
    /// (u32 big-endian length, bytes). Lengths beyond u32 cannot occur for validated values
    /// (fields are bounded far below); they saturate rather than panic.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
}

pub(crate) fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl Intent {
    /// `coffer-intent-v1`, then each field in declaration order: strings (the amount as its
    /// canonical decimal, the initiator as its 32 raw bytes) as (u32 BE length, bytes), the
    /// two times as i64 BE; then, only when the intent carries a transaction, the tag
    /// `transaction` and the transaction text, both length-prefixed (intents without one keep
    /// the bytes they always had).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(b"coffer-intent-v1");
        c.str(&self.tenant)
            .str(&self.vault_id)
            .str(&self.key_id)
            .str(&self.request_id)
            .str(&self.wallet_id)
            .str(&self.path)
            .str(&self.asset)
            .str(&self.amount.to_string())
            .str(&self.destination)
            .str(&self.memo)
            .bytes(&self.initiator.0)
            .i64(self.created_at)
            .i64(self.expires_at);
        if let Some(tx) = &self.transaction {
            c.str("transaction").str(tx);
        }
        if !self.kind.is_transfer() {
            c.str("kind").str(self.kind.name());
        }
        c.0
    }

    /// SHA-256 of the canonical bytes: what approvals and receipts name.
    pub fn hash(&self) -> Hash32 {
        sha256(&[&self.canonical_bytes()])
    }

    /// The 32-byte message the signers sign (every scheme, until chain-specific transactions
    /// exist): SHA-256("coffer-transfer-v1" || hash).
    pub fn message(&self) -> Hash32 {
        sha256(&[b"coffer-transfer-v1", &self.hash()])
    }

    /// Structural checks: ids, path and asset non-empty, at most 128 bytes, no control
    /// characters; destination likewise; memo at most 256 bytes; a positive amount for a
    /// transfer, zero and a carried message for the other kinds; a lifetime in
    /// `1..=MAX_INTENT_LIFETIME_SECS`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, reason| Err(PolicyError::InvalidIntent { field, reason });
        let fields = [
            ("tenant", &self.tenant),
            ("vault_id", &self.vault_id),
            ("key_id", &self.key_id),
            ("request_id", &self.request_id),
            ("wallet_id", &self.wallet_id),
            ("path", &self.path),
            ("asset", &self.asset),
            ("destination", &self.destination),
        ];
        for (field, v) in fields {
            if v.is_empty() {
                return bad(field, "is empty");
            }
            if v.len() > 128 {
                return bad(field, "is longer than 128 bytes");
            }
            if v.chars().any(char::is_control) {
                return bad(field, "contains control characters");
            }
        }
        if self.memo.len() > 256 {
            return bad("memo", "is longer than 256 bytes");
        }
        if let Some(tx) = &self.transaction {
            if tx.is_empty() {
                return bad("transaction", "is empty");
            }
            if tx.len() > MAX_TRANSACTION_BYTES {
                return bad("transaction", "is longer than 32 KiB");
            }
        }
        match self.kind {
            IntentKind::Transfer if self.amount.0 == 0 => return bad("amount", "is zero"),
            IntentKind::Transfer => {}
            IntentKind::Eip712 | IntentKind::Eip191 => {
                if self.amount.0 != 0 {
                    return bad("amount", "must be zero for a message");
                }
                if self.transaction.is_none() {
                    return bad("transaction", "must carry the message to sign");
                }
            }
        }
        if self.expires_at <= self.created_at {
            return bad("expires_at", "is not after created_at");
        }
        let lifetime = i128::from(self.expires_at) - i128::from(self.created_at);
        if lifetime > i128::from(MAX_INTENT_LIFETIME_SECS) {
            return bad("expires_at", "is more than 7 days after created_at");
        }
        Ok(())
    }
}

/// What the initiator signs: "coffer-initiate-v1" || intent hash.
pub fn initiator_bytes(hash: &Hash32) -> Vec<u8> {
    [b"coffer-initiate-v1".as_slice(), hash].concat()
}

/// The initiator's signature over the intent.
pub fn sign_initiation(sk: &SigningKey, intent: &Intent) -> Signature {
    sign_bytes(sk, &initiator_bytes(&intent.hash()))
}

/// Checks the initiator's signature over the intent (by `intent.initiator`).
pub fn verify_initiation(intent: &Intent, sig: &Signature) -> Result<(), PolicyError> {
    intent
        .initiator
        .verify(&initiator_bytes(&intent.hash()), sig)
        .map_err(|_| PolicyError::BadInitiatorSignature {
            initiator: intent.initiator,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testutil::{intent, pk, sk};
    use proptest::prelude::*;

    fn invalid(f: impl FnOnce(&mut Intent)) -> &'static str {
        let mut i = intent();
        f(&mut i);
        match i.validate() {
            Err(PolicyError::InvalidIntent { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validation() {
        intent().validate().unwrap();
        assert_eq!(invalid(|i| i.tenant.clear()), "tenant");
        assert_eq!(invalid(|i| i.request_id = "x".repeat(129)), "request_id");
        assert_eq!(invalid(|i| i.wallet_id = "a\nb".into()), "wallet_id");
        assert_eq!(invalid(|i| i.destination.clear()), "destination");
        assert_eq!(invalid(|i| i.memo = "m".repeat(257)), "memo");
        assert_eq!(invalid(|i| i.amount = Amount(0)), "amount");
        assert_eq!(invalid(|i| i.expires_at = i.created_at), "expires_at");
        assert_eq!(
            invalid(|i| i.expires_at = i.created_at + MAX_INTENT_LIFETIME_SECS + 1),
            "expires_at"
        );
        assert_eq!(
            invalid(|i| (i.created_at, i.expires_at) = (i64::MIN, i64::MAX)),
            "expires_at"
        );
        let mut ok = intent();
        ok.memo = "m".repeat(256);
        ok.key_id = "k".repeat(128);
        ok.expires_at = ok.created_at + MAX_INTENT_LIFETIME_SECS;
        ok.validate().unwrap();
    }

    #[test]
    fn message_kinds_carry_a_message_and_no_amount() {
        let message = |kind| {
            let mut i = intent();
            (i.kind, i.amount, i.transaction) = (kind, Amount(0), Some("{}".into()));
            i
        };
        for kind in [IntentKind::Eip712, IntentKind::Eip191] {
            message(kind).validate().unwrap();
            let mut i = message(kind);
            i.amount = Amount(1);
            assert!(matches!(
                i.validate(),
                Err(PolicyError::InvalidIntent {
                    field: "amount",
                    ..
                })
            ));
            i = message(kind);
            i.transaction = None;
            assert!(matches!(
                i.validate(),
                Err(PolicyError::InvalidIntent {
                    field: "transaction",
                    ..
                })
            ));
        }
        // The kind is signed: the same fields as another kind hash differently, and a
        // transfer keeps the bytes it had before kinds existed (no `kind` tag).
        let (a, b) = (message(IntentKind::Eip712), message(IntentKind::Eip191));
        assert_ne!(a.hash(), b.hash());
        let mut t = message(IntentKind::Eip712);
        t.kind = IntentKind::Transfer;
        assert_ne!(a.hash(), t.hash());
        let bytes = intent().canonical_bytes();
        assert!(!bytes.windows(4).any(|w| w == b"kind"));
        let json = serde_json::to_string(&intent()).unwrap();
        assert!(!json.contains("kind"), "{json}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""kind":"eip712""#), "{json}");
        assert_eq!(serde_json::from_str::<Intent>(&json).unwrap(), a);
    }

    #[test]
    fn initiation_signature() {
        let i = intent();
        let sig = sign_initiation(&sk(1), &i);
        verify_initiation(&i, &sig).unwrap();
        let other = sign_initiation(&sk(2), &i);
        assert_eq!(
            verify_initiation(&i, &other),
            Err(PolicyError::BadInitiatorSignature { initiator: pk(1) })
        );
        let mut changed = i.clone();
        changed.amount = Amount(2);
        assert!(verify_initiation(&changed, &sig).is_err());
        assert_ne!(i.message(), i.hash());
    }

    #[test]
    fn json_refuses_unknown_fields() {
        let mut v = serde_json::to_value(intent()).unwrap();
        assert_eq!(
            serde_json::from_value::<Intent>(v.clone()).unwrap(),
            intent()
        );
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<Intent>(v).is_err());
    }

    #[test]
    fn a_transaction_is_part_of_what_is_signed() {
        let plain = intent();
        let bytes = plain.canonical_bytes();
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("transaction").is_none(), "absent, not null");
        let mut with = intent();
        with.transaction = Some(r#"{"chain":"solana","message":"00"}"#.into());
        assert!(
            with.canonical_bytes().starts_with(&bytes),
            "appended after the old fields"
        );
        assert_ne!(with.hash(), plain.hash());
        let mut other = with.clone();
        other.transaction = Some(r#"{"chain":"solana","message":"01"}"#.into());
        assert_ne!(other.hash(), with.hash(), "every byte of it counts");
        let back: Intent = serde_json::from_value(serde_json::to_value(&with).unwrap()).unwrap();
        assert_eq!(back, with);
        assert_eq!(
            invalid(|i| i.transaction = Some(String::new())),
            "transaction"
        );
        assert_eq!(
            invalid(|i| i.transaction = Some("x".repeat(MAX_TRANSACTION_BYTES + 1))),
            "transaction"
        );
    }

    #[test]
    fn boundaries_cannot_shift() {
        let (mut a, mut b) = (intent(), intent());
        (a.tenant, a.vault_id) = ("ab".into(), "c".into());
        (b.tenant, b.vault_id) = ("a".into(), "bc".into());
        assert_ne!(a.hash(), b.hash());
        (a.destination, a.memo) = ("x".into(), String::new());
        (b.destination, b.memo) = (String::new(), "x".into());
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
    }

    proptest! {
        #[test]
        fn canonical_bytes_injective(field in 0usize..13, s in "[a-c]{0,3}", n in any::<i64>(), k in 1u8..4) {
            let a = intent();
            let mut b = a.clone();
            match field {
                0 => b.tenant = s,
                1 => b.vault_id = s,
                2 => b.key_id = s,
                3 => b.request_id = s,
                4 => b.wallet_id = s,
                5 => b.path = s,
                6 => b.asset = s,
                7 => b.amount = Amount(n.unsigned_abs().into()),
                8 => b.destination = s,
                9 => b.memo = s,
                10 => b.initiator = pk(k + 1),
                11 => b.created_at = n,
                _ => b.expires_at = n,
            }
            prop_assert_eq!(a == b, a.canonical_bytes() == b.canonical_bytes());
            prop_assert_eq!(a == b, a.hash() == b.hash());
        }

        #[test]
        fn split_strings_never_collide(s in "[ab]{0,6}", t in "[ab]{0,6}", cut in 0usize..7) {
            let joined = format!("{s}{t}");
            let cut = cut.min(joined.len());
            let (mut a, mut b) = (intent(), intent());
            (a.path, a.asset) = (s.clone(), t.clone());
            (b.path, b.asset) = (joined[..cut].to_string(), joined[cut..].to_string());
            prop_assert_eq!(a == b, a.hash() == b.hash());
        }
    }
}
