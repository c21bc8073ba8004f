//! `coffer dev`: a whole cluster on one machine for a newcomer. On first start it creates,
//! in its data directory, three admin credentials (quorum 2), the server's identity, N
//! signers (each with its own encrypted store and identity) and a dev-mode roster signed by
//! the admins, which every signer pins. Then it runs the server and the signers as separate
//! processes, bootstraps a tenant (`acme`) with one user per role (keys in
//! `DIR/credentials`), writes `dev.json` for the other commands, and prints
//! `coffer dev ready: URL` (the only stdout line; the summary goes to stderr). Restarting with
//! the same directory reuses everything, the tenant and users included. Children exit when
//! `coffer dev` does (their standard input closes).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::Identity;
use coffer_signer::keysource::KeyFileSource;
use coffer_signer::node::SignerNode;

use crate::client::{read_credential, ApiClient, ChildInfo, DevCredential, DevInfo};
use crate::Failure;

/// The tenant `coffer dev` creates.
const TENANT: &str = "acme";

/// The tenant's users `coffer dev` creates, one credential each: (name, role).
const USERS: [(&str, &str); 7] = [
    ("ops", "admin"),
    ("ivan", "initiator"),
    ("alice", "approver"),
    ("bob", "approver"),
    ("carol", "approver"),
    ("vera", "viewer"),
    ("audrey", "auditor"),
];

/// Admins in a dev cluster, and how many must sign a roster change.
const ADMINS: usize = 3;
const ADMIN_THRESHOLD: u16 = 2;

#[derive(Args)]
pub(crate) struct DevArgs {
    /// Data directory (created on first start, reused afterwards).
    #[arg(long, default_value = "coffer-dev")]
    data: PathBuf,
    /// Number of signer processes.
    #[arg(long, default_value_t = 3)]
    signers: u16,
    /// Default signing threshold for new keys.
    #[arg(long, default_value_t = 2)]
    threshold: u16,
    /// API address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seconds a signing session may stall before the server abandons it.
    #[arg(long, default_value_t = 60)]
    session_timeout: u64,
    /// ECDSA presignatures the server keeps ready per key (0: none).
    #[arg(long, default_value_t = 4)]
    presign_pool: usize,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure(format!("{}: {e}", path.display()))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn signer_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("signer-{}", i + 1))
}

fn admin_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("admin-{}.key", i + 1))
}

/// Creates the cluster's identities and roster in `dir` unless they exist. Returns the
/// signed roster.
pub(crate) fn setup(dir: &Path, signers: u16) -> Result<SignedRoster, Failure> {
    let roster_file = dir.join("roster.json");
    if roster_file.exists() {
        let roster = crate::node_cmd::read_roster(&roster_file)?;
        if roster.roster.signers.len() != usize::from(signers) {
            return Err(Failure(format!(
                "{} holds a cluster of {} signers; use another --data directory for {signers}",
                dir.display(),
                roster.roster.signers.len()
            )));
        }
        return Ok(roster);
    }
    if !(2..=16).contains(&signers) {
        return Err(Failure("--signers must be between 2 and 16".into()));
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let admins: Vec<Identity> = (0..ADMINS)
        .map(|i| Identity::generate(&format!("admin-{}", i + 1)))
        .collect();
    for (i, a) in admins.iter().enumerate() {
        write_secret(&admin_path(dir, i), &a.to_secret_bytes()?)?;
    }
    let server_key = coffer_server::init(&dir.join("server"))?;
    let mut publics = Vec::new();
    for i in 0..usize::from(signers) {
        let sdir = signer_dir(dir, i);
        std::fs::create_dir_all(&sdir).map_err(io_err(&sdir))?;
        let source = KeyFileSource::create(&sdir.join("store.key"))?;
        publics.push(SignerNode::init(
            &sdir,
            &format!("signer-{}", i + 1),
            &source,
        )?);
    }
    let roster = Roster {
        version: 1,
        signers: publics,
        admins: admins.iter().map(|a| a.node_key()).collect(),
        admin_threshold: ADMIN_THRESHOLD,
        server: server_key,
        dev_mode: true,
    };
    let signatures = admins
        .iter()
        .take(usize::from(ADMIN_THRESHOLD))
        .map(|a| roster.sign_as_admin(a))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = SignedRoster { roster, signatures };
    for i in 0..usize::from(signers) {
        let sdir = signer_dir(dir, i);
        let node = SignerNode::open(&sdir, &KeyFileSource::open(&sdir.join("store.key")))?;
        node.enrol(signed.clone())?;
    }
    let text = serde_json::to_string_pretty(&signed)?;
    std::fs::write(dir.join("server").join("roster.json"), &text).map_err(io_err(dir))?;
    std::fs::write(&roster_file, &text).map_err(io_err(&roster_file))?;
    Ok(signed)
}

fn free_port() -> Result<u16, Failure> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A running cluster; dropping it stops every process.
pub(crate) struct Cluster {
    pub info: DevInfo,
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing their standard input tells the children to exit; give them a moment.
        for c in &mut self.children {
            drop(c.stdin.take());
        }
        let until = Instant::now() + Duration::from_secs(5);
        for c in &mut self.children {
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(exe: &Path, argv: &[String], log: &Path) -> Result<Child, Failure> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io_err(log))?;
    Command::new(exe)
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Failure(format!("cannot start {}: {e}", exe.display())))
}

