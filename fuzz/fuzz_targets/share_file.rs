//! Share files from disk: header parsing and opening (KDF parameters are bounded, so hostile
//! files cannot make opening arbitrarily expensive).
#![no_main]

use coffer_proto::share_file::{open, read_header, Passphrase};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_header(data);
    if let Ok(pass) = Passphrase::new("fuzz".to_string()) {
        let _ = open(data, &pass);
    }
});
