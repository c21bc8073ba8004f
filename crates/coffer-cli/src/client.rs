//! The API client the CLI commands share: finds the server and a credential (from a
//! `coffer dev` directory, `--as NAME` or `--credential FILE`), signs every request, and
//! turns API errors into readable failures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use coffer_net::Identity;

use crate::Failure;

/// What `coffer dev` writes to `DIR/dev.json` for the other commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DevInfo {
    /// The API's base URL.
    pub api_url: String,
    /// Where signers dial the server.
    pub signer_addr: String,
    /// The server's public key (pinned by the signers).
    pub server_key: String,
    /// TLS trust anchor of the API (none: the dev API is plain HTTP on loopback).
    pub tls_trust_anchor: Option<String>,
    /// Admin credentials (Ed25519 secret key files).
    pub admin_keys: Vec<PathBuf>,
    /// Default threshold for new keys.
    pub threshold: u16,
    /// The server process.
    pub server: ChildInfo,
    /// The signer processes.
    pub signers: Vec<ChildInfo>,
    /// The tenant `coffer dev` created (its id), once bootstrapped.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The tenant's users `coffer dev` created, one credential each.
    #[serde(default)]
    pub credentials: Vec<DevCredential>,
}

/// A credential `coffer dev` created for a user of its tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DevCredential {
    /// The user's name (what `--as` takes).
    pub name: String,
    /// admin, initiator, approver, viewer or auditor.
    pub role: String,
    /// The Ed25519 secret key file.
    pub key_file: PathBuf,
    /// Its public key, hex.
    pub public_key: String,
}

/// A process `coffer dev` started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChildInfo {
    /// Label.
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// The command line that started it (to restart it the same way).
    pub argv: Vec<String>,
    /// Its data directory.
    pub data: PathBuf,
}

/// The dev directory: `--dev`, else `COFFER_DEV`, else `./coffer-dev`.
pub(crate) fn dev_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("COFFER_DEV").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("coffer-dev"))
}

pub(crate) fn read_dev_info(dir: &Path) -> Result<DevInfo, Failure> {
    let path = dir.join("dev.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure(format!(
            "{}: {e} (start a cluster with `coffer dev --data {}`)",
            path.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Reads an admin credential file.
pub(crate) fn read_credential(path: &Path) -> Result<Identity, Failure> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?,
    );
    Identity::from_secret_bytes(&bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// An error the API returned.
#[derive(Clone, Debug)]
pub(crate) struct ApiFailure {
    pub code: String,
    pub message: String,
}

impl From<ApiFailure> for Failure {
    fn from(e: ApiFailure) -> Self {
        Failure(format!("{} ({})", e.message, e.code))
    }
}

/// A signed-request client.
pub(crate) struct ApiClient {
    base: String,
    credential: Identity,
    agent: ureq::Agent,
}

impl ApiClient {
    pub(crate) fn new(base: &str, credential: Identity) -> Self {
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            credential,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout_read(Duration::from_secs(1800))
                .build(),
        }
    }

    pub(crate) fn from_dev(dir: &Path) -> Result<Self, Failure> {
        let info = read_dev_info(dir)?;
        let admin = info
            .admin_keys
            .first()
            .ok_or_else(|| Failure("dev.json lists no admin credential".into()))?;
        Ok(Self::new(&info.api_url, read_credential(admin)?))
    }

    /// The caller's credential.
    pub(crate) fn credential(&self) -> &Identity {
        &self.credential
    }

    /// Sends a signed request; `path` may carry a query string (the signature covers the
    /// path without it, as the server checks it).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        let signed_path = path.split_once('?').map_or(path, |(p, _)| p);
        for (k, v) in
            coffer_server::auth::sign_request(&self.credential, method, signed_path, &bytes)
        {
            req = req.set(k, &v);
        }
        let result = if body.is_some() {
            req.set("content-type", "application/json")
                .send_bytes(&bytes)
        } else {
            req.call()
        };
        let transport = |message: String| ApiFailure {
            code: "unreachable".into(),
            message,
        };
        match result {
            Ok(resp) => resp
                .into_json::<Value>()
                .map_err(|e| transport(format!("bad response: {e}"))),
            Err(ureq::Error::Status(status, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                Err(ApiFailure {
                    code: body["error"]["code"]
                        .as_str()
                        .unwrap_or("http_error")
                        .to_string(),
                    message: body["error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                })
            }
            Err(e) => Err(transport(format!(
                "cannot reach the server at {}: {e}",
                self.base
            ))),
        }
    }
}

/// The options every custody command takes: who calls, where the server is, how to print.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct CommonArgs {
    /// Call as this `coffer dev` credential: a user name from dev.json (ops, ivan, alice,
    /// ...) or admin-1, admin-2, ... (the platform operators: the roster's admin keys).
    #[arg(
        long = "as",
        value_name = "NAME",
        global = true,
        conflicts_with = "credential"
    )]
    pub as_name: Option<String>,
    /// Call with this Ed25519 credential file (as `coffer dev` writes them).
    #[arg(long, value_name = "FILE", global = true)]
    pub credential: Option<PathBuf>,
    /// The `coffer dev` directory (default: $COFFER_DEV, else ./coffer-dev).
    #[arg(long, value_name = "DIR", global = true)]
    pub dev: Option<PathBuf>,
    /// The API's base URL (default: the one in the dev directory's dev.json).
    #[arg(long, value_name = "URL", global = true)]
    pub api: Option<String>,
    /// Prints exactly one JSON object (the API's response) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Whom a command calls as when neither `--as` nor `--credential` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Natural {
    /// The platform operator: the dev roster's first admin key (admin-1).
    Operator,
    /// The first dev credential holding one of these roles (in this order of preference).
    Role(&'static [&'static str]),
    /// No default: the caller must say who they are (approving is personal).
    Nobody(&'static str),
}

/// A credential picked for a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chosen {
    /// Its secret key file.
    pub key_file: PathBuf,
    /// How to name it in messages (`alice (approver)`, `admin-1 (operator)`, a file).
    pub label: String,
}

