//! `atsprov validate`: good and bad manifests, and what a user sees for each.
//!
//! The corpus under `tests/manifests/` is copied to a temporary directory
//! first, so that secret files get known permissions whatever the checkout's
//! umask, and the binary runs there with relative paths (stable snapshots).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Run};

const SALES_EU_KEY: &str =
    "YXRzcHJvdi1mYWtlLWtleS1zYWxlcy1ldS1hdHNwcm92LWZha2Uta2V5LXNhbGVzLWV1LWF0c3Byb3YtZmFrZQ==";
const OPS_KEY: &str =
    "YXRzcHJvdi1mYWtlLWtleS1vcHMtYXRzcHJvdi1mYWtlLWtleS1vcHMtYXRzcHJvdi1mYWtlLWtleS1vcHMtYQ==";
const CLIENT_SECRET: &str = "corpus-client-secret-value";
const ACCESS_TOKEN: &str = "corpus-access-token-value";
const LITERAL_SECRET: &str = "a-literal-client-secret";
const NOT_BASE64_KEY: &str = "this-is-not*base64-but-a-secret";
const ENDPOINT_PASSWORD: &str = "corpus-endpoint-password";

/// The variables the corpus references, set on each command only.
fn corpus_env() -> Vec<(&'static str, String)> {
    vec![
        ("CORPUS_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("CORPUS_ACCESS_TOKEN", ACCESS_TOKEN.into()),
        ("SALES_EU_KEY", SALES_EU_KEY.into()),
        ("NOT_BASE64_KEY", NOT_BASE64_KEY.into()),
        ("CORPUS_EMPTY", String::new()),
        (
            "SAS_CONNECTION_STRING",
            "TableEndpoint=https://saleseu.table.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=t&sig=c2VjcmV0LXNpZw%3D".into(),
        ),
        (
            "DUPLICATE_CONNECTION_STRING",
            format!("AccountName=saleseu;AccountKey={SALES_EU_KEY};AccountKey={OPS_KEY}"),
        ),
        (
            "UNKNOWN_KEY_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={SALES_EU_KEY};QueueEndpoint=https://q.example"),
        ),
        (
            "NO_KEY_CONNECTION_STRING",
            "DefaultEndpointsProtocol=https;AccountName=saleseu".into(),
        ),
        (
            "ENDPOINT_PASSWORD_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={SALES_EU_KEY};TableEndpoint=http://u:{ENDPOINT_PASSWORD}@10.1.1.1/saleseu"),
        ),
        (
            "PLAIN_HTTP_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=http;AccountName=saleseu;AccountKey={SALES_EU_KEY}"),
        ),
        (
            "GOOD_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=https;AccountName=saleseu;AccountKey={SALES_EU_KEY}"),
        ),
        (
            "CHINA_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=https;AccountName=chinastore;AccountKey={OPS_KEY};EndpointSuffix=core.chinacloudapi.cn"),
        ),
    ]
}

/// Every secret value the corpus can reach; none may ever be shown.
fn secrets() -> Vec<String> {
    let mut all: Vec<String> = [
        SALES_EU_KEY,
        OPS_KEY,
        CLIENT_SECRET,
        ACCESS_TOKEN,
        LITERAL_SECRET,
        NOT_BASE64_KEY,
        ENDPOINT_PASSWORD,
        "c2VjcmV0LXNpZw",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Any long piece of a key gives it away too.
    all.push(SALES_EU_KEY[..24].to_owned());
    all.push(OPS_KEY[40..64].to_owned());
    all
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests")
}

/// Copies the corpus to a temp dir; secret files are 0600, `world-readable` ones 0644.
fn copy_corpus() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let mode = if name.contains("world-readable") {
                        0o644
                    } else {
                        0o600
                    };
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                        .unwrap();
                }
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&corpus_dir(), dir.path());
    dir
}

fn validate(dir: &Path, manifest: &str, extra_env: &[(&str, &str)]) -> Run {
    let mut cmd: Command = common::atsprov();
    cmd.current_dir(dir).arg("validate").arg(manifest);
    for (key, value) in corpus_env() {
        cmd.env(key, value);
    }
    for (key, value) in extra_env {
        cmd.env(key, value);
    }
    for unset in ["CORPUS_UNSET_SECRET", "CORPUS_UNSET_KEY"] {
        cmd.env_remove(unset);
    }
    common::run(&mut cmd)
}

fn assert_no_secret(run: &Run, what: &str) {
    for secret in secrets() {
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "{what} shows a secret:\n{}",
            run.transcript()
        );
    }
}

