//! A signer's own decision on a transfer ([`Task::SignIntent`]): it trusts nothing the server
//! says. It checks, against what it pinned and what it recorded itself:
//!
//! 1. the vault's policy is signed by a quorum of the admins pinned when the key was made,
//!    and is not older than a policy it already used for this key;
//! 2. the receipt it is asked to co-sign describes exactly this intent; and when the intent
//!    carries a chain transaction, the signer decodes it under the child key it derives from
//!    its own share and refuses unless it moves exactly the intent's amount of the intent's
//!    asset to the intent's destination (the fields the policy is evaluated on), then
//!    computes the digest it signs itself;
//! 3. the receipts before it form an unbroken, co-signed chain reaching back past the
//!    policy's longest velocity window and the intent's creation, agreeing with this signer's
//!    own ledger wherever the two overlap (a server that rotates signers cannot hide a
//!    transfer, and cannot replay one);
//! 4. the initiator's signature, the policy's verdict (first matching rule, velocity counted
//!    from the receipts) and the approvers' signatures over the intent hash
//!    ([`coffer_policy::authorize`]).
//!
//! Only then does it reserve the place in its ledger and join the session.
//!
//! [`Task::SignIntent`]: coffer_net::frames::Task::SignIntent

use coffer_net::frames::{IntentJob, Outcome};
use coffer_net::NodeKey;
use coffer_policy::{Context, PublicKey, ReceiptBody};

use crate::ledger::{Ledger, SignedOutput};
use crate::node::{KeyMeta, SignerNode};

/// How far a receipt's time may be from this signer's clock when it is first reserved.
pub const MAX_SKEW_SECS: i64 = 300;

/// What to do with an accepted intent.
pub(crate) enum IntentPlan {
    /// Sign `message` at `path`, co-signing `body` afterwards.
    Sign {
        /// What the scheme signs: a chain digest this signer computed, or the intent message.
        message: Vec<u8>,
        /// Which digest of the transaction (the Bitcoin input).
        input: u32,
        /// Sign under the BIP86 Taproot output key (P2TR key-path spends).
        taproot: bool,
        /// The receipt to co-sign.
        body: ReceiptBody,
    },
    /// This signer finished this exact job before: answer from the ledger.
    Done(Outcome),
}

fn refuse(reason: impl Into<String>) -> Outcome {
    Outcome::Refused {
        reason: reason.into(),
    }
}

fn key_of(k: &NodeKey) -> PublicKey {
    PublicKey(k.0)
}

/// What this signer signs for `job`: the digest of its chain transaction at `job.input`
/// (decoded and checked against the intent under `child_key`, the key at the intent's path in
/// this signer's own share), or the intent message; and whether under the Taproot output key.
fn what_to_sign(
    job: &IntentJob,
    scheme: &str,
    child_key: &[u8],
) -> Result<(Vec<u8>, bool), Outcome> {
    let intent = &job.intent;
    let Some(text) = &intent.transaction else {
        if !intent.kind.is_transfer() {
            return Err(refuse(format!(
                "an {} intent must carry its message",
                intent.kind.name()
            )));
        }
        if job.input != 0 {
            return Err(refuse("an intent without a transaction has one digest"));
        }
        return Ok((intent.message().to_vec(), false));
    };
    let tx = coffer_chains::ChainTx::parse(text).map_err(|e| refuse(e.to_string()))?;
    if tx.scheme().name() != scheme {
        return Err(refuse(format!(
            "a {} transaction is not signed with a {scheme} key",
            tx.chain()
        )));
    }
    tx.check_intent(
        child_key,
        intent.kind.name(),
        &intent.asset,
        &intent.destination,
        intent.amount.0,
    )
    .map_err(|e| refuse(format!("the transaction contradicts the intent: {e}")))?;
    let digests = tx.digests(child_key).map_err(|e| refuse(e.to_string()))?;
    let n = digests.len();
    let digest = usize::try_from(job.input)
        .ok()
        .and_then(|i| digests.into_iter().nth(i))
        .ok_or_else(|| refuse(format!("input {} of a transaction with {n}", job.input)))?;
    Ok((
        digest,
        tx.sign_mode() == coffer_chains::SignMode::TaprootKeyPath,
    ))
}

/// The signed outcome for a finished intent: the signature and this signer's receipt
/// signature.
pub(crate) fn signed_outcome(node: &SignerNode, body: &ReceiptBody, out: &SignedOutput) -> Outcome {
    let receipt = body.sign(node.identity().signing_key());
    Outcome::Signed {
        signature: out.signature.clone(),
        recovery_id: out.recovery_id,
        public_key: out.public_key.clone(),
        receipt: Some(hex::encode(receipt.0)),
    }
}