fn admin_index(name: &str) -> Option<usize> {
    let n: usize = name.strip_prefix("admin-")?.parse().ok()?;
    n.checked_sub(1)
}

/// Picks the credential: `--credential`, else `--as` (a dev user, or `admin-N`/`operator`),
/// else the command's natural role from dev.json.
pub(crate) fn choose(
    as_name: Option<&str>,
    credential: Option<&Path>,
    info: Option<&DevInfo>,
    natural: Natural,
) -> Result<Chosen, Failure> {
    if let Some(file) = credential {
        return Ok(Chosen {
            key_file: file.to_path_buf(),
            label: file.display().to_string(),
        });
    }
    let need_info = |what: &str| {
        Failure(format!(
            "{what} needs a `coffer dev` directory (--dev DIR or COFFER_DEV); or give --credential FILE"
        ))
    };
    if let Some(name) = as_name {
        let info = info.ok_or_else(|| need_info(&format!("--as {name}")))?;
        if let Some(c) = info.credentials.iter().find(|c| c.name == name) {
            return Ok(Chosen {
                key_file: c.key_file.clone(),
                label: format!("{} ({})", c.name, c.role),
            });
        }
        let admin = if name == "operator" {
            Some(0)
        } else {
            admin_index(name)
        };
        if let Some(file) = admin.and_then(|i| info.admin_keys.get(i)) {
            return Ok(Chosen {
                key_file: file.clone(),
                label: format!("{name} (operator)"),
            });
        }
        let mut known: Vec<String> = info.credentials.iter().map(|c| c.name.clone()).collect();
        known.extend((1..=info.admin_keys.len()).map(|i| format!("admin-{i}")));
        return Err(Failure(format!(
            "no credential named {name:?} in dev.json (known: {})",
            known.join(", ")
        )));
    }
    match natural {
        Natural::Nobody(why) => Err(Failure(format!(
            "{why}: say who you are with --as NAME or --credential FILE"
        ))),
        Natural::Operator => {
            let info = info.ok_or_else(|| need_info("the operator credential"))?;
            let file = info
                .admin_keys
                .first()
                .ok_or_else(|| Failure("dev.json lists no admin credential".into()))?;
            Ok(Chosen {
                key_file: file.clone(),
                label: "admin-1 (operator)".into(),
            })
        }
        Natural::Role(roles) => {
            let info =
                info.ok_or_else(|| need_info(&format!("the {} credential", roles.join(" or "))))?;
            roles
                .iter()
                .find_map(|r| info.credentials.iter().find(|c| c.role == *r))
                .map(|c| Chosen {
                    key_file: c.key_file.clone(),
                    label: format!("{} ({})", c.name, c.role),
                })
                .ok_or_else(|| {
                    Failure(format!(
                        "dev.json has no {} credential (restart `coffer dev` to create them); give --as NAME or --credential FILE",
                        roles.join(" or ")
                    ))
                })
        }
    }
}