fn manifests(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_bad_manifest_exits_3_with_its_errors() {
    let dir = copy_corpus();
    let names = manifests("bad");
    assert!(names.len() >= 25, "{names:?}");
    for name in names {
        let run = validate(dir.path(), &format!("bad/{name}"), &[]);
        assert_eq!(run.code, 3, "{name}:\n{}", run.transcript());
        assert!(run.stdout.is_empty(), "{name}:\n{}", run.transcript());
        assert!(run.stderr.contains("error: "), "{name}");
        assert!(!run.stderr.contains("panicked"), "{name}");
        assert_no_secret(&run, &name);
        let snapshot = format!("bad-{}", name.trim_end_matches(".toml"));
        insta::assert_snapshot!(snapshot, run.transcript());
    }
}

#[test]
fn every_good_manifest_exits_0_with_a_summary() {
    let dir = copy_corpus();
    let names = manifests("good");
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        let run = validate(dir.path(), &format!("good/{name}"), &[]);
        assert_eq!(run.code, 0, "{name}:\n{}", run.transcript());
        assert!(run.stdout.contains("is valid"), "{name}");
        assert_no_secret(&run, &name);
        let snapshot = format!("good-{}", name.trim_end_matches(".toml"));
        insta::assert_snapshot!(snapshot, run.transcript());
    }
}

#[test]
fn an_environment_variable_overrides_the_file() {
    let dir = copy_corpus();
    let manifest = "good/02-every-feature.toml";
    // The file's https endpoint is valid; the variable's http one to a public host is not.
    let run = validate(
        dir.path(),
        manifest,
        &[(
            "ATSPROV_PLATFORM__ENDPOINT",
            "http://platform.example.com/flowservice",
        )],
    );
    assert_eq!(run.code, 3, "{}", run.transcript());
    insta::assert_snapshot!("env-overrides-file-invalid", run.transcript());

    // The same variable pointing at loopback wins over the file and is accepted.
    let run = validate(
        dir.path(),
        manifest,
        &[
            (
                "ATSPROV_PLATFORM__ENDPOINT",
                "http://127.0.0.1:8080/data/foundation/flowservice",
            ),
            ("ATSPROV_DEFAULTS__CONCURRENCY", "300"),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("--> environment variable ATSPROV_DEFAULTS__CONCURRENCY"),
        "{}",
        run.transcript()
    );
    assert!(
        !run.stderr.contains("platform.endpoint"),
        "{}",
        run.transcript()
    );
}

#[test]
fn files_that_cannot_be_read_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![
        ("missing-file", dir.path().join("absent.toml")),
        ("directory", dir.path().to_path_buf()),
    ];
    // A socket has metadata but cannot be opened, even by root; chmod 000 would not stop root.
    #[cfg(unix)]
    let _listener = {
        let socket = dir.path().join("socket.toml");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        cases.push(("unreadable-file", socket));
        listener
    };
    for (name, path) in cases {
        let mut cmd = common::atsprov();
        cmd.arg("validate").arg(&path);
        let run = common::run(&mut cmd);
        assert_eq!(run.code, 3, "{name}:\n{}", run.transcript());
        let transcript = common::redact_path(&run.transcript(), dir.path(), "[TMP]");
        insta::assert_snapshot!(format!("unreadable-{name}"), transcript);
    }
}

#[test]
fn the_example_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The example reads one key from `keys/ops.key`, which is not committed:
    // validate a copy next to a key file made here, with owner-only permissions.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("configs/example.toml"),
        dir.path().join("example.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let key_file = dir.path().join("keys/ops.key");
    std::fs::write(&key_file, format!("{OPS_KEY}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let example_env: Vec<(&str, String)> = vec![
        ("AEP_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("SALES_EU_KEY", SALES_EU_KEY.into()),
        (
            "MARKETING_CONNECTION_STRING",
            format!("DefaultEndpointsProtocol=https;AccountName=marketingus;AccountKey={OPS_KEY}"),
        ),
        ("ATSPROV_DEMO_ACCOUNT_KEY", SALES_EU_KEY.into()),
        ("ATSPROV_DEMO_CLIENT_SECRET", CLIENT_SECRET.into()),
    ];
    let example = dir.path().join("example.toml");
    let demo = root.join("configs/demo.toml");
    for (config, overrides) in [
        (&example, vec![]),
        (&demo, vec![]),
        (
            &demo,
            vec![
                (
                    "ATSPROV_PLATFORM__ENDPOINT",
                    "http://127.0.0.1:41234/data/foundation/flowservice",
                ),
                (
                    "ATSPROV_AUTH__TOKEN_URL",
                    "http://127.0.0.1:41234/ims/token/v3",
                ),
            ],
        ),
    ] {
        let mut cmd = common::atsprov();
        cmd.arg("validate").arg(config);
        for (key, value) in &example_env {
            cmd.env(key, value);
        }
        for (key, value) in overrides {
            cmd.env(key, value);
        }
        let run = common::run(&mut cmd);
        let what = config.display().to_string();
        assert_eq!(run.code, 0, "{what}:\n{}", run.transcript());
        assert!(run.stderr.is_empty(), "{what}:\n{}", run.transcript());
        assert_no_secret(&run, &what);
    }
}

#[test]
fn json_logs_carry_each_diagnostic_as_one_line_with_its_position() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests/bad/06-unknown-account-key.toml");
    let out = common::run(
        common::atsprov()
            .args(["--log-format", "json", "validate"])
            .arg(&path)
            .env("ATSPROV_DEFAULTS__CONCURRENCY", "0"),
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(out.stdout.is_empty(), "{}", out.transcript());
    let mut lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): `{line}`"))
        })
        .collect();
    let closing = lines.pop().expect("a closing line");
    assert_eq!(closing["level"], "ERROR");
    assert_eq!(
        closing["message"],
        format!("manifest `{}` is invalid: 5 errors", path.display())
    );
    assert_eq!(lines.len(), 5, "{}", out.stderr);
    let by_key = |key: &str| {
        lines
            .iter()
            .find(|l| l["key"] == key)
            .unwrap_or_else(|| panic!("no line for `{key}`: {}", out.stderr))
    };
    let misspelt = by_key("accounts[0].acount_name");
    assert_eq!(misspelt["level"], "ERROR");
    assert_eq!(misspelt["file"], path.display().to_string());
    assert_eq!(misspelt["line"], 10);
    assert_eq!(misspelt["column"], 1);
    assert_eq!(
        misspelt["message"],
        "unknown key `acount_name` in `accounts[0]`"
    );
    assert_eq!(misspelt["hint"], "did you mean `account_name`?");
    let from_env = by_key("defaults.concurrency");
    assert_eq!(from_env["env"], "ATSPROV_DEFAULTS__CONCURRENCY");
    assert!(from_env.get("file").is_none(), "{from_env}");
}

