//! `coffer tx ...`: transfer requests. `create` builds the intent on this machine (from
//! whoami and the wallet), signs it with the initiator's own key and posts it; `approve` and
//! `reject` fetch the request, recompute the intent hash from the intent itself (the
//! server's `intent_hash` is never trusted), show what is being approved and sign an
//! approval with the approver's own key; `list`, `show` and `wait` read requests.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use coffer_policy::{Approval, Decision, Intent, PublicKey};

use crate::amount::{format_amount, format_decimal, parse_amount};
use crate::chain_cmd::{self, ChainInputs, ChainSelect};
use crate::client::{check_id, connect, unix_now, ApiClient, CommonArgs, Natural};
use crate::output::{cell, fields, items, short, show, table, time};
use crate::Failure;

/// Every request state, in the order a request moves through them.
pub(crate) const STATES: [&str; 7] = [
    "pending_approval",
    "approved",
    "signing",
    "signed",
    "rejected",
    "failed",
    "expired",
];

/// States a request never leaves.
pub(crate) const FINAL: [&str; 4] = ["signed", "rejected", "failed", "expired"];

/// Who reads requests by default.
const READERS: Natural = Natural::Role(&["viewer", "initiator", "approver", "admin", "auditor"]);

/// How often `wait` asks.
const POLL: Duration = Duration::from_millis(250);

/// `coffer tx ...`.
#[derive(Args)]
pub(crate) struct TxArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    cmd: TxCommand,
}

// Parsed once per process: the size of the chain options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum TxCommand {
    /// Creates a transfer request: builds the intent, signs it as the initiator, posts it.
    Create {
        #[command(flatten)]
        request: NewRequest,
        #[command(flatten)]
        inputs: ChainInputs,
        /// Base units (150000) or a decimal in the wallet's unit (0.5btc, 1.2 eth, 3sol).
        #[arg(long)]
        amount: String,
        /// The destination address.
        #[arg(long = "to", value_name = "DEST")]
        to: String,
    },
    /// Asks the vault to sign an off-chain Ethereum message with one of its addresses:
    /// EIP-712 typed data (`--typed-data FILE`) or an EIP-191 personal message (`--text` or
    /// `--hex`). It is a request like a transfer (initiator, policy, approvals, signers'
    /// own checks), allowed only by a policy rule whose `kinds` names `eip712` or `eip191`.
    SignMessage {
        #[command(flatten)]
        request: NewRequest,
        /// EIP-712 typed data: a JSON file (types, primaryType, domain, message); `-` reads
        /// standard input.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["text", "hex"])]
        typed_data: Option<String>,
        /// EIP-191: the message as text.
        #[arg(long, conflicts_with = "hex")]
        text: Option<String>,
        /// EIP-191: the message as hex bytes.
        #[arg(long)]
        hex: Option<String>,
    },
    /// Lists requests.
    List {
        /// Only requests in this state.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Shows a request.
    Show {
        /// The request id.
        id: String,
    },
    /// Waits (polling every 250 ms) until a request is final, or in the --until state.
    Wait {
        /// The request id.
        id: String,
        /// Seconds to wait.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// The state to wait for (e.g. signed); reaching another final state fails.
        #[arg(long)]
        until: Option<String>,
    },
    /// Approves a request with your own key (give --as NAME or --credential FILE).
    Approve {
        /// The request id.
        id: String,
        /// Seconds the approval stays valid.
        #[arg(long, default_value_t = 3600)]
        expires_in: u64,
    },
    /// Submits a signed request's chain transaction to a node of its chain and prints the id
    /// the node reports (Ethereum and Solana JSON-RPC, Bitcoin Core RPC).
    Broadcast {
        /// The request id.
        id: String,
        /// The node's RPC URL.
        #[arg(long)]
        rpc: String,
        /// Bitcoin Core RPC user.
        #[arg(long)]
        rpc_user: Option<String>,
        /// Bitcoin Core RPC password.
        #[arg(long, env = "COFFER_RPC_PASSWORD", hide_env_values = true)]
        rpc_password: Option<String>,
    },
    /// Rejects a request with your own key (give --as NAME or --credential FILE).
    Reject {
        /// The request id.
        id: String,
        /// Why (recorded with the rejection).
        #[arg(long)]
        reason: Option<String>,
        /// Seconds the rejection stays valid.
        #[arg(long, default_value_t = 3600)]
        expires_in: u64,
    },
}

