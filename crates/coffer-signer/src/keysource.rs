//! Where the share store's key comes from. The store asks a [`KeySource`] once, when it
//! opens, for the 32-byte key that seals every file it writes; this module owns that trait
//! and its two local implementations:
//!
//! - [`PassphraseSource`]: Argon2id over an operator passphrase (at least
//!   [`MIN_PASSPHRASE_CHARS`] characters) and the store's random salt;
//! - [`KeyFileSource`]: a file of 32 random bytes, mode 0600, which *is* the key.
//!
//! A KMS- or HSM-backed source implements the same trait (unwrapping a data key kept next to
//! the store, say) without the store changing. Secrets live in [`Zeroizing`] buffers and are
//! never printed.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::store::{self, StoreError};

/// Length of the store key in bytes.
pub const KEY_LEN: usize = 32;

/// Shortest passphrase accepted, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The environment variable [`PassphraseSource::from_env`] reads.
pub const PASSPHRASE_ENV: &str = "COFFER_PASSPHRASE";

/// Supplies the share store's key.
pub trait KeySource: Send + Sync {
    /// A label for messages ("passphrase", "key file /path"); never contains secrets.
    fn describe(&self) -> String;

    /// The 32-byte store key for a store with this `salt`. Called once when the store opens
    /// (or is created). A source that does not need the salt may ignore it.
    fn store_key(&self, salt: &[u8; 16]) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError>;
}

/// Argon2id cost parameters of a [`PassphraseSource`]. The store does not record them: a
/// store must be opened with the cost it was created with (any other cost opens it as a
/// wrong passphrase would, with [`StoreError::WrongKey`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism (lanes).
    pub p_cost: u32,
}

impl Argon2Cost {
    /// The production cost: 64 MiB, 3 iterations, 1 lane.
    pub const DEFAULT: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// The cheapest cost Argon2 accepts (8 KiB, 1 iteration, 1 lane). For tests only: it
    /// offers no protection against guessing.
    pub const INSECURE_TEST: Self = Self {
        m_cost_kib: 8,
        t_cost: 1,
        p_cost: 1,
    };

    fn params(&self) -> Result<argon2::Params, StoreError> {
        argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| StoreError::Kdf(e.to_string()))
    }
}

impl Default for Argon2Cost {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The store key derived from an operator passphrase with Argon2id and the store's salt.
pub struct PassphraseSource {
    passphrase: Zeroizing<String>,
    params: argon2::Params,
}

impl core::fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PassphraseSource(<redacted>)")
    }
}

impl PassphraseSource {
    /// A passphrase source with the production cost ([`Argon2Cost::DEFAULT`]). Refuses a
    /// passphrase shorter than [`MIN_PASSPHRASE_CHARS`] characters.
    pub fn new(passphrase: Zeroizing<String>) -> Result<Self, StoreError> {
        Self::with_params(passphrase, Argon2Cost::DEFAULT)
    }

    /// A passphrase source with another Argon2id cost (tests use
    /// [`Argon2Cost::INSECURE_TEST`]). Same passphrase rule as [`PassphraseSource::new`].
    pub fn with_params(
        passphrase: Zeroizing<String>,
        cost: Argon2Cost,
    ) -> Result<Self, StoreError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(StoreError::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
            });
        }
        Ok(Self {
            passphrase,
            params: cost.params()?,
        })
    }

    /// Reads the passphrase from `COFFER_PASSPHRASE` (production cost).
    pub fn from_env() -> Result<Self, StoreError> {
        match std::env::var(PASSPHRASE_ENV) {
            Ok(p) => Self::new(Zeroizing::new(p)),
            Err(_) => Err(StoreError::MissingPassphrase),
        }
    }
}

impl KeySource for PassphraseSource {
    fn describe(&self) -> String {
        "passphrase".into()
    }

    fn store_key(&self, salt: &[u8; 16]) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.clone(),
        );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(self.passphrase.as_bytes(), salt, &mut *key)
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        Ok(key)
    }
}

/// The store key read from a key file: exactly 32 random bytes, readable by its owner only
/// (a file that group or others may access is refused, as ssh refuses such a private key).
/// The salt is ignored: the file's bytes are the key.
#[derive(Clone, Debug)]
pub struct KeyFileSource {
    path: PathBuf,
}

