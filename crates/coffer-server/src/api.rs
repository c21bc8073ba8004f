//! The HTTP API (axum): the router with its middleware (rate limits, metrics, JSON errors
//! for every refusal, a 64 KiB body limit), the shared state, and the operators' routes for
//! signers and bare keys (create by DKG, sign a raw message in dev mode only, refresh,
//! reshare). The custody routes live in [`crate::custody`]. Every `/v1` route needs a
//! signed request ([`crate::custody::caller::Authed`]). Errors are JSON
//! `{"error":{"code","message"}}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use coffer_net::frames::{Job, Outcome, SignInput, Task};
use coffer_net::roster::Roster;
use coffer_net::NodeKey;
use coffer_proto::ids::{GroupParams, SessionId};
use coffer_proto::path::DerivationPath;
use coffer_proto::scheme::Scheme;

use crate::auth::Verifier;
use crate::coordinator::{self, name_of, JobError};
use crate::custody::caller::{Authed, Role};
use crate::db::{unix_now, Db, KeyRecord};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

/// How long sessions may take before the coordinator gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Key generation and refresh of ECDSA keys (auxiliary data is seconds of CPU).
    pub ecdsa_setup: Duration,
    /// Everything else.
    pub other: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            ecdsa_setup: Duration::from_secs(600),
            other: Duration::from_secs(60),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Connected signers and running sessions.
    pub hub: Hub,
    /// Durable state.
    pub db: Db,
    /// The roster the server was started with.
    pub roster: Arc<Roster>,
    /// Request authentication.
    pub verifier: Verifier,
    /// Session deadlines.
    pub deadlines: Deadlines,
    /// Metrics.
    pub metrics: Metrics,
    /// Request rate limits.
    pub limiter: RateLimiter,
    /// One signing at a time per key chain.
    pub custody_locks: crate::custody::signing::KeyLocks,
    /// Alert thresholds and burst counters.
    pub alerts: crate::alerts::AlertState,
    /// The server's identity: it signs vault freeze orders (the key every signer pinned).
    pub identity: Arc<coffer_net::Identity>,
}

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with its status, stable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 404 `not_found` for a `what` the caller cannot see (missing, or another tenant's).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// For a database write: a unique-constraint violation becomes 409 `conflict` with
    /// `message`, any other failure the usual internal error.
    pub fn on_conflict(message: impl Into<String>) -> impl FnOnce(crate::db::DbError) -> ApiError {
        let message = message.into();
        move |e| {
            if e.is_conflict() {
                ApiError::conflict(message)
            } else {
                e.into()
            }
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let (status, code) = match &e {
            JobError::NotConnected(_) => (StatusCode::SERVICE_UNAVAILABLE, "signers_unavailable"),
            JobError::Stalled { .. } => (StatusCode::GATEWAY_TIMEOUT, "session_stalled"),
            JobError::Disconnected(_) => (StatusCode::BAD_GATEWAY, "signer_disconnected"),
            JobError::Refused { .. } => (StatusCode::FORBIDDEN, "signer_refused"),
            JobError::NotReady { .. } => (StatusCode::CONFLICT, "signers_not_ready"),
            JobError::Aborted { .. } => (StatusCode::BAD_GATEWAY, "protocol_aborted"),
            JobError::Inconsistent(_) => (StatusCode::INTERNAL_SERVER_ERROR, "inconsistent"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        tracing::error!("{e}");
        ApiError::internal("database error")
    }
}

/// What handlers return.
pub type ApiResult = Result<Json<Value>, ApiError>;

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/v1/signers", get(signers))
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{id}", get(show_key))
        .route("/v1/keys/{id}/sign", post(sign))
        .route("/v1/keys/{id}/refresh", post(refresh))
        .route("/v1/keys/{id}/reshare", post(reshare))
        .route(
            "/v1/vaults/{id}/refresh",
            post(crate::refresh::refresh_vault),
        )
        .route("/v1/incident/refresh", post(crate::refresh::refresh_all))
        .route("/v1/keys/{id}/backup", post(crate::backup::export))
        .route("/v1/keys/{id}/backup/drill", post(crate::backup::drill))
        .merge(crate::custody::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(crate::custody::caller::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_and_count,
        ))
        .with_state(state)
}

/// Rate limits every request by its claimed credential (or source address), and counts it.
async fn limit_and_count(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let caller = req
        .headers()
        .get(crate::auth::KEY)
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(64).collect::<String>())
        .or_else(|| {
            req.extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })
        .unwrap_or_default();
    let response = if s.limiter.allow(&caller) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this credential or address; slow down",
        )
        .into_response()
    };
    s.metrics
        .request(&method, &route, response.status().as_u16());
    response
}

