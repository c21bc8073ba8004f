//! Keeps every ECDSA key's presignature pool full: in the background, for each ECDSA key,
//! while fewer than the target are ready at the root path, it asks the first `t` connected
//! members to presign (seconds of CPU with CGGMP), and records the result. Online signing
//! then takes one round ([`crate::api`]). Signers hold the secret halves; the server only
//! knows ids, paths and signer sets.

use std::time::Duration;

use coffer_net::frames::{Job, Outcome, Task};
use coffer_proto::ids::SessionId;
use coffer_proto::scheme::Scheme;

use crate::api::AppState;
use crate::coordinator;

/// The path pools are kept for (the vault key itself; per-address pools come with wallets).
pub const POOL_PATH: &str = "m";

/// Refills pools until the process ends; `target` 0 disables pooling.
pub async fn refill(state: AppState, target: usize) {
    if target == 0 {
        return;
    }
    loop {
        let worked = refill_once(&state, target).await;
        let pause = if worked { 50 } else { 1000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// One presignature for the first key below target; true if one was attempted.
async fn refill_once(state: &AppState, target: usize) -> bool {
    let Ok(keys) = state.db.keys().await else {
        return false;
    };
    for key in keys.iter().filter(|k| k.scheme == Scheme::EcdsaSecp256k1) {
        let ready = state
            .db
            .presignatures_ready(&key.id, POOL_PATH)
            .await
            .unwrap_or(i64::MAX);
        if ready >= target as i64 {
            continue;
        }
        let parties: Vec<(u16, coffer_net::NodeKey)> = key
            .parties
            .iter()
            .enumerate()
            .filter(|(_, p)| state.hub.is_connected(p))
            .map(|(i, p)| (i as u16, *p))
            .take(usize::from(key.threshold))
            .collect();
        if parties.len() < usize::from(key.threshold) {
            continue;
        }
        let session = SessionId::random();
        let job = Job {
            session,
            key_id: key.id.clone(),
            task: Task::Presign {
                path: POOL_PATH.into(),
            },
            parties: parties.clone(),
        };
        match coordinator::run(&state.hub, &state.roster, job, state.deadlines.other).await {
            Ok(outcomes)
                if outcomes
                    .iter()
                    .all(|(_, o)| matches!(o, Outcome::Pooled { .. })) =>
            {
                let signers: Vec<u16> = parties.iter().map(|(i, _)| *i).collect();
                if let Err(e) = state
                    .db
                    .insert_presignature(&session.to_string(), &key.id, POOL_PATH, &signers)
                    .await
                {
                    tracing::warn!("presignature pool: {e}");
                }
            }
            Ok(_) => tracing::warn!("presignature pool: unexpected outcomes for key {}", key.id),
            Err(e) => {
                tracing::warn!("presignature pool: key {}: {e}", key.id);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        return true;
    }
    false
}
