//! Backup kits (hostile: a file handed to `coffer backup verify` or `restore`): decoding and
//! the signature check never panic, and a kit that decodes re-encodes to a kit that decodes
//! to the same value.
#![no_main]

use coffer_net::backup::Kit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = coffer_net::backup::fuzz_decode_kit(data);
    if let Ok(kit) = Kit::from_bytes(data) {
        let again = Kit::from_bytes(&kit.to_bytes().expect("a decoded kit encodes"))
            .expect("and decodes again");
        assert_eq!(again, kit);
    }
});
