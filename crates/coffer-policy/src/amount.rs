//! Amounts in an asset's base unit: a `u128` that travels as a strict decimal string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

/// An amount in the asset's base unit. JSON: a decimal string ("1500"), never a number.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount(pub u128);

impl Amount {
    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Amount {
    type Err = PolicyError;
    /// Digits only (leading zeros accepted), non-empty, at most `u128::MAX`.
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let bad = |reason: &'static str| PolicyError::BadAmount { reason };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut v: u128 = 0;
        for b in s.bytes() {
            if !b.is_ascii_digit() {
                return Err(bad("only decimal digits are allowed"));
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .ok_or(bad("too large"))?;
        }
        Ok(Amount(v))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strict_parsing() {
        assert_eq!("007".parse::<Amount>().unwrap(), Amount(7));
        assert_eq!(Amount(7).to_string(), "7");
        assert_eq!(
            u128::MAX.to_string().parse::<Amount>().unwrap(),
            Amount(u128::MAX)
        );
        for bad in ["", "+1", "-1", "1.0", " 1", "1 ", "1e3", "0x10", "١"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
        assert!("340282366920938463463374607431768211456"
            .parse::<Amount>()
            .is_err());
        assert_eq!(serde_json::to_string(&Amount(1500)).unwrap(), "\"1500\"");
        assert!(serde_json::from_str::<Amount>("1500").is_err());
        assert_eq!(Amount(1).checked_add(Amount(2)), Some(Amount(3)));
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), None);
    }

    proptest! {
        #[test]
        fn display_round_trips(v in any::<u128>()) {
            prop_assert_eq!(Amount(v).to_string().parse::<Amount>().unwrap(), Amount(v));
            let json = serde_json::to_string(&Amount(v)).unwrap();
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), Amount(v));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,48}") {
            let _ = s.parse::<Amount>();
        }

        #[test]
        fn signs_points_and_spaces_refused(
            a in "[0-9]{0,10}", b in "[0-9]{0,10}", c in prop::sample::select(vec!['-', '.', '+', ' '])
        ) {
            let s = format!("{a}{c}{b}");
            prop_assert!(s.parse::<Amount>().is_err());
        }

        #[test]
        fn beyond_u128_refused(extra in 0u128..1_000_000, zeros in 0usize..5) {
            // 2^128 + extra, as decimal, possibly with leading zeros.
            let s = format!("{}{}", "0".repeat(zeros), big_plus(extra));
            prop_assert!(s.parse::<Amount>().is_err());
        }
    }

    /// Decimal string of 2^128 + extra.
    fn big_plus(extra: u128) -> String {
        // 2^128 = u128::MAX + 1; add with decimal carry on the string of u128::MAX.
        let mut digits: Vec<u8> = u128::MAX.to_string().bytes().map(|b| b - b'0').collect();
        let mut carry = extra + 1;
        for d in digits.iter_mut().rev() {
            let t = u128::from(*d) + carry;
            *d = (t % 10) as u8;
            carry = t / 10;
        }
        let mut s = if carry > 0 {
            carry.to_string()
        } else {
            String::new()
        };
        s.extend(digits.iter().map(|d| char::from(b'0' + d)));
        s
    }
}