async fn metrics(State(s): State<AppState>) -> Response {
    let connected = s
        .roster
        .signers
        .iter()
        .filter(|p| s.hub.is_connected(&p.node_key))
        .count();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(connected),
    )
        .into_response()
}

fn time_secs(t: Option<std::time::SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| json!(d.as_secs()))
        .unwrap_or(Value::Null)
}

async fn signers(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let list: Vec<Value> = s
        .roster
        .signers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v = s.hub.signer(&p.node_key);
            json!({
                "index": i,
                "name": p.name,
                "node_key": p.node_key,
                "connected": v.connected,
                "connected_at": time_secs(v.connected_at),
                "last_seen": time_secs(v.last_seen),
                "primes_ready": v.status.primes_ready,
                "primes_generating": v.status.primes_generating,
                "keys": v.status.keys.iter().map(|k| json!({"key_id": k.key_id, "epoch": k.epoch})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "signers": list })))
}

fn key_json(roster: &Roster, k: &KeyRecord) -> Value {
    json!({
        "key_id": k.id,
        "scheme": k.scheme.name(),
        "public_key": k.public_key,
        "threshold": k.threshold,
        "parties": k.parties.len(),
        "signers": members(k).iter().map(|(_, p)| name_of(roster, p)).collect::<Vec<_>>(),
        "removed": k.removed.iter().filter_map(|i| k.parties.get(usize::from(*i))).map(|p| name_of(roster, p)).collect::<Vec<_>>(),
        "epoch": k.epoch,
        "created_at": k.created_at,
        "party_keys": k.parties,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    scheme: String,
    threshold: Option<u16>,
}

fn new_key_id() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("k-{}", hex::encode(b))
}

/// Every signer must be connected and, for ECDSA, hold a set of safe primes.
pub(crate) fn check_ready(s: &AppState, keys: &[NodeKey], scheme: Scheme) -> Result<(), ApiError> {
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !s.hub.is_connected(k))
        .map(|k| name_of(&s.roster, k))
        .collect();
    if !missing.is_empty() {
        return Err(JobError::NotConnected(missing).into());
    }
    if scheme == Scheme::EcdsaSecp256k1 {
        let waiting: Vec<String> = keys
            .iter()
            .filter(|k| s.hub.signer(k).status.primes_ready == 0)
            .map(|k| name_of(&s.roster, k))
            .collect();
        if !waiting.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "primes_not_ready",
                format!(
                    "ECDSA keys need safe primes (Paillier keys) on every signer; still generating on: {} (this takes a minute or two per signer after its first start)",
                    waiting.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

async fn create_key(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let req: CreateKey = a.json()?;
    let scheme: Scheme = req.scheme.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "unknown scheme {:?} (ecdsa-secp256k1, schnorr-bip340, ed25519)",
            req.scheme
        ))
    })?;
    let record = generate_key(&s, scheme, req.threshold.unwrap_or(2)).await?;
    s.db.insert_key(&record).await?;
    Ok(Json(key_json(&s.roster, &record)))
}

/// Makes a key by DKG across every signer of the roster (threshold `t`) and returns its
/// record, not yet stored.
pub async fn generate_key(s: &AppState, scheme: Scheme, t: u16) -> Result<KeyRecord, ApiError> {
    let keys: Vec<NodeKey> = s.roster.signers.iter().map(|p| p.node_key).collect();
    let n = u16::try_from(keys.len()).map_err(|_| ApiError::internal("roster too large"))?;
    GroupParams::new(t, n).map_err(|e| ApiError::bad_request(e.to_string()))?;
    check_ready(s, &keys, scheme)?;
    let key_id = new_key_id();
    let job = Job {
        session: SessionId::random(),
        key_id: key_id.clone(),
        task: Task::Keygen {
            scheme,
            threshold: t,
        },
        parties: keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u16, *k))
            .collect(),
        epoch: None,
    };
    let deadline = match scheme {
        Scheme::EcdsaSecp256k1 => s.deadlines.ecdsa_setup,
        _ => s.deadlines.other,
    };
    let outcomes = coordinator::run(&s.hub, &s.roster, job, deadline).await?;
    let public_key = agreed_key(&s.roster, &outcomes)?;
    let chain_code = agreed_chain_code(&s.roster, &outcomes)?;
    tracing::info!(
        "key {key_id} ({}) created across {n} signers",
        scheme.name()
    );
    Ok(KeyRecord {
        id: key_id,
        scheme,
        threshold: t,
        parties: keys,
        public_key,
        chain_code,
        epoch: 0,
        removed: vec![],
        created_at: unix_now(),
    })
}

