//! The emulator as a child process on an ephemeral loopback port, plus a tiny
//! HTTP client for looking at its state; killed when dropped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

pub(crate) const ORG: &str = "E2EORG0123456789ABCDEF01@AdobeOrg";
pub(crate) const API_KEY: &str = "atsprov-e2e";
pub(crate) const CLIENT_SECRET: &str = "e2e-client-secret-value-Zq8";

/// A running `atsprov emulator`.
pub(crate) struct Emulator {
    child: Child,
    addr: String,
}

impl Emulator {
    /// Starts the emulator with extra flags and waits for its `listening on` line.
    pub(crate) fn start(flags: &[&str]) -> Emulator {
        let mut child = super::common::atsprov()
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("emulator prints a line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from the emulator: {line:?}"))
            .to_owned();
        Emulator { child, addr }
    }

    /// The emulator's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the emulator to exit; its exit code.
    pub(crate) fn wait(mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub(crate) fn flow_url(&self) -> String {
        format!("http://{}/data/foundation/flowservice", self.addr)
    }

    pub(crate) fn token_url(&self) -> String {
        format!("http://{}/ims/token/v3", self.addr)
    }

    /// A raw HTTP/1.1 request with a JSON body; returns status and body.
    pub(crate) fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        self.send(method, path, headers, body.map(|b| ("application/json", b)))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the emulator");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        if let Some((content_type, body)) = body {
            let _ = write!(
                req,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        req.push_str("\r\n");
        if let Some((_, body)) = body {
            req.push_str(body);
        }
        stream.write_all(req.as_bytes()).expect("send request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        (status, body)
    }

    /// A token for the given client id.
    pub(crate) fn token(&self, client_id: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={CLIENT_SECRET}&scope=openid"
        );
        let (status, body) = self.send(
            "POST",
            "/ims/token/v3",
            &[],
            Some(("application/x-www-form-urlencoded", &form)),
        );
        assert_eq!(status, 200, "token: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// Every ATS connection in a sandbox, as another client (`client_id`) sees them.
    pub(crate) fn list(&self, sandbox: &str) -> Vec<Value> {
        let token = self.token("e2e-observer");
        let auth = format!("Bearer {token}");
        let mut out = Vec::new();
        let mut path = "/data/foundation/flowservice/connections?limit=1000".to_owned();
        loop {
            let headers = [
                ("Authorization", auth.as_str()),
                ("x-api-key", "e2e-observer"),
                ("x-gw-ims-org-id", ORG),
                ("x-sandbox-name", sandbox),
            ];
            // The observer meets the same injected faults as atsprov: retry them.
            let mut tries = 0;
            let (status, body) = loop {
                let (status, body) = self.http("GET", &path, &headers, None);
                tries += 1;
                if !matches!(status, 429 | 503) || tries == 100 {
                    break (status, body);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            assert_eq!(status, 200, "list {sandbox}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["_links"]["next"]["href"].as_str() {
                Some(next) => path = format!("/data/foundation/flowservice{next}"),
                None => break,
            }
        }
        out
    }

    /// Creates a connection as another client, the way a person in the AEP UI would.
    pub(crate) fn create_foreign(&self, sandbox: &str, name: &str, description: &str) -> String {
        let token = self.token("someone-else");
        let auth = format!("Bearer {token}");
        let body = serde_json::json!({
            "name": name,
            "description": description,
            "auth": {"specName": "Connection String Based Authentication",
                     "params": {"connectionString": "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=b3RoZXI="}},
            "connectionSpec": {"id": "ecde33f2-c56f-46cc-bdea-ad151c16cd69", "version": "1.0"}
        })
        .to_string();
        let (status, text) = self.http(
            "POST",
            "/data/foundation/flowservice/connections",
            &[
                ("Authorization", &auth),
                ("x-api-key", "someone-else"),
                ("x-gw-ims-org-id", ORG),
                ("x-sandbox-name", sandbox),
            ],
            Some(&body),
        );
        assert_eq!(status, 201, "create foreign: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// `POST /_emulator/connections`: stores a connection as another tool
    /// would have made it (`{"sandbox","name","spec"?,"description"?,"state"?}`).
    pub(crate) fn seed(&self, connection: &Value) -> String {
        let (status, text) = self.http(
            "POST",
            "/_emulator/connections",
            &[("x-gw-ims-org-id", ORG)],
            Some(&connection.to_string()),
        );
        assert_eq!(status, 201, "seed: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// `GET /_emulator/stats`.
    pub(crate) fn stats(&self) -> Value {
        let (status, body) = self.http("GET", "/_emulator/stats", &[], None);
        assert_eq!(status, 200, "stats: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// One `[[accounts]]` entry of a test manifest.
#[derive(Clone)]
pub(crate) struct Acct {
    pub(crate) name: String,
    pub(crate) key_env: String,
    pub(crate) description: Option<String>,
    pub(crate) sandboxes: Option<Vec<String>>,
    pub(crate) adopt: bool,
    /// Point `table_endpoint` at the emulator's Table service (for `verify`).
    pub(crate) table: bool,
}

impl Acct {
    pub(crate) fn new(name: &str) -> Self {
        Acct {
            name: name.to_owned(),
            key_env: "E2E_KEY".to_owned(),
            description: None,
            sandboxes: None,
            adopt: false,
            table: false,
        }
    }
}

/// The storage account name `write_manifest` gives an account entry.
pub(crate) fn account_name(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A base64 account key derived from a word.
pub(crate) fn key(word: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(format!("{word}-0123456789-account-key-material-{word}"))
}

/// Writes a manifest for the emulator into `dir` and returns its path.
pub(crate) fn write_manifest(
    dir: &Path,
    emu: &Emulator,
    sandboxes: &[&str],
    accounts: &[Acct],
    concurrency: u32,
) -> PathBuf {
    let mut text = format!(
        "[platform]\nendpoint = \"{}\"\norg_id = \"{ORG}\"\napi_key = \"{API_KEY}\"\n\n[auth]\ntoken_url = \"{}\"\nclient_secret = {{ env = \"E2E_CLIENT_SECRET\" }}\n\n[defaults]\nsandboxes = [{}]\ndescription = \"E2E tables\"\nconcurrency = {concurrency}\n",
        emu.flow_url(),
        emu.token_url(),
        sandboxes
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for a in accounts {
        let account_name = account_name(&a.name);
        let _ = write!(
            text,
            "\n[[accounts]]\nname = \"{}\"\naccount_name = \"{}\"\naccount_key = {{ env = \"{}\" }}\n",
            a.name, account_name, a.key_env
        );
        if let Some(d) = &a.description {
            let _ = writeln!(text, "description = \"{d}\"");
        }
        if let Some(s) = &a.sandboxes {
            let _ = writeln!(
                text,
                "sandboxes = [{}]",
                s.iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if a.adopt {
            text.push_str("adopt = true\n");
        }
        if a.table {
            let _ = writeln!(
                text,
                "table_endpoint = \"http://{}/{account_name}\"",
                emu.addr
            );
        }
    }
    let path = dir.join("manifest.toml");
    std::fs::write(&path, text).unwrap();
    path
}
