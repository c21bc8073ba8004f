//! Policies, signed policies, intents and receipts as JSON (hostile, from the server):
//! parsing and every check never panic, what parses round trips, and evaluation of a parsed
//! policy is deterministic.
//!
//! Raw bytes rarely form a policy in a short run, so each input is also applied as a
//! one-byte edit to a well-formed sample policy (the one in coffer-policy's unit tests).
#![no_main]

use coffer_policy::{
    check_approvals, evaluate, lookback_since, verify_history, Amount, Context, Intent, Policy,
    PublicKey, Receipt, ReceiptBody, SignedPolicy,
};
use libfuzzer_sys::fuzz_target;

const SAMPLE: &str = r#"{"vault_id":"vault-1","version":3,
  "groups":{"approvers":[{"name":"ann","key":"1111111111111111111111111111111111111111111111111111111111111111"},
                         {"name":"bob","key":"2222222222222222222222222222222222222222222222222222222222222222"}],
            "initiators":[{"name":"ivy","key":"3333333333333333333333333333333333333333333333333333333333333333"}]},
  "initiator_groups":["initiators"],
  "rules":[
    {"name":"night","when":{"time_window":{"days":[5,6],"start_minute":1320,"end_minute":360}},"action":{"type":"block"}},
    {"name":"fast","when":{"assets":["BTC"],"velocity":{"window_secs":86400,"max_sum":"1000","max_count":5}},
     "action":{"type":"allow","approvals":[{"group":"approvers","min":2}]}},
    {"name":"book","when":{"destinations":["bc1dest"],"amount_max":"1000"},"action":{"type":"allow"}},
    {"name":"rest","action":{"type":"allow","approvals":[{"group":"approvers","min":1}],"allow_self_approval":true}}]}"#;

fn intent(vault_id: String, initiator: PublicKey) -> Intent {
    Intent {
        tenant: "t".into(),
        vault_id,
        key_id: "k".into(),
        request_id: "r".into(),
        wallet_id: "w".into(),
        path: "m/0".into(),
        asset: "BTC".into(),
        amount: Amount(600),
        destination: "bc1dest".into(),
        memo: String::new(),
        initiator,
        created_at: 1_700_000_000,
        expires_at: 1_700_003_600,
        transaction: None,
        kind: Default::default(),
    }
}

fn check_policy(json: &[u8]) {
    let Ok(p) = serde_json::from_slice::<Policy>(json) else {
        return;
    };
    let _ = p.check();
    let again = serde_json::to_vec(&p).expect("a parsed policy serializes");
    let back: Policy = serde_json::from_slice(&again).expect("and parses again");
    assert_eq!(back, p);
    assert_eq!(back.signing_bytes(), p.signing_bytes());
    let key = p
        .groups
        .values()
        .flatten()
        .next()
        .map_or(PublicKey([0; 32]), |m| m.key);
    let i = intent(p.vault_id.clone(), key);
    let mut seen = ReceiptBody::for_intent(&i, 0, [0; 32], 1_699_990_000);
    seen.intent_hash = [7; 32];
    let history = [seen];
    for now in [0, 1_700_000_000, 1_700_080_000, i64::MIN, i64::MAX] {
        let ctx = Context {
            now,
            history: &history,
        };
        let v = evaluate(&p, &i, &ctx);
        assert_eq!(v, evaluate(&p, &i, &ctx), "evaluation is not deterministic");
        let _ = check_approvals(&p, &v, &i, &[], now);
        let _ = lookback_since(&p, &i, now);
    }
}

fn check_others(json: &[u8]) {
    if let Ok(sp) = serde_json::from_slice::<SignedPolicy>(json) {
        let _ = sp.verify(&[PublicKey([0x11; 32])], 1);
        let again = serde_json::to_vec(&sp).expect("serializes");
        assert_eq!(
            serde_json::from_slice::<SignedPolicy>(&again).ok(),
            Some(sp)
        );
    }
    if let Ok(i) = serde_json::from_slice::<Intent>(json) {
        let _ = (i.validate(), i.hash(), i.message());
        let again = serde_json::to_vec(&i).expect("serializes");
        assert_eq!(serde_json::from_slice::<Intent>(&again).ok(), Some(i));
    }
    if let Ok(r) = serde_json::from_slice::<Receipt>(json) {
        let next = r.body.seq.wrapping_add(1);
        let _ = verify_history(
            &[r.clone()],
            &r.body.key_id,
            &[PublicKey([0x11; 32])],
            1,
            next,
            0,
        );
        let again = serde_json::to_vec(&r).expect("serializes");
        assert_eq!(serde_json::from_slice::<Receipt>(&again).ok(), Some(r));
    }
}

fuzz_target!(|data: &[u8]| {
    check_policy(data);
    check_others(data);
    let mut sample = SAMPLE.as_bytes().to_vec();
    if let [op, byte, lo, hi, ..] = *data {
        let at = usize::from(u16::from_le_bytes([lo, hi])) % sample.len();
        match op % 4 {
            0 => sample[at] = byte,
            1 => sample[at] = b"0123456789abcdef"[usize::from(byte) % 16],
            2 => _ = sample.remove(at),
            _ => sample.truncate(at),
        }
    }
    check_policy(&sample);
});
