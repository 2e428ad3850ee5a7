//! The only module that prints: results on stdout, errors on stderr, and the colour decision.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::ColorChoice;

/// Decides colour from `--color`, a non-empty `NO_COLOR`, and whether stdout is a terminal.
pub(crate) fn resolve_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            !no_color && io::stdout().is_terminal()
        }
    }
}

/// Writes a result to stdout. A closed pipe (`atsprov plan | head`) is not an error.
pub(crate) fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `--log-format json` was given: then the closing error is a log line too.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Makes [`error`] write JSON log lines (`--log-format json`).
pub(crate) fn use_json_logs(json: bool) {
    JSON_LOGS.store(json, Ordering::Relaxed);
}

/// Prints an error with its whole chain on stderr: `error: …` as text, or,
/// with `--log-format json`, one JSON log line at level ERROR.
pub(crate) fn error(err: &anyhow::Error) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::error!("{err:#}");
        return;
    }
    let mut text = format!("error: {err:#}");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    stderr(&text);
}

/// Writes text to stderr, ignoring a closed stream.
pub(crate) fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
