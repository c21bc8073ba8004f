//! The roster: who the signers are, which admins may change that, and which key the server
//! presents. A signer pins the roster it is enrolled with (a local act by its operator, never
//! the server's word) and afterwards accepts a new roster only when it has a higher version
//! and carries signatures from a quorum of the admins pinned in the roster it already holds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{Identity, NodeKey, PublicIdentity};

/// Most signers a roster may hold (the protocols' limit).
pub const MAX_SIGNERS: usize = coffer_proto::ids::MAX_PARTIES as usize;
/// Most admins a roster may hold.
pub const MAX_ADMINS: usize = 16;

/// The membership document every signer pins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Increases with every change.
    pub version: u64,
    /// The signer nodes, in the order that assigns party indices at key generation.
    pub signers: Vec<PublicIdentity>,
    /// Admin keys; a quorum of them signs roster changes (and, later, policies).
    pub admins: Vec<NodeKey>,
    /// How many admin signatures a change needs.
    pub admin_threshold: u16,
    /// The key the server presents on TLS connections.
    pub server: NodeKey,
    /// Development mode: signers sign raw messages on request (never in production).
    pub dev_mode: bool,
}

/// One admin's signature over a roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSignature {
    /// The admin's key.
    pub admin: NodeKey,
    /// Ed25519 signature over [`Roster::signing_bytes`] (hex in JSON).
    #[serde(with = "hex_sig")]
    pub signature: [u8; 64],
}

/// A roster with its admin signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRoster {
    /// The document.
    pub roster: Roster,
    /// Signatures by admins.
    pub signatures: Vec<AdminSignature>,
}

/// Why a roster was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The document itself is inconsistent.
    #[error("roster is malformed: {0}")]
    Malformed(&'static str),
    /// Not newer than the pinned one.
    #[error("roster version {offered} is not newer than the pinned version {pinned}")]
    NotNewer {
        /// The pinned version.
        pinned: u64,
        /// The offered version.
        offered: u64,
    },
    /// Too few valid signatures from the pinned admins.
    #[error("roster carries {valid} valid signatures from pinned admins, {needed} needed")]
    Quorum {
        /// Valid signatures by distinct pinned admins.
        valid: usize,
        /// The pinned threshold.
        needed: usize,
    },
    /// Encoding failed (a bug).
    #[error("roster could not be encoded")]
    Encode,
}

impl Roster {
    /// Checks the document's own consistency: 2..=16 signers, distinct keys, a threshold
    /// between 1 and the number of admins.
    pub fn check(&self) -> Result<(), RosterError> {
        if self.signers.len() < 2 || self.signers.len() > MAX_SIGNERS {
            return Err(RosterError::Malformed("a roster holds 2 to 16 signers"));
        }
        if self.admins.is_empty() || self.admins.len() > MAX_ADMINS {
            return Err(RosterError::Malformed("a roster holds 1 to 16 admins"));
        }
        let t = usize::from(self.admin_threshold);
        if t == 0 || t > self.admins.len() {
            return Err(RosterError::Malformed(
                "admin threshold must be between 1 and the number of admins",
            ));
        }
        let mut keys: Vec<[u8; 32]> = self.signers.iter().map(|s| s.node_key.0).collect();
        keys.extend(self.signers.iter().map(|s| s.seal_key.0));
        keys.extend(self.admins.iter().map(|a| a.0));
        keys.push(self.server.0);
        let total = keys.len();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != total {
            return Err(RosterError::Malformed("a key appears twice"));
        }
        for k in self
            .signers
            .iter()
            .map(|s| s.node_key)
            .chain(self.admins.iter().copied())
            .chain([self.server])
        {
            k.verifying_key()
                .map_err(|_| RosterError::Malformed("a key is not a valid Ed25519 point"))?;
        }
        Ok(())
    }

    /// The bytes admins sign: a domain separator and the SHA-256 of the CBOR document.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, RosterError> {
        let mut cbor = Vec::new();
        ciborium::into_writer(self, &mut cbor).map_err(|_| RosterError::Encode)?;
        let mut out = b"coffer/roster/v1\0".to_vec();
        out.extend_from_slice(&Sha256::digest(&cbor));
        Ok(out)
    }

    /// The signer with this node key, and its position (its party index at key generation).
    pub fn signer(&self, key: &NodeKey) -> Option<(usize, &PublicIdentity)> {
        self.signers
            .iter()
            .enumerate()
            .find(|(_, s)| s.node_key == *key)
    }

    /// An admin's signature over this roster.
    pub fn sign_as_admin(&self, admin: &Identity) -> Result<AdminSignature, RosterError> {
        Ok(AdminSignature {
            admin: admin.node_key(),
            signature: admin.sign(&self.signing_bytes()?),
        })
    }
}

