//! The command line itself: help, usage errors (exit 64), `--sandbox`,
//! `--dry-run`, colour, quiet and JSON logs, and a closed stdout.

use std::io::Read;
use std::process::Stdio;

use serde_json::Value;

use crate::apply::{cmd, read_json};
use crate::common::{atsprov, cli_snapshot, run};
use crate::emu::{self, Acct, Emulator};

#[test]
fn help_is_what_users_read() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["plan", "--help"],
        vec!["apply", "--help"],
        vec!["emulator", "--help"],
    ] {
        let out = run(atsprov().args(&args));
        assert_eq!(out.code, 0, "{}", out.transcript());
        let name = format!("help-{}", args[0].trim_start_matches('-'));
        cli_snapshot!(name, out);
    }
}

#[test]
fn usage_errors_exit_64_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for (i, args) in [
        vec!["frobnicate"],
        vec!["plan"],
        vec!["plan", "m.toml", "--format", "yaml"],
        vec!["apply", "m.toml", "--concurrency", "0"],
        vec!["apply", "m.toml", "--report", "r.txt"],
        vec![
            "apply",
            "m.toml",
            "--report",
            "r.json",
            "--report-format",
            "json",
            "--report-format",
            "junit",
        ],
        vec!["--color", "sometimes", "validate", "m.toml"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = run(atsprov().current_dir(dir.path()).args(&args));
        assert_eq!(out.code, 64, "{args:?}: {}", out.transcript());
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        cli_snapshot!(format!("usage-error-{}", i + 1), out);
    }
}

#[test]
fn dry_run_and_sandbox_filter_write_nothing_they_should_not() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest =
        emu::write_manifest(dir.path(), &emu, &["dev", "prod"], &[Acct::new("sales")], 2);
    let m = manifest.to_str().unwrap();

    let dry = run(&mut cmd(
        dir.path(),
        &["apply", m, "--dry-run", "--report", "dry.json"],
        &[],
    ));
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    assert!(dry.stdout.contains("Plan: 2 to create"), "{}", dry.stdout);
    assert_eq!(emu.stats()["writes"], 0, "--dry-run never writes");
    let report = read_json(&dir.path().join("dry.json"));
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["summary"]["skipped"], 2);

    let unknown = run(&mut cmd(
        dir.path(),
        &["plan", m, "--sandbox", "stage"],
        &[],
    ));
    assert_eq!(unknown.code, 64, "a usage error: {}", unknown.transcript());
    assert_eq!(emu.stats()["writes"], 0);
    cli_snapshot!("unknown-sandbox", unknown, dir.path());

    let only_dev = run(&mut cmd(
        dir.path(),
        &["apply", m, "--sandbox", "dev", "--report", "dev.json"],
        &[],
    ));
    assert_eq!(only_dev.code, 0, "{}", only_dev.transcript());
    assert_eq!(emu.list("dev").len(), 1);
    assert_eq!(emu.list("prod").len(), 0, "--sandbox dev leaves prod alone");
    let report = read_json(&dir.path().join("dev.json"));
    assert_eq!(report["summary"]["total"], 1);
}

