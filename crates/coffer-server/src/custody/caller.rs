//! Who is calling: the [`Authed`] extractor verifies the request signature, resolves the key
//! to a platform operator (a roster admin key) or a tenant credential with its role, spends
//! the nonce, and records every refusal in the audit log. Handlers then state the roles
//! they accept with [`Caller::require`] and scope lookups with [`Caller::tenant`].

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use coffer_net::NodeKey;

use crate::api::{ApiError, AppState};
use crate::audit::{AuditEvent, PLATFORM};
use crate::auth::AuthError;
use crate::db::unix_now;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A caller's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A platform operator (roster admin key): tenants, their first users, signers, keys.
    Operator,
    /// A tenant administrator: users, vaults, wallets, policies.
    Admin,
    /// Creates transaction requests.
    Initiator,
    /// Approves or rejects transaction requests.
    Approver,
    /// Reads the tenant's objects.
    Viewer,
    /// Reads the tenant's objects and its audit log.
    Auditor,
}

impl Role {
    /// The role's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Initiator => "initiator",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }

    /// A tenant role by name (operators are not a credential role).
    pub fn tenant_role(name: &str) -> Option<Role> {
        Some(match name {
            "admin" => Role::Admin,
            "initiator" => Role::Initiator,
            "approver" => Role::Approver,
            "viewer" => Role::Viewer,
            "auditor" => Role::Auditor,
            _ => return None,
        })
    }

    /// Every tenant role (reads of the tenant's objects).
    pub const TENANT: &'static [Role] = &[
        Role::Admin,
        Role::Initiator,
        Role::Approver,
        Role::Viewer,
        Role::Auditor,
    ];
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The credential's key.
    pub key: NodeKey,
    /// Its role.
    pub role: Role,
    /// Its tenant (none for operators).
    pub tenant: Option<String>,
    /// Its user id (none for operators).
    pub user: Option<String>,
}

impl Caller {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs the role {}; the credential has the role {}",
                    roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    self.role.name()
                ),
            ))
        }
    }

    /// The caller's tenant (refused for operators, who belong to none).
    pub fn tenant(&self) -> Result<&str, ApiError> {
        self.tenant.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "platform operators hold no tenant objects; use a tenant credential",
            )
        })
    }

    /// The caller's audit chain.
    pub fn chain(&self) -> &str {
        self.tenant.as_deref().unwrap_or(PLATFORM)
    }

    /// The actor recorded in audit entries.
    pub fn actor(&self) -> String {
        self.key.to_hex()
    }
}

/// A verified request: its caller and body.
pub struct Authed {
    /// Who.
    pub caller: Caller,
    /// The raw body (already covered by the signature).
    pub body: Bytes,
}

impl Authed {
    /// The body as JSON of type `T` (unknown fields are refused by `T`'s serde attributes).
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

impl FromRequest<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        })?;
        let caller = authenticate(
            state,
            parts.method.as_str(),
            parts.uri.path(),
            &parts.headers,
            &body,
            peer,
        )
        .await?;
        Ok(Authed { caller, body })
    }
}

/// Verifies a request and resolves its caller; every refusal is recorded.
pub async fn authenticate(
    s: &AppState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<SocketAddr>,
) -> Result<Caller, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let signed = match s.verifier.verify_signature(method, path, body, header) {
        Ok(signed) => signed,
        Err(e) => {
            let claimed = header(crate::auth::KEY).unwrap_or_default();
            return Err(refused(s, PLATFORM, &claimed, method, path, peer, e).await);
        }
    };
    let caller = if s.roster.admins.contains(&signed.key) {
        Caller {
            key: signed.key,
            role: Role::Operator,
            tenant: None,
            user: None,
        }
    } else {
        match s.db.credential(&signed.key.to_hex()).await? {
            Some(c) if !c.disabled => match Role::tenant_role(&c.role) {
                Some(role) => Caller {
                    key: signed.key,
                    role,
                    tenant: Some(c.tenant_id),
                    user: Some(c.user_id),
                },
                None => {
                    return Err(refused(
                        s,
                        &c.tenant_id,
                        &signed.key.to_hex(),
                        method,
                        path,
                        peer,
                        AuthError::UnknownKey,
                    )
                    .await)
                }
            },
            Some(c) => {
                return Err(refused(
                    s,
                    &c.tenant_id,
                    &signed.key.to_hex(),
                    method,
                    path,
                    peer,
                    AuthError::Disabled,
                )
                .await)
            }
            None => {
                return Err(refused(
                    s,
                    PLATFORM,
                    &signed.key.to_hex(),
                    method,
                    path,
                    peer,
                    AuthError::UnknownKey,
                )
                .await)
            }
        }
    };
    if let Err(e) = s.verifier.spend_nonce(&signed) {
        return Err(refused(s, caller.chain(), &caller.actor(), method, path, peer, e).await);
    }
    Ok(caller)
}

/// Records a refused authentication and makes the 401 for it.
async fn refused(
    s: &AppState,
    chain: &str,
    actor: &str,
    method: &str,
    path: &str,
    peer: Option<SocketAddr>,
    e: AuthError,
) -> ApiError {
    s.metrics.auth_refused();
    let actor: String = if actor.len() == 64 && actor.bytes().all(|b| b.is_ascii_hexdigit()) {
        actor.to_string()
    } else {
        "unknown".to_string()
    };
    let event = AuditEvent {
        tenant: chain.to_string(),
        actor: actor.clone(),
        action: "auth.refused".into(),
        object: String::new(),
        detail: json!({
            "reason": e.to_string(),
            "method": method,
            "path": path.chars().take(200).collect::<String>(),
            "source": peer.map(|p| p.ip().to_string()),
        }),
    };
    if let Err(err) = s.db.append_audit(event, unix_now()).await {
        tracing::error!("could not record a refused authentication: {err}");
    }
    crate::alerts::on_auth_failure(s, chain, &actor, peer, &e.to_string()).await;
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
}
