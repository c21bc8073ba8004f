//! The custody layer's directory: tenants, their users and credentials (Ed25519 keys with
//! one role each), vaults (one key per scheme), wallets in a vault, addresses of a wallet,
//! and each vault's signed policy versions. Writes go through a [`DbTx`]; lookups of a
//! tenant's objects are scoped by tenant (another tenant's object is `None`).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{col, ctx, uint, Db, DbError, DbTx};

/// A tenant: an isolated customer of the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant id (`t-...`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user of a tenant (a person or a service; holds credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// User id (`u-...`).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Name, unique within the tenant.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A credential: an Ed25519 public key that signs a user's requests, with one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The public key (64 lowercase hex characters).
    pub key: String,
    /// The tenant.
    pub tenant_id: String,
    /// The user it belongs to.
    pub user_id: String,
    /// `admin`, `initiator`, `approver`, `viewer` or `auditor`.
    pub role: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Whether it was disabled (its requests are refused).
    pub disabled: bool,
}

/// A vault: a set of keys (one per scheme) of one tenant, under one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultRecord {
    /// Vault id (`v-...`).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Name, unique within the tenant.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// `(scheme name, key id)` for each of its keys, by scheme name.
    pub keys: Vec<(String, String)>,
}

/// A wallet: one asset on one of a vault's keys, at a derivation index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRecord {
    /// Wallet id (`w-...`).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The vault.
    pub vault_id: String,
    /// Name, unique within the vault.
    pub name: String,
    /// Scheme name of the vault key it uses.
    pub scheme: String,
    /// Asset (chain and unit) it holds.
    pub asset: String,
    /// Its index in the vault (unique within the vault; part of its derivation path).
    pub index: u32,
    /// The chain its addresses are encoded for (`bitcoin`, `ethereum`, `solana`), if any.
    pub chain: Option<String>,
    /// The chain's network (`mainnet`, `testnet`, `signet`, `regtest`, ...), if any.
    pub network: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// An address of a wallet: a derived public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    /// The wallet.
    pub wallet_id: String,
    /// Its index in the wallet (from 0).
    pub index: u32,
    /// Derivation path.
    pub path: String,
    /// Derived public key (hex).
    pub public_key: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// One version of a vault's policy, as signed by its admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The vault.
    pub vault_id: String,
    /// Version (increasing per vault).
    pub version: u64,
    /// The signed policy document (JSON).
    pub document: String,
    /// Its hash (hex).
    pub hash: String,
    /// Who submitted it (a credential key).
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
}

