//! Hostile payloads into live sessions of every protocol: FROST DKG, signing and refresh for
//! both suites, and CGGMP key generation, signing and refresh. The first input byte picks
//! the protocol, the second the round and the third the sender; the rest is the payload.
//! A session may abort (blaming the sender) but must never panic or produce an output.
#![no_main]

use std::sync::OnceLock;

use coffer_proto::{ecdsa, protocol, BoxedSession, DerivationPath, GroupParams, KeyShare, Message, PartyIndex, Scheme, SessionId};
use libfuzzer_sys::fuzz_target;

const SID: SessionId = SessionId::from_bytes([7; 32]);

fn shares(scheme: Scheme) -> &'static [KeyShare] {
    static S: OnceLock<Vec<Vec<KeyShare>>> = OnceLock::new();
    let all = S.get_or_init(|| Scheme::ALL.iter().map(|s| coffer_testkit::keygen(*s, 2, 3)).collect());
    &all[Scheme::ALL.iter().position(|s| *s == scheme).unwrap_or(0)]
}

fn session(kind: u8) -> Option<BoxedSession<()>> {
    let g = GroupParams::new(2, 3).ok()?;
    let me = PartyIndex::unchecked(0);
    let set = [PartyIndex::unchecked(0), PartyIndex::unchecked(1)];
    let unit = |s: Result<BoxedSession<KeyShare>, _>| s.ok().map(mapped);
    match kind % 8 {
        0 => unit(protocol::keygen(Scheme::SchnorrBip340, SID, me, g, None)),
        1 => unit(protocol::keygen(Scheme::Ed25519, SID, me, g, None)),
        2 => protocol::sign(&shares(Scheme::SchnorrBip340)[0], SID, &set, &[1; 32], &DerivationPath::root()).ok().map(mapped),
        3 => protocol::sign(&shares(Scheme::Ed25519)[0], SID, &set, b"m", &DerivationPath::root()).ok().map(mapped),
        4 => unit(protocol::refresh(&shares(Scheme::Ed25519)[0], SID, None)),
        5 => ecdsa::core_keygen_session(SID, me, g).ok().map(mapped),
        6 => protocol::sign(&shares(Scheme::EcdsaSecp256k1)[0], SID, &set, &[1; 32], &DerivationPath::root()).ok().map(mapped),
        _ => {
            let primes = coffer_testkit::test_primes().take(1).ok()?.pop()?;
            unit(protocol::refresh(&shares(Scheme::EcdsaSecp256k1)[0], SID, Some(primes)))
        }
    }
}

/// Erases the output type: the fuzzer only cares that nothing panics.
fn mapped<O: 'static>(s: BoxedSession<O>) -> BoxedSession<()> {
    struct Unit<O>(BoxedSession<O>);
    impl<O> coffer_proto::Session for Unit<O> {
        type Output = ();
        fn session_id(&self) -> SessionId {
            self.0.session_id()
        }
        fn party(&self) -> PartyIndex {
            self.0.party()
        }
        fn handle(&mut self, m: Message) -> Result<(), coffer_proto::SessionError> {
            self.0.handle(m)
        }
        fn take_outgoing(&mut self) -> Vec<Message> {
            self.0.take_outgoing()
        }
        fn take_outcome(&mut self) -> Option<Result<(), coffer_proto::SessionError>> {
            self.0.take_outcome().map(|r| r.map(|_| ()))
        }
        fn is_finished(&self) -> bool {
            self.0.is_finished()
        }
    }
    Box::new(Unit(s))
}

fuzz_target!(|data: &[u8]| {
    let [kind, round, sender, flags, payload @ ..] = data else { return };
    let Some(mut s) = session(*kind) else { return };
    let m = Message {
        session: SID,
        sender: PartyIndex::unchecked(u16::from(*sender % 3)),
        recipient: (flags & 1 == 1).then(|| PartyIndex::unchecked(0)),
        round: u16::from(*round % 4) + if flags & 2 == 2 { 100 } else { 0 },
        payload: payload.to_vec(),
    };
    let _ = s.handle(m);
    // One hostile message can never complete a run with a result.
    assert!(!matches!(s.take_outcome(), Some(Ok(()))));
});
