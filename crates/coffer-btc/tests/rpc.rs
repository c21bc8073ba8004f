//! The broadcast adapter against a scripted local HTTP server standing in for bitcoind: the
//! request is JSON-RPC 1.0 `sendrawtransaction` with basic auth, replies and errors are mapped.
// Tests fail loudly: unwrap/expect are the assertions here (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use coffer_btc::rpc::BitcoinRpc;
use coffer_btc::BtcError;

/// Serves one request with `status` and `body`; returns the request's headers and body.
fn serve_once(
    status: &str,
    body: &'static str,
) -> (String, thread::JoinHandle<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_owned();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            headers.push(line);
        }
        let len: usize = headers
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        let mut req_body = vec![0; len];
        reader.read_exact(&mut req_body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        (headers, String::from_utf8(req_body).unwrap())
    });
    (url, handle)
}

const TXID: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";

#[test]
fn send_raw_transaction_posts_json_rpc_with_basic_auth() {
    let (url, server) = serve_once(
        "200 OK",
        r#"{"result":"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b","error":null,"id":"coffer"}"#,
    );
    let rpc = BitcoinRpc::new(&url, "user", "pass");
    assert_eq!(rpc.send_raw_transaction("0200beef").unwrap(), TXID);
    let (headers, body) = server.join().unwrap();
    assert!(headers[0].starts_with("POST / HTTP/1.1"), "{headers:?}");
    // base64("user:pass") = dXNlcjpwYXNz (RFC 7617).
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Basic dXNlcjpwYXNz")),
        "{headers:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["jsonrpc"], "1.0");
    assert_eq!(json["method"], "sendrawtransaction");
    assert_eq!(json["params"], serde_json::json!(["0200beef"]));
    assert!(
        !format!("{rpc:?}").contains("pass\""),
        "password leaked in Debug"
    );
}

#[test]
fn node_rejections_are_typed() {
    let (url, server) = serve_once(
        "500 Internal Server Error",
        r#"{"result":null,"error":{"code":-26,"message":"mandatory-script-verify-flag-failed"},"id":"coffer"}"#,
    );
    let err = BitcoinRpc::new(&url, "u", "p")
        .send_raw_transaction("00")
        .unwrap_err();
    assert_eq!(
        err,
        BtcError::RpcRejected {
            code: -26,
            message: "mandatory-script-verify-flag-failed".to_owned()
        }
    );
    server.join().unwrap();
}

#[test]
fn garbage_replies_and_dead_nodes_are_transport_errors() {
    let (url, server) = serve_once("200 OK", r#"{"result":42,"error":null}"#);
    assert!(matches!(
        BitcoinRpc::new(&url, "u", "p").send_raw_transaction("00"),
        Err(BtcError::RpcTransport { .. })
    ));
    server.join().unwrap();
    // Nothing listens on a port we just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = BitcoinRpc::new(&format!("http://127.0.0.1:{port}"), "u", "p");
    assert!(matches!(
        dead.send_raw_transaction("00"),
        Err(BtcError::RpcTransport { .. })
    ));
}