fn tenant_from_row(row: &AnyRow) -> Result<TenantRecord, DbError> {
    const DOING: &str = "reading a tenant";
    Ok(TenantRecord {
        id: col(row, "id", DOING)?,
        name: col(row, "name", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, DbError> {
    const DOING: &str = "reading a user";
    Ok(UserRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        name: col(row, "name", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

fn credential_from_row(row: &AnyRow) -> Result<CredentialRecord, DbError> {
    const DOING: &str = "reading a credential";
    let disabled: i64 = col(row, "disabled", DOING)?;
    Ok(CredentialRecord {
        key: col(row, "key", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        user_id: col(row, "user_id", DOING)?,
        role: col(row, "role", DOING)?,
        created_at: col(row, "created_at", DOING)?,
        disabled: disabled != 0,
    })
}

fn wallet_from_row(row: &AnyRow) -> Result<WalletRecord, DbError> {
    const DOING: &str = "reading a wallet";
    Ok(WalletRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        vault_id: col(row, "vault_id", DOING)?,
        name: col(row, "name", DOING)?,
        scheme: col(row, "scheme", DOING)?,
        asset: col(row, "asset", DOING)?,
        index: uint(col(row, "wallet_index", DOING)?, DOING, "wallet index")?,
        chain: col(row, "chain", DOING)?,
        network: col(row, "network", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

fn address_from_row(row: &AnyRow) -> Result<AddressRecord, DbError> {
    const DOING: &str = "reading an address";
    Ok(AddressRecord {
        wallet_id: col(row, "wallet_id", DOING)?,
        index: uint(col(row, "idx", DOING)?, DOING, "address index")?,
        path: col(row, "path", DOING)?,
        public_key: col(row, "public_key", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

fn policy_from_row(row: &AnyRow) -> Result<PolicyRecord, DbError> {
    const DOING: &str = "reading a policy";
    Ok(PolicyRecord {
        vault_id: col(row, "vault_id", DOING)?,
        version: uint(col(row, "version", DOING)?, DOING, "policy version")?,
        document: col(row, "document", DOING)?,
        hash: col(row, "hash", DOING)?,
        created_by: col(row, "created_by", DOING)?,
        created_at: col(row, "created_at", DOING)?,
    })
}

const WALLET_COLUMNS: &str =
    "id, tenant_id, vault_id, name, scheme, asset, wallet_index, chain, network, created_at";
const POLICY_COLUMNS: &str = "vault_id, version, document, hash, created_by, created_at";

impl DbTx {
    /// Records a tenant (a taken name is a conflict).
    pub async fn insert_tenant(&mut self, t: &TenantRecord) -> Result<(), DbError> {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.created_at)
            .execute(self.conn())
            .await
            .map_err(ctx("inserting a tenant"))?;
        Ok(())
    }

    /// Records a user (a name taken in the tenant is a conflict).
    pub async fn insert_user(&mut self, u: &UserRecord) -> Result<(), DbError> {
        sqlx::query("INSERT INTO users (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&u.id)
            .bind(&u.tenant_id)
            .bind(&u.name)
            .bind(u.created_at)
            .execute(self.conn())
            .await
            .map_err(ctx("inserting a user"))?;
        Ok(())
    }

    /// Records a credential (a key already registered, to anyone, is a conflict).
    pub async fn insert_credential(&mut self, c: &CredentialRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO credentials (key, tenant_id, user_id, role, created_at, disabled) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.key)
        .bind(&c.tenant_id)
        .bind(&c.user_id)
        .bind(&c.role)
        .bind(c.created_at)
        .bind(i64::from(c.disabled))
        .execute(self.conn())
        .await
        .map_err(ctx("inserting a credential"))?;
        Ok(())
    }

    /// Disables (or re-enables) a credential. Returns whether it exists.
    pub async fn set_credential_disabled(
        &mut self,
        key: &str,
        disabled: bool,
    ) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE credentials SET disabled = $1 WHERE key = $2")
            .bind(i64::from(disabled))
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(ctx("disabling a credential"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a vault and its keys (the keys must be recorded already).
    pub async fn insert_vault(&mut self, v: &VaultRecord) -> Result<(), DbError> {
        sqlx::query("INSERT INTO vaults (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&v.id)
            .bind(&v.tenant_id)
            .bind(&v.name)
            .bind(v.created_at)
            .execute(self.conn())
            .await
            .map_err(ctx("inserting a vault"))?;
        for (scheme, key_id) in &v.keys {
            sqlx::query("INSERT INTO vault_keys (vault_id, scheme, key_id) VALUES ($1, $2, $3)")
                .bind(&v.id)
                .bind(scheme)
                .bind(key_id)
                .execute(self.conn())
                .await
                .map_err(ctx("inserting a vault's key"))?;
        }
        Ok(())
    }

    /// The next free wallet index of a vault (one more than the highest; 0 first).
    pub async fn next_wallet_index(&mut self, vault_id: &str) -> Result<u32, DbError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(wallet_index), -1) + 1 AS n FROM wallets WHERE vault_id = $1",
        )
        .bind(vault_id)
        .fetch_one(self.conn())
        .await
        .map_err(ctx("choosing a wallet index"))?;
        uint(n, "choosing a wallet index", "wallet index")
    }

    /// Records a wallet (a name or index taken in the vault is a conflict).
    pub async fn insert_wallet(&mut self, w: &WalletRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO wallets (id, tenant_id, vault_id, name, scheme, asset, wallet_index, \
             chain, network, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&w.id)
        .bind(&w.tenant_id)
        .bind(&w.vault_id)
        .bind(&w.name)
        .bind(&w.scheme)
        .bind(&w.asset)
        .bind(i64::from(w.index))
        .bind(w.chain.as_deref())
        .bind(w.network.as_deref())
        .bind(w.created_at)
        .execute(self.conn())
        .await
        .map_err(ctx("inserting a wallet"))?;
        Ok(())
    }

    /// The next free address index of a wallet (one more than the highest; 0 first).
    pub async fn next_address_index(&mut self, wallet_id: &str) -> Result<u32, DbError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(idx), -1) + 1 AS n FROM addresses WHERE wallet_id = $1",
        )
        .bind(wallet_id)
        .fetch_one(self.conn())
        .await
        .map_err(ctx("choosing an address index"))?;
        uint(n, "choosing an address index", "address index")
    }

    /// Records an address (an index taken in the wallet is a conflict).
    pub async fn insert_address(&mut self, a: &AddressRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO addresses (wallet_id, idx, path, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&a.wallet_id)
        .bind(i64::from(a.index))
        .bind(&a.path)
        .bind(&a.public_key)
        .bind(a.created_at)
        .execute(self.conn())
        .await
        .map_err(ctx("inserting an address"))?;
        Ok(())
    }

    /// Records a policy version (a version taken for the vault is a conflict).
    pub async fn insert_policy(&mut self, p: &PolicyRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO policies (vault_id, version, document, hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.vault_id)
        .bind(super::big(p.version, "inserting a policy", "version")?)
        .bind(&p.document)
        .bind(&p.hash)
        .bind(&p.created_by)
        .bind(p.created_at)
        .execute(self.conn())
        .await
        .map_err(ctx("inserting a policy"))?;
        Ok(())
    }
}

impl Db {
    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, DbError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing tenants"))?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// One tenant.
    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, DbError> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a tenant"))?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    /// A tenant's users, oldest first.
    pub async fn users(&self, tenant_id: &str) -> Result<Vec<UserRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, created_at FROM users WHERE tenant_id = $1 \
             ORDER BY created_at, name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing users"))?;
        rows.iter().map(user_from_row).collect()
    }

    /// The credential with this public key (hex), in whichever tenant.
    pub async fn credential(&self, key: &str) -> Result<Option<CredentialRecord>, DbError> {
        let row = sqlx::query(
            "SELECT key, tenant_id, user_id, role, created_at, disabled FROM credentials \
             WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a credential"))?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// A tenant's credentials, oldest first.
    pub async fn credentials(&self, tenant_id: &str) -> Result<Vec<CredentialRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT key, tenant_id, user_id, role, created_at, disabled FROM credentials \
             WHERE tenant_id = $1 ORDER BY created_at, key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing credentials"))?;
        rows.iter().map(credential_from_row).collect()
    }

    /// A tenant's vaults, oldest first, each with its keys.
    pub async fn vaults(&self, tenant_id: &str) -> Result<Vec<VaultRecord>, DbError> {
        const DOING: &str = "listing vaults";
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, created_at FROM vaults WHERE tenant_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        let mut vaults = rows
            .iter()
            .map(vault_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT vk.vault_id, vk.scheme, vk.key_id FROM vault_keys vk \
             JOIN vaults v ON v.id = vk.vault_id WHERE v.tenant_id = $1 \
             ORDER BY vk.vault_id, vk.scheme",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        for (vault_id, scheme, key_id) in keys {
            if let Some(v) = vaults.iter_mut().find(|v| v.id == vault_id) {
                v.keys.push((scheme, key_id));
            }
        }
        Ok(vaults)
    }

    /// One of a tenant's vaults (another tenant's is `None`), with its keys.
    pub async fn vault(&self, tenant_id: &str, id: &str) -> Result<Option<VaultRecord>, DbError> {
        const DOING: &str = "reading a vault";
        let row = sqlx::query(
            "SELECT id, tenant_id, name, created_at FROM vaults WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut vault = vault_from_row(&row)?;
        vault.keys = sqlx::query_as(
            "SELECT scheme, key_id FROM vault_keys WHERE vault_id = $1 ORDER BY scheme",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(DOING))?;
        Ok(Some(vault))
    }

    /// The wallets of one of a tenant's vaults, by index.
    pub async fn wallets(
        &self,
        tenant_id: &str,
        vault_id: &str,
    ) -> Result<Vec<WalletRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {WALLET_COLUMNS} FROM wallets WHERE tenant_id = $1 AND vault_id = $2 \
             ORDER BY wallet_index"
        ))
        .bind(tenant_id)
        .bind(vault_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing wallets"))?;
        rows.iter().map(wallet_from_row).collect()
    }

    /// One of a tenant's wallets (another tenant's is `None`).
    pub async fn wallet(&self, tenant_id: &str, id: &str) -> Result<Option<WalletRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {WALLET_COLUMNS} FROM wallets WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a wallet"))?;
        row.as_ref().map(wallet_from_row).transpose()
    }

    /// A wallet's addresses, by index.
    pub async fn addresses(&self, wallet_id: &str) -> Result<Vec<AddressRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT wallet_id, idx, path, public_key, created_at FROM addresses \
             WHERE wallet_id = $1 ORDER BY idx",
        )
        .bind(wallet_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing addresses"))?;
        rows.iter().map(address_from_row).collect()
    }

    /// A vault's current policy (its highest version), if it has one.
    pub async fn current_policy(&self, vault_id: &str) -> Result<Option<PolicyRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE vault_id = $1 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(vault_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a policy"))?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Every policy version of a vault, oldest first.
    pub async fn policies(&self, vault_id: &str) -> Result<Vec<PolicyRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE vault_id = $1 ORDER BY version"
        ))
        .bind(vault_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing policies"))?;
        rows.iter().map(policy_from_row).collect()
    }
}

fn vault_from_row(row: &AnyRow) -> Result<VaultRecord, DbError> {
    const DOING: &str = "reading a vault";
    Ok(VaultRecord {
        id: col(row, "id", DOING)?,
        tenant_id: col(row, "tenant_id", DOING)?,
        name: col(row, "name", DOING)?,
        created_at: col(row, "created_at", DOING)?,
        keys: Vec::new(),
    })
}
