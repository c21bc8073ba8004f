//! The Coffer signer daemon: each signer keeps its key shares and other secrets in an
//! encrypted store on its own disk ([`store`], keyed through a pluggable [`keysource`]),
//! pins the roster it was enrolled with, and runs the protocol sessions the server relays.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backup;
pub mod checkpoint;
pub mod daemon;
pub mod epochs;
mod intent_check;
pub mod keysource;
pub mod ledger;
pub mod node;
pub mod pool;
pub mod primes;
pub mod runner;
pub mod store;
