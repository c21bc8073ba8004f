//! A per-wallet anomaly score over amounts and timing, by robust statistics.
//!
//! Against the wallet's history, the candidate payment gets three robust z-scores (median
//! and MAD, see the private `stats` module): of its amount, of its log-amount (`ln(1 + a)`,
//! which sees order-of-magnitude jumps in wallets with spread amounts), and of the time since
//! the previous payment against the history's inter-arrival times. The score is
//!
//! `max(|z_amount|, |z_log_amount|) x (1 + t)`, with `t = min(1, max(0, -z_gap) / fire_at)`:
//!
//! the amount decides whether a payment is unusual; arriving sooner than usual raises the
//! score by up to a factor of two but cannot make an ordinary amount suspicious by itself.
//! So the score is finite, does not depend on the history's order, grows as the amount moves
//! away from the wallet's median, and is zero for the wallet's usual amount when every past
//! amount was the same.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::stats::Robust;
use crate::{AlertKind, Finding, Payment, Severity, Subject};

/// Thresholds of the anomaly score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyThresholds {
    /// The score from which a finding is raised (High).
    pub fire_at: f64,
    /// The score from which it is Critical.
    pub critical_at: f64,
    /// Past payments needed before the score means anything.
    pub min_history: usize,
}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        AnomalyThresholds {
            fire_at: 3.5,
            critical_at: 10.0,
            min_history: 5,
        }
    }
}

/// The score with the figures behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnomalyScore {
    /// The combined score (finite, >= 0).
    pub score: f64,
    /// Robust z-score of the amount.
    pub z_amount: f64,
    /// Robust z-score of the log-amount.
    pub z_log_amount: f64,
    /// Robust z-score of the time since the previous payment (negative: sooner than usual);
    /// `None` with fewer than two past payments or no previous payment before the candidate.
    pub z_interarrival: Option<f64>,
    /// The wallet's median amount.
    pub median_amount: f64,
    /// The human reasons that drove the score, strongest first.
    pub reasons: Vec<String>,
}

/// Scores `candidate` against `history` (`None` when the history is empty).
pub fn score(history: &[Payment], candidate: Payment, fire_at: f64) -> Option<AnomalyScore> {
    let mut hist = history.to_vec();
    hist.sort_by_key(|p| (p.at, p.amount));
    let amounts: Vec<f64> = hist.iter().map(|p| p.amount as f64).collect();
    let logs: Vec<f64> = amounts.iter().map(|a| a.ln_1p()).collect();
    let ra = Robust::of(&amounts)?;
    let rl = Robust::of(&logs)?;
    let x = candidate.amount as f64;
    let z_amount = ra.z(x);
    let z_log_amount = rl.z(x.ln_1p());
    let gaps: Vec<f64> = hist
        .windows(2)
        .map(|w| (w[1].at.saturating_sub(w[0].at)) as f64)
        .collect();
    let last_before = hist.iter().rev().find(|p| p.at <= candidate.at);
    let z_interarrival = match (Robust::of(&gaps), last_before) {
        (Some(rg), Some(prev)) => Some(rg.z(candidate.at.saturating_sub(prev.at) as f64)),
        _ => None,
    };
    let amount_score = z_amount.abs().max(z_log_amount.abs());
    let fire_at = if fire_at > 0.0 { fire_at } else { 1.0 };
    let timing = z_interarrival
        .map(|z| (-z).max(0.0) / fire_at)
        .unwrap_or(0.0)
        .min(1.0);
    let score = amount_score * (1.0 + timing);
    let mut reasons: Vec<(f64, String)> = Vec::new();
    if z_amount.abs() >= 1.0 {
        let dir = if z_amount > 0.0 { "above" } else { "below" };
        reasons.push((
            z_amount.abs(),
            format!(
                "amount {} is {:.1} robust deviations {dir} the wallet's median {:.0}",
                candidate.amount,
                z_amount.abs(),
                ra.median
            ),
        ));
    }
    if z_log_amount.abs() >= 1.0 {
        reasons.push((
            z_log_amount.abs(),
            format!(
                "order of magnitude is {:.1} robust deviations from the wallet's usual",
                z_log_amount.abs()
            ),
        ));
    }
    if timing > 0.0 {
        if let Some(z) = z_interarrival {
            reasons.push((
                -z,
                format!(
                    "arrived {:.1} robust deviations sooner than the wallet's usual spacing",
                    -z
                ),
            ));
        }
    }
    reasons.sort_by(|a, b| b.0.total_cmp(&a.0));
    Some(AnomalyScore {
        score,
        z_amount,
        z_log_amount,
        z_interarrival,
        median_amount: ra.median,
        reasons: reasons.into_iter().map(|(_, r)| r).collect(),
    })
}