#[test]
fn colour_quiet_and_json_logs_follow_the_flags() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &[Acct::new("sales")], 2);
    let m = manifest.to_str().unwrap();

    let plain = run(&mut cmd(dir.path(), &["plan", m], &[]));
    assert!(
        !plain.stdout.contains('\x1b'),
        "NO_COLOR and a pipe: no colour"
    );
    let always = run(&mut cmd(dir.path(), &["--color", "always", "plan", m], &[]));
    assert!(
        always.stdout.contains("\x1b[32m"),
        "--color always colours creates green"
    );

    let quiet = run(&mut cmd(dir.path(), &["-q", "apply", m], &[]));
    assert_eq!(quiet.code, 0, "{}", quiet.transcript());
    assert!(quiet.stderr.is_empty(), "quiet: {}", quiet.stderr);
    assert!(quiet.stdout.contains("0 created") || quiet.stdout.contains("1 created"));

    let json = run(&mut cmd(
        dir.path(),
        &["--log-format", "json", "-vv", "plan", m],
        &[],
    ));
    assert_eq!(json.code, 0, "{}", json.transcript());
    let lines: Vec<&str> = json.stderr.lines().collect();
    assert!(!lines.is_empty(), "-vv logs something");
    for line in lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let emu = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let accts: Vec<Acct> = (0..300)
        .map(|i| Acct::new(&format!("acct-{i:03}")))
        .collect();
    let manifest = emu::write_manifest(dir.path(), &emu, &["dev"], &accts, 2);
    let mut child = cmd(dir.path(), &["plan", manifest.to_str().unwrap()], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up, as `atsprov plan | head -c1` would.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn the_emulator_stops_cleanly_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let emu = Emulator::start(&[]);
        let status = std::process::Command::new("kill")
            .args([signal, &emu.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(emu.wait(), Some(0), "{signal}");
    }
}

#[test]
fn the_real_api_is_reached_through_https_proxy_and_loopback_never_is() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    // A stand-in proxy on loopback that records each CONNECT and refuses it.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let (seen_tx, seen) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in proxy.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() {
                let _ = seen_tx.send(line.trim().to_owned());
            }
            let _ = (&stream).write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("real.toml");
    std::fs::write(
        &manifest,
        "[platform]\norg_id = \"0123456789ABCDEF01234567@AdobeOrg\"\napi_key = \"proxy-test\"\n\
         [auth]\nclient_secret = { env = \"E2E_CLIENT_SECRET\" }\n\
         [[accounts]]\nname = \"sales\"\naccount_name = \"sales\"\naccount_key = { env = \"E2E_KEY\" }\n",
    )
    .unwrap();
    let proxy_url = format!("http://127.0.0.1:{port}");
    let out = run(cmd(dir.path(), &["plan", manifest.to_str().unwrap()], &[])
        .env("HTTPS_PROXY", &proxy_url)
        .env("https_proxy", &proxy_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy"));
    assert_eq!(out.code, 1, "{}", out.transcript());
    let first = seen
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the proxy was used");
    assert_eq!(first, "CONNECT ims-na1.adobelogin.com:443 HTTP/1.1");

    // The emulator on loopback is reached directly even with a proxy set.
    let emu = Emulator::start(&[]);
    let local = emu::write_manifest(dir.path(), &emu, &["dev"], &[Acct::new("sales")], 2);
    let out = run(cmd(dir.path(), &["plan", local.to_str().unwrap()], &[])
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .env("ALL_PROXY", &proxy_url));
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn version_names_the_commit_and_build_date() {
    let out = run(atsprov().arg("--version"));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let line = out.stdout.trim();
    let rest = line
        .strip_prefix(concat!("atsprov ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, date) = rest.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    assert!(
        date == "unknown" || (date.len() == 10 && digits.len() == 8 && &date[4..5] == "-"),
        "{line}"
    );
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists()
    {
        assert_ne!(commit, "unknown", "built inside git: {line}");
        assert_ne!(date, "unknown", "built inside git: {line}");
    }
}

#[test]
fn the_emulator_prints_the_urls_for_a_manifest() {
    use std::io::BufRead;
    let mut child = atsprov()
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--list-lag-ms",
            "5",
            "--no-patch",
            "--required-scopes",
            "openid,AdobeID",
            "--rate-limit",
            "50",
            "--overload-500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let first = next();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();
    assert_eq!(
        next(),
        format!("flow service: http://{addr}/data/foundation/flowservice")
    );
    assert_eq!(next(), format!("token url: http://{addr}/ims/token/v3"));
    let _ = child.kill();
    let _ = child.wait();

    // `--overload-500` needs a rate limit to be above of.
    let out = run(atsprov().args(["emulator", "--overload-500"]));
    assert_eq!(out.code, 64, "{}", out.transcript());
}

/// A flag value the emulator cannot take is a bad command line, as for
/// every other command: exit 64, naming the flag.
#[test]
fn the_emulator_refuses_bad_flag_values_as_a_bad_command_line() {
    for (args, flag) in [
        (&["--fail-rate", "2"][..], "--fail-rate"),
        (&["--listen", "nope"][..], "--listen"),
        (&["--rate-limit", "0"][..], "--rate-limit"),
        (&["--table-account", "foo"][..], "--table-account"),
        (&["--sandboxes", "A,b"][..], "--sandboxes"),
    ] {
        let out = run(atsprov().arg("emulator").args(args));
        assert_eq!(out.code, 64, "{}", out.transcript());
        assert!(out.stderr.contains(flag), "{}", out.transcript());
    }
}
