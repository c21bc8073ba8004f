//! The signer's sealed share-store files (anyone with write access to the disk): the header
//! parser never panics, and accepts exactly the layout the format describes:
//! "CFSS" | version 1 | kind | name length (1..=64) | name | epoch (8) | nonce (24) | ciphertext
//! (at least the 16-byte tag).
//!
//! Raw bytes rarely reach the end of the header in a short run, so each input is also fed
//! behind the magic and version, and as the fields of a complete file (which must parse).
#![no_main]

use coffer_signer::store::{fuzz_parse_sealed, MAX_NAME_LEN, MAX_SECRET_LEN};
use libfuzzer_sys::fuzz_target;

/// The format's rule, written independently of the parser.
fn well_formed(data: &[u8]) -> bool {
    let [b'C', b'F', b'S', b'S', 1, _kind, name_len, rest @ ..] = data else {
        return false;
    };
    let name_len = usize::from(*name_len);
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return false;
    }
    let Some(body) = rest.len().checked_sub(name_len + 8 + 24) else {
        return false;
    };
    (16..=MAX_SECRET_LEN + 16).contains(&body)
}

fn check(data: &[u8]) {
    assert_eq!(fuzz_parse_sealed(data), well_formed(data), "{data:02x?}");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&[b"CFSS\x01", data].concat());
    // kind, name length (1..=64), then name, epoch, nonce and ciphertext from the rest,
    // padded with zeros to the minimum: a complete file.
    if let [kind, len, extra, rest @ ..] = data {
        let name_len = 1 + usize::from(*len) % MAX_NAME_LEN;
        let min = name_len + 8 + 24 + 16 + usize::from(*extra);
        let mut body = rest.to_vec();
        body.resize(body.len().max(min), 0);
        let file = [b"CFSS\x01", &[*kind, name_len as u8][..], &body].concat();
        assert!(
            fuzz_parse_sealed(&file),
            "a complete file was refused: {file:02x?}"
        );
    }
});
