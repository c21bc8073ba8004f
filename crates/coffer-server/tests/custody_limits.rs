//! Rate limits through the real middleware: a credential over its burst gets 429 with a
//! JSON error, before authentication (so floods of bad signatures are limited too), while
//! other credentials are unaffected; the bucket refills with time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use coffer_net::Identity;

use common::*;

#[test]
fn a_credential_over_its_limit_gets_429_and_others_do_not() {
    let c = Cluster::start_with(
        "limits",
        None,
        coffer_server::ratelimit::Limits {
            per_second: 2.0,
            burst: 5.0,
        },
    );
    let op = c.as_(&c.admins[0]);
    let statuses: Vec<u16> = (0..8)
        .map(|_| op.call("GET", "/v1/whoami", None).0)
        .collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let (status, v) = op.call("GET", "/v1/whoami", None);
    assert_eq!(status, 429);
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    // Unsigned floods under one claimed key are limited the same way.
    let stranger = Identity::generate("stranger");
    let flood: Vec<u16> = (0..7)
        .map(|_| {
            let mut req = ureq::get(&format!("{}/v1/whoami", c.base));
            req = req.set(coffer_server::auth::KEY, &stranger.node_key().to_hex());
            send(req, None).0
        })
        .collect();
    assert_eq!(&flood[..5], &[401; 5], "{flood:?}");
    assert!(flood[5..].iter().all(|s| *s == 429), "{flood:?}");
    // Another credential is unaffected; the first refills.
    assert_eq!(c.as_(&c.admins[1]).call("GET", "/v1/whoami", None).0, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(op.call("GET", "/v1/whoami", None).0, 200);
}
