//! A seeded mutation run over the loader: the good manifests of the corpus
//! (`tests/manifests/good`), mutated, must load or fail with diagnostics,
//! never panic, and say a bounded amount.
//!
//! The number of cases comes from `ATSPROV_FUZZ_CASES` (default 300, so
//! `cargo test` stays quick); `cargo xtask fuzz N` runs thousands. Each case
//! has its own seed (the run's seed plus its number), so a failure names the
//! case and it can be replayed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{Environment, Overrides, load_in};

const SEED: u64 = 0x00A7_5920_F022;
const DEFAULT_CASES: usize = 300;

const SALES_EU_KEY: &str =
    "YXRzcHJvdi1mYWtlLWtleS1zYWxlcy1ldS1hdHNwcm92LWZha2Uta2V5LXNhbGVzLWV1LWF0c3Byb3YtZmFrZQ==";
const CLIENT_SECRET: &str = "corpus-client-secret-value";
const ACCESS_TOKEN: &str = "corpus-access-token-value";

/// Text that stresses parsers and checkers.
const ODD: [&str; 16] = [
    "\u{202E}",
    "\u{FEFF}",
    "\u{0}",
    "\u{7}",
    "\r",
    "é",
    "e\u{301}",
    "\u{1F600}",
    "\u{10FFFF}",
    "\u{2028}",
    "\u{FFFD}",
    "\\u0000",
    "\"\"\"",
    "'''",
    "#",
    "\t",
];

const HUGE: [&str; 10] = [
    "99999999999999999999999999999",
    "-9223372036854775809",
    "9223372036854775807",
    "1e999",
    "-1e-999",
    "inf",
    "nan",
    "0x7fffffffffffffff",
    "0b1111111111111111111111111111111111111111111111111111111111111111",
    "4294967297",
];

/// The good corpus, copied next to its key files so relative paths resolve.
fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/manifests/good");
    let mut seeds = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&good)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    for path in names {
        if path.is_dir() {
            for key in std::fs::read_dir(&path).unwrap() {
                let key = key.unwrap().path();
                let target = dir.join("keys").join(key.file_name().unwrap());
                std::fs::copy(&key, &target).unwrap();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = std::fs::Permissions::from_mode(0o600);
                    std::fs::set_permissions(&target, mode).unwrap();
                }
            }
        } else if path.extension().is_some_and(|e| e == "toml") {
            seeds.push(std::fs::read(&path).unwrap());
        }
    }
    assert!(seeds.len() >= 3, "the good corpus is missing");
    seeds
}

fn corpus_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CORPUS_CLIENT_SECRET", CLIENT_SECRET),
        ("CORPUS_ACCESS_TOKEN", ACCESS_TOKEN),
        ("SALES_EU_KEY", SALES_EU_KEY),
    ]
}