/// What every new request takes besides what it asks for (transfers and messages).
#[derive(Args)]
struct NewRequest {
    /// The wallet's id (or --vault and --chain).
    #[arg(long)]
    wallet: Option<String>,
    #[command(flatten)]
    select: ChainSelect,
    /// Free text recorded in the intent (signed with it).
    #[arg(long, default_value = "")]
    memo: String,
    /// The address's index (path m/<wallet index>/<address index>).
    #[arg(long, default_value_t = 0)]
    address_index: u32,
    /// Idempotency key (default: req- and 16 random bytes, hex). Posting the same signed
    /// intent again returns the existing request.
    #[arg(long)]
    request_id: Option<String>,
    /// Seconds the intent stays valid.
    #[arg(long, default_value_t = 3600)]
    expires_in: u64,
    /// Waits until the request needs approvals or is final.
    #[arg(long)]
    wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

impl NewRequest {
    /// Connects as an initiator, finds the wallet, calls `post` with the wallet and the
    /// request's fields (`amount` and `to` as given), and waits if asked.
    fn run(
        self,
        common: &CommonArgs,
        amount: &str,
        to: &str,
        post: impl FnOnce(&ApiClient, &Value, TxRequest<'_>) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let caller = connect(common, Natural::Role(&["initiator"]))?;
        let client = &caller.client;
        let wallet = match &self.wallet {
            Some(w) => client.call(
                "GET",
                &format!("/v1/wallets/{}", check_id("wallet", w)?),
                None,
            )?,
            None => chain_cmd::find_wallet(client, &self.select, false)?,
        };
        let mut tx = post(
            client,
            &wallet,
            TxRequest {
                amount,
                to,
                memo: &self.memo,
                address_index: self.address_index,
                request_id: self.request_id.unwrap_or_else(random_request_id),
                now: unix_now(),
                expires_in: self.expires_in,
            },
        )?;
        if self.wait {
            let id = cell(&tx["id"]);
            tx = wait(client, &id, Duration::from_secs(self.timeout), None, true)?;
        }
        Ok(tx)
    }
}

/// A file's text, or standard input for `-` (at most 1 MiB).
fn read_text(path: &str) -> Result<String, Failure> {
    use std::io::Read;
    let mut text = String::new();
    let limit = 1 << 20;
    let read = if path == "-" {
        std::io::stdin().take(limit).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_string(&mut text))
    };
    read.map_err(|e| Failure(format!("reading {path}: {e}")))?;
    Ok(text)
}

fn check_state(s: &str) -> Result<&str, Failure> {
    if STATES.contains(&s) {
        Ok(s)
    } else {
        Err(Failure(format!(
            "{s:?} is not a request state (one of {})",
            STATES.join(", ")
        )))
    }
}

/// A fresh request id: `req-` and 16 random bytes in hex.
pub(crate) fn random_request_id() -> String {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("req-{}", hex::encode(b))
}

/// What `tx create` needs besides the API's answers.
pub(crate) struct TxRequest<'a> {
    /// As typed.
    pub amount: &'a str,
    /// Destination.
    pub to: &'a str,
    /// Memo.
    pub memo: &'a str,
    /// Address index.
    pub address_index: u32,
    /// Request id.
    pub request_id: String,
    /// Now (unix seconds).
    pub now: i64,
    /// Lifetime (seconds).
    pub expires_in: u64,
}

fn text_field<'a>(v: &'a Value, what: &str, field: &str) -> Result<&'a str, Failure> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure(format!("the server's {what} has no {field}")))
}

/// Builds the intent from `GET /v1/whoami` and `GET /v1/wallets/{id}`.
pub(crate) fn build_intent(
    whoami: &Value,
    wallet: &Value,
    initiator: PublicKey,
    req: TxRequest<'_>,
) -> Result<Intent, Failure> {
    let tenant = whoami["tenant"].as_str().ok_or_else(|| {
        Failure(format!(
            "this credential ({} role) belongs to no tenant: transfers are initiated by a tenant's initiator",
            cell(&whoami["role"])
        ))
    })?;
    if whoami["key"]
        .as_str()
        .is_some_and(|k| k != initiator.to_string())
    {
        return Err(Failure(
            "the server answered whoami for another key than this credential's".into(),
        ));
    }
    let asset = text_field(wallet, "wallet", "asset")?;
    let index = wallet["index"]
        .as_u64()
        .ok_or_else(|| Failure("the server's wallet has no index".into()))?;
    if index >= 1 << 31 || u64::from(req.address_index) >= 1 << 31 {
        return Err(Failure(
            "wallet and address indexes must be below 2^31 (non-hardened derivation)".into(),
        ));
    }
    let lifetime = i64::try_from(req.expires_in)
        .ok()
        .filter(|s| (1..=coffer_policy::MAX_INTENT_LIFETIME_SECS).contains(s))
        .ok_or_else(|| {
            Failure(format!(
                "--expires-in must be between 1 and {} seconds",
                coffer_policy::MAX_INTENT_LIFETIME_SECS
            ))
        })?;
    let amount = if req.amount.is_empty() {
        coffer_policy::Amount(0)
    } else {
        parse_amount(req.amount, asset).map_err(|e| Failure(e.to_string()))?
    };
    let intent = Intent {
        tenant: tenant.to_string(),
        vault_id: text_field(wallet, "wallet", "vault_id")?.to_string(),
        key_id: text_field(wallet, "wallet", "key_id")?.to_string(),
        request_id: req.request_id,
        wallet_id: text_field(wallet, "wallet", "id")?.to_string(),
        path: format!("m/{index}/{}", req.address_index),
        asset: asset.to_string(),
        amount,
        destination: req.to.to_string(),
        memo: req.memo.to_string(),
        initiator,
        created_at: req.now,
        expires_at: req.now.saturating_add(lifetime),
        transaction: None,
        kind: Default::default(),
    };
    if !req.amount.is_empty() {
        intent
            .validate()
            .map_err(|e| Failure(format!("the transfer is not valid: {e}")))?;
    }
    Ok(intent)
}

