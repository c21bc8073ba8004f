//! Shared test helpers: a test-only secp256k1 key standing in for the threshold signers.
// Tests: a panic is a failed test, so unwrap/expect are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

/// A throwaway key (never a real vault key).
pub fn test_key() -> (SecretKey, PublicKey) {
    let sk = SecretKey::from_slice(&[0x42; 32]).unwrap();
    (sk, PublicKey::from_secret_key(SECP256K1, &sk))
}

/// Signs a digest like the threshold signers do: low-S, recovery id from libsecp256k1.
pub fn sign(sk: &SecretKey, digest: [u8; 32]) -> ([u8; 64], u8) {
    let sig = SECP256K1.sign_ecdsa_recoverable(&Message::from_digest(digest), sk);
    let (recid, mut rs) = sig.serialize_compact();
    let mut recid = recid.to_i32() as u8;
    // libsecp256k1 already signs low-S; normalize anyway as the brief says, flipping the parity.
    let mut standard = secp256k1::ecdsa::Signature::from_compact(&rs).unwrap();
    let before = standard;
    standard.normalize_s();
    if standard != before {
        rs = standard.serialize_compact();
        recid ^= 1;
    }
    (rs, recid)
}

/// The same signature with S replaced by n - S (high S), and the matching recovery id.
pub fn to_high_s(rs: &[u8; 64], recid: u8) -> ([u8; 64], u8) {
    use alloy_primitives::U256;
    let n = U256::from_be_bytes(secp256k1::constants::CURVE_ORDER);
    let s = U256::from_be_slice(&rs[32..]);
    let mut out = *rs;
    out[32..].copy_from_slice(&(n - s).to_be_bytes::<32>());
    (out, recid ^ 1)
}