/// One mutation of `bytes`, in place.
fn mutate(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>) {
    let at = rng.usize(..=bytes.len());
    match rng.u8(0..10) {
        // A flipped bit.
        0 if at < bytes.len() => bytes[at] ^= 1 << rng.u8(0..8),
        // Truncation.
        1 => bytes.truncate(at),
        // A deleted range.
        2 => {
            let end = (at + rng.usize(1..40)).min(bytes.len());
            bytes.drain(at..end);
        }
        // A duplicated line (or table).
        3 => {
            let start = bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = bytes[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| at + i + 1);
            let line = bytes[start..end].to_vec();
            for _ in 0..rng.usize(1..4) {
                bytes.splice(end..end, line.iter().copied());
            }
        }
        // Deep nesting: arrays, inline tables or dotted table names.
        4 => {
            let depth = rng.usize(1..200);
            let text = match rng.u8(0..3) {
                0 => format!("\nx = {}1{}\n", "[".repeat(depth), "]".repeat(depth)),
                1 => format!("\nx = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth)),
                _ => {
                    let keys: Vec<String> = (0..depth).map(|i| format!("k{i}")).collect();
                    format!("\n[{}]\nx = 1\n", keys.join("."))
                }
            };
            bytes.splice(at..at, text.into_bytes());
        }
        // Odd unicode, or bytes that are not UTF-8.
        5 => {
            let text = ODD[rng.usize(..ODD.len())].as_bytes().to_vec();
            bytes.splice(at..at, text);
        }
        6 => bytes.insert(at, [0xff, 0xc3, 0x80, 0xed][rng.usize(..4)]),
        // A huge or odd number in place of a value.
        7 => {
            let number = HUGE[rng.usize(..HUGE.len())];
            let text = match rng.u8(0..3) {
                0 => format!("\nconcurrency = {number}\n"),
                1 => format!("\n[defaults]\nconcurrency = {number}\n"),
                _ => number.to_owned(),
            };
            bytes.splice(at..at, text.into_bytes());
        }
        // A random byte.
        8 => bytes.insert(at, rng.u8(..)),
        // A random slice of the file, copied elsewhere.
        _ => {
            if !bytes.is_empty() {
                let start = rng.usize(..bytes.len());
                let end = (start + rng.usize(0..120)).min(bytes.len());
                let slice = bytes[start..end].to_vec();
                bytes.splice(at..at, slice);
            }
        }
    }
}

/// Sometimes an `ATSPROV_` variable, as odd as the file.
fn mutate_env(rng: &mut fastrand::Rng) -> Option<(&'static str, String)> {
    let name = match rng.u8(0..8) {
        0 => "ATSPROV_AUTH__SCOPES",
        1 => "ATSPROV_DEFAULTS__SANDBOXES",
        2 => "ATSPROV_DEFAULTS__CONCURRENCY",
        3 => "ATSPROV_PLATFORM__ENDPOINT",
        _ => return None,
    };
    let depth = rng.usize(0..100);
    let value = match rng.u8(0..4) {
        0 => format!("{}\"a\"{}", "[".repeat(depth), "]".repeat(depth)),
        1 => "[".repeat(depth * 50),
        2 => HUGE[rng.usize(..HUGE.len())].to_owned(),
        _ => format!("{{ a = {}", "{ b = ".repeat(depth)),
    };
    Some((name, value))
}

#[test]
fn fuzz_manifest_loader() {
    let cases = std::env::var("ATSPROV_FUZZ_CASES")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_CASES);
    let dir = tempfile::tempdir().unwrap();
    let seeds = corpus(dir.path());
    let path = dir.path().join("fuzz.toml");
    let mut loaded = 0usize;
    for case in 0..cases {
        let seed = SEED.wrapping_add(case as u64);
        let mut rng = fastrand::Rng::with_seed(seed);
        // One case in ten starts from noise rather than a good manifest.
        let mut bytes = if case % 10 == 9 {
            let alphabet: &[u8] = b"[]{}=\"'.,#\n \t_-0123456789abcdefxyz@\\\x00\xff\xc3";
            (0..rng.usize(0..200))
                .map(|_| match rng.bool() {
                    true => rng.u8(..),
                    false => alphabet[rng.usize(..alphabet.len())],
                })
                .collect()
        } else {
            seeds[rng.usize(..seeds.len())].clone()
        };
        for _ in 0..rng.usize(1..5) {
            mutate(&mut rng, &mut bytes);
        }
        let mut env = corpus_env();
        let extra = mutate_env(&mut rng);
        if let Some((name, value)) = &extra {
            env.push((name, value.as_str()));
        }
        std::fs::write(&path, &bytes).unwrap();
        let env = Environment::from_pairs(env);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match load_in(&path, &Overrides::default(), &env) {
                Ok(manifest) => {
                    let _ = manifest.desired();
                    Ok(manifest.warnings.len())
                }
                Err(diagnostics) => Err((diagnostics.error_count(), diagnostics.to_string())),
            }
        }));
        let shown = || {
            let text = String::from_utf8_lossy(&bytes);
            let cut: String = text.chars().take(2000).collect();
            format!("case {case} (seed {seed:#x}), env {extra:?}, input:\n{cut}")
        };
        match outcome {
            Err(_) => panic!("the loader panicked on {}", shown()),
            Ok(Ok(warnings)) => {
                assert!(warnings <= 10, "{warnings} warnings on {}", shown());
                loaded += 1;
            }
            Ok(Err((errors, text))) => {
                assert!(errors > 0, "a failure without an error on {}", shown());
                // Bounded: no more errors than bytes of input, none longer than the input.
                let input = bytes.len() + extra.as_ref().map_or(0, |(_, v)| v.len());
                assert!(errors <= input + 64, "{errors} errors on {}", shown());
                let most = errors * (input + 600) + 4096;
                assert!(
                    text.len() <= most,
                    "{} bytes of diagnostics on {}",
                    text.len(),
                    shown()
                );
                for secret in [SALES_EU_KEY, CLIENT_SECRET, ACCESS_TOKEN] {
                    assert!(
                        !text.contains(secret),
                        "a secret in the diagnostics of {}",
                        shown()
                    );
                }
            }
        }
    }
    // The mutations are small: some cases must still load, or the run tests nothing but the parser.
    assert!(
        cases < 50 || loaded > 0,
        "no mutated manifest loaded in {cases} cases"
    );
}
