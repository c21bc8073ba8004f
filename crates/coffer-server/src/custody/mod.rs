//! The custody API: tenants and their users, vaults (one key per scheme, made by DKG on the
//! signers), wallets and addresses, admin-signed policies, transaction requests with their
//! approvals, and the audit log. Every route authenticates a signed request
//! ([`caller::Authed`]), checks the caller's role, and scopes every lookup to the caller's
//! tenant: another tenant's object is "not found". Every state change appends an audit
//! entry in the same database transaction, so a change whose entry cannot be written does
//! not happen. Signing is done by [`signing`], which hands the signers everything they
//! need to check the request themselves; [`freeze`] freezes and unfreezes vaults on the
//! signers; [`checkpoints`] has the signers co-sign the audit
//! chains' heads.

pub mod audit_routes;
pub mod caller;
pub mod checkpoints;
pub mod freeze;
pub mod policies;
pub mod signing;
pub mod tenants;
pub mod transactions;
pub mod vaults;

use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::api::AppState;

/// The custody routes (merged into the API router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/whoami", get(tenants::whoami))
        .route(
            "/v1/tenants",
            post(tenants::create_tenant).get(tenants::list_tenants),
        )
        .route(
            "/v1/users",
            post(tenants::add_user).get(tenants::list_users),
        )
        .route(
            "/v1/credentials/{key}/disable",
            post(tenants::disable_credential),
        )
        .route(
            "/v1/vaults",
            post(vaults::create_vault).get(vaults::list_vaults),
        )
        .route("/v1/vaults/{id}", get(vaults::show_vault))
        .route("/v1/vaults/{id}/freeze", post(freeze::freeze))
        .route("/v1/vaults/{id}/unfreeze", post(freeze::unfreeze))
        .route(
            "/v1/vaults/{id}/wallets",
            post(vaults::create_wallet).get(vaults::list_wallets),
        )
        .route("/v1/wallets/{id}", get(vaults::show_wallet))
        .route(
            "/v1/wallets/{id}/addresses",
            post(vaults::new_address).get(vaults::list_addresses),
        )
        .route(
            "/v1/vaults/{id}/policy",
            put(policies::set_policy).get(policies::show_policy),
        )
        .route("/v1/vaults/{id}/policies", get(policies::policy_history))
        .route("/v1/policy/admins", get(policies::policy_admins))
        .route(
            "/v1/transactions",
            post(transactions::create).get(transactions::list),
        )
        .route("/v1/transactions/{id}", get(transactions::show))
        .route("/v1/transactions/{id}/approve", post(transactions::approve))
        .route("/v1/transactions/{id}/reject", post(transactions::reject))
        .route("/v1/audit", get(audit_routes::list))
        .route("/v1/audit/export", get(audit_routes::export))
        .route("/v1/audit/verify", get(audit_routes::verify))
        .route("/v1/alerts", get(crate::alerts::list))
        .route("/v1/alerts/{id}", get(crate::alerts::show))
        .route("/v1/alerts/{id}/ack", post(crate::alerts::ack))
        .route(
            "/v1/tenant/alert-responses",
            put(crate::alert_response::set).get(crate::alert_response::show),
        )
        .route(
            "/v1/tenant/working-hours",
            put(crate::alerts::set_hours).get(crate::alerts::show_hours),
        )
        .route(
            "/v1/webhooks",
            post(crate::webhooks::routes::create).get(crate::webhooks::routes::list),
        )
        .route("/v1/webhooks/{id}", delete(crate::webhooks::routes::remove))
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(crate::webhooks::routes::deliveries),
        )
        .route(
            "/v1/webhooks/deliveries/{id}/retry",
            post(crate::webhooks::routes::retry),
        )
}

/// A fresh random id with a prefix (`v-`, `w-`, `t-`, `u-`).
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// Checks a user-chosen name: 1 to 64 characters, letters, digits, `-`, `_`, `.`, space.
pub fn check_name(what: &str, name: &str) -> Result<(), crate::api::ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if ok {
        Ok(())
    } else {
        Err(crate::api::ApiError::bad_request(format!(
            "{what} must be 1 to 64 characters of letters, digits, '-', '_', '.' or space"
        )))
    }
}
