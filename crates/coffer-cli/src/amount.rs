//! Amounts as people type them: plain digits are base units (`150000`); a decimal with the
//! wallet asset's unit converts exactly (`0.5btc`, `1.2 ETH`, `3sol`); the base unit's own
//! name is accepted too (`150000sat`, `7 wei`, `9lamports`). Nothing is rounded: a value
//! the unit cannot hold exactly is an error, and so is anything that is not a plain
//! non-negative number. [`format_amount`] prints both forms ("0.5 BTC (50000000 sat)").

use coffer_policy::Amount;

/// An asset whose amounts can be written in a decimal unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    /// The unit and asset name (`BTC`).
    pub name: &'static str,
    /// Decimal places of the base unit.
    pub decimals: u32,
    /// The base unit's name (`sat`).
    pub base: &'static str,
    /// Other spellings of the base unit.
    pub base_aliases: &'static [&'static str],
}

/// The units the CLI knows.
pub(crate) const UNITS: [Unit; 3] = [
    Unit {
        name: "BTC",
        decimals: 8,
        base: "sat",
        base_aliases: &["sats"],
    },
    Unit {
        name: "ETH",
        decimals: 18,
        base: "wei",
        base_aliases: &[],
    },
    Unit {
        name: "SOL",
        decimals: 9,
        base: "lamports",
        base_aliases: &["lamport"],
    },
];

/// The decimal unit of an asset (case-insensitive), if the CLI knows one.
pub(crate) fn unit_of(asset: &str) -> Option<Unit> {
    UNITS
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(asset))
        .copied()
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmountError {
    /// Nothing given.
    #[error("the amount is empty")]
    Empty,
    /// A sign (`-`, `+`): amounts are non-negative numbers without sign.
    #[error("{0:?}: amounts take no sign (negative amounts do not exist)")]
    Sign(String),
    /// `1e8` and the like.
    #[error("{0:?}: exponent notation is not accepted; write the digits")]
    Exponent(String),
    /// `1.2.3`.
    #[error("{0:?}: more than one decimal point")]
    TwoDots(String),
    /// `.5`, `5.`, `btc`.
    #[error("{0:?}: digits are needed on both sides of the decimal point")]
    MissingDigits(String),
    /// A character that belongs in no amount.
    #[error("{text:?}: unexpected character {found:?} (expected digits, one '.', and the unit)")]
    Invalid {
        /// The input.
        text: String,
        /// The offending character.
        found: char,
    },
    /// A unit that is not the wallet's asset.
    #[error("{text:?}: the unit {unit:?} does not match the wallet's asset {asset}{hint}")]
    UnitMismatch {
        /// The input.
        text: String,
        /// The unit written.
        unit: String,
        /// The wallet's asset.
        asset: String,
        /// What is accepted instead.
        hint: String,
    },
    /// `0.5` without a unit: ambiguous (base units are integers).
    #[error("{text:?}: a fractional amount needs its unit ({hint}); plain digits are base units")]
    FractionWithoutUnit {
        /// The input.
        text: String,
        /// The accepted unit.
        hint: String,
    },
    /// More decimal places than the unit has.
    #[error("{text:?}: {unit} has {decimals} decimal places; the amount has {found}")]
    TooPrecise {
        /// The input.
        text: String,
        /// The unit.
        unit: &'static str,
        /// Its decimal places.
        decimals: u32,
        /// Decimal places given.
        found: usize,
    },
    /// More than `u128::MAX` base units.
    #[error("{0:?}: too large (the largest amount is {max} base units)", max = u128::MAX)]
    Overflow(String),
}

fn hint_for(asset: &str) -> String {
    match unit_of(asset) {
        Some(u) => format!("{} or {}", u.name.to_ascii_lowercase(), u.base),
        None => format!("{asset} amounts are written in base units (plain digits)"),
    }
}

/// Splits `text` into the number and an optional unit suffix (letters at the end, after an
/// optional single space).
fn split_unit(text: &str) -> (&str, Option<&str>) {
    let number_end = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic())
        .last()
        .map(|(i, _)| i);
    match number_end {
        Some(i) => {
            let (number, unit) = text.split_at(i);
            let number = number.strip_suffix(' ').unwrap_or(number);
            (number, Some(unit))
        }
        None => (text, None),
    }
}

