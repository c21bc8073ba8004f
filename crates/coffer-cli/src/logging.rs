//! Logging for the long-running commands (server, signer, dev): human-readable lines on
//! stderr, level from `COFFER_LOG` (default `info`). Secrets are never logged by any module.
//! Also the shutdown signal shared by them (Ctrl-C or SIGTERM).

/// Installs the stderr logger (once).
pub(crate) fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
