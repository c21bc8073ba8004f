//! `coffer dev`: a whole cluster on one machine for a newcomer. On first start it creates,
//! in its data directory, three admin credentials (quorum 2), the server's identity, N
//! signers (each with its own encrypted store and identity) and a dev-mode roster signed by
//! the admins, which every signer pins. Then it runs the server and the signers as separate
//! processes, writes `dev.json` for the other commands, and prints `coffer dev ready: URL`.
//! Restarting with the same directory reuses everything. Children exit when `coffer dev`
//! does (their standard input closes).

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

use crate::client::{read_credential, ApiClient, ChildInfo, DevInfo};
use crate::Failure;

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
    let path = dir.join("dev.json");
    std::fs::write(&path, serde_json::to_string_pretty(&cluster.info)?).map_err(io_err(&path))?;
    Ok(cluster)
}

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
    let cluster = start(
        &args.data,
        args.listen,
        args.threshold,
        args.session_timeout,
        args.presign_pool,
    )?;
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
