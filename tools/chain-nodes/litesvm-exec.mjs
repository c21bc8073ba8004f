// Executes signed Solana wire transactions in LiteSVM (the Solana runtime as a library), for
// coffer-sol's tests (crates/coffer-sol/src/litesvm.rs drives it).
//
// Usage: node litesvm-exec.mjs '[["<base58 address>", <lamports>], ...]'
//
// It creates a LiteSVM with signature verification and blockhash checks ON (the library's
// defaults for `new LiteSVM()`; set explicitly here as well, so a change of defaults cannot
// silently turn them off), airdrops the listed funds, and prints one JSON line
//   {"blockhash": "<base58 latest blockhash>"}
// Then, for each line on stdin of the form
//   {"tx": "<standard base64 wire transaction>", "watch": ["<address>", ...]}
// it decodes the wire bytes with @solana/kit's transaction decoder, calls svm.sendTransaction and
// prints one JSON line
//   {"ok": bool, "error": string|null, "logs": [...], "balances": {"<address>": <lamports>}}
// (balances of the watched addresses after the transaction; a missing account is 0). A line
// that cannot be decoded yields {"ok": false, "error": "...", ...} too. Exits when stdin closes.
// Lamports are printed as JSON integers (u64 values above 2^53 are printed exactly, as digits).

import { createInterface } from "node:readline";
import { LiteSVM, FailedTransactionMetadata } from "litesvm";
import { address, getBase64Encoder, getTransactionDecoder, lamports } from "@solana/kit";

// Names of litesvm's TransactionErrorFieldless const enum (dist/internal.d.ts, in order).
const FIELDLESS = [
  "AccountInUse", "AccountLoadedTwice", "AccountNotFound", "ProgramAccountNotFound",
  "InsufficientFundsForFee", "InvalidAccountForFee", "AlreadyProcessed", "BlockhashNotFound",
  "CallChainTooDeep", "MissingSignatureForFee", "InvalidAccountIndex", "SignatureFailure",
  "InvalidProgramForExecution", "SanitizeFailure", "ClusterMaintenance",
  "AccountBorrowOutstanding", "WouldExceedMaxBlockCostLimit", "UnsupportedVersion",
  "InvalidWritableAccount", "WouldExceedMaxAccountCostLimit", "WouldExceedAccountDataBlockLimit",
  "TooManyAccountLocks", "AddressLookupTableNotFound", "InvalidAddressLookupTableOwner",
  "InvalidAddressLookupTableData", "InvalidAddressLookupTableIndex", "InvalidRentPayingAccount",
  "WouldExceedMaxVoteCostLimit", "WouldExceedAccountDataTotalLimit", "MaxLoadedAccountsDataSizeExceeded",
  "ResanitizationNeeded", "InvalidLoadedAccountsDataSizeLimit", "UnbalancedTransaction",
  "ProgramCacheHitMaxLimit", "CommitCancelled",
];

function describeError(failed) {
  const err = failed.err();
  if (typeof err === "number") {
    return FIELDLESS[err] ?? `TransactionError(${err})`;
  }
  if (err !== null && typeof err === "object") {
    const inner = typeof err.err === "function" ? err.err() : undefined;
    const innerText =
      inner === undefined ? "" : typeof inner === "object" ? `: ${inner.toString()}` : `: ${inner}`;
    return `${err.constructor?.name ?? "TransactionError"}${innerText} (${err.toString()})`;
  }
  return String(err);
}

function stringify(value) {
  // JSON with bigints as exact integer literals.
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `__BIG__${v}` : v)).replace(
    /"__BIG__(\d+)"/g,
    "$1",
  );
}

function balancesOf(svm, watch) {
  const out = {};
  for (const a of watch) {
    const b = svm.getBalance(address(a));
    out[a] = b === null ? 0n : BigInt(b);
  }
  return out;
}

function main() {
  const fund = JSON.parse(process.argv[2] ?? "[]");
  const svm = new LiteSVM().withSigverify(true).withBlockhashCheck(true);
  for (const [addr, amount] of fund) {
    const r = svm.airdrop(address(addr), lamports(BigInt(amount)));
    if (r === null || r instanceof FailedTransactionMetadata) {
      process.stderr.write(`airdrop to ${addr} failed: ${r === null ? "null" : describeError(r)}\n`);
      process.exit(2);
    }
  }
  process.stdout.write(stringify({ blockhash: svm.latestBlockhash() }) + "\n");

  const txDecoder = getTransactionDecoder();
  const b64 = getBase64Encoder();
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let watch = [];
    let result;
    try {
      const req = JSON.parse(line);
      watch = Array.isArray(req.watch) ? req.watch : [];
      const tx = txDecoder.decode(b64.encode(req.tx));
      const meta = svm.sendTransaction(tx);
      if (meta instanceof FailedTransactionMetadata) {
        result = { ok: false, error: describeError(meta), logs: meta.meta().logs() };
      } else {
        result = { ok: true, error: null, logs: meta.logs() };
      }
    } catch (e) {
      result = { ok: false, error: `rejected before execution: ${e?.message ?? String(e)}`, logs: [] };
    }
    let balances = {};
    try {
      balances = balancesOf(svm, watch);
    } catch (e) {
      result.ok = false;
      result.error = `${result.error ?? ""} (balance lookup failed: ${e?.message ?? String(e)})`;
    }
    process.stdout.write(stringify({ ...result, balances }) + "\n");
  });
}

main();
