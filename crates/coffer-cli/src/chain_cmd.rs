//! Chain transactions on the command line: the chain options of `wallet create`, `address
//! new` and `tx create` (`--chain`, `--network`, `--kind`, `--utxo`, `--nonce`, ...), the
//! unsigned transaction `tx create` builds on this machine (the initiator signs it as part
//! of the intent), and `tx broadcast`, which submits a signed transaction to a chain node.

use clap::Args;
use serde_json::{json, Value};

use coffer_chains::{btc, eth, sol, Chain, ChainTx};

use crate::client::{check_id, ApiClient};
use crate::output::cell;
use crate::Failure;

/// Which wallet of a vault: `--chain` (and `--network`, `--kind`) instead of a wallet id.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct ChainSelect {
    /// The vault (with --chain, instead of a wallet id).
    #[arg(long)]
    pub vault: Option<String>,
    /// The chain: bitcoin, ethereum or solana.
    #[arg(long)]
    pub chain: Option<String>,
    /// The chain's network (bitcoin: mainnet, testnet, signet, regtest; default mainnet).
    #[arg(long)]
    pub network: Option<String>,
    /// Bitcoin address kind: p2wpkh (the ECDSA key, default) or p2tr (the BIP340 key).
    #[arg(long)]
    pub kind: Option<String>,
    /// The asset when it is not the chain's own (ethereum: ERC20:<contract>).
    #[arg(long)]
    pub token: Option<String>,
}

/// The chain-specific inputs of `tx create`.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct ChainInputs {
    /// Bitcoin: an unspent output of the paying address, TXID:VOUT:SATS:SCRIPT_HEX (repeat).
    #[arg(long = "utxo", value_name = "UTXO")]
    pub utxos: Vec<String>,
    /// Bitcoin: fee rate in sat/vB.
    #[arg(long, default_value_t = 2)]
    pub fee_rate: u64,
    /// Ethereum: the paying address's nonce.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Ethereum: the chain id (1 mainnet, 11155111 sepolia, 31337 a local node).
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// Ethereum: gas limit (default 21000 for ETH, 100000 for a token transfer).
    #[arg(long)]
    pub gas_limit: Option<u64>,
    /// Ethereum: max fee per gas, wei (default 30 gwei).
    #[arg(long, default_value_t = 30_000_000_000)]
    pub max_fee: u128,
    /// Ethereum: max priority fee per gas, wei (default 1 gwei).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub priority_fee: u128,
    /// Solana: a recent blockhash (base58).
    #[arg(long)]
    pub blockhash: Option<String>,
}

/// The scheme of the vault key a chain's wallet uses.
pub(crate) fn scheme_for(chain: Chain, kind: Option<&str>) -> Result<&'static str, Failure> {
    match (chain, kind) {
        (Chain::Bitcoin, None | Some("p2wpkh")) | (Chain::Ethereum, None) => Ok("ecdsa-secp256k1"),
        (Chain::Bitcoin, Some("p2tr")) => Ok("schnorr-bip340"),
        (Chain::Solana, None) => Ok("ed25519"),
        (Chain::Bitcoin, Some(k)) => Err(Failure(format!(
            "--kind {k:?}: bitcoin addresses are p2wpkh or p2tr"
        ))),
        (_, Some(_)) => Err(Failure("--kind is for bitcoin only".into())),
    }
}

/// The chain's own asset, or the `--token` one.
pub(crate) fn asset_for(chain: Chain, token: Option<&str>) -> Result<String, Failure> {
    match (chain, token) {
        (Chain::Bitcoin, None) => Ok("BTC".into()),
        (Chain::Ethereum, None) => Ok("ETH".into()),
        (Chain::Solana, None) => Ok("SOL".into()),
        (Chain::Ethereum, Some(t)) => {
            let contract = t.strip_prefix("ERC20:").unwrap_or(t);
            let contract =
                eth::parse_address(contract).map_err(|e| Failure(format!("--token: {e}")))?;
            Ok(format!("ERC20:{contract}"))
        }
        (_, Some(_)) => Err(Failure("--token is for ethereum only".into())),
    }
}

/// The body of `POST /v1/vaults/{id}/wallets` for a chain wallet.
pub(crate) fn wallet_body(sel: &ChainSelect, name: Option<&str>) -> Result<Value, Failure> {
    let chain = parse_chain(sel)?;
    let scheme = scheme_for(chain, sel.kind.as_deref())?;
    let asset = asset_for(chain, sel.token.as_deref())?;
    let network = match chain {
        Chain::Bitcoin => Some(sel.network.clone().unwrap_or_else(|| "mainnet".into())),
        _ => sel.network.clone(),
    };
    let default_name = [
        chain.name(),
        network.as_deref().unwrap_or("any"),
        sel.kind.as_deref().unwrap_or(&asset),
    ]
    .join("-")
    .to_lowercase()
    .replace(':', "-");
    let mut body = json!({
        "name": name.map(str::to_string).unwrap_or(default_name),
        "scheme": scheme,
        "asset": asset,
        "chain": chain.name(),
    });
    if let Some(n) = network {
        body["network"] = json!(n);
    }
    Ok(body)
}

