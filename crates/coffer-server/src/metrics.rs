//! Prometheus metrics at `/metrics`, in the text exposition format: requests per route and
//! status, refused authentications, transaction state changes, signer refusals, alerts raised, signing
//! latency (a histogram), connected signers. Kept by hand with atomics and one mutex: a
//! handful of series does not need a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the signing latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    transactions: Mutex<BTreeMap<String, u64>>,
    auth_refused: AtomicU64,
    signer_refusals: AtomicU64,
    audit_broken: AtomicU64,
    alerts_raised: AtomicU64,
    signing_buckets: [AtomicU64; BUCKETS.len()],
    signing_count: AtomicU64,
    signing_micros: AtomicU64,
}

/// The server's metrics (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// Counts a served request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let mut m = self.0.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Counts a request entering `state`.
    pub fn transaction(&self, state: &str) {
        let mut m = self
            .0
            .transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *m.entry(state.to_string()).or_default() += 1;
    }

    /// Counts a refused authentication.
    pub fn auth_refused(&self) {
        self.0.auth_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a signer's refusal.
    pub fn signer_refusal(&self) {
        self.0.signer_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed audit verification.
    pub fn audit_broken(&self) {
        self.0.audit_broken.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a raised alert.
    pub fn alert_raised(&self) {
        self.0.alerts_raised.fetch_add(1, Ordering::Relaxed);
    }

    /// Alerts raised so far.
    pub fn alerts_raised(&self) -> u64 {
        self.0.alerts_raised.load(Ordering::Relaxed)
    }

    /// Records one signing's latency.
    pub fn signed(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.0.signing_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.0.signing_count.fetch_add(1, Ordering::Relaxed);
        self.0
            .signing_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text; `signers_connected` is read from the hub by the caller.
    pub fn render(&self, signers_connected: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP coffer_http_requests_total API requests served."
        );
        let _ = writeln!(out, "# TYPE coffer_http_requests_total counter");
        for ((method, route, status), n) in self
            .0
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "coffer_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP coffer_transactions_total Transaction requests entering each state."
        );
        let _ = writeln!(out, "# TYPE coffer_transactions_total counter");
        for (state, n) in self
            .0
            .transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "coffer_transactions_total{{state=\"{state}\"}} {n}");
        }
        for (name, help, v) in [
            (
                "coffer_auth_refused_total",
                "Refused request authentications.",
                &self.0.auth_refused,
            ),
            (
                "coffer_signer_refusals_total",
                "Signing jobs a signer refused.",
                &self.0.signer_refusals,
            ),
            (
                "coffer_audit_verification_failures_total",
                "Audit chain verifications that failed.",
                &self.0.audit_broken,
            ),
            (
                "coffer_alerts_raised_total",
                "Alerts raised by the detectors.",
                &self.0.alerts_raised,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP coffer_signing_seconds Time from proposing a signing to its stored result."
        );
        let _ = writeln!(out, "# TYPE coffer_signing_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "coffer_signing_seconds_bucket{{le=\"{b}\"}} {}",
                self.0.signing_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.0.signing_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "coffer_signing_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "coffer_signing_seconds_sum {}",
            self.0.signing_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "coffer_signing_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP coffer_signers_connected Signers connected now."
        );
        let _ = writeln!(out, "# TYPE coffer_signers_connected gauge");
        let _ = writeln!(out, "coffer_signers_connected {signers_connected}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Metrics::default();
        m.request("GET", "/v1/vaults", 200);
        m.transaction("signed");
        m.signed(Duration::from_millis(30));
        m.auth_refused();
        let text = m.render(3);
        assert!(text.contains(
            "coffer_http_requests_total{method=\"GET\",route=\"/v1/vaults\",status=\"200\"} 1"
        ));
        assert!(text.contains("coffer_transactions_total{state=\"signed\"} 1"));
        assert!(text.contains("coffer_signing_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("coffer_signing_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("coffer_auth_refused_total 1"));
        assert!(text.contains("coffer_signers_connected 3"));
    }
}
