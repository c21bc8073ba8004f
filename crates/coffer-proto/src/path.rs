//! Non-hardened derivation paths (`m/0/7`). A shared key cannot derive hardened children
//! (that needs the whole private key), so a hardened step is refused at parsing.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ArgumentError;

/// First hardened index; every step must be below it.
pub const HARDENED: u32 = 1 << 31;
/// Deepest path accepted (BIP32 stores depth in one byte).
pub const MAX_DEPTH: usize = 255;

/// A validated non-hardened path; empty is the root `m`.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DerivationPath(Vec<u32>);

impl DerivationPath {
    /// The root, `m`.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path from raw indices, each checked to be non-hardened.
    pub fn from_indices(indices: &[u32]) -> Result<Self, ArgumentError> {
        if indices.len() > MAX_DEPTH {
            return Err(ArgumentError::InvalidPath {
                reason: "deeper than 255 steps",
            });
        }
        if indices.iter().any(|i| *i >= HARDENED) {
            return Err(ArgumentError::InvalidPath {
                reason: "hardened steps cannot be derived from a shared key",
            });
        }
        Ok(Self(indices.to_vec()))
    }

    /// The indices, root first.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for DerivationPath {
    type Err = ArgumentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(ArgumentError::InvalidPath {
                reason: "a path starts with `m`",
            });
        }
        let mut indices = Vec::new();
        for part in parts {
            if part.ends_with('\'') || part.ends_with('h') || part.ends_with('H') {
                return Err(ArgumentError::InvalidPath {
                    reason: "hardened steps cannot be derived from a shared key",
                });
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 10 {
                return Err(ArgumentError::InvalidPath {
                    reason: "each step is a decimal number below 2^31",
                });
            }
            let i: u32 = part.parse().map_err(|_| ArgumentError::InvalidPath {
                reason: "each step is a decimal number below 2^31",
            })?;
            indices.push(i);
        }
        Self::from_indices(&indices)
    }
}

impl TryFrom<String> for DerivationPath {
    type Error = ArgumentError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DerivationPath> for String {
    fn from(p: DerivationPath) -> Self {
        p.to_string()
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for i in &self.0 {
            write!(f, "/{i}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivationPath({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_root_and_non_hardened_steps() {
        assert_eq!(
            "m".parse::<DerivationPath>().unwrap(),
            DerivationPath::root()
        );
        assert_eq!(
            "m/0/7".parse::<DerivationPath>().unwrap().indices(),
            &[0, 7]
        );
        assert_eq!(
            "m/2147483647".parse::<DerivationPath>().unwrap().indices(),
            &[HARDENED - 1]
        );
    }

    #[test]
    fn refuses_hardened_and_malformed_steps() {
        for bad in [
            "",
            "0/1",
            "m/",
            "m//1",
            "m/1'",
            "m/1h",
            "m/2147483648",
            "m/-1",
            "m/+1",
            "m/1/x",
            "M/1",
            "m/99999999999",
        ] {
            assert!(bad.parse::<DerivationPath>().is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(indices in proptest::collection::vec(0..HARDENED, 0..8)) {
            let p = DerivationPath::from_indices(&indices).unwrap();
            prop_assert_eq!(p.to_string().parse::<DerivationPath>().unwrap(), p);
        }

        #[test]
        fn parser_never_panics(s in ".{0,40}") {
            let _ = s.parse::<DerivationPath>();
        }
    }
}