/// What `tx sign-message` signs.
pub(crate) enum MessageInput {
    /// EIP-712 typed data (JSON text).
    TypedData(String),
    /// EIP-191 personal message bytes.
    Personal(Vec<u8>),
}

/// Creates a message-signing request (kind `eip712` or `eip191`) for address
/// `req.address_index` of an Ethereum wallet: the intent carries the message, its amount is
/// zero and its destination is what the chain code decodes (the EIP-712 verifying contract,
/// or `eip191`). `req.amount` and `req.to` are ignored.
pub(crate) fn create_message(
    client: &ApiClient,
    w: &Value,
    message: MessageInput,
    req: TxRequest<'_>,
) -> Result<Value, Failure> {
    if w["chain"].as_str() != Some("ethereum") {
        return Err(Failure(format!(
            "wallet {} is not an Ethereum wallet: messages are signed by Ethereum addresses",
            cell(&w["id"])
        )));
    }
    let me = client.call("GET", "/v1/whoami", None)?;
    let initiator = PublicKey(client.credential().signing_key().verifying_key().to_bytes());
    let index = req.address_index;
    let (chain_tx, kind) = match message {
        MessageInput::TypedData(json) => (
            coffer_chains::ChainTx::typed_data(&json),
            coffer_policy::IntentKind::Eip712,
        ),
        MessageInput::Personal(bytes) => (
            coffer_chains::ChainTx::personal_message(&bytes),
            coffer_policy::IntentKind::Eip191,
        ),
    };
    let chain_tx = chain_tx.map_err(|e| Failure(format!("the message: {e}")))?;
    let mut intent = build_intent(
        &me,
        w,
        initiator,
        TxRequest {
            amount: "",
            to: "",
            ..req
        },
    )?;
    let d = chain_cmd::decoded(client, w, index, &chain_tx)?;
    intent.destination = d.destination;
    intent.kind = kind;
    intent.transaction = Some(chain_tx.to_text());
    intent
        .validate()
        .map_err(|e| Failure(format!("the message request is not valid: {e}")))?;
    post_intent(client, &intent)
}

/// What the approver reads of an off-chain message: the EIP-191 text (or hex when it is
/// not UTF-8), or the EIP-712 document.
fn message_shown(intent: &Intent) -> Option<String> {
    match coffer_chains::ChainTx::parse(intent.transaction.as_deref()?).ok()? {
        coffer_chains::ChainTx::EthereumMessage { message } => {
            let bytes = hex::decode(message.trim_start_matches("0x")).ok()?;
            Some(match String::from_utf8(bytes) {
                Ok(text) => format!("{text:?}"),
                Err(e) => format!("0x{}", hex::encode(e.into_bytes())),
            })
        }
        coffer_chains::ChainTx::EthereumTypedData { typed_data } => Some(typed_data),
        _ => None,
    }
}

