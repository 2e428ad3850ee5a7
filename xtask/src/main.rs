//! The team's habits written down: `cargo xtask ci`, `cargo xtask demo`, `cargo xtask bench`.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        _ => {
            bail!("usage: cargo xtask <ci>");
        }
    }
}

/// fmt check, clippy with warnings denied, then every test.
fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--locked"])?;
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln_step(&format!("cargo {}", args.join(" ")));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("could not run `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // xtask talks to the developer on stderr
fn eprintln_step(step: &str) {
    eprintln!("==> {step}");
}