/// Every party reported the same chain code.
fn agreed_chain_code(roster: &Roster, outcomes: &[(NodeKey, Outcome)]) -> Result<String, ApiError> {
    let mut agreed: Option<&String> = None;
    for (k, o) in outcomes {
        let Outcome::KeyReady {
            chain_code: Some(cc),
            ..
        } = o
        else {
            return Err(JobError::Inconsistent(format!(
                "{} reported no chain code",
                name_of(roster, k)
            ))
            .into());
        };
        match agreed {
            None => agreed = Some(cc),
            Some(a) if a == cc => {}
            Some(_) => {
                return Err(JobError::Inconsistent(format!(
                    "{} reports a different chain code",
                    name_of(roster, k)
                ))
                .into())
            }
        }
    }
    agreed
        .cloned()
        .ok_or_else(|| ApiError::internal("no outcome"))
}

/// Every party reported the same key and epoch.
fn agreed_key(roster: &Roster, outcomes: &[(NodeKey, Outcome)]) -> Result<String, ApiError> {
    let mut agreed: Option<&String> = None;
    for (k, o) in outcomes {
        let Outcome::KeyReady { public_key, .. } = o else {
            return Err(
                JobError::Inconsistent(format!("{} reported {o:?}", name_of(roster, k))).into(),
            );
        };
        match agreed {
            None => agreed = Some(public_key),
            Some(a) if a == public_key => {}
            Some(_) => {
                return Err(JobError::Inconsistent(format!(
                    "{} reports a different public key",
                    name_of(roster, k)
                ))
                .into())
            }
        }
    }
    agreed
        .cloned()
        .ok_or_else(|| ApiError::internal("no outcome"))
}

async fn list_keys(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let keys = s.db.keys().await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(|k| key_json(&s.roster, k)).collect::<Vec<_>>() }),
    ))
}

async fn load_key(s: &AppState, id: &str) -> Result<KeyRecord, ApiError> {
    s.db.key(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no key {id:?}")))
}

async fn show_key(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let k = load_key(&s, &id).await?;
    let mut v = key_json(&s.roster, &k);
    v["signatures"] = json!(s.db.signature_count(&k.id).await?);
    v["pool_ready"] = json!(
        s.db.presignatures_ready(&k.id, crate::pool::pool_path(k.scheme))
            .await?
    );
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    /// What the scheme signs: a 32-byte digest (ECDSA, BIP340) or the message (Ed25519).
    message: Option<String>,
    /// Bytes the signers hash themselves (SHA-256) for ECDSA and BIP340, or sign as they
    /// are for Ed25519. ECDSA signs these from a pooled presignature when one is ready.
    preimage: Option<String>,
    path: Option<String>,
}

/// The key's current members (not removed by a reshare), as (party index, signer).
pub fn members(k: &KeyRecord) -> Vec<(u16, NodeKey)> {
    k.parties
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u16, *p))
        .filter(|(i, _)| !k.removed.contains(i))
        .collect()
}

fn connected_members(s: &AppState, k: &KeyRecord) -> Vec<(u16, NodeKey)> {
    members(k)
        .into_iter()
        .filter(|(_, p)| s.hub.is_connected(p))
        .collect()
}

