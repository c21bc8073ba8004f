//! Sample collection and summary statistics (median, min, max, p99 where there are at least
//! 100 samples).

use std::time::{Duration, Instant};

/// How many samples to take of one operation.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Stop after this many samples.
    pub max_samples: usize,
    /// Or once this much time has been spent (but never before `min_samples`).
    pub time: Duration,
    /// Always take at least this many.
    pub min_samples: usize,
}

/// Times `f` repeatedly within `budget`.
pub fn sample(budget: Budget, mut f: impl FnMut()) -> Vec<Duration> {
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < budget.max_samples
        && (out.len() < budget.min_samples || started.elapsed() < budget.time)
    {
        let t = Instant::now();
        f();
        out.push(t.elapsed());
    }
    out
}

/// Summary of a set of samples.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Median in milliseconds.
    pub median_ms: f64,
    /// Fastest sample in milliseconds.
    pub min_ms: f64,
    /// Slowest sample in milliseconds.
    pub max_ms: f64,
    /// 99th percentile in milliseconds, only with at least 100 samples.
    pub p99_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Summarizes samples (`None` when there are none).
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut s = samples.to_vec();
    s.sort();
    let n = s.len();
    let median = match n {
        0 => return None,
        n if n % 2 == 1 => ms(s[n / 2]),
        n => (ms(s[n / 2 - 1]) + ms(s[n / 2])) / 2.0,
    };
    Some(Summary {
        samples: n,
        median_ms: median,
        min_ms: ms(s[0]),
        max_ms: ms(s[n - 1]),
        p99_ms: (n >= 100).then(|| ms(s[(n * 99).div_ceil(100) - 1])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99_follow_their_definitions() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!(s.median_ms, 50.5);
        assert_eq!(s.p99_ms, Some(99.0));
        assert_eq!((s.min_ms, s.max_ms), (1.0, 100.0));
        assert!(summarize(&samples[..99]).unwrap().p99_ms.is_none());
        assert!(summarize(&[]).is_none());
    }
}
