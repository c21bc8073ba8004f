//! Vault freeze and unfreeze orders: the documents every signer honours before it joins a
//! signing-type session. A *freeze* is signed by the server's identity key (the roster's
//! `server` key, which every signer pinned at enrolment): the server may stop signing on its
//! own, at once, for instance on a critical alert. An *unfreeze* must carry signatures by a
//! quorum of the admin keys the signers pinned for the vault's keys: the server alone (or
//! whoever took it over) cannot lift a freeze.
//!
//! Each order names its vault, the vault's key ids and a sequence number that increases per
//! vault; a signer accepts an order only when its sequence is higher than the last one it
//! accepted for that vault, so a replayed old freeze or unfreeze is refused. The signing
//! bytes are domain separated per kind (`coffer/freeze/v1\0` or `coffer/unfreeze/v1\0`)
//! followed by the SHA-256 of the order's CBOR encoding.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{Identity, NodeKey};
use crate::roster::AdminSignature;

/// The only version of the order format.
pub const FREEZE_VERSION: u8 = 1;
/// Most key ids an order may name.
pub const MAX_KEYS: usize = 16;
/// Longest reason, in bytes.
pub const MAX_REASON: usize = 512;
/// Longest vault or key id, in bytes.
pub const MAX_ID: usize = 64;

const FREEZE_DOMAIN: &[u8] = b"coffer/freeze/v1\0";
const UNFREEZE_DOMAIN: &[u8] = b"coffer/unfreeze/v1\0";

/// Whether an order freezes or unfreezes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezeKind {
    /// Stop every signing-type session for the vault's keys (signed by the server).
    Freeze,
    /// Allow them again (signed by an admin quorum).
    Unfreeze,
}

/// The document itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeOrder {
    /// Format version ([`FREEZE_VERSION`]).
    pub version: u8,
    /// Freeze or unfreeze.
    pub kind: FreezeKind,
    /// The vault.
    pub vault_id: String,
    /// The vault's key ids (each signer applies the order to those it holds).
    pub key_ids: Vec<String>,
    /// Increases with every order for this vault.
    pub seq: u64,
    /// Why (free text, shown in refusals and the audit log).
    pub reason: String,
    /// When the order was issued (Unix seconds).
    pub issued_at: i64,
}

/// An order with its signatures: the server's for a freeze, admins' for an unfreeze.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedFreezeOrder {
    /// The order.
    pub order: FreezeOrder,
    /// The server's signature (freezes), hex in JSON.
    #[serde(default, with = "opt_hex_sig")]
    pub server_signature: Option<[u8; 64]>,
    /// Admin signatures (unfreezes).
    #[serde(default)]
    pub admin_signatures: Vec<AdminSignature>,
}

