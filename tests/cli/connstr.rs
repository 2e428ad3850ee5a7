//! An account given as `connection_string = { env = … }`, end to end: its
//! `TableEndpoint` is held to the rules of `table_endpoint`, only the
//! canonical https string reaches AEP, and no endpoint password is shown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{cmd, read_json, writes};
use crate::common::{Run, run};
use crate::emu::{self, API_KEY, Emulator, ORG};

const PASSWORD: &str = "SECRETPW";

/// A manifest for the emulator with one account, `sales-eu` in `prod`,
/// whose credentials are the connection string in `SALES_CS`.
fn manifest(dir: &Path, emu: &Emulator) -> PathBuf {
    let mut text = String::new();
    let _ = write!(
        text,
        "[platform]\nendpoint = \"{}\"\norg_id = \"{ORG}\"\napi_key = \"{API_KEY}\"\n\n\
         [auth]\ntoken_url = \"{}\"\nclient_secret = {{ env = \"E2E_CLIENT_SECRET\" }}\n\n\
         [[accounts]]\nname = \"sales-eu\"\nconnection_string = {{ env = \"SALES_CS\" }}\nsandboxes = [\"prod\"]\n",
        emu.flow_url(),
        emu.token_url(),
    );
    let path = dir.join("manifest.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn with_cs(dir: &Path, args: &[&str], cs: &str) -> Run {
    run(&mut cmd(dir, args, &[("SALES_CS", cs.to_owned())]))
}

fn assert_nothing_secret(out: &Run, what: &str) {
    let key = emu::key("saleseu");
    for secret in [PASSWORD, key.as_str(), &key[..24]] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{what} shows a secret:\n{}",
            out.transcript()
        );
    }
}

#[test]
fn a_connection_string_endpoint_is_refused_where_table_endpoint_would_be() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &emu);
    let m = m.to_str().unwrap();
    let key = emu::key("saleseu");
    let cases = [
        (
            format!(
                "AccountName=saleseu;AccountKey={key};TableEndpoint=http://u:{PASSWORD}@10.1.1.1/saleseu"
            ),
            "the URL must not contain a user name or password",
            "remove the `user:password@` part",
        ),
        (
            format!(
                "AccountName=saleseu;AccountKey={key};TableEndpoint=https://u:{PASSWORD}@saleseu.table.core.windows.net/"
            ),
            "the URL must not contain a user name or password",
            "remove the `user:password@` part",
        ),
        (
            format!("AccountName=saleseu;AccountKey={key};TableEndpoint=http://10.1.1.1/saleseu"),
            "`http` is allowed only for a loopback host, found host `10.1.1.1`",
            "use https",
        ),
        (
            format!("DefaultEndpointsProtocol=http;AccountName=saleseu;AccountKey={key}"),
            "`DefaultEndpointsProtocol=http` is not supported",
            "write `DefaultEndpointsProtocol=https` or leave it out",
        ),
    ];
    for (cs, says, hint) in &cases {
        for command in ["validate", "verify", "plan", "apply"] {
            let out = with_cs(dir.path(), &[command, m], cs);
            let what = format!("{command} with {says}");
            assert_eq!(out.code, 3, "{what}:\n{}", out.transcript());
            assert!(out.stderr.contains(says), "{what}:\n{}", out.transcript());
            assert!(
                out.stderr.contains(&format!("= hint: {hint}")),
                "{what}:\n{}",
                out.transcript()
            );
            // Which account, and where the string came from: it is not in the file.
            assert!(
                out.stderr.contains(
                    "`accounts[0].connection_string`: the connection string of `sales-eu` (environment variable `SALES_CS`)"
                ) || out.stderr.contains(
                    "`accounts[0].connection_string`: `TableEndpoint` in the connection string of `sales-eu` (environment variable `SALES_CS`)"
                ),
                "{what}:\n{}",
                out.transcript()
            );
            assert_nothing_secret(&out, &what);
        }
    }
    assert_eq!(writes(&emu), 0, "nothing reached the API");
    assert!(emu.list("prod").is_empty());
}

