//! Criterion benchmarks: raw library against Coffer's session layer for the fast
//! operations (FROST keygen and signing, CGGMP online signing from a presignature), and the
//! single-party floor. `coffer bench` covers the multi-second CGGMP operations.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use coffer_bench::{ours, raw};
use coffer_proto::{ceremony, GroupParams, Scheme};
use criterion::{criterion_group, criterion_main, Criterion};

fn frost(c: &mut Criterion) {
    let g = GroupParams::new(2, 3).unwrap();
    let msg = [0x5au8; 32];
    let group = raw::frost_keygen::<frost_secp256k1_tr::Secp256K1Sha256TR>(2, 3).unwrap();
    let shares = ceremony::keygen_with_primes(Scheme::SchnorrBip340, g, Vec::new()).unwrap();
    let mut grp = c.benchmark_group("bip340 2-of-3");
    grp.bench_function("keygen/raw", |b| {
        b.iter(|| raw::frost_keygen::<frost_secp256k1_tr::Secp256K1Sha256TR>(2, 3).unwrap())
    });
    grp.bench_function("keygen/ours", |b| {
        b.iter(|| ours::keygen(Scheme::SchnorrBip340, g).unwrap())
    });
    grp.bench_function("sign/raw", |b| {
        b.iter(|| raw::frost_sign(&group, 2, &msg).unwrap())
    });
    grp.bench_function("sign/ours", |b| {
        b.iter(|| ours::sign(&shares, 2, &msg).unwrap())
    });
    grp.finish();

    let group = raw::frost_keygen::<frost_ed25519::Ed25519Sha512>(2, 3).unwrap();
    let shares = ceremony::keygen_with_primes(Scheme::Ed25519, g, Vec::new()).unwrap();
    let mut grp = c.benchmark_group("ed25519 2-of-3");
    grp.bench_function("sign/raw", |b| {
        b.iter(|| raw::frost_sign(&group, 2, &msg).unwrap())
    });
    grp.bench_function("sign/ours", |b| {
        b.iter(|| ours::sign(&shares, 2, &msg).unwrap())
    });
    grp.finish();
}

fn ecdsa_online(c: &mut Criterion) {
    let g = GroupParams::new(2, 3).unwrap();
    let primes = coffer_testkit::test_primes().take(3).unwrap();
    let raw_shares = raw::cggmp_group(2, 3, primes.clone()).unwrap();
    let shares = ceremony::keygen_with_primes(Scheme::EcdsaSecp256k1, g, primes).unwrap();
    let msg = [0x5au8; 32];
    let mut grp = c.benchmark_group("ecdsa 2-of-3 online");
    grp.sample_size(10);
    grp.bench_function("raw", |b| {
        b.iter_batched(
            || raw::cggmp_presign(&raw_shares, 2).unwrap(),
            |p| raw::cggmp_online(p, &msg).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    grp.bench_function("ours", |b| {
        b.iter_batched(
            || ours::presign(&shares, 2).unwrap(),
            |p| ours::online(p, &msg).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    grp.finish();
}

fn floors(c: &mut Criterion) {
    let mut grp = c.benchmark_group("single-party floor");
    let sk = secp256k1::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let msg = secp256k1::Message::from_digest([0x5a; 32]);
    grp.bench_function("ecdsa libsecp256k1", |b| {
        b.iter(|| secp256k1::SECP256K1.sign_ecdsa(&msg, &sk))
    });
    let ed = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    grp.bench_function("ed25519-dalek", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&ed, &[0x5a; 32]))
    });
    grp.finish();
}

criterion_group!(benches, floors, frost, ecdsa_online);
criterion_main!(benches);
