//! A node identity's secret form (read back from the encrypted store): never panics, and
//! whatever decodes re-encodes to an identity with the same public identity.
//!
//! Raw bytes rarely form a secret in a short run, so each input also builds a well-formed
//! secret from its bytes (name and keys), which must decode and round trip, and feeds a
//! one-byte edit of it to the decoder as well.
#![no_main]

use coffer_net::Identity;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;

fn check(data: &[u8]) -> bool {
    let Ok(id) = Identity::from_secret_bytes(data) else {
        return false;
    };
    let bytes = id.to_secret_bytes().expect("a decoded identity re-encodes");
    let back = Identity::from_secret_bytes(&bytes).expect("a re-encoded identity decodes");
    assert_eq!(back.public(), id.public());
    assert_eq!(*back.seal_secret_bytes(), *id.seal_secret_bytes());
    assert_eq!(
        back.to_secret_bytes().expect("re-encodes"),
        bytes,
        "encoding is not stable"
    );
    let _ = format!("{id:?}");
    true
}

/// The secret form, as `Identity::to_secret_bytes` writes it.
#[derive(Serialize)]
struct Secret {
    version: u8,
    name: String,
    signing: [u8; 32],
    seal: [u8; 32],
}

fn built(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let secret = Secret {
        version: 1,
        name: u.arbitrary()?,
        signing: u.arbitrary()?,
        seal: u.arbitrary()?,
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&secret, &mut bytes).expect("encodes");
    assert!(check(&bytes), "a well-formed secret does not decode");
    let id = Identity::from_secret_bytes(&bytes).expect("decodes");
    assert_eq!(id.name(), secret.name);
    assert_eq!(*id.seal_secret_bytes(), secret.seal);
    assert_eq!(
        id.to_secret_bytes().expect("encodes").as_slice(),
        bytes.as_slice()
    );
    if !bytes.is_empty() {
        let at = u.choose_index(bytes.len())?;
        match u.int_in_range(0..=2u8)? {
            0 => bytes[at] = u.arbitrary()?,
            1 => _ = bytes.remove(at),
            _ => bytes.truncate(at),
        }
        check(&bytes);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let _ = built(data);
});
