//! The team's habits written down: `cargo xtask ci`, `cargo xtask demo`, `cargo xtask bench`,
//! `cargo xtask fuzz`.

mod docs;
mod generate;
mod proc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::proc::{Emulator, measure};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => demo(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("schemas") => docs::write(docs::Set::Schemas),
        Some("man") => docs::write(docs::Set::Man),
        Some("check-generated") => docs::check(&[docs::Set::Schemas, docs::Set::Man]),
        _ => bail!(
            "usage: cargo xtask <task>\n\n  ci               fmt check, generated docs up to date, clippy (warnings denied), every test, cargo doc (warnings denied)\n  schemas          write docs/schemas/*.schema.json from `atsprov schema`\n  man              write docs/man/*.1 from the CLI definitions\n  check-generated  fail when docs/schemas or docs/man differ from what the binary generates\n  demo             the emulator, then plan, apply and plan again\n  bench            release-build measurements; `bench NAME` runs one of validate, plan, apply, emulator\n  fuzz             seeded mutation runs over the manifest loader and the emulator; `fuzz N` runs N cases each (default {DEFAULT_FUZZ_CASES})"
        ),
    }
}

/// fmt check, generated docs up to date, clippy with warnings denied, then every test.
fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    docs::check(&[docs::Set::Schemas, docs::Set::Man])?;
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
    cargo_with(
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    Ok(())
}

/// Cases per fuzz test when `cargo xtask fuzz` is given no number.
const DEFAULT_FUZZ_CASES: usize = 3000;

/// The seeded mutation tests, each run with `ATSPROV_FUZZ_CASES=N`: (package, test).
const FUZZ_TESTS: [(&str, &str); 2] = [
    ("atsprov-model", "fuzz_manifest_loader"),
    ("atsprov-emulator", "fuzz_emulator_requests"),
];

/// Runs every fuzz test with `N` cases and says how many ran; a test that is
/// missing (filtered to nothing) is a failure, not a silent zero.
fn fuzz(cases: Option<&str>) -> Result<()> {
    let cases = match cases {
        None => DEFAULT_FUZZ_CASES,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("`fuzz {text}`: expected a positive number of cases"))?,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut total = 0;
    for (package, test) in FUZZ_TESTS {
        let args = ["test", "--locked", "-p", package, test];
        say(&format!(
            "==> ATSPROV_FUZZ_CASES={cases} cargo {}",
            args.join(" ")
        ));
        let output = Command::new(&cargo)
            .args(args)
            .env("ATSPROV_FUZZ_CASES", cases.to_string())
            .current_dir(root())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not run `{cargo}`"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        say(stdout.trim_end());
        if !output.status.success() {
            bail!("`cargo {}` failed ({})", args.join(" "), output.status);
        }
        let passed = stdout
            .lines()
            .filter(|line| {
                line.starts_with("test ") && line.contains(test) && line.ends_with(" ok")
            })
            .count();
        if passed == 0 {
            bail!("{package} has no passing test named `{test}`");
        }
        total += cases * passed;
        figure(&format!("{test}: {cases} cases, no panic, hang or abort"));
    }
    figure(&format!("fuzz: {total} cases in all"));
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_with(args, &[])
}

/// Runs cargo with extra environment variables.
fn cargo_with(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}=\"{v}\" ")).collect();
    say(&format!("==> {}cargo {}", shown.concat(), args.join(" ")));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .with_context(|| format!("could not run `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // xtask talks to the developer on stderr
fn say(line: &str) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)] // the figures a benchmark prints are its result
fn figure(line: &str) {
    println!("{line}");
}

const DEMO_CLIENT_SECRET: &str = "demo-client-secret";
const DEMO_ACCOUNT_KEY: &str = "ZGVtby1hY2NvdW50LWtleS1mb3ItdGhlLWF0c3Byb3YtZGVtbw==";