/// Starts the server and the signers of the cluster in `dir` (set up before).
pub(crate) fn start(
    dir: &Path,
    listen: SocketAddr,
    threshold: u16,
    session_timeout: u64,
    presign_pool: usize,
) -> Result<Cluster, Failure> {
    let roster = crate::node_cmd::read_roster(&dir.join("roster.json"))?;
    let exe = std::env::current_exe()?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io_err(&logs))?;
    let api = if listen.port() == 0 {
        SocketAddr::new(listen.ip(), free_port()?)
    } else {
        listen
    };
    let signer_addr = format!("127.0.0.1:{}", free_port()?);
    let api_url = format!("http://{api}");
    let mut cluster = Cluster {
        info: DevInfo {
            api_url: api_url.clone(),
            signer_addr: format!("tls://{signer_addr}"),
            server_key: roster.roster.server.to_hex(),
            tls_trust_anchor: None,
            admin_keys: (0..ADMINS).map(|i| admin_path(dir, i)).collect(),
            threshold,
            server: ChildInfo {
                name: "server".into(),
                pid: 0,
                argv: vec![],
                data: dir.join("server"),
            },
            signers: vec![],
            tenant: None,
            credentials: vec![],
        },
        children: vec![],
    };
    let server_argv: Vec<String> = vec![
        "server".into(),
        "run".into(),
        "--data".into(),
        dir.join("server").display().to_string(),
        "--listen".into(),
        api.to_string(),
        "--signer-listen".into(),
        signer_addr.clone(),
        "--session-timeout".into(),
        session_timeout.to_string(),
        "--presign-pool".into(),
        presign_pool.to_string(),
        "--exit-with-stdin".into(),
    ];
    let child = spawn(&exe, &server_argv, &logs.join("server.log"))?;
    cluster.info.server.pid = child.id();
    cluster.info.server.argv = server_argv;
    cluster.children.push(child);
    let client = ApiClient::new(&api_url, read_credential(&admin_path(dir, 0))?);
    wait_for(Duration::from_secs(30), "the server to answer", || {
        client.call("GET", "/v1/signers", None).is_ok()
    })?;
    for (i, s) in roster.roster.signers.iter().enumerate() {
        let sdir = signer_dir(dir, i);
        let argv: Vec<String> = vec![
            "signer".into(),
            "run".into(),
            "--data".into(),
            sdir.display().to_string(),
            "--key-file".into(),
            sdir.join("store.key").display().to_string(),
            "--server".into(),
            format!("tls://{signer_addr}"),
            "--exit-with-stdin".into(),
        ];
        let child = spawn(&exe, &argv, &logs.join(format!("{}.log", s.name)))?;
        cluster.info.signers.push(ChildInfo {
            name: s.name.clone(),
            pid: child.id(),
            argv,
            data: sdir,
        });
        cluster.children.push(child);
    }
    let n = roster.roster.signers.len();
    wait_for(Duration::from_secs(30), "every signer to connect", || {
        client
            .call("GET", "/v1/signers", None)
            .ok()
            .and_then(|v| v["signers"].as_array().cloned())
            .map(|l| l.iter().filter(|s| s["connected"] == true).count() == n)
            .unwrap_or(false)
    })?;
    write_dev_info(dir, &cluster.info)?;
    Ok(cluster)
}

