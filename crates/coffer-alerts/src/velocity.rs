//! Velocity spikes: how much (and how often) a wallet moved in the last window, against the
//! median of the same figure over its own previous windows.
//!
//! The current window is `(now - window, now]` and includes the payment being asked for; the
//! baseline is the median per-window total over the `lookback_windows` windows before it
//! (windows without activity count as zero). When that median is zero (a wallet that moves
//! rarely) the mean per window is used instead. The detector fires when the current total
//! exceeds `factor` times the baseline and is at least `min_amount` (or likewise for the
//! count with `min_count`), and only once the wallet has `min_history` payments in the
//! lookback: a new wallet has no history to compare with.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::stats::median;
use crate::{AlertKind, Finding, Payment, Severity, Subject};

/// Thresholds of the velocity detector.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Window length in seconds.
    pub window_secs: u64,
    /// How many previous windows make the baseline.
    pub lookback_windows: u32,
    /// Fire above this multiple of the baseline (High).
    pub factor: f64,
    /// Critical above this multiple of the baseline.
    pub critical_factor: f64,
    /// Smallest window total (base units) that may fire.
    pub min_amount: u128,
    /// Smallest window count that may fire on count.
    pub min_count: u32,
    /// Payments needed in the lookback before the detector speaks.
    pub min_history: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window_secs: 3600,
            lookback_windows: 24 * 7,
            factor: 5.0,
            critical_factor: 20.0,
            min_amount: 1,
            min_count: 5,
            min_history: 3,
        }
    }
}

