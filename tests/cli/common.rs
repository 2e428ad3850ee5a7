//! Helpers shared by the end-to-end tests: run the binary, capture what a person sees.

use std::path::Path;
use std::process::{Command, Output};

/// What one run of the binary showed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr in one text, for snapshots.
    pub(crate) fn transcript(&self) -> String {
        format!(
            "exit: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A command for the binary with a clean environment: no colour, no RUST_LOG,
/// no ATSPROV_ variables from the developer's shell.
pub(crate) fn atsprov() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atsprov"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("ATSPROV_") || key == "RUST_LOG" || key == "NO_COLOR" {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs a command to the end and captures its output.
pub(crate) fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the atsprov binary runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Replaces a directory's path by a placeholder, so snapshots do not depend on temp dirs.
pub(crate) fn redact_path(text: &str, dir: &Path, placeholder: &str) -> String {
    text.replace(&dir.display().to_string(), placeholder)
}

/// The snapshot filters of every CLI test: what varies run to run (ids,
/// times, durations, rates, ports, temp paths) becomes a placeholder; what a
/// person reads stays.
pub(crate) fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[id]",
    );
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]");
    s.add_filter(r"in \d+\.\ds", "in [secs]");
    s.add_filter(r"\(\d+\.\d writes/s\)", "([rate] writes/s)");
    s.add_filter(r#"time="\d+\.\d+""#, r#"time="[secs]""#);
    s.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#);
    s.add_filter(r#""(plan|write|settle)_ms": \d+"#, r#""${1}_ms": "[ms]""#);
    s.add_filter(
        r"Plan \d+ ms, writes \d+ ms, waiting for listings \d+ ms\.",
        "Plan [n] ms, writes [n] ms, waiting for listings [n] ms.",
    );
    // Ephemeral ports (five digits on Linux); a documented default such as 8080 stays.
    s.add_filter(r"(127\.0\.0\.1|localhost|\[::1\]):\d{5}\b", "$1:[port]");
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[tmp]");
    s
}

/// Snapshots a [`Run`]: exit code, stdout and stderr, through [`settings`];
/// with a directory, its path becomes `[dir]` first.
macro_rules! cli_snapshot {
    ($name:expr, $run:expr) => {{
        let text = $run.transcript();
        $crate::common::settings().bind(|| insta::assert_snapshot!($name, text));
    }};
    ($name:expr, $run:expr, $dir:expr) => {{
        let text = $crate::common::redact_path(&$run.transcript(), $dir, "[dir]");
        $crate::common::settings().bind(|| insta::assert_snapshot!($name, text));
    }};
}
pub(crate) use cli_snapshot;
