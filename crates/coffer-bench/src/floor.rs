//! The floor: one signature by one party holding the whole key (libsecp256k1 for ECDSA and
//! BIP340, ed25519-dalek for Ed25519). Threshold signing is compared against it for scale.

use secp256k1::{Keypair, Message, SecretKey, SECP256K1};

use crate::stats::{sample, summarize, Budget, Summary};

/// Measures the three single-party signers.
pub fn measure(budget: Budget) -> Vec<(&'static str, Summary)> {
    let mut out = Vec::new();
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let Ok(sk) = SecretKey::from_slice(&seed) else {
        return out;
    };
    let kp = Keypair::from_secret_key(SECP256K1, &sk);
    let msg = Message::from_digest([0x5a; 32]);
    let ecdsa = sample(budget, || {
        std::hint::black_box(SECP256K1.sign_ecdsa(&msg, &sk));
    });
    let schnorr = sample(budget, || {
        std::hint::black_box(SECP256K1.sign_schnorr_no_aux_rand(&msg, &kp));
    });
    let ed = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let ed25519 = sample(budget, || {
        use ed25519_dalek::Signer;
        std::hint::black_box(ed.sign(&[0x5a; 32]));
    });
    for (name, s) in [
        ("ecdsa (libsecp256k1)", ecdsa),
        ("bip340 (libsecp256k1)", schnorr),
        ("ed25519 (ed25519-dalek)", ed25519),
    ] {
        if let Some(summary) = summarize(&s) {
            out.push((name, summary));
        }
    }
    out
}