/// Why an order was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FreezeError {
    /// The document is inconsistent (the issuer's fault).
    #[error("freeze order is malformed: {0}")]
    Malformed(&'static str),
    /// A freeze without a valid signature by the pinned server key.
    #[error("freeze order for vault {vault} is not signed by the pinned server key")]
    NotSignedByServer {
        /// The vault named.
        vault: String,
    },
    /// An unfreeze with too few valid signatures from the pinned admins.
    #[error("unfreeze of vault {vault} carries {valid} valid signatures from pinned admins, {needed} needed")]
    Quorum {
        /// The vault named.
        vault: String,
        /// Valid signatures by distinct pinned admins.
        valid: usize,
        /// The pinned threshold.
        needed: usize,
    },
    /// The order's sequence is not above the last one accepted (a replay).
    #[error("order {offered} for vault {vault} is not newer than the last accepted order {last} (replayed or out of date)")]
    NotNewer {
        /// The vault named.
        vault: String,
        /// The last accepted sequence.
        last: u64,
        /// The offered sequence.
        offered: u64,
    },
    /// An order that does not name every key the freeze in force covers (an unfreeze, or a
    /// new freeze that would otherwise silently release a key).
    #[error(
        "order for vault {vault} does not name key {key_id}, which the freeze in force covers"
    )]
    MissingKey {
        /// The vault named.
        vault: String,
        /// The key left out.
        key_id: String,
    },
    /// Encoding failed (a bug).
    #[error("freeze order could not be encoded")]
    Encode,
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FreezeOrder {
    /// A new order of `kind` for `vault_id`'s keys.
    pub fn new(
        kind: FreezeKind,
        vault_id: &str,
        key_ids: Vec<String>,
        seq: u64,
        reason: &str,
        issued_at: i64,
    ) -> Self {
        FreezeOrder {
            version: FREEZE_VERSION,
            kind,
            vault_id: vault_id.to_string(),
            key_ids,
            seq,
            reason: reason.to_string(),
            issued_at,
        }
    }

    /// Checks the document's own consistency.
    pub fn check(&self) -> Result<(), FreezeError> {
        if self.version != FREEZE_VERSION {
            return Err(FreezeError::Malformed("unknown order version"));
        }
        if !id_ok(&self.vault_id) {
            return Err(FreezeError::Malformed(
                "vault id must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        if self.key_ids.is_empty() || self.key_ids.len() > MAX_KEYS {
            return Err(FreezeError::Malformed("an order names 1 to 16 keys"));
        }
        if !self.key_ids.iter().all(|k| id_ok(k)) {
            return Err(FreezeError::Malformed(
                "key ids must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let mut sorted = self.key_ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.key_ids.len() {
            return Err(FreezeError::Malformed("a key id appears twice"));
        }
        if self.seq == 0 {
            return Err(FreezeError::Malformed("sequence numbers start at 1"));
        }
        if self.reason.len() > MAX_REASON {
            return Err(FreezeError::Malformed("reason longer than 512 bytes"));
        }
        Ok(())
    }

    /// The bytes the issuer signs: the kind's domain separator, then the SHA-256 of the
    /// order's CBOR encoding (fields in declaration order).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, FreezeError> {
        let mut cbor = Vec::new();
        ciborium::into_writer(self, &mut cbor).map_err(|_| FreezeError::Encode)?;
        let mut out = match self.kind {
            FreezeKind::Freeze => FREEZE_DOMAIN.to_vec(),
            FreezeKind::Unfreeze => UNFREEZE_DOMAIN.to_vec(),
        };
        out.extend_from_slice(&Sha256::digest(&cbor));
        Ok(out)
    }

    /// Whether the order names `key_id`.
    pub fn names(&self, key_id: &str) -> bool {
        self.key_ids.iter().any(|k| k == key_id)
    }
}

impl SignedFreezeOrder {
    /// A freeze signed by the server's identity.
    pub fn freeze_by_server(
        server: &Identity,
        order: FreezeOrder,
    ) -> Result<SignedFreezeOrder, FreezeError> {
        if order.kind != FreezeKind::Freeze {
            return Err(FreezeError::Malformed("the server signs freezes only"));
        }
        order.check()?;
        let signature = server.sign(&order.signing_bytes()?);
        Ok(SignedFreezeOrder {
            order,
            server_signature: Some(signature),
            admin_signatures: vec![],
        })
    }

    /// An unfreeze with no signatures yet.
    pub fn unsigned(order: FreezeOrder) -> SignedFreezeOrder {
        SignedFreezeOrder {
            order,
            server_signature: None,
            admin_signatures: vec![],
        }
    }

    /// Adds an admin's signature (once per admin). Returns whether it was added.
    pub fn add_admin_signature(&mut self, admin: &Identity) -> Result<bool, FreezeError> {
        if self.order.kind != FreezeKind::Unfreeze {
            return Err(FreezeError::Malformed("admins sign unfreezes"));
        }
        self.order.check()?;
        let key = admin.node_key();
        if self.admin_signatures.iter().any(|s| s.admin == key) {
            return Ok(false);
        }
        self.admin_signatures.push(AdminSignature {
            admin: key,
            signature: admin.sign(&self.order.signing_bytes()?),
        });
        Ok(true)
    }

    /// Checks a freeze: consistent and signed by `server` (the pinned server key).
    pub fn verify_freeze(&self, server: &NodeKey) -> Result<(), FreezeError> {
        self.order.check()?;
        if self.order.kind != FreezeKind::Freeze {
            return Err(FreezeError::Malformed("not a freeze"));
        }
        let msg = self.order.signing_bytes()?;
        match &self.server_signature {
            Some(sig) if server.verify(&msg, sig).is_ok() => Ok(()),
            _ => Err(FreezeError::NotSignedByServer {
                vault: self.order.vault_id.clone(),
            }),
        }
    }

    /// Checks an unfreeze: consistent and signed by at least `threshold` distinct keys of
    /// `admins` (signatures by anyone else do not count).
    pub fn verify_unfreeze(&self, admins: &[NodeKey], threshold: u16) -> Result<(), FreezeError> {
        self.order.check()?;
        if self.order.kind != FreezeKind::Unfreeze {
            return Err(FreezeError::Malformed("not an unfreeze"));
        }
        if threshold == 0 {
            return Err(FreezeError::Malformed("admin threshold 0"));
        }
        let msg = self.order.signing_bytes()?;
        let mut seen: Vec<NodeKey> = Vec::new();
        for s in &self.admin_signatures {
            if admins.contains(&s.admin)
                && !seen.contains(&s.admin)
                && s.admin.verify(&msg, &s.signature).is_ok()
            {
                seen.push(s.admin);
            }
        }
        let needed = usize::from(threshold);
        if seen.len() < needed {
            return Err(FreezeError::Quorum {
                vault: self.order.vault_id.clone(),
                valid: seen.len(),
                needed,
            });
        }
        Ok(())
    }
}

mod opt_hex_sig {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &Option<[u8; 64]>, s: S) -> Result<S::Ok, S::Error> {
        match sig {
            Some(sig) => s.serialize_some(&hex::encode(sig)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 64]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut out = [0u8; 64];
        hex::decode_to_slice(text.trim(), &mut out)
            .map_err(|_| serde::de::Error::custom("a signature must be 128 hex digits"))?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn order(kind: FreezeKind, seq: u64) -> FreezeOrder {
        FreezeOrder::new(
            kind,
            "v-1",
            vec!["k-a".into(), "k-b".into()],
            seq,
            "critical alert",
            1_700_000_000,
        )
    }

    #[test]
    fn a_freeze_counts_only_when_signed_by_the_pinned_server() {
        let server = Identity::generate("server");
        let rogue = Identity::generate("rogue");
        let signed =
            SignedFreezeOrder::freeze_by_server(&server, order(FreezeKind::Freeze, 1)).unwrap();
        signed.verify_freeze(&server.node_key()).unwrap();
        assert!(matches!(
            signed.verify_freeze(&rogue.node_key()),
            Err(FreezeError::NotSignedByServer { .. })
        ));
        // Tampering with any field breaks the signature.
        let mut other_vault = signed.clone();
        other_vault.order.vault_id = "v-2".into();
        assert!(other_vault.verify_freeze(&server.node_key()).is_err());
        let mut fewer_keys = signed.clone();
        fewer_keys.order.key_ids.pop();
        assert!(fewer_keys.verify_freeze(&server.node_key()).is_err());
        // A freeze signature does not make an unfreeze (domain separation).
        let mut flipped = signed.clone();
        flipped.order.kind = FreezeKind::Unfreeze;
        assert!(flipped.verify_freeze(&server.node_key()).is_err());
        assert!(flipped.verify_unfreeze(&[server.node_key()], 1).is_err());
        // JSON round trip keeps it valid.
        let text = serde_json::to_string(&signed).unwrap();
        let back: SignedFreezeOrder = serde_json::from_str(&text).unwrap();
        back.verify_freeze(&server.node_key()).unwrap();
    }

    #[test]
    fn an_unfreeze_needs_a_quorum_of_pinned_admins() {
        let admins: Vec<Identity> = (0..3)
            .map(|i| Identity::generate(&format!("a{i}")))
            .collect();
        let pinned: Vec<NodeKey> = admins.iter().map(|a| a.node_key()).collect();
        let server = Identity::generate("server");
        let mut u = SignedFreezeOrder::unsigned(order(FreezeKind::Unfreeze, 2));
        assert!(u.add_admin_signature(&admins[0]).unwrap());
        assert!(!u.add_admin_signature(&admins[0]).unwrap());
        assert_eq!(
            u.verify_unfreeze(&pinned, 2),
            Err(FreezeError::Quorum {
                vault: "v-1".into(),
                valid: 1,
                needed: 2
            })
        );
        // The server's signature does not count as an admin's.
        u.add_admin_signature(&server).unwrap();
        assert!(u.verify_unfreeze(&pinned, 2).is_err());
        u.add_admin_signature(&admins[2]).unwrap();
        u.verify_unfreeze(&pinned, 2).unwrap();
        // The server cannot make an unfreeze at all.
        assert!(
            SignedFreezeOrder::freeze_by_server(&server, order(FreezeKind::Unfreeze, 2)).is_err()
        );
    }

    #[test]
    fn malformed_orders_are_refused() {
        let server = Identity::generate("server");
        let bad = |f: fn(&mut FreezeOrder)| {
            let mut o = order(FreezeKind::Freeze, 1);
            f(&mut o);
            SignedFreezeOrder::freeze_by_server(&server, o).unwrap_err()
        };
        assert!(matches!(bad(|o| o.seq = 0), FreezeError::Malformed(_)));
        assert!(matches!(
            bad(|o| o.key_ids.clear()),
            FreezeError::Malformed(_)
        ));
        assert!(matches!(
            bad(|o| o.key_ids.push("k-a".into())),
            FreezeError::Malformed(_)
        ));
        assert!(matches!(
            bad(|o| o.vault_id = "../x".into()),
            FreezeError::Malformed(_)
        ));
        assert!(matches!(
            bad(|o| o.reason = "x".repeat(600)),
            FreezeError::Malformed(_)
        ));
        assert!(matches!(bad(|o| o.version = 2), FreezeError::Malformed(_)));
    }

    #[test]
    fn signing_bytes_are_domain_separated_and_stable() {
        let f = order(FreezeKind::Freeze, 1).signing_bytes().unwrap();
        assert!(f.starts_with(b"coffer/freeze/v1\0"));
        assert_eq!(f.len(), FREEZE_DOMAIN.len() + 32);
        let u = order(FreezeKind::Unfreeze, 1).signing_bytes().unwrap();
        assert!(u.starts_with(b"coffer/unfreeze/v1\0"));
        assert_eq!(f, order(FreezeKind::Freeze, 1).signing_bytes().unwrap());
        assert_ne!(f, order(FreezeKind::Freeze, 2).signing_bytes().unwrap());
    }
}