fn parse_chain(sel: &ChainSelect) -> Result<Chain, Failure> {
    let name = sel
        .chain
        .as_deref()
        .ok_or_else(|| Failure("give a wallet id, or --vault and --chain".into()))?;
    name.parse()
        .map_err(|e: coffer_chains::ChainError| Failure(e.to_string()))
}

/// The vault's wallet for `sel` (chain, network, key scheme and asset), created when it does
/// not exist yet and `create` is set (an admin's call).
pub(crate) fn find_wallet(
    client: &ApiClient,
    sel: &ChainSelect,
    create: bool,
) -> Result<Value, Failure> {
    let vault = sel
        .vault
        .as_deref()
        .ok_or_else(|| Failure("--chain needs --vault".into()))?;
    let vault = check_id("vault", vault)?;
    let want = wallet_body(sel, None)?;
    let list = client.call("GET", &format!("/v1/vaults/{vault}/wallets"), None)?;
    let found = list["wallets"].as_array().and_then(|ws| {
        ws.iter()
            .find(|w| {
                ["chain", "network", "scheme", "asset"]
                    .iter()
                    .all(|f| w[*f] == want[*f] || (*f == "network" && want[*f].is_null()))
            })
            .cloned()
    });
    let missing = |why: String| {
        Failure(format!(
            "vault {vault} has no {} {} wallet{}{why}; an admin makes one with `coffer address new --vault {vault} --chain {}` or `coffer wallet create --chain`",
            cell(&want["chain"]),
            cell(&want["asset"]),
            want["network"]
                .as_str()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            cell(&want["chain"]),
        ))
    };
    match found {
        Some(w) => Ok(w),
        None if create => client
            .call("POST", &format!("/v1/vaults/{vault}/wallets"), Some(&want))
            .map_err(|e| missing(format!(" (making one: {})", e.message))),
        None => Err(missing(String::new())),
    }
}

/// The paying address of `wallet` at `index` (its public key as the server derived it: the
/// signers derive it again from their shares and refuse a transaction built for another).
fn source_key(client: &ApiClient, wallet: &Value, index: u32) -> Result<Vec<u8>, Failure> {
    let id = wallet["id"].as_str().unwrap_or_default();
    let list = client.call(
        "GET",
        &format!("/v1/wallets/{}/addresses", check_id("wallet", id)?),
        None,
    )?;
    let addr = list["addresses"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["index"].as_u64() == Some(u64::from(index)))
        })
        .ok_or_else(|| {
            Failure(format!(
                "wallet {id} has no address {index} yet: `coffer address new {id}` derives it"
            ))
        })?;
    hex::decode(addr["public_key"].as_str().unwrap_or_default())
        .map_err(|_| Failure("the server's address has no public key".into()))
}

/// Builds the unsigned chain transaction for a transfer of `amount` (base units) to `to`
/// from address `index` of `wallet`.
pub(crate) fn build(
    client: &ApiClient,
    wallet: &Value,
    index: u32,
    to: &str,
    amount: u128,
    inputs: &ChainInputs,
) -> Result<ChainTx, Failure> {
    let chain: Chain = wallet["chain"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: coffer_chains::ChainError| Failure(e.to_string()))?;
    let key = source_key(client, wallet, index)?;
    let failed = |e: coffer_chains::ChainError| Failure(format!("the transaction: {e}"));
    let too_big = || Failure(format!("--amount {amount} is too large for {chain}"));
    match chain {
        Chain::Bitcoin => {
            let network: btc::Network = wallet["network"]
                .as_str()
                .unwrap_or("mainnet")
                .parse()
                .map_err(|e: btc::BtcError| Failure(e.to_string()))?;
            let spend = if wallet["scheme"] == "schnorr-bip340" {
                btc::Spend::P2tr
            } else {
                btc::Spend::P2wpkh
            };
            if inputs.utxos.is_empty() {
                return Err(Failure(
                    "a bitcoin transfer needs the paying address's unspent outputs: --utxo TXID:VOUT:SATS:SCRIPT_HEX (repeat)".into(),
                ));
            }
            let utxos = inputs
                .utxos
                .iter()
                .map(|u| {
                    u.parse()
                        .map_err(|e: btc::BtcError| Failure(format!("--utxo {u}: {e}")))
                })
                .collect::<Result<Vec<btc::Utxo>, Failure>>()?;
            ChainTx::bitcoin(&btc::SpendRequest {
                network,
                spend,
                source_key: hex::encode(&key),
                to: to.to_string(),
                amount: u64::try_from(amount).map_err(|_| too_big())?,
                fee_rate: inputs.fee_rate,
                utxos,
            })
            .map_err(failed)
        }
        Chain::Ethereum => {
            let nonce = inputs
                .nonce
                .ok_or_else(|| Failure("an ethereum transfer needs --nonce".into()))?;
            let chain_id = inputs
                .chain_id
                .ok_or_else(|| Failure("an ethereum transfer needs --chain-id".into()))?;
            let asset = wallet["asset"].as_str().unwrap_or_default();
            let (tx_to, value, data, gas) = match asset.strip_prefix("ERC20:") {
                Some(contract) => (
                    contract.to_string(),
                    0,
                    hex::encode(
                        eth::erc20_transfer_data(to, amount)
                            .map_err(|e| Failure(format!("the token transfer: {e}")))?,
                    ),
                    100_000,
                ),
                None => (to.to_string(), amount, String::new(), 21_000),
            };
            ChainTx::ethereum(&eth::TxRequest {
                chain_id,
                nonce,
                gas_limit: inputs.gas_limit.unwrap_or(gas),
                max_fee_per_gas: inputs.max_fee,
                max_priority_fee_per_gas: inputs.priority_fee,
                to: tx_to,
                value,
                data,
            })
            .map_err(failed)
        }
        Chain::Solana => {
            let blockhash = inputs.blockhash.clone().ok_or_else(|| {
                Failure("a solana transfer needs --blockhash (a recent blockhash)".into())
            })?;
            ChainTx::solana(&sol::TransferRequest {
                from: sol::address(&key).map_err(|e| Failure(e.to_string()))?,
                to: to.to_string(),
                lamports: u64::try_from(amount).map_err(|_| too_big())?,
                recent_blockhash: blockhash,
            })
            .map_err(failed)
        }
    }
}

