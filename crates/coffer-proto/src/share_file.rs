//! Share files: a self-describing JSON document with the share's public header in clear
//! text, authenticated as associated data, and the secret part encrypted with
//! XChaCha20-Poly1305 under a key derived from a passphrase with Argon2id. Plaintext shares
//! are never written.
//!
//! ```json
//! {"format":"coffer-share","version":1,"header":{...},
//!  "kdf":{"name":"argon2id","m_cost_kib":19456,"t_cost":2,"p_cost":1,"salt":"<hex>"},
//!  "cipher":{"name":"xchacha20poly1305","nonce":"<hex>"},"ciphertext":"<hex>"}
//! ```

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::share::{KeyShare, ShareDecodeError, ShareHeader};

/// The `format` field of every share file.
pub const FORMAT: &str = "coffer-share";
/// The file version written by this build.
pub const VERSION: u32 = 1;
/// Largest share file read (a CGGMP share with auxiliary data is tens of kilobytes).
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Argon2id cost parameters. The defaults follow OWASP's minimum recommendation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    fn check(&self) -> Result<(), ShareFileError> {
        let ok = (8 * 1024..=1024 * 1024).contains(&self.m_cost_kib)
            && (1..=16).contains(&self.t_cost)
            && (1..=8).contains(&self.p_cost);
        if ok {
            Ok(())
        } else {
            Err(ShareFileError::KdfParams)
        }
    }
}

/// A passphrase, wiped from memory when dropped. Never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a non-empty passphrase.
    pub fn new(p: String) -> Result<Self, ShareFileError> {
        let p = Zeroizing::new(p);
        if p.is_empty() {
            return Err(ShareFileError::EmptyPassphrase);
        }
        Ok(Self(p))
    }

    /// Reads `COFFER_PASSPHRASE`; unset or empty is an error.
    pub fn from_env() -> Result<Self, ShareFileError> {
        match std::env::var("COFFER_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Self::new(p),
            Ok(_) => Err(ShareFileError::EmptyPassphrase),
            Err(_) => Err(ShareFileError::MissingPassphrase),
        }
    }
}

