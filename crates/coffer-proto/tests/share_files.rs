//! Share files: round trips, refusal of any alteration or wrong passphrase, property tests
//! for the codecs, and the v1 fixtures in test-data that every later build must still load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use coffer_proto::share_file::{self, KdfParams, Passphrase, ShareFileError};
use coffer_proto::{ceremony, verify, DerivationPath, KeyShare, Scheme};
use coffer_testkit::keygen;
use proptest::prelude::*;

/// Cheapest accepted parameters, so that property tests can open many files.
const FAST: KdfParams = KdfParams {
    m_cost_kib: 8 * 1024,
    t_cost: 1,
    p_cost: 1,
};

fn pass(p: &str) -> Passphrase {
    Passphrase::new(p.to_string()).unwrap()
}

fn fixture(scheme: &str, i: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../test-data/share-v1/{scheme}/share-{i}.json"))
}

#[test]
fn v1_fixtures_still_load_and_sign() {
    let p = pass("coffer-fixture-v1");
    for scheme in Scheme::ALL {
        let shares: Vec<KeyShare> = (1..=2)
            .map(|i| {
                share_file::open(
                    &share_file::read_bounded(&fixture(scheme.name(), i)).unwrap(),
                    &p,
                )
                .unwrap()
            })
            .collect();
        let header = shares[0].header().unwrap();
        assert_eq!(
            (
                header.scheme,
                header.threshold,
                header.parties,
                header.epoch.0
            ),
            (scheme, 2, 2, 0)
        );
        let msg = [3u8; 32];
        let sig = ceremony::sign(&shares, &msg, &DerivationPath::root()).unwrap();
        assert_eq!(hex::encode(&sig.public_key), header.public_key);
        assert!(verify::verify(scheme, &sig.public_key, &msg, &sig.bytes).unwrap());
    }
}

#[test]
fn every_scheme_round_trips_through_a_sealed_file() {
    for scheme in [
        Scheme::SchnorrBip340,
        Scheme::Ed25519,
        Scheme::EcdsaSecp256k1,
    ] {
        let shares = keygen(scheme, 2, 3);
        for s in &shares {
            let bytes = share_file::seal(s, &pass("pw"), FAST).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            let secret_hex = hex::encode(s.encode_secret().unwrap());
            assert!(
                !text.contains(&secret_hex[..64]),
                "the secret part is never written in clear"
            );
            let back = share_file::open(&bytes, &pass("pw")).unwrap();
            assert_eq!(back.header().unwrap(), s.header().unwrap());
            assert_eq!(*back.encode_secret().unwrap(), *s.encode_secret().unwrap());
            assert_eq!(
                share_file::read_header(&bytes).unwrap(),
                s.header().unwrap()
            );
        }
    }
}

#[test]
fn the_header_is_authenticated_and_the_passphrase_checked() {
    let share = &keygen(Scheme::Ed25519, 2, 3)[1];
    let bytes = share_file::seal(share, &pass("pw"), FAST).unwrap();
    assert!(matches!(
        share_file::open(&bytes, &pass("other")),
        Err(ShareFileError::Decrypt)
    ));
    let text = String::from_utf8(bytes).unwrap();
    for (from, to) in [
        ("\"party_index\": 1", "\"party_index\": 2"),
        ("\"threshold\": 2", "\"threshold\": 3"),
        ("\"epoch\": 0", "\"epoch\": 5"),
        ("\"t_cost\": 1", "\"t_cost\": 2"),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        let altered = text.replace(from, to);
        assert!(
            share_file::open(altered.as_bytes(), &pass("pw")).is_err(),
            "{from} -> {to} accepted"
        );
    }
    let future = text.replace("\"version\": 1", "\"version\": 2");
    assert!(matches!(
        share_file::open(future.as_bytes(), &pass("pw")),
        Err(ShareFileError::Unsupported { .. })
    ));
    assert!(matches!(
        Passphrase::new(String::new()),
        Err(ShareFileError::EmptyPassphrase)
    ));
}

#[test]
fn files_are_never_overwritten() {
    let dir = std::env::temp_dir().join(format!("coffer-share-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("share-1.json");
    let _ = std::fs::remove_file(&path);
    share_file::write_new(&path, b"first").unwrap();
    assert!(matches!(
        share_file::write_new(&path, b"second"),
        Err(ShareFileError::Exists(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
    let _ = std::fs::remove_dir_all(dir);
}

fn sealed() -> &'static (Vec<u8>, Vec<u8>) {
    static SEALED: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    SEALED.get_or_init(|| {
        let share = &keygen(Scheme::SchnorrBip340, 2, 2)[0];
        (
            share_file::seal(share, &pass("pw"), FAST).unwrap(),
            share.encode_secret().unwrap().to_vec(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_is_refused_or_yields_the_same_share(pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let (bytes, secret) = sealed();
        let mut altered = bytes.clone();
        let k = pos.index(altered.len());
        altered[k] ^= xor;
        // Either refused, or a change that does not alter the content (JSON whitespace, the
        // case of a hex digit) gives back exactly the same share: never a different one.
        if let Ok(share) = share_file::open(&altered, &pass("pw")) {
            prop_assert_eq!(&*share.encode_secret().unwrap(), secret);
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = KeyShare::decode_secret(&bytes);
        let _ = share_file::read_header(&bytes);
        let _ = share_file::open(&bytes, &pass("pw"));
    }

    #[test]
    fn truncated_files_are_refused(cut in 1usize..400) {
        let (bytes, _) = sealed();
        // The trailing newline is not content: cut into the JSON document itself.
        let bytes = bytes.trim_ascii_end();
        let short = &bytes[..bytes.len().saturating_sub(cut)];
        prop_assert!(share_file::open(short, &pass("pw")).is_err());
    }
}
