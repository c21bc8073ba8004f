//! Keeps every key's pool of precomputed signing material full: ECDSA presignatures at the
//! root path (seconds of CPU each with CGGMP) and FROST round-one nonces (any path). In the
//! background, while a key has fewer than the target ready, it asks the first `t` connected
//! members to make one more, and records it. Online signing then takes one round
//! ([`crate::api`]). Signers hold the secret parts; the server only knows ids, paths and
//! signer sets.

use std::time::Duration;

use coffer_net::frames::{Job, Outcome, Task};
use coffer_proto::ids::SessionId;
use coffer_proto::scheme::Scheme;

use crate::api::AppState;
use crate::coordinator;

/// The path ECDSA presignatures are made for (the vault key itself; per-address pools come
/// with wallets).
pub const POOL_PATH: &str = "m";
/// How FROST nonces are listed: usable at any path.
pub const ANY_PATH: &str = "*";

/// The pool path of a key's scheme.
pub fn pool_path(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::EcdsaSecp256k1 => POOL_PATH,
        _ => ANY_PATH,
    }
}

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

/// Paths an ECDSA key keeps presignatures for: the key itself and the paths it signed at
/// most recently (presignatures are bound to a path; FROST nonces are not).
const RECENT_PATHS: i64 = 3;

async fn pool_paths(state: &AppState, key: &crate::db::KeyRecord) -> Vec<String> {
    let mut paths = vec![pool_path(key.scheme).to_string()];
    if key.scheme == Scheme::EcdsaSecp256k1 {
        for p in state
            .db
            .recent_paths(&key.id, RECENT_PATHS)
            .await
            .unwrap_or_default()
        {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    paths
}

/// One pooled item for the first (key, path) below target; true if one was attempted.
async fn refill_once(state: &AppState, target: usize) -> bool {
    let Ok(keys) = state.db.keys().await else {
        return false;
    };
    for key in &keys {
        // The signers refuse presignatures for a frozen vault's keys: do not ask.
        if state.hub.is_key_frozen(&key.id) {
            continue;
        }
        for path in pool_paths(state, key).await {
            let ready = state
                .db
                .presignatures_ready(&key.id, &path)
                .await
                .unwrap_or(i64::MAX);
            if ready >= target as i64 {
                continue;
            }
            let parties: Vec<(u16, coffer_net::NodeKey)> = crate::api::members(key)
                .into_iter()
                .filter(|(_, p)| state.hub.is_connected(p))
                .take(usize::from(key.threshold))
                .collect();
            if parties.len() < usize::from(key.threshold) {
                break;
            }
            let session = SessionId::random();
            let job = Job {
                session,
                key_id: key.id.clone(),
                task: Task::Presign {
                    path: if path == ANY_PATH {
                        POOL_PATH.into()
                    } else {
                        path.clone()
                    },
                },
                parties: parties.clone(),
                epoch: Some(key.epoch),
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
                        .insert_presignature(&session.to_string(), &key.id, &path, &signers)
                        .await
                    {
                        tracing::warn!("signing pool: {e}");
                    }
                }
                Ok(_) => tracing::warn!("signing pool: unexpected outcomes for key {}", key.id),
                Err(e) => {
                    tracing::warn!("signing pool: key {} at {path}: {e}", key.id);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
            return true;
        }
    }
    false
}
