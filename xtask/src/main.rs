//! The team's habits written down: `cargo xtask ci`, `cargo xtask demo`, `cargo xtask bench`,
//! `cargo xtask fuzz`.

mod bench;
mod docs;
mod generate;
mod proc;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::proc::Emulator;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => demo(),
        Some("bench") => bench::run(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("schemas") => docs::write(docs::Set::Schemas),
        Some("man") => docs::write(docs::Set::Man),
        Some("measure-child") => proc::measure_child(&args[1..]),
        Some("check-generated") => docs::check(&[docs::Set::Schemas, docs::Set::Man]),
        _ => bail!(
            "usage: cargo xtask <task>\n\n  ci               fmt check, generated docs up to date, clippy (warnings denied), every test, cargo doc (warnings denied)\n  schemas          write docs/schemas/*.schema.json from `atsprov schema`\n  man              write docs/man/*.1 from the CLI definitions\n  check-generated  fail when docs/schemas or docs/man differ from what the binary generates\n  demo             the emulator; plan, apply, plan; then a key rotation: plan (a diff), apply, plan\n  bench            release-build measurements; `bench NAME` runs one of validate, plan, apply, scaling, emulator\n  fuzz             seeded mutation runs over the manifest loader and the emulator; `fuzz N` runs N cases each (default {DEFAULT_FUZZ_CASES})\n  measure-child    (used by bench) OUT PROGRAM ARGS…: runs PROGRAM and writes its exit code, times and peak RSS to OUT"
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
    let (passed, failed) = test_counted(&["test", "--workspace", "--locked"])?;
    cargo_with(
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // One closing line for the whole run (cargo's own last line is that of
    // the last doc-test binary, often "0 passed"); `.ci/run` repeats it last.
    let total = format!("tests: {passed} passed, {failed} failed");
    std::fs::create_dir_all(target_dir())?;
    std::fs::write(target_dir().join("ci-tests.txt"), format!("{total}\n"))?;
    figure(&total);
    Ok(())
}

/// Runs `cargo test …`, passing its output through, and adds up the
/// `test result:` lines of every test binary.
fn test_counted(args: &[&str]) -> Result<(u64, u64)> {
    use std::io::{BufRead as _, BufReader};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    say(&format!("==> cargo {}", args.join(" ")));
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `{cargo}`"))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        figure(&line);
        if let Some((p, f)) = test_result(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok((passed, failed))
}

/// `test result: ok. 12 passed; 0 failed; …` → (12, 0).
fn test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    Some((count("passed")?, count("failed")?))
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

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
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
pub(crate) fn say(line: &str) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)] // the figures a benchmark prints are its result
pub(crate) fn figure(line: &str) {
    println!("{line}");
}

pub(crate) const DEMO_CLIENT_SECRET: &str = "demo-client-secret";
pub(crate) const DEMO_ACCOUNT_KEY: &str = "ZGVtby1hY2NvdW50LWtleS1mb3ItdGhlLWF0c3Byb3YtZGVtbw==";
/// The key `sales-eu` is rotated to in the second half of the demo.
const DEMO_ROTATED_KEY: &str = "cm90YXRlZC1rZXktZm9yLXRoZS1hdHNwcm92LWRlbW8tc2FsZXMtZXU=";

/// The emulator, then plan, apply (with progress) and plan again, on
/// `configs/demo.toml`; then `sales-eu` gets a new key and description: plan
/// (the diff), apply (the change lines) and a last plan with no changes.
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
    // The second half of the demo rotates one account's key and changes its
    // description: the same manifest, with `sales-eu` edited, in a copy.
    let original = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let declared = "name         = \"sales-eu\"\naccount_name = \"saleseudemo\"\naccount_key  = { env = \"ATSPROV_DEMO_ACCOUNT_KEY\" }\ndescription  = \"Sales EU tables\"";
    if !original.contains(declared) {
        bail!("configs/demo.toml no longer declares sales-eu as the demo expects");
    }
    let edited = original.replace(
        declared,
        "name         = \"sales-eu\"\naccount_name = \"saleseudemo\"\naccount_key  = { env = \"ATSPROV_DEMO_ROTATED_KEY\" }\ndescription  = \"Sales EU tables, owned by the data team\"",
    );
    let rotated = out.join("demo-rotated.toml");
    std::fs::write(&rotated, edited)
        .with_context(|| format!("cannot write {}", rotated.display()))?;
    let run = |title: &str, args: &[&str]| -> Result<i32> {
        say(&format!("\n==> {title}: atsprov {}", args.join(" ")));
        let status = Command::new(&bin)
            .args(args)
            .env("ATSPROV_PLATFORM__ENDPOINT", emulator.flow_url())
            .env("ATSPROV_AUTH__TOKEN_URL", emulator.token_url())
            .env("ATSPROV_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("ATSPROV_DEMO_ACCOUNT_KEY", DEMO_ACCOUNT_KEY)
            .env("ATSPROV_DEMO_ROTATED_KEY", DEMO_ROTATED_KEY)
            .status()
            .context("could not run atsprov")?;
        Ok(status.code().unwrap_or(-1))
    };
    let expect = |what: &str, code: i32, wanted: i32| -> Result<()> {
        if code == wanted {
            Ok(())
        } else {
            bail!("{what} (exit {code}, expected {wanted})")
        }
    };
    let m = manifest.to_str().context("manifest path is UTF-8")?;
    let r = rotated.to_str().context("manifest path is UTF-8")?;
    let report_json = report_json.to_str().unwrap_or("report.json");
    let report_md = report_md.to_str().unwrap_or("report.md");
    let code = run("plan (what would change)", &["plan", m])?;
    expect("plan failed", code, 0)?;
    let apply = |title: &str, manifest: &str| {
        run(
            title,
            &[
                "apply",
                manifest,
                "--auto-approve",
                "--report",
                report_json,
                "--report",
                report_md,
            ],
        )
    };
    let code = apply(
        "apply (the plan, then a line per write above the progress bar; scripted, so no question at a terminal)",
        m,
    )?;
    expect("apply failed", code, 0)?;
    let code = run(
        "plan again (nothing left to do; exit 0 with --detailed-exitcode)",
        &["plan", m, "--detailed-exitcode"],
    )?;
    expect("the second plan still shows changes", code, 0)?;
    say(&format!(
        "\n==> sales-eu gets a new key and a new description: {}",
        rotated.display()
    ));
    let code = run(
        "plan (old -> new for each change; exit 2: changes pending)",
        &["plan", r, "--detailed-exitcode"],
    )?;
    expect("the plan after the rotation shows no change", code, 2)?;
    let code = apply("apply (updated lines for sales-eu in each sandbox)", r)?;
    expect("apply of the rotation failed", code, 0)?;
    let code = run(
        "plan a last time (no changes)",
        &["plan", r, "--detailed-exitcode"],
    )?;
    expect("the last plan still shows changes", code, 0)?;
    say(&format!(
        "\n==> reports: {report_json} and {report_md}\n==> stopping the emulator"
    ));
    drop(emulator);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_result_lines_are_counted() {
        assert_eq!(
            super::test_result(
                "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.20s"
            ),
            Some((12, 0))
        );
        assert_eq!(
            super::test_result("test result: FAILED. 46 passed; 2 failed; 0 ignored"),
            Some((46, 2))
        );
        assert_eq!(super::test_result("test foo ... ok"), None);
    }
}
