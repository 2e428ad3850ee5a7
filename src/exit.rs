//! Exit codes (`docs/commands.md`) and how errors map to them.

use std::process::ExitCode;

/// What a command ended with, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: success, or "no changes" for `plan --detailed-exitcode`.
    Success,
    /// 1: the run finished but one or more items failed.
    ItemsFailed,
    /// 2: `plan --detailed-exitcode` with changes pending.
    ChangesPending,
    /// 130: interrupted; in-flight work finished and the report was written.
    Interrupted,
}

impl Exit {
    fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::ItemsFailed => 1,
            Exit::ChangesPending => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// A failure that ends a command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 3: the manifest or configuration is invalid; nothing was sent.
    Invalid(anyhow::Error),
    /// 1: the API could not be used (auth, network) or another error.
    Fatal(anyhow::Error),
    /// 64: the command line is wrong in a way clap cannot see.
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Fatal(err)
    }
}

/// The result of a command.
pub(crate) type Outcome = Result<Exit, Failure>;

/// Prints a failure on stderr and returns the process exit code.
pub(crate) fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(Failure::Invalid(err)) => {
            crate::output::error(&err);
            ExitCode::from(3)
        }
        Err(Failure::Fatal(err)) => {
            crate::output::error(&err);
            ExitCode::from(1)
        }
        Err(Failure::Usage(err)) => {
            crate::output::error(&err);
            ExitCode::from(64)
        }
    }
}

/// Handles a clap error: help and version go to stdout with 0, anything else is 64.
pub(crate) fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let code = match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => 64,
    };
    // clap prints help to stdout and errors to stderr itself.
    let _ = err.print();
    ExitCode::from(code)
}