/// Signs from the pool (an ECDSA presignature for this path, or FROST nonces) if an item
/// is ready with all its signers connected. `None` when there is none, or when the signers
/// refused it (the caller then signs the interactive way).
async fn sign_presigned(
    s: &AppState,
    k: &KeyRecord,
    path: &str,
    input: SignInput,
) -> Result<Option<(Vec<(NodeKey, Outcome)>, Vec<(u16, NodeKey)>)>, ApiError> {
    let pool_path = match k.scheme {
        Scheme::EcdsaSecp256k1 => path,
        _ => crate::pool::ANY_PATH,
    };
    let claimed =
        s.db.claim_presignature(&k.id, pool_path, |set| {
            set.iter().all(|i| {
                k.parties
                    .get(usize::from(*i))
                    .is_some_and(|p| s.hub.is_connected(p))
            })
        })
        .await?;
    let Some((id, set)) = claimed else {
        return Ok(None);
    };
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(&id, &mut bytes).is_err() {
        return Ok(None);
    }
    let parties: Vec<(u16, NodeKey)> = set
        .iter()
        .filter_map(|i| k.parties.get(usize::from(*i)).map(|p| (*i, *p)))
        .collect();
    let job = Job {
        session: SessionId::random(),
        key_id: k.id.clone(),
        task: Task::SignPresigned {
            presignature: SessionId::from_bytes(bytes),
            path: path.to_string(),
            input,
        },
        parties: parties.clone(),
        epoch: Some(k.epoch),
    };
    match coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await {
        Ok(outcomes) => Ok(Some((outcomes, parties))),
        Err(e) => {
            tracing::warn!("presigned signing with {id} failed ({e}); signing interactively");
            Ok(None)
        }
    }
}

async fn sign(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    if !s.roster.dev_mode {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "raw_signing_disabled",
            "raw-message signing is allowed in dev mode only; production signing goes through vaults, policy and approvals",
        ));
    }
    let req: SignRequest = a.json()?;
    let k = load_key(&s, &id).await?;
    let unhex = |what: &str, v: &str| {
        hex::decode(v.trim()).map_err(|_| ApiError::bad_request(format!("{what} must be hex")))
    };
    let (message, preimage) = match (&req.message, &req.preimage) {
        (Some(m), None) => (unhex("message", m)?, None),
        (None, Some(p)) => {
            let p = unhex("preimage", p)?;
            let m = match k.scheme {
                Scheme::Ed25519 => p.clone(),
                _ => {
                    use sha2::Digest;
                    sha2::Sha256::digest(&p).to_vec()
                }
            };
            (m, Some(p))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `message` (what the scheme signs) and `preimage` (bytes the signers hash)",
            ))
        }
    };
    coffer_proto::verify::check_message(k.scheme, &message)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let path_text = req.path.unwrap_or_else(|| "m".into());
    let path: DerivationPath = path_text
        .parse()
        .map_err(|e| ApiError::bad_request(format!("path: {e}")))?;
    let input = match (&preimage, k.scheme) {
        (Some(p), _) => Some(SignInput::Preimage(p.clone())),
        (None, Scheme::EcdsaSecp256k1) => None,
        (None, _) => Some(SignInput::Message(message.clone())),
    };
    let presigned = match input {
        Some(input) => sign_presigned(&s, &k, &path.to_string(), input).await?,
        None => None,
    };
    let was_presigned = presigned.is_some();
    let (outcomes, signers) = match presigned {
        Some(done) => done,
        None => {
            let connected: Vec<(u16, NodeKey)> = connected_members(&s, &k)
                .into_iter()
                .take(usize::from(k.threshold))
                .collect();
            if connected.len() < usize::from(k.threshold) {
                return Err(JobError::NotConnected(
                    members(&k)
                        .iter()
                        .filter(|(_, p)| !s.hub.is_connected(p))
                        .map(|(_, p)| name_of(&s.roster, p))
                        .collect(),
                )
                .into());
            }
            let job = Job {
                session: SessionId::random(),
                key_id: k.id.clone(),
                task: Task::Sign {
                    message: message.clone(),
                    path: path.to_string(),
                },
                parties: connected.clone(),
                epoch: Some(k.epoch),
            };
            (
                coordinator::run(&s.hub, &s.roster, job, s.deadlines.other).await?,
                connected,
            )
        }
    };
    let (signature, recovery_id, public_key) = agreed_signature(&s.roster, &outcomes)?;
    // The server checks too: a signature counts when an independent verifier accepts it.
    let sig_bytes = hex::decode(&signature).map_err(|_| ApiError::internal("signature hex"))?;
    let pk = hex::decode(&public_key).map_err(|_| ApiError::internal("public key hex"))?;
    if !coffer_proto::verify::verify(k.scheme, &pk, &message, &sig_bytes).unwrap_or(false) {
        return Err(JobError::Inconsistent("the signers' signature does not verify".into()).into());
    }
    let signer_names: Vec<String> = signers.iter().map(|(_, p)| name_of(&s.roster, p)).collect();
    s.db.insert_signature(
        &k.id,
        &path.to_string(),
        &hex::encode(&message),
        &signature,
        &signer_names,
    )
    .await?;
    let mut out = json!({
        "key_id": k.id,
        "scheme": k.scheme.name(),
        "path": path.to_string(),
        "public_key": public_key,
        "message": hex::encode(&message),
        "signature": signature,
        "signers": signer_names,
        "presigned": was_presigned,
    });
    if let Some(r) = recovery_id {
        out["recovery_id"] = json!(r);
    }
    Ok(Json(out))
}