/// Checks an intent job against this signer's pinned state and ledger, and reserves its
/// place when it passes. `child_key` is the public key at the intent's path, from this
/// signer's own share.
pub(crate) fn check(
    node: &SignerNode,
    key_id: &str,
    meta: &KeyMeta,
    job: &IntentJob,
    child_key: &[u8],
    now: i64,
) -> Result<IntentPlan, Outcome> {
    let intent = &job.intent;
    let body = &job.receipt;
    if intent.key_id != key_id || body.key_id != key_id {
        return Err(refuse("the intent or its receipt names another key"));
    }
    // 1. The policy, against the admins pinned at key generation.
    let (admins, threshold) = match node.key_admins(meta) {
        Ok(a) => a,
        Err(e) => return Err(refuse(e.to_string())),
    };
    let admins: Vec<PublicKey> = admins.iter().map(key_of).collect();
    job.policy
        .verify(&admins, threshold)
        .map_err(|e| refuse(format!("policy: {e}")))?;
    let ledger = Ledger::new(node.store());
    let head = ledger
        .head(key_id)
        .map_err(|e| refuse(format!("ledger: {e}")))?;
    let policy = &job.policy.policy;
    if policy.version < head.policy_version {
        return Err(refuse(format!(
            "policy version {} is older than version {} this signer already used for the key",
            policy.version, head.policy_version
        )));
    }
    // 2. The receipt describes this intent.
    if *body != ReceiptBody::for_intent(intent, body.seq, body.prev, body.at) {
        return Err(refuse(
            "the receipt does not describe this intent (amount, wallet, asset or request differ)",
        ));
    }
    let existing = ledger
        .entry(key_id, body.seq)
        .map_err(|e| refuse(format!("ledger: {e}")))?;
    match &existing {
        Some(e) if e.body != *body => {
            return Err(refuse(format!(
                "place {} of the key's chain already holds another transfer on this signer (request {})",
                body.seq, e.body.request_id
            )))
        }
        Some(e) => {
            if let Some(out) = e.signed_input(job.input) {
                return Ok(IntentPlan::Done(signed_outcome(node, body, out)));
            }
        }
        None => {
            if body.seq < head.next_seq {
                return Err(refuse(format!(
                    "place {} of the key's chain is stale: this signer already holds places up to {}",
                    body.seq,
                    head.next_seq - 1
                )));
            }
            if (body.at - now).abs() > MAX_SKEW_SECS {
                return Err(refuse(format!(
                    "the receipt's time {} is more than {MAX_SKEW_SECS} s from this signer's clock {now}",
                    body.at
                )));
            }
        }
    }
    // 2b. The chain transaction, decoded here.
    let (message, taproot) = what_to_sign(job, meta.scheme.name(), child_key)?;
    // 3. The chain before it.
    let members: Vec<PublicKey> = meta.parties.iter().map(key_of).collect();
    let since = coffer_policy::lookback_since(policy, intent, body.at);
    let bodies = coffer_policy::verify_history(
        &job.history,
        key_id,
        &members,
        meta.threshold,
        body.seq,
        since,
    )
    .map_err(|e| refuse(format!("ledger receipts: {e}")))?;
    let expected_prev = bodies.last().map(|b| b.hash()).unwrap_or([0u8; 32]);
    if body.prev != expected_prev {
        return Err(refuse(
            "the receipt does not follow the last receipt of the chain",
        ));
    }
    let intent_hash = intent.hash();
    for b in &bodies {
        if b.intent_hash == intent_hash {
            return Err(refuse(format!(
                "this intent was already signed (place {} of the key's chain): replay refused",
                b.seq
            )));
        }
        match ledger.intent_at(key_id, b.seq) {
            Ok(Some(mine)) if mine != b.intent_hash => {
                return Err(refuse(format!(
                    "receipt {} disagrees with this signer's own ledger (a forked chain)",
                    b.seq
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(refuse(format!("ledger: {e}"))),
        }
    }
    // 4. Initiator, verdict, approvals.
    let ctx = Context {
        now: body.at,
        history: &bodies,
    };
    coffer_policy::authorize(
        policy,
        intent,
        &job.initiator_signature,
        &job.approvals,
        &ctx,
    )
    .map_err(|e| refuse(e.to_string()))?;
    if existing.is_none() {
        ledger
            .reserve(body, policy.version)
            .map_err(|e| refuse(format!("ledger: {e}")))?;
    }
    Ok(IntentPlan::Sign {
        message,
        input: job.input,
        taproot,
        body: body.clone(),
    })
}