/// Raises a finding when the wallet has enough history and the score reaches `fire_at`.
pub fn anomaly(
    subject: &Subject,
    history: &[Payment],
    candidate: Payment,
    t: &AnomalyThresholds,
) -> Option<Finding> {
    if history.len() < t.min_history {
        return None;
    }
    let s = score(history, candidate, t.fire_at)?;
    if s.score < t.fire_at || s.score.is_nan() {
        return None;
    }
    let severity = if s.score >= t.critical_at {
        Severity::Critical
    } else {
        Severity::High
    };
    Some(Finding {
        kind: AlertKind::Anomaly,
        severity,
        explanation: format!(
            "payment of {} scores {:.1} against the wallet's history: {}",
            candidate.amount,
            s.score,
            s.reasons.first().map(String::as_str).unwrap_or("unusual")
        ),
        evidence: json!({
            "score": s.score,
            "fire_at": t.fire_at,
            "amount": candidate.amount.to_string(),
            "at": candidate.at,
            "median_amount": s.median_amount,
            "z_amount": s.z_amount,
            "z_log_amount": s.z_log_amount,
            "z_interarrival": s.z_interarrival,
            "reasons": s.reasons,
            "history_payments": history.len(),
        }),
        subject: subject.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hist(amounts: &[u128]) -> Vec<Payment> {
        amounts
            .iter()
            .enumerate()
            .map(|(i, &amount)| Payment {
                amount,
                at: 1_000 + 100 * i as u64,
            })
            .collect()
    }

    fn next(h: &[Payment], amount: u128) -> Payment {
        Payment {
            amount,
            at: h.last().map(|p| p.at + 100).unwrap_or(0),
        }
    }

    #[test]
    fn a_usual_amount_does_not_fire_and_a_huge_one_fires_with_reasons() {
        let h = hist(&[100, 110, 95, 105, 90, 100, 120]);
        let t = AnomalyThresholds::default();
        let s = Subject::wallet("v", "w");
        assert!(anomaly(&s, &h, next(&h, 104), &t).is_none());
        let f = anomaly(&s, &h, next(&h, 10_000), &t).unwrap();
        assert_eq!(f.kind, AlertKind::Anomaly);
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.evidence["reasons"][0].as_str().unwrap().contains("10000"));
        assert_eq!(f.evidence["median_amount"], 100.0);
    }

    #[test]
    fn the_threshold_is_inclusive_and_history_is_required() {
        let h = hist(&[100, 110, 90, 100, 100]);
        // median 100, MAD 0 -> deviations [0,0,0,10,10]: MAD 0, mean AD 4, scale 5.0132.
        let t = AnomalyThresholds::default();
        let s = Subject::default();
        let sc = |a| score(&h, next(&h, a), t.fire_at).unwrap().score;
        assert!(sc(117) < 3.5 && sc(118) >= 3.5);
        assert!(anomaly(&s, &h, next(&h, 117), &t).is_none());
        assert!(anomaly(&s, &h, next(&h, 118), &t).is_some());
        assert!(anomaly(&s, &h[..4], next(&h, 1_000_000), &t).is_none());
    }

    #[test]
    fn arriving_sooner_raises_the_score_but_not_alone() {
        let h = hist(&[100, 110, 90, 100, 105, 95]);
        let usual = score(&h, next(&h, 112), 3.5).unwrap();
        let soon = score(
            &h,
            Payment {
                amount: 112,
                at: h[5].at + 1,
            },
            3.5,
        )
        .unwrap();
        assert!(soon.score > usual.score);
        assert!(soon.reasons.iter().any(|r| r.contains("sooner")));
        let same_amount_soon = score(
            &h,
            Payment {
                amount: 100,
                at: h[5].at + 1,
            },
            3.5,
        )
        .unwrap();
        assert!(same_amount_soon.score < 3.5);
    }

    fn history_strategy() -> impl Strategy<Value = Vec<Payment>> {
        prop::collection::vec(
            (0u128..1_000_000_000_000u128, 0u64..10_000_000u64)
                .prop_map(|(amount, at)| Payment { amount, at }),
            1..40,
        )
    }

    proptest! {
        #[test]
        fn the_score_is_finite_and_non_negative(h in history_strategy(), amount in any::<u128>(), at in any::<u64>()) {
            let s = score(&h, Payment { amount, at }, 3.5).unwrap();
            prop_assert!(s.score.is_finite() && s.score >= 0.0);
        }

        #[test]
        fn the_score_does_not_depend_on_history_order(h in history_strategy(), amount in 0u128..10_000_000_000_000, at in 0u64..20_000_000, seed in any::<u64>()) {
            let mut shuffled = h.clone();
            // A deterministic shuffle driven by the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let a = score(&h, Payment { amount, at }, 3.5).unwrap();
            let b = score(&shuffled, Payment { amount, at }, 3.5).unwrap();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn the_score_grows_as_the_amount_moves_away_from_the_median(h in history_strategy(), a in 0u128..1_000_000_000_000, b in 0u128..1_000_000_000_000, at in 0u64..20_000_000) {
            let s0 = score(&h, Payment { amount: 0, at }, 3.5).unwrap();
            let med = s0.median_amount;
            let (near, far) = if a <= b { (a, b) } else { (b, a) };
            // Both on the same side of the median, `far` further away.
            if near as f64 >= med {
                let sn = score(&h, Payment { amount: near, at }, 3.5).unwrap().score;
                let sf = score(&h, Payment { amount: far, at }, 3.5).unwrap().score;
                prop_assert!(sf >= sn, "{} < {}", sf, sn);
            }
            if far as f64 <= med {
                let sn = score(&h, Payment { amount: far, at }, 3.5).unwrap().score;
                let sf = score(&h, Payment { amount: near, at }, 3.5).unwrap().score;
                prop_assert!(sf >= sn, "{} < {}", sf, sn);
            }
        }

        #[test]
        fn identical_amounts_never_fire_for_the_same_amount(amount in any::<u128>(), times in prop::collection::vec(0u64..10_000_000, 5..40), at in any::<u64>()) {
            let h: Vec<Payment> = times.iter().map(|&at| Payment { amount, at }).collect();
            let s = score(&h, Payment { amount, at }, 3.5).unwrap();
            prop_assert_eq!(s.score, 0.0);
            let fired = anomaly(&Subject::default(), &h, Payment { amount, at }, &AnomalyThresholds::default());
            prop_assert!(fired.is_none());
        }
    }
}
