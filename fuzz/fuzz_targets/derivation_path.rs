//! Derivation paths from users: parse, and what parses prints back the same way.
#![no_main]

use coffer_proto::DerivationPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<DerivationPath>() {
            assert_eq!(p.to_string().parse::<DerivationPath>().ok(), Some(p));
        }
    }
});
