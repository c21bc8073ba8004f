//! Safe primes for CGGMP's Paillier keys and ring-Pedersen parameters. Generating them takes
//! one to two minutes per party, so it happens off the signing path: once per party when its
//! auxiliary data is made, never while signing.
//!
//! Test builds may enable the `insecure-test-primes` feature, which hands out primes from a
//! fixed file in `test-data/` instead. Those primes are public: a key whose auxiliary data
//! uses them is not secure. No release build carries the feature (CI checks it).

use cggmp24::security_level::SecurityLevel128;
use cggmp24::PregeneratedPrimes;

use crate::error::ArgumentError;

/// The primes one party needs for one run of auxiliary-data generation.
pub type Primes = PregeneratedPrimes<SecurityLevel128>;

/// Where a party's primes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimeSource {
    /// Generate fresh safe primes with the operating system's randomness (slow).
    Generate,
    /// Take them from the public test pool (only in builds with `insecure-test-primes`).
    #[cfg(feature = "insecure-test-primes")]
    InsecureTestPool,
}

impl PrimeSource {
    /// The source for this build: the test pool when the feature is on and the environment
    /// variable `COFFER_INSECURE_TEST_PRIMES=1` asks for it, else generation.
    pub fn from_env() -> Self {
        #[cfg(feature = "insecure-test-primes")]
        if std::env::var("COFFER_INSECURE_TEST_PRIMES").as_deref() == Ok("1") {
            return PrimeSource::InsecureTestPool;
        }
        PrimeSource::Generate
    }

    /// Whether these primes are secret (false for the public test pool).
    pub fn is_secure(self) -> bool {
        match self {
            PrimeSource::Generate => true,
            #[cfg(feature = "insecure-test-primes")]
            PrimeSource::InsecureTestPool => false,
        }
    }

    /// Primes for `count` parties, distinct from each other. Generation runs on all cores.
    pub fn take(self, count: usize) -> Result<Vec<Primes>, ArgumentError> {
        match self {
            PrimeSource::Generate => Ok(generate_parallel(count)),
            #[cfg(feature = "insecure-test-primes")]
            PrimeSource::InsecureTestPool => test_pool::take(count),
        }
    }
}

fn generate_parallel(count: usize) -> Vec<Primes> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, count.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= count {
                    break;
                }
                let primes = Primes::generate(&mut rand_core::OsRng);
                if let Ok(mut r) = results.lock() {
                    r.push(primes);
                }
            });
        }
    });
    results.into_inner().unwrap_or_default()
}

#[cfg(feature = "insecure-test-primes")]
mod test_pool {
    use super::Primes;
    use crate::error::ArgumentError;
    use cggmp24::backend::Integer;

    const POOL: &str = include_str!("../../../test-data/safe-primes-1536.hex");

    fn sets() -> Result<Vec<[Integer; 4]>, ArgumentError> {
        let numbers: Vec<Integer> = POOL
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Integer::from_str_radix(l.trim(), 16))
            .collect::<Option<_>>()
            .ok_or(ArgumentError::Primes {
                reason: "test pool holds a line that is not hex",
            })?;
        Ok(numbers
            .chunks_exact(4)
            .map(|c| [c[0].clone(), c[1].clone(), c[2].clone(), c[3].clone()])
            .collect())
    }

    /// `count` distinct sets starting at a random position, so that separate processes (a
    /// keygen, then a refresh) are unlikely to get the same primes.
    pub(super) fn take(count: usize) -> Result<Vec<Primes>, ArgumentError> {
        let sets = sets()?;
        if count > sets.len() {
            return Err(ArgumentError::Primes {
                reason: "test pool has fewer sets than parties",
            });
        }
        let start = (rand_core::RngCore::next_u32(&mut rand_core::OsRng) as usize) % sets.len();
        (0..count)
            .map(|k| {
                Primes::try_from(sets[(start + k) % sets.len()].clone()).map_err(|_| {
                    ArgumentError::Primes {
                        reason: "test pool primes are too small",
                    }
                })
            })
            .collect()
    }
}

/// Whether this build can hand out the public test primes (CI checks the release binary
/// says `false`).
pub const TEST_POOL_COMPILED_IN: bool = cfg!(feature = "insecure-test-primes");