fn write_dev_info(dir: &Path, info: &DevInfo) -> Result<(), Failure> {
    let path = dir.join("dev.json");
    std::fs::write(&path, serde_json::to_string_pretty(info)?).map_err(io_err(&path))
}

/// Creates, as the operator (admin-1), the dev tenant and its users unless `info` (carried
/// over from the previous dev.json) records them; dev.json is rewritten after each step, so
/// an interrupted bootstrap resumes where it stopped (a key file written but not recorded
/// is reused; a user the server already has is accepted).
pub(crate) fn bootstrap(dir: &Path, info: &mut DevInfo) -> Result<(), Failure> {
    let client = ApiClient::new(&info.api_url, read_credential(&admin_path(dir, 0))?);
    let failed = |what: &str, e: crate::client::ApiFailure| {
        Failure(format!(
            "cannot bootstrap the dev tenant: {what}: {} ({})",
            e.message, e.code
        ))
    };
    let tenant = match info.tenant.clone() {
        Some(t) => t,
        None => {
            let created = client.call(
                "POST",
                "/v1/tenants",
                Some(&serde_json::json!({ "name": TENANT })),
            );
            let tenant = match created {
                Ok(v) => v["id"].as_str().map(str::to_string),
                // A server without the custody API (no such route): nothing to bootstrap.
                Err(e) if e.code == "http_error" && e.message == "HTTP 404" => {
                    eprintln!("coffer dev: the server has no custody API (POST /v1/tenants: HTTP 404); no tenant or users created");
                    return Ok(());
                }
                // Perhaps created by an earlier run that stopped before recording it.
                Err(e) => {
                    let list = client
                        .call("GET", "/v1/tenants", None)
                        .map_err(|_| failed("creating the tenant", e.clone()))?;
                    let found = crate::output::items(&list, "tenants")
                        .iter()
                        .find(|t| t["name"] == TENANT)
                        .and_then(|t| t["id"].as_str().map(str::to_string));
                    if found.is_none() {
                        return Err(failed("creating the tenant", e));
                    }
                    found
                }
            }
            .ok_or_else(|| Failure(format!("the server did not say the id of tenant {TENANT}")))?;
            info.tenant = Some(tenant.clone());
            write_dev_info(dir, info)?;
            tenant
        }
    };
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).map_err(io_err(&creds))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&creds))?;
    }
    // Absolute, so that dev.json works from any directory.
    let creds = std::fs::canonicalize(&creds).map_err(io_err(&creds))?;
    for (name, role) in USERS {
        if info.credentials.iter().any(|c| c.name == name) {
            continue;
        }
        let key_file = creds.join(format!("{name}.key"));
        let identity = if key_file.exists() {
            read_credential(&key_file)?
        } else {
            crate::admin_cmd::generate_credential(&key_file, name)?
        };
        let public_key = identity.node_key().to_hex();
        match crate::admin_cmd::add_user_api(&client, name, role, &public_key, Some(&tenant)) {
            Ok(_) => {}
            Err(e) if e.code == "conflict" => {}
            Err(e) => return Err(failed(&format!("adding user {name}"), e)),
        }
        info.credentials.push(DevCredential {
            name: name.to_string(),
            role: role.to_string(),
            key_file,
            public_key,
        });
        write_dev_info(dir, info)?;
    }
    Ok(())
}