/// Digits of `s` as a `u128`, or `None` on overflow (the caller checked they are digits).
fn digits_value(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// Parses an amount for a wallet of `asset` into base units.
pub(crate) fn parse_amount(text: &str, asset: &str) -> Result<Amount, AmountError> {
    parse_base_units(text, asset).map(Amount)
}

/// [`parse_amount`] as a plain number of base units.
pub(crate) fn parse_base_units(text: &str, asset: &str) -> Result<u128, AmountError> {
    let owned = || text.to_string();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.contains(['-', '+']) {
        return Err(AmountError::Sign(owned()));
    }
    let (number, unit) = split_unit(text);
    if number.is_empty() {
        return Err(AmountError::MissingDigits(owned()));
    }
    // Exponent notation (`1e8`, `1.5E3btc`): the exponent's digits end the number.
    if number.contains(['e', 'E']) {
        return Err(AmountError::Exponent(owned()));
    }
    if let Some(found) = number.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        return Err(AmountError::Invalid {
            text: owned(),
            found,
        });
    }
    if number.matches('.').count() > 1 {
        return Err(AmountError::TwoDots(owned()));
    }
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => {
            if w.is_empty() || f.is_empty() {
                return Err(AmountError::MissingDigits(owned()));
            }
            (w, Some(f))
        }
        None => (number, None),
    };
    let known = unit_of(asset);
    let decimals = match unit {
        None => {
            if fraction.is_some() {
                return Err(AmountError::FractionWithoutUnit {
                    text: owned(),
                    hint: hint_for(asset),
                });
            }
            0
        }
        Some(u) => {
            let unit = known.filter(|k| {
                k.name.eq_ignore_ascii_case(u)
                    || k.base.eq_ignore_ascii_case(u)
                    || k.base_aliases.iter().any(|a| a.eq_ignore_ascii_case(u))
            });
            let Some(k) = unit else {
                return Err(AmountError::UnitMismatch {
                    text: owned(),
                    unit: u.to_string(),
                    asset: asset.to_string(),
                    hint: format!(" (write {})", hint_for(asset)),
                });
            };
            if k.name.eq_ignore_ascii_case(u) {
                k.decimals
            } else {
                if fraction.is_some() {
                    return Err(AmountError::TooPrecise {
                        text: owned(),
                        unit: k.base,
                        decimals: 0,
                        found: fraction.map_or(0, str::len),
                    });
                }
                0
            }
        }
    };
    let fraction = fraction.unwrap_or("");
    if fraction.len() > decimals as usize {
        return Err(AmountError::TooPrecise {
            text: owned(),
            unit: known.map_or("base units", |k| k.name),
            decimals,
            found: fraction.len(),
        });
    }
    let overflow = || AmountError::Overflow(text.to_string());
    let scale = 10u128.checked_pow(decimals).ok_or_else(overflow)?;
    let whole = digits_value(whole).ok_or_else(overflow)?;
    let padding = decimals as usize - fraction.len();
    let fraction = digits_value(fraction)
        .and_then(|f| f.checked_mul(10u128.checked_pow(u32::try_from(padding).ok()?)?))
        .ok_or_else(overflow)?;
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(overflow)
}

/// `0.5 BTC` for a known unit (no trailing zeros), else the base units and the asset.
pub(crate) fn format_decimal(amount: Amount, asset: &str) -> String {
    let Some(unit) = unit_of(asset) else {
        return format!("{} {asset}", amount.0);
    };
    let scale = 10u128.pow(unit.decimals);
    let whole = amount.0 / scale;
    let fraction = amount.0 % scale;
    if fraction == 0 {
        return format!("{whole} {}", unit.name);
    }
    let digits = format!("{fraction:0width$}", width = unit.decimals as usize);
    format!("{whole}.{} {}", digits.trim_end_matches('0'), unit.name)
}

