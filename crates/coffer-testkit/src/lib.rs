//! Test helpers shared by Coffer's test suites: runs whole groups in one process, and
//! enables the public test prime pool (`insecure-test-primes`) for the test build only.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a test failure

use coffer_proto::ceremony;
use coffer_proto::primes::PrimeSource;
use coffer_proto::{GroupParams, KeyShare, Scheme};

/// The public test prime pool (never for real keys).
pub fn test_primes() -> PrimeSource {
    PrimeSource::InsecureTestPool
}

/// Runs an offline DKG for `scheme` at `t`-of-`n` with test primes.
pub fn keygen(scheme: Scheme, t: u16, n: u16) -> Vec<KeyShare> {
    ceremony::keygen(scheme, GroupParams::new(t, n).unwrap(), test_primes()).unwrap()
}

/// Every `t`-subset of `0..n`, in lexicographic order.
pub fn subsets(n: usize, t: usize) -> Vec<Vec<usize>> {
    fn go(start: usize, n: usize, t: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == t {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            cur.push(i);
            go(i + 1, n, t, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    go(0, n, t, &mut Vec::new(), &mut out);
    out
}