/// Checks the payment `current` of a wallet against its earlier payments `history` (any
/// order; payments after `current.at` are ignored).
pub fn velocity_spike(
    subject: &Subject,
    history: &[Payment],
    current: Payment,
    t: &Thresholds,
) -> Option<Finding> {
    let w = t.window_secs.max(1);
    let now = current.at;
    let lookback = u64::from(t.lookback_windows.max(1));
    let mut cur_amount = current.amount;
    let mut cur_count: u32 = 1;
    let mut sums = vec![0f64; lookback as usize];
    let mut counts = vec![0f64; lookback as usize];
    let mut seen = 0usize;
    // Sorted so the floating-point sums do not depend on the input order.
    let mut past: Vec<Payment> = history.iter().copied().filter(|p| p.at <= now).collect();
    past.sort_by_key(|p| (p.at, p.amount));
    for p in past {
        // Window k holds the payments aged [k w, (k+1) w); window 0 is the current one.
        let k = (now - p.at) / w;
        if k == 0 {
            cur_amount = cur_amount.saturating_add(p.amount);
            cur_count = cur_count.saturating_add(1);
        } else if k <= lookback {
            sums[(k - 1) as usize] += p.amount as f64;
            counts[(k - 1) as usize] += 1.0;
            seen += 1;
        }
    }
    if seen < t.min_history {
        return None;
    }
    let baseline = |v: &[f64]| {
        let m = median(v).unwrap_or(0.0);
        if m > 0.0 {
            m
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let base_amount = baseline(&sums);
    let base_count = baseline(&counts);
    let amount_ratio = cur_amount as f64 / base_amount;
    let count_ratio = f64::from(cur_count) / base_count;
    let by_amount = cur_amount >= t.min_amount && amount_ratio > t.factor;
    let by_count = cur_count >= t.min_count && count_ratio > t.factor;
    if !by_amount && !by_count {
        return None;
    }
    let ratio = match (by_amount, by_count) {
        (true, true) => amount_ratio.max(count_ratio),
        (true, false) => amount_ratio,
        _ => count_ratio,
    };
    let severity = if ratio > t.critical_factor {
        Severity::Critical
    } else {
        Severity::High
    };
    let what = if by_amount { "moved" } else { "made" };
    let explanation = if by_amount {
        format!(
            "wallet {what} {cur_amount} in the last {w} s, {ratio:.1} times its usual {base_amount:.0} per window"
        )
    } else {
        format!(
            "wallet {what} {cur_count} payments in the last {w} s, {ratio:.1} times its usual {base_count:.1} per window"
        )
    };
    Some(Finding {
        kind: AlertKind::VelocitySpike,
        severity,
        explanation,
        evidence: json!({
            "window_secs": w,
            "window_end": now,
            "lookback_windows": lookback,
            "window_amount": cur_amount.to_string(),
            "window_count": cur_count,
            "baseline_amount_per_window": base_amount,
            "baseline_count_per_window": base_count,
            "amount_ratio": amount_ratio,
            "count_ratio": count_ratio,
            "by_amount": by_amount,
            "by_count": by_count,
            "history_payments": seen,
        }),
        subject: subject.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const H: u64 = 3600;
    const NOW: u64 = 1_000 * H;

    fn t() -> Thresholds {
        Thresholds {
            window_secs: H,
            lookback_windows: 10,
            factor: 5.0,
            critical_factor: 20.0,
            min_amount: 100,
            min_count: 5,
            min_history: 3,
        }
    }

    /// One payment of `amount` in each of the 10 previous windows.
    fn steady(amount: u128) -> Vec<Payment> {
        (1..=10)
            .map(|k| Payment {
                amount,
                at: NOW - k * H - 10,
            })
            .collect()
    }

    fn check(history: &[Payment], amount: u128) -> Option<Finding> {
        velocity_spike(
            &Subject::wallet("v-1", "w-1"),
            history,
            Payment { amount, at: NOW },
            &t(),
        )
    }

    #[test]
    fn a_window_far_above_the_wallets_median_fires_high_with_its_figures() {
        let f = check(&steady(100), 600).unwrap();
        assert_eq!(f.kind, AlertKind::VelocitySpike);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.evidence["window_amount"], "600");
        assert_eq!(f.evidence["baseline_amount_per_window"], 100.0);
        assert_eq!(f.subject.wallet.as_deref(), Some("w-1"));
        assert_eq!(
            check(&steady(100), 2_001).unwrap().severity,
            Severity::Critical
        );
    }

    #[test]
    fn the_factor_is_a_strict_boundary() {
        assert!(
            check(&steady(100), 500).is_none(),
            "exactly 5x does not fire"
        );
        assert!(check(&steady(100), 501).is_some());
    }

    #[test]
    fn small_totals_below_the_minimum_do_not_fire() {
        assert!(check(&steady(1), 99).is_none());
        assert!(check(&steady(1), 100).is_some());
    }

    #[test]
    fn earlier_payments_in_the_same_window_add_up() {
        let mut h = steady(100);
        h.push(Payment {
            amount: 300,
            at: NOW - 60,
        });
        assert!(check(&h, 200).is_none(), "300 + 200 = 5x");
        assert!(check(&h, 201).is_some());
    }

    #[test]
    fn a_burst_of_small_payments_fires_on_count() {
        let mut h = steady(100);
        for i in 0..5 {
            h.push(Payment {
                amount: 1,
                at: NOW - 100 - i,
            });
        }
        let f = check(&h, 1).unwrap();
        assert!(f.evidence["by_count"].as_bool().unwrap());
        assert_eq!(f.evidence["window_count"], 6);
    }

    #[test]
    fn a_wallet_without_enough_history_or_with_only_old_history_is_silent() {
        assert!(check(&[], 1_000_000).is_none());
        assert!(check(&steady(100)[..2], 1_000_000).is_none());
        let old: Vec<Payment> = (0..10)
            .map(|i| Payment {
                amount: 100,
                at: NOW - 100 * H - i,
            })
            .collect();
        assert!(check(&old, 1_000_000).is_none());
    }

    #[test]
    fn a_rarely_used_wallet_compares_with_its_mean_per_window() {
        // 3 payments of 100 in 10 windows: median 0, mean 30 per window.
        let h: Vec<Payment> = steady(100).into_iter().take(3).collect();
        assert!(check(&h, 150).is_none());
        assert!(check(&h, 151).is_some());
    }

    #[test]
    fn history_order_does_not_matter_and_future_payments_are_ignored() {
        let mut h = steady(100);
        let a = check(&h, 600);
        h.reverse();
        h.push(Payment {
            amount: 1_000_000,
            at: NOW + 5,
        });
        assert_eq!(check(&h, 600), a);
    }
}
