//! The signer's pool of CGGMP safe primes. Generating a set takes a minute or more of CPU,
//! so a signer starts generating in the background from its first start and keeps a few
//! sets sealed in its store; ECDSA key generation and refresh take one (deleting it before
//! use, so no set is ever used twice). Test builds may hand out the public test primes
//! instead (see `coffer_proto::primes`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use coffer_proto::primes::{PrimeSource, Primes};

use crate::store::ShareStore;

/// Sets kept ready.
pub const TARGET: usize = 2;

fn slot(i: usize) -> String {
    format!("primes-{i}")
}

/// The pool, shared by the generator thread and the session runner.
#[derive(Clone)]
pub struct PrimePool {
    source: PrimeSource,
    generating: Arc<AtomicBool>,
    lock: Arc<std::sync::Mutex<()>>,
}

impl Default for PrimePool {
    fn default() -> Self {
        PrimePool {
            source: PrimeSource::from_env(),
            generating: Arc::new(AtomicBool::new(false)),
            lock: Arc::new(std::sync::Mutex::new(())),
        }
    }
}

impl PrimePool {
    /// Sets ready now.
    pub fn ready(&self, store: &ShareStore) -> u32 {
        if !self.source.is_secure() {
            return u32::MAX;
        }
        (0..TARGET)
            .filter(|i| matches!(store.get_blob(&slot(*i)), Ok(Some(_))))
            .count() as u32
    }

    /// Whether the generator is working.
    pub fn generating(&self) -> bool {
        self.generating.load(Ordering::Relaxed)
    }

    /// Takes one set, removing it from the store first. `None` if none is ready.
    pub fn take(&self, store: &ShareStore) -> Option<Primes> {
        if !self.source.is_secure() {
            return self.source.take(1).ok()?.pop();
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        for i in 0..TARGET {
            let Ok(Some(bytes)) = store.get_blob(&slot(i)) else {
                continue;
            };
            if store.delete_blob(&slot(i)).is_err() {
                return None;
            }
            match ciborium::from_reader::<Primes, _>(&bytes[..]) {
                Ok(p) => return Some(p),
                Err(_) => tracing::warn!("a stored prime set does not decode; discarded"),
            }
        }
        None
    }

    /// Fills empty slots, one set at a time, on this thread (call it from a background
    /// thread). Logs progress.
    pub fn fill(&self, store: &ShareStore) {
        if !self.source.is_secure() {
            return;
        }
        self.generating.store(true, Ordering::Relaxed);
        for i in 0..TARGET {
            if matches!(store.get_blob(&slot(i)), Ok(Some(_))) {
                continue;
            }
            tracing::info!(
                "generating CGGMP safe primes (set {} of {TARGET}); this takes a minute or two",
                i + 1
            );
            let started = std::time::Instant::now();
            let Some(primes) = self.source.take(1).ok().and_then(|mut v| v.pop()) else {
                break;
            };
            let mut bytes = zeroize::Zeroizing::new(Vec::new());
            if ciborium::into_writer(&primes, &mut *bytes).is_err() {
                break;
            }
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = store.put_blob(&slot(i), &bytes) {
                tracing::warn!("cannot store safe primes: {e}");
                break;
            }
            tracing::info!(
                "safe primes ready (set {} of {TARGET}, {:.0} s)",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
        self.generating.store(false, Ordering::Relaxed);
    }
}