impl SignedRoster {
    /// Counts valid signatures by distinct admins of `pinned_admins`.
    fn valid_signatures(&self, pinned_admins: &[NodeKey]) -> Result<usize, RosterError> {
        let msg = self.roster.signing_bytes()?;
        let mut seen: Vec<NodeKey> = Vec::new();
        for s in &self.signatures {
            if pinned_admins.contains(&s.admin)
                && !seen.contains(&s.admin)
                && s.admin.verify(&msg, &s.signature).is_ok()
            {
                seen.push(s.admin);
            }
        }
        Ok(seen.len())
    }

    /// Checks a roster offered for enrolment: consistent, and signed by a quorum of its own
    /// admins (the operator who enrols the signer vouches for those admins).
    pub fn check_for_enrolment(&self) -> Result<(), RosterError> {
        self.roster.check()?;
        let needed = usize::from(self.roster.admin_threshold);
        let valid = self.valid_signatures(&self.roster.admins)?;
        if valid < needed {
            return Err(RosterError::Quorum { valid, needed });
        }
        Ok(())
    }

    /// Checks an update announced later (by the server, say) against the pinned roster:
    /// consistent, newer, and signed by a quorum of the *pinned* admins.
    pub fn check_update(&self, pinned: &Roster) -> Result<(), RosterError> {
        self.roster.check()?;
        if self.roster.version <= pinned.version {
            return Err(RosterError::NotNewer {
                pinned: pinned.version,
                offered: self.roster.version,
            });
        }
        let needed = usize::from(pinned.admin_threshold);
        let valid = self.valid_signatures(&pinned.admins)?;
        if valid < needed {
            return Err(RosterError::Quorum { valid, needed });
        }
        Ok(())
    }
}

mod hex_sig {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(s.trim(), &mut out)
            .map_err(|_| serde::de::Error::custom("a signature must be 128 hex digits"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn setup() -> (Vec<Identity>, Roster) {
        let admins: Vec<Identity> = (0..3)
            .map(|i| Identity::generate(&format!("a{i}")))
            .collect();
        let roster = Roster {
            version: 1,
            signers: (0..3)
                .map(|i| Identity::generate(&format!("s{i}")).public())
                .collect(),
            admins: admins.iter().map(|a| a.node_key()).collect(),
            admin_threshold: 2,
            server: Identity::generate("server").node_key(),
            dev_mode: false,
        };
        (admins, roster)
    }

    fn signed(roster: &Roster, by: &[&Identity]) -> SignedRoster {
        SignedRoster {
            roster: roster.clone(),
            signatures: by
                .iter()
                .map(|a| roster.sign_as_admin(a).unwrap())
                .collect(),
        }
    }

    #[test]
    fn enrolment_needs_a_quorum_of_its_admins() {
        let (admins, roster) = setup();
        signed(&roster, &[&admins[0], &admins[2]])
            .check_for_enrolment()
            .unwrap();
        assert_eq!(
            signed(&roster, &[&admins[0], &admins[0]]).check_for_enrolment(),
            Err(RosterError::Quorum {
                valid: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn an_update_counts_only_with_the_pinned_admins_quorum() {
        let (admins, pinned) = setup();
        let mut next = pinned.clone();
        next.version = 2;
        next.signers[1] = Identity::generate("new").public();
        signed(&next, &[&admins[1], &admins[2]])
            .check_update(&pinned)
            .unwrap();

        // The server swaps in its own admins and signs with them: refused.
        let rogue: Vec<Identity> = (0..2)
            .map(|i| Identity::generate(&format!("r{i}")))
            .collect();
        let mut hijack = next.clone();
        hijack.admins = rogue.iter().map(|a| a.node_key()).collect();
        hijack.admin_threshold = 1;
        assert!(matches!(
            signed(&hijack, &[&rogue[0], &rogue[1]]).check_update(&pinned),
            Err(RosterError::Quorum { valid: 0, .. })
        ));
        // One pinned admin is not enough.
        assert!(signed(&next, &[&admins[0]]).check_update(&pinned).is_err());
        // A signature over a different document does not count.
        let mut tampered = signed(&next, &[&admins[1], &admins[2]]);
        tampered.roster.dev_mode = true;
        assert!(tampered.check_update(&pinned).is_err());
        // Replaying the pinned version is refused.
        assert!(matches!(
            signed(&pinned, &[&admins[0], &admins[1]]).check_update(&pinned),
            Err(RosterError::NotNewer { .. })
        ));
    }

    #[test]
    fn inconsistent_rosters_are_refused() {
        let (_, mut roster) = setup();
        roster.signers.push(roster.signers[0].clone());
        assert!(roster.check().is_err());
        let (_, mut roster) = setup();
        roster.admin_threshold = 4;
        assert!(roster.check().is_err());
    }
}