/// Runs a command, failing (and killing it) if it has not ended within a
/// generous bound: what this guards against is a hang, not slowness.
fn run_unless_hung(cmd: &mut Command) -> Run {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the atsprov binary runs");
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(50);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("atsprov did not end: it hangs on its input");
        }
        std::thread::sleep(step);
        waited += step;
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A FIFO, a device, an oversize file or a variable nested thousands deep is
/// refused before it is read whole: exit 3 naming the file or variable and
/// the limit, never a hang, an exhausted memory or a stack overflow.
#[cfg(unix)]
#[test]
fn what_cannot_be_a_manifest_or_a_secret_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let minimal = std::fs::read_to_string(corpus_dir().join("good/01-minimal.toml")).unwrap();
    let with_key_file = |file: &str| {
        minimal.replace(
            "account_key  = { env = \"SALES_EU_KEY\" }",
            &format!("account_key  = {{ file = \"{file}\" }}"),
        )
    };
    mkfifo(&dir.path().join("pipe.toml"));
    mkfifo(&dir.path().join("key-pipe"));
    std::fs::write(dir.path().join("large-key"), "A".repeat(64 * 1024 + 4)).unwrap();
    for (name, file) in [
        ("fifo-secret", "key-pipe"),
        ("device-secret", "/dev/zero"),
        ("oversize-secret", "large-key"),
    ] {
        std::fs::write(dir.path().join(format!("{name}.toml")), with_key_file(file)).unwrap();
    }
    std::fs::write(dir.path().join("minimal.toml"), &minimal).unwrap();
    let deep = "[".repeat(5000);
    /// Name, manifest, an extra variable, what stderr says.
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case<'_>; 5] = [
        (
            "fifo-manifest",
            "pipe.toml",
            None,
            "is a FIFO (named pipe), not a regular file",
        ),
        (
            "fifo-secret",
            "fifo-secret.toml",
            None,
            "is a FIFO (named pipe), not a regular file",
        ),
        (
            "device-secret",
            "device-secret.toml",
            None,
            "is a device, not a regular file",
        ),
        (
            "oversize-secret",
            "oversize-secret.toml",
            None,
            "is larger than 64 KiB",
        ),
        (
            "deep-env",
            "minimal.toml",
            Some(("ATSPROV_AUTH__SCOPES", deep.as_str())),
            "nests deeper than 32 levels",
        ),
    ];
    for (name, manifest, var, expected) in cases {
        let mut cmd = common::atsprov();
        cmd.current_dir(dir.path()).arg("validate").arg(manifest);
        for (key, value) in corpus_env() {
            cmd.env(key, value);
        }
        if let Some((key, value)) = var {
            cmd.env(key, value);
        }
        let run = run_unless_hung(&mut cmd);
        assert_eq!(run.code, 3, "{name}:\n{}", run.transcript());
        assert!(
            run.stderr.contains(expected),
            "{name}:\n{}",
            run.transcript()
        );
        assert_no_secret(&run, name);
        insta::assert_snapshot!(format!("refused-{name}"), run.transcript());
    }
}
