//! The JSON-RPC adapter against a scripted local HTTP server: the request it sends and how it
//! maps results and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use coffer_sol::rpc::SolanaRpc;
use coffer_sol::SolError;
use serde_json::{json, Value};

/// Serves one HTTP request with `status` and `body`; returns the JSON request received.
fn serve_once(status: u16, body: Value) -> (String, JoinHandle<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut request = vec![0u8; len];
        reader.read_exact(&mut request).unwrap();
        let body = body.to_string();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        serde_json::from_slice(&request).unwrap()
    });
    (url, handle)
}

#[test]
fn send_transaction_posts_base64_and_returns_the_signature() {
    let (url, server) = serve_once(200, json!({"jsonrpc": "2.0", "id": 1, "result": "5sig"}));
    let sig = SolanaRpc::new(&url).send_transaction("AQID").unwrap();
    assert_eq!(sig, "5sig");
    let request = server.join().unwrap();
    assert_eq!(request["method"], "sendTransaction");
    assert_eq!(request["params"], json!(["AQID", {"encoding": "base64"}]));
}

#[test]
fn a_json_rpc_error_is_typed() {
    let (url, server) = serve_once(
        200,
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32002, "message": "Blockhash not found"}}),
    );
    let err = SolanaRpc::new(&url).send_transaction("AQID").unwrap_err();
    assert_eq!(
        err,
        SolError::RpcError {
            method: "sendTransaction",
            code: -32002,
            message: "Blockhash not found".into()
        }
    );
    server.join().unwrap();
}

#[test]
fn latest_blockhash_reads_value_blockhash() {
    let hash = "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM";
    let (url, server) = serve_once(
        200,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": 1}, "value": {"blockhash": hash, "lastValidBlockHeight": 9}}}),
    );
    assert_eq!(SolanaRpc::new(&url).latest_blockhash().unwrap(), hash);
    assert_eq!(server.join().unwrap()["method"], "getLatestBlockhash");
}

#[test]
fn a_malformed_blockhash_from_the_node_is_refused() {
    let (url, server) = serve_once(
        200,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"value": {"blockhash": "not-base58!"}}}),
    );
    assert!(matches!(
        SolanaRpc::new(&url).latest_blockhash(),
        Err(SolError::RpcBadResponse { .. })
    ));
    server.join().unwrap();
}

#[test]
fn an_unreachable_node_is_a_transport_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = SolanaRpc::new(&format!("http://127.0.0.1:{port}"))
        .send_transaction("AQID")
        .unwrap_err();
    assert!(matches!(err, SolError::RpcTransport { .. }), "{err:?}");
}