/// The emulator, then plan, apply (with progress) and plan again, on `configs/demo.toml`.
fn demo() -> Result<()> {
    cargo(&["build", "--bin", "atsprov"])?;
    let bin = target_dir().join("debug/atsprov");
    let emulator = Emulator::start(
        &bin,
        &[
            "--latency-ms",
            "200",
            "--sandboxes",
            "dev,stage,prod",
            "--client-id",
            "atsprov-demo",
            "--client-secret",
            DEMO_CLIENT_SECRET,
        ],
    )?;
    say(&format!("==> emulator listening on {}", emulator.base));
    let out = target_dir().join("demo");
    std::fs::create_dir_all(&out)?;
    let manifest = root().join("configs/demo.toml");
    let report_json = out.join("report.json");
    let report_md = out.join("report.md");
    let run = |title: &str, args: &[&str]| -> Result<i32> {
        say(&format!("\n==> {title}: atsprov {}", args.join(" ")));
        let status = Command::new(&bin)
            .args(args)
            .env("ATSPROV_PLATFORM__ENDPOINT", emulator.flow_url())
            .env("ATSPROV_AUTH__TOKEN_URL", emulator.token_url())
            .env("ATSPROV_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("ATSPROV_DEMO_ACCOUNT_KEY", DEMO_ACCOUNT_KEY)
            .status()
            .context("could not run atsprov")?;
        Ok(status.code().unwrap_or(-1))
    };
    let m = manifest.to_str().context("manifest path is UTF-8")?;
    let first = run("plan (what would change)", &["plan", m])?;
    if first != 0 {
        bail!("plan failed (exit {first})");
    }
    let applied = run(
        "apply (concurrent, with progress; scripted, so no question at a terminal)",
        &[
            "apply",
            m,
            "--auto-approve",
            "--report",
            report_json.to_str().unwrap_or("report.json"),
            "--report",
            report_md.to_str().unwrap_or("report.md"),
        ],
    )?;
    if applied != 0 {
        bail!("apply failed (exit {applied})");
    }
    let again = run(
        "plan again (nothing left to do; exit 0 with --detailed-exitcode)",
        &["plan", m, "--detailed-exitcode"],
    )?;
    if again != 0 {
        bail!("the second plan still shows changes (exit {again})");
    }
    say(&format!(
        "\n==> reports: {} and {}\n==> stopping the emulator",
        report_json.display(),
        report_md.display()
    ));
    drop(emulator);
    Ok(())
}

/// Release-build measurements; prints the figures. `only` picks one.
fn bench(only: Option<&str>) -> Result<()> {
    let names = ["validate", "plan", "apply", "emulator"];
    if let Some(name) = only.filter(|n| !names.contains(n)) {
        bail!("no benchmark `{name}`; choose one of {}", names.join(", "));
    }
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    cargo(&["build", "--release", "--bin", "atsprov"])?;
    let bin = target_dir().join("release/atsprov");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    if wanted("validate") {
        bench_validate(&bin, &dir)?;
    }
    if wanted("plan") {
        bench_plan(&bin, &dir)?;
    }
    if wanted("apply") {
        bench_apply(&bin, &dir)?;
    }
    if wanted("emulator") {
        say("\n==> emulator load (64 clients)");
        cargo(&[
            "run",
            "--release",
            "-p",
            "atsprov-emulator",
            "--example",
            "load",
        ])?;
    }
    Ok(())
}

/// The variables a generated manifest needs, and the emulator's URLs.
fn bench_env(cmd: &mut Command, emulator: Option<&Emulator>) {
    cmd.env("ATSPROV_BENCH_KEY", DEMO_ACCOUNT_KEY)
        .env("ATSPROV_BENCH_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .stdout(Stdio::null());
    if let Some(e) = emulator {
        cmd.env("ATSPROV_PLATFORM__ENDPOINT", e.flow_url())
            .env("ATSPROV_AUTH__TOKEN_URL", e.token_url());
    }
}

/// `validate` of 10,000 accounts.
fn bench_validate(bin: &Path, dir: &Path) -> Result<()> {
    let big = dir.join("validate-10000.toml");
    std::fs::write(&big, generate::manifest(10_000, 10))?;
    let mut cmd = Command::new(bin);
    cmd.arg("validate").arg(&big);
    bench_env(&mut cmd, None);
    let m = measure(&mut cmd)?;
    figure(&format!(
        "validate, 10,000 accounts: {:.3} s, peak RSS {:.1} MB, exit {}",
        m.wall.as_secs_f64(),
        m.max_rss_mb(),
        m.code
    ));

    Ok(())
}

/// `plan` of 10,000 declared connections over 10 sandboxes, 5,000 present.
fn bench_plan(bin: &Path, dir: &Path) -> Result<()> {
    let emulator = Emulator::start(bin, &[])?;
    let half = dir.join("plan-present-5000.toml");
    std::fs::write(&half, generate::manifest(3_750, 10))?;
    let full = dir.join("plan-declared-10000.toml");
    std::fs::write(&full, generate::manifest(7_500, 10))?;
    let mut cmd = Command::new(bin);
    cmd.args(["-q", "apply", "--auto-approve", "--concurrency", "64"])
        .arg(&half);
    bench_env(&mut cmd, Some(&emulator));
    let seeded = measure(&mut cmd)?;
    if seeded.code != 0 {
        bail!("seeding 5,000 connections failed (exit {})", seeded.code);
    }
    let before = emulator.stats()?;
    let mut cmd = Command::new(bin);
    cmd.args(["plan"]).arg(&full);
    bench_env(&mut cmd, Some(&emulator));
    let m = measure(&mut cmd)?;
    let after = emulator.stats()?;
    figure(&format!(
        "plan, 10,000 declared / 10 sandboxes / 5,000 present: {:.3} s, peak RSS {:.1} MB, {} requests ({} token, {} list), exit {}",
        m.wall.as_secs_f64(),
        m.max_rss_mb(),
        after.requests - before.requests,
        after.tokens - before.tokens,
        after.lists - before.lists,
        m.code
    ));
    drop(emulator);
    Ok(())
}

/// `apply` of 3,000 creates against `--rate-limit 200 --latency-ms 20`.
fn bench_apply(bin: &Path, dir: &Path) -> Result<()> {
    let emulator = Emulator::start(bin, &["--rate-limit", "200", "--latency-ms", "20"])?;
    let creates = dir.join("apply-3000.toml");
    std::fs::write(&creates, generate::manifest(2_250, 10))?;
    let report = dir.join("apply-3000.json");
    let mut cmd = Command::new(bin);
    cmd.args([
        "-q",
        "apply",
        "--auto-approve",
        "--concurrency",
        "32",
        "--report",
    ])
    .arg(&report)
    .arg(&creates);
    bench_env(&mut cmd, Some(&emulator));
    let started = Instant::now();
    let m = measure(&mut cmd)?;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = emulator.stats()?;
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let created = json_count(&text, "created");
    let failed = json_count(&text, "failed");
    let cpu = m.user + m.system;
    figure(&format!(
        "apply, 3,000 creates at --rate-limit 200 --latency-ms 20: {:.2} s, {:.1} creates/s ({:.0}% of the limit), created {created}, failed {failed}, 429s {}, CPU {:.3} s user+sys = {:.0} µs per created connection, peak RSS {:.1} MB, exit {}",
        elapsed,
        created as f64 / elapsed,
        100.0 * created as f64 / elapsed / 200.0,
        stats.rate_limited,
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / (created.max(1) as f64),
        m.max_rss_mb(),
        m.code
    ));
    drop(emulator);
    Ok(())
}

/// A count from the report's `summary` (`"created": 12`).
fn json_count(text: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\": ");
    text.find(&needle)
        .map(|at| &text[at + needle.len()..])
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