/// `0.5 BTC (50000000 sat)`, or `150000 base units of XYZ` for an asset without a known unit.
pub(crate) fn format_amount(amount: Amount, asset: &str) -> String {
    match unit_of(asset) {
        Some(unit) => format!(
            "{} ({} {})",
            format_decimal(amount, asset),
            amount.0,
            unit.base
        ),
        None => format!("{} base units of {asset}", amount.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str, asset: &str) -> Result<u128, AmountError> {
        parse_base_units(s, asset)
    }

    #[test]
    fn base_units_and_decimal_units() {
        assert_eq!(p("150000", "BTC"), Ok(150_000));
        assert_eq!(p("007", "BTC"), Ok(7));
        assert_eq!(p("0", "ETH"), Ok(0));
        assert_eq!(p("0.5btc", "BTC"), Ok(50_000_000));
        assert_eq!(p("0.5 BTC", "btc"), Ok(50_000_000));
        assert_eq!(p("0.5 Btc", "BTC"), Ok(50_000_000));
        assert_eq!(p("1.2eth", "ETH"), Ok(1_200_000_000_000_000_000));
        assert_eq!(p("3sol", "SOL"), Ok(3_000_000_000));
        assert_eq!(p("0.00000001btc", "BTC"), Ok(1));
        assert_eq!(p("21000000btc", "BTC"), Ok(2_100_000_000_000_000));
        assert_eq!(
            p("1.000000000000000001 eth", "ETH"),
            Ok(1_000_000_000_000_000_001)
        );
        assert_eq!(p("150000sat", "BTC"), Ok(150_000));
        assert_eq!(p("150000 sats", "BTC"), Ok(150_000));
        assert_eq!(p("7 WEI", "ETH"), Ok(7));
        assert_eq!(p("9lamports", "SOL"), Ok(9));
        assert_eq!(p("150000", "USDC"), Ok(150_000));
        assert_eq!(p(&u128::MAX.to_string(), "USDC"), Ok(u128::MAX));
        assert_eq!(parse_amount("0.5btc", "BTC").unwrap().0, 50_000_000);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(p("", "BTC"), Err(AmountError::Empty));
        assert!(matches!(p("-1", "BTC"), Err(AmountError::Sign(_))));
        assert!(matches!(p("+1", "BTC"), Err(AmountError::Sign(_))));
        assert!(matches!(p("-0.5btc", "BTC"), Err(AmountError::Sign(_))));
        assert!(matches!(p("1-2", "BTC"), Err(AmountError::Sign(_))));
        assert!(matches!(p("1e8", "BTC"), Err(AmountError::Exponent(_))));
        assert!(matches!(p("1E8", "BTC"), Err(AmountError::Exponent(_))));
        assert!(matches!(
            p("1.5e3btc", "BTC"),
            Err(AmountError::Exponent(_))
        ));
        assert!(matches!(p("1e8", "ETH"), Err(AmountError::Exponent(_))));
        assert!(matches!(p("1.2.3btc", "BTC"), Err(AmountError::TwoDots(_))));
        assert!(matches!(p("1..2", "BTC"), Err(AmountError::TwoDots(_))));
        assert!(matches!(
            p(".5btc", "BTC"),
            Err(AmountError::MissingDigits(_))
        ));
        assert!(matches!(
            p("5.btc", "BTC"),
            Err(AmountError::MissingDigits(_))
        ));
        assert!(matches!(
            p("btc", "BTC"),
            Err(AmountError::MissingDigits(_))
        ));
        assert!(matches!(p(".", "BTC"), Err(AmountError::MissingDigits(_))));
        assert!(matches!(
            p("0.000000001btc", "BTC"),
            Err(AmountError::TooPrecise {
                decimals: 8,
                found: 9,
                ..
            })
        ));
        assert!(matches!(
            p("1.5sat", "BTC"),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            p("0.5", "BTC"),
            Err(AmountError::FractionWithoutUnit { .. })
        ));
        assert!(matches!(
            p("0.5eth", "BTC"),
            Err(AmountError::UnitMismatch { .. })
        ));
        assert!(matches!(
            p("1wei", "BTC"),
            Err(AmountError::UnitMismatch { .. })
        ));
        assert!(matches!(
            p("1btc", "USDC"),
            Err(AmountError::UnitMismatch { .. })
        ));
        assert!(matches!(
            p("1usdc", "USDC"),
            Err(AmountError::UnitMismatch { .. })
        ));
        assert!(matches!(
            p("0.5", "USDC"),
            Err(AmountError::FractionWithoutUnit { .. })
        ));
        assert!(matches!(
            p(" 1", "BTC"),
            Err(AmountError::Invalid { found: ' ', .. })
        ));
        assert!(matches!(
            p("1 ", "BTC"),
            Err(AmountError::Invalid { found: ' ', .. })
        ));
        assert!(matches!(
            p("1  btc", "BTC"),
            Err(AmountError::Invalid { found: ' ', .. })
        ));
        assert!(matches!(
            p("1,5btc", "BTC"),
            Err(AmountError::Invalid { found: ',', .. })
        ));
        assert!(matches!(p("١", "BTC"), Err(AmountError::Invalid { .. })));
        assert!(matches!(
            p("0x10", "BTC"),
            Err(AmountError::UnitMismatch { .. }) | Err(AmountError::Invalid { .. })
        ));
        let too_big = format!("{}0", u128::MAX);
        assert!(matches!(p(&too_big, "BTC"), Err(AmountError::Overflow(_))));
        let max_btc = u128::MAX / 100_000_000 + 1;
        assert!(matches!(
            p(&format!("{max_btc}btc"), "BTC"),
            Err(AmountError::Overflow(_))
        ));
        // Every error message names the input.
        let e = p("0.5eth", "BTC").unwrap_err().to_string();
        assert!(e.contains("0.5eth") && e.contains("BTC"), "{e}");
    }

    #[test]
    fn formatting() {
        assert_eq!(
            format_amount(Amount(50_000_000), "BTC"),
            "0.5 BTC (50000000 sat)"
        );
        assert_eq!(
            format_amount(Amount(100_000_000), "btc"),
            "1 BTC (100000000 sat)"
        );
        assert_eq!(format_amount(Amount(0), "BTC"), "0 BTC (0 sat)");
        assert_eq!(
            format_amount(Amount(1), "SOL"),
            "0.000000001 SOL (1 lamports)"
        );
        assert_eq!(
            format_amount(Amount(1_200_000_000_000_000_000), "ETH"),
            "1.2 ETH (1200000000000000000 wei)"
        );
        assert_eq!(
            format_amount(Amount(150_000), "USDC"),
            "150000 base units of USDC"
        );
        assert_eq!(format_decimal(Amount(u128::MAX), "ETH").len(), 39 + 1 + 4);
    }

    fn unit_strategy() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("BTC"), Just("ETH"), Just("SOL")]
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(x in any::<u64>(), asset in unit_strategy(), lower in any::<bool>()) {
            let shown = format_decimal(Amount(u128::from(x)), asset);
            let typed = if lower { shown.to_ascii_lowercase() } else { shown.clone() };
            prop_assert_eq!(p(&typed, asset), Ok(u128::from(x)), "{}", shown);
            prop_assert_eq!(p(&typed.replace(' ', ""), asset), Ok(u128::from(x)));
            prop_assert_eq!(p(&x.to_string(), asset), Ok(u128::from(x)));
        }

        #[test]
        fn large_amounts_round_trip(x in any::<u128>(), asset in unit_strategy()) {
            let shown = format_decimal(Amount(x), asset);
            prop_assert_eq!(p(&shown, asset), Ok(x));
        }

        #[test]
        fn parse_never_panics(s in ".{0,48}", asset in prop_oneof![unit_strategy(), Just("XYZ"), Just("")]) {
            let _ = p(&s, asset);
        }

        #[test]
        fn parse_never_panics_on_amount_like_text(s in "[0-9.eE+ -]{0,12}(btc|BTC|eth|sol|sat|wei| btc|e|)", asset in unit_strategy()) {
            let _ = p(&s, asset);
        }
    }
}