/// What a newcomer reads once the cluster is ready (on stderr).
fn summary(dir: &Path, info: &DevInfo) -> String {
    if info.tenant.is_none() {
        return String::new();
    }
    let mut out = format!(
        "tenant {TENANT} ({}); credentials in {}:\n",
        info.tenant.as_deref().unwrap_or("-"),
        dir.join("credentials").display()
    );
    let rows: Vec<Vec<String>> = info
        .credentials
        .iter()
        .map(|c| vec![format!("  {}", c.name), c.role.clone()])
        .collect();
    out.push_str(&crate::output::table(&["  NAME", "ROLE"], &rows));
    out.push_str(
        "\n  (platform operators: admin-1, admin-2, admin-3; call as anyone with --as NAME)\n\nnext:\n",
    );
    if dir != Path::new("coffer-dev") {
        out.push_str(&format!("  export COFFER_DEV={}\n", dir.display()));
    }
    for line in NEXT {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// The commands the ready summary suggests.
const NEXT: [&str; 8] = [
    "coffer whoami --as ivan",
    "coffer vault create treasury --scheme ed25519",
    "coffer wallet create VAULT --name hot --scheme ed25519 --asset SOL",
    "coffer policy template VAULT > policy.json && coffer policy set VAULT policy.json",
    "coffer tx create --wallet WALLET --amount 0.5sol --to DEST --wait",
    "coffer tx approve TX --as alice && coffer tx approve TX --as bob",
    "coffer tx wait TX --until signed",
    "coffer audit export --out audit.jsonl && coffer audit verify audit.jsonl",
];

fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), Failure> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Failure(format!(
        "timed out waiting for {what} (see the logs directory)"
    )))
}

pub(crate) fn run(args: DevArgs) -> Result<(), Failure> {
    setup(&args.data, args.signers)?;
    // What an earlier run bootstrapped (a broken or missing dev.json: nothing).
    let previous = crate::client::optional_dev_info(&args.data).ok().flatten();
    let mut cluster = start(
        &args.data,
        args.listen,
        args.threshold,
        args.session_timeout,
        args.presign_pool,
    )?;
    if let Some(p) = previous {
        cluster.info.tenant = p.tenant;
        cluster.info.credentials = p.credentials;
    }
    bootstrap(&args.data, &mut cluster.info)?;
    write_dev_info(&args.data, &cluster.info)?;
    let ready = summary(&args.data, &cluster.info);
    if !ready.is_empty() {
        eprintln!("{ready}");
    }
    eprintln!(
        "data in {}; logs in {}; ECDSA keys wait until the signers have generated their safe primes (a minute or two after their first start)",
        args.data.display(),
        args.data.join("logs").display()
    );
    println!("coffer dev ready: {}", cluster.info.api_url);
    let _ = std::io::stdout().flush();
    let rt = crate::node_cmd::runtime()?;
    rt.block_on(crate::logging::terminated());
    eprintln!("coffer dev: stopping");
    drop(cluster);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_ready_summary_names_every_credential_and_what_to_try() {
        let mut info: DevInfo = serde_json::from_value(serde_json::json!({
            "api_url": "http://x", "signer_addr": "tls://x", "server_key": "00",
            "tls_trust_anchor": null, "admin_keys": [], "threshold": 2,
            "server": {"name": "server", "pid": 1, "argv": [], "data": "/d"}, "signers": []
        }))
        .unwrap();
        info.tenant = Some("t-1".into());
        for (name, role) in USERS {
            info.credentials.push(DevCredential {
                name: name.into(),
                role: role.into(),
                key_file: PathBuf::from(format!("/d/credentials/{name}.key")),
                public_key: "00".into(),
            });
        }
        let s = summary(Path::new("/d"), &info);
        for (name, role) in USERS {
            assert!(
                s.lines().any(|l| l.contains(name) && l.contains(role)),
                "{s}"
            );
        }
        assert!(s.contains("export COFFER_DEV=/d") && s.contains("coffer tx approve"));
        assert!(!summary(Path::new("coffer-dev"), &info).contains("export COFFER_DEV"));
    }
}