impl KeyFileSource {
    /// Creates a new key file at `path` (mode 0600) with 32 random bytes. Refuses to
    /// overwrite an existing file ([`StoreError::Exists`]).
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut *key);
        let mut file = match store::create_new_private(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let written = file
            .write_all(&*key)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io(path, e));
        if let Err(e) = written {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(e);
        }
        store::sync_parent(path)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// A source reading the existing key file at `path`. Nothing is read until the store
    /// asks for the key.
    pub fn open(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn refuse(&self, reason: &'static str) -> StoreError {
        StoreError::KeyFile {
            path: self.path.clone(),
            reason,
        }
    }
}

impl KeySource for KeyFileSource {
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    fn store_key(&self, _salt: &[u8; 16]) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let mut file = fs::File::open(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let meta = file.metadata().map_err(|e| StoreError::io(&self.path, e))?;
        if !meta.is_file() {
            return Err(self.refuse("is not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(
                    self.refuse("is accessible to group or others; restrict it with `chmod 600`")
                );
            }
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(self.refuse("must hold exactly 32 bytes"));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(&mut *key)
            .map_err(|e| StoreError::io(&self.path, e))?;
        let mut extra = [0u8; 1];
        let more = file
            .read(&mut extra)
            .map_err(|e| StoreError::io(&self.path, e))?;
        if more != 0 {
            return Err(self.refuse("must hold exactly 32 bytes"));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(tag: &str) -> PathBuf {
        let mut r = [0u8; 8];
        OsRng.fill_bytes(&mut r);
        std::env::temp_dir().join(format!("coffer-keysource-{tag}-{}", hex::encode(r)))
    }

    #[test]
    fn short_passphrase_is_refused() {
        let short = PassphraseSource::new(Zeroizing::new("elevenchars".into()));
        assert!(matches!(short, Err(StoreError::WeakPassphrase { min: 12 })));
        // Characters, not bytes: 11 two-byte characters are still too short.
        let wide = PassphraseSource::new(Zeroizing::new("é".repeat(11)));
        assert!(matches!(wide, Err(StoreError::WeakPassphrase { .. })));
        assert!(PassphraseSource::new(Zeroizing::new("twelve chars".into())).is_ok());
    }

    #[test]
    fn bad_cost_is_refused() {
        let cost = Argon2Cost {
            m_cost_kib: 1,
            t_cost: 1,
            p_cost: 1,
        };
        let r = PassphraseSource::with_params(Zeroizing::new("a long passphrase".into()), cost);
        assert!(matches!(r, Err(StoreError::Kdf(_))));
    }

    #[test]
    fn passphrase_key_depends_on_passphrase_and_salt() {
        let cheap = Argon2Cost::INSECURE_TEST;
        let a = PassphraseSource::with_params(Zeroizing::new("a long passphrase".into()), cheap)
            .unwrap();
        let b = PassphraseSource::with_params(Zeroizing::new("another passphrase".into()), cheap)
            .unwrap();
        let k1 = a.store_key(&[1; 16]).unwrap();
        assert_eq!(*k1, *a.store_key(&[1; 16]).unwrap());
        assert_ne!(*k1, *a.store_key(&[2; 16]).unwrap());
        assert_ne!(*k1, *b.store_key(&[1; 16]).unwrap());
    }

    #[test]
    fn debug_and_describe_hide_the_passphrase() {
        let s = PassphraseSource::new(Zeroizing::new("correct horse battery".into())).unwrap();
        assert!(!format!("{s:?}").contains("horse"));
        assert_eq!(s.describe(), "passphrase");
    }

    #[test]
    fn key_file_round_trip_and_refusals() {
        let path = temp_path("kf");
        let created = KeyFileSource::create(&path).unwrap();
        let key = created.store_key(&[0; 16]).unwrap();
        // The salt is ignored; the file is the key.
        assert_eq!(
            *key,
            *KeyFileSource::open(&path).store_key(&[9; 16]).unwrap()
        );
        assert!(created.describe().contains(&path.display().to_string()));
        assert!(matches!(
            KeyFileSource::create(&path),
            Err(StoreError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let open = KeyFileSource::open(&path).store_key(&[0; 16]);
            assert!(matches!(open, Err(StoreError::KeyFile { .. })));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // Wrong length.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"x").unwrap();
        drop(f);
        let open = KeyFileSource::open(&path).store_key(&[0; 16]);
        assert!(matches!(open, Err(StoreError::KeyFile { .. })));
        fs::remove_file(&path).unwrap();
        // Missing.
        let open = KeyFileSource::open(&path).store_key(&[0; 16]);
        assert!(matches!(open, Err(StoreError::Io { .. })));
    }
}