/// Creates a transfer request as the client's credential (an initiator): reads whoami and
/// the wallet, builds the intent ([`build_intent`]), signs it with the credential's own key
/// and posts it. Returns the request as the server answered it.
/// When the wallet names a chain, the intent carries the unsigned chain transaction built
/// here from `inputs` ([`chain_cmd::build`]), and its destination is the transaction's own,
/// in the chain's canonical form.
pub(crate) fn create(
    client: &ApiClient,
    w: &Value,
    inputs: Option<&ChainInputs>,
    req: TxRequest<'_>,
) -> Result<Value, Failure> {
    let me = client.call("GET", "/v1/whoami", None)?;
    let initiator = PublicKey(client.credential().signing_key().verifying_key().to_bytes());
    let index = req.address_index;
    let mut intent = build_intent(&me, w, initiator, req)?;
    if !w["chain"].is_null() {
        let default = ChainInputs::default();
        let chain_tx = chain_cmd::build(
            client,
            w,
            index,
            &intent.destination,
            intent.amount.0,
            inputs.unwrap_or(&default),
        )?;
        let d = chain_cmd::decoded(client, w, index, &chain_tx)?;
        intent.destination = d.destination;
        intent.transaction = Some(chain_tx.to_text());
        intent
            .validate()
            .map_err(|e| Failure(format!("the transfer is not valid: {e}")))?;
    }
    post_intent(client, &intent)
}

/// Signs `intent` as the initiator (the client's own key) and posts it.
fn post_intent(client: &ApiClient, intent: &Intent) -> Result<Value, Failure> {
    let signature = coffer_policy::sign_initiation(client.credential().signing_key(), intent);
    Ok(client.call(
        "POST",
        "/v1/transactions",
        Some(&json!({ "intent": intent, "initiator_signature": signature })),
    )?)
}

/// The intent of a fetched request, checked: its hash recomputed here must equal the
/// server's `intent_hash`, and the request's ids must be the intent's. Returns the intent
/// and the recomputed hash (what an approval signs).
pub(crate) fn checked_intent(tx: &Value) -> Result<(Intent, [u8; 32]), Failure> {
    let id = cell(&tx["id"]);
    let intent: Intent = serde_json::from_value(tx["intent"].clone()).map_err(|e| {
        Failure(format!(
            "request {id}: the server's intent does not parse ({e}); refusing to sign"
        ))
    })?;
    let hash = intent.hash();
    let ours = hex::encode(hash);
    let theirs = tx["intent_hash"].as_str().unwrap_or_default();
    if theirs != ours {
        return Err(Failure(format!(
            "request {id}: the server says the intent hash is {theirs:?} but the intent it returned hashes to {ours}; refusing to sign"
        )));
    }
    for (field, value) in [
        ("vault_id", &intent.vault_id),
        ("wallet_id", &intent.wallet_id),
        ("key_id", &intent.key_id),
    ] {
        if let Some(shown) = tx[field].as_str() {
            if shown != value {
                return Err(Failure(format!(
                    "request {id}: its {field} {shown:?} is not the intent's {value:?}; refusing to sign"
                )));
            }
        }
    }
    Ok((intent, hash))
}

/// What an approver is shown before signing.
pub(crate) fn intent_summary(intent: &Intent, hash: &[u8; 32]) -> String {
    let by = format!("wallet {} path {}", intent.wallet_id, intent.path);
    let mut f = if intent.kind.is_transfer() {
        vec![
            ("amount", format_amount(intent.amount, &intent.asset)),
            ("asset", intent.asset.clone()),
            ("to", intent.destination.clone()),
            (
                "memo",
                if intent.memo.is_empty() {
                    "-".into()
                } else {
                    intent.memo.clone()
                },
            ),
            ("from", by),
        ]
    } else {
        vec![
            ("signs", format!("{} message", intent.kind.name())),
            (
                "message",
                message_shown(intent).unwrap_or_else(|| "-".into()),
            ),
            ("for", intent.destination.clone()),
            ("by", by),
        ]
    };
    f.extend([
        ("vault", intent.vault_id.clone()),
        ("initiator", intent.initiator.to_string()),
        ("request", intent.request_id.clone()),
        ("expires", time(&json!(intent.expires_at))),
        ("intent hash", hex::encode(hash)),
    ]);
    fields(&f)
}

fn amount_cell(tx: &Value) -> String {
    let i = &tx["intent"];
    match (i["amount"].as_str(), i["asset"].as_str()) {
        (Some(a), Some(asset)) => match a.parse::<coffer_policy::Amount>() {
            Ok(amount) => format_decimal(amount, asset),
            Err(_) => format!("{a} {asset}"),
        },
        _ => "-".into(),
    }
}