/// The decoded transfer of `tx` for the intent: the chain code's own reading of the asset,
/// destination (in canonical form) and amount.
pub(crate) fn decoded(
    client: &ApiClient,
    wallet: &Value,
    index: u32,
    tx: &ChainTx,
) -> Result<coffer_chains::Decoded, Failure> {
    let key = source_key(client, wallet, index)?;
    tx.decode(&key)
        .map_err(|e| Failure(format!("the transaction: {e}")))
}

/// Submits a signed transaction to a chain node and returns the id the node reports.
pub(crate) fn broadcast(
    chain: Chain,
    signed_tx: &str,
    rpc: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<String, Failure> {
    match chain {
        Chain::Bitcoin => {
            btc::rpc::BitcoinRpc::new(rpc, user.unwrap_or(""), password.unwrap_or(""))
                .send_raw_transaction(signed_tx)
                .map_err(|e| Failure(format!("bitcoin node: {e}")))
        }
        Chain::Ethereum => eth::rpc::EthRpc::new(rpc)
            .send_raw_transaction(signed_tx)
            .map_err(|e| Failure(format!("ethereum node: {e}"))),
        Chain::Solana => sol::rpc::SolanaRpc::new(rpc)
            .send_transaction(signed_tx)
            .map_err(|e| Failure(format!("solana node: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn wallet_bodies_follow_the_chain() {
        let sel = |chain: &str, network: Option<&str>, kind: Option<&str>| ChainSelect {
            vault: Some("v-1".into()),
            chain: Some(chain.into()),
            network: network.map(str::to_string),
            kind: kind.map(str::to_string),
            token: None,
        };
        let b = wallet_body(&sel("bitcoin", Some("regtest"), Some("p2tr")), None).unwrap();
        assert_eq!(b["scheme"], "schnorr-bip340");
        assert_eq!(b["asset"], "BTC");
        assert_eq!(b["network"], "regtest");
        assert_eq!(b["name"], "bitcoin-regtest-p2tr");
        let b = wallet_body(&sel("btc", None, None), None).unwrap();
        assert_eq!(
            (b["scheme"].as_str(), b["network"].as_str()),
            (Some("ecdsa-secp256k1"), Some("mainnet"))
        );
        let b = wallet_body(&sel("solana", None, None), Some("hot")).unwrap();
        assert_eq!(
            (b["scheme"].as_str(), b["name"].as_str()),
            (Some("ed25519"), Some("hot"))
        );
        assert!(b.get("network").is_none());
        assert!(wallet_body(&sel("solana", None, Some("p2tr")), None).is_err());
        assert!(wallet_body(&sel("dogecoin", None, None), None).is_err());
        let mut t = sel("ethereum", None, None);
        t.token = Some("0xdac17f958d2ee523a2206206994597c13d831ec7".into());
        let b = wallet_body(&t, None).unwrap();
        assert_eq!(
            b["asset"],
            "ERC20:0xdAC17F958D2ee523a2206206994597C13D831ec7"
        );
        t.token = Some("0xnot".into());
        assert!(wallet_body(&t, None).is_err());
    }
}
