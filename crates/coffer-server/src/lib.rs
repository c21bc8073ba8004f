//! The Coffer server: relays signers' envelopes ([`relay`]), runs protocol sessions across
//! them ([`coordinator`], [`hub`]), serves the custody API ([`api`], [`custody`], [`auth`])
//! with its audit log ([`audit`]) and alerts ([`alerts`]), delivers the tenants' events to
//! their signed webhooks through a durable outbox ([`webhooks`]), and keeps its state in
//! SQLite or PostgreSQL ([`db`]). It holds no share and cannot make a signer sign: signers check
//! every job against what they pinned at enrolment.
//!
//! Data directory: `identity.key` (the server's Ed25519 TLS identity, mode 0600),
//! `roster.json` (the admin-signed roster), `coffer.db`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alert_response;
pub mod alerts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod coordinator;
pub mod custody;
pub mod db;
pub mod hub;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod ratelimit;
pub mod refresh;
pub mod relay;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_net::roster::SignedRoster;
use coffer_net::{Identity, NodeKey};

/// Whether this build carries the test-only relay fault switch (CI checks the release
/// binary says `false`).
pub const RELAY_FAULTS_COMPILED_IN: bool = cfg!(feature = "relay-faults");

/// Where and how the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTP API address.
    pub api_listen: SocketAddr,
    /// Address signers dial (TLS).
    pub signer_listen: SocketAddr,
    /// Session deadlines.
    pub deadlines: api::Deadlines,
    /// ECDSA presignatures kept ready per key (0: no pool).
    pub presign_pool: usize,
    /// The database: `None` for the embedded SQLite file `coffer.db` in the data directory,
    /// or a `sqlite://` / `postgres://` URL.
    pub database_url: Option<String>,
    /// Request rate limits per credential.
    pub rate_limits: ratelimit::Limits,
    /// How often the signers are asked to co-sign the audit chains' new heads
    /// ([`custody::checkpoints`]).
    pub checkpoint_every: std::time::Duration,
    /// Alert detectors' thresholds and the signer-silence check.
    pub alerts: alerts::AlertConfig,
    /// Webhook delivery: backoff, attempts, timeout, poll interval ([`webhooks::worker`]).
    pub webhooks: webhooks::WebhookConfig,
}

/// The default of [`ServerConfig::checkpoint_every`].
pub const DEFAULT_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The identity or roster file is not valid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The identity file in a data directory.
pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("identity.key")
}

/// The roster file in a data directory.
pub fn roster_path(data_dir: &Path) -> PathBuf {
    data_dir.join("roster.json")
}

/// Creates the data directory and the server identity (refuses to overwrite one) and
/// returns its public key, which goes into the roster.
pub fn init(data_dir: &Path) -> Result<NodeKey, ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let path = identity_path(data_dir);
    let id = Identity::generate("server");
    let bytes = id.to_secret_bytes().map_err(|e| ServerError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    f.write_all(&bytes).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(id.node_key())
}

/// Loads the server identity.
pub fn load_identity(data_dir: &Path) -> Result<Identity, ServerError> {
    let path = identity_path(data_dir);
    let bytes = zeroize::Zeroizing::new(std::fs::read(&path).map_err(io(&path))?);
    Identity::from_secret_bytes(&bytes).map_err(|e| ServerError::Invalid {
        path,
        reason: e.to_string(),
    })
}

/// Loads and checks the roster (consistent, signed by a quorum of its admins, naming this
/// server's key).
pub fn load_roster(data_dir: &Path, me: &NodeKey) -> Result<SignedRoster, ServerError> {
    let path = roster_path(data_dir);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let invalid = |reason: String| ServerError::Invalid {
        path: path.clone(),
        reason,
    };
    let roster: SignedRoster = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    roster
        .check_for_enrolment()
        .map_err(|e| invalid(e.to_string()))?;
    if roster.roster.server != *me {
        return Err(invalid("the roster names another server key".into()));
    }
    Ok(roster)
}

/// A started server.
pub struct Running {
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The relay's bound address.
    pub signer_addr: SocketAddr,
    /// The hub (tests and `coffer dev` read it).
    pub hub: hub::Hub,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Starts the relay and the API on the current tokio runtime.
pub async fn start(config: &ServerConfig) -> Result<Running, ServerError> {
    let identity = Arc::new(load_identity(&config.data_dir)?);
    let signed = load_roster(&config.data_dir, &identity.node_key())?;
    let roster = signed.roster;
    let db = match &config.database_url {
        Some(url) => db::Db::connect(url).await?,
        None => db::Db::open(&config.data_dir.join("coffer.db")).await?,
    };
    let hub = hub::Hub::default();
    let signer_listener = tokio::net::TcpListener::bind(config.signer_listen)
        .await
        .map_err(io(&config.data_dir))?;
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(io(&config.data_dir))?;
    let signer_addr = signer_listener.local_addr().map_err(io(&config.data_dir))?;
    let api_addr = api_listener.local_addr().map_err(io(&config.data_dir))?;
    let state = api::AppState {
        hub: hub.clone(),
        db,
        roster: Arc::new(roster.clone()),
        verifier: auth::Verifier::new(),
        deadlines: config.deadlines,
        metrics: metrics::Metrics::default(),
        limiter: ratelimit::RateLimiter::new(config.rate_limits),
        custody_locks: custody::signing::KeyLocks::default(),
        alerts: alerts::AlertState::new(config.alerts),
        identity: identity.clone(),
    };
    custody::freeze::load_orders(&state).await?;
    let relay_task = tokio::spawn(relay::serve(signer_listener, identity, roster, hub.clone()));
    let pool_task = tokio::spawn(pool::refill(state.clone(), config.presign_pool));
    let expire_task = tokio::spawn(custody::signing::expire_loop(state.clone()));
    let checkpoint_task = tokio::spawn(custody::checkpoints::run(
        state.clone(),
        config.checkpoint_every,
    ));
    let silence_task = tokio::spawn(alerts::silence_watch(state.clone()));
    let webhook_task = tokio::spawn(webhooks::worker::run(state.db.clone(), config.webhooks));
    custody::signing::resume(&state).await;
    let app = api::router(state);
    let api_task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(api_listener, service).await {
            tracing::error!("API server stopped: {e}");
        }
    });
    Ok(Running {
        api_addr,
        signer_addr,
        hub,
        tasks: vec![
            relay_task,
            api_task,
            pool_task,
            expire_task,
            checkpoint_task,
            silence_task,
            webhook_task,
        ],
    })
}
