//! Request authentication: every API request is signed by the caller's Ed25519 credential
//! over the method, path, body hash, a timestamp and a nonce. The server accepts a request
//! only within a short window around its clock and only once per nonce. Who a key is (a
//! platform operator, a tenant's credential) is decided by the custody layer
//! ([`crate::custody::caller`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use coffer_net::{Identity, NodeKey};

/// Header carrying the credential's public key (hex).
pub const KEY: &str = "x-coffer-key";
/// Header carrying the Unix time in seconds.
pub const TIMESTAMP: &str = "x-coffer-timestamp";
/// Header carrying a random nonce (hex, 16 bytes).
pub const NONCE: &str = "x-coffer-nonce";
/// Header carrying the Ed25519 signature (hex).
pub const SIGNATURE: &str = "x-coffer-signature";
/// How far a request's timestamp may be from the server's clock.
pub const WINDOW_SECS: i64 = 120;

/// The bytes a request signature covers.
pub fn signing_bytes(
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> Vec<u8> {
    format!(
        "coffer-request-v1\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        hex::encode(Sha256::digest(body)),
        timestamp,
        nonce
    )
    .into_bytes()
}

/// Headers for a request signed by `credential`.
pub fn sign_request(
    credential: &Identity,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let timestamp = crate::db::unix_now();
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let nonce = hex::encode(nonce);
    let sig = credential.sign(&signing_bytes(method, path, body, timestamp, &nonce));
    vec![
        (KEY, credential.node_key().to_hex()),
        (TIMESTAMP, timestamp.to_string()),
        (NONCE, nonce),
        (SIGNATURE, hex::encode(sig)),
    ]
}

/// Why a request was not authenticated (safe to show the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or malformed.
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    /// The key is not a credential of this server.
    #[error("unknown credential")]
    UnknownKey,
    /// The credential was disabled.
    #[error("this credential is disabled")]
    Disabled,
    /// The timestamp is outside the window.
    #[error("request timestamp is more than {WINDOW_SECS} s from the server's clock")]
    Stale,
    /// The nonce was used before.
    #[error("replayed request (nonce already used)")]
    Replay,
    /// The signature does not verify.
    #[error("bad request signature")]
    BadSignature,
}

/// A request whose signature verified (the credential is not looked up yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The key that signed.
    pub key: NodeKey,
    /// Its timestamp.
    pub timestamp: i64,
    /// Its nonce.
    pub nonce: String,
}

/// Checks request signatures and remembers nonces for the window.
#[derive(Clone, Default)]
pub struct Verifier {
    seen: Arc<Mutex<HashMap<(NodeKey, String), i64>>>,
}

impl Verifier {
    /// A verifier with no nonce seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the headers, the window and the signature (nothing is remembered yet: the
    /// caller looks the key up, then spends the nonce with [`Verifier::spend_nonce`], so an
    /// unknown key cannot fill the nonce memory).
    pub fn verify_signature(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<Signed, AuthError> {
        let key: NodeKey = header(KEY)
            .and_then(|v| v.parse().ok())
            .ok_or(AuthError::Header(KEY))?;
        let timestamp: i64 = header(TIMESTAMP)
            .and_then(|v| v.parse().ok())
            .ok_or(AuthError::Header(TIMESTAMP))?;
        let nonce = header(NONCE)
            .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(AuthError::Header(NONCE))?;
        let mut sig = [0u8; 64];
        header(SIGNATURE)
            .and_then(|v| hex::decode_to_slice(v, &mut sig).ok())
            .ok_or(AuthError::Header(SIGNATURE))?;
        let now = crate::db::unix_now();
        if (now - timestamp).abs() > WINDOW_SECS {
            return Err(AuthError::Stale);
        }
        key.verify(&signing_bytes(method, path, body, timestamp, &nonce), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(Signed {
            key,
            timestamp,
            nonce,
        })
    }

    /// Spends a verified request's nonce: a second use within the window is a replay.
    pub fn spend_nonce(&self, signed: &Signed) -> Result<(), AuthError> {
        let now = crate::db::unix_now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| (now - *t).abs() <= 2 * WINDOW_SECS);
        if seen
            .insert((signed.key, signed.nonce.clone()), signed.timestamp)
            .is_some()
        {
            return Err(AuthError::Replay);
        }
        Ok(())
    }

    /// Checks one request from one of `credentials`: signature, window, then the nonce.
    pub fn check(
        &self,
        credentials: &[NodeKey],
        method: &str,
        path: &str,
        body: &[u8],
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<NodeKey, AuthError> {
        let signed = self.verify_signature(method, path, body, header)?;
        if !credentials.contains(&signed.key) {
            return Err(AuthError::UnknownKey);
        }
        self.spend_nonce(&signed)?;
        Ok(signed.key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_requests_verify_once_and_bind_every_field() {
        let admin = Identity::generate("admin");
        let v = Verifier::new();
        let creds = vec![admin.node_key()];
        let headers = sign_request(&admin, "POST", "/v1/keys", b"{}");
        let get = |h: &[(&'static str, String)]| {
            let h = h.to_vec();
            move |name: &str| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        };
        assert_eq!(
            v.check(&creds, "POST", "/v1/keys", b"{}", get(&headers)),
            Ok(admin.node_key())
        );
        assert_eq!(
            v.check(&creds, "POST", "/v1/keys", b"{}", get(&headers)),
            Err(AuthError::Replay)
        );
        let headers = sign_request(&admin, "POST", "/v1/keys", b"{}");
        assert_eq!(
            v.check(&creds, "POST", "/v1/keys", b"{ }", get(&headers)),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.check(&creds, "POST", "/v1/other", b"{}", get(&headers)),
            Err(AuthError::BadSignature)
        );
        let stranger = Identity::generate("x");
        let headers = sign_request(&stranger, "POST", "/v1/keys", b"{}");
        assert_eq!(
            v.check(&creds, "POST", "/v1/keys", b"{}", get(&headers)),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            v.check(&creds, "GET", "/", b"", |_| None),
            Err(AuthError::Header(KEY))
        );
    }
}
