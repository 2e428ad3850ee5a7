//! Logging on stderr: tracing-subscriber, text or JSON, `RUST_LOG` honoured.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// Sets up the global subscriber. `RUST_LOG` wins over `-v`/`-q`.
pub(crate) fn init(global: &GlobalArgs, color: bool) {
    // By default atsprov's own progress and plan lines (info) show, and
    // libraries speak only to warn; -v opens everything a level at a time.
    let default_level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            // `atsprov` is a prefix of every crate of ours.
            0 => "warn,atsprov=info",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| atsprov_runner::LogWriter)
        // A log line that cannot be written must not be reported on the
        // same broken stderr (tracing-subscriber would panic in `eprintln!`).
        .log_internal_errors(false)
        .with_target(false);
    match global.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .init(),
    }
}