/// A request in text.
pub(crate) fn tx_text(tx: &Value) -> String {
    let i = &tx["intent"];
    let amount = match (i["amount"].as_str(), i["asset"].as_str()) {
        (Some(a), Some(asset)) => match a.parse::<coffer_policy::Amount>() {
            Ok(amount) => format_amount(amount, asset),
            Err(_) => format!("{a} {asset}"),
        },
        _ => "-".into(),
    };
    let mut f = vec![
        ("id", cell(&tx["id"])),
        ("state", cell(&tx["state"])),
        ("amount", amount),
        ("to", cell(&i["destination"])),
        ("memo", cell(&i["memo"])),
        (
            "wallet",
            format!("{} path {}", cell(&tx["wallet_id"]), cell(&i["path"])),
        ),
        ("vault", cell(&tx["vault_id"])),
        ("request", cell(&i["request_id"])),
        ("initiator", cell(&i["initiator"])),
        ("intent hash", cell(&tx["intent_hash"])),
        (
            "policy",
            format!(
                "version {} rule {}",
                cell(&tx["policy_version"]),
                cell(&tx["rule"])
            ),
        ),
    ];
    if let Some(kind) = i["kind"].as_str() {
        f.insert(2, ("signs", format!("{kind} message")));
    }
    if !tx["reason"].is_null() {
        f.push(("reason", cell(&tx["reason"])));
    }
    let required: Vec<String> = items(tx, "required")
        .iter()
        .map(|r| {
            format!(
                "{}: {}/{}",
                cell(&r["group"]),
                cell(&r["have"]),
                cell(&r["need"])
            )
        })
        .collect();
    if !required.is_empty() {
        f.push(("approvals", required.join(", ")));
    }
    for a in items(tx, "approvals") {
        f.push((
            "  by",
            format!(
                "{} {} at {}",
                short(&a["approver"]),
                cell(&a["decision"]),
                time(&a["created_at"])
            ),
        ));
    }
    if !tx["signature"].is_null() {
        f.push(("signature", cell(&tx["signature"])));
        if !tx["recovery_id"].is_null() {
            f.push(("recovery id", cell(&tx["recovery_id"])));
        }
        f.push(("public key", cell(&tx["public_key"])));
        f.push(("signers", cell(&tx["signers"])));
    }
    if !tx["chain"].is_null() {
        f.push(("chain", cell(&tx["chain"]["chain"])));
        if !tx["chain"]["fee"].is_null() {
            f.push(("fee", cell(&tx["chain"]["fee"])));
        }
    }
    if !tx["tx_id"].is_null() {
        f.push(("tx id", cell(&tx["tx_id"])));
        f.push(("signed tx", cell(&tx["signed_tx"])));
    }
    f.push(("created", time(&tx["created_at"])));
    f.push(("updated", time(&tx["updated_at"])));
    f.push(("expires", time(&tx["expires_at"])));
    fields(&f)
}

fn list_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "transactions")
        .iter()
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["state"]),
                amount_cell(t),
                cell(&t["intent"]["destination"]),
                cell(&t["wallet_id"]),
                time(&t["created_at"]),
            ]
        })
        .collect();
    table(&["ID", "STATE", "AMOUNT", "TO", "WALLET", "CREATED"], &rows)
}

/// What ends a wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WaitOutcome {
    /// Keep polling.
    Continue,
    /// Done: print the request.
    Done,
    /// The request ended in another state than the one waited for.
    Missed(String),
}

/// Decides whether a request in `state` ends a wait for `until` (None: any final state;
/// `stop_at_pending`: also stop when approvals are needed).
pub(crate) fn wait_outcome(state: &str, until: Option<&str>, stop_at_pending: bool) -> WaitOutcome {
    if until == Some(state) {
        return WaitOutcome::Done;
    }
    if stop_at_pending && state == "pending_approval" {
        return WaitOutcome::Done;
    }
    if FINAL.contains(&state) {
        return match until {
            Some(want) => WaitOutcome::Missed(format!("it ended {state}, not {want}")),
            None => WaitOutcome::Done,
        };
    }
    WaitOutcome::Continue
}

fn tx_path(id: &str) -> Result<String, Failure> {
    Ok(format!("/v1/transactions/{}", check_id("transaction", id)?))
}