impl core::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Why a share file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareFileError {
    /// `COFFER_PASSPHRASE` is not set.
    #[error("COFFER_PASSPHRASE is not set: share files are always encrypted")]
    MissingPassphrase,
    /// `COFFER_PASSPHRASE` is empty.
    #[error("COFFER_PASSPHRASE is empty: share files are always encrypted")]
    EmptyPassphrase,
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Refusing to overwrite.
    #[error("{0} already exists; refusing to overwrite a share")]
    Exists(String),
    /// Larger than [`MAX_FILE_SIZE`].
    #[error("file is too large to be a share file")]
    TooLarge,
    /// Not JSON of the expected shape.
    #[error("not a Coffer share file: {0}")]
    Malformed(String),
    /// Wrong `format` or `version`.
    #[error("unsupported share file (format {format:?}, version {version})")]
    Unsupported {
        /// The format field.
        format: String,
        /// The version field.
        version: u32,
    },
    /// KDF parameters out of the accepted range.
    #[error("share file has out-of-range key-derivation parameters")]
    KdfParams,
    /// Authentication failed: wrong passphrase, or the file was altered.
    #[error("cannot decrypt the share: wrong passphrase, or the file was altered")]
    Decrypt,
    /// The decrypted share is invalid or disagrees with the header.
    #[error(transparent)]
    Share(#[from] ShareDecodeError),
    /// Encoding failure (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    format: String,
    version: u32,
    header: ShareHeader,
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

/// The associated data: everything in the file except the nonce and ciphertext, in a
/// canonical encoding (struct field order, lowercase hex).
#[derive(Serialize)]
struct Aad<'a> {
    format: &'a str,
    version: u32,
    header: &'a ShareHeader,
    kdf_name: &'a str,
    kdf_params: KdfParams,
    salt: &'a str,
    cipher: &'a str,
}

fn derive_key(
    pass: &Passphrase,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, ShareFileError> {
    params.check()?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
            .map_err(|_| ShareFileError::KdfParams)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pass.0.as_bytes(), salt, &mut *key)
        .map_err(|_| ShareFileError::KdfParams)?;
    Ok(key)
}

fn aad(file_header: &ShareHeader, kdf: &Kdf, cipher: &str) -> Result<Vec<u8>, ShareFileError> {
    let salt = kdf.salt.to_ascii_lowercase();
    serde_json::to_vec(&Aad {
        format: FORMAT,
        version: VERSION,
        header: file_header,
        kdf_name: &kdf.name,
        kdf_params: kdf.params,
        salt: &salt,
        cipher,
    })
    .map_err(|_| ShareFileError::Internal("associated data does not encode"))
}

/// Encrypts `share` into the bytes of a share file.
pub fn seal(
    share: &KeyShare,
    pass: &Passphrase,
    params: KdfParams,
) -> Result<Vec<u8>, ShareFileError> {
    let header = share
        .header()
        .map_err(|_| ShareFileError::Internal("share has no header"))?;
    let mut salt = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let kdf = Kdf {
        name: "argon2id".into(),
        params,
        salt: hex::encode(salt),
    };
    let cipher_name = "xchacha20poly1305";
    let key = derive_key(pass, &salt, params)?;
    let aad = aad(&header, &kdf, cipher_name)?;
    let secret = share
        .encode_secret()
        .map_err(|_| ShareFileError::Internal("share does not encode"))?;
    let ciphertext = XChaCha20Poly1305::new((&*key).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &secret,
                aad: &aad,
            },
        )
        .map_err(|_| ShareFileError::Internal("encryption failed"))?;
    let file = FileV1 {
        format: FORMAT.into(),
        version: VERSION,
        header,
        kdf,
        cipher: Cipher {
            name: cipher_name.into(),
            nonce: hex::encode(nonce),
        },
        ciphertext: hex::encode(ciphertext),
    };
    let mut out = serde_json::to_vec_pretty(&file)
        .map_err(|_| ShareFileError::Internal("file does not encode"))?;
    out.push(b'\n');
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<FileV1, ShareFileError> {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
        version: Option<u32>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| ShareFileError::Malformed(e.to_string()))?;
    let (format, version) = (probe.format.unwrap_or_default(), probe.version.unwrap_or(0));
    if format != FORMAT || version != VERSION {
        return Err(ShareFileError::Unsupported {
            format: format.chars().take(64).collect(),
            version,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| ShareFileError::Malformed(e.to_string()))
}

/// Reads only the public header of share-file bytes (no passphrase needed). The header is
/// authenticated only when the file is opened with [`open`].
pub fn read_header(bytes: &[u8]) -> Result<ShareHeader, ShareFileError> {
    Ok(parse(bytes)?.header)
}

/// Decrypts and validates share-file bytes.
pub fn open(bytes: &[u8], pass: &Passphrase) -> Result<KeyShare, ShareFileError> {
    let file = parse(bytes)?;
    if file.kdf.name != "argon2id" || file.cipher.name != "xchacha20poly1305" {
        return Err(ShareFileError::Unsupported {
            format: format!("{}/{}", file.kdf.name, file.cipher.name)
                .chars()
                .take(64)
                .collect(),
            version: file.version,
        });
    }
    let salt = hex::decode(&file.kdf.salt)
        .map_err(|_| ShareFileError::Malformed("salt is not hex".into()))?;
    if salt.len() < 16 {
        return Err(ShareFileError::Malformed(
            "salt is shorter than 16 bytes".into(),
        ));
    }
    let nonce = hex::decode(&file.cipher.nonce)
        .map_err(|_| ShareFileError::Malformed("nonce is not hex".into()))?;
    if nonce.len() != 24 {
        return Err(ShareFileError::Malformed("nonce must be 24 bytes".into()));
    }
    let ciphertext = hex::decode(&file.ciphertext)
        .map_err(|_| ShareFileError::Malformed("ciphertext is not hex".into()))?;
    let key = derive_key(pass, &salt, file.kdf.params)?;
    let aad = aad(&file.header, &file.kdf, &file.cipher.name)?;
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new((&*key).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| ShareFileError::Decrypt)?,
    );
    let share = KeyShare::decode_secret(&plain)?;
    share.check_header(&file.header)?;
    Ok(share)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShareFileError + '_ {
    move |source| ShareFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a file of at most [`MAX_FILE_SIZE`] bytes.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, ShareFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_FILE_SIZE {
        return Err(ShareFileError::TooLarge);
    }
    std::fs::read(path).map_err(io(path))
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory), refusing to replace an existing file.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ShareFileError> {
    if path.exists() {
        return Err(ShareFileError::Exists(path.display().to_string()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| ShareFileError::Malformed("path has no file name".into()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    // Hard-link then unlink: unlike rename, linking fails if the target appeared meanwhile.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ShareFileError::Exists(path.display().to_string())
        } else {
            ShareFileError::Io {
                path: path.display().to_string(),
                source: e,
            }
        }
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
