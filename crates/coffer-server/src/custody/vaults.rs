//! Vaults, wallets and addresses. A vault owns one key per scheme, each made by DKG across
//! the signers when the vault is created. A wallet uses one of the vault's keys for one
//! asset and takes the next wallet index `w`; its addresses are the non-hardened children
//! `m/w/i` of the vault key, derived from public data only (the group key and its chain
//! code), so deposit addresses never need the signers.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use coffer_proto::path::{DerivationPath, HARDENED};
use coffer_proto::scheme::Scheme;

use super::caller::{Authed, Caller, Role};
use super::{check_name, new_id};
use crate::api::{ApiError, ApiResult, AppState};
use crate::audit::AuditEvent;
use crate::db::{unix_now, AddressRecord, KeyRecord, VaultRecord, WalletRecord};

/// A vault as the API shows it.
pub async fn vault_json(s: &AppState, v: &VaultRecord) -> Result<Value, ApiError> {
    let mut keys = Vec::new();
    for (scheme, key_id) in &v.keys {
        if let Some(k) = s.db.key(key_id).await? {
            keys.push(json!({
                "scheme": scheme,
                "key_id": k.id,
                "public_key": k.public_key,
                "threshold": k.threshold,
                "parties": k.parties.len(),
                "epoch": k.epoch,
            }));
        }
    }
    let policy = s.db.current_policy(&v.id).await?;
    let freeze = s.db.freeze_state(&v.id).await?.unwrap_or_default();
    Ok(json!({
        "frozen": freeze.frozen,
        "freeze": super::freeze::freeze_json(s, &v.id, &freeze),
        "id": v.id,
        "name": v.name,
        "tenant": v.tenant_id,
        "created_at": v.created_at,
        "keys": keys,
        "policy_version": policy.map(|p| p.version),
    }))
}

/// The caller's vault `id` (another tenant's vault is not found).
pub async fn load_vault(s: &AppState, c: &Caller, id: &str) -> Result<VaultRecord, ApiError> {
    s.db.vault(c.tenant()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found("vault"))
}

/// The caller's wallet `id`.
pub async fn load_wallet(s: &AppState, c: &Caller, id: &str) -> Result<WalletRecord, ApiError> {
    s.db.wallet(c.tenant()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVault {
    name: String,
    schemes: Option<Vec<String>>,
    threshold: Option<u16>,
}

/// `POST /v1/vaults` (admins): one key per scheme by DKG on the signers.
pub async fn create_vault(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let tenant = a.caller.tenant()?.to_string();
    let req: NewVault = a.json()?;
    check_name("vault name", &req.name)?;
    let names = req.schemes.unwrap_or_else(|| {
        ["ecdsa-secp256k1", "schnorr-bip340", "ed25519"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut schemes: Vec<Scheme> = Vec::new();
    for n in &names {
        let scheme: Scheme = n.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "unknown scheme {n:?} (ecdsa-secp256k1, schnorr-bip340, ed25519)"
            ))
        })?;
        if schemes.contains(&scheme) {
            return Err(ApiError::bad_request(format!("scheme {n} named twice")));
        }
        schemes.push(scheme);
    }
    if schemes.is_empty() {
        return Err(ApiError::bad_request("a vault needs at least one scheme"));
    }
    if s.db
        .vaults(&tenant)
        .await?
        .iter()
        .any(|v| v.name == req.name)
    {
        return Err(ApiError::conflict(format!(
            "a vault named {:?} exists",
            req.name
        )));
    }
    let mut keys: Vec<KeyRecord> = Vec::new();
    for scheme in &schemes {
        keys.push(crate::api::generate_key(&s, *scheme, req.threshold.unwrap_or(2)).await?);
    }
    let vault = VaultRecord {
        id: new_id("v-"),
        tenant_id: tenant.clone(),
        name: req.name,
        created_at: unix_now(),
        keys: keys
            .iter()
            .map(|k| (k.scheme.name().to_string(), k.id.clone()))
            .collect(),
    };
    let mut tx = s.db.begin().await?;
    for k in &keys {
        tx.insert_key(k).await?;
    }
    tx.insert_vault(&vault)
        .await
        .map_err(ApiError::on_conflict("a vault with that name exists"))?;
    tx.append_audit(
        AuditEvent {
            tenant: tenant.clone(),
            actor: a.caller.actor(),
            action: "vault.created".into(),
            object: vault.id.clone(),
            detail: json!({
                "name": vault.name,
                "keys": keys.iter().map(|k| json!({"scheme": k.scheme.name(), "key_id": k.id, "public_key": k.public_key})).collect::<Vec<_>>(),
            }),
        },
        vault.created_at,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(vault_json(&s, &vault).await?))
}

/// `GET /v1/vaults`.
pub async fn list_vaults(State(s): State<AppState>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let mut out = Vec::new();
    for v in s.db.vaults(a.caller.tenant()?).await? {
        out.push(vault_json(&s, &v).await?);
    }
    Ok(Json(json!({ "vaults": out })))
}

/// `GET /v1/vaults/{id}`.
pub async fn show_vault(State(s): State<AppState>, Path(id): Path<String>, a: Authed) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let v = load_vault(&s, &a.caller, &id).await?;
    Ok(Json(vault_json(&s, &v).await?))
}