/// Polls a request until [`wait_outcome`] says so, or `timeout` passes (each new state on
/// stderr).
pub(crate) fn wait(
    client: &ApiClient,
    id: &str,
    timeout: Duration,
    until: Option<&str>,
    stop_at_pending: bool,
) -> Result<Value, Failure> {
    let path = tx_path(id)?;
    let started = Instant::now();
    let mut last_state = String::new();
    loop {
        let tx = client.call("GET", &path, None)?;
        let state = tx["state"].as_str().unwrap_or_default().to_string();
        match wait_outcome(&state, until, stop_at_pending) {
            WaitOutcome::Done => return Ok(tx),
            WaitOutcome::Missed(why) => {
                let reason = if tx["reason"].is_null() {
                    String::new()
                } else {
                    format!(" ({})", cell(&tx["reason"]))
                };
                return Err(Failure(format!("request {id}: {why}{reason}")));
            }
            WaitOutcome::Continue => {}
        }
        if state != last_state {
            eprintln!("request {id}: {state}");
            last_state = state;
        }
        if started.elapsed() >= timeout {
            return Err(Failure(format!(
                "request {id}: still {last_state} after {} s (wait longer with --timeout)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Approves or rejects a request with the client's own key: fetches it, recomputes the
/// intent hash from the intent ([`checked_intent`]), signs the approval over that hash and
/// posts it. With `json`, shows the intent on stderr first. Returns the request as the
/// server answered and the intent's summary.
pub(crate) fn decide(
    json: bool,
    client: &ApiClient,
    id: &str,
    decision: Decision,
    expires_in: u64,
    reason: Option<String>,
) -> Result<(Value, String), Failure> {
    let path = tx_path(id)?;
    let tx = client.call("GET", &path, None)?;
    let (intent, hash) = checked_intent(&tx)?;
    let summary = intent_summary(&intent, &hash);
    let lifetime = i64::try_from(expires_in)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| Failure("--expires-in must be at least 1 second".into()))?;
    let (verb, route) = match decision {
        Decision::Approve => ("approving", "approve"),
        Decision::Reject => ("rejecting", "reject"),
    };
    if json {
        // Text mode shows it on stdout with the result.
        eprintln!("{verb} request {id}:\n{summary}");
    }
    let approval = Approval::sign(
        client.credential().signing_key(),
        hash,
        decision,
        unix_now().saturating_add(lifetime),
    );
    let mut body = json!({ "approval": approval });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    let v = client.call("POST", &format!("{path}/{route}"), Some(&body))?;
    Ok((v, summary))
}

pub(crate) fn run(args: TxArgs) -> Result<(), Failure> {
    let json = args.common.json;
    match args.cmd {
        TxCommand::Create {
            request,
            inputs,
            amount,
            to,
        } => {
            let tx = request.run(&args.common, &amount, &to, |client, wallet, req| {
                create(client, wallet, Some(&inputs), req)
            })?;
            show(json, &tx, tx_text)
        }
        TxCommand::SignMessage {
            request,
            typed_data,
            text,
            hex: hex_message,
        } => {
            let message = match (typed_data, text, hex_message) {
                (Some(file), None, None) => MessageInput::TypedData(read_text(&file)?),
                (None, Some(t), None) => MessageInput::Personal(t.into_bytes()),
                (None, None, Some(h)) => MessageInput::Personal(
                    hex::decode(h.trim_start_matches("0x"))
                        .map_err(|e| Failure(format!("--hex is not hex: {e}")))?,
                ),
                _ => {
                    return Err(Failure(
                        "give the message: --typed-data FILE, --text TEXT or --hex HEX".into(),
                    ))
                }
            };
            let tx = request.run(&args.common, "", "", |client, wallet, req| {
                create_message(client, wallet, message, req)
            })?;
            show(json, &tx, tx_text)
        }
        TxCommand::Broadcast {
            id,
            rpc,
            rpc_user,
            rpc_password,
        } => {
            let caller = connect(&args.common, READERS)?;
            let tx = caller.client.call("GET", &tx_path(&id)?, None)?;
            let signed = tx["signed_tx"].as_str().ok_or_else(|| {
                Failure(format!(
                    "request {id} has no signed chain transaction (state {})",
                    cell(&tx["state"])
                ))
            })?;
            let chain: coffer_chains::Chain = tx["chain"]["chain"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e: coffer_chains::ChainError| Failure(e.to_string()))?;
            let node_id = chain_cmd::broadcast(
                chain,
                signed,
                &rpc,
                rpc_user.as_deref(),
                rpc_password.as_deref(),
            )?;
            let out = json!({"id": id, "chain": chain.name(), "tx_id": node_id, "expected_tx_id": tx["tx_id"]});
            if tx["tx_id"]
                .as_str()
                .is_some_and(|t| !t.eq_ignore_ascii_case(&node_id))
            {
                return Err(Failure(format!(
                    "the node reports id {node_id}, but the transaction's id is {}",
                    cell(&tx["tx_id"])
                )));
            }
            show(json, &out, |v| {
                fields(&[("chain", cell(&v["chain"])), ("tx id", cell(&v["tx_id"]))])
            })
        }
        TxCommand::List { state, limit } => {
            let mut query = Vec::new();
            if let Some(s) = &state {
                query.push(format!("state={}", check_state(s)?));
            }
            if let Some(l) = limit {
                query.push(format!("limit={l}"));
            }
            let path = if query.is_empty() {
                "/v1/transactions".to_string()
            } else {
                format!("/v1/transactions?{}", query.join("&"))
            };
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call("GET", &path, None)?;
            show(json, &v, list_text)
        }
        TxCommand::Show { id } => {
            let caller = connect(&args.common, READERS)?;
            let v = caller.client.call("GET", &tx_path(&id)?, None)?;
            show(json, &v, tx_text)
        }
        TxCommand::Wait { id, timeout, until } => {
            if let Some(u) = &until {
                check_state(u)?;
            }
            let caller = connect(&args.common, READERS)?;
            let v = wait(
                &caller.client,
                &id,
                Duration::from_secs(timeout),
                until.as_deref(),
                false,
            )?;
            show(json, &v, tx_text)
        }
        TxCommand::Approve { id, expires_in } => {
            let caller = connect(&args.common, Natural::Nobody("approving is personal"))?;
            let (v, summary) = decide(
                json,
                &caller.client,
                &id,
                Decision::Approve,
                expires_in,
                None,
            )?;
            show(json, &v, |v| {
                format!("approved:\n{summary}\n\n{}", tx_text(v))
            })
        }
        TxCommand::Reject {
            id,
            reason,
            expires_in,
        } => {
            let caller = connect(&args.common, Natural::Nobody("rejecting is personal"))?;
            let (v, summary) = decide(
                json,
                &caller.client,
                &id,
                Decision::Reject,
                expires_in,
                reason,
            )?;
            show(json, &v, |v| {
                format!("rejected:\n{summary}\n\n{}", tx_text(v))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn pk(sk: &SigningKey) -> PublicKey {
        PublicKey(sk.verifying_key().to_bytes())
    }

    fn whoami(sk: &SigningKey) -> Value {
        json!({"key": pk(sk).to_string(), "role": "initiator", "tenant": "t-1", "user": "ivan"})
    }

    fn wallet() -> Value {
        json!({"id": "w-1", "vault_id": "v-1", "name": "hot", "scheme": "ecdsa-secp256k1",
               "asset": "BTC", "index": 3, "key_id": "k-1", "created_at": 0})
    }

    fn req(amount: &str) -> TxRequest<'_> {
        TxRequest {
            amount,
            to: "bc1qdest",
            memo: "rent",
            address_index: 7,
            request_id: "tx-1".into(),
            now: 1_700_000_000,
            expires_in: 3600,
        }
    }

    #[test]
    fn intent_fields_come_from_whoami_the_wallet_and_the_flags() {
        let sk = key(1);
        let i = build_intent(&whoami(&sk), &wallet(), pk(&sk), req("0.5btc")).unwrap();
        assert_eq!(i.tenant, "t-1");
        assert_eq!(i.vault_id, "v-1");
        assert_eq!(i.key_id, "k-1");
        assert_eq!(i.wallet_id, "w-1");
        assert_eq!(i.request_id, "tx-1");
        assert_eq!(i.path, "m/3/7");
        assert_eq!(i.asset, "BTC");
        assert_eq!(i.amount.0, 50_000_000);
        assert_eq!(i.destination, "bc1qdest");
        assert_eq!(i.memo, "rent");
        assert_eq!(i.initiator, pk(&sk));
        assert_eq!(i.created_at, 1_700_000_000);
        assert_eq!(i.expires_at, 1_700_003_600);
        // The initiator signature verifies over the intent.
        let sig = coffer_policy::sign_initiation(&sk, &i);
        coffer_policy::verify_initiation(&i, &sig).unwrap();
        // Default address index 0.
        let mut r = req("150000");
        r.address_index = 0;
        let i = build_intent(&whoami(&sk), &wallet(), pk(&sk), r).unwrap();
        assert_eq!(i.path, "m/3/0");
        assert_eq!(i.amount.0, 150_000);
    }

    #[test]
    fn intent_building_refuses_bad_input() {
        let sk = key(1);
        let e = |w: &Value, me: &Value, r: TxRequest<'_>| {
            build_intent(me, w, pk(&sk), r).unwrap_err().0
        };
        assert!(e(&wallet(), &whoami(&sk), req("0.5eth")).contains("does not match"));
        assert!(e(&wallet(), &whoami(&sk), req("0")).contains("amount"));
        let op = json!({"key": pk(&sk).to_string(), "role": "operator", "tenant": null});
        assert!(e(&wallet(), &op, req("1")).contains("belongs to no tenant"));
        let other = whoami(&key(2));
        assert!(e(&wallet(), &other, req("1")).contains("another key"));
        let mut w = wallet();
        w["index"] = json!(1u64 << 31);
        assert!(e(&w, &whoami(&sk), req("1")).contains("2^31"));
        let mut w = wallet();
        w.as_object_mut().unwrap().remove("key_id");
        assert!(e(&w, &whoami(&sk), req("1")).contains("key_id"));
        let mut r = req("1");
        r.expires_in = 8 * 86_400;
        assert!(e(&wallet(), &whoami(&sk), r).contains("--expires-in"));
        let mut r = req("1");
        r.to = "";
        assert!(e(&wallet(), &whoami(&sk), r).contains("destination"));
    }

    fn fetched(sk: &SigningKey) -> (Value, Intent) {
        let i = build_intent(&whoami(sk), &wallet(), pk(sk), req("0.5btc")).unwrap();
        let tx = json!({"id": "r-1", "vault_id": "v-1", "wallet_id": "w-1", "key_id": "k-1",
            "state": "pending_approval", "intent": i, "intent_hash": hex::encode(i.hash())});
        (tx, i)
    }

    #[test]
    fn approvals_sign_the_recomputed_hash() {
        let sk = key(1);
        let (tx, i) = fetched(&sk);
        let (back, hash) = checked_intent(&tx).unwrap();
        assert_eq!(back, i);
        assert_eq!(hash, i.hash());
        let summary = intent_summary(&back, &hash);
        assert!(summary.contains("0.5 BTC (50000000 sat)"), "{summary}");
        assert!(summary.contains("bc1qdest") && summary.contains("rent"));
    }

    #[test]
    fn a_mismatched_intent_hash_is_refused() {
        let sk = key(1);
        let (mut tx, _) = fetched(&sk);
        // The server claims the hash of another intent (e.g. a smaller amount it showed).
        let mut other = tx["intent"].clone();
        other["amount"] = json!("1");
        let other: Intent = serde_json::from_value(other).unwrap();
        tx["intent_hash"] = json!(hex::encode(other.hash()));
        let e = checked_intent(&tx).unwrap_err().0;
        assert!(
            e.contains("refusing to sign") && e.contains("intent hash"),
            "{e}"
        );
        // Missing hash, altered intent, or ids that disagree with the intent: refused too.
        let (mut tx, _) = fetched(&sk);
        tx.as_object_mut().unwrap().remove("intent_hash");
        assert!(checked_intent(&tx).is_err());
        let (mut tx, _) = fetched(&sk);
        tx["intent"]["destination"] = json!("bc1qattacker");
        assert!(checked_intent(&tx)
            .unwrap_err()
            .0
            .contains("refusing to sign"));
        let (mut tx, _) = fetched(&sk);
        tx["wallet_id"] = json!("w-2");
        assert!(checked_intent(&tx).unwrap_err().0.contains("wallet_id"));
        let (mut tx, _) = fetched(&sk);
        tx["intent"]["extra"] = json!(1);
        assert!(checked_intent(&tx)
            .unwrap_err()
            .0
            .contains("does not parse"));
    }

    #[test]
    fn wait_outcomes() {
        use WaitOutcome::*;
        assert_eq!(wait_outcome("signing", None, false), Continue);
        assert_eq!(wait_outcome("pending_approval", None, false), Continue);
        assert_eq!(wait_outcome("pending_approval", None, true), Done);
        assert_eq!(wait_outcome("signed", None, false), Done);
        assert_eq!(wait_outcome("rejected", None, false), Done);
        assert_eq!(wait_outcome("signed", Some("signed"), false), Done);
        assert_eq!(wait_outcome("approved", Some("approved"), false), Done);
        assert!(matches!(
            wait_outcome("rejected", Some("signed"), false),
            Missed(_)
        ));
        assert_eq!(wait_outcome("signing", Some("signed"), false), Continue);
    }

    #[test]
    fn request_ids_and_states() {
        let a = random_request_id();
        assert!(a.starts_with("req-") && a.len() == 36);
        assert_ne!(a, random_request_id());
        assert!(check_state("signed").is_ok());
        assert!(check_state("created").is_err());
    }

    #[test]
    fn text_forms() {
        let sk = key(1);
        let (mut tx, _) = fetched(&sk);
        tx["required"] = json!([{"group": "approvers", "have": 1, "need": 2}]);
        tx["approvals"] = json!([{"approver": "ab".repeat(32), "decision": "approve", "expires_at": 0, "created_at": 0}]);
        let t = tx_text(&tx);
        assert!(t.contains("approvers: 1/2") && t.contains("0.5 BTC"), "{t}");
        let l = list_text(&json!({"transactions": [tx]}));
        assert!(l.contains("r-1") && l.contains("0.5 BTC"), "{l}");
    }
}
