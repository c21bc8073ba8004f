//! The decrypted secret part of a share: decoding validates, never panics.
#![no_main]

use coffer_proto::KeyShare;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = KeyShare::decode_secret(data);
});
