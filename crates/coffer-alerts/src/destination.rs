//! First payments: a wallet (or vault) asking to pay a destination it never paid before.
//! Address comparison is exact; callers pass addresses in their chain's canonical form.

use serde_json::json;

use crate::{AlertKind, Finding, Severity, Subject};

/// Fires when `destination` is not among the destinations the wallet paid before
/// (`previous`). A wallet's very first payment fires too: every destination is new to it.
pub fn first_destination<'a>(
    subject: &Subject,
    previous: impl IntoIterator<Item = &'a str>,
    destination: &str,
    amount: u128,
) -> Option<Finding> {
    let mut known = 0usize;
    for p in previous {
        if p == destination {
            return None;
        }
        known += 1;
    }
    Some(Finding {
        kind: AlertKind::FirstDestination,
        severity: Severity::Medium,
        explanation: format!(
            "first payment from this wallet to {destination} ({known} other destinations paid before)"
        ),
        evidence: json!({
            "destination": destination,
            "amount": amount.to_string(),
            "known_destinations": known,
        }),
        subject: subject.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_new_destination_fires_and_a_known_one_does_not() {
        let s = Subject::wallet("v", "w");
        let f = first_destination(&s, ["addr-a", "addr-b"], "addr-c", 7).unwrap();
        assert_eq!(f.kind, AlertKind::FirstDestination);
        assert_eq!(f.evidence["destination"], "addr-c");
        assert_eq!(f.evidence["known_destinations"], 2);
        assert!(first_destination(&s, ["addr-a", "addr-b"], "addr-b", 7).is_none());
        assert!(first_destination(&s, [], "addr-a", 7).is_some());
        // Exact comparison: a look-alike differing in case is another destination.
        assert!(first_destination(&s, ["addr-a"], "ADDR-A", 7).is_some());
    }
}