fn wallet_json(w: &WalletRecord, key_id: Option<&str>) -> Value {
    json!({
        "id": w.id,
        "vault_id": w.vault_id,
        "name": w.name,
        "scheme": w.scheme,
        "asset": w.asset,
        "index": w.index,
        "chain": w.chain,
        "network": w.network,
        "key_id": key_id,
        "created_at": w.created_at,
    })
}

/// The vault key a wallet signs with.
pub fn wallet_key<'a>(v: &'a VaultRecord, w: &WalletRecord) -> Option<&'a str> {
    v.keys
        .iter()
        .find(|(scheme, _)| *scheme == w.scheme)
        .map(|(_, k)| k.as_str())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWallet {
    name: String,
    scheme: String,
    asset: String,
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    network: Option<String>,
}

/// Checks an asset code: 1 to 16 characters of `A-Z`, `0-9`, `-`, `.`; or an ERC-20 token
/// as `ERC20:<EIP-55 contract address>` (what the signers decode a token transfer to).
pub fn check_asset(asset: &str) -> Result<(), ApiError> {
    if let Some(contract) = asset.strip_prefix("ERC20:") {
        return match coffer_chains::eth::parse_address(contract) {
            Ok(checksummed) if checksummed == contract => Ok(()),
            Ok(checksummed) => Err(ApiError::bad_request(format!(
                "an ERC-20 asset names its contract in EIP-55 form: ERC20:{checksummed}"
            ))),
            Err(e) => Err(ApiError::bad_request(format!("ERC-20 contract: {e}"))),
        };
    }
    let ok = (1..=16).contains(&asset.len())
        && asset
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "asset must be 1 to 16 characters of A-Z, 0-9, '-', '.' (BTC, ETH, SOL, USDC), or ERC20:<contract>",
        ))
    }
}

