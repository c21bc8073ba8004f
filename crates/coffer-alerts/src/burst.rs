//! Bursts: sliding-window counters of failures (bad signatures, unknown keys, replayed
//! nonces) per credential and per source address, pure given timestamps.
//!
//! A [`Burst`] fires once when the count within the window reaches the limit and stays quiet
//! until the window has emptied below the limit again, so one attack is one alert, not one
//! per failure. [`Bursts`] keeps one counter per key with a bound on the number of keys, so
//! an attacker spraying source addresses cannot grow the server's memory without bound.

use std::collections::{HashMap, VecDeque};

use serde_json::json;

use crate::{AlertKind, Finding, Severity, Subject};

/// A sliding-window counter.
#[derive(Clone, Debug, Default)]
pub struct Burst {
    times: VecDeque<u64>,
    firing: bool,
}

impl Burst {
    /// Records a failure at `now` (Unix seconds) and returns the count within the window when
    /// this failure makes the counter reach `limit` for the first time since it was last
    /// below it.
    pub fn record(&mut self, now: u64, window_secs: u64, limit: usize) -> Option<usize> {
        self.expire(now, window_secs);
        self.times.push_back(now);
        // Never keep more than the limit plus one: enough to know we are above it.
        while self.times.len() > limit.max(1) + 1 {
            self.times.pop_front();
        }
        if self.times.len() >= limit.max(1) {
            if self.firing {
                return None;
            }
            self.firing = true;
            return Some(self.times.len());
        }
        None
    }

    fn expire(&mut self, now: u64, window_secs: u64) {
        while let Some(&t) = self.times.front() {
            if now.saturating_sub(t) >= window_secs {
                self.times.pop_front();
            } else {
                break;
            }
        }
        if self.times.is_empty() {
            self.firing = false;
        }
    }

    /// The first failure still in the window.
    pub fn first(&self) -> Option<u64> {
        self.times.front().copied()
    }

    /// Whether nothing is in the window at `now`.
    pub fn is_idle(&mut self, now: u64, window_secs: u64) -> bool {
        self.expire(now, window_secs);
        self.times.is_empty()
    }
}

/// Burst thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BurstLimits {
    /// Window in seconds.
    pub window_secs: u64,
    /// Failures within the window that make a burst.
    pub limit: usize,
    /// Most keys tracked at once.
    pub max_keys: usize,
}

impl Default for BurstLimits {
    fn default() -> Self {
        BurstLimits {
            window_secs: 300,
            limit: 10,
            max_keys: 10_000,
        }
    }
}

/// One [`Burst`] per key (a credential, a source address), bounded in size.
#[derive(Clone, Debug, Default)]
pub struct Bursts {
    map: HashMap<String, Burst>,
}

impl Bursts {
    /// Records a failure for `key` at `now`; returns the window count and the first failure's
    /// time when it starts a burst.
    pub fn record(&mut self, key: &str, now: u64, limits: &BurstLimits) -> Option<(usize, u64)> {
        if !self.map.contains_key(key) && self.map.len() >= limits.max_keys {
            self.map.retain(|_, b| !b.is_idle(now, limits.window_secs));
            if self.map.len() >= limits.max_keys {
                // Still full of live counters: forget the one whose burst began earliest.
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, b)| b.first().unwrap_or(0))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        let b = self.map.entry(key.to_string()).or_default();
        let count = b.record(now, limits.window_secs, limits.limit)?;
        Some((count, b.first().unwrap_or(now)))
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What a burst was counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BurstBy {
    /// A credential's key.
    Credential,
    /// A source address.
    Source,
}

/// The finding for a burst of `count` failures (`what`, e.g. "failed authentications")
/// of `key` between `first` and `now`.
pub fn auth_failure_burst(
    by: BurstBy,
    key: &str,
    count: usize,
    first: u64,
    now: u64,
    limits: &BurstLimits,
    what: &str,
) -> Finding {
    let mut subject = Subject::default();
    let by_name = match by {
        BurstBy::Credential => {
            subject.credential = Some(key.to_string());
            "credential"
        }
        BurstBy::Source => {
            subject.source = Some(key.to_string());
            "source address"
        }
    };
    Finding {
        kind: AlertKind::AuthFailureBurst,
        severity: Severity::High,
        explanation: format!(
            "{count} {what} from {by_name} {key} within {} s",
            limits.window_secs
        ),
        evidence: json!({
            "by": by_name,
            "key": key,
            "count": count,
            "first_at": first,
            "last_at": now,
            "window_secs": limits.window_secs,
            "limit": limits.limit,
            "what": what,
        }),
        subject,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_when_the_limit_is_reached_within_the_window() {
        let mut b = Burst::default();
        for t in 0..4 {
            assert_eq!(b.record(100 + t, 60, 5), None);
        }
        assert_eq!(b.record(104, 60, 5), Some(5));
        assert_eq!(b.record(105, 60, 5), None, "one alert per burst");
        assert_eq!(b.record(106, 60, 5), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_fire() {
        let mut b = Burst::default();
        for i in 0..100 {
            assert_eq!(b.record(i * 15, 60, 5), None, "at most 4 per 60 s");
        }
    }

    #[test]
    fn the_window_boundary_is_exclusive_and_a_new_burst_fires_again() {
        let mut b = Burst::default();
        for t in [0, 1, 2, 3] {
            b.record(t, 60, 5);
        }
        // At 60 the failure at 0 has left the window: still 4.
        assert_eq!(b.record(60, 60, 5), None);
        assert_eq!(b.record(60, 60, 5), Some(5), "1, 2, 3, 60, 60");
        // At 61 the failure at 1 leaves too: the count is back to 4, but still the same burst.
        assert_eq!(b.record(61, 60, 5), None);
        // Quiet for a full window, then a new burst is a new alert.
        for t in 200..204 {
            assert_eq!(b.record(t, 60, 5), None);
        }
        assert_eq!(b.record(204, 60, 5), Some(5));
    }

    #[test]
    fn keys_are_counted_apart_and_bounded() {
        let limits = BurstLimits {
            window_secs: 60,
            limit: 3,
            max_keys: 4,
        };
        let mut m = Bursts::default();
        for i in 0..2 {
            assert!(m.record("a", i, &limits).is_none());
            assert!(m.record("b", i, &limits).is_none());
        }
        assert_eq!(m.record("a", 2, &limits), Some((3, 0)));
        for i in 0..100 {
            m.record(&format!("spray-{i}"), 3, &limits);
            assert!(m.len() <= limits.max_keys);
        }
    }

    #[test]
    fn the_finding_names_the_credential_or_source() {
        let l = BurstLimits::default();
        let f = auth_failure_burst(
            BurstBy::Source,
            "10.0.0.9",
            10,
            1,
            9,
            &l,
            "failed authentications",
        );
        assert_eq!(f.kind, AlertKind::AuthFailureBurst);
        assert_eq!(f.subject.source.as_deref(), Some("10.0.0.9"));
        assert_eq!(f.evidence["count"], 10);
        let g = auth_failure_burst(BurstBy::Credential, "ab12", 10, 1, 9, &l, "bad signatures");
        assert_eq!(g.subject.credential.as_deref(), Some("ab12"));
    }
}