type AgreedSignature = (String, Option<u8>, String);

fn agreed_signature(
    roster: &Roster,
    outcomes: &[(NodeKey, Outcome)],
) -> Result<AgreedSignature, ApiError> {
    let mut agreed: Option<AgreedSignature> = None;
    for (k, o) in outcomes {
        let Outcome::Signed {
            signature,
            recovery_id,
            public_key,
            ..
        } = o
        else {
            return Err(
                JobError::Inconsistent(format!("{} reported {o:?}", name_of(roster, k))).into(),
            );
        };
        let this = (signature.clone(), *recovery_id, public_key.clone());
        match &agreed {
            None => agreed = Some(this),
            Some(a) if *a == this => {}
            Some(_) => {
                return Err(JobError::Inconsistent(format!(
                    "{} reports a different signature",
                    name_of(roster, k)
                ))
                .into())
            }
        }
    }
    agreed.ok_or_else(|| ApiError::internal("no outcome"))
}

/// Refreshes the key's shares in two phases ([`crate::refresh`]): same public key, next
/// epoch, old shares deleted only after every signer committed the new one.
async fn refresh(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let k = load_key(&s, &id).await?;
    let renewed = crate::refresh::refresh_key(&s, &k, &a.caller.actor()).await?;
    let mut k = k;
    k.epoch = renewed.new_epoch;
    Ok(Json(key_json(&s.roster, &k)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReshareRequest {
    /// Signers (by name) to remove from the key's group.
    remove: Vec<String>,
}

/// Reshares a FROST key among its members minus `remove`: same public key, next epoch; the
/// removed signers' shares no longer combine with the new ones (CGGMP keys cannot do this).
async fn reshare(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Operator])?;
    let req: ReshareRequest = a.json()?;
    let k = load_key(&s, &id).await?;
    if k.scheme == Scheme::EcdsaSecp256k1 {
        return Err(ApiError::bad_request(
            "cggmp24 keys cannot be reshared; refresh them, or move funds to a new key",
        ));
    }
    let mut removed = k.removed.clone();
    for name in &req.remove {
        let Some((i, _)) = members(&k)
            .into_iter()
            .find(|(_, p)| name_of(&s.roster, p) == *name)
        else {
            return Err(ApiError::bad_request(format!(
                "{name:?} is not a member of key {}",
                k.id
            )));
        };
        removed.push(i);
    }
    if req.remove.is_empty() {
        return Err(ApiError::bad_request("name at least one signer to remove"));
    }
    let stay: Vec<(u16, NodeKey)> = members(&k)
        .into_iter()
        .filter(|(i, _)| !removed.contains(i))
        .collect();
    if stay.len() < usize::from(k.threshold) {
        return Err(ApiError::bad_request(format!(
            "{} members would remain, below the threshold {}",
            stay.len(),
            k.threshold
        )));
    }
    let keys: Vec<NodeKey> = stay.iter().map(|(_, p)| *p).collect();
    check_ready(&s, &keys, k.scheme)?;
    let task = Task::Reshare {
        members: stay.iter().map(|(i, _)| *i).collect(),
    };
    let actor = a.caller.actor();
    let lock = s.custody_locks.of(&k.id);
    let _held = lock.lock().await;
    let epoch = crate::refresh::renew(&s, &k, stay.clone(), task, &actor)
        .await?
        .new_epoch;
    removed.sort_unstable();
    s.db.set_reshared(&k.id, epoch, &removed).await?;
    s.db.discard_presignatures(&k.id).await?;
    crate::refresh::prune(&s, &k, &stay, epoch, &actor).await;
    let mut k = k;
    k.epoch = epoch;
    k.removed = removed;
    Ok(Json(key_json(&s.roster, &k)))
}
