//! Request rate limits: a token bucket per credential key (the `x-coffer-key` header, before
//! authentication, so floods of bad signatures are limited too) and per source address for
//! requests without one. Over the limit the API answers 429 with a JSON error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Requests per second and burst size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Sustained requests per second per caller.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 200.0,
            burst: 400.0,
        }
    }
}

/// Token buckets by caller.
#[derive(Clone)]
pub struct RateLimiter {
    limits: Limits,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

/// Most callers tracked at once (the oldest are forgotten beyond it).
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one token for `caller`; false when the caller is over its limit.
    pub fn allow(&self, caller: &str) -> bool {
        self.allow_at(caller, Instant::now())
    }

    fn allow_at(&self, caller: &str, now: Instant) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_TRACKED && !b.contains_key(caller) {
            let limits = self.limits;
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * limits.per_second < limits.burst
            });
        }
        let (tokens, at) = b
            .entry(caller.to_string())
            .or_insert((self.limits.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.limits.per_second)
            .min(self.limits.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_caller() {
        let r = RateLimiter::new(Limits {
            per_second: 10.0,
            burst: 5.0,
        });
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(r.allow_at("a", t0));
        }
        assert!(!r.allow_at("a", t0));
        assert!(r.allow_at("b", t0), "callers are limited separately");
        assert!(r.allow_at("a", t0 + Duration::from_millis(150)));
        assert!(!r.allow_at("a", t0 + Duration::from_millis(150)));
    }
}
