//! The delivery worker: a task started with the server ([`run`]) that, every
//! [`WebhookConfig::poll`], reads the outbox's due rows, claims each with a lease (so a
//! second worker on the same PostgreSQL database never posts it at the same time, and a
//! crash mid-attempt only delays it by the lease), signs it at the time of the attempt and
//! POSTs it with `ureq` on tokio's blocking pool, at most [`WebhookConfig::concurrency`]
//! at once, each bounded by [`WebhookConfig::timeout`]. Redirects are not followed.
//! This build's `ureq` has no TLS: an https endpoint is accepted by the API but its
//! deliveries fail with a message saying so (enabling ureq's `tls` feature adds
//! `webpki-roots`, a new dependency left to a deliberate decision).
//!
//! Outcomes: a 2xx answer marks the row `delivered`; any other status, a refused
//! connection or a timeout counts one attempt, records why (status or transport failure,
//! never the URL or the secret) and schedules the next attempt after the backoff, or, at
//! `max_attempts`, marks the row `dead`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::signature::{self, SignedHeaders};
use super::{body, WebhookConfig};
use crate::db::webhooks::unix_now_ms;
use crate::db::{unix_now, Db, DueDelivery};

/// Due rows read per poll.
const BATCH: i64 = 64;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Delivers due outbox rows until the task is aborted.
pub async fn run(db: Db, config: WebhookConfig) {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    loop {
        let now = unix_now_ms();
        match db.due_deliveries(now, BATCH).await {
            Ok(due) => {
                for d in due {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    // Longer than any attempt can take: the row is ours until then.
                    let lease = unix_now_ms()
                        .saturating_add(millis(config.timeout).saturating_mul(2))
                        .saturating_add(1000);
                    match db
                        .claim_delivery(&d.delivery.id, d.delivery.next_attempt_ms, lease)
                        .await
                    {
                        Ok(true) => {
                            let db = db.clone();
                            tokio::spawn(async move {
                                attempt(&db, &config, d).await;
                                drop(permit);
                            });
                        }
                        Ok(false) => {}
                        Err(e) => tracing::error!("webhooks: claiming a delivery: {e}"),
                    }
                }
            }
            Err(e) => tracing::error!("webhooks: reading the outbox: {e}"),
        }
        tokio::time::sleep(config.poll).await;
    }
}

/// One attempt at `d`, with its outcome recorded.
async fn attempt(db: &Db, config: &WebhookConfig, d: DueDelivery) {
    let id = d.delivery.id.clone();
    let outcome = match hex::decode(&d.secret) {
        Ok(secret) => {
            let secret = Zeroizing::new(secret);
            let payload = body(&d.delivery);
            let headers = signature::sign(&secret, &id, unix_now(), &payload);
            post(d.url.clone(), headers, payload, config.timeout).await
        }
        Err(_) => Err("the endpoint's stored secret is corrupt".to_string()),
    };
    let recorded = match &outcome {
        Ok(()) => db.mark_delivered(&id, unix_now()).await,
        Err(why) => {
            let attempts = d.delivery.attempts.saturating_add(1);
            let dead = attempts >= config.max_attempts;
            let next = unix_now_ms().saturating_add(millis(config.backoff(attempts)));
            tracing::warn!(
                "webhooks: delivery {id} to endpoint {} failed (attempt {attempts}{}): {why}",
                d.delivery.endpoint_id,
                if dead { ", now dead" } else { "" }
            );
            db.mark_failed(&id, why, next, dead).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!("webhooks: recording delivery {id}: {e}");
    }
}

/// POSTs `body` to `url` with the signed headers; `Ok` on a 2xx answer.
async fn post(
    url: String,
    headers: SignedHeaders,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let sent = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .build();
        let mut req = agent
            .post(&url)
            .set("content-type", "application/json")
            .set(
                "user-agent",
                concat!("coffer-webhooks/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers.pairs() {
            req = req.set(name, value);
        }
        match req.send_bytes(&body) {
            Ok(r) if (200..300).contains(&r.status()) => Ok(()),
            Ok(r) => Err(format!("HTTP {} (only 2xx acknowledges)", r.status())),
            Err(ureq::Error::Status(code, _)) => Err(format!("HTTP {code}")),
            Err(ureq::Error::Transport(t)) => Err(transport_failure(&t, timeout)),
        }
    })
    .await;
    sent.unwrap_or_else(|_| Err("the delivery task failed".into()))
}

/// What went wrong below HTTP, without the URL (it may carry a token).
fn transport_failure(t: &ureq::Transport, timeout: Duration) -> String {
    if t.kind() == ureq::ErrorKind::UnknownScheme {
        return "this server cannot deliver to this URL scheme (https delivery needs ureq's \
                `tls` feature, not built in; use http behind a TLS-terminating proxy)"
            .into();
    }
    let io = std::error::Error::source(t).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io {
        Some(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            format!("timed out after {} ms", timeout.as_millis())
        }
        Some(e) => format!("{}: {:?}", t.kind(), e.kind()),
        None => t.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn headers() -> SignedHeaders {
        signature::sign(&[1u8; 32], "ev-01", 1, b"{}")
    }

    #[tokio::test]
    async fn failures_say_what_happened_without_the_url() {
        // Nothing listens on port 9 of loopback: the connection is refused.
        let refused = post(
            "http://127.0.0.1:9/hook?token=s3cret".into(),
            headers(),
            b"{}".to_vec(),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(refused.contains("Connection"), "{refused}");
        assert!(!refused.contains("s3cret") && !refused.contains("127.0.0.1"));
        // A listener (never answering): the connection is made, TLS is what is missing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let https = post(
            format!(
                "https://{}/hook?token=s3cret",
                listener.local_addr().unwrap()
            ),
            headers(),
            b"{}".to_vec(),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(https.contains("https delivery needs"), "{https}");
        assert!(!https.contains("s3cret"));
    }
}