/// A wallet's chain and network: the chain must have addresses for the scheme's keys, the
/// network must be one of the chain's, and the asset must be the chain's (`BTC`, `ETH` or an
/// `ERC20:` token, `SOL`), since the signers decode transactions to those.
fn check_chain(
    req: &NewWallet,
    scheme: Scheme,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let Some(name) = &req.chain else {
        if req.network.is_some() {
            return Err(ApiError::bad_request("a network needs a chain"));
        }
        return Ok((None, None));
    };
    let bad = |e: coffer_chains::ChainError| ApiError::bad_request(e.to_string());
    let chain: coffer_chains::Chain = name.parse().map_err(bad)?;
    let key_scheme = coffer_chains::KeyScheme::from_name(scheme.name()).map_err(bad)?;
    coffer_chains::check_supported(chain, req.network.as_deref(), key_scheme).map_err(bad)?;
    let native = match chain {
        coffer_chains::Chain::Bitcoin => "BTC",
        coffer_chains::Chain::Ethereum => "ETH",
        coffer_chains::Chain::Solana => "SOL",
    };
    let token_ok = chain == coffer_chains::Chain::Ethereum && req.asset.starts_with("ERC20:");
    if req.asset != native && !token_ok {
        return Err(ApiError::bad_request(format!(
            "a {chain} wallet holds {native}{}, not {}",
            if chain == coffer_chains::Chain::Ethereum {
                " or an ERC20:<contract> token"
            } else {
                ""
            },
            req.asset
        )));
    }
    let network = match chain {
        coffer_chains::Chain::Bitcoin => {
            Some(req.network.clone().unwrap_or_else(|| "mainnet".into()))
        }
        _ => req.network.clone(),
    };
    Ok((Some(chain.name().to_string()), network))
}

