//! The wire form of signed protocol envelopes (hostile bytes from the relay): never panics,
//! accepts only canonical encodings (whatever decodes re-encodes to the same bytes), and
//! never prints payload bytes in its debug form.
#![no_main]

use coffer_net::envelope::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data);
        let _ = format!("{env:?}");
    }
});
