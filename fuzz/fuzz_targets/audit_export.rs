//! Audit exports (hostile: a file handed to `coffer audit verify`): parsing and verification
//! (entries, links, checkpoints and their signatures) never panic, and what verifies still
//! verifies after a round trip through the export format.
#![no_main]

use coffer_policy::audit::{parse_export_full, to_export_full, verify_export};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(export) = parse_export_full(text) else {
        return;
    };
    if let Ok(summary) = verify_export(&export) {
        let again = parse_export_full(&to_export_full(&export.entries, &export.checkpoints))
            .expect("a verified export re-parses");
        assert_eq!(verify_export(&again).expect("and re-verifies"), summary);
    }
});