/// `POST /v1/vaults/{id}/wallets` (admins).
pub async fn create_wallet(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(&[Role::Admin])?;
    let v = load_vault(&s, &a.caller, &id).await?;
    let req: NewWallet = a.json()?;
    check_name("wallet name", &req.name)?;
    check_asset(&req.asset)?;
    let scheme: Scheme = req
        .scheme
        .parse()
        .map_err(|_| ApiError::bad_request(format!("unknown scheme {:?}", req.scheme)))?;
    if !v.keys.iter().any(|(sch, _)| sch == scheme.name()) {
        return Err(ApiError::bad_request(format!(
            "vault {} has no {} key",
            v.id,
            scheme.name()
        )));
    }
    let (chain, network) = check_chain(&req, scheme)?;
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let index = tx.next_wallet_index(&v.id).await?;
    if index >= HARDENED {
        return Err(ApiError::conflict("the vault has no wallet index left"));
    }
    let w = WalletRecord {
        id: new_id("w-"),
        tenant_id: v.tenant_id.clone(),
        vault_id: v.id.clone(),
        name: req.name,
        scheme: scheme.name().to_string(),
        asset: req.asset,
        index,
        chain,
        network,
        created_at: now,
    };
    tx.insert_wallet(&w)
        .await
        .map_err(ApiError::on_conflict(format!(
            "vault {} has a wallet named {:?}",
            v.id, w.name
        )))?;
    tx.append_audit(
        AuditEvent {
            tenant: v.tenant_id.clone(),
            actor: a.caller.actor(),
            action: "wallet.created".into(),
            object: w.id.clone(),
            detail: json!({"vault": v.id, "name": w.name, "scheme": w.scheme, "asset": w.asset, "index": w.index, "chain": w.chain, "network": w.network}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(wallet_json(&w, wallet_key(&v, &w))))
}

/// `GET /v1/vaults/{id}/wallets`.
pub async fn list_wallets(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let v = load_vault(&s, &a.caller, &id).await?;
    let list = s.db.wallets(&v.tenant_id, &v.id).await?;
    Ok(Json(json!({
        "wallets": list.iter().map(|w| wallet_json(w, wallet_key(&v, w))).collect::<Vec<_>>()
    })))
}

/// `GET /v1/wallets/{id}`.
pub async fn show_wallet(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let w = load_wallet(&s, &a.caller, &id).await?;
    let v = load_vault(&s, &a.caller, &w.vault_id).await?;
    Ok(Json(wallet_json(&w, wallet_key(&v, &w))))
}

/// The public key of `key` at `path` (from its group key and chain code).
pub fn child_public_key(k: &KeyRecord, path: &DerivationPath) -> Result<Vec<u8>, ApiError> {
    let pk = hex::decode(&k.public_key).map_err(|_| ApiError::internal("stored public key"))?;
    let mut cc = [0u8; 32];
    hex::decode_to_slice(&k.chain_code, &mut cc)
        .map_err(|_| ApiError::internal("the key has no chain code recorded"))?;
    coffer_proto::hd::derive_public(k.scheme, &pk, cc, path)
        .map(|(child, _)| child)
        .map_err(|e| ApiError::internal(format!("derivation: {e}")))
}

/// The address of `public_key` (hex) on the wallet's chain, if the wallet names one.
fn chain_address(w: &WalletRecord, public_key: &str) -> Result<Option<String>, ApiError> {
    let Some(chain) = &w.chain else {
        return Ok(None);
    };
    let bad = |e: coffer_chains::ChainError| ApiError::bad_request(e.to_string());
    let chain: coffer_chains::Chain = chain.parse().map_err(bad)?;
    let scheme = coffer_chains::KeyScheme::from_name(&w.scheme).map_err(bad)?;
    let key = hex::decode(public_key).map_err(|_| ApiError::internal("stored public key"))?;
    coffer_chains::address(chain, w.network.as_deref(), scheme, &key)
        .map(Some)
        .map_err(bad)
}

fn address_json(w: &WalletRecord, a: &AddressRecord) -> Value {
    let address = chain_address(w, &a.public_key).ok().flatten();
    // A Bitcoin address's output script: what a UTXO paying it carries (`--utxo`).
    let script_pubkey = match (&address, w.chain.as_deref(), w.network.as_deref()) {
        (Some(addr), Some("bitcoin"), Some(net)) => net
            .parse()
            .ok()
            .and_then(|n| coffer_chains::btc::parse_address(addr, n).ok())
            .map(hex::encode),
        _ => None,
    };
    json!({
        "wallet_id": a.wallet_id,
        "index": a.index,
        "path": a.path,
        "public_key": a.public_key,
        "chain": w.chain,
        "network": w.network,
        "address": address,
        "script_pubkey": script_pubkey,
        "created_at": a.created_at,
    })
}

/// `POST /v1/wallets/{id}/addresses` (admins and initiators): the next deposit address.
pub async fn new_address(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(&[Role::Admin, Role::Initiator])?;
    let w = load_wallet(&s, &a.caller, &id).await?;
    let v = load_vault(&s, &a.caller, &w.vault_id).await?;
    let key_id = wallet_key(&v, &w).ok_or_else(|| ApiError::internal("wallet without key"))?;
    let k =
        s.db.key(key_id)
            .await?
            .ok_or_else(|| ApiError::internal("vault key missing"))?;
    let now = unix_now();
    let mut tx = s.db.begin().await?;
    let index = tx.next_address_index(&w.id).await?;
    let path = DerivationPath::from_indices(&[w.index, index])
        .map_err(|_| ApiError::conflict("the wallet has no address index left"))?;
    let record = AddressRecord {
        wallet_id: w.id.clone(),
        index,
        path: path.to_string(),
        public_key: hex::encode(child_public_key(&k, &path)?),
        created_at: now,
    };
    tx.insert_address(&record).await?;
    tx.append_audit(
        AuditEvent {
            tenant: w.tenant_id.clone(),
            actor: a.caller.actor(),
            action: "address.created".into(),
            object: w.id.clone(),
            detail: json!({"index": index, "path": record.path, "public_key": record.public_key}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(address_json(&w, &record)))
}

/// `GET /v1/wallets/{id}/addresses`.
pub async fn list_addresses(
    State(s): State<AppState>,
    Path(id): Path<String>,
    a: Authed,
) -> ApiResult {
    a.caller.require(Role::TENANT)?;
    let w = load_wallet(&s, &a.caller, &id).await?;
    let list = s.db.addresses(&w.id).await?;
    Ok(Json(json!({
        "addresses": list.iter().map(|a| address_json(&w, a)).collect::<Vec<_>>()
    })))
}