/// A command's connection: the client, the dev information when there is a dev directory,
/// and whom it calls as.
pub(crate) struct Caller {
    /// The signed-request client.
    pub client: ApiClient,
    /// dev.json, when found.
    pub info: Option<DevInfo>,
    /// The dev directory (whether or not it exists).
    pub dir: PathBuf,
    /// Who calls.
    pub chosen: Chosen,
}

/// Reads dev.json when it exists (a missing directory is not an error here; a broken file is).
pub(crate) fn optional_dev_info(dir: &Path) -> Result<Option<DevInfo>, Failure> {
    if dir.join("dev.json").exists() {
        read_dev_info(dir).map(Some)
    } else {
        Ok(None)
    }
}

/// Connects as the credential the options (or the command's natural role) select.
pub(crate) fn connect(args: &CommonArgs, natural: Natural) -> Result<Caller, Failure> {
    let dir = dev_dir(args.dev.clone());
    let info = optional_dev_info(&dir)?;
    if info.is_none() && (args.credential.is_none() || args.api.is_none()) {
        return Err(Failure(format!(
            "{}: no dev.json (start a cluster with `coffer dev --data {}`, point --dev or COFFER_DEV at one, or give --credential FILE and --api URL)",
            dir.display(),
            dir.display()
        )));
    }
    let chosen = choose(
        args.as_name.as_deref(),
        args.credential.as_deref(),
        info.as_ref(),
        natural,
    )?;
    let url = match (&args.api, &info) {
        (Some(url), _) => url.clone(),
        (None, Some(info)) => info.api_url.clone(),
        (None, None) => return Err(Failure("give --api URL".into())),
    };
    let identity = read_credential(&chosen.key_file)?;
    Ok(Caller {
        client: ApiClient::new(&url, identity),
        info,
        dir,
        chosen,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn fake_info() -> DevInfo {
        let text = r#"{
            "api_url": "http://127.0.0.1:1",
            "signer_addr": "tls://127.0.0.1:2",
            "server_key": "00",
            "tls_trust_anchor": null,
            "admin_keys": ["/d/admin-1.key", "/d/admin-2.key", "/d/admin-3.key"],
            "threshold": 2,
            "server": {"name": "server", "pid": 1, "argv": [], "data": "/d/server"},
            "signers": [],
            "tenant": "t-1",
            "credentials": [
                {"name": "ops", "role": "admin", "key_file": "/d/credentials/ops.key", "public_key": "aa"},
                {"name": "ivan", "role": "initiator", "key_file": "/d/credentials/ivan.key", "public_key": "bb"},
                {"name": "alice", "role": "approver", "key_file": "/d/credentials/alice.key", "public_key": "cc"},
                {"name": "bob", "role": "approver", "key_file": "/d/credentials/bob.key", "public_key": "dd"},
                {"name": "audrey", "role": "auditor", "key_file": "/d/credentials/audrey.key", "public_key": "ee"}
            ]
        }"#;
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn old_dev_json_without_custody_fields_still_reads() {
        let mut v = serde_json::to_value(fake_info()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("tenant");
        o.remove("credentials");
        let info: DevInfo = serde_json::from_value(v).unwrap();
        assert_eq!(info.tenant, None);
        assert!(info.credentials.is_empty());
    }

    #[test]
    fn natural_roles_pick_the_first_matching_credential() {
        let info = fake_info();
        let c = choose(None, None, Some(&info), Natural::Role(&["initiator"])).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/credentials/ivan.key"));
        assert_eq!(c.label, "ivan (initiator)");
        let c = choose(None, None, Some(&info), Natural::Role(&["admin"])).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/credentials/ops.key"));
        // Preference order: no viewer in this file, so the initiator.
        let c = choose(
            None,
            None,
            Some(&info),
            Natural::Role(&["viewer", "initiator"]),
        )
        .unwrap();
        assert_eq!(c.label, "ivan (initiator)");
        let c = choose(None, None, Some(&info), Natural::Operator).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/admin-1.key"));
        let e = choose(None, None, Some(&info), Natural::Role(&["viewer"])).unwrap_err();
        assert!(e.0.contains("no viewer credential"), "{}", e.0);
    }

    #[test]
    fn as_and_credential_override_the_natural_role() {
        let info = fake_info();
        let c = choose(Some("bob"), None, Some(&info), Natural::Role(&["admin"])).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/credentials/bob.key"));
        let c = choose(Some("admin-2"), None, Some(&info), Natural::Nobody("x")).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/admin-2.key"));
        assert_eq!(c.label, "admin-2 (operator)");
        let c = choose(Some("operator"), None, Some(&info), Natural::Nobody("x")).unwrap();
        assert_eq!(c.key_file, PathBuf::from("/d/admin-1.key"));
        let c = choose(
            None,
            Some(Path::new("/k/mine.key")),
            None,
            Natural::Nobody("x"),
        )
        .unwrap();
        assert_eq!(c.key_file, PathBuf::from("/k/mine.key"));
        for bad in ["mallory", "admin-0", "admin-4", "admin-x"] {
            let e = choose(Some(bad), None, Some(&info), Natural::Operator).unwrap_err();
            assert!(e.0.contains("known: ops, ivan"), "{}", e.0);
        }
    }

    #[test]
    fn approving_needs_an_explicit_credential_and_dev_roles_need_dev_json() {
        let info = fake_info();
        let e = choose(
            None,
            None,
            Some(&info),
            Natural::Nobody("approving is personal"),
        )
        .unwrap_err();
        assert!(e.0.contains("--as NAME"), "{}", e.0);
        let e = choose(Some("alice"), None, None, Natural::Operator).unwrap_err();
        assert!(e.0.contains("coffer dev"), "{}", e.0);
        let e = choose(None, None, None, Natural::Role(&["auditor"])).unwrap_err();
        assert!(e.0.contains("--credential FILE"), "{}", e.0);
    }

    #[test]
    fn fake_dev_dir_round_trips() {
        let dir = std::env::temp_dir().join(format!("coffer-cli-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(optional_dev_info(&dir).unwrap().is_none());
        std::fs::write(
            dir.join("dev.json"),
            serde_json::to_string(&fake_info()).unwrap(),
        )
        .unwrap();
        let info = optional_dev_info(&dir).unwrap().unwrap();
        assert_eq!(info.tenant.as_deref(), Some("t-1"));
        assert_eq!(info.credentials.len(), 5);
        std::fs::write(dir.join("dev.json"), "{").unwrap();
        assert!(optional_dev_info(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Checks an object id before it goes into a URL path (letters, digits, `-`, `_`, `.`, at
/// most 128 characters, not `.`/`..`).
pub(crate) fn check_id<'a>(what: &str, id: &'a str) -> Result<&'a str, Failure> {
    if id.is_empty()
        || id.len() > 128
        || id == "."
        || id == ".."
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Failure(format!("{id:?} is not a {what} id")));
    }
    Ok(id)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod id_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ids_that_could_change_the_url_are_refused() {
        assert_eq!(check_id("vault", "v-1_a.b").unwrap(), "v-1_a.b");
        for bad in ["", ".", "..", "a/b", "a?b", "a b", "a%2f", "é"] {
            assert!(check_id("vault", bad).is_err(), "{bad}");
        }
        assert!(check_id("vault", &"a".repeat(129)).is_err());
        assert!(unix_now() > 1_600_000_000);
    }
}
