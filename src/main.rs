//! The `atsprov` command line: parses arguments, sets up logging, runs a
//! command and turns its outcome into an exit code.

mod cli;
mod commands;
mod exit;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc, not the system allocator: an apply allocates and frees small
/// objects for every call (request, headers, answer, report item), and with
/// glibc's malloc a fifth of the client's CPU time went there. Measured by
/// `cargo xtask bench` (10,000 creates: CPU per connection and peak memory).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `atsprov __man DIR`, for `cargo xtask man`: outside clap, so that no
    // help text or completion script offers it.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "__man") {
        return exit::finish(commands::docs::man(args.next()));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return exit::usage_error(err),
    };
    let color = output::resolve_color(cli.global.color);
    logging::init(&cli.global, color);
    output::use_json_logs(cli.global.log_format == cli::LogFormat::Json);
    let outcome = match cli.command {
        Command::Validate(args) => commands::validate::run(&cli.global, args),
        Command::Plan(args) => commands::plan::run(&cli.global, args, color),
        Command::Apply(args) => commands::apply::run(&cli.global, args, color),
        Command::Verify(args) => commands::verify::run(&cli.global, args),
        Command::List(args) => commands::list::run(&cli.global, args),
        Command::Emulator(args) => commands::emulator::run(args),
        Command::Schema(args) => commands::docs::schema(args),
        Command::Completions(args) => commands::docs::completions(args),
    };
    exit::finish(outcome)
}
