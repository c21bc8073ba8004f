//! Webhooks end to end, on SQLite and on PostgreSQL, against a local receiver (a std
//! `TcpListener` in this process) that can be told to answer 500, to hold a request past
//! the worker's timeout, and to recover:
//!
//! - deliveries carry signatures that an independent HMAC-SHA256 (the `hmac` crate, used
//!   directly here) accepts, and that `verify` accepts once and refuses when replayed,
//!   stale, altered or checked with another secret;
//! - a failing receiver gets retries at growing intervals, then the delivery succeeds;
//! - a timeout counts as a failure, and a hanging receiver does not slow the API;
//! - a receiver that never recovers leaves the delivery dead after max attempts, and the
//!   retry route re-arms it;
//! - pending rows survive a server restart and are delivered after it;
//! - outbox rows commit and roll back with the transaction that wrote them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use coffer_server::webhooks::signature::{verify, MemoryReplayGuard, SignedHeaders, VerifyError};
use coffer_server::webhooks::WebhookConfig;

use common::*;

/// What the receiver does with one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Ok,
    Fail,
    /// Reads the request, then holds the connection this long before answering.
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Arrival {
    at: Instant,
    path: String,
    behaviour: Behaviour,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Arrival {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn event_id(&self) -> String {
        self.header("coffer-event-id").unwrap().to_string()
    }
}

#[derive(Default)]
struct ReceiverState {
    script: VecDeque<Behaviour>,
    default: Option<Behaviour>,
    arrivals: Vec<Arrival>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        Receiver { url, state }
    }

    /// The next requests get these behaviours, then `default`.
    fn script(&self, behaviours: &[Behaviour]) {
        self.state.lock().unwrap().script = behaviours.iter().copied().collect();
    }

    fn set_default(&self, b: Behaviour) {
        self.state.lock().unwrap().default = Some(b);
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// Arrivals of the event of `event_type` about request `tx` at `path`.
    fn of(&self, path: &str, event_type: &str, tx: &str) -> Vec<Arrival> {
        self.arrivals()
            .into_iter()
            .filter(|a| {
                let v = a.json();
                a.path == path && v["type"] == event_type && v["data"]["request_id"] == tx
            })
            .collect()
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<ReceiverState>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    let behaviour = {
        let mut s = state.lock().unwrap();
        let b = s.script.pop_front().or(s.default).unwrap_or(Behaviour::Ok);
        s.arrivals.push(Arrival {
            at: Instant::now(),
            path,
            behaviour: b,
            headers,
            body,
        });
        b
    };
    let answer = match behaviour {
        Behaviour::Ok => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        Behaviour::Fail => {
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfail"
        }
        Behaviour::Hang(d) => {
            std::thread::sleep(d);
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        }
    };
    let _ = conn.write_all(answer.as_bytes());
}

fn config() -> WebhookConfig {
    WebhookConfig {
        base: Duration::from_millis(300),
        cap: Duration::from_millis(2400),
        max_attempts: 4,
        timeout: Duration::from_millis(1500),
        poll: Duration::from_millis(50),
        concurrency: 4,
    }
}

/// An endpoint's deliveries (newest first).
fn deliveries(c: &Cluster, t: &Tenant, endpoint: &str) -> Vec<Value> {
    c.as_(&t.viewer)
        .ok("GET", &format!("/v1/webhooks/{endpoint}/deliveries"), None)["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the endpoint's delivery of `event_type` about `tx` satisfies `pred`.
fn wait_delivery(
    c: &Cluster,
    t: &Tenant,
    endpoint: &str,
    event_type: &str,
    tx: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let list = deliveries(c, t, endpoint);
        let found = list
            .iter()
            .find(|d| d["event_type"] == event_type && d["data"]["request_id"] == tx);
        if let Some(d) = found {
            if pred(d) {
                return d.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "delivery of {event_type} for {tx} never matched: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The HMAC computed here, independently of the server's code.
fn independent_check(secret_hex: &str, a: &Arrival) {
    let sig = a.header("coffer-signature").unwrap();
    let (t_part, v1_part) = sig.split_once(',').unwrap();
    let t = t_part.strip_prefix("t=").unwrap();
    let v1 = v1_part.strip_prefix("v1=").unwrap();
    assert_eq!(a.header("coffer-timestamp").unwrap(), t);
    let t_num: i64 = t.parse().unwrap();
    assert!((now() - t_num).abs() < 120, "timestamp {t_num} is not now");
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(secret_hex).unwrap()).unwrap();
    mac.update(format!("{t}.{}.", a.event_id()).as_bytes());
    mac.update(&a.body);
    assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
}

fn headers_of(a: &Arrival) -> SignedHeaders {
    SignedHeaders::from_lookup(|name| a.header(name)).unwrap()
}

fn tx_request(c: &Cluster, t: &Tenant, w: &Value, request_id: &str) -> (Value, Duration) {
    let started = Instant::now();
    let (status, tx) = create_tx(c, t, &intent(t, w, request_id, 1500));
    let took = started.elapsed();
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["state"], "pending_approval");
    (tx, took)
}

#[test]
fn webhooks_are_signed_retried_dead_lettered_and_durable_on_sqlite() {
    suite(Cluster::start_with_webhooks("webhooks", None, config()));
}

#[test]
fn webhooks_are_signed_retried_dead_lettered_and_durable_on_postgresql() {
    let scratch = match c_rt().block_on(coffer_server::db::testing::postgres_scratch()) {
        Ok(s) => s,
        Err(why) => {
            coffer_server::db::testing::not_run("webhooks", &why);
            return;
        }
    };
    suite(Cluster::start_with_webhooks(
        "webhooks-pg",
        Some(scratch.url().to_string()),
        config(),
    ));
    c_rt().block_on(scratch.drop_db()).unwrap();
}

fn suite(mut c: Cluster) {
    let recv = Receiver::start();
    let t = tenant(&c, "acme");
    let other = tenant(&c, "globex");
    let (_v, w) = vault(&c, &t, "ed25519", "SOL");
    let admin = c.as_(&t.admin);

    // --- Endpoints: admins only, bad input refused with a clear 400 ---
    let (status, v) = c.as_(&t.viewer).call(
        "POST",
        "/v1/webhooks",
        Some(json!({"url": format!("{}/all", recv.url)})),
    );
    assert_eq!(status, 403, "{v}");
    for (label, body) in [
        ("ftp", json!({"url": "ftp://example.com/x"})),
        ("not a URL", json!({"url": "not a url"})),
        ("no host", json!({"url": "http://"})),
        ("credentials", json!({"url": "http://user:pw@example.com/"})),
        ("fragment", json!({"url": "https://example.com/#x"})),
        (
            "too long",
            json!({"url": format!("https://example.com/{}", "a".repeat(2100))}),
        ),
        (
            "unknown event",
            json!({"url": "https://example.com/", "events": ["transaction.nope"]}),
        ),
        (
            "unknown field",
            json!({"url": "https://example.com/", "x": 1}),
        ),
    ] {
        let (status, v) = admin.call("POST", "/v1/webhooks", Some(body));
        assert_eq!(status, 400, "{label}: {v}");
        assert!(v["error"]["message"].is_string(), "{label}: {v}");
    }
    let all = admin.ok(
        "POST",
        "/v1/webhooks",
        Some(json!({"url": format!("{}/all", recv.url)})),
    );
    let all_id = all["id"].as_str().unwrap().to_string();
    let secret = all["secret"].as_str().unwrap().to_string();
    assert!(all_id.starts_with("wh-"), "{all}");
    assert_eq!(hex::decode(&secret).unwrap().len(), 32);
    let signed_only = admin.ok(
        "POST",
        "/v1/webhooks",
        Some(json!({"url": format!("{}/signed", recv.url), "events": ["transaction.signed"]})),
    );
    let signed_id = signed_only["id"].as_str().unwrap().to_string();
    let signed_secret = signed_only["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, signed_secret);
    let listed = c.as_(&t.viewer).ok("GET", "/v1/webhooks", None);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2, "{listed}");
    assert!(!listed.to_string().contains(&secret));
    assert!(!listed.to_string().contains("secret"));
    // Another tenant sees none of it.
    let theirs = c.as_(&other.admin).ok("GET", "/v1/webhooks", None);
    assert_eq!(theirs["webhooks"].as_array().unwrap().len(), 0);
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{all_id}/deliveries")),
        ("DELETE", format!("/v1/webhooks/{all_id}")),
    ] {
        let (status, v) = c.as_(&other.admin).call(method, &path, None);
        assert_eq!(status, 404, "{method} {path}: {v}");
    }

    // --- Signed deliveries of every state change, verified independently ---
    let (tx1, _) = tx_request(&c, &t, &w, "req-1");
    let id1 = tx1["id"].as_str().unwrap().to_string();
    approve(&c, &t.approvers[0], &tx1);
    approve(&c, &t.approvers[1], &tx1);
    let signed = wait_state(&c, &t, &id1, &["signed", "failed"]);
    assert_eq!(signed["state"], "signed", "{signed}");
    for event in [
        "transaction.created",
        "transaction.approved",
        "transaction.signed",
    ] {
        wait_delivery(&c, &t, &all_id, event, &id1, |d| {
            d["state"] == "delivered" && d["attempts"] == 1
        });
    }
    wait_delivery(&c, &t, &signed_id, "transaction.signed", &id1, |d| {
        d["state"] == "delivered"
    });
    // The filtered endpoint got the signed event only.
    let to_signed: Vec<Arrival> = recv
        .arrivals()
        .into_iter()
        .filter(|a| a.path == "/signed")
        .collect();
    assert_eq!(to_signed.len(), 1);
    assert_eq!(to_signed[0].json()["type"], "transaction.signed");
    independent_check(&signed_secret, &to_signed[0]);
    let arrived = recv.of("/all", "transaction.signed", &id1);
    assert_eq!(arrived.len(), 1);
    let a = &arrived[0];
    independent_check(&secret, a);
    let body = a.json();
    assert_eq!(body["id"], a.event_id());
    assert_eq!(body["tenant"], t.id);
    assert_eq!(body["data"]["state"], "signed");
    assert_eq!(body["data"]["amount"], "1500");
    assert_eq!(body["data"]["asset"], "SOL");
    assert_eq!(body["data"]["destination"], "dest-1");
    assert_eq!(body["data"]["vault_id"], w["vault_id"]);
    assert_eq!(body["data"]["wallet_id"], w["id"]);
    assert!(!String::from_utf8_lossy(&a.body).contains(&secret));
    // Every arrival at /all is independently valid, and the list shows their event ids.
    let listed_ids: Vec<String> = deliveries(&c, &t, &all_id)
        .iter()
        .map(|d| d["event_id"].as_str().unwrap().to_string())
        .collect();
    for a in recv.arrivals().iter().filter(|a| a.path == "/all") {
        independent_check(&secret, a);
        assert!(listed_ids.contains(&a.event_id()));
    }

    // verify(): accepted once; replayed, stale, altered or under another secret: refused.
    let key = hex::decode(&secret).unwrap();
    let h = headers_of(a);
    let at: i64 = h.timestamp.parse().unwrap();
    let mut guard = MemoryReplayGuard::default();
    assert_eq!(verify(&key, &h, &a.body, at + 1, 300, &mut guard), Ok(()));
    assert_eq!(
        verify(&key, &h, &a.body, at + 2, 300, &mut guard),
        Err(VerifyError::Replayed {
            event_id: a.event_id()
        })
    );
    let mut fresh = MemoryReplayGuard::default();
    assert!(matches!(
        verify(&key, &h, &a.body, at + 301, 300, &mut fresh),
        Err(VerifyError::Stale { .. })
    ));
    let mut tampered = a.body.clone();
    let i = tampered.iter().position(|b| *b == b'5').unwrap();
    tampered[i] = b'9';
    assert_eq!(
        verify(&key, &h, &tampered, at, 300, &mut fresh),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        verify(
            &hex::decode(&signed_secret).unwrap(),
            &h,
            &a.body,
            at,
            300,
            &mut fresh
        ),
        Err(VerifyError::BadSignature)
    );
    assert!(fresh.is_empty());

    // --- A failing receiver: retries at growing intervals, then success ---
    recv.script(&[Behaviour::Fail, Behaviour::Fail, Behaviour::Fail]);
    let (tx2, _) = tx_request(&c, &t, &w, "req-2");
    let id2 = tx2["id"].as_str().unwrap().to_string();
    let d = wait_delivery(&c, &t, &all_id, "transaction.created", &id2, |d| {
        d["state"] == "delivered"
    });
    assert_eq!(d["attempts"], 4, "{d}");
    assert_eq!(d["last_error"], "HTTP 500", "{d}");
    let tries = recv.of("/all", "transaction.created", &id2);
    assert_eq!(
        tries.iter().map(|a| a.behaviour).collect::<Vec<_>>(),
        vec![
            Behaviour::Fail,
            Behaviour::Fail,
            Behaviour::Fail,
            Behaviour::Ok
        ]
    );
    // One event id across the retries, each attempt signed anew and valid.
    for a in &tries {
        assert_eq!(a.event_id(), tries[0].event_id());
        independent_check(&secret, a);
    }
    let gaps: Vec<Duration> = tries.windows(2).map(|p| p[1].at - p[0].at).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let backoff = config().backoff(i as u32 + 1);
        assert!(
            *gap >= backoff,
            "gap {i} {gap:?} is shorter than {backoff:?}"
        );
    }
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "intervals do not grow: {gaps:?}"
    );

    // --- A hanging receiver: a timeout is a failure, and the API does not wait ---
    let hold = Duration::from_secs(4);
    recv.script(&[Behaviour::Hang(hold), Behaviour::Hang(hold)]);
    let (tx3, took3) = tx_request(&c, &t, &w, "req-3");
    let id3 = tx3["id"].as_str().unwrap().to_string();
    // Wait until the receiver holds the delivery, then ask the API for more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while recv.of("/all", "transaction.created", &id3).is_empty() {
        assert!(Instant::now() < deadline, "the delivery never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (tx4, took4) = tx_request(&c, &t, &w, "req-4");
    let id4 = tx4["id"].as_str().unwrap().to_string();
    assert!(
        took3 < Duration::from_millis(1000) && took4 < Duration::from_millis(1000),
        "the API waited: {took3:?}, {took4:?} (the worker's timeout is 1.5 s, the hold 4 s)"
    );
    let d = wait_delivery(&c, &t, &all_id, "transaction.created", &id3, |d| {
        d["attempts"].as_u64() >= Some(1)
            && d["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("timed out"))
    });
    assert_ne!(d["state"], "dead", "{d}");
    for id in [&id3, &id4] {
        let d = wait_delivery(&c, &t, &all_id, "transaction.created", id, |d| {
            d["state"] == "delivered"
        });
        assert_eq!(d["attempts"], 2, "{d}");
        let tries = recv.of("/all", "transaction.created", id);
        assert_eq!(tries[0].behaviour, Behaviour::Hang(hold));
        assert_eq!(tries.last().unwrap().behaviour, Behaviour::Ok);
    }

    // --- A receiver that never recovers: dead after max attempts; retry re-arms ---
    recv.set_default(Behaviour::Fail);
    let (tx5, _) = tx_request(&c, &t, &w, "req-5");
    let id5 = tx5["id"].as_str().unwrap().to_string();
    let dead = wait_delivery(&c, &t, &all_id, "transaction.created", &id5, |d| {
        d["state"] == "dead"
    });
    assert_eq!(dead["attempts"], 4, "{dead}");
    assert_eq!(dead["last_error"], "HTTP 500");
    let event5 = dead["event_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        recv.of("/all", "transaction.created", &id5).len(),
        4,
        "a dead delivery is not attempted again"
    );
    let retry = format!("/v1/webhooks/deliveries/{event5}/retry");
    let (status, v) = c.as_(&t.viewer).call("POST", &retry, None);
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.as_(&other.admin).call("POST", &retry, None);
    assert_eq!(status, 404, "{v}");
    let delivered_event = deliveries(&c, &t, &all_id)
        .iter()
        .find(|d| d["state"] == "delivered")
        .unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = admin.call(
        "POST",
        &format!("/v1/webhooks/deliveries/{delivered_event}/retry"),
        None,
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = admin.call("POST", "/v1/webhooks/deliveries/ev-00/retry", None);
    assert_eq!(status, 404, "{v}");
    recv.set_default(Behaviour::Ok);
    let rearmed = admin.ok("POST", &retry, None);
    assert_eq!(rearmed["attempts"], 0, "{rearmed}");
    assert!(
        matches!(rearmed["state"].as_str(), Some("pending" | "delivered")),
        "{rearmed}"
    );
    let d = wait_delivery(&c, &t, &all_id, "transaction.created", &id5, |d| {
        d["state"] == "delivered"
    });
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(recv.of("/all", "transaction.created", &id5).len(), 5);

    // --- Pending rows survive a restart and are delivered after it ---
    recv.set_default(Behaviour::Fail);
    let (tx6, _) = tx_request(&c, &t, &w, "req-6");
    let id6 = tx6["id"].as_str().unwrap().to_string();
    wait_delivery(&c, &t, &all_id, "transaction.created", &id6, |d| {
        d["state"] == "pending" && d["attempts"].as_u64() >= Some(1)
    });
    c.stop();
    // An attempt already in flight ends within the timeout; then nothing is sent.
    std::thread::sleep(Duration::from_millis(1800));
    recv.set_default(Behaviour::Ok);
    let before = recv.of("/all", "transaction.created", &id6).len();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(recv.of("/all", "transaction.created", &id6).len(), before);
    assert!(recv
        .of("/all", "transaction.created", &id6)
        .iter()
        .all(|a| a.behaviour == Behaviour::Fail));
    let restarted = Instant::now();
    c.restart();
    let d = wait_delivery(&c, &t, &all_id, "transaction.created", &id6, |d| {
        d["state"] == "delivered"
    });
    assert!(d["attempts"].as_u64() > Some(1), "{d}");
    let last = recv.of("/all", "transaction.created", &id6);
    let ok = last.last().unwrap();
    assert_eq!(ok.behaviour, Behaviour::Ok);
    assert!(ok.at > restarted);
    independent_check(&secret, ok);

    // --- Alerts reach webhooks: the first payment to a destination raised an alert, which
    // the "all" endpoint received through the outbox, signed like every delivery ---
    let deadline = Instant::now() + Duration::from_secs(40);
    let alert = loop {
        let found = recv
            .arrivals()
            .into_iter()
            .find(|a| a.path == "/all" && a.json()["type"] == "alert.raised");
        if let Some(a) = found {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert.raised delivery arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    independent_check(&secret, &alert);
    let data = &alert.json()["data"];
    assert!(data["id"].as_str().unwrap().starts_with("al-"), "{data}");
    assert!(
        data["severity"].is_string() && data["explanation"].is_string(),
        "{data}"
    );
    let stored = c.as_(&t.admin).ok(
        "GET",
        &format!("/v1/alerts/{}", data["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(stored["kind"], data["kind"], "{stored}");

    // --- Removing an endpoint: no more deliveries to it; its history stays ---
    let admin = c.as_(&t.admin); // the restarted server listens on another port
    let (status, v) = c
        .as_(&t.viewer)
        .call("DELETE", &format!("/v1/webhooks/{signed_id}"), None);
    assert_eq!(status, 403, "{v}");
    admin.ok("DELETE", &format!("/v1/webhooks/{signed_id}"), None);
    let (status, v) = admin.call("DELETE", &format!("/v1/webhooks/{signed_id}"), None);
    assert_eq!(status, 404, "{v}");
    let listed = admin.ok("GET", "/v1/webhooks", None);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(deliveries(&c, &t, &signed_id).len(), 1);

    // Every change above is in the verified audit chain.
    audit_ok(&c, &t);
    let log = c.as_(&t.auditor).ok("GET", "/v1/audit?limit=1000", None);
    let actions: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for action in ["webhook.created", "webhook.retry", "webhook.removed"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

/// The outbox is written in the transaction of the change: a rolled-back change leaves no
/// event, a committed one leaves one row per matching endpoint.
#[test]
fn outbox_rows_commit_and_roll_back_with_their_transaction() {
    c_rt().block_on(async {
        let dir = temp("outbox");
        std::fs::create_dir_all(&dir).unwrap();
        let db = coffer_server::db::Db::open(&dir.join("coffer.db"))
            .await
            .unwrap();
        outbox(&db).await;
        db.close().await;
        std::fs::remove_dir_all(&dir).ok();
        match coffer_server::db::testing::postgres_scratch().await {
            Ok(scratch) => {
                let db = coffer_server::db::Db::connect(scratch.url()).await.unwrap();
                outbox(&db).await;
                db.close().await;
                scratch.drop_db().await.unwrap();
            }
            Err(why) => coffer_server::db::testing::not_run("webhooks outbox", &why),
        }
    });
}

async fn outbox(db: &coffer_server::db::Db) {
    use coffer_server::db::EndpointRecord;
    let endpoint = |id: &str, events: &[&str]| EndpointRecord {
        id: id.into(),
        tenant_id: "t-1".into(),
        url: "http://127.0.0.1:9/".into(),
        secret: "00".repeat(32),
        events: events.iter().map(|e| e.to_string()).collect(),
        created_at: 1,
        disabled: false,
    };
    let mut tx = db.begin().await.unwrap();
    tx.insert_endpoint(&endpoint("wh-all", &[])).await.unwrap();
    tx.insert_endpoint(&endpoint("wh-signed", &["transaction.signed"]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(format!("{:?}", endpoint("wh-x", &[])).contains("<redacted>"));

    let mut tx = db.begin().await.unwrap();
    let ids = tx
        .enqueue_event("t-1", "transaction.created", &json!({"x": 1}), 5)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    tx.rollback().await.unwrap();
    assert!(db.deliveries("wh-all", 10).await.unwrap().is_empty());

    let mut tx = db.begin().await.unwrap();
    let ids = tx
        .enqueue_event("t-1", "transaction.signed", &json!({"x": 2}), 5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(db.deliveries("wh-all", 10).await.unwrap().len(), 1);
    assert_eq!(db.deliveries("wh-signed", 10).await.unwrap().len(), 1);
    // Another tenant's event reaches none of these endpoints.
    let none = coffer_server::webhooks::enqueue(db, "t-2", "transaction.signed", &json!({}))
        .await
        .unwrap();
    assert!(none.is_empty());
    let d = db.delivery("t-1", &ids[0]).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.attempts), ("pending", 0));
    assert!(db.delivery("t-2", &ids[0]).await.unwrap().is_none());
    // Claims are exclusive: the second claim of the same due row loses.
    let due = db
        .due_deliveries(i64::MAX / 2, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.delivery.id == ids[0])
        .unwrap();
    assert!(db
        .claim_delivery(&ids[0], due.delivery.next_attempt_ms, i64::MAX / 2)
        .await
        .unwrap());
    assert!(!db
        .claim_delivery(&ids[0], due.delivery.next_attempt_ms, i64::MAX / 2)
        .await
        .unwrap());
    // A removed endpoint's pending rows are given up.
    let mut tx = db.begin().await.unwrap();
    assert!(tx.disable_endpoint("t-1", "wh-signed", 6).await.unwrap());
    tx.commit().await.unwrap();
    let d = db.deliveries("wh-signed", 10).await.unwrap();
    assert_eq!(d[0].state, "dead");
    assert_eq!(d[0].last_error.as_deref(), Some("endpoint removed"));
}
