//! A DKLs23 key share's secret encoding: decoding validates, never panics.
#![no_main]

use coffer_proto::dkls::DklsShare;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = DklsShare::decode_secret(data);
});