#[test]
fn only_the_canonical_https_string_reaches_aep_and_the_endpoint_serves_verify() {
    let key = emu::key("saleseu");
    let emu = Emulator::start(&["--table-account", &format!("saleseu={key}")]);
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &emu);
    let m = m.to_str().unwrap();
    // The emulator's path-style Table service, as Azurite's would be.
    let table = format!(
        "http://{}/saleseu",
        emu.flow_url().split('/').nth(2).unwrap()
    );
    let cs = format!(
        "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={key};TableEndpoint={table}"
    );

    let out = with_cs(dir.path(), &["verify", m], &cs);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains(&format!("saleseu at {table}")),
        "{}",
        out.stdout
    );

    let out = with_cs(dir.path(), &["apply", m, "--report", "r.json"], &cs);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_nothing_secret(&out, "apply");
    let live = emu.list("prod");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        live[0]["auth"]["params"]["connectionString"],
        "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey=***",
        "the Table endpoint is for `verify` only, never sent to AEP"
    );

    // Without the endpoint, the credentials are the same: nothing to change.
    let bare = format!("AccountName=saleseu;AccountKey={key}");
    for cs in [&cs, &bare] {
        let out = with_cs(dir.path(), &["plan", m, "--detailed-exitcode"], cs);
        assert_eq!(out.code, 0, "no changes:\n{}", out.transcript());
    }
}

#[test]
fn a_live_endpoint_password_never_shows_in_plans_output_or_reports() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &emu);
    let m = m.to_str().unwrap();
    let key = emu::key("saleseu");
    // What an earlier atsprov stored from such a string: a connection with
    // atsprov's marker (another fingerprint) and the endpoint as written.
    let token = emu.token("someone-else");
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({
        "name": "sales-eu",
        "description": "Azure Table Storage connection [atsprov fp=0123456789abcdef]",
        "auth": {"specName": "Connection String Based Authentication",
                 "params": {"connectionString": format!(
                     "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={key};TableEndpoint=http://u:{PASSWORD}@10.1.1.1/saleseu"
                 )}},
        "connectionSpec": {"id": "ecde33f2-c56f-46cc-bdea-ad151c16cd69", "version": "1.0"}
    })
    .to_string();
    let (status, text) = emu.http(
        "POST",
        "/data/foundation/flowservice/connections",
        &[
            ("Authorization", &auth),
            ("x-api-key", "someone-else"),
            ("x-gw-ims-org-id", ORG),
            ("x-sandbox-name", "prod"),
        ],
        Some(&body),
    );
    assert_eq!(status, 201, "{text}");

    let cs = format!("AccountName=saleseu;AccountKey={key}");
    let shown = "Table endpoint: http://***@10.1.1.1/saleseu → (none)";
    let out = with_cs(dir.path(), &["plan", m], &cs);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains(shown), "{}", out.stdout);
    assert_nothing_secret(&out, "plan");

    let out = with_cs(dir.path(), &["plan", m, "--format", "json"], &cs);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_nothing_secret(&out, "plan --format json");
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let diff = &plan["changes"][0]["diff"][0];
    assert_eq!(diff["field"], "table_endpoint", "{plan}");
    assert_eq!(diff["old"], "http://***@10.1.1.1/saleseu", "{plan}");
    assert_eq!(diff["new"], Value::Null, "{plan}");

    let out = with_cs(
        dir.path(),
        &["apply", m, "--report", "r.json", "--report", "r.md"],
        &cs,
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains(shown), "{}", out.stdout);
    assert_nothing_secret(&out, "apply");
    for report in ["r.json", "r.md"] {
        let text = std::fs::read_to_string(dir.path().join(report)).unwrap();
        assert!(!text.contains(PASSWORD), "{report}: {text}");
    }
    assert!(read_json(&dir.path().join("r.json"))["summary"]["updated"] == 1);
    // The update replaced the string by the canonical one.
    assert_eq!(
        emu.list("prod")[0]["auth"]["params"]["connectionString"],
        "DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey=***"
    );
}
