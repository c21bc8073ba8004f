//! The versioned wire form of protocol messages: never panics, and whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use coffer_proto::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
    }
});
